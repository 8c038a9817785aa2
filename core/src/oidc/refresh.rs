//! The provider snapshot (discovery + JWKS) and the root-context timer that keeps it fresh.
//!
//! Every VM keeps one `Refresher` per issuer in its [`crate::vm::VmState`], driven by
//! [`crate::Engine::handle_timeout`]. It fetches discovery (unless the issuer has a static `jwks_uri`),
//! then the JWKS, and produces an immutable [`Provider`] that the engine installs in the VM state.
//! Failures back off (1 s doubling to 60 s); a good provider is kept while refreshes fail.

use std::boxed::Box;
use std::format;
use std::sync::Arc;

use crate::config::IssuerConfig;
use crate::decision::{Callout, CalloutResponse, MAX_CALLOUT_BODY};
use crate::metrics::IdpEndpoint;
use crate::oidc::discovery::{
    discovery_request, get_callout, parse_discovery, DiscoveryError, ProviderMetadata,
};
use crate::oidc::jwks::{parse_jwks, Jwks, JwksError, MAX_KEYS};
use crate::time::UnixTime;

/// What the engine knows about the IdP.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Discovery metadata.
    pub metadata: ProviderMetadata,
    /// Signing keys.
    pub jwks: Jwks,
    /// When the scheduled refresh last fetched the JWKS.
    pub jwks_fetched_at: UnixTime,
    /// When an unknown `kid` last made this VM refetch the JWKS on demand, if it has since the last
    /// scheduled load.
    pub jwks_refetched_at: Option<UnixTime>,
}

impl Provider {
    /// Whether an unknown `kid` may trigger a JWKS refetch now. Only on-demand refetches count against
    /// `min_interval`: the first unknown `kid` after a scheduled load (an IdP that has just rotated its
    /// keys) is refetched at once, so rotation costs no failed login; a flood of unknown kids costs at
    /// most one fetch per `min_interval` per VM.
    #[must_use]
    pub fn may_refetch_jwks(&self, now: UnixTime, min_interval: u64) -> bool {
        self.jwks_refetched_at
            .is_none_or(|at| now.since(at) >= min_interval)
    }
}

/// Which fetch a root callout was.
#[derive(Debug)]
pub enum RefreshPending {
    /// The discovery document.
    Discovery,
    /// The JWKS, for this metadata.
    Jwks(Box<ProviderMetadata>),
}

/// What a refresh step produced.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// A new provider to install.
    Updated(Arc<Provider>),
    /// Discovery done; this JWKS callout must be sent next.
    Next(Callout, RefreshPending),
    /// The step failed; retried after a backoff. The string is a log line (no secrets).
    Failed(std::string::String),
}

/// The refresh state machine of one VM.
#[derive(Debug, Default, Clone)]
pub struct Refresher {
    in_flight_since: Option<UnixTime>,
    next_at: UnixTime,
    backoff: u64,
    ready: bool,
}

impl Refresher {
    /// A refresher that fetches at the first timeout.
    #[must_use]
    pub fn new() -> Self {
        Refresher::default()
    }

    /// Whether a provider has been loaded at least once.
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.ready
    }

    /// When the next fetch is due, or `None` while one is in flight.
    #[must_use]
    pub fn next_at(&self, config: &IssuerConfig) -> UnixTime {
        match self.in_flight_since {
            Some(since) => since.plus(lost_after(config)),
            None => self.next_at,
        }
    }

    /// Called from the host's timer. Returns the callout to make, if one is due.
    pub fn handle_timeout(
        &mut self,
        config: &IssuerConfig,
        now: UnixTime,
    ) -> Option<(Callout, RefreshPending)> {
        if let Some(since) = self.in_flight_since {
            // A host always reports a reply or a failure; this only guards against a lost one.
            if now.since(since) < lost_after(config) {
                return None;
            }
        }
        if now < self.next_at {
            return None;
        }
        let first = match &config.jwks_uri {
            // A static key set: no discovery, only the keys.
            Some(uri) => get_callout(
                uri,
                &config.cluster,
                config.callout_timeout_ms,
                IdpEndpoint::Jwks,
            )
            .map(|c| {
                let meta = ProviderMetadata {
                    issuer: config.issuer.clone(),
                    authorization_endpoint: std::string::String::new(),
                    token_endpoint: std::string::String::new(),
                    jwks_uri: uri.clone(),
                    ..ProviderMetadata::default()
                };
                (c, RefreshPending::Jwks(Box::new(meta)))
            }),
            None => discovery_request(&config.issuer, &config.cluster, config.callout_timeout_ms)
                .map(|c| (c, RefreshPending::Discovery)),
        };
        match first {
            Some(c) => {
                self.in_flight_since = Some(now);
                Some(c)
            }
            None => {
                self.fail(now);
                None
            }
        }
    }

    /// Called with the reply to a callout from [`Refresher::handle_timeout`] or a `Next` outcome.
    pub fn handle_callout_response(
        &mut self,
        config: &IssuerConfig,
        pending: RefreshPending,
        response: CalloutResponse<'_>,
        now: UnixTime,
    ) -> RefreshOutcome {
        let body = match response {
            CalloutResponse::Received { status: 200, body } if body.len() > MAX_CALLOUT_BODY => {
                return self.failed(
                    now,
                    format!(
                        "{} body larger than {MAX_CALLOUT_BODY} bytes",
                        what(&pending)
                    ),
                );
            }
            CalloutResponse::Received { status: 200, body } => body,
            CalloutResponse::Received { status: 504, .. } => {
                return self.failed(now, format!("{} timed out (HTTP 504)", what(&pending)));
            }
            CalloutResponse::Received { status: 503, .. } => {
                return self.failed(
                    now,
                    format!(
                        "{} could not be reached or is overloaded (HTTP 503)",
                        what(&pending)
                    ),
                );
            }
            CalloutResponse::Received { status, .. } => {
                return self.failed(now, format!("{} answered HTTP {status}", what(&pending)));
            }
            CalloutResponse::Failed => {
                return self.failed(now, format!("{} reply cut off or not sent", what(&pending)))
            }
        };
        match pending {
            RefreshPending::Discovery => match parse_discovery(body, &config.issuer) {
                Ok(meta) => match get_callout(&meta.jwks_uri, &config.cluster, config.callout_timeout_ms, IdpEndpoint::Jwks) {
                    Some(c) => RefreshOutcome::Next(c, RefreshPending::Jwks(Box::new(meta))),
                    None => self.failed(now, "discovery: jwks_uri is not a URL".into()),
                },
                Err(DiscoveryError::IssuerMismatch) => self.failed(
                    now,
                    "discovery: the document's issuer is not the configured issuer (refusing the provider)".into(),
                ),
                Err(DiscoveryError::BadEndpoint(f)) => self.failed(now, format!("discovery: {f} is not an http(s) URL")),
                Err(DiscoveryError::Malformed(m)) => self.failed(now, format!("discovery: malformed document: {m}")),
            },
            RefreshPending::Jwks(metadata) => match parse_jwks(body) {
                Ok(jwks) => {
                    self.in_flight_since = None;
                    self.backoff = 0;
                    self.ready = true;
                    self.next_at = now.plus(config.refresh_interval);
                    RefreshOutcome::Updated(Arc::new(Provider { metadata: *metadata, jwks, jwks_fetched_at: now, jwks_refetched_at: None }))
                }
                Err(JwksError::Malformed) => self.failed(now, "jwks: malformed document".into()),
                Err(JwksError::TooManyKeys) => self.failed(now, format!("jwks: more than {MAX_KEYS} keys")),
                Err(JwksError::NoUsableKeys) => self.failed(now, "jwks: no usable signature keys".into()),
            },
        }
    }

    fn failed(&mut self, now: UnixTime, msg: std::string::String) -> RefreshOutcome {
        self.fail(now);
        RefreshOutcome::Failed(msg)
    }

    fn fail(&mut self, now: UnixTime) {
        self.in_flight_since = None;
        self.backoff = (self.backoff * 2).clamp(1, 60);
        self.next_at = now.plus(self.backoff);
    }
}

/// How long an in-flight fetch may go unanswered before it is presumed lost.
fn lost_after(config: &IssuerConfig) -> u64 {
    2 * config.callout_timeout_ms / 1000 + 5
}

fn what(p: &RefreshPending) -> &'static str {
    match p {
        RefreshPending::Discovery => "discovery",
        RefreshPending::Jwks(_) => "jwks",
    }
}
