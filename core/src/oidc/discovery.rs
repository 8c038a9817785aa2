//! OpenID Provider metadata (OIDC Discovery 1.0).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;

use crate::decision::Callout;
use crate::metrics::IdpEndpoint;
use crate::request::AbsoluteUrl;

/// The parts of the discovery document we use.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct ProviderMetadata {
    /// Must equal the configured issuer exactly (Discovery §4.3).
    pub issuer: String,
    /// Where browsers are sent to log in.
    pub authorization_endpoint: String,
    /// Where codes are exchanged (through the IdP cluster).
    pub token_endpoint: String,
    /// The signing keys (through the IdP cluster).
    pub jwks_uri: String,
    /// RP-initiated logout (OIDC RP-Initiated Logout 1.0), if offered.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    /// The UserInfo endpoint (OIDC Core §5.3), if offered.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// The token introspection endpoint (RFC 8414 §2, RFC 7662), if offered.
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    /// PKCE methods, if advertised (we always send S256).
    #[serde(default)]
    pub code_challenge_methods_supported: Option<Vec<String>>,
    /// RFC 8414 fields we only pass on (Flyte's authorization-server metadata), kept as sent: a value
    /// of an unexpected type is dropped when served, never a reason to refuse the document.
    #[serde(default)]
    pub response_types_supported: Option<serde_json::Value>,
    /// (See `response_types_supported`.)
    #[serde(default)]
    pub scopes_supported: Option<serde_json::Value>,
    /// (See `response_types_supported`.)
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Option<serde_json::Value>,
    /// (See `response_types_supported`.)
    #[serde(default)]
    pub grant_types_supported: Option<serde_json::Value>,
    /// RFC 8628's device authorization endpoint, if offered (passed on, never called).
    #[serde(default)]
    pub device_authorization_endpoint: Option<serde_json::Value>,
}

/// Why a discovery document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiscoveryError {
    /// Not JSON, or a required field is missing.
    Malformed(String),
    /// `issuer` differs from the configured issuer (an IdP mix-up or a misconfigured cluster).
    IssuerMismatch,
    /// An endpoint is not an absolute http(s) URL.
    BadEndpoint(&'static str),
}

/// The discovery URL path for an issuer: `<issuer path>/.well-known/openid-configuration`.
#[must_use]
pub fn discovery_request(issuer: &str, cluster: &str, timeout_ms: u64) -> Option<Callout> {
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    get_callout(&url, cluster, timeout_ms, IdpEndpoint::Discovery)
}

/// A GET callout to an absolute URL through `cluster`.
#[must_use]
pub fn get_callout(
    url: &str,
    cluster: &str,
    timeout_ms: u64,
    endpoint: IdpEndpoint,
) -> Option<Callout> {
    let u = AbsoluteUrl::parse(url)?;
    Some(Callout {
        cluster: String::from(cluster),
        method: "GET",
        path: String::from(u.path_and_query),
        authority: String::from(u.authority),
        headers: alloc::vec![(String::from("accept"), String::from("application/json"))],
        body: Vec::new(),
        timeout_ms,
        endpoint,
    })
}

/// Parses and checks a discovery document.
pub fn parse_discovery(
    body: &[u8],
    expected_issuer: &str,
) -> Result<ProviderMetadata, DiscoveryError> {
    let m: ProviderMetadata = crate::json::from_object(body)
        .map_err(|e| DiscoveryError::Malformed(alloc::string::ToString::to_string(&e)))?;
    if m.issuer != expected_issuer {
        return Err(DiscoveryError::IssuerMismatch);
    }
    for (name, url) in [
        ("authorization_endpoint", Some(&m.authorization_endpoint)),
        ("token_endpoint", Some(&m.token_endpoint)),
        ("jwks_uri", Some(&m.jwks_uri)),
        ("end_session_endpoint", m.end_session_endpoint.as_ref()),
        ("userinfo_endpoint", m.userinfo_endpoint.as_ref()),
        ("introspection_endpoint", m.introspection_endpoint.as_ref()),
    ] {
        if let Some(u) = url {
            if AbsoluteUrl::parse(u).is_none() {
                return Err(DiscoveryError::BadEndpoint(name));
            }
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"{"issuer":"https://idp.example","authorization_endpoint":"https://idp.example/auth",
        "token_endpoint":"https://idp.example/token","jwks_uri":"https://idp.example/jwks","extra":1}"#;

    #[test]
    fn issuer_must_match_exactly() {
        assert!(parse_discovery(DOC.as_bytes(), "https://idp.example").is_ok());
        assert_eq!(
            parse_discovery(DOC.as_bytes(), "https://idp.example/"),
            Err(DiscoveryError::IssuerMismatch)
        );
        assert_eq!(
            parse_discovery(DOC.as_bytes(), "https://evil.example"),
            Err(DiscoveryError::IssuerMismatch)
        );
    }

    #[test]
    fn broken_documents_are_refused() {
        assert!(matches!(
            parse_discovery(b"<html>", "x"),
            Err(DiscoveryError::Malformed(_))
        ));
        assert!(matches!(
            parse_discovery(br#"{"issuer":"x"}"#, "x"),
            Err(DiscoveryError::Malformed(_))
        ));
        let bad = DOC.replace("https://idp.example/token", "javascript:alert(1)");
        assert_eq!(
            parse_discovery(bad.as_bytes(), "https://idp.example"),
            Err(DiscoveryError::BadEndpoint("token_endpoint"))
        );
    }

    #[test]
    fn discovery_callout_targets_the_well_known_path() {
        let c = discovery_request("https://idp.example/realms/x/", "idp", 5000).unwrap();
        assert_eq!(
            (c.path.as_str(), c.authority.as_str(), c.method),
            (
                "/realms/x/.well-known/openid-configuration",
                "idp.example",
                "GET"
            )
        );
    }
}
