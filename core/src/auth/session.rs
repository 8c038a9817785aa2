//! Authentication by session cookie: the sealed session opened (or found in this VM's cache), and the
//! session built from a verified ID token at login.

use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};

use crate::decision::Reason;
use crate::endpoints::login::MAX_COOKIE_BYTES;
use crate::engine::Engine;
use crate::oidc::token::TokenResponse;
use crate::oidc::verify::VerifiedIdToken;
use crate::request::Request;
use crate::session::cache::CachedSession;
use crate::session::keyring::Purpose;
use crate::session::Session;
use crate::time::UnixTime;
use crate::vm::VmState;

impl Engine {
    /// The request's session, from the cache or by opening the cookie. Tampered, truncated, expired or
    /// foreign-key cookies are simply no session.
    pub(crate) fn session(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Option<Arc<CachedSession>> {
        let cache = &mut vm.sessions;
        let cfg = &*self.config;
        let value = req.cookie(&cfg.cookie_name)?;
        if let Some(hit) = cache.get(value) {
            if hit.session.is_valid_at(now, cfg.leeway) {
                return Some(hit);
            }
            cache.remove(value);
            return None;
        }
        // Our own binding first; other client ids only when configured (`cookie.accept_client_ids`).
        let json = cfg.accepted_bindings.iter().find_map(|bind| {
            cfg.keys
                .open(Purpose::Session, &cfg.cookie_name, bind, value)
        })?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        if !session.is_valid_at(now, cfg.leeway) {
            return None;
        }
        let entry = Arc::new(CachedSession {
            upstream: Arc::from(self.identity_headers(&session)),
            session,
        });
        cache.insert(value, entry.clone());
        Some(entry)
    }

    pub(crate) fn session_from(
        &self,
        v: VerifiedIdToken,
        tokens: &TokenResponse,
        now: UnixTime,
    ) -> Result<Session, Reason> {
        let cfg = &*self.config;
        let claim = |name: &str| -> Option<String> {
            if name == "sub" {
                return Some(v.subject.clone());
            }
            match v.claims.other.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        // OIDC Core §5.1: `email_verified` is a boolean. Only `true` counts (some IdPs send the string
        // "true"; "false", absent or anything else does not).
        let verified = match v.claims.other.get("email_verified") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        let email_usable = verified || cfg.insecure_allow_unverified_email;
        let email = claim(&cfg.claims.email).filter(|_| email_usable);
        let user = if cfg.claims.user == cfg.claims.email && cfg.claims.user != "sub" {
            // The user is named by their email: an unverified one is whatever they typed at the IdP.
            email.clone().ok_or(Reason::EmailUnverified)?
        } else {
            claim(&cfg.claims.user).unwrap_or_else(|| v.subject.clone())
        };
        Ok(Session {
            user,
            sub: v.subject.clone(),
            email,
            email_verified: Some(verified),
            name: claim(&cfg.claims.name),
            preferred_username: claim(&cfg.claims.preferred_username),
            groups: groups_of(v.claims.other.get(&cfg.claims.groups)),
            issued_at: now.0,
            expires_at: now.plus(cfg.session_ttl).0,
            access_token: if cfg.pass_access_token || cfg.pass_authorization_header {
                tokens.access_token.clone()
            } else {
                None
            },
        })
    }

    /// Seals the session (without tokens it is small; only an enormous groups claim can overflow).
    pub(crate) fn seal_session(
        &self,
        session: &Session,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<String, Reason> {
        let cfg = &*self.config;
        let json = serde_json::to_vec(session).map_err(|_| Reason::SessionTooLarge)?;
        let sealed = cfg
            .keys
            .seal(Purpose::Session, &cfg.cookie_name, &cfg.binding, &json, rng)
            .map_err(|_| Reason::RandomnessUnavailable)?;
        if sealed.len() + cfg.cookie_name.len() < MAX_COOKIE_BYTES {
            Ok(sealed)
        } else {
            Err(Reason::SessionTooLarge)
        }
    }
}

/// The groups claim as group names: an array of strings, or one string. A name holding a comma or a
/// control character is dropped: upstreams split `X-Forwarded-Groups` on commas, so `"staff,admins"`
/// must never become two groups.
fn groups_of(claim: Option<&serde_json::Value>) -> Vec<String> {
    let ok = |g: &&str| !g.is_empty() && !g.chars().any(|c| c == ',' || c.is_control());
    match claim {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(serde_json::Value::as_str)
            .filter(ok)
            .map(String::from)
            .collect(),
        Some(serde_json::Value::String(s)) if ok(&s.as_str()) => std::vec![s.clone()],
        _ => Vec::new(),
    }
}
