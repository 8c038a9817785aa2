//! `{prefix}/backchannel_logout` (OpenID Connect Back-Channel Logout 1.0): the IdP posts a logout
//! token; once verified, the sessions it names stop being accepted by this VM at once and by the other
//! workers of this proxy as soon as they sync with the host's shared store.

use crate::decision::{Decision, Reason};
use crate::engine::Engine;
use crate::oidc::verify::{verify_logout_token, Expectations};
use crate::request::{query_param, Request};
use crate::response;
use crate::session::revocations::{key, Kind};
use crate::time::UnixTime;
use crate::vm::VmState;

/// Largest logout request body accepted (a logout token is a few hundred bytes to a few KB).
pub const MAX_LOGOUT_BODY: usize = 16 * 1024;

/// Oldest logout token accepted (`iat`), in seconds.
pub const MAX_LOGOUT_TOKEN_AGE: u64 = 600;

impl Engine {
    pub(crate) fn backchannel_logout(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Decision {
        let cfg = &*self.config;
        if req.method != "POST" {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        let Some(body) = req.body else {
            return Decision::ReadBody {
                limit: MAX_LOGOUT_BODY,
            };
        };
        if body.len() > MAX_LOGOUT_BODY {
            return invalid(413, Reason::BodyTooLarge);
        }
        let bad = Reason::LogoutTokenRejected(crate::oidc::verify::LogoutTokenError::Token(
            crate::IdTokenError::Malformed,
        ));
        let token = match core::str::from_utf8(body).map(|b| query_param(b, "logout_token")) {
            Ok(Ok(Some(t))) => t,
            _ => return invalid(400, bad),
        };
        let Some(provider) = vm.provider(0).cloned() else {
            return self.error(req, 503, Reason::ProviderNotReady);
        };
        let expect = Expectations {
            issuer: &cfg.issuer,
            client_id: &cfg.client_id,
            nonce: None,
            allowed_algs: &cfg.allowed_algs,
            now,
            leeway: cfg.leeway,
        };
        let logout =
            match verify_logout_token(&token, &provider.jwks, &expect, MAX_LOGOUT_TOKEN_AGE) {
                Ok(l) => l,
                Err(e) => return invalid(400, Reason::LogoutTokenRejected(e)),
            };
        // Every session issued up to now with that sid (or of that user) ends; the entry can go once
        // every such session has expired on its own.
        let until = now
            .0
            .saturating_add(cfg.session_ttl)
            .saturating_add(cfg.leeway);
        if let Some(sid) = &logout.sid {
            vm.revocations.add(key(Kind::Sid, sid), now.0, until);
        } else if let Some(sub) = &logout.sub {
            vm.revocations.add(key(Kind::Sub, sub), now.0, until);
        }
        response::json(
            200,
            &serde_json::json!({}),
            std::vec::Vec::new(),
            Reason::BackchannelLogout,
        )
    }
}

/// OIDC Back-Channel Logout 1.0 §2.8: errors are 400 with an OAuth error body.
fn invalid(status: u16, reason: Reason) -> Decision {
    response::json(
        status,
        &serde_json::json!({"error": "invalid_request", "error_description": reason.failure_message().unwrap_or("invalid request")}),
        std::vec::Vec::new(),
        reason,
    )
}
