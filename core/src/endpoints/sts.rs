//! The token exchange (lakeFS's STS login): a CLI that logged in at the IdP as the exchange client
//! posts the authorization code; we redeem it at the token endpoint (a callout) as that client, verify
//! the ID token (`aud` is that client), and answer either with a short-lived token of our own, signed
//! with the configured key ring (lakeFS's client shape) or with the ID token's claims as strings
//! (lakeFS's remote-authenticator shape). Our tokens are bearer tokens on every route that accepts
//! bearer tokens, and their public keys are at `{prefix}/jwks.json`.

use std::string::{String, ToString};
use std::vec::Vec;

use jwt_simple::algorithms::{ECDSAP256KeyPairLike, EdDSAKeyPairLike};
use jwt_simple::claims::{Audiences, JWTClaims};
use jwt_simple::prelude::UnixTimeStamp;
use rand_core::{CryptoRng, RngCore};
use serde_json::{Map, Value};

use crate::config::{ClientAuth, Sts, StsKey};
use crate::decision::{CalloutResponse, Decision, Reason};
use crate::engine::{Engine, Flow, Pending};
use crate::oidc::token::{exchange_request, parse_token_response, TokenClient};
use crate::oidc::verify::{verify_id_token, Expectations};
use crate::request::Request;
use crate::response;
use crate::time::UnixTime;
use crate::vm::VmState;

/// Largest exchange request body (a code, a state and a redirect URI).
pub const MAX_EXCHANGE_BODY: usize = 8 * 1024;

/// Largest field of an exchange request.
const MAX_FIELD: usize = 2048;

/// ID-token claims that describe the ID token itself, not the user: never copied into our tokens
/// (`scope`/`scp` too: an ID token's scopes are not an access token's, and must not satisfy a route's
/// scope requirement).
const TOKEN_ONLY_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "nbf",
    "jti",
    "nonce",
    "azp",
    "at_hash",
    "c_hash",
    "s_hash",
    "sid",
    "auth_time",
    "acr",
    "amr",
    "scope",
    "scp",
    "cnf",
    "act",
    "typ",
    "client_id",
];

/// An exchange paused on its token-endpoint callout.
#[derive(Debug)]
pub(crate) struct StsFlow {
    /// The remote-authenticator shape (claims), else the client shape (a token).
    remote: bool,
    /// The lifetime of the token to mint (already clamped).
    ttl: u64,
}

#[derive(serde::Deserialize)]
struct ExchangeRequest {
    code: String,
    state: String,
    redirect_uri: String,
    #[serde(default)]
    ttl_seconds: Option<Value>,
}

impl Engine {
    /// `sts.path` (`remote`: `sts.authenticator_path`): `POST` a JSON exchange request.
    pub(crate) fn sts_login(&self, req: &Request<'_>, remote: bool, vm: &mut VmState) -> Decision {
        let cfg = &*self.config;
        let Some(sts) = cfg.sts.as_ref() else {
            return self.error(req, 404, Reason::MethodNotAllowed);
        };
        if req.method != "POST" {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        let Some(body) = req.body else {
            return Decision::ReadBody {
                limit: MAX_EXCHANGE_BODY,
            };
        };
        if body.len() > MAX_EXCHANGE_BODY {
            return exchange_error(413, Reason::BodyTooLarge, "the request body is too large");
        }
        let bad = |what: &str| exchange_error(400, Reason::ExchangeRequestInvalid, what);
        let Ok(r) = crate::json::from_object::<ExchangeRequest>(body) else {
            return bad(
                "the body must be a JSON object with string fields code, state and redirect_uri",
            );
        };
        if [&r.code, &r.state, &r.redirect_uri]
            .iter()
            .any(|f| f.is_empty() || f.len() > MAX_FIELD || f.chars().any(char::is_control))
        {
            return bad("code, state and redirect_uri must be non-empty and printable");
        }
        if !sts.redirect_uris.contains(&r.redirect_uri) {
            return bad("redirect_uri is not one of the configured sts.redirect_uris");
        }
        let ttl = match r.ttl_seconds {
            None | Some(Value::Null) => sts.default_ttl,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) | None => return bad("ttl_seconds must be a positive integer"),
                Some(t) => t.min(sts.max_ttl),
            },
            Some(_) => return bad("ttl_seconds must be a positive integer"),
        };
        let verifier = sts.state_is_code_verifier.then_some(r.state.as_str());
        if verifier.is_some_and(|v| !pkce_verifier_ok(v)) {
            return bad("state must be the PKCE code verifier (43 to 128 of A-Z a-z 0-9 - . _ ~)");
        }
        let Some(provider) = vm.provider(0) else {
            return self.error(req, 503, Reason::ProviderNotReady);
        };
        let client = TokenClient {
            id: &sts.client_id,
            secret: sts.client_secret.as_ref().map_or("", |s| s.0.as_str()),
            auth: if sts.client_secret.is_some() {
                ClientAuth::ClientSecretBasic
            } else {
                ClientAuth::None
            },
        };
        let Some(callout) = exchange_request(
            cfg,
            client,
            &provider.metadata.token_endpoint,
            &r.code,
            verifier,
            &r.redirect_uri,
        ) else {
            return exchange_error(
                502,
                Reason::TokenEndpointError,
                "the token endpoint is unusable",
            );
        };
        Decision::Callout {
            callout,
            pending: Pending(std::boxed::Box::new(Flow::Sts(StsFlow { remote, ttl }))),
        }
    }

    /// The token endpoint answered an exchange.
    pub(crate) fn continue_sts(
        &self,
        flow: StsFlow,
        response: CalloutResponse<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &VmState,
    ) -> Decision {
        let cfg = &*self.config;
        let Some(sts) = cfg.sts.as_ref() else {
            return exchange_error(500, Reason::RequestMalformed, "internal error");
        };
        let body = match response {
            CalloutResponse::Received { status: 504, .. } => {
                return exchange_error(
                    504,
                    Reason::TokenEndpointTimeout,
                    "the identity provider did not answer in time",
                )
            }
            CalloutResponse::Failed
            | CalloutResponse::Received {
                status: 500..=599, ..
            } => {
                return exchange_error(
                    502,
                    Reason::TokenEndpointError,
                    "the identity provider's token endpoint failed",
                )
            }
            // invalid_grant (used, expired, wrong verifier or redirect URI), invalid_client, ...
            CalloutResponse::Received {
                status: 400..=499, ..
            } => {
                return exchange_error(
                    401,
                    Reason::ExchangeRefused,
                    "the identity provider refused the authorization code",
                )
            }
            CalloutResponse::Received { status: 200, body }
                if body.len() <= crate::decision::MAX_CALLOUT_BODY =>
            {
                body
            }
            CalloutResponse::Received { .. } => {
                return exchange_error(
                    502,
                    Reason::TokenResponseInvalid,
                    "the identity provider returned an unusable response",
                )
            }
        };
        let Some(tokens) = parse_token_response(body) else {
            return exchange_error(
                502,
                Reason::TokenResponseInvalid,
                "the identity provider returned an unusable response",
            );
        };
        let Some(provider) = vm.provider(0) else {
            return exchange_error(
                503,
                Reason::ProviderNotReady,
                "the identity provider is not reachable yet",
            );
        };
        let expect = Expectations {
            issuer: &cfg.issuer,
            client_id: &sts.client_id,
            nonce: None,
            allowed_algs: &cfg.allowed_algs,
            now,
            leeway: cfg.leeway,
        };
        let verified = match verify_id_token(&tokens.id_token.0, &provider.jwks, &expect) {
            Ok(v) => v,
            Err(e) => {
                return exchange_error(
                    401,
                    Reason::IdTokenRejected(e),
                    "the identity provider's ID token failed verification",
                )
            }
        };
        let mut claims: Map<String, Value> = verified
            .claims
            .other
            .into_iter()
            .filter(|(k, _)| !TOKEN_ONLY_CLAIMS.contains(&k.as_str()))
            .collect();
        // The same checks a login makes (verified email as the user, claim shapes): refuse here what
        // a route would refuse later.
        let identity = match crate::identity::mapping::identity_of(
            cfg,
            &claims,
            &verified.subject,
            &verified.subject,
            crate::identity::Source::Bearer,
        ) {
            Ok(id) => id,
            Err(r) => return exchange_error(403, r, r.failure_message().unwrap_or("refused")),
        };
        // An email the IdP has not verified is whatever the user typed there: it is not passed on
        // (a lakeFS mapping users by email would otherwise hand over someone else's account).
        if identity.email.is_none() {
            claims.remove(cfg.claims.email.as_str());
            claims.remove("email");
        }
        if flow.remote {
            let mut out: Map<String, Value> = claims
                .iter()
                .filter_map(|(k, v)| as_claim_string(v).map(|s| (k.clone(), Value::String(s))))
                .collect();
            out.insert(String::from("sub"), Value::String(verified.subject));
            out.insert(String::from("iss"), Value::String(cfg.issuer.clone()));
            return response::json(
                200,
                &serde_json::json!({ "claims": out }),
                Vec::new(),
                Reason::TokenExchanged,
            );
        }
        let exp = now.0.saturating_add(flow.ttl);
        claims.insert(
            String::from("client_id"),
            Value::String(sts.client_id.clone()),
        );
        let token = match mint(sts, verified.subject, claims, now.0, exp, rng) {
            Some(t) => t,
            None => return exchange_error(500, Reason::RandomnessUnavailable, "internal error"),
        };
        response::json(
            200,
            &serde_json::json!({ "token": token, "token_expiration": exp }),
            Vec::new(),
            Reason::TokenExchanged,
        )
    }

    /// `{prefix}/jwks.json`: the STS's public keys (an empty set without an STS).
    pub(crate) fn sts_jwks(&self, req: &Request<'_>) -> Decision {
        if req.method != "GET" && req.method != "HEAD" {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        let body = self.config.sts.as_ref().map_or_else(
            || String::from("{\"keys\":[]}"),
            |s| s.jwks_document.clone(),
        );
        Decision::Respond {
            status: 200,
            headers: std::vec![
                (
                    String::from("content-type"),
                    String::from("application/jwk-set+json")
                ),
                (
                    String::from("cache-control"),
                    String::from("public, max-age=300")
                ),
            ],
            body: body.into_bytes(),
            reason: Reason::MetadataServed,
            trace: crate::decision::Trace::default(),
        }
    }
}

/// Signs a token of ours with the first key: the user's claims, `sub`, `iss`, `aud`, `iat`, `exp` and
/// a random `jti`. Times come from `now` (never the signer's clock).
fn mint(
    sts: &Sts,
    subject: String,
    claims: Map<String, Value>,
    now: u64,
    exp: u64,
    rng: &mut (impl RngCore + CryptoRng),
) -> Option<String> {
    let mut jti = [0u8; 16];
    rng.try_fill_bytes(&mut jti).ok()?;
    let jwt = JWTClaims {
        issued_at: Some(UnixTimeStamp::from_secs(now)),
        expires_at: Some(UnixTimeStamp::from_secs(exp)),
        invalid_before: None,
        issuer: Some(sts.issuer.clone()),
        subject: Some(subject),
        audiences: Some(Audiences::AsString(sts.audience.clone())),
        jwt_id: Some(jti.iter().map(|b| std::format!("{b:02x}")).collect()),
        nonce: None,
        custom: claims,
    };
    match &sts.keys.first()?.key {
        StsKey::Ed25519(k) => k.sign(jwt).ok(),
        StsKey::Es256(k) => k.sign(jwt).ok(),
    }
}

/// A claim as lakeFS's remote authenticator needs it: a string. Strings as they are, numbers and
/// booleans in their JSON spelling, lists of strings comma-joined; anything else is left out.
fn as_claim_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().filter(|s| !s.contains(',')))
            .collect::<Option<Vec<&str>>>()
            .map(|parts| parts.join(",")),
        _ => None,
    }
}

/// RFC 7636 §4.1: 43 to 128 unreserved characters.
fn pkce_verifier_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// An exchange failure as lakeFS's clients read it: JSON `{"message"}` (the SDK's `Error` model) with
/// our error code beside it.
fn exchange_error(status: u16, reason: Reason, message: &str) -> Decision {
    response::json(
        status,
        &serde_json::json!({ "message": message, "error": reason.code() }),
        Vec::new(),
        reason,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_become_strings_or_are_left_out() {
        assert_eq!(
            as_claim_string(&serde_json::json!("a")).as_deref(),
            Some("a")
        );
        assert_eq!(
            as_claim_string(&serde_json::json!(true)).as_deref(),
            Some("true")
        );
        assert_eq!(
            as_claim_string(&serde_json::json!(17)).as_deref(),
            Some("17")
        );
        assert_eq!(
            as_claim_string(&serde_json::json!(["staff", "admins"])).as_deref(),
            Some("staff,admins")
        );
        // A group holding a comma would be ambiguous once joined: the list is left out.
        assert_eq!(as_claim_string(&serde_json::json!(["a,b", "c"])), None);
        assert_eq!(as_claim_string(&serde_json::json!({"x": 1})), None);
        assert_eq!(as_claim_string(&serde_json::json!(null)), None);
    }

    #[test]
    fn verifiers_are_rfc_7636() {
        assert!(pkce_verifier_ok(&"a".repeat(43)));
        assert!(pkce_verifier_ok(&"A-._~9".repeat(20)));
        assert!(!pkce_verifier_ok(&"a".repeat(42)));
        assert!(!pkce_verifier_ok(&"a".repeat(129)));
        assert!(!pkce_verifier_ok(&std::format!("{}+", "a".repeat(43))));
    }
}
