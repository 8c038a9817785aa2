//! The engine: the immutable configuration snapshot, and the request pipeline that turns requests and
//! callout replies into [`Decision`]s. Dispatch only; each step lives in its own module:
//!
//! ```text
//! handle_request(req, now, rng, vm)
//!   1. endpoints::parse          our own paths (start, callback, sign_out, userinfo, ping)
//!   2. policy::route             public | authenticate | deny (a path that cannot be normalised: 400)
//!   3. auth::authenticate        the session cookie -> an identity, or none
//!   4. identity headers          one list drives what we strip and what we set
//!   no identity -> login redirect for navigations, 401 otherwise (decided in one place)
//! handle_callout_response(pending, reply, now, rng, vm)   a paused flow continues
//! handle_timeout(now, vm) / poll_timeout(vm)               the issuers' refresh schedule
//! ```

use std::boxed::Box;
use std::format;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};

use crate::auth::bearer::{credential, Verdict, Wait};
use crate::auth::refresh::RefreshCtx;
use crate::config::{Config, ConfigError};
use crate::decision::{Callout, CalloutResponse, Decision, Header, HeaderEdits, Reason};
use crate::endpoints::Endpoint;
use crate::identity::Source;
use crate::metrics::Counter;
use crate::oidc::refresh::{RefreshOutcome, RefreshPending};
use crate::policy::navigation::{is_navigation, prefers_json};
use crate::policy::redirect::validate_redirect;
use crate::policy::requirements::Requirement;
use crate::policy::rules::{Accept, Action, Route};
use crate::request::{encode_component, Request};
use crate::response;
use crate::session::cache::CachedSession;
use crate::time::UnixTime;
use crate::vm::VmState;

pub use crate::endpoints::login::{MAX_CLEARED_PER_RESPONSE, MAX_COOKIE_BYTES};

/// The value a host creates missing shared-data keys with ([`Engine::shared_keys`]): a free claim slot,
/// an empty logout store.
pub const SHARED_INIT: &[u8] = b"free";

/// Per-request flow state, handed to the adapter with a callout and back with its reply.
#[derive(Debug)]
pub struct Pending(pub(crate) Box<Flow>);

/// A request paused on a callout.
#[derive(Debug)]
pub(crate) enum Flow {
    /// A browser login (token exchange, JWKS refetch).
    Login(crate::endpoints::login::Flow),
    /// A bearer token whose `kid` is not in its issuer's key set yet: waiting for the JWKS.
    Bearer(BearerFlow),
    /// A session's access token being renewed.
    Refresh(crate::auth::refresh::RefreshFlow),
    /// A renewal being claimed in the host's shared data.
    Claim(crate::auth::refresh::ClaimFlow),
    /// A token exchange redeeming its code.
    Sts(crate::endpoints::sts::StsFlow),
}

/// What a bearer request needs after its JWKS refetch: the token, the route, and the edits computed
/// from the request before it paused.
#[derive(Debug)]
pub(crate) struct BearerFlow {
    token: crate::session::Secret,
    wait: Wait,
    route: Route,
    method: String,
    realm: String,
    browser: bool,
    edits: HeaderEdits,
}

/// The request's view a bearer decision needs (borrowed: nothing is copied unless the request pauses).
struct BearerCtx<'a> {
    token: &'a str,
    route: &'a Route,
    method: &'a str,
    realm: &'a str,
    browser: bool,
}

/// A root (timer) callout in flight: which issuer, which step.
#[derive(Debug)]
pub struct RootPending {
    issuer: usize,
    step: RefreshPending,
}

/// What a root callout's reply led to.
#[derive(Debug, Default)]
pub struct RootStep {
    /// The next callout of the same refresh (discovery is followed by the JWKS).
    pub next: Option<(Callout, RootPending)>,
    /// A line for the host's log, if the step is worth one (never holds secrets).
    pub log: Option<LogLine>,
}

/// A log line the core asks its host to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `true` for a warning, `false` for information.
    pub warn: bool,
    /// The text.
    pub text: String,
}

/// The configuration snapshot. Cheap to clone; replaced (with a new [`VmState`]), never mutated.
#[derive(Debug, Clone)]
pub struct Engine {
    pub(crate) config: Arc<Config>,
}

impl Engine {
    /// An engine for this configuration.
    #[must_use]
    pub fn new(config: Config) -> Self {
        Engine {
            config: Arc::new(config),
        }
    }

    /// Parses the plugin JSON and builds an engine.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Config::from_json(bytes).map(Engine::new)
    }

    /// The key under which the workers of one proxy share back-channel logouts (host shared data):
    /// one per issuer and client, so two filters in one Envoy never mix theirs.
    #[must_use]
    pub fn revocations_store_key(&self) -> String {
        std::format!("portcullis/revocations/{}", self.binding_tag())
    }

    /// Every shared-data key this configuration uses (the refresh claim slots and the back-channel
    /// logout store). A host MUST create each that is missing, with [`SHARED_INIT`], when it is
    /// configured and before it serves: Envoy's compare-and-swap write to a key that does not exist yet
    /// is unconditional, so two workers' first claims on a missing slot would both succeed (and both
    /// present one refresh token, which a rotating IdP answers by revoking the grant).
    #[must_use]
    pub fn shared_keys(&self) -> Vec<String> {
        (0..crate::auth::refresh::CLAIM_SLOTS)
            .map(|i| self.claim_slot_key(i))
            .chain([self.revocations_store_key()])
            .collect()
    }

    /// A short, printable stand-in for the session binding (issuer and client id) in shared-data keys.
    pub(crate) fn binding_tag(&self) -> String {
        use sha2::Digest as _;
        let d = sha2::Sha256::digest(self.config.binding.as_bytes());
        d.iter().take(8).map(|b| std::format!("{b:02x}")).collect()
    }

    /// Fresh per-VM state for this configuration (empty caches, nothing loaded, refresh due at once).
    #[must_use]
    pub fn new_vm(&self) -> VmState {
        VmState::new(&self.config)
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Decides what to do with a downstream request (counted in `vm` by reason).
    pub fn handle_request(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        let endpoint = Endpoint::parse(req.path_only(), &self.config.prefix)
            .filter(|e| *e != Endpoint::Token || self.config.token_page)
            .or_else(|| self.health_endpoint(req.path_only()));
        let d = self.pipeline(endpoint, req, now, rng, vm);
        // Failures of the login endpoints count as login failures.
        let login = matches!(endpoint, Some(Endpoint::Start | Endpoint::Callback));
        vm.count(&d, login);
        d
    }

    fn pipeline(
        &self,
        endpoint: Option<Endpoint>,
        req: &Request<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        if req.malformed {
            return self.error(req, 400, Reason::RequestMalformed);
        }
        if let Some(endpoint) = endpoint {
            return self.endpoint(endpoint, req, now, rng, vm);
        }
        let route = match self.config.policy.route(req) {
            Ok(route) => route,
            Err(_) => return self.error(req, 400, Reason::PathInvalid),
        };
        let d = match route.action {
            Action::Public => Decision::Forward {
                request: self.upstream_edits(req, None, false, false),
                response: HeaderEdits::default(),
                reason: Reason::PublicPath,
                trace: crate::decision::Trace::default(),
            },
            Action::Deny => self.error(req, 403, Reason::RouteDenied),
            Action::Authenticate => self.authenticate(route, req, now, rng, vm),
        };
        d.traced(&route.name, None)
    }

    /// Step 3 and 4 of the pipeline: who is asking (bearer token or session, as the route accepts),
    /// then the route's requirements.
    fn authenticate(
        &self,
        route: &Route,
        req: &Request<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        let bearer = match route.accept {
            // Session routes take the token page's session token in place of the cookie (the
            // cookie is only looked at twice when a token came too, which browsers never send).
            Accept::Session => self
                .session_token_in(req)
                .filter(|_| !self.has_session_cookie(req))
                .map(|t| ("authorization", Some(t))),
            Accept::Bearer | Accept::Either => credential(req, &route.bearer_headers),
        };
        match bearer {
            Some((header, Some(token))) if self.is_session_token(token) => {
                self.session_token_request(route, req, header, token, now, vm)
            }
            // A token was sent: it alone decides (an invalid token never falls back to a session).
            Some((header, Some(token))) => {
                let keep = header == "authorization";
                let verdict = self.verify_bearer(token, now, vm, true);
                let ctx = BearerCtx {
                    token,
                    route,
                    method: req.method,
                    realm: req.authority,
                    browser: !wants_json(req),
                };
                self.decide_bearer(
                    verdict,
                    &ctx,
                    || {
                        let mut e = self.upstream_edits(req, None, keep, false);
                        strip_listed(&mut e, &route.bearer_headers, header);
                        e
                    },
                    true,
                )
            }
            Some((_, None)) => response::bearer_challenge(
                req.authority,
                401,
                Reason::BearerRejected(crate::IdTokenError::Malformed),
                None,
            ),
            None if route.accept == Accept::Bearer => {
                response::bearer_challenge(req.authority, 401, Reason::BearerMissing, None)
            }
            None => match self.session_and_cookie(req, now, vm) {
                Some((hit, cookie)) => {
                    let ctx = RefreshCtx {
                        cookie: &cookie,
                        req,
                    };
                    let forward = |h: &Arc<CachedSession>| {
                        self.admit(
                            route,
                            req.method,
                            || !wants_json(req),
                            self.upstream_edits(req, None, false, route.forward_session_cookie),
                            h,
                        )
                    };
                    self.forward_session(hit, &ctx, forward, now, vm)
                }
                None => self.unauthenticated(req, route.api, now, rng, vm),
            },
        }
    }

    /// A route request authenticated by a session token (the token page's) in a bearer header: the
    /// session it seals, exactly as if it were the cookie; the header never reaches the upstream.
    fn session_token_request(
        &self,
        route: &Route,
        req: &Request<'_>,
        header: &str,
        token: &str,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Decision {
        let Some(hit) = self.open_sealed(token, now, vm) else {
            return response::bearer_challenge(
                req.authority,
                401,
                Reason::SessionTokenRejected,
                None,
            );
        };
        // No refresh for a pasted token: the CLI would never store the renewed session, and the old
        // refresh token presented again after its rotation makes IdPs with reuse detection revoke the
        // grant (the browser's session with it). The forwarded access token may then be stale.
        let _ = (now, vm);
        let mut edits = self.upstream_edits(req, None, false, false);
        strip_listed(&mut edits, &route.bearer_headers, header);
        if !edits.remove.iter().any(|n| n.eq_ignore_ascii_case(header)) {
            edits.remove.push(String::from(header));
        }
        self.admit(route, req.method, || !wants_json(req), edits, &hit)
    }

    /// Whether the request carries a session cookie (well-formed as a set; whether it opens is
    /// another matter).
    fn has_session_cookie(&self, req: &Request<'_>) -> bool {
        crate::session::chunks::join(
            req.cookies_with_prefix(&self.config.cookie_name),
            &self.config.cookie_name,
        )
        .is_some()
    }

    /// An identity is known: the route's requirements decide (403 naming the failed one), then the
    /// identity headers are added to `edits`. `browser` is asked only for a 403 (reading `Accept`
    /// costs more than the rest of a cache hit on a browser's request).
    fn admit(
        &self,
        route: &Route,
        method: &str,
        browser: impl FnOnce() -> bool,
        mut edits: HeaderEdits,
        hit: &Arc<CachedSession>,
    ) -> Decision {
        let bearer = hit.identity.source == Source::Bearer;
        if let Err(unmet) = route.requirements.check(&hit.identity, method) {
            if bearer && unmet.requirement == Requirement::Scope {
                return response::bearer_challenge(
                    "",
                    403,
                    Reason::InsufficientScope,
                    unmet.detail.as_deref(),
                )
                .traced(&route.name, Some(&hit.identity.user));
            }
            return response::forbidden(unmet.requirement, &route.name, browser())
                .traced(&route.name, Some(&hit.identity.user));
        }
        edits.identity = Some(hit.upstream.clone());
        Decision::Forward {
            request: edits,
            response: HeaderEdits::default(),
            reason: if bearer {
                Reason::BearerAuthenticated
            } else {
                Reason::Authenticated
            },
            trace: crate::decision::Trace::default(),
        }
    }

    /// No identity: a login for top-level navigations, a 401 for everything else. The one place this
    /// is decided for session routes (bearer routes answer with a challenge in `authenticate`).
    /// `api`: the route is an API route, which never redirects.
    fn unauthenticated(
        &self,
        req: &Request<'_>,
        api: bool,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &VmState,
    ) -> Decision {
        let return_to = validate_redirect(req.path, &[]).unwrap_or_else(|| String::from("/"));
        if !api && is_navigation(req) {
            return self.begin_login(req, return_to, now, rng, vm);
        }
        self.login_required(req, &return_to)
    }

    /// The 401 that tells a client where a browser signs in (`login_url`, `Link: rel="login"`) and
    /// where a CLI gets a session token (`token_url`).
    pub(crate) fn login_required(&self, req: &Request<'_>, return_to: &str) -> Decision {
        response::login_required(req.authority, &self.start_url(return_to), &self.token_url())
    }

    /// `{prefix}/token`.
    pub(crate) fn token_url(&self) -> String {
        format!("{}/token", self.config.prefix)
    }

    /// The configured endpoints outside the prefix (exact match): health, Flyte's metadata, the STS.
    fn health_endpoint(&self, path: &str) -> Option<Endpoint> {
        let cfg = &*self.config;
        let h = &cfg.health;
        let is = |p: &Option<String>| p.as_deref() == Some(path);
        if is(&h.ping_path) {
            Some(Endpoint::Ping)
        } else if is(&h.ready_path) {
            Some(Endpoint::Ready)
        } else if let Some(f) = cfg
            .flyte
            .as_ref()
            .filter(|f| is(&f.client_config_path) || is(&f.metadata_path))
        {
            Some(if is(&f.client_config_path) {
                Endpoint::FlyteClientConfig
            } else {
                Endpoint::FlyteMetadata
            })
        } else if let Some(sts) = &cfg.sts {
            if is(&sts.path) {
                Some(Endpoint::StsLogin)
            } else if is(&sts.authenticator_path) {
                Some(Endpoint::StsAuthenticator)
            } else {
                None
            }
        } else {
            None
        }
    }

    fn endpoint(
        &self,
        endpoint: Endpoint,
        req: &Request<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        match endpoint {
            Endpoint::Ping => response::text(200, "OK", Reason::Ping),
            Endpoint::Ready if vm.all_issuers_ready() => response::text(200, "OK", Reason::Ready),
            Endpoint::Ready => response::text(503, "not ready", Reason::NotReady),
            Endpoint::Callback => self.callback(req, now, vm),
            Endpoint::Start => self.start(req, now, rng, vm),
            Endpoint::SignOut => self.sign_out(req, vm),
            Endpoint::UserInfo => self.userinfo(req, now, vm),
            Endpoint::BackchannelLogout => self.backchannel_logout(req, now, vm),
            Endpoint::Auth => self.auth_request(req, now, vm),
            Endpoint::Token => self.token_page(req, now, rng, vm),
            Endpoint::Jwks => self.sts_jwks(req),
            Endpoint::FlyteClientConfig => self.flyte_client_config(req),
            Endpoint::FlyteMetadata => self.flyte_metadata(req, vm),
            Endpoint::StsLogin => self.sts_login(req, false, vm),
            Endpoint::StsAuthenticator => self.sts_login(req, true, vm),
        }
    }

    /// Whether the adapter must read the status of the response on its way downstream (a host call
    /// that returns data, the dearest kind): not when it is our own reply (`known`, non-zero), nor for
    /// forwarded ones when `metrics.upstream_status` is off.
    #[must_use]
    pub fn needs_response_status(&self, known: u16) -> bool {
        known == 0 && self.config.metrics_upstream_status
    }

    /// A request the host counted with [`VmState::request_started`] has ended: `status` is what went
    /// downstream (0: no response, e.g. the client went away), after `latency_us` microseconds. Counts
    /// it (health checks and unanswered requests are not traffic) and returns its log line, if any.
    pub fn finish_request(
        &self,
        outcome: &crate::decision::Outcome,
        status: u16,
        latency_us: u64,
        vm: &mut VmState,
    ) -> Option<LogLine> {
        // Status 0: no response, or (with `metrics.upstream_status: false`) a forwarded one unread.
        let unread = status == 0 && outcome.forwarded && !self.config.metrics_upstream_status;
        let traffic = (status != 0 || unread) && !outcome.reason.is_some_and(Reason::is_health);
        vm.metrics
            .request_finished(outcome.method, status, latency_us, traffic);
        crate::audit::line(self.config.log_format, outcome, status, latency_us)
    }

    /// Continues a request after its callout's reply.
    pub fn handle_callout_response(
        &self,
        pending: Pending,
        response: CalloutResponse<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        let login = matches!(*pending.0, Flow::Login(_));
        let d = self.resume(*pending.0, response, now, rng, vm);
        vm.count(&d, login);
        d
    }

    fn resume(
        &self,
        flow: Flow,
        response: CalloutResponse<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        match flow {
            Flow::Login(flow) => self.continue_login(flow, response, now, rng, vm),
            Flow::Refresh(flow) => self.finish_refresh(flow, response, now, rng, vm),
            Flow::Sts(flow) => self.continue_sts(flow, response, now, rng, vm),
            // A callout reply never belongs to a claim; fail closed.
            Flow::Claim(_) => self.fail(500, Reason::RequestMalformed, false, std::vec::Vec::new()),
            Flow::Bearer(flow) => {
                let verdict = match flow.wait {
                    Wait::Jwks { issuer } => {
                        match self.install_refetched_jwks(issuer, response, now, vm) {
                            Ok(_) => self.verify_bearer(&flow.token.0, now, vm, false),
                            Err((status, reason)) => Verdict::Failed(status, reason),
                        }
                    }
                    Wait::Introspection { bearer } => {
                        self.finish_introspection(bearer, &flow.token.0, response, now, vm)
                    }
                };
                let ctx = BearerCtx {
                    token: &flow.token.0,
                    route: &flow.route,
                    method: &flow.method,
                    realm: &flow.realm,
                    browser: flow.browser,
                };
                self.decide_bearer(verdict, &ctx, || flow.edits, false)
                    .traced(&flow.route.name, None)
            }
        }
    }

    /// What a bearer verdict means for the request: forward (after the requirements), a challenge, an
    /// error, or a pause for a callout (`may_wait`: once per request; a second wait is refused).
    fn decide_bearer(
        &self,
        verdict: Verdict,
        ctx: &BearerCtx<'_>,
        edits: impl FnOnce() -> HeaderEdits,
        may_wait: bool,
    ) -> Decision {
        match verdict {
            Verdict::Valid(hit) => self.admit(ctx.route, ctx.method, || ctx.browser, edits(), &hit),
            Verdict::Invalid(reason) => response::bearer_challenge(ctx.realm, 401, reason, None),
            Verdict::Failed(status, reason) => self.fail(status, reason, ctx.browser, Vec::new()),
            Verdict::NotReady => self.fail(503, Reason::ProviderNotReady, ctx.browser, Vec::new()),
            Verdict::Wait(callout, wait) if may_wait => Decision::Callout {
                callout,
                pending: Pending(Box::new(Flow::Bearer(BearerFlow {
                    token: crate::session::Secret(String::from(ctx.token)),
                    wait,
                    route: ctx.route.clone(),
                    method: String::from(ctx.method),
                    realm: String::from(ctx.realm),
                    browser: ctx.browser,
                    edits: edits(),
                }))),
            },
            Verdict::Wait(..) => response::bearer_challenge(
                ctx.realm,
                401,
                Reason::BearerRejected(crate::IdTokenError::UnknownKey),
                None,
            ),
        }
    }

    // ----- the refresh schedule --------------------------------------------------------------------

    /// Called from the host's timer: the refresh callouts due now (send each, hand its reply to
    /// [`Engine::handle_root_response`]).
    pub fn handle_timeout(&self, now: UnixTime, vm: &mut VmState) -> Vec<(Callout, RootPending)> {
        // A refresh whose reply never came (its request went away): its waiters decide again.
        self.expire_refreshes(now, vm);
        let mut out = Vec::new();
        for (i, (src, state)) in self.config.issuers.iter().zip(&mut vm.issuers).enumerate() {
            if let Some((c, step)) = state.refresher.handle_timeout(src, now) {
                out.push((c, RootPending { issuer: i, step }));
            }
        }
        out
    }

    /// When [`Engine::handle_timeout`] next has work (hosts with a timer per deadline sleep until then;
    /// hosts with a periodic tick may ignore it).
    #[must_use]
    pub fn poll_timeout(&self, vm: &VmState) -> Option<UnixTime> {
        self.config
            .issuers
            .iter()
            .zip(&vm.issuers)
            .map(|(src, s)| s.refresher.next_at(src))
            .min()
    }

    /// The reply to a root callout: installs what it loaded in `vm`.
    pub fn handle_root_response(
        &self,
        pending: RootPending,
        response: CalloutResponse<'_>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> RootStep {
        let (Some(src), Some(state)) = (
            self.config.issuers.get(pending.issuer),
            vm.issuers.get_mut(pending.issuer),
        ) else {
            return RootStep::default();
        };
        let outcome = state
            .refresher
            .handle_callout_response(src, pending.step, response, now);
        match &outcome {
            RefreshOutcome::Updated(_) => vm.metrics.count(Counter::KeysetRefreshes("ok")),
            RefreshOutcome::Failed(_) => vm.metrics.count(Counter::KeysetRefreshes("failed")),
            RefreshOutcome::Next(..) => {}
        }
        match outcome {
            RefreshOutcome::Updated(provider) => {
                let first = state.provider.is_none();
                state.provider = Some(provider);
                RootStep {
                    next: None,
                    log: first.then(|| LogLine {
                        warn: false,
                        text: format!(
                            "identity provider metadata and keys loaded (issuer {})",
                            src.issuer
                        ),
                    }),
                }
            }
            RefreshOutcome::Next(c, step) => RootStep {
                next: Some((
                    c,
                    RootPending {
                        issuer: pending.issuer,
                        step,
                    },
                )),
                log: None,
            },
            RefreshOutcome::Failed(msg) => RootStep {
                next: None,
                log: Some(LogLine {
                    warn: true,
                    text: format!("provider refresh failed: {msg} (issuer {})", src.issuer),
                }),
            },
        }
    }

    // ----- shared helpers ----------------------------------------------------------------------------

    pub(crate) fn start_url(&self, return_to: &str) -> String {
        format!(
            "{}/start?rd={}",
            self.config.prefix,
            encode_component(return_to)
        )
    }

    pub(crate) fn error(&self, req: &Request<'_>, status: u16, reason: Reason) -> Decision {
        self.fail(status, reason, !wants_json(req), Vec::new())
    }

    pub(crate) fn fail(
        &self,
        status: u16,
        reason: Reason,
        browser: bool,
        extra: Vec<Header>,
    ) -> Decision {
        response::error(
            status,
            reason,
            reason.failure_message().unwrap_or("error"),
            browser,
            &self.start_url("/"),
            extra,
        )
    }
}

/// The route's other bearer headers (those that did not carry the credential) never reach the
/// upstream: nothing verified them. The deciding header is the caller's to keep or strip.
fn strip_listed(edits: &mut HeaderEdits, listed: &[String], decided: &str) {
    for h in listed.iter().filter(|h| h.as_str() != decided) {
        if !edits.remove.iter().any(|n| n.eq_ignore_ascii_case(h)) {
            edits.remove.push(h.clone());
        }
    }
}

/// API clients get JSON errors; browsers get HTML.
pub(crate) fn wants_json(req: &Request<'_>) -> bool {
    req.header("accept").is_some_and(prefers_json)
        || req
            .header("x-requested-with")
            .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"))
}
