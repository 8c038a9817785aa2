//! What the core tells an adapter to do with a request.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::request::RawHeader;

/// One HTTP header, name and value.
pub type Header = (String, String);

/// Largest callout reply body the core accepts (discovery, JWKS and token responses are a few KB).
/// Adapters read at most `MAX_CALLOUT_BODY + 1` bytes, so memory stays bounded whatever the IdP sends;
/// a longer body is refused as unusable.
pub const MAX_CALLOUT_BODY: usize = 1 << 20;

/// Edits to a header map, applied in this order: `remove`, then `set` (replace), then `identity`
/// (replace), then `add` (append). This order and these semantics are the contract every adapter
/// carries out; [`HeaderEdits::apply_raw`] is its reference implementation.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct HeaderEdits {
    /// Header names to remove entirely (every value), spelled as the client sent them.
    pub remove: Vec<String>,
    /// Headers to set, replacing any existing value. Values are bytes: a `Cookie` header rebuilt without
    /// our cookies keeps the client's other cookies byte for byte.
    pub set: Vec<(String, Vec<u8>)>,
    /// More headers to set, shared with the session cache so the hot path copies nothing (the identity
    /// headers of a cached session). None of these names were present after `remove`.
    pub identity: Option<Arc<[Header]>>,
    /// Headers to append (used for `set-cookie`, which may repeat).
    pub add: Vec<Header>,
}

impl HeaderEdits {
    /// True when there is nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.remove.is_empty()
            && self.set.is_empty()
            && self.add.is_empty()
            && self.identity.as_ref().is_none_or(|i| i.is_empty())
    }

    /// `headers` with these edits applied (for hosts that rebuild the header list, and for tests).
    #[must_use]
    pub fn apply_raw(&self, headers: &[RawHeader<'_>]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out: Vec<(Vec<u8>, Vec<u8>)> = headers
            .iter()
            .filter(|(n, _)| {
                !self
                    .remove
                    .iter()
                    .any(|r| r.as_bytes().eq_ignore_ascii_case(n))
            })
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect();
        for (n, v) in self.sets() {
            out.retain(|(m, _)| !m.eq_ignore_ascii_case(n.as_bytes()));
            out.push((n.as_bytes().to_vec(), v.to_vec()));
        }
        out.extend(
            self.add
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec())),
        );
        out
    }

    /// [`HeaderEdits::apply_raw`] for string headers (values that are not UTF-8 after the edits are
    /// replaced lossily; only tests and string-only hosts use this).
    #[must_use]
    pub fn apply(&self, headers: &[Header]) -> Vec<Header> {
        let raw: Vec<RawHeader<'_>> = headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();
        self.apply_raw(&raw)
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(&n).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect()
    }

    /// Every header to set (replace), `set` then `identity`.
    pub fn sets(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.set
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_slice()))
            .chain(
                self.identity
                    .iter()
                    .flat_map(|i| i.iter())
                    .map(|(n, v)| (n.as_str(), v.as_bytes())),
            )
    }
}

/// An HTTP request the core wants the adapter to send to the IdP (an Envoy cluster).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// Upstream cluster name (Envoy) or logical name the host maps to a base URL (host-shim).
    pub cluster: String,
    /// `:method`.
    pub method: &'static str,
    /// `:path`, with query.
    pub path: String,
    /// `:authority` (the IdP's host).
    pub authority: String,
    /// Ordinary headers (no pseudo-headers).
    pub headers: Vec<Header>,
    /// Request body (empty for GET).
    pub body: Vec<u8>,
    /// How long the host waits before reporting [`CalloutResponse::Failed`].
    pub timeout_ms: u64,
    /// Which IdP endpoint this is (for `portcullis_idp_requests_total`): the host hands it back to
    /// [`crate::VmState::callout_finished`] with the reply's status and latency.
    pub endpoint: crate::metrics::IdpEndpoint,
}

/// The reply to a [`Callout`], as the host saw it. Hosts report failures the way Envoy does, so the core
/// maps them one way: a timeout is a `504` response ("upstream request timeout"), a refused or dropped
/// connection before any response a `503` ("upstream connect error ..."); `Failed` is for a reply cut
/// off after its headers, or a callout that could not be sent at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalloutResponse<'a> {
    /// An HTTP response arrived (any status, including the host's own 503/504 for connection failures
    /// and timeouts).
    Received {
        /// `:status`.
        status: u16,
        /// The body (possibly truncated by the host to a sane maximum).
        body: &'a [u8],
    },
    /// No complete response: reset after the headers, or the host could not send the callout at all.
    Failed,
}

/// An owned callout reply, for hosts that read the body into a buffer (both adapters do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalloutReply {
    /// `:status`, or `None` when no response arrived (timeout, reset, not sent).
    pub status: Option<u16>,
    /// The body.
    pub body: Vec<u8>,
}

impl CalloutReply {
    /// A reply that never came.
    #[must_use]
    pub fn failed() -> Self {
        CalloutReply::default()
    }

    /// The core's view of it.
    #[must_use]
    pub fn as_response(&self) -> CalloutResponse<'_> {
        match self.status {
            Some(status) => CalloutResponse::Received {
                status,
                body: &self.body,
            },
            None => CalloutResponse::Failed,
        }
    }
}

/// Why the core decided what it did: for logs and metrics, never shown with secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A valid session: forwarded with identity headers.
    Authenticated,
    /// The path is configured as public: forwarded without authentication.
    PublicPath,
    /// `{prefix}/ping` or the configured ping path: liveness (200).
    Ping,
    /// `{prefix}/ready` or the configured ready path, every issuer's metadata and keys loaded (200).
    Ready,
    /// `{prefix}/ready` or the configured ready path before the metadata and keys have loaded (503).
    NotReady,
    /// A browser navigation without a session: redirected to the IdP.
    LoginStarted,
    /// Not a navigation and no session: 401.
    LoginRequired,
    /// The callback succeeded: session cookie set.
    LoginCompleted,
    /// A callback whose attempt is gone (used by another tab, expired) in a browser that already holds
    /// a valid session: sent to the app rather than to an error (302).
    AlreadySignedIn,
    /// `{prefix}/sign_out`.
    SignedOut,
    /// The session's access token was renewed with its refresh token (forwarded, new cookie set).
    SessionRefreshed,
    /// The refresh token was refused or the token endpoint failed: forwarded with the old token while
    /// it lasts, else a fresh login (navigations) or 401.
    SessionRefreshFailed,
    /// A verified back-channel logout token ended an IdP session or a user's sessions (200).
    BackchannelLogout,
    /// A back-channel logout token was refused (400).
    LogoutTokenRejected(crate::oidc::LogoutTokenError),
    /// A request body larger than the endpoint accepts (413).
    BodyTooLarge,
    /// `{prefix}/userinfo` answered from the session.
    UserInfo,
    /// Discovery/JWKS not loaded yet (503).
    ProviderNotReady,
    /// Method not allowed on one of our endpoints (405).
    MethodNotAllowed,
    /// Callback without `code`/`state`, or with duplicated parameters (400).
    CallbackMalformed,
    /// The IdP redirected back with `error=` (403).
    IdpError,
    /// The callback's `iss` parameter is not our issuer (RFC 9207 mix-up defence) (400).
    IssuerMismatch,
    /// No login cookie for this state: replayed, expired in the browser, or forged (403).
    LoginCookieMissing,
    /// The login cookie did not open (tampered, foreign key) or has expired (403).
    LoginCookieInvalid,
    /// `state` differs from the one bound in the login cookie (403).
    StateMismatch,
    /// The token endpoint answered with an error status, or its reply was cut off (502).
    TokenEndpointError,
    /// The token endpoint did not answer in time (the proxy's own 504) (504).
    TokenEndpointTimeout,
    /// The token endpoint could not be reached or is overloaded (503, with `Retry-After`).
    TokenEndpointUnavailable,
    /// The token endpoint's reply was not a usable token response (502).
    TokenResponseInvalid,
    /// The ID token failed verification (403).
    IdTokenRejected(crate::IdTokenError),
    /// The JWKS refetch during a callback failed (502).
    JwksUnavailable,
    /// The JWKS refetch during a callback did not answer in time (504).
    JwksTimeout,
    /// The ID token's email is not verified and is needed as the user (403).
    EmailUnverified,
    /// `:method`, `:path`, `:authority` or `Host` is not UTF-8: the request cannot be interpreted (400).
    RequestMalformed,
    /// The host's randomness source failed (500): nothing is minted without it.
    RandomnessUnavailable,
    /// The sealed session would not fit in a cookie even without optional tokens (500).
    SessionTooLarge,
    /// A valid bearer token: forwarded with identity headers.
    BearerAuthenticated,
    /// The matching rule denies the request (403).
    RouteDenied,
    /// The path cannot be normalised (`%25`, `//`, invalid escapes, drive letters), so no rule can be
    /// matched safely (400).
    PathInvalid,
    /// A bearer-only route without a bearer token (401 with `WWW-Authenticate: Bearer`).
    BearerMissing,
    /// The bearer token failed verification (401 `invalid_token`).
    BearerRejected(crate::IdTokenError),
    /// The bearer token's issuer is not configured (401 `invalid_token`).
    BearerUnknownIssuer,
    /// Authenticated, but a requirement of the route does not hold (403).
    Forbidden(crate::policy::requirements::Requirement),
    /// A bearer token without a scope the route requires (403 `insufficient_scope`).
    InsufficientScope,
    /// The userinfo endpoint could not be reached, refused, or is not offered (502).
    UserinfoUnavailable,
    /// The userinfo endpoint did not answer in time (504).
    UserinfoTimeout,
    /// The userinfo reply is not a JSON object (502).
    UserinfoInvalid,
    /// The userinfo reply's `sub` is not the ID token's (403).
    UserinfoSubjectMismatch,
    /// Introspection says the opaque token is not active (401 `invalid_token`).
    BearerInactive,
    /// The introspection endpoint could not be reached, refused us, or answered garbage (502).
    IntrospectionUnavailable,
    /// The introspection endpoint did not answer in time (504).
    IntrospectionTimeout,
    /// `{prefix}/auth` with a valid session: 202 with the `X-Auth-Request-*` headers.
    AuthChecked,
    /// `{prefix}/token`: the session token page (or its JSON).
    SessionTokenIssued,
    /// A session token (from the token page) that does not open: tampered, expired, another key (401).
    SessionTokenRejected,
    /// A public metadata document we serve: the STS keys (`{prefix}/jwks.json`) or Flyte's client
    /// configuration and authorization-server metadata.
    MetadataServed,
    /// A token exchange (STS) minted a token, or answered the remote authenticator's claims.
    TokenExchanged,
    /// A token exchange request that is not usable: not JSON, a field missing, a redirect URI not
    /// configured (400).
    ExchangeRequestInvalid,
    /// The IdP refused the exchanged code (used, expired, wrong verifier or redirect URI) (401).
    ExchangeRefused,
    /// The token page asked for by a script or a frame rather than a top-level navigation (403).
    TokenPageRefused,
}

impl Reason {
    /// A stable snake_case code for logs, metrics and JSON error bodies.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Reason::Authenticated => "authenticated",
            Reason::PublicPath => "public_path",
            Reason::Ping => "ping",
            Reason::Ready => "ready",
            Reason::NotReady => "not_ready",
            Reason::LoginStarted => "login_started",
            Reason::LoginRequired => "login_required",
            Reason::LoginCompleted => "login_completed",
            Reason::AlreadySignedIn => "already_signed_in",
            Reason::SignedOut => "signed_out",
            Reason::SessionRefreshed => "session_refreshed",
            Reason::SessionRefreshFailed => "session_refresh_failed",
            Reason::BackchannelLogout => "backchannel_logout",
            Reason::LogoutTokenRejected(e) => e.code(),
            Reason::BodyTooLarge => "body_too_large",
            Reason::UserInfo => "userinfo",
            Reason::ProviderNotReady => "provider_not_ready",
            Reason::MethodNotAllowed => "method_not_allowed",
            Reason::CallbackMalformed => "callback_malformed",
            Reason::IdpError => "idp_error",
            Reason::IssuerMismatch => "issuer_mismatch",
            Reason::LoginCookieMissing => "login_cookie_missing",
            Reason::LoginCookieInvalid => "login_cookie_invalid",
            Reason::StateMismatch => "state_mismatch",
            Reason::TokenEndpointError => "token_endpoint_error",
            Reason::TokenEndpointTimeout => "token_endpoint_timeout",
            Reason::TokenEndpointUnavailable => "token_endpoint_unavailable",
            Reason::TokenResponseInvalid => "token_response_invalid",
            Reason::IdTokenRejected(e) => e.code(),
            Reason::JwksUnavailable => "jwks_unavailable",
            Reason::JwksTimeout => "jwks_timeout",
            Reason::EmailUnverified => "email_unverified",
            Reason::RequestMalformed => "request_malformed",
            Reason::RandomnessUnavailable => "randomness_unavailable",
            Reason::SessionTooLarge => "session_too_large",
            Reason::BearerAuthenticated => "bearer_authenticated",
            Reason::RouteDenied => "route_denied",
            Reason::PathInvalid => "path_invalid",
            Reason::BearerMissing => "bearer_missing",
            Reason::BearerRejected(e) => e.bearer_code(),
            Reason::BearerUnknownIssuer => "bearer_unknown_issuer",
            Reason::Forbidden(r) => r.code(),
            Reason::InsufficientScope => "insufficient_scope",
            Reason::UserinfoUnavailable => "userinfo_unavailable",
            Reason::UserinfoTimeout => "userinfo_timeout",
            Reason::UserinfoInvalid => "userinfo_invalid",
            Reason::UserinfoSubjectMismatch => "userinfo_sub_mismatch",
            Reason::BearerInactive => "bearer_inactive",
            Reason::IntrospectionUnavailable => "introspection_unavailable",
            Reason::IntrospectionTimeout => "introspection_timeout",
            Reason::AuthChecked => "auth_checked",
            Reason::SessionTokenIssued => "session_token_issued",
            Reason::SessionTokenRejected => "session_token_rejected",
            Reason::MetadataServed => "metadata_served",
            Reason::TokenExchanged => "token_exchanged",
            Reason::ExchangeRequestInvalid => "exchange_request_invalid",
            Reason::ExchangeRefused => "exchange_refused",
            Reason::TokenPageRefused => "token_page_refused",
        }
    }

    /// Health checks (`/ping`, `/ready`): answered before authentication, never counted as traffic.
    #[must_use]
    pub fn is_health(self) -> bool {
        matches!(self, Reason::Ping | Reason::Ready | Reason::NotReady)
    }

    /// A request let through as routine traffic (authenticated or public): no log line.
    #[must_use]
    pub fn is_plain_pass(self) -> bool {
        matches!(
            self,
            Reason::Authenticated
                | Reason::BearerAuthenticated
                | Reason::PublicPath
                // nginx and SkyPilot ask `{prefix}/auth` once per request of theirs.
                | Reason::AuthChecked
        )
    }

    /// True for outcomes an operator should see in the log (failures, not routine traffic).
    #[must_use]
    pub fn is_failure(self) -> bool {
        self.failure_message().is_some()
    }

    /// The fixed, user-facing sentence for a failure (never anything the client or IdP sent); `None`
    /// for routine outcomes. The one place that says which reasons are failures.
    #[must_use]
    pub fn failure_message(self) -> Option<&'static str> {
        Some(match self {
            Reason::Authenticated
            | Reason::PublicPath
            | Reason::Ping
            | Reason::Ready
            | Reason::LoginStarted
            | Reason::LoginRequired
            | Reason::LoginCompleted
            | Reason::AlreadySignedIn
            | Reason::SignedOut
            | Reason::SessionRefreshed
            | Reason::BackchannelLogout
            | Reason::UserInfo
            | Reason::BearerAuthenticated
            | Reason::BearerMissing
            | Reason::AuthChecked
            | Reason::SessionTokenIssued
            | Reason::MetadataServed
            | Reason::TokenExchanged => return None,
            Reason::SessionTokenRejected => "the session token is not valid or has expired",
            Reason::ExchangeRequestInvalid => "the token exchange request is not valid",
            Reason::ExchangeRefused => "the identity provider refused the authorization code",
            Reason::TokenPageRefused => "the token page opens only as a page of its own",
            Reason::RouteDenied => "access to this resource is denied",
            Reason::PathInvalid => "the request path is not valid",
            Reason::BearerRejected(_) | Reason::BearerUnknownIssuer | Reason::BearerInactive => {
                "the access token is not valid"
            }
            Reason::Forbidden(_) => "you are signed in but not allowed to access this resource",
            Reason::InsufficientScope => "the access token lacks a scope this resource requires",
            Reason::UserinfoUnavailable | Reason::UserinfoInvalid => {
                "the identity provider's user information could not be read"
            }
            Reason::UserinfoTimeout | Reason::IntrospectionTimeout => {
                "the identity provider did not answer in time"
            }
            Reason::IntrospectionUnavailable => {
                "the access token could not be checked; retry shortly"
            }
            Reason::UserinfoSubjectMismatch => {
                "the identity provider's user information is for another account"
            }
            Reason::MethodNotAllowed => "this endpoint does not accept that method",
            Reason::ProviderNotReady | Reason::NotReady => {
                "the identity provider is not reachable yet; retry shortly"
            }
            Reason::RandomnessUnavailable => "internal error",
            Reason::IdpError => "the identity provider refused the sign-in",
            Reason::IssuerMismatch => "the response came from another issuer",
            Reason::CallbackMalformed => "the sign-in response is incomplete",
            Reason::LoginCookieMissing => {
                "this sign-in was not started in this browser, or was already used"
            }
            Reason::LoginCookieInvalid => "this sign-in attempt is invalid or has expired",
            Reason::StateMismatch => "the sign-in response does not match this browser's sign-in",
            Reason::TokenEndpointError => {
                "the identity provider's token endpoint refused the exchange"
            }
            Reason::TokenEndpointTimeout | Reason::JwksTimeout => {
                "the identity provider did not answer in time"
            }
            Reason::TokenEndpointUnavailable => {
                "the identity provider cannot be reached or is overloaded; retry shortly"
            }
            Reason::EmailUnverified => {
                "the identity provider has not verified this account's email"
            }
            Reason::RequestMalformed => "the request could not be read",
            Reason::TokenResponseInvalid | Reason::JwksUnavailable => {
                "the identity provider returned an unusable response"
            }
            Reason::IdTokenRejected(_) => "the identity provider's ID token failed verification",
            Reason::SessionTooLarge => "the session is too large for a cookie",
            Reason::LogoutTokenRejected(_) => "the logout token is not valid",
            Reason::BodyTooLarge => "the request body is too large",
            Reason::SessionRefreshFailed => {
                "your session could not be renewed; please sign in again"
            }
        })
    }
}

/// Who and what a decision was about, for its log line and the policy-denial counter: the matched
/// rule and the user, where known. Empty (no allocation) for routine passes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Trace {
    /// The matched rule's name.
    pub rule: Option<String>,
    /// The authenticated user (the configured user claim), when the decision knew one.
    pub user: Option<String>,
}

/// What a host keeps of a request until it ends: begun from its first decision, updated by each later
/// one; `Engine::finish_request` turns it into the request metrics and the log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The method as a metrics label (`get`, `post`, ..., `other`).
    pub method: &'static str,
    /// `METHOD /path` (the query cut: codes and states live there) for the log line; only kept when
    /// the request may log (never for a routine pass, so the hot path allocates nothing).
    pub label: Option<String>,
    /// Why (`None`: the request ended before a final decision, e.g. the client went away).
    pub reason: Option<Reason>,
    /// Rule and user.
    pub trace: Trace,
    /// The last decision forwarded the request (the status then comes from upstream).
    pub forwarded: bool,
}

impl Default for Outcome {
    fn default() -> Self {
        Outcome {
            method: "other",
            label: None,
            reason: None,
            trace: Trace::default(),
            forwarded: false,
        }
    }
}

impl Outcome {
    /// A request's outcome from its first decision.
    #[must_use]
    pub fn begin(req: &crate::request::Request<'_>, d: &Decision) -> Outcome {
        let quiet = d
            .reason()
            .is_some_and(|r| r.is_plain_pass() || r.is_health());
        let mut o = Outcome {
            method: crate::metrics::method_label(req.method),
            label: (!quiet).then(|| alloc::format!("{} {}", req.method, req.path_only())),
            reason: None,
            trace: Trace::default(),
            forwarded: false,
        };
        o.update(d);
        o
    }

    /// A later decision of the same request (after a callout, a wait or a body read).
    pub fn update(&mut self, d: &Decision) {
        self.forwarded = matches!(d, Decision::Forward { .. });
        if let Some(r) = d.reason() {
            self.reason = Some(r);
            self.trace = d.trace().cloned().unwrap_or_default();
        }
    }
}

/// What the adapter must do with a request. Exhaustive on purpose: a new variant must break every
/// adapter's build.
#[must_use]
#[derive(Debug)]
pub enum Decision {
    /// Continue upstream. The adapter MUST apply `request` edits before forwarding and `response`
    /// edits to the upstream's response headers.
    Forward {
        /// Edits to the request headers sent upstream.
        request: HeaderEdits,
        /// Edits to the response headers sent back downstream.
        response: HeaderEdits,
        /// Why.
        reason: Reason,
        /// Rule and user, for the log line (empty for routine passes).
        trace: Trace,
    },
    /// Answer locally (redirect to the IdP, 401/403, error page). The adapter MUST NOT forward.
    Respond {
        /// HTTP status.
        status: u16,
        /// Response headers (`set-cookie` may repeat).
        headers: Vec<Header>,
        /// Response body.
        body: Vec<u8>,
        /// Why.
        reason: Reason,
        /// Rule and user, for the log line.
        trace: Trace,
    },
    /// The decision needs the request body (e.g. a back-channel logout token). The adapter MUST pause
    /// the request, read the whole body (it may stop after `limit + 1` bytes) and call
    /// `Engine::handle_request` again with [`crate::Request::body`] set.
    ReadBody {
        /// Largest body the decision will accept.
        limit: usize,
    },
    /// Before renewing a session's token, claim the renewal for this proxy in the host's process-wide
    /// shared data. The adapter MUST read shared value `key`, pass it to `Engine::claim_step`, write
    /// what that returns (if anything) with compare-and-swap, repeat on a compare-and-swap conflict
    /// (a few times), then call `Engine::handle_claim` with whether the write succeeded. A key the host
    /// finds missing it MUST first create with `SHARED_INIT` and read again: a compare-and-swap write
    /// to a missing key is unconditional in Envoy (hosts create every `Engine::shared_keys` entry when
    /// configured, so this is a fallback).
    Claim {
        /// The shared-data key.
        key: String,
        /// The flow state, handed back by value.
        pending: crate::Pending,
    },
    /// Another request of this VM is renewing this session's expired access token. The adapter MUST
    /// pause the request and, once `VmState::take_woken` returns `key`, submit it again to
    /// `Engine::handle_request` (it then forwards with the new token, or is refused).
    Wait {
        /// What the request waits for.
        key: u64,
    },
    /// Call the IdP. The adapter MUST pause the request, send `callout`, and hand the reply together with
    /// `pending` back to `Engine::handle_callout_response`. If the callout cannot be sent, it MUST report
    /// [`CalloutResponse::Failed`].
    Callout {
        /// The request to send.
        callout: Callout,
        /// The flow state, handed back by value with the reply.
        pending: crate::Pending,
    },
}

impl Decision {
    /// The reason, where the decision carries one (a callout's comes with its reply).
    #[must_use]
    pub fn reason(&self) -> Option<Reason> {
        match self {
            Decision::Forward { reason, .. } | Decision::Respond { reason, .. } => Some(*reason),
            Decision::Callout { .. }
            | Decision::ReadBody { .. }
            | Decision::Wait { .. }
            | Decision::Claim { .. } => None,
        }
    }

    /// The trace of a final decision.
    #[must_use]
    pub fn trace(&self) -> Option<&Trace> {
        match self {
            Decision::Forward { trace, .. } | Decision::Respond { trace, .. } => Some(trace),
            _ => None,
        }
    }

    /// Records the matched rule (and the user, if given) in a final decision that is not a routine
    /// pass; routine passes stay untraced, so the hot path allocates nothing.
    pub fn traced(mut self, rule: &str, user: Option<&str>) -> Self {
        if let Decision::Forward { trace, reason, .. } | Decision::Respond { trace, reason, .. } =
            &mut self
        {
            if !reason.is_plain_pass() {
                if trace.rule.is_none() {
                    trace.rule = Some(String::from(rule));
                }
                if trace.user.is_none() {
                    trace.user = user.map(String::from);
                }
            }
        }
        self
    }
}
