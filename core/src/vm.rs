//! [`VmState`]: the one piece of per-VM mutable state an adapter holds beside the immutable
//! [`crate::Engine`]. Everything a VM learns while serving (opened sessions, each issuer's metadata and
//! keys, the refresh schedule) lives here, and only the engine changes it: adapters hold it, lend it to
//! every `handle_*` call, and install or decide nothing themselves.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::decision::Decision;
use crate::metrics::{IdpEndpoint, MetricUpdate, Metrics};

use crate::config::Config;
use crate::oidc::refresh::{Provider, Refresher};
use crate::session::cache::SessionCache;
use crate::session::revocations::Revocations;

/// One issuer's state in this VM.
#[derive(Debug, Default, Clone)]
pub(crate) struct IssuerState {
    /// Metadata and keys, once loaded.
    pub provider: Option<Arc<Provider>>,
    /// Its refresh schedule.
    pub refresher: Refresher,
}

/// Per-VM mutable state. Build it with [`crate::Engine::new_vm`]; a new configuration gets a new one.
/// The default holds nothing (for a host that has no configuration yet).
#[derive(Debug, Default, Clone)]
pub struct VmState {
    pub(crate) sessions: SessionCache,
    /// Verified bearer tokens, keyed by the token's SHA-256.
    pub(crate) tokens: SessionCache,
    pub(crate) issuers: Vec<IssuerState>,
    pub(crate) token_cache_hits: u64,
    pub(crate) token_cache_misses: u64,
    /// Access-token refreshes in flight and finished.
    pub(crate) refreshes: crate::auth::refresh::Refreshes,
    /// Sessions ended by back-channel logout (shared with the other workers through the host).
    pub(crate) revocations: Revocations,
    /// Counters, histograms and the in-flight gauge since the host last took them.
    pub(crate) metrics: Metrics,
}

impl VmState {
    pub(crate) fn new(config: &Config) -> Self {
        VmState {
            sessions: SessionCache::new(config.session_cache_size),
            tokens: SessionCache::new(config.token_cache_size),
            token_cache_hits: 0,
            token_cache_misses: 0,
            revocations: Revocations::default(),
            refreshes: crate::auth::refresh::Refreshes::default(),
            metrics: Metrics::default(),
            issuers: config
                .issuers
                .iter()
                .map(|_| IssuerState::default())
                .collect(),
        }
    }

    /// The provider (metadata and keys) of issuer `index` (0: the login issuer), once loaded.
    #[must_use]
    pub fn provider(&self, index: usize) -> Option<&Arc<Provider>> {
        self.issuers.get(index).and_then(|i| i.provider.as_ref())
    }

    /// Whether the login issuer's metadata and keys have loaded (logins can start).
    #[must_use]
    pub fn is_ready(&self) -> bool {
        self.provider(0).is_some()
    }

    /// Whether every configured issuer's metadata and keys have loaded (`/ready`).
    #[must_use]
    pub fn all_issuers_ready(&self) -> bool {
        self.issuers.iter().all(|i| i.provider.is_some())
    }

    /// Counts a final decision by its reason and families (a callout is counted when its flow ends).
    /// `login`: the decision ends a login endpoint or flow.
    pub(crate) fn count(&mut self, d: &Decision, login: bool) {
        if let Some(r) = d.reason() {
            let rule = d.trace().and_then(|t| t.rule.as_deref());
            self.metrics.decision(r, login, rule);
        }
    }

    /// A request reached the host (the in-flight gauge). Every request counted here must end in
    /// [`crate::Engine::finish_request`].
    pub fn request_started(&mut self) {
        self.metrics.request_started();
    }

    /// A callout the host sent ended: `status` as the host reported it (`None`: no response), after
    /// `latency_us` microseconds. `endpoint` is the callout's own [`crate::Callout::endpoint`].
    pub fn callout_finished(
        &mut self,
        endpoint: IdpEndpoint,
        status: Option<u16>,
        latency_us: u64,
    ) {
        self.metrics.callout_finished(endpoint, status, latency_us);
    }

    /// Every metric moved since the last call, as stat updates (hosts define each name once and add
    /// the delta; Envoy's `stats_tags` turn the `.label.value` segments into labels), and resets them.
    pub fn take_metrics(&mut self) -> Vec<MetricUpdate> {
        self.metrics.take()
    }

    /// Verified-token cache: (hits, misses, entries held).
    #[must_use]
    pub fn token_cache_stats(&self) -> (u64, u64, usize) {
        (
            self.token_cache_hits,
            self.token_cache_misses,
            self.tokens.len(),
        )
    }

    /// Whether this VM has back-channel logouts the other workers have not been given yet (the host
    /// then calls [`crate::Engine::sync_revocations`] without waiting for its timer).
    #[must_use]
    pub fn has_unpublished_revocations(&self) -> bool {
        self.revocations.has_pending()
    }

    /// The keys of [`crate::Decision::Wait`]s that can go on: the host re-submits every request it
    /// parked under one of them to `Engine::handle_request`.
    pub fn take_woken(&mut self) -> Vec<u64> {
        self.refreshes.take_woken()
    }

    /// Shared-data slots this VM waits on: the host reads each on its timer and hands the value to
    /// `Engine::handle_watched`, then resumes the requests [`VmState::take_woken`] names.
    #[must_use]
    pub fn watched_slots(&self) -> Vec<String> {
        self.refreshes.watched_slots()
    }

    /// Values to write to the host's shared data now (unconditionally: a refresh's outcome for the
    /// other workers).
    pub fn take_shared_writes(&mut self) -> Vec<(String, Vec<u8>)> {
        self.refreshes.take_writes()
    }

    /// Back-channel logouts held by this VM.
    #[must_use]
    pub fn revocations_held(&self) -> usize {
        self.revocations.len()
    }

    /// Takes in the host's process-wide store of back-channel logouts (`None`: empty) and returns its
    /// new contents when this VM has some to add. The host writes them back with compare-and-swap and,
    /// on success, calls [`VmState::revocations_published`]; on a conflict it reads and syncs again.
    /// `version` is the store's compare-and-swap value (an unchanged store is not read again).
    pub fn sync_revocations(
        &mut self,
        shared: Option<&[u8]>,
        version: u32,
        now: crate::UnixTime,
    ) -> Option<Vec<u8>> {
        self.revocations.sync(shared, version, now.0)
    }

    /// The store accepted what [`VmState::sync_revocations`] returned.
    pub fn revocations_published(&mut self) {
        self.revocations.published();
    }

    /// Opened sessions held by this VM.
    #[must_use]
    pub fn cached_sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Forgets every opened session (tests use this to force the cookie path).
    pub fn clear_session_cache(&mut self) {
        self.set_session_cache_capacity(self.sessions.capacity());
    }

    /// Replaces the session cache with an empty one of this capacity (0 disables it).
    pub fn set_session_cache_capacity(&mut self, capacity: usize) {
        self.sessions = SessionCache::new(capacity);
    }
}
