//! Metrics as data. The core counts; adapters only export what [`Metrics::take`] hands them.
//!
//! The proxy-wasm ABI has no labels, so a label is spelled into the stat name as `.<label>.<value>`
//! (`oauth2_proxy_requests_total.code.200`), and Envoy's `stats_config.stats_tags` turns those segments
//! back into Prometheus labels (`oauth2_proxy_requests_total{code="200"}`). A histogram's `le` segment
//! always comes last (its values hold dots), so one regex anchored at the end extracts it.
//!
//! oauth2-proxy's three metrics keep their names, labels and default buckets (Prometheus' `DefBuckets`),
//! so its dashboards work unchanged:
//! - `oauth2_proxy_requests_total{code}`: every request but health checks, by final status;
//! - `oauth2_proxy_response_duration_seconds_bucket{method,le}` and `_count{method}`: cumulative
//!   counters per bucket (a wasm histogram would be unitless integers with Envoy's own buckets). Envoy
//!   counters are integers, so the `_sum` in seconds cannot be exported: it is
//!   `portcullis_response_duration_microseconds_sum{method}`, and the shipped Prometheus recording rule
//!   divides it into `oauth2_proxy_response_duration_seconds_sum`;
//! - `oauth2_proxy_requests_in_flight`: a gauge every VM moves by its own deltas.
//!
//! Portcullis's own are `portcullis_*` (see [`Counter`]).

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::decision::Reason;

/// Upper bounds of the latency buckets in microseconds: Prometheus' `DefBuckets` (.005 s … 10 s).
pub const BUCKETS_US: [u64; 11] = [
    5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000,
    10_000_000,
];

/// The `le` label of each bucket, spelled as Prometheus' Go client spells `DefBuckets`, then `+Inf`.
pub const BUCKET_LABELS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

/// Which IdP endpoint a callout goes to (the `endpoint` label of `portcullis_idp_requests_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum IdpEndpoint {
    /// `/.well-known/openid-configuration`.
    Discovery,
    /// `jwks_uri`.
    Jwks,
    /// The token endpoint, redeeming an authorization code.
    Token,
    /// The token endpoint, redeeming a refresh token.
    Refresh,
    /// `userinfo_endpoint`.
    Userinfo,
    /// `introspection_endpoint` (RFC 7662).
    Introspection,
}

impl IdpEndpoint {
    /// The label value.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            IdpEndpoint::Discovery => "discovery",
            IdpEndpoint::Jwks => "jwks",
            IdpEndpoint::Token => "token",
            IdpEndpoint::Refresh => "refresh",
            IdpEndpoint::Userinfo => "userinfo",
            IdpEndpoint::Introspection => "introspection",
        }
    }
}

/// How a callout ended, as the host reported it (the `outcome` label). Hosts report a timeout as a
/// `504` and a refused connection as a `503`, the way Envoy does (see [`crate::CalloutResponse`]).
#[must_use]
pub fn callout_outcome(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "ok",
        Some(504) => "timeout",
        Some(503) => "unavailable",
        Some(_) => "error",
        None => "failed",
    }
}

/// The request method as a label: lower-case like Prometheus' promhttp (oauth2-proxy), `other` for
/// anything non-standard (a client must not be able to mint label values).
#[must_use]
pub fn method_label(method: &str) -> &'static str {
    const KNOWN: [(&str, &str); 9] = [
        ("GET", "get"),
        ("POST", "post"),
        ("PUT", "put"),
        ("DELETE", "delete"),
        ("PATCH", "patch"),
        ("HEAD", "head"),
        ("OPTIONS", "options"),
        ("CONNECT", "connect"),
        ("TRACE", "trace"),
    ];
    KNOWN
        .iter()
        .find(|(m, _)| m.eq_ignore_ascii_case(method))
        .map_or("other", |(_, l)| l)
}

/// A rule name as a label value: the configuration allows `[A-Za-z0-9_.-]` and the generated names
/// hold `[`, `]`; a `.` would end the label in the stat name, so everything else becomes `_`.
fn label_value(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// One of Portcullis's own counters, with its labels.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    /// `oauth2_proxy_requests_total{code}`.
    Requests(u16),
    /// `oauth2_proxy_requests_total{code="upstream"}`: forwarded, status not read
    /// (`metrics.upstream_status: false`).
    RequestsForwarded,
    /// `portcullis_decisions_total{reason}`: every decision by its reason code.
    Decisions(&'static str),
    /// `portcullis_logins_started_total`: redirects to the IdP.
    LoginsStarted,
    /// `portcullis_logins_completed_total`: sessions issued by the callback.
    LoginsCompleted,
    /// `portcullis_logins_failed_total{reason}`: a login endpoint or flow ended in a failure.
    LoginsFailed(&'static str),
    /// `portcullis_sessions_refreshed_total`.
    SessionsRefreshed,
    /// `portcullis_session_refresh_failures_total`.
    SessionRefreshFailures,
    /// `portcullis_tokens_verified_total`: bearer tokens accepted (cached or verified now).
    TokensVerified,
    /// `portcullis_token_cache_hits_total`.
    TokenCacheHits,
    /// `portcullis_token_cache_misses_total`.
    TokenCacheMisses,
    /// `portcullis_tokens_rejected_total{reason}`.
    TokensRejected(&'static str),
    /// `portcullis_policy_denials_total{rule,requirement}` (`requirement` is the configuration field
    /// that failed, or `deny` for a deny rule).
    PolicyDenials {
        /// The rule's name as a label value.
        rule: String,
        /// The requirement's field.
        requirement: &'static str,
    },
    /// `portcullis_idp_requests_total{endpoint,outcome}`.
    IdpRequests(IdpEndpoint, &'static str),
    /// `portcullis_keyset_refreshes_total{outcome}`: JWKS loads, scheduled or on demand.
    KeysetRefreshes(&'static str),
}

impl Counter {
    /// The Envoy stat name (labels as `.<label>.<value>` segments).
    #[must_use]
    pub fn stat_name(&self) -> String {
        match self {
            Counter::Requests(code) => format!("oauth2_proxy_requests_total.code.{code}"),
            Counter::RequestsForwarded => "oauth2_proxy_requests_total.code.upstream".into(),
            Counter::Decisions(r) => format!("portcullis_decisions_total.reason.{r}"),
            Counter::LoginsStarted => "portcullis_logins_started_total".into(),
            Counter::LoginsCompleted => "portcullis_logins_completed_total".into(),
            Counter::LoginsFailed(r) => format!("portcullis_logins_failed_total.reason.{r}"),
            Counter::SessionsRefreshed => "portcullis_sessions_refreshed_total".into(),
            Counter::SessionRefreshFailures => "portcullis_session_refresh_failures_total".into(),
            Counter::TokensVerified => "portcullis_tokens_verified_total".into(),
            Counter::TokenCacheHits => "portcullis_token_cache_hits_total".into(),
            Counter::TokenCacheMisses => "portcullis_token_cache_misses_total".into(),
            Counter::TokensRejected(r) => format!("portcullis_tokens_rejected_total.reason.{r}"),
            Counter::PolicyDenials { rule, requirement } => {
                format!("portcullis_policy_denials_total.rule.{rule}.requirement.{requirement}")
            }
            Counter::IdpRequests(e, o) => format!(
                "portcullis_idp_requests_total.endpoint.{}.outcome.{o}",
                e.code()
            ),
            Counter::KeysetRefreshes(o) => format!("portcullis_keyset_refreshes_total.outcome.{o}"),
        }
    }
}

/// A latency histogram: counts per bucket (not cumulative: [`Metrics::take`] accumulates) and the sum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Histogram {
    buckets: [u64; 12],
    sum_us: u64,
}

impl Histogram {
    fn observe(&mut self, us: u64) {
        let i = BUCKETS_US.iter().position(|b| us <= *b).unwrap_or(11);
        self.buckets[i] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The cumulative bucket counts as `(le, count)`, ending with `+Inf` (= the count).
    fn cumulative(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        let mut total = 0;
        BUCKET_LABELS.iter().zip(self.buckets).map(move |(le, n)| {
            total += n;
            (*le, total)
        })
    }
}

/// What kind of stat an update is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// A monotonic counter: add `delta` (never negative).
    Counter,
    /// A gauge every VM moves by its own deltas (so the proxy's value is the sum over its VMs).
    Gauge,
}

/// One stat to move: define `name` once (as `kind`) and add `delta`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricUpdate {
    /// The Envoy stat name, labels as `.<label>.<value>` segments.
    pub name: String,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// The change since the last [`Metrics::take`].
    pub delta: i64,
}

/// The name of the in-flight gauge.
pub const IN_FLIGHT: &str = "oauth2_proxy_requests_in_flight";

/// Counts since the adapter last took them (per VM; Envoy adds up the VMs' contributions).
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    counters: BTreeMap<Counter, u64>,
    /// Response durations by method label.
    durations: BTreeMap<&'static str, Histogram>,
    /// IdP callout durations by endpoint.
    callouts: BTreeMap<IdpEndpoint, Histogram>,
    in_flight: i64,
}

impl Metrics {
    /// Adds one to `counter`.
    pub fn count(&mut self, counter: Counter) {
        *self.counters.entry(counter).or_insert(0) += 1;
    }

    /// A request started (the in-flight gauge).
    pub fn request_started(&mut self) {
        self.in_flight += 1;
    }

    /// A request ended with `status` after `duration_us`. `traffic` is false for health checks (and
    /// requests that ended without a response): they leave the request counters alone, and only the
    /// in-flight gauge, which counted them when they started, moves back.
    pub fn request_finished(&mut self, method: &str, status: u16, duration_us: u64, traffic: bool) {
        self.in_flight -= 1;
        if !traffic {
            return;
        }
        // Status 0 counts only when a forwarded response was deliberately not read.
        self.count(if status == 0 {
            Counter::RequestsForwarded
        } else {
            Counter::Requests(status)
        });
        self.durations
            .entry(method_label(method))
            .or_default()
            .observe(duration_us);
    }

    /// An IdP callout ended (`status` as the host reported it; `None`: no response).
    pub fn callout_finished(&mut self, endpoint: IdpEndpoint, status: Option<u16>, us: u64) {
        self.count(Counter::IdpRequests(endpoint, callout_outcome(status)));
        self.callouts.entry(endpoint).or_default().observe(us);
    }

    /// Counts a final decision by its reason and by the families it belongs to. `login` says the
    /// decision ends a login endpoint or flow (start, callback), so its failures are login failures;
    /// `rule` is the matched rule for a policy denial.
    /// Health checks are not traffic and count nowhere.
    pub fn decision(&mut self, reason: Reason, login: bool, rule: Option<&str>) {
        if reason.is_health() {
            return;
        }
        self.count(Counter::Decisions(reason.code()));
        let family = match reason {
            Reason::LoginStarted => Some(Counter::LoginsStarted),
            Reason::LoginCompleted => Some(Counter::LoginsCompleted),
            Reason::SessionRefreshed => Some(Counter::SessionsRefreshed),
            Reason::SessionRefreshFailed => Some(Counter::SessionRefreshFailures),
            Reason::BearerAuthenticated => Some(Counter::TokensVerified),
            Reason::BearerRejected(_) | Reason::BearerUnknownIssuer | Reason::BearerInactive => {
                Some(Counter::TokensRejected(reason.code()))
            }
            Reason::Forbidden(r) => Some(Counter::PolicyDenials {
                rule: label_value(rule.unwrap_or("default")),
                requirement: r.field(),
            }),
            Reason::InsufficientScope => Some(Counter::PolicyDenials {
                rule: label_value(rule.unwrap_or("default")),
                requirement: "scopes",
            }),
            Reason::RouteDenied => Some(Counter::PolicyDenials {
                rule: label_value(rule.unwrap_or("default")),
                requirement: "deny",
            }),
            r if login && r.is_failure() => Some(Counter::LoginsFailed(r.code())),
            _ => None,
        };
        if let Some(c) = family {
            self.count(c);
        }
    }

    /// Everything counted since the last call, as stat updates (and resets). Histograms that saw
    /// anything send every bucket, so a new method's series appear complete.
    pub fn take(&mut self) -> Vec<MetricUpdate> {
        let mut out = Vec::new();
        let counter = |name: String, delta: u64| MetricUpdate {
            name,
            kind: MetricKind::Counter,
            delta: i64::try_from(delta).unwrap_or(i64::MAX),
        };
        for (c, n) in core::mem::take(&mut self.counters) {
            out.push(counter(c.stat_name(), n));
        }
        for (method, h) in core::mem::take(&mut self.durations) {
            let base = "oauth2_proxy_response_duration_seconds";
            for (le, n) in h.cumulative() {
                out.push(counter(format!("{base}_bucket.method.{method}.le.{le}"), n));
            }
            out.push(counter(format!("{base}_count.method.{method}"), h.count()));
            out.push(counter(
                format!("portcullis_response_duration_microseconds_sum.method.{method}"),
                h.sum_us,
            ));
        }
        for (endpoint, h) in core::mem::take(&mut self.callouts) {
            let base = "portcullis_idp_request_duration_seconds";
            let e = endpoint.code();
            for (le, n) in h.cumulative() {
                out.push(counter(format!("{base}_bucket.endpoint.{e}.le.{le}"), n));
            }
            out.push(counter(format!("{base}_count.endpoint.{e}"), h.count()));
        }
        if self.in_flight != 0 {
            out.push(MetricUpdate {
                name: String::from(IN_FLIGHT),
                kind: MetricKind::Gauge,
                delta: core::mem::take(&mut self.in_flight),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::requirements::Requirement;

    fn find(updates: &[MetricUpdate], name: &str) -> Option<i64> {
        updates.iter().find(|u| u.name == name).map(|u| u.delta)
    }

    #[test]
    fn buckets_are_cumulative_with_prometheus_default_bounds() {
        let mut m = Metrics::default();
        for us in [
            0,
            5_000,
            5_001,
            99_999,
            100_000,
            10_000_000,
            10_000_001,
            u64::MAX,
        ] {
            m.request_started();
            m.request_finished("GET", 200, us, true);
        }
        let u = m.take();
        let b = |le: &str| {
            find(
                &u,
                &format!("oauth2_proxy_response_duration_seconds_bucket.method.get.le.{le}"),
            )
        };
        // 0 and exactly 5 ms fall in le=0.005 (Prometheus buckets are inclusive upper bounds).
        assert_eq!(b("0.005"), Some(2));
        assert_eq!(b("0.01"), Some(3));
        assert_eq!(b("0.05"), Some(3));
        assert_eq!(b("0.1"), Some(5));
        assert_eq!(b("10"), Some(6));
        assert_eq!(b("+Inf"), Some(8));
        assert_eq!(
            find(
                &u,
                "oauth2_proxy_response_duration_seconds_count.method.get"
            ),
            Some(8)
        );
        // The sum saturates rather than overflowing.
        assert_eq!(
            find(
                &u,
                "portcullis_response_duration_microseconds_sum.method.get"
            ),
            Some(i64::MAX)
        );
        assert_eq!(find(&u, "oauth2_proxy_requests_total.code.200"), Some(8));
        assert_eq!(u.iter().filter(|x| x.name.contains("_bucket.")).count(), 12);
        // Started and finished cancel out: no gauge update.
        assert_eq!(find(&u, IN_FLIGHT), None);
        assert!(m.take().is_empty(), "take resets");
    }

    #[test]
    fn in_flight_moves_by_deltas_and_methods_are_bounded_labels() {
        let mut m = Metrics::default();
        m.request_started();
        m.request_started();
        m.request_started();
        m.request_finished("post", 302, 1, true);
        let u = m.take();
        assert_eq!(find(&u, IN_FLIGHT), Some(2));
        assert!(u
            .iter()
            .all(|x| x.kind == MetricKind::Counter || x.name == IN_FLIGHT));
        m.request_finished("GET", 200, 1, true);
        m.request_finished("BREW\u{1b}.x", 200, 1, true);
        let u = m.take();
        assert_eq!(find(&u, IN_FLIGHT), Some(-2));
        assert!(find(
            &u,
            "oauth2_proxy_response_duration_seconds_count.method.other"
        )
        .is_some());
        assert_eq!(method_label("delete"), "delete");
        assert_eq!(method_label(""), "other");
    }

    #[test]
    fn decisions_land_in_their_families() {
        let mut m = Metrics::default();
        m.decision(Reason::LoginStarted, false, None);
        m.decision(Reason::LoginCompleted, true, None);
        m.decision(Reason::StateMismatch, true, None);
        // The same failure outside a login flow is no login failure.
        m.decision(Reason::JwksTimeout, false, None);
        m.decision(Reason::JwksTimeout, true, None);
        m.decision(Reason::BearerAuthenticated, false, None);
        m.decision(Reason::BearerUnknownIssuer, false, None);
        m.decision(
            Reason::Forbidden(Requirement::Group),
            false,
            Some("admin.ui"),
        );
        m.decision(Reason::InsufficientScope, false, Some("public_paths[0]"));
        m.decision(Reason::RouteDenied, false, None);
        m.decision(Reason::SessionRefreshed, false, None);
        m.decision(Reason::SessionRefreshFailed, false, None);
        m.decision(Reason::Authenticated, false, None);
        m.decision(Reason::Ping, false, None);
        m.decision(Reason::NotReady, false, None);
        let u = m.take();
        for (name, n) in [
            ("portcullis_logins_started_total", 1),
            ("portcullis_logins_completed_total", 1),
            ("portcullis_logins_failed_total.reason.state_mismatch", 1),
            ("portcullis_logins_failed_total.reason.jwks_timeout", 1),
            ("portcullis_decisions_total.reason.jwks_timeout", 2),
            ("portcullis_tokens_verified_total", 1),
            (
                "portcullis_tokens_rejected_total.reason.bearer_unknown_issuer",
                1,
            ),
            (
                "portcullis_policy_denials_total.rule.admin_ui.requirement.groups",
                1,
            ),
            (
                "portcullis_policy_denials_total.rule.public_paths_0_.requirement.scopes",
                1,
            ),
            (
                "portcullis_policy_denials_total.rule.default.requirement.deny",
                1,
            ),
            ("portcullis_sessions_refreshed_total", 1),
            ("portcullis_session_refresh_failures_total", 1),
            ("portcullis_decisions_total.reason.authenticated", 1),
        ] {
            assert_eq!(find(&u, name), Some(n), "{name} in {u:?}");
        }
        assert_eq!(u.len(), 12 + 11, "12 reasons, 11 family counters: {u:?}");
    }

    #[test]
    fn callouts_count_by_endpoint_and_outcome_with_latency() {
        let mut m = Metrics::default();
        m.callout_finished(IdpEndpoint::Token, Some(200), 30_000);
        m.callout_finished(IdpEndpoint::Token, Some(504), 5_000_000);
        m.callout_finished(IdpEndpoint::Jwks, Some(503), 1);
        m.callout_finished(IdpEndpoint::Userinfo, Some(401), 1);
        m.callout_finished(IdpEndpoint::Discovery, None, 1);
        let u = m.take();
        for (name, n) in [
            ("portcullis_idp_requests_total.endpoint.token.outcome.ok", 1),
            (
                "portcullis_idp_requests_total.endpoint.token.outcome.timeout",
                1,
            ),
            (
                "portcullis_idp_requests_total.endpoint.jwks.outcome.unavailable",
                1,
            ),
            (
                "portcullis_idp_requests_total.endpoint.userinfo.outcome.error",
                1,
            ),
            (
                "portcullis_idp_requests_total.endpoint.discovery.outcome.failed",
                1,
            ),
            (
                "portcullis_idp_request_duration_seconds_bucket.endpoint.token.le.0.05",
                1,
            ),
            (
                "portcullis_idp_request_duration_seconds_bucket.endpoint.token.le.2.5",
                1,
            ),
            (
                "portcullis_idp_request_duration_seconds_bucket.endpoint.token.le.5",
                2,
            ),
            (
                "portcullis_idp_request_duration_seconds_count.endpoint.token",
                2,
            ),
        ] {
            assert_eq!(find(&u, name), Some(n), "{name}");
        }
    }

    #[test]
    fn every_stat_name_splits_into_labels_the_way_the_stats_tags_do() {
        // What Envoy's stats_tags regexes assume: `<family>` then `.<label>.<value>` pairs where values
        // hold no dot, except a final `.le.<bound>`.
        let mut m = Metrics::default();
        m.decision(
            Reason::Forbidden(Requirement::EmailDomain),
            false,
            Some("a.b[1]"),
        );
        m.request_started();
        m.request_finished("GET", 404, 7, true);
        m.callout_finished(IdpEndpoint::Introspection, Some(200), 7);
        for u in m.take() {
            let name = match u.name.rsplit_once(".le.") {
                Some((head, le)) => {
                    assert!(BUCKET_LABELS.contains(&le), "{}", u.name);
                    head.into()
                }
                None => u.name.clone(),
            };
            let parts: Vec<&str> = name.split('.').collect();
            assert!(parts.len() % 2 == 1, "{}", u.name);
            let family = parts[0];
            assert!(family.starts_with("oauth2_proxy_") || family.starts_with("portcullis_"));
            assert!(family
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_' || b.is_ascii_digit()));
            for pair in parts[1..].chunks(2) {
                assert!(
                    pair[0].bytes().all(|b| b.is_ascii_lowercase()),
                    "{}",
                    u.name
                );
                assert!(
                    pair[1]
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'),
                    "{}",
                    u.name
                );
            }
        }
    }
}
