//! What an identity becomes upstream. One list ([`crate::config::Config::owned_headers`]: the built-in
//! identity headers plus every mapped one) drives both what we strip from the client's request and what
//! we may set, so a header we set can never also arrive spoofed.

use std::format;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use crate::config::{Field, HeaderSource};
use crate::decision::{Header, HeaderEdits};
use crate::engine::Engine;
use crate::identity::mapping::as_text;
use crate::identity::Identity;
use crate::policy::headers::{push_identity, spoofed_headers, strip_cookies};
use crate::request::Request;
use crate::session::Secret;

/// One family of built-in identity headers: user, email, groups, preferred username.
type Family = [&'static str; 4];
const FORWARDED: Family = [
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
];
const AUTH_REQUEST: Family = [
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-request-preferred-username",
];

fn push_family(h: &mut Vec<Header>, names: Family, id: &Identity) {
    let [user, email, groups, preferred] = names;
    push_identity(h, user, &id.user);
    push_identity(h, email, id.email.as_deref().unwrap_or(""));
    push_identity(h, groups, &id.groups.join(","));
    push_identity(h, preferred, id.preferred_username.as_deref().unwrap_or(""));
}

/// oauth2-proxy's auth-request answer (`X-Auth-Request-*`), whichever families go upstream.
pub(crate) fn auth_request_headers(id: &Identity) -> Vec<Header> {
    let mut h = Vec::with_capacity(4);
    push_family(&mut h, AUTH_REQUEST, id);
    h
}

impl Engine {
    /// The headers sent upstream for `id` (values sanitized, empty ones left out).
    pub(crate) fn identity_headers(
        &self,
        id: &Identity,
        access_token: Option<&Secret>,
    ) -> Vec<Header> {
        let cfg = &*self.config;
        let mut h = Vec::with_capacity(8 + cfg.claims.headers.len());
        if cfg.identity_families.forwarded {
            push_family(&mut h, FORWARDED, id);
        }
        if cfg.identity_families.auth_request {
            push_family(&mut h, AUTH_REQUEST, id);
        }
        if let Some(at) = access_token {
            if cfg.pass_access_token {
                push_identity(&mut h, "x-forwarded-access-token", &at.0);
            }
            if cfg.pass_authorization_header {
                push_identity(&mut h, "authorization", &format!("Bearer {}", at.0));
            }
        }
        for m in &cfg.claims.headers {
            let value = match &m.from {
                HeaderSource::Field(f) => field(id, *f),
                HeaderSource::Claim(path) => id.claims.get(path).and_then(as_text),
            };
            if let Some(v) = value {
                push_identity(&mut h, &m.name, &v);
            }
        }
        h
    }

    /// Request edits for anything we forward: every owned header the client sent and our cookies
    /// removed, then `identity` set. `keep_authorization`: the client's own `Authorization` is the
    /// bearer token that authenticated it, forwarded as is.
    pub(crate) fn upstream_edits(
        &self,
        req: &Request<'_>,
        identity: Option<Arc<[Header]>>,
        keep_authorization: bool,
        forward_session: bool,
    ) -> HeaderEdits {
        let cfg = &*self.config;
        let mut edits = HeaderEdits {
            remove: spoofed_headers(
                req.headers,
                &cfg.owned_headers,
                cfg.pass_authorization_header && !keep_authorization,
            ),
            set: Vec::new(),
            identity,
            add: Vec::new(),
        };
        let ours = |n: &str| cfg.is_our_cookie(n) && !(forward_session && cfg.is_session_cookie(n));
        match strip_cookies(req.headers, ours) {
            Some(rest) if rest.is_empty() => edits.remove.push("cookie".into()),
            Some(rest) => edits.set.push(("cookie".into(), rest)),
            None => {}
        }
        // A session token (the token page's) is the session itself: like the cookie, it never goes
        // upstream, on public routes neither, in whatever header it came (any size).
        for (name, value) in req.headers {
            if self.carries_session_token(value) {
                if let Ok(n) = core::str::from_utf8(name) {
                    if !edits.remove.iter().any(|r| r.eq_ignore_ascii_case(n)) {
                        edits.remove.push(n.into());
                    }
                }
            }
        }
        edits
    }
}

fn field(id: &Identity, f: Field) -> Option<String> {
    match f {
        Field::User => Some(id.user.clone()),
        Field::Sub => Some(id.sub.clone()),
        Field::Email => id.email.clone(),
        Field::Name => id.name.clone(),
        Field::PreferredUsername => id.preferred_username.clone(),
        Field::Groups => Some(id.groups.join(",")),
        Field::Scopes => Some(id.scopes.join(" ")),
    }
}
