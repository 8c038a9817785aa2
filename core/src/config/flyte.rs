//! The `flyte` section: Flyte's command-line clients read a public client configuration and the
//! authorization server's metadata (flyteadmin's own two documents) before they log in; we serve them.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;

use super::operations::health_path;
use super::{invalid, ConfigError};
use crate::request::AbsoluteUrl;

/// Flyte's public client configuration and metadata paths (flyteadmin's own, served by us).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flyte {
    /// `GET` here: `PublicClientAuthConfigResponse` as JSON; `None`: not served.
    pub client_config_path: Option<String>,
    /// `GET` here: the IdP's RFC 8414 metadata (flyteadmin's `OAuth2MetadataResponse` fields); `None`:
    /// not served.
    pub metadata_path: Option<String>,
    /// The public (PKCE) client the CLI logs in as.
    pub client_id: String,
    /// Its loopback redirect URI.
    pub redirect_uri: String,
    /// The scopes it asks for.
    pub scopes: Vec<String>,
    /// The gRPC metadata key the CLI sends its token in.
    pub authorization_metadata_key: String,
    /// The audience it asks the IdP for, if any.
    pub audience: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFlyte {
    #[serde(default = "default_client_config_path")]
    client_config_path: Option<String>,
    #[serde(default = "default_metadata_path")]
    metadata_path: Option<String>,
    client_id: String,
    #[serde(default = "default_redirect_uri")]
    redirect_uri: String,
    #[serde(default = "default_flyte_scopes")]
    scopes: Vec<String>,
    #[serde(default = "default_metadata_key")]
    authorization_metadata_key: String,
    #[serde(default)]
    audience: Option<String>,
}

fn default_client_config_path() -> Option<String> {
    Some(String::from("/config/v1/flyte_client"))
}
fn default_metadata_path() -> Option<String> {
    Some(String::from("/.well-known/oauth-authorization-server"))
}
fn default_redirect_uri() -> String {
    String::from("http://localhost:53593/callback")
}
fn default_flyte_scopes() -> Vec<String> {
    alloc::vec![String::from("all")]
}
fn default_metadata_key() -> String {
    String::from("flyte-authorization")
}

pub(super) fn printable(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && s.bytes().all(|b| (0x21..0x7f).contains(&b))
}

pub(super) fn flyte(raw: RawFlyte, prefix: &str) -> Result<Flyte, ConfigError> {
    let client_config_path =
        health_path("flyte.client_config_path", raw.client_config_path, prefix)?;
    let metadata_path = health_path("flyte.metadata_path", raw.metadata_path, prefix)?;
    if client_config_path.is_some() && client_config_path == metadata_path {
        return Err(invalid(
            "flyte.metadata_path",
            "must differ from flyte.client_config_path",
        ));
    }
    if !printable(&raw.client_id) {
        return Err(invalid("flyte.client_id", "must be a client id"));
    }
    if AbsoluteUrl::parse(&raw.redirect_uri).is_none() {
        return Err(invalid(
            "flyte.redirect_uri",
            "must be an absolute http(s) URL (flytekit listens on it)",
        ));
    }
    if let Some(i) = raw
        .scopes
        .iter()
        .position(|s| !printable(s) || s.contains('"'))
    {
        return Err(invalid(
            format!("flyte.scopes[{i}]"),
            "must be a scope token",
        ));
    }
    let key = raw.authorization_metadata_key.to_ascii_lowercase();
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(invalid(
            "flyte.authorization_metadata_key",
            "must be a header name (gRPC metadata key)",
        ));
    }
    if raw.audience.as_deref().is_some_and(|a| !printable(a)) {
        return Err(invalid("flyte.audience", "must be an audience string"));
    }
    Ok(Flyte {
        client_config_path,
        metadata_path,
        client_id: raw.client_id,
        redirect_uri: raw.redirect_uri,
        scopes: raw.scopes,
        authorization_metadata_key: key,
        audience: raw.audience,
    })
}
