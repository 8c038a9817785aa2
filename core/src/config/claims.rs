//! The `claims` section: which claim paths fill the identity, the extra upstream headers, and whether
//! userinfo is fetched at login.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use serde::Deserialize;

use super::{invalid, ConfigError};
use crate::policy::headers::IDENTITY_HEADERS;

/// An identity field a mapped header can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// The user.
    User,
    /// `sub`.
    Sub,
    /// The (verified) email.
    Email,
    /// The display name.
    Name,
    /// The preferred username.
    PreferredUsername,
    /// Groups, comma-joined.
    Groups,
    /// Scopes, space-joined.
    Scopes,
}

/// Where a mapped header's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSource {
    /// An identity field (mapped and checked like the built-in headers).
    Field(Field),
    /// A claim path, as the IdP sent it.
    Claim(String),
}

/// An extra upstream header (`X-Spinnaker-User` from `email`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappedHeader {
    /// Lower-case header name.
    pub name: String,
    /// Its value's source.
    pub from: HeaderSource,
}

/// Which claims (claim paths: `user.mail`) fill the identity, and the extra headers derived from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimNames {
    /// Claim for `X-Forwarded-User` (default `sub`).
    pub user: String,
    /// Claim for the email (default `email`).
    pub email: String,
    /// Claim for groups (default `groups`): an array of strings, or one string.
    pub groups: String,
    /// Claim for the display name (default `name`).
    pub name: String,
    /// Claim for the preferred username (default `preferred_username`).
    pub preferred_username: String,
    /// Extra upstream headers.
    pub headers: Vec<MappedHeader>,
    /// Fetch the IdP's userinfo endpoint at login and add its claims (the ID token's win).
    pub userinfo: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClaims {
    #[serde(default = "c_sub")]
    user: String,
    #[serde(default = "c_email")]
    email: String,
    #[serde(default = "c_groups")]
    groups: String,
    #[serde(default = "c_name")]
    name: String,
    #[serde(default = "c_pref")]
    preferred_username: String,
    #[serde(default)]
    headers: Vec<RawMappedHeader>,
    #[serde(default)]
    userinfo: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMappedHeader {
    name: String,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    claim: Option<String>,
}

impl Default for RawClaims {
    fn default() -> Self {
        RawClaims {
            user: c_sub(),
            email: c_email(),
            groups: c_groups(),
            name: c_name(),
            preferred_username: c_pref(),
            headers: Vec::new(),
            userinfo: false,
        }
    }
}

fn c_sub() -> String {
    "sub".to_string()
}
fn c_email() -> String {
    "email".to_string()
}
fn c_groups() -> String {
    "groups".to_string()
}
fn c_name() -> String {
    "name".to_string()
}
fn c_pref() -> String {
    "preferred_username".to_string()
}
/// Parses the mapped headers.
fn mapped_headers(raw: Vec<RawMappedHeader>) -> Result<Vec<MappedHeader>, ConfigError> {
    let mut out: Vec<MappedHeader> = Vec::new();
    for (i, h) in raw.into_iter().enumerate() {
        let field = format!("claims.headers[{i}]");
        let name = h.name.to_ascii_lowercase();
        let token =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !token || name.starts_with(':') {
            return Err(invalid(
                format!("{field}.name"),
                "must be a header name ([A-Za-z0-9-])",
            ));
        }
        if matches!(
            name.as_str(),
            "cookie"
                | "host"
                | "authorization"
                | "content-length"
                | "transfer-encoding"
                | "connection"
        ) || IDENTITY_HEADERS.contains(&name.as_str())
            || out.iter().any(|o| o.name == name)
        {
            return Err(invalid(
                format!("{field}.name"),
                "is a header Portcullis or HTTP already owns, or is mapped twice",
            ));
        }
        let from = match (h.from.as_deref(), h.claim) {
            (Some(f), None) => HeaderSource::Field(match f {
                "user" => Field::User,
                "sub" => Field::Sub,
                "email" => Field::Email,
                "name" => Field::Name,
                "preferred_username" => Field::PreferredUsername,
                "groups" => Field::Groups,
                "scopes" => Field::Scopes,
                other => {
                    return Err(invalid(
                        format!("{field}.from"),
                        format!("{other:?} is not one of user, sub, email, name, preferred_username, groups, scopes"),
                    ))
                }
            }),
            (None, Some(c)) if !c.is_empty() => HeaderSource::Claim(c),
            _ => {
                return Err(invalid(
                    field,
                    "needs exactly one of from (an identity field) or claim (a claim path)",
                ))
            }
        };
        out.push(MappedHeader { name, from });
    }
    Ok(out)
}

/// Checks the section: no empty claim path, valid mapped headers.
pub(super) fn claims(raw: RawClaims) -> Result<ClaimNames, ConfigError> {
    let claims = raw;
    for (field, v) in [
        ("claims.user", &claims.user),
        ("claims.email", &claims.email),
        ("claims.groups", &claims.groups),
        ("claims.name", &claims.name),
        ("claims.preferred_username", &claims.preferred_username),
    ] {
        if v.is_empty() {
            return Err(invalid(field, "must not be empty"));
        }
    }
    let headers = mapped_headers(claims.headers)?;
    Ok(ClaimNames {
        user: claims.user,
        email: claims.email,
        groups: claims.groups,
        name: claims.name,
        preferred_username: claims.preferred_username,
        headers,
        userinfo: claims.userinfo,
    })
}
