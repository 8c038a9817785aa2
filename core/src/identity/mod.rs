//! Who is asking: one [`Identity`], whether it came from a session cookie or a bearer token, and what it
//! becomes upstream.

#[cfg(feature = "oidc")]
pub(crate) mod headers;
pub mod mapping;

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use crate::session::Session;

/// How the caller proved who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A session cookie from a browser login.
    Session,
    /// A bearer JWT (or an introspected token) from a configured issuer.
    Bearer,
}

/// The authenticated caller, as rules see it and as upstream headers describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// How they authenticated.
    pub source: Source,
    /// The user (the configured user claim; for service tokens the client id).
    pub user: String,
    /// `sub` (for service tokens without one: the client id).
    pub sub: String,
    /// A verified email (or any email with `insecure_allow_unverified_email`), lower-case as given.
    pub email: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Preferred username.
    pub preferred_username: Option<String>,
    /// Group names.
    pub groups: Vec<String>,
    /// Granted scopes (`scope` string or `scp` array of a token; the token response's `scope` for a
    /// session).
    pub scopes: Vec<String>,
    /// The claims rules and header mappings refer to (only those), by claim path.
    pub claims: BTreeMap<String, serde_json::Value>,
}

impl Identity {
    /// The identity a session carries.
    #[must_use]
    pub fn of_session(s: &Session) -> Identity {
        Identity {
            source: Source::Session,
            user: s.user.clone(),
            sub: s.sub.clone(),
            email: s.email.clone(),
            name: s.name.clone(),
            preferred_username: s.preferred_username.clone(),
            groups: s.groups.clone(),
            scopes: s.scopes.clone(),
            claims: s.claims.clone(),
        }
    }
}
