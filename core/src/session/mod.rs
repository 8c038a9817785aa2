//! Sessions and login attempts, both kept by the browser in sealed cookies: the proxy holds no
//! server-side state, so any worker of any replica serves any user whose cookie its key ring opens.

pub mod cache;
pub mod chunks;
pub mod cookie;
pub mod keyring;
pub mod revocations;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::{Deserialize, Serialize};

use crate::time::UnixTime;

/// A string that never prints its contents in `Debug` (tokens, secrets, PKCE verifiers).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// The signed-in user, as sealed in the session cookie. Short field names keep the cookie small.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Session {
    /// The value of the configured user claim (default `sub`).
    #[serde(rename = "u")]
    pub user: String,
    /// `sub`.
    #[serde(rename = "s")]
    pub sub: String,
    /// `email`.
    #[serde(rename = "e", default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// `email_verified`.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
    /// `name`.
    #[serde(rename = "n", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `preferred_username`.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    /// Group names from the configured groups claim.
    #[serde(rename = "g", default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// When we issued the session.
    #[serde(rename = "i")]
    pub issued_at: u64,
    /// When it ends; checked on every request.
    #[serde(rename = "x")]
    pub expires_at: u64,
    /// The access token, kept only when it is forwarded upstream.
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<Secret>,
    /// The refresh token, kept (sealed) only when the access token is forwarded and the IdP issued one.
    #[serde(rename = "rt", default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<Secret>,
    /// When the access token expires (its `expires_in` at login or last refresh).
    #[serde(rename = "ax", default, skip_serializing_if = "Option::is_none")]
    pub access_expires_at: Option<u64>,
    /// The access token's lifetime in seconds (sets how early it is renewed).
    #[serde(rename = "al", default, skip_serializing_if = "Option::is_none")]
    pub access_lifetime: Option<u64>,
    /// Scopes granted at login (the token response's `scope`).
    #[serde(rename = "sc", default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// The IdP session (`sid` of the ID token), for back-channel logout.
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// The claims rules and mapped headers refer to (only those), by claim path.
    #[serde(rename = "c", default, skip_serializing_if = "BTreeMap::is_empty")]
    pub claims: BTreeMap<String, serde_json::Value>,
}

impl Session {
    /// Whether the session is still valid at `now` (issued not in the future beyond `leeway`).
    #[must_use]
    pub fn is_valid_at(&self, now: UnixTime, leeway: u64) -> bool {
        now.0 < self.expires_at && self.issued_at <= now.0.saturating_add(leeway)
    }
}

/// One login attempt, sealed in its own short-lived cookie so that parallel logins (several tabs) all
/// succeed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    /// The `state` sent to the IdP (compared in constant time at the callback).
    #[serde(rename = "s")]
    pub state: Secret,
    /// The `nonce` sent to the IdP (must come back in the ID token).
    #[serde(rename = "n")]
    pub nonce: Secret,
    /// The PKCE code verifier (RFC 7636).
    #[serde(rename = "v")]
    pub verifier: Secret,
    /// Where to send the browser afterwards (already validated).
    #[serde(rename = "r")]
    pub return_to: String,
    /// The `redirect_uri` used, repeated verbatim at the token endpoint (RFC 6749 §4.1.3).
    #[serde(rename = "c")]
    pub redirect_uri: String,
    /// When this attempt expires.
    #[serde(rename = "x")]
    pub expires_at: u64,
}
