//! The `cookie` section: names, attributes, lifetimes and the key ring.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::Deserialize;

use super::{host_name, invalid, ConfigError};
use crate::session::cookie::CookieAttributes;
use crate::session::keyring::{KeyRing, KeyRingError};

/// The checked section.
pub(super) struct Cookie {
    pub name: String,
    pub attributes: CookieAttributes,
    pub session_ttl: u64,
    pub login_ttl: u64,
    pub max_pending_logins: usize,
    pub keys: KeyRing,
    pub accept_client_ids: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCookie {
    #[serde(default = "default_cookie_name")]
    name: String,
    #[serde(default = "yes")]
    secure: bool,
    #[serde(default)]
    domain: Option<String>,
    #[serde(default = "default_session_ttl")]
    session_ttl_seconds: u64,
    #[serde(default = "default_login_ttl")]
    login_ttl_seconds: u64,
    #[serde(default = "default_max_pending")]
    max_pending_logins: usize,
    #[serde(default)]
    accept_client_ids: Vec<String>,
    keys: Vec<RawKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKey {
    id: String,
    secret: String,
}

fn default_cookie_name() -> String {
    "_portcullis".to_string()
}
fn yes() -> bool {
    true
}
fn default_session_ttl() -> u64 {
    8 * 3600
}
fn default_login_ttl() -> u64 {
    600
}
/// Twenty tabs restored at once all complete their logins (each attempt cookie is ~330 bytes).
fn default_max_pending() -> usize {
    20
}
fn cookie_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

fn decode_key(secret: &str) -> Option<[u8; 32]> {
    let bytes = STANDARD
        .decode(secret.trim())
        .or_else(|_| URL_SAFE_NO_PAD.decode(secret.trim()))
        .ok()?;
    bytes.try_into().ok()
}

/// Checks the section; every error names its field.
pub(super) fn cookie(c: RawCookie) -> Result<Cookie, ConfigError> {
    if !cookie_token(&c.name) {
        return Err(invalid(
            "cookie.name",
            "must be a non-empty cookie token ([A-Za-z0-9_.-])",
        ));
    }
    // Cookie name prefixes (RFC 6265bis §4.1.3): browsers drop such cookies unless the attributes fit.
    if c.name.starts_with("__Secure-") && !c.secure {
        return Err(invalid(
            "cookie.name",
            "a __Secure- cookie needs cookie.secure: true",
        ));
    }
    if c.name.starts_with("__Host-") && (!c.secure || c.domain.is_some()) {
        return Err(invalid(
            "cookie.name",
            "a __Host- cookie needs cookie.secure: true and no cookie.domain",
        ));
    }
    if let Some(d) = &c.domain {
        if !host_name(d.trim_start_matches('.')) {
            return Err(invalid(
                "cookie.domain",
                "must be a host name such as .example.com",
            ));
        }
    }
    if c.session_ttl_seconds == 0 {
        return Err(invalid(
            "cookie.session_ttl_seconds",
            "must be greater than 0",
        ));
    }
    if c.login_ttl_seconds == 0 || c.login_ttl_seconds > 3600 {
        return Err(invalid(
            "cookie.login_ttl_seconds",
            "must be between 1 and 3600",
        ));
    }
    if c.max_pending_logins == 0 || c.max_pending_logins > 50 {
        return Err(invalid(
            "cookie.max_pending_logins",
            "must be between 1 and 50",
        ));
    }
    let mut keys = Vec::with_capacity(c.keys.len());
    for (i, k) in c.keys.iter().enumerate() {
        let secret = decode_key(&k.secret).ok_or_else(|| {
            invalid(
                format!("cookie.keys[{i}].secret"),
                "must be base64 of exactly 32 bytes",
            )
        })?;
        keys.push((k.id.clone(), secret));
    }
    let keys = KeyRing::new(&keys).map_err(|e| match e {
        KeyRingError::Empty => invalid("cookie.keys", "must hold at least one key"),
        KeyRingError::BadId(id) => invalid(
            "cookie.keys[].id",
            format!("{id:?} must be 1-32 characters of [A-Za-z0-9_-]"),
        ),
        KeyRingError::DuplicateId(id) => {
            invalid("cookie.keys[].id", format!("{id:?} is used twice"))
        }
    })?;
    for (i, id) in c.accept_client_ids.iter().enumerate() {
        if id.is_empty() || id.contains('\0') {
            return Err(invalid(
                format!("cookie.accept_client_ids[{i}]"),
                "must be a non-empty client id",
            ));
        }
    }
    Ok(Cookie {
        name: c.name,
        attributes: CookieAttributes {
            secure: c.secure,
            domain: c.domain,
        },
        session_ttl: c.session_ttl_seconds,
        login_ttl: c.login_ttl_seconds,
        max_pending_logins: c.max_pending_logins,
        keys,
        accept_client_ids: c.accept_client_ids,
    })
}
