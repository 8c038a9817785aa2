//! The token request (RFC 6749 §4.1.3 + RFC 7636 §4.5) and the token response.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::Deserialize;

use crate::config::{ClientAuth, Config};
use crate::decision::Callout;
use crate::metrics::IdpEndpoint;
use crate::request::{encode_component, encode_pairs, AbsoluteUrl};
use crate::session::Secret;

/// The client a token request authenticates as: ours, or the token exchange's. (No `Debug`: it holds
/// the secret.)
#[derive(Clone, Copy)]
pub struct TokenClient<'a> {
    /// `client_id`.
    pub id: &'a str,
    /// Its secret (empty for a public client).
    pub secret: &'a str,
    /// How it authenticates.
    pub auth: ClientAuth,
}

impl<'a> TokenClient<'a> {
    /// The configured login client.
    #[must_use]
    pub fn login(config: &'a Config) -> Self {
        TokenClient {
            id: &config.client_id,
            secret: config.client_secret.as_ref().map_or("", |s| s.0.as_str()),
            auth: config.client_auth,
        }
    }
}

/// Builds the code-exchange callout to `token_endpoint` for our login client. `None` if the endpoint
/// is not a URL (cannot happen after discovery checks, but never panics).
#[must_use]
pub fn token_request(
    config: &Config,
    token_endpoint: &str,
    code: &str,
    verifier: &str,
    redirect_uri: &str,
) -> Option<Callout> {
    exchange_request(
        config,
        TokenClient::login(config),
        token_endpoint,
        code,
        Some(verifier),
        redirect_uri,
    )
}

/// The code exchange as `client` (the token exchange redeems codes another client obtained), with
/// the PKCE verifier when there is one.
#[must_use]
pub fn exchange_request(
    config: &Config,
    client: TokenClient<'_>,
    token_endpoint: &str,
    code: &str,
    verifier: Option<&str>,
    redirect_uri: &str,
) -> Option<Callout> {
    let mut form = alloc::vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    grant_request(config, client, token_endpoint, form, IdpEndpoint::Token)
}

/// Builds the refresh-token grant callout (RFC 6749 §6).
#[must_use]
pub fn refresh_request(
    config: &Config,
    token_endpoint: &str,
    refresh_token: &str,
) -> Option<Callout> {
    grant_request(
        config,
        TokenClient::login(config),
        token_endpoint,
        alloc::vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ],
        IdpEndpoint::Refresh,
    )
}

/// A token-endpoint request with this grant's form and the client's authentication.
fn grant_request<'a>(
    config: &Config,
    client: TokenClient<'a>,
    token_endpoint: &str,
    mut form: Vec<(&'a str, &'a str)>,
    endpoint: IdpEndpoint,
) -> Option<Callout> {
    let url = AbsoluteUrl::parse(token_endpoint)?;
    let mut headers = alloc::vec![
        (
            String::from("content-type"),
            String::from("application/x-www-form-urlencoded")
        ),
        (String::from("accept"), String::from("application/json")),
    ];
    match client.auth {
        ClientAuth::ClientSecretBasic => {
            // RFC 6749 §2.3.1: id and secret are form-encoded before being joined and base64-encoded.
            let pair = format!(
                "{}:{}",
                encode_component(client.id),
                encode_component(client.secret)
            );
            headers.push((
                String::from("authorization"),
                format!("Basic {}", STANDARD.encode(pair)),
            ));
        }
        ClientAuth::ClientSecretPost => {
            form.push(("client_id", client.id));
            form.push(("client_secret", client.secret));
        }
        ClientAuth::None => form.push(("client_id", client.id)),
    }
    Some(Callout {
        cluster: config.idp_cluster.clone(),
        method: "POST",
        path: String::from(url.path_and_query),
        authority: String::from(url.authority),
        headers,
        body: encode_pairs(&form).into_bytes(),
        timeout_ms: config.callout_timeout_ms,
        endpoint,
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
    /// A refresh token (RFC 6749 §6), when the IdP issued one.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// The access token's lifetime in seconds, when the IdP says.
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
}

impl TokenResponse {
    /// `expires_in` as whole seconds (a non-negative number, possibly a numeric string as some IdPs
    /// send), capped at a year.
    #[must_use]
    pub fn lifetime(&self) -> Option<u64> {
        lifetime(self.expires_in.as_ref())
    }
}

fn lifetime(v: Option<&serde_json::Value>) -> Option<u64> {
    let secs = match v? {
        serde_json::Value::Number(n) => n.as_u64(),
        serde_json::Value::String(s) => s.parse().ok(),
        _ => None,
    }?;
    Some(secs.min(365 * 24 * 3600))
}

/// A successful refresh-token grant response: a new access token, maybe a new refresh token.
#[derive(Debug, Clone, Deserialize)]
pub struct RefreshResponse {
    /// The new access token.
    pub access_token: Secret,
    /// Must be `Bearer` (case-insensitive) when present.
    #[serde(default)]
    pub token_type: Option<String>,
    /// A new refresh token (rotation), else the old one stays valid.
    #[serde(default)]
    pub refresh_token: Option<Secret>,
    /// The new access token's lifetime.
    #[serde(default)]
    pub expires_in: Option<serde_json::Value>,
}

impl RefreshResponse {
    /// `expires_in` as whole seconds (see [`TokenResponse::lifetime`]).
    #[must_use]
    pub fn lifetime(&self) -> Option<u64> {
        lifetime(self.expires_in.as_ref())
    }
}

/// Parses a 200 refresh response; `None` if it is not one we can use.
#[must_use]
pub fn parse_refresh_response(body: &[u8]) -> Option<RefreshResponse> {
    let t: RefreshResponse = crate::json::from_object(body).ok()?;
    if t.access_token.0.is_empty()
        || t.token_type
            .as_deref()
            .is_some_and(|tt| !tt.eq_ignore_ascii_case("bearer"))
    {
        return None;
    }
    Some(t)
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
