//! Routing: which rule a request falls under, and what that rule asks for.

use crate::policy::path::PublicPaths;
use crate::request::Request;

/// What a route does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Forwarded without authentication (identity headers still stripped).
    Public,
    /// Forwarded only with an identity.
    Authenticate,
}

/// The configured routing policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Paths served without authentication.
    pub public_paths: PublicPaths,
}

impl Policy {
    /// The action for this request.
    #[must_use]
    pub fn route(&self, req: &Request<'_>) -> Action {
        if self.public_paths.matches(req.path_only()) {
            Action::Public
        } else {
            Action::Authenticate
        }
    }
}
