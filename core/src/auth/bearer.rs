//! Authentication by bearer token (RFC 6750): a JWT access token from a configured issuer, verified
//! through that issuer's key set (the same refresh and unknown-`kid` rules as ID tokens), cached per VM
//! by the token's SHA-256 until its `exp`.

use std::string::String;
use std::sync::Arc;

use crate::decision::{Callout, CalloutResponse, Reason, MAX_CALLOUT_BODY};
use crate::engine::Engine;
use crate::identity::mapping::identity_of;
use crate::identity::Source;
use crate::oidc::discovery::get_callout;
use crate::oidc::jwks::parse_jwks;
use crate::oidc::refresh::Provider;
use crate::oidc::verify::{peek_issuer, verify_access_token, AccessExpectations};
use crate::oidc::IdTokenError;
use crate::request::Request;
use crate::session::cache::CachedSession;
use crate::time::UnixTime;
use crate::vm::VmState;

/// Longest credential read from a header.
const MAX_CREDENTIAL: usize = crate::session::keyring::MAX_SEALED_LEN + 256;

/// What verifying a bearer token came to.
pub(crate) enum Verdict {
    /// Valid: the identity (shared with the cache).
    Valid(Arc<CachedSession>),
    /// Refused, with the reason (401 `invalid_token`).
    Invalid(Reason),
    /// Could not be decided: the IdP failed (502/504), not the token.
    Failed(u16, Reason),
    /// Send this callout, then continue as `Wait` says.
    Wait(Callout, Wait),
    /// The issuer's keys have not loaded yet (503).
    NotReady,
}

/// What a paused bearer request waits for.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Wait {
    /// A refetch of issuer `issuer`'s JWKS (unknown `kid`), then the token is verified again.
    Jwks {
        /// Index in `Config::issuers`.
        issuer: usize,
    },
    /// RFC 7662 introspection of an opaque token at bearer issuer `bearer`.
    Introspection {
        /// Index in `Config::bearer`.
        bearer: usize,
    },
}

/// The bearer credential in the first of `headers` the request carries (`Bearer <token>`, scheme
/// case-insensitive, RFC 6750 §2.1), with that header's name. `None`: none of them is there;
/// `Some((_, None))`: the first one present does not hold a usable bearer token (a later header never
/// rescues it: fail closed).
pub(crate) fn credential<'r, 'h>(
    req: &Request<'r>,
    headers: &'h [String],
) -> Option<(&'h str, Option<&'r str>)> {
    headers
        .iter()
        .find_map(|h| req.header(h).map(|v| (h.as_str(), bearer_value(v))))
}

/// RFC 6750's `b64token` characters (RFC 7235 `token68`): a table, since every byte of a kilobyte-long
/// token is checked on every request (a table lookup is a third of the comparisons' instructions).
const TOKEN68: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric()
            || matches!(c, b'-' | b'_' | b'.' | b'~' | b'+' | b'/' | b'=');
        b += 1;
    }
    t
};

/// The token of one `Bearer <token>` header value, if usable.
pub(crate) fn bearer_value(value: &str) -> Option<&str> {
    let token = value
        .get(..7)
        .filter(|s| s.eq_ignore_ascii_case("bearer "))
        .and_then(|_| value.get(7..))
        .map(|t| t.trim_matches([' ', '\t']))
        .filter(|t| {
            !t.is_empty() && t.len() <= MAX_CREDENTIAL && t.bytes().all(|b| TOKEN68[usize::from(b)])
        });
    token
}

impl Engine {
    /// Verifies a bearer token (cache first). `may_refetch`: an unknown `kid` may ask for a JWKS refetch.
    pub(crate) fn verify_bearer(
        &self,
        token: &str,
        now: UnixTime,
        vm: &mut VmState,
        may_refetch: bool,
    ) -> Verdict {
        let cfg = &*self.config;
        // The token itself is never kept: its keyed digest is the key.
        let key = cfg.keys.cache_id(token.as_bytes());
        if let Some(hit) = vm.tokens.get(&key) {
            if hit.is_valid_at(now, 0) {
                vm.token_cache_hits += 1;
                vm.metrics.count(crate::metrics::Counter::TokenCacheHits);
                return Verdict::Valid(hit);
            }
            vm.tokens.remove(&key);
        }
        vm.token_cache_misses += 1;
        vm.metrics.count(crate::metrics::Counter::TokenCacheMisses);
        if token.split('.').count() != 3 {
            // Not a JWS: an opaque token, for the issuer that introspects (if one is configured).
            return self.introspect(token, vm);
        }
        let Some(iss) = peek_issuer(token) else {
            return Verdict::Invalid(Reason::BearerRejected(IdTokenError::Malformed));
        };
        if let Some(sts) = cfg.sts.as_ref().filter(|s| s.issuer == iss) {
            return self.verify_minted(token, &key, sts, now, vm);
        }
        let Some(issuer) = cfg.bearer.iter().find(|b| b.issuer == iss) else {
            return Verdict::Invalid(Reason::BearerUnknownIssuer);
        };
        let Some(provider) = vm.provider(issuer.index).cloned() else {
            return Verdict::NotReady;
        };
        let expect = AccessExpectations {
            issuer: &issuer.issuer,
            audiences: &issuer.audiences,
            allowed_algs: &issuer.allowed_algs,
            now,
            leeway: issuer.leeway,
        };
        let v = match verify_access_token(token, &provider.jwks, &expect) {
            Ok(v) => v,
            Err(IdTokenError::UnknownKey) => {
                let src = cfg.issuers.get(issuer.index);
                let allowed = may_refetch
                    && src.is_some_and(|s| {
                        provider.may_refetch_jwks(now, s.jwks_min_refetch_interval)
                    });
                return match src.and_then(|s| {
                    get_callout(
                        &provider.metadata.jwks_uri,
                        &s.cluster,
                        s.callout_timeout_ms,
                        crate::metrics::IdpEndpoint::Jwks,
                    )
                }) {
                    Some(c) if allowed => Verdict::Wait(
                        c,
                        Wait::Jwks {
                            issuer: issuer.index,
                        },
                    ),
                    _ => Verdict::Invalid(Reason::BearerRejected(IdTokenError::UnknownKey)),
                };
            }
            Err(e) => return Verdict::Invalid(Reason::BearerRejected(e)),
        };
        let fallback = v.client_id.clone().unwrap_or_else(|| v.subject.clone());
        let expires = v.expires_at.saturating_add(issuer.leeway);
        self.admit_token(&key, &v.claims, &v.subject, &fallback, Some(expires), vm)
    }

    /// A token our own STS minted: verified with our public keys (EdDSA or ES256 only, whatever
    /// `id_token.allowed_algs` says), `aud` the STS audience.
    fn verify_minted(
        &self,
        token: &str,
        key: &str,
        sts: &crate::config::Sts,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Verdict {
        let expect = AccessExpectations {
            issuer: &sts.issuer,
            audiences: core::slice::from_ref(&sts.audience),
            allowed_algs: &[crate::oidc::Alg::EdDSA, crate::oidc::Alg::ES256],
            now,
            leeway: self.config.leeway,
        };
        match verify_access_token(token, &sts.jwks, &expect) {
            Ok(v) => {
                // Our tokens are always a user's (`sub`), never the exchange client's.
                let expires = v.expires_at.saturating_add(self.config.leeway);
                self.admit_token(key, &v.claims, &v.subject, &v.subject, Some(expires), vm)
            }
            Err(e) => Verdict::Invalid(Reason::BearerRejected(e)),
        }
    }

    /// The identity of a verified token (JWT or introspected), cached until `expires_at` (an
    /// introspection reply without `exp` is not cached).
    pub(crate) fn admit_token(
        &self,
        key: &str,
        claims: &serde_json::Map<String, serde_json::Value>,
        subject: &str,
        fallback_user: &str,
        expires_at: Option<u64>,
        vm: &mut VmState,
    ) -> Verdict {
        let identity =
            match identity_of(&self.config, claims, subject, fallback_user, Source::Bearer) {
                Ok(id) => id,
                Err(r) => return Verdict::Invalid(r),
            };
        let entry = Arc::new(CachedSession {
            upstream: Arc::from(self.identity_headers(&identity, None)),
            identity,
            issued_at: 0,
            expires_at: expires_at.unwrap_or(0),
            revocation_keys: std::vec::Vec::new(),
            refreshable: None,
        });
        if expires_at.is_some() {
            vm.tokens.insert(key, entry.clone());
        }
        Verdict::Valid(entry)
    }

    /// Installs a JWKS refetched for issuer `index` (whatever came back, the refetch time is recorded,
    /// so a flood of unknown kids costs at most one fetch per interval). `false` if it failed.
    pub(crate) fn install_refetched_jwks(
        &self,
        index: usize,
        response: CalloutResponse<'_>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Result<Arc<Provider>, (u16, Reason)> {
        let Some(current) = vm.provider(index).cloned() else {
            return Err((503, Reason::ProviderNotReady));
        };
        let fetched = match response {
            CalloutResponse::Received { status: 504, .. } => Err((504, Reason::JwksTimeout)),
            CalloutResponse::Failed => Err((502, Reason::JwksUnavailable)),
            CalloutResponse::Received { status: 200, body } if body.len() <= MAX_CALLOUT_BODY => {
                parse_jwks(body).map_err(|_| (502, Reason::JwksUnavailable))
            }
            CalloutResponse::Received { .. } => Err((502, Reason::JwksUnavailable)),
        };
        let failed = fetched.as_ref().err().copied();
        let provider = Arc::new(Provider {
            metadata: current.metadata.clone(),
            jwks: fetched.unwrap_or_else(|_| current.jwks.clone()),
            jwks_fetched_at: current.jwks_fetched_at,
            jwks_refetched_at: Some(now),
        });
        if let Some(state) = vm.issuers.get_mut(index) {
            state.provider = Some(provider.clone());
        }
        let outcome = if failed.is_some() { "failed" } else { "ok" };
        vm.metrics
            .count(crate::metrics::Counter::KeysetRefreshes(outcome));
        match failed {
            Some(e) => Err(e),
            None => Ok(provider),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::bearer_value;

    #[test]
    fn bearer_values_take_token68_characters_only() {
        let all = "AZaz09-._~+/=";
        assert_eq!(bearer_value(&std::format!("Bearer {all}")), Some(all));
        assert_eq!(bearer_value("bearer \tabc.def \t"), Some("abc.def"));
        // Every other byte value that can appear in a header string, inside the token (spaces and tabs
        // around it are trimmed).
        for b in (1u8..=127).filter(|b| !b.is_ascii_alphanumeric() && !b"-._~+/=".contains(b)) {
            let c = char::from(b);
            for v in [
                std::format!("Bearer x{c}abc"),
                std::format!("Bearer ab{c}c"),
                std::format!("Bearer abc{c}x"),
            ] {
                assert_eq!(bearer_value(&v), None, "{b:#04x} in {v:?}");
            }
        }
        assert_eq!(bearer_value("Bearer abcé"), None, "non-ASCII");
        assert_eq!(bearer_value("Bearer "), None);
        assert_eq!(bearer_value("Basic abc"), None);
    }
}
