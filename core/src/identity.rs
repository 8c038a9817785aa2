//! Identity headers for the upstream: one list drives what we strip from the client's request and what
//! we set.

use std::format;
use std::sync::Arc;
use std::vec::Vec;

use crate::decision::{Header, HeaderEdits};
use crate::engine::Engine;
use crate::policy::headers::{push_identity, spoofed_headers, strip_cookies};
use crate::request::Request;
use crate::session::Session;

impl Engine {
    pub(crate) fn identity_headers(&self, s: &Session) -> Vec<Header> {
        let cfg = &*self.config;
        let mut h = Vec::with_capacity(8);
        let email = s.email.as_deref().unwrap_or("");
        let groups = s.groups.join(",");
        let preferred = s.preferred_username.as_deref().unwrap_or("");
        push_identity(&mut h, "x-forwarded-user", &s.user);
        push_identity(&mut h, "x-forwarded-email", email);
        push_identity(&mut h, "x-forwarded-groups", &groups);
        push_identity(&mut h, "x-forwarded-preferred-username", preferred);
        push_identity(&mut h, "x-auth-request-user", &s.user);
        push_identity(&mut h, "x-auth-request-email", email);
        if let Some(at) = &s.access_token {
            if cfg.pass_access_token {
                push_identity(&mut h, "x-forwarded-access-token", &at.0);
            }
            if cfg.pass_authorization_header {
                push_identity(&mut h, "authorization", &format!("Bearer {}", at.0));
            }
        }
        h
    }

    /// Request edits for anything we forward: spoofed identity headers and our cookies removed, then
    /// `identity` set.
    pub(crate) fn upstream_edits(
        &self,
        req: &Request<'_>,
        identity: Option<Arc<[Header]>>,
    ) -> HeaderEdits {
        let cfg = &*self.config;
        let mut edits = HeaderEdits {
            remove: spoofed_headers(req.headers, cfg.pass_authorization_header),
            set: Vec::new(),
            identity,
            add: Vec::new(),
        };
        match strip_cookies(req.headers, |n| cfg.is_our_cookie(n)) {
            Some(rest) if rest.is_empty() => edits.remove.push("cookie".into()),
            Some(rest) => edits.set.push(("cookie".into(), rest)),
            None => {}
        }
        edits
    }
}
