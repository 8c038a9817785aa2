//! The token request (RFC 6749 §4.1.3 + RFC 7636 §4.5) and the token response.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;

use crate::config::{ClientAuth, Config};
use crate::decision::Callout;
use crate::request::{encode_component, encode_pairs, AbsoluteUrl};
use crate::session::Secret;

/// Builds the code-exchange callout to `token_endpoint`. `None` if the endpoint is not a URL (cannot
/// happen after discovery checks, but never panics).
#[must_use]
pub fn token_request(
    config: &Config,
    token_endpoint: &str,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Option<Callout> {
    let url = AbsoluteUrl::parse(token_endpoint)?;
    let mut form: Vec<(&str, &str)> = alloc::vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
    ];
    let mut headers = alloc::vec![
        (
            String::from("content-type"),
            String::from("application/x-www-form-urlencoded")
        ),
        (String::from("accept"), String::from("application/json")),
    ];
    let secret = config.client_secret.as_ref().map_or("", |s| s.0.as_str());
    match config.client_auth {
        ClientAuth::ClientSecretBasic => {
            // RFC 6749 §2.3.1: id and secret are form-encoded before being joined and base64-encoded.
            let pair = format!(
                "{}:{}",
                encode_component(&config.client_id),
                encode_component(secret)
            );
            headers.push((
                String::from("authorization"),
                format!("Basic {}", STANDARD.encode(pair)),
            ));
        }
        ClientAuth::ClientSecretPost => {
            form.push(("client_id", &config.client_id));
            form.push(("client_secret", secret));
        }
        ClientAuth::None => form.push(("client_id", &config.client_id)),
    }
    Some(Callout {
        cluster: config.idp_cluster.clone(),
        method: "POST",
        path: String::from(url.path_and_query),
        authority: String::from(url.authority),
        headers,
        body: encode_pairs(&form).into_bytes(),
        timeout_ms: config.callout_timeout_ms,
    })
}

/// A successful token response (RFC 6749 §5.1; OIDC Core §3.1.3.3).
#[derive(Debug, Clone, Deserialize)]
pub struct TokenResponse {
    /// The ID token (required for OpenID Connect).
    pub id_token: Secret,
    /// The access token.
    #[serde(default)]
    pub access_token: Option<Secret>,
    /// Must be `Bearer` (case-insensitive) when present.
    #[serde(default)]
    pub token_type: Option<String>,
    /// The granted scopes (RFC 6749 §5.1), when the IdP says; read as a string only.
    #[serde(default)]
    pub scope: Option<serde_json::Value>,
}

/// Parses a 200 token response; `None` if it is not one we can use.
#[must_use]
pub fn parse_token_response(body: &[u8]) -> Option<TokenResponse> {
    let t: TokenResponse = crate::json::from_object(body).ok()?;
    if t.id_token.0.is_empty()
        || t.token_type
            .as_deref()
            .is_some_and(|tt| !tt.eq_ignore_ascii_case("bearer"))
    {
        return None;
    }
    Some(t)
}

/// The OAuth `error` code of an error response, reduced to safe characters for a log line.
#[must_use]
pub fn oauth_error_code(body: &[u8]) -> String {
    #[derive(Deserialize)]
    struct E {
        error: String,
    }
    crate::json::from_object::<E>(body)
        .map(|e| {
            e.error
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
                .take(64)
                .collect()
        })
        .unwrap_or_else(|_| String::from("unparseable"))
}
