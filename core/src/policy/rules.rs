//! Routing: the first rule that matches a request decides what happens to it; a configurable default
//! catches the rest. Rules match on host, normalised path and method. Nothing is a regular expression.

use alloc::string::String;
use alloc::vec::Vec;

use crate::policy::path::{already_normal, normalize_path};
use crate::policy::requirements::Requirements;
use crate::request::Request;

/// What a route does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forwarded without authentication (identity headers still stripped).
    Public,
    /// Forwarded only with an identity that meets the requirements.
    Authenticate,
    /// Refused (403).
    Deny,
}

/// Which credentials a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// A session cookie (browser login).
    Session,
    /// A bearer token.
    Bearer,
    /// Either: a bearer token when one is sent, else the session.
    Either,
}

/// What a matching rule (or the default) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The rule's name (`default` for the default route), for logs and metrics.
    pub name: String,
    /// Public, authenticate or deny.
    pub action: Action,
    /// Accepted credentials (for `Authenticate`).
    pub accept: Accept,
    /// The headers a bearer token may come in, in order: the first one present is the credential
    /// (lower-case; default `authorization` alone; Flyte's clients send `flyte-authorization`).
    pub bearer_headers: Vec<String>,
    /// Whether our session cookie (every chunk) stays in the `Cookie` header sent upstream, for
    /// upstreams that hand the cookies they received to a CLI (SkyPilot's token page). Login and hint
    /// cookies are stripped either way.
    pub forward_session_cookie: bool,
    /// An API route (oauth2-proxy's `--api-route`): without credentials it answers 401 (JSON with
    /// `login_url`, and a `Link` header), never a login redirect, whatever the client's `Accept`.
    pub api: bool,
    /// What the identity must satisfy.
    pub requirements: Requirements,
}

/// A path pattern, matched on the normalised path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// Any path.
    Any,
    /// Exactly this path.
    Exact(String),
    /// This path and everything below it, segment-wise: `/api` matches `/api` and `/api/x`, not
    /// `/apix`; `/api/` matches `/api/` and below.
    Prefix(String),
    /// `*` matches within one segment, a `**` segment any number of segments.
    Glob(String),
    /// Plain string prefix (the `public_paths` shorthand `"/static*"`).
    StartsWith(String),
}

impl PathMatch {
    /// Whether the normalised `path` matches.
    #[must_use]
    pub fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Exact(e) => path == e,
            PathMatch::Prefix(p) => prefix_matches(p, path),
            PathMatch::Glob(g) => glob_matches(g, path),
            PathMatch::StartsWith(p) => path.starts_with(p.as_str()),
        }
    }

    /// Whether every path this one matches is matched by `self` too (conservative: `false` when unsure).
    #[must_use]
    pub fn covers(&self, other: &PathMatch) -> bool {
        match (self, other) {
            (PathMatch::Any, _) => true,
            (_, PathMatch::Any) => false,
            (a, PathMatch::Exact(x)) => a.matches(x),
            (PathMatch::Exact(_), _) => false,
            (PathMatch::Prefix(p), PathMatch::Prefix(q)) => prefix_matches(p, q),
            (PathMatch::Prefix(p), PathMatch::Glob(g)) => {
                let lit = literal_head(g);
                // The glob's literal head must lie strictly below the prefix.
                if p.ends_with('/') {
                    lit.starts_with(p.as_str())
                } else {
                    lit.strip_prefix(p.as_str())
                        .is_some_and(|rest| rest.starts_with('/'))
                }
            }
            (PathMatch::StartsWith(p), PathMatch::Prefix(q) | PathMatch::StartsWith(q)) => {
                q.starts_with(p.as_str())
            }
            (PathMatch::StartsWith(p), PathMatch::Glob(g)) => {
                literal_head(g).starts_with(p.as_str())
            }
            (PathMatch::Prefix(p), PathMatch::StartsWith(q)) => q
                .strip_prefix(p.as_str())
                .is_some_and(|rest| p.ends_with('/') || rest.starts_with('/')),
            (PathMatch::Glob(a), PathMatch::Glob(b)) => a == b,
            (PathMatch::Glob(_), _) => false,
        }
    }
}

/// The part of a glob before its first `*`.
fn literal_head(g: &str) -> &str {
    g.split('*').next().unwrap_or("")
}

/// Segment-wise prefix: `/api` matches `/api` and `/api/...`; `/api/` matches anything starting with it.
#[must_use]
pub fn prefix_matches(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Glob match: pattern and path split on `/`; a `**` segment matches zero or more segments, `*` inside a
/// segment matches any run of characters within it.
#[must_use]
pub fn glob_matches(pattern: &str, path: &str) -> bool {
    let pat: Vec<&str> = pattern.split('/').collect();
    let segs: Vec<&str> = path.split('/').collect();
    wildcard(&pat, &segs, |p| *p == "**", |p, s| segment_matches(p, s))
}

/// `*` matches any run of characters (within a segment); everything else literally.
#[must_use]
pub fn segment_matches(pattern: &str, seg: &str) -> bool {
    wildcard(
        pattern.as_bytes(),
        seg.as_bytes(),
        |c| *c == b'*',
        |p, c| p == c,
    )
}

/// The one wildcard matcher, over segments (`**`) or bytes (`*`): greedy with a single backtrack point,
/// so `O(len(pattern) × len(input))` at worst and never exponential.
fn wildcard<P, T>(
    pat: &[P],
    input: &[T],
    is_star: impl Fn(&P) -> bool,
    item_matches: impl Fn(&P, &T) -> bool,
) -> bool {
    let (mut p, mut i) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while i < input.len() {
        match pat.get(p) {
            Some(x) if is_star(x) => {
                star = Some((p, i));
                p += 1;
            }
            Some(x) if input.get(i).is_some_and(|t| item_matches(x, t)) => {
                p += 1;
                i += 1;
            }
            _ => match star {
                Some((sp, si)) => {
                    p = sp + 1;
                    i = si + 1;
                    star = Some((sp, si + 1));
                }
                None => return false,
            },
        }
    }
    pat.get(p..).is_some_and(|rest| rest.iter().all(&is_star))
}

/// A host pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostMatch {
    /// Lower-case host name without a trailing dot; `*.example.com` is stored as `.example.com`.
    pub host: String,
    /// `true` for `*.example.com`: any subdomain (not the apex).
    pub wildcard: bool,
    /// A port to require; `None`: any port.
    pub port: Option<u16>,
}

impl HostMatch {
    fn matches(&self, host: &str, port: Option<u16>) -> bool {
        if self.port.is_some() && self.port != port {
            return false;
        }
        if self.wildcard {
            host.strip_suffix(self.host.as_str())
                .is_some_and(|head| !head.is_empty() && !head.ends_with('.'))
        } else {
            host == self.host
        }
    }

    fn covers(&self, other: &HostMatch) -> bool {
        if self.port.is_some() && self.port != other.port {
            return false;
        }
        match (self.wildcard, other.wildcard) {
            (false, false) => self.host == other.host,
            (false, true) => false,
            (true, false) => self.matches(&other.host, other.port.or(self.port)),
            (true, true) => other.host.ends_with(self.host.as_str()),
        }
    }
}

/// The request's host, lower-cased, without a trailing dot, and its port. `None` if unreadable.
#[must_use]
pub fn split_authority(authority: &str) -> Option<(String, Option<u16>)> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        let (h, after) = rest.split_once(']')?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(p.parse::<u16>().ok()?),
            None if after.is_empty() => None,
            None => return None,
        };
        (h, port)
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p.parse::<u16>().ok()?)),
            None => (authority, None),
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty() || host.contains(':') && !authority.starts_with('[') {
        return None;
    }
    Some((host.to_ascii_lowercase(), port))
}

/// One configured rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Hosts (any of); empty: any host.
    pub hosts: Vec<HostMatch>,
    /// The path pattern.
    pub path: PathMatch,
    /// Methods (any of, exact); empty: any method.
    pub methods: Vec<String>,
    /// What it decides.
    pub route: Route,
}

impl Rule {
    fn matches(&self, host: Option<&(String, Option<u16>)>, path: &str, method: &str) -> bool {
        (self.methods.is_empty() || self.methods.iter().any(|m| m == method))
            && (self.hosts.is_empty()
                || host.is_some_and(|(h, p)| self.hosts.iter().any(|m| m.matches(h, *p))))
            && self.path.matches(path)
    }

    /// Whether every request `other` matches is matched by `self` (so `other`, after `self`, is dead).
    #[must_use]
    pub fn shadows(&self, other: &Rule) -> bool {
        let methods = self.methods.is_empty()
            || (!other.methods.is_empty()
                && other.methods.iter().all(|m| self.methods.contains(m)));
        let hosts = self.hosts.is_empty()
            || (!other.hosts.is_empty()
                && other
                    .hosts
                    .iter()
                    .all(|o| self.hosts.iter().any(|s| s.covers(o))));
        methods && hosts && self.path.covers(&other.path)
    }
}

/// Why a request could not be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unroutable {
    /// The path cannot be normalised.
    PathInvalid,
}

/// The configured routing policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Ordered rules; the first match wins.
    pub rules: Vec<Rule>,
    /// What applies when no rule matches.
    pub default: Route,
}

impl Policy {
    /// The route for this request.
    pub fn route(&self, req: &Request<'_>) -> Result<&Route, Unroutable> {
        self.route_parts(req.path_only(), req.authority, req.method)
    }

    /// The route for a raw path (no query), authority and method.
    pub fn route_parts(
        &self,
        raw: &str,
        authority: &str,
        method: &str,
    ) -> Result<&Route, Unroutable> {
        if self.rules.is_empty() {
            return Ok(&self.default);
        }
        let normalized;
        let path = if already_normal(raw) {
            raw
        } else {
            normalized = normalize_path(raw).ok_or(Unroutable::PathInvalid)?;
            normalized.as_str()
        };
        // The host is lower-cased into a new string: only when some rule looks at it.
        let host = if self.rules.iter().any(|r| !r.hosts.is_empty()) {
            split_authority(authority)
        } else {
            None
        };
        Ok(self
            .rules
            .iter()
            .find(|r| r.matches(host.as_ref(), path, method))
            .map_or(&self.default, |r| &r.route))
    }
}
