//! Opaque access tokens through OAuth 2.0 Token Introspection (RFC 7662), for the one bearer issuer
//! configured with `introspection`: a callout authenticated as the resource server (client_secret_basic),
//! `active: true` required, then `iss`, `aud` and `exp` checked as for JWTs; cached like them until `exp`.

use std::format;
use std::string::String;
use std::vec::Vec;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{Map, Value};

use crate::auth::bearer::{Verdict, Wait};
use crate::decision::{Callout, CalloutResponse, Reason, MAX_CALLOUT_BODY};
use crate::engine::Engine;
use crate::oidc::IdTokenError;
use crate::request::{encode_component, encode_pairs, AbsoluteUrl};
use crate::time::UnixTime;
use crate::vm::VmState;

impl Engine {
    /// Starts introspecting an opaque token (or refuses it when no issuer introspects).
    pub(crate) fn introspect(&self, token: &str, vm: &VmState) -> Verdict {
        let cfg = &*self.config;
        let Some((pos, b, intro)) = cfg
            .bearer
            .iter()
            .enumerate()
            .find_map(|(i, b)| b.introspection.as_ref().map(|x| (i, b, x)))
        else {
            return Verdict::Invalid(Reason::BearerRejected(IdTokenError::Malformed));
        };
        let endpoint = match &intro.endpoint {
            Some(e) => e.clone(),
            None => match vm
                .provider(b.index)
                .map(|p| p.metadata.introspection_endpoint.clone())
            {
                Some(Some(e)) => e,
                // Discovery loaded but names no introspection endpoint: nothing can vouch for the token.
                Some(None) => return Verdict::Failed(502, Reason::IntrospectionUnavailable),
                None => return Verdict::NotReady,
            },
        };
        let (Some(url), Some(src)) = (AbsoluteUrl::parse(&endpoint), cfg.issuers.get(b.index))
        else {
            return Verdict::Failed(502, Reason::IntrospectionUnavailable);
        };
        // RFC 6749 §2.3.1: id and secret form-encoded, then joined and base64-encoded.
        let basic = STANDARD.encode(format!(
            "{}:{}",
            encode_component(&intro.client_id),
            encode_component(&intro.client_secret.0)
        ));
        let callout = Callout {
            cluster: src.cluster.clone(),
            method: "POST",
            path: String::from(url.path_and_query),
            authority: String::from(url.authority),
            headers: std::vec![
                (
                    "content-type".into(),
                    "application/x-www-form-urlencoded".into()
                ),
                ("accept".into(), "application/json".into()),
                ("authorization".into(), format!("Basic {basic}")),
            ],
            body: encode_pairs(&[("token", token), ("token_type_hint", "access_token")])
                .into_bytes(),
            timeout_ms: src.callout_timeout_ms,
            endpoint: crate::metrics::IdpEndpoint::Introspection,
        };
        Verdict::Wait(callout, Wait::Introspection { bearer: pos })
    }

    /// The introspection reply for `token`.
    pub(crate) fn finish_introspection(
        &self,
        bearer: usize,
        token: &str,
        response: CalloutResponse<'_>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Verdict {
        let Some(b) = self.config.bearer.get(bearer) else {
            return Verdict::Failed(502, Reason::IntrospectionUnavailable);
        };
        let body = match response {
            CalloutResponse::Received { status: 504, .. } => {
                return Verdict::Failed(504, Reason::IntrospectionTimeout)
            }
            CalloutResponse::Received { status: 200, body } if body.len() <= MAX_CALLOUT_BODY => {
                body
            }
            _ => return Verdict::Failed(502, Reason::IntrospectionUnavailable),
        };
        let Ok(claims) = crate::json::from_object::<Map<String, Value>>(body) else {
            return Verdict::Failed(502, Reason::IntrospectionUnavailable);
        };
        // RFC 7662 §2.2: `active` is a boolean; anything but `true` is an inactive token.
        if claims.get("active") != Some(&Value::Bool(true)) {
            return Verdict::Invalid(Reason::BearerInactive);
        }
        match claims.get("iss") {
            None => {}
            Some(Value::String(iss)) if *iss == b.issuer => {}
            Some(_) => return Verdict::Invalid(Reason::BearerRejected(IdTokenError::WrongIssuer)),
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            Some(Value::String(a)) => std::vec![a.as_str()],
            Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !audiences.iter().any(|a| b.audiences.iter().any(|w| w == a)) {
            return Verdict::Invalid(Reason::BearerRejected(IdTokenError::WrongAudience));
        }
        let exp = match claims.get("exp") {
            None => None,
            Some(v) => match v.as_u64() {
                Some(e) if now.0 < e.saturating_add(b.leeway) => Some(e.saturating_add(b.leeway)),
                Some(_) => return Verdict::Invalid(Reason::BearerRejected(IdTokenError::Expired)),
                None => return Verdict::Invalid(Reason::BearerRejected(IdTokenError::Malformed)),
            },
        };
        let text = |k: &str| {
            claims
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let client = text("client_id").map(String::from);
        let Some(subject) = text("sub").map(String::from).or_else(|| client.clone()) else {
            return Verdict::Invalid(Reason::BearerRejected(IdTokenError::SubjectMissing));
        };
        let fallback = client.unwrap_or_else(|| subject.clone());
        self.admit_token(
            &self.config.keys.cache_id(token.as_bytes()),
            &claims,
            &subject,
            &fallback,
            exp,
            vm,
        )
    }
}
