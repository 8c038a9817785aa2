//! The `routes` section: ordered rules with a default, and their requirements. Errors name the rule by
//! index and name (`routes.rules[2] (admin).require.groups: ...`).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::policy::path::normalize_path;
use crate::policy::requirements::{normal_email, ClaimCondition, ClaimTest, Requirements};
use crate::policy::rules::{Accept, Action, HostMatch, PathMatch, Policy, Route, Rule};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoutes {
    #[serde(default)]
    default: Option<RawRoute>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    #[serde(default)]
    action: Option<String>,
    #[serde(default)]
    accept: Option<String>,
    #[serde(default)]
    bearer_header: Option<OneOrMany>,
    #[serde(default)]
    forward_session_cookie: bool,
    #[serde(default)]
    api: bool,
    #[serde(default)]
    require: Option<RawRequire>,
}

/// `"name"` or `["name", ...]`.
#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => alloc::vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// What a rule and the default have in common besides matching.
struct RouteSpec<'a> {
    action: Option<&'a str>,
    accept: Option<&'a str>,
    bearer_header: Option<OneOrMany>,
    forward_session_cookie: bool,
    api: bool,
    require: Option<RawRequire>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    hosts: Vec<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    prefix: Option<String>,
    #[serde(default)]
    glob: Option<String>,
    #[serde(default)]
    methods: Vec<String>,
    action: String,
    #[serde(default)]
    accept: Option<String>,
    #[serde(default)]
    bearer_header: Option<OneOrMany>,
    #[serde(default)]
    forward_session_cookie: bool,
    #[serde(default)]
    api: bool,
    #[serde(default)]
    require: Option<RawRequire>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRequire {
    #[serde(default)]
    email_domains: Vec<String>,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    scopes: Vec<String>,
    #[serde(default)]
    scopes_by_method: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    claims: Vec<RawClaimCondition>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClaimCondition {
    claim: String,
    #[serde(default)]
    equals: Option<serde_json::Value>,
    #[serde(default)]
    one_of: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    contains: Option<serde_json::Value>,
}

fn method_ok(m: &str) -> bool {
    !m.is_empty() && m.bytes().all(|b| b.is_ascii_uppercase())
}

fn header_name_ok(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
}

fn scope_ok(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b > b' ' && b != b'"' && b != b'\\' && b < 0x7f)
}

/// Normalised (and therefore matchable) absolute path.
fn normal(p: &str) -> bool {
    normalize_path(p).as_deref() == Some(p)
}

fn parse_glob(g: &str) -> Option<String> {
    if !g.starts_with('/') {
        return None;
    }
    for seg in g.split('/') {
        // `**` only as a whole segment; the literal parts must be normal.
        if seg.contains("**") && seg != "**" {
            return None;
        }
    }
    let literal = g.replace('*', "x");
    normal(&literal).then(|| String::from(g))
}

fn parse_host(h: &str) -> Option<HostMatch> {
    let lower = h.to_ascii_lowercase();
    let (host, port) = match lower.rsplit_once(':') {
        Some((host, port)) => (String::from(host), Some(port.parse::<u16>().ok()?)),
        None => (lower, None),
    };
    let host = host.strip_suffix('.').unwrap_or(&host).to_string();
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(rest) => (true, format!(".{rest}")),
        None => (false, host.clone()),
    };
    let bare = name.trim_start_matches('.');
    let ok = !bare.is_empty()
        && bare
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
        && !bare.contains("..");
    ok.then_some(HostMatch {
        host: name,
        wildcard,
        port,
    })
}

fn route(field: &str, name: String, spec: RouteSpec<'_>) -> Result<Route, ConfigError> {
    let RouteSpec {
        action,
        accept,
        bearer_header,
        forward_session_cookie,
        api,
        require,
    } = spec;
    let action = match action {
        Some("public") => Action::Public,
        Some("deny") => Action::Deny,
        Some("authenticate") | None => Action::Authenticate,
        Some(other) => {
            return Err(invalid(
                format!("{field}.action"),
                format!("{other:?} is not one of public, authenticate, deny"),
            ))
        }
    };
    let accept = match accept {
        Some("session") | None => Accept::Session,
        Some("bearer") => Accept::Bearer,
        Some("either") => Accept::Either,
        Some(other) => {
            return Err(invalid(
                format!("{field}.accept"),
                format!("{other:?} is not one of session, bearer, either"),
            ))
        }
    };
    if action != Action::Authenticate
        && (require.is_some() || bearer_header.is_some() || forward_session_cookie || api)
    {
        return Err(invalid(
            field,
            "require, bearer_header, forward_session_cookie and api only apply to action \"authenticate\"",
        ));
    }
    if forward_session_cookie && accept == Accept::Bearer {
        return Err(invalid(
            format!("{field}.forward_session_cookie"),
            "needs a route that accepts sessions (accept \"session\" or \"either\")",
        ));
    }
    let bearer_headers = match bearer_header.map(OneOrMany::into_vec) {
        None => alloc::vec![String::from("authorization")],
        Some(list) if list.is_empty() || list.len() > 4 => {
            return Err(invalid(
                format!("{field}.bearer_header"),
                "must name one to four headers",
            ))
        }
        Some(list) => {
            let mut out: Vec<String> = Vec::new();
            for (i, h) in list.iter().enumerate() {
                let lower = h.to_ascii_lowercase();
                if !header_name_ok(h) || lower == "cookie" || lower == "host" {
                    return Err(invalid(
                        format!("{field}.bearer_header[{i}]"),
                        "must be a header name (not cookie or host)",
                    ));
                }
                if out.contains(&lower) {
                    return Err(invalid(
                        format!("{field}.bearer_header[{i}]"),
                        "is listed twice",
                    ));
                }
                out.push(lower);
            }
            out
        }
    };
    let requirements = match require {
        Some(r) => requirements(&format!("{field}.require"), r)?,
        None => Requirements::default(),
    };
    Ok(Route {
        name,
        action,
        accept,
        bearer_headers,
        forward_session_cookie,
        api,
        requirements,
    })
}

fn requirements(field: &str, r: RawRequire) -> Result<Requirements, ConfigError> {
    let mut out = Requirements::default();
    for (i, d) in r.email_domains.iter().enumerate() {
        let lower = d.to_ascii_lowercase();
        let bare = lower.strip_prefix('.').unwrap_or(&lower);
        if normal_email(&format!("x@{bare}")).is_none() || bare.is_empty() {
            return Err(invalid(
                format!("{field}.email_domains[{i}]"),
                "must be a domain (example.com) or .domain for its subdomains",
            ));
        }
        out.email_domains.push(lower);
    }
    for (i, e) in r.emails.iter().enumerate() {
        match normal_email(e) {
            Some((full, _)) => out.emails.push(full),
            None => {
                return Err(invalid(
                    format!("{field}.emails[{i}]"),
                    "must be an email address with exactly one @",
                ))
            }
        }
    }
    for (i, g) in r.groups.iter().enumerate() {
        if g.is_empty() || g.contains(',') || g.chars().any(char::is_control) {
            return Err(invalid(
                format!("{field}.groups[{i}]"),
                "must be a group name (no commas or control characters)",
            ));
        }
    }
    out.groups = r.groups;
    for (i, s) in r.scopes.iter().enumerate() {
        if !scope_ok(s) {
            return Err(invalid(
                format!("{field}.scopes[{i}]"),
                "must be a scope token",
            ));
        }
    }
    out.scopes = r.scopes;
    for (m, scopes) in r.scopes_by_method {
        if m != "*" && !method_ok(&m) {
            return Err(invalid(
                format!("{field}.scopes_by_method.{m}"),
                "must be an upper-case method or *",
            ));
        }
        if let Some(s) = scopes.iter().find(|s| !scope_ok(s)) {
            return Err(invalid(
                format!("{field}.scopes_by_method.{m}"),
                format!("{s:?} is not a scope token"),
            ));
        }
        out.scopes_by_method.push((m, scopes));
    }
    for (i, c) in r.claims.into_iter().enumerate() {
        let f = format!("{field}.claims[{i}]");
        if c.claim.is_empty() {
            return Err(invalid(format!("{f}.claim"), "must name a claim path"));
        }
        let test = match (c.equals, c.one_of, c.contains) {
            (Some(v), None, None) => ClaimTest::Equals(v),
            (None, Some(v), None) => ClaimTest::OneOf(v),
            (None, None, Some(v)) => ClaimTest::Contains(v),
            _ => return Err(invalid(f, "needs exactly one of equals, one_of, contains")),
        };
        out.claims.push(ClaimCondition {
            claim: c.claim,
            test,
        });
    }
    Ok(out)
}

/// Builds the policy: `public_paths` first (shorthand for public rules), then `routes.rules`, then the
/// default. Refuses invalid patterns and rules no request could reach.
pub(super) fn policy(raw: RawRoutes, public_paths: &[String]) -> Result<Policy, ConfigError> {
    let mut rules: Vec<(String, Rule)> = Vec::new();
    for (i, p) in public_paths.iter().enumerate() {
        // Requests are matched on their normalized path, so an entry that is not itself normal
        // (`/a/../b`, `/a//b`, `/%61`) could never match: refuse it rather than let it surprise.
        let field = format!("public_paths[{i}]");
        let path = match p.strip_suffix('*') {
            Some(base) if normal(base) => PathMatch::StartsWith(String::from(base)),
            None if normal(p) => PathMatch::Exact(p.clone()),
            _ => {
                return Err(invalid(
                    field,
                    "must be a normalized absolute path, optionally ending in *",
                ))
            }
        };
        let name = format!("public_paths[{i}]");
        rules.push((
            field,
            Rule {
                hosts: Vec::new(),
                path,
                methods: Vec::new(),
                route: route(
                    "public_paths",
                    name,
                    RouteSpec {
                        action: Some("public"),
                        accept: None,
                        bearer_header: None,
                        forward_session_cookie: false,
                        api: false,
                        require: None,
                    },
                )?,
            },
        ));
    }
    for (i, r) in raw.rules.into_iter().enumerate() {
        let name = r.name.clone().unwrap_or_else(|| format!("rule{i}"));
        let field = match &r.name {
            Some(n) => format!("routes.rules[{i}] ({n})"),
            None => format!("routes.rules[{i}]"),
        };
        if r.name.as_deref().is_some_and(|n| {
            n.is_empty()
                || !n
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }) {
            return Err(invalid(
                format!("{field}.name"),
                "must be [A-Za-z0-9_.-]+ (it labels logs and metrics)",
            ));
        }
        if rules.iter().any(|(_, x)| x.route.name == name) {
            return Err(invalid(format!("{field}.name"), "is used by another rule"));
        }
        let path = match (r.path, r.prefix, r.glob) {
            (None, None, None) => PathMatch::Any,
            (Some(p), None, None) if normal(&p) => PathMatch::Exact(p),
            (None, Some(p), None) if normal(&p) => PathMatch::Prefix(p),
            (None, None, Some(g)) => PathMatch::Glob(parse_glob(&g).ok_or_else(|| {
                invalid(
                    format!("{field}.glob"),
                    "must be an absolute normalized path where * matches within a segment and ** (a whole segment) across segments",
                )
            })?),
            (Some(_), None, None) => {
                return Err(invalid(format!("{field}.path"), "must be a normalized absolute path"))
            }
            (None, Some(_), None) => {
                return Err(invalid(format!("{field}.prefix"), "must be a normalized absolute path"))
            }
            _ => {
                return Err(invalid(
                    field,
                    "give at most one of path, prefix, glob",
                ))
            }
        };
        let mut hosts = Vec::new();
        for (j, h) in r.hosts.iter().enumerate() {
            hosts.push(parse_host(h).ok_or_else(|| {
                invalid(
                    format!("{field}.hosts[{j}]"),
                    "must be a host name, *.domain, optionally with :port",
                )
            })?);
        }
        for (j, m) in r.methods.iter().enumerate() {
            if !method_ok(m) {
                return Err(invalid(
                    format!("{field}.methods[{j}]"),
                    "must be an upper-case method such as GET",
                ));
            }
        }
        let route = route(
            &field,
            name,
            RouteSpec {
                action: Some(r.action.as_str()),
                accept: r.accept.as_deref(),
                bearer_header: r.bearer_header,
                forward_session_cookie: r.forward_session_cookie,
                api: r.api,
                require: r.require,
            },
        )?;
        let rule = Rule {
            hosts,
            path,
            methods: r.methods,
            route,
        };
        if let Some((earlier, _)) = rules.iter().find(|(_, e)| e.shadows(&rule)) {
            return Err(invalid(
                field,
                format!("can never match: {earlier} matches every request it would"),
            ));
        }
        rules.push((field, rule));
    }
    let d = raw.default.unwrap_or_default();
    let default = route(
        "routes.default",
        String::from("default"),
        RouteSpec {
            action: d.action.as_deref(),
            accept: d.accept.as_deref(),
            bearer_header: d.bearer_header,
            forward_session_cookie: d.forward_session_cookie,
            api: d.api,
            require: d.require,
        },
    )?;
    Ok(Policy {
        rules: rules.into_iter().map(|(_, r)| r).collect(),
        default,
    })
}

/// Every claim path a rule tests (these are kept in sessions and identities).
pub(super) fn claim_paths(policy: &Policy) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in policy
        .rules
        .iter()
        .map(|r| &r.route)
        .chain([&policy.default])
    {
        for c in &r.requirements.claims {
            if !out.contains(&c.claim) {
                out.push(c.claim.clone());
            }
        }
    }
    out
}
