//! The issuers whose keys this VM keeps: the login issuer (always index 0) and, later, every issuer of
//! bearer tokens. Each has its own discovery/JWKS refresh schedule in [`crate::vm::VmState`].

use alloc::string::String;

/// Where and how one issuer's metadata and keys are fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerConfig {
    /// `iss`, exactly.
    pub issuer: String,
    /// The Envoy cluster that reaches it.
    pub cluster: String,
    /// A static JWKS URL: discovery is skipped. `None`: discovery finds it.
    pub jwks_uri: Option<String>,
    /// Discovery + JWKS refresh period.
    pub refresh_interval: u64,
    /// Minimum time between JWKS refetches triggered by an unknown `kid`.
    pub jwks_min_refetch_interval: u64,
    /// Timeout for callouts to it.
    pub callout_timeout_ms: u64,
}
