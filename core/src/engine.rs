//! The engine: one immutable snapshot of configuration and provider state that turns requests and
//! callout replies into [`Decision`]s.

use std::boxed::Box;
use std::collections::BTreeSet;
use std::format;
use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use subtle::ConstantTimeEq;

use crate::config::{Config, ConfigError};
use crate::decision::{CalloutResponse, Decision, Header, HeaderEdits, Reason, MAX_CALLOUT_BODY};
use crate::oidc::authorize::{authorization_url, AuthorizeParams};
use crate::oidc::discovery::get_callout;
use crate::oidc::jwks::parse_jwks;
use crate::oidc::pkce::{challenge_s256, random_token};
use crate::oidc::refresh::Provider;
use crate::oidc::token::{parse_token_response, token_request, TokenResponse};
use crate::oidc::verify::{verify_id_token, Expectations, VerifiedIdToken};
use crate::oidc::IdTokenError;
use crate::policy::headers::{push_identity, spoofed_headers, strip_cookies};
use crate::policy::navigation::{is_navigation, prefers_json};
use crate::policy::redirect::validate_redirect;
use crate::request::{encode_component, encode_pairs, query_param, Request};
use crate::response;
use crate::session::cache::{CachedSession, SessionCache};
use crate::session::keyring::Purpose;
use crate::session::{LoginState, Secret, Session};
use crate::time::UnixTime;

/// Largest `name=value` we will set as one cookie (browsers keep at least 4096 bytes per cookie).
pub const MAX_COOKIE_BYTES: usize = 4000;

/// Most stale login-attempt cookies one response clears (each `Set-Cookie` is ~150 bytes, so the
/// clearing stays under ~1.5 KB whatever a client sends).
pub const MAX_CLEARED_PER_RESPONSE: usize = 8;

/// Most login-attempt cookie names read from one request.
const MAX_LOGIN_COOKIES_READ: usize = 64;

/// Per-request flow state, handed to the adapter with a callout and back with its reply.
#[derive(Debug)]
pub struct Pending(Box<State>);

#[derive(Debug)]
enum State {
    /// Waiting for the token endpoint.
    Token {
        login: LoginState,
        cookie: String,
        browser: bool,
    },
    /// Waiting for a JWKS refetch (the ID token named an unknown `kid`).
    Jwks {
        login: LoginState,
        cookie: String,
        browser: bool,
        tokens: TokenResponse,
    },
}

/// The result of a callout reply: the decision, and possibly a refreshed provider the adapter MUST
/// install for later requests (an on-demand JWKS refetch).
#[derive(Debug)]
pub struct Outcome {
    /// What to do with the paused request.
    pub decision: Decision,
    /// A newer provider snapshot, if this reply produced one.
    pub provider: Option<Arc<Provider>>,
}

/// Configuration plus the provider snapshot. Cheap to clone; replaced, never mutated.
#[derive(Debug, Clone)]
pub struct Engine {
    config: Arc<Config>,
    provider: Option<Arc<Provider>>,
}

impl Engine {
    /// An engine without provider metadata yet (login requests get 503 until one is installed).
    #[must_use]
    pub fn new(config: Config) -> Self {
        Engine {
            config: Arc::new(config),
            provider: None,
        }
    }

    /// Parses the plugin JSON and builds an engine.
    pub fn from_json(bytes: &[u8]) -> Result<Self, ConfigError> {
        Config::from_json(bytes).map(Engine::new)
    }

    /// The same configuration with a new provider snapshot.
    #[must_use]
    pub fn with_provider(&self, provider: Arc<Provider>) -> Self {
        Engine {
            config: self.config.clone(),
            provider: Some(provider),
        }
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The provider snapshot, once discovery and JWKS have loaded.
    #[must_use]
    pub fn provider(&self) -> Option<&Arc<Provider>> {
        self.provider.as_ref()
    }

    /// Decides what to do with a downstream request.
    pub fn handle_request(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        cache: &mut SessionCache,
    ) -> Decision {
        let cfg = &*self.config;
        if req.malformed {
            return self.error(req, 400, Reason::RequestMalformed);
        }
        let path = req.path_only();
        if let Some(endpoint) = path
            .strip_prefix(cfg.prefix.as_str())
            .and_then(|r| r.strip_prefix('/'))
        {
            match endpoint {
                "ping" => {
                    return Decision::Respond {
                        status: 200,
                        headers: std::vec![("content-type".into(), "text/plain".into())],
                        body: b"OK".to_vec(),
                        reason: Reason::Ping,
                    }
                }
                "callback" => return self.callback(req, now),
                "start" => return self.start(req, now, rng),
                "sign_out" => return self.sign_out(req, cache),
                "userinfo" => return self.userinfo(req, now, cache),
                _ => {}
            }
        }
        if cfg.public_paths.matches(path) {
            return Decision::Forward {
                request: self.upstream_edits(req, None),
                response: HeaderEdits::default(),
                reason: Reason::PublicPath,
            };
        }
        if let Some(hit) = self.session(req, now, cache) {
            return Decision::Forward {
                request: self.upstream_edits(req, Some(hit.upstream.clone())),
                response: HeaderEdits::default(),
                reason: Reason::Authenticated,
            };
        }
        let return_to = validate_redirect(req.path, &[]).unwrap_or_else(|| String::from("/"));
        if is_navigation(req) {
            return self.begin_login(req, return_to, now, rng);
        }
        response::login_required(req.authority, &self.start_url(&return_to))
    }

    /// Continues a request after its callout's reply.
    pub fn handle_callout_response(
        &self,
        pending: Pending,
        response: CalloutResponse<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Outcome {
        match *pending.0 {
            State::Token {
                login,
                cookie,
                browser,
            } => {
                let fail = |status, reason| Outcome {
                    decision: self.login_error(status, reason, browser, &cookie),
                    provider: None,
                };
                let body = match response {
                    // Envoy reports a callout timeout as its own 504 ("upstream request timeout").
                    CalloutResponse::Received { status: 504, .. } => {
                        return fail(504, Reason::TokenEndpointTimeout)
                    }
                    // No (complete) reply: reset mid-body, or the callout could not be sent.
                    CalloutResponse::Failed => return fail(502, Reason::TokenEndpointError),
                    // Refused connections reach us as the proxy's own 503; an overloaded IdP says 503.
                    CalloutResponse::Received { status: 503, .. } => {
                        return fail(503, Reason::TokenEndpointUnavailable)
                    }
                    CalloutResponse::Received { status: 200, body }
                        if body.len() <= MAX_CALLOUT_BODY =>
                    {
                        body
                    }
                    CalloutResponse::Received { status: 200, .. } => {
                        return fail(502, Reason::TokenResponseInvalid)
                    }
                    CalloutResponse::Received { .. } => {
                        return fail(502, Reason::TokenEndpointError)
                    }
                };
                let Some(tokens) = parse_token_response(body) else {
                    return fail(502, Reason::TokenResponseInvalid);
                };
                let Some(provider) = self.provider.clone() else {
                    return fail(503, Reason::ProviderNotReady);
                };
                self.finish_login(login, cookie, browser, tokens, &provider, true, now, rng)
            }
            State::Jwks {
                login,
                cookie,
                browser,
                tokens,
            } => {
                let Some(current) = self.provider.clone() else {
                    return Outcome {
                        decision: self.login_error(503, Reason::ProviderNotReady, browser, &cookie),
                        provider: None,
                    };
                };
                // Whatever the result, the refetch time is recorded so an unknown kid cannot make us
                // refetch more than once per interval.
                let fetched = match response {
                    CalloutResponse::Received { status: 504, .. } => {
                        Err((504, Reason::JwksTimeout))
                    }
                    CalloutResponse::Failed => Err((502, Reason::JwksUnavailable)),
                    CalloutResponse::Received { status: 200, body }
                        if body.len() <= MAX_CALLOUT_BODY =>
                    {
                        parse_jwks(body).map_err(|_| (502, Reason::JwksUnavailable))
                    }
                    CalloutResponse::Received { .. } => Err((502, Reason::JwksUnavailable)),
                };
                let refetch_failed = fetched.as_ref().err().copied();
                let provider = Arc::new(Provider {
                    metadata: current.metadata.clone(),
                    jwks: fetched.unwrap_or_else(|_| current.jwks.clone()),
                    jwks_fetched_at: current.jwks_fetched_at,
                    jwks_refetched_at: Some(now),
                });
                let mut out = if let Some((status, reason)) = refetch_failed {
                    Outcome {
                        decision: self.login_error(status, reason, browser, &cookie),
                        provider: None,
                    }
                } else {
                    self.finish_login(login, cookie, browser, tokens, &provider, false, now, rng)
                };
                out.provider = Some(provider);
                out
            }
        }
    }

    // ----- endpoints -------------------------------------------------------------------------------

    fn start(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Decision {
        if !(req.method == "GET" || req.method == "HEAD") {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        let rd = query_param(req.query(), "rd").ok().flatten();
        let target = rd
            .and_then(|rd| validate_redirect(&rd, &self.config.allowed_redirect_domains))
            .unwrap_or_else(|| String::from("/"));
        self.begin_login(req, target, now, rng)
    }

    fn begin_login(
        &self,
        req: &Request<'_>,
        return_to: String,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Decision {
        let cfg = &*self.config;
        let Some(provider) = &self.provider else {
            return self.error(req, 503, Reason::ProviderNotReady);
        };
        let (Ok(state), Ok(nonce), Ok(verifier)) = (
            random_token(rng, 16),
            random_token(rng, 16),
            random_token(rng, 32),
        ) else {
            return self.error(req, 500, Reason::RandomnessUnavailable);
        };
        let redirect_uri = self.redirect_uri(req);
        let url = authorization_url(&AuthorizeParams {
            endpoint: &provider.metadata.authorization_endpoint,
            client_id: &cfg.client_id,
            redirect_uri: &redirect_uri,
            scope: &cfg.scope,
            state: &state,
            nonce: &nonce,
            code_challenge: &challenge_s256(&verifier),
        });
        let cookie_name = self.login_cookie_name(&state);
        let mut login = LoginState {
            state: Secret(state),
            nonce: Secret(nonce),
            verifier: Secret(verifier),
            return_to: String::new(),
            redirect_uri,
            expires_at: now.plus(cfg.login_ttl).0,
        };
        // A deep link too long for the login cookie falls back to a shorter return target (its path,
        // then `/`) rather than minting a cookie the browser would drop, which would fail the callback.
        let mut sealed = None;
        for target in return_targets(&return_to) {
            login.return_to = String::from(target);
            let Ok(json) = serde_json::to_vec(&login) else {
                continue;
            };
            let Ok(value) = cfg
                .keys
                .seal(Purpose::Login, &cookie_name, &cfg.binding, &json, rng)
            else {
                return self.error(req, 500, Reason::RandomnessUnavailable);
            };
            if value.len() + cookie_name.len() < MAX_COOKIE_BYTES {
                sealed = Some(value);
                break;
            }
        }
        let Some(sealed) = sealed else {
            return self.error(req, 500, Reason::SessionTooLarge);
        };
        // Cap pending login cookies: drop the oldest (sent first, RFC 6265 §5.4) to make room for this
        // one, clearing at most MAX_CLEARED_PER_RESPONSE per answer so the response stays small however
        // many stale attempts a browser sends.
        let pending = self.login_cookie_names(req);
        let excess = (pending.len() + 1).saturating_sub(cfg.max_pending_logins);
        let mut headers: Vec<Header> = pending
            .iter()
            .take(excess.min(MAX_CLEARED_PER_RESPONSE))
            .map(|n| ("set-cookie".into(), cfg.cookie_attributes.clear(n)))
            .collect();
        headers.push((
            "set-cookie".into(),
            cfg.cookie_attributes
                .set(&cookie_name, &sealed, cfg.login_ttl),
        ));
        response::redirect(url, headers, Reason::LoginStarted)
    }

    /// The distinct login-attempt cookie names the browser sent, oldest first, at most
    /// `MAX_LOGIN_COOKIES_READ` of them (linear: a set of seen names, not a scan per cookie).
    fn login_cookie_names<'r>(&self, req: &Request<'r>) -> Vec<&'r str> {
        let prefix = self.config.login_cookie_prefix();
        let mut seen = BTreeSet::new();
        let mut names = Vec::new();
        for (name, _) in req.cookies() {
            // Only names we could have minted (the state's base64url characters): a name with control
            // characters or separators is not ours, and is never echoed back in a Set-Cookie.
            let minted = name.strip_prefix(prefix.as_str()).is_some_and(|id| {
                !id.is_empty()
                    && id
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            });
            if minted && seen.insert(name) {
                names.push(name);
                if names.len() >= MAX_LOGIN_COOKIES_READ {
                    break;
                }
            }
        }
        names
    }

    fn callback(&self, req: &Request<'_>, now: UnixTime) -> Decision {
        let cfg = &*self.config;
        if req.method != "GET" {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        let Some(provider) = &self.provider else {
            return self.error(req, 503, Reason::ProviderNotReady);
        };
        let q = req.query();
        let browser = !wants_json(req);
        let state = query_param(q, "state");
        let cookie = match &state {
            Ok(Some(s)) if valid_state(s) => Some(self.login_cookie_name(s)),
            _ => None,
        };
        let clear: Vec<Header> = cookie
            .iter()
            .filter(|c| req.cookie(c).is_some())
            .map(|c| ("set-cookie".into(), cfg.cookie_attributes.clear(c)))
            .collect();
        let fail = |status, reason| self.fail(status, reason, browser, clear.clone());
        if let Ok(Some(_)) | Err(_) = query_param(q, "error") {
            return fail(403, Reason::IdpError);
        }
        match query_param(q, "iss") {
            Ok(None) => {}
            // RFC 9207: an authorization response from another issuer is a mix-up attack.
            Ok(Some(iss)) if iss == provider.metadata.issuer => {}
            _ => return fail(400, Reason::IssuerMismatch),
        }
        let (Ok(Some(code)), Ok(Some(state)), Some(cookie)) =
            (query_param(q, "code"), state, cookie)
        else {
            return fail(400, Reason::CallbackMalformed);
        };
        let Some(sealed) = req.cookie(&cookie) else {
            return fail(403, Reason::LoginCookieMissing);
        };
        let login = cfg
            .keys
            .open(Purpose::Login, &cookie, &cfg.binding, sealed)
            .and_then(|json| serde_json::from_slice::<LoginState>(&json).ok())
            .filter(|l| now.0 < l.expires_at);
        let Some(login) = login else {
            return fail(403, Reason::LoginCookieInvalid);
        };
        if !bool::from(state.as_bytes().ct_eq(login.state.0.as_bytes())) {
            return fail(403, Reason::StateMismatch);
        }
        match token_request(
            cfg,
            &provider.metadata.token_endpoint,
            &code,
            &login.verifier.0,
            &login.redirect_uri,
        ) {
            Some(callout) => Decision::Callout {
                callout,
                pending: Pending(Box::new(State::Token {
                    login,
                    cookie,
                    browser,
                })),
            },
            None => fail(502, Reason::TokenEndpointError),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn finish_login(
        &self,
        login: LoginState,
        cookie: String,
        browser: bool,
        tokens: TokenResponse,
        provider: &Arc<Provider>,
        may_refetch: bool,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Outcome {
        let cfg = &*self.config;
        let expect = Expectations {
            issuer: &cfg.issuer,
            client_id: &cfg.client_id,
            nonce: &login.nonce.0,
            allowed_algs: &cfg.allowed_algs,
            now,
            leeway: cfg.leeway,
        };
        let verified = match verify_id_token(&tokens.id_token.0, &provider.jwks, &expect) {
            Ok(v) => v,
            Err(IdTokenError::UnknownKey)
                if may_refetch && provider.may_refetch_jwks(now, cfg.jwks_min_refetch_interval) =>
            {
                return match get_callout(
                    &provider.metadata.jwks_uri,
                    &cfg.idp_cluster,
                    cfg.callout_timeout_ms,
                ) {
                    Some(callout) => Outcome {
                        decision: Decision::Callout {
                            callout,
                            pending: Pending(Box::new(State::Jwks {
                                login,
                                cookie,
                                browser,
                                tokens,
                            })),
                        },
                        provider: None,
                    },
                    None => Outcome {
                        decision: self.login_error(502, Reason::JwksUnavailable, browser, &cookie),
                        provider: None,
                    },
                };
            }
            Err(e) => {
                return Outcome {
                    decision: self.login_error(403, Reason::IdTokenRejected(e), browser, &cookie),
                    provider: None,
                };
            }
        };
        let decision = match self
            .session_from(verified, &tokens, now)
            .and_then(|session| self.seal_session(&session, rng))
        {
            Ok(value) => {
                let mut headers: Vec<Header> = std::vec![
                    (
                        "set-cookie".into(),
                        cfg.cookie_attributes
                            .set(&cfg.cookie_name, &value, cfg.session_ttl)
                    ),
                    ("set-cookie".into(), cfg.cookie_attributes.clear(&cookie)),
                ];
                // The ID token goes in its own cookie, sent only to the sign-out endpoint, so ordinary
                // requests neither carry nor pay for it. If it would not fit, sign-out goes without.
                let (hint_name, hint_path) = cfg.hint_cookie();
                if let Ok(hint) = cfg.keys.seal(
                    Purpose::IdTokenHint,
                    &hint_name,
                    &cfg.binding,
                    tokens.id_token.0.as_bytes(),
                    rng,
                ) {
                    if hint.len() + hint_name.len() < MAX_COOKIE_BYTES {
                        headers.push((
                            "set-cookie".into(),
                            cfg.cookie_attributes.set_at(
                                &hint_name,
                                &hint,
                                cfg.session_ttl,
                                &hint_path,
                            ),
                        ));
                    }
                }
                response::redirect(login.return_to, headers, Reason::LoginCompleted)
            }
            Err(Reason::EmailUnverified) => {
                self.login_error(403, Reason::EmailUnverified, browser, &cookie)
            }
            Err(reason) => self.login_error(500, reason, browser, &cookie),
        };
        Outcome {
            decision,
            provider: None,
        }
    }

    fn sign_out(&self, req: &Request<'_>, cache: &mut SessionCache) -> Decision {
        let cfg = &*self.config;
        if !(req.method == "GET" || req.method == "POST") {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        if let Some(value) = req.cookie(&cfg.cookie_name) {
            cache.remove(value);
        }
        let (hint_name, hint_path) = cfg.hint_cookie();
        let hint = req
            .cookie(&hint_name)
            .and_then(|v| {
                cfg.keys
                    .open(Purpose::IdTokenHint, &hint_name, &cfg.binding, v)
            })
            .and_then(|b| String::from_utf8(b).ok());
        let target = query_param(req.query(), "rd")
            .ok()
            .flatten()
            .and_then(|rd| validate_redirect(&rd, &cfg.allowed_redirect_domains))
            .unwrap_or_else(|| cfg.post_logout_redirect_url.clone());
        let mut headers: Vec<Header> = std::vec![
            (
                "set-cookie".into(),
                cfg.cookie_attributes.clear(&cfg.cookie_name)
            ),
            (
                "set-cookie".into(),
                cfg.cookie_attributes.clear_at(&hint_name, &hint_path)
            ),
        ];
        for name in self
            .login_cookie_names(req)
            .into_iter()
            .take(MAX_CLEARED_PER_RESPONSE)
        {
            headers.push(("set-cookie".into(), cfg.cookie_attributes.clear(name)));
        }
        let end_session = self
            .provider
            .as_ref()
            .and_then(|p| p.metadata.end_session_endpoint.as_deref());
        let location = match (end_session, hint) {
            (Some(endpoint), Some(hint)) => {
                let absolute = if target.starts_with('/') {
                    format!("{}://{}{}", req.scheme, req.authority, target)
                } else {
                    target
                };
                let sep = if endpoint.contains('?') { '&' } else { '?' };
                format!(
                    "{endpoint}{sep}{}",
                    encode_pairs(&[
                        ("id_token_hint", &hint),
                        ("client_id", &cfg.client_id),
                        ("post_logout_redirect_uri", &absolute)
                    ])
                )
            }
            _ => target,
        };
        response::redirect(location, headers, Reason::SignedOut)
    }

    fn userinfo(&self, req: &Request<'_>, now: UnixTime, cache: &mut SessionCache) -> Decision {
        match self.session(req, now, cache) {
            Some(hit) => {
                let s = &hit.session;
                response::json(
                    200,
                    &serde_json::json!({
                        "user": s.user, "sub": s.sub, "email": s.email, "email_verified": s.email_verified,
                        "name": s.name, "preferred_username": s.preferred_username, "groups": s.groups,
                        "expires_at": s.expires_at,
                    }),
                    Vec::new(),
                    Reason::UserInfo,
                )
            }
            None => response::login_required(req.authority, &self.start_url("/")),
        }
    }

    // ----- sessions --------------------------------------------------------------------------------

    /// The request's session, from the cache or by opening the cookie. Tampered, truncated, expired or
    /// foreign-key cookies are simply no session.
    fn session(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        cache: &mut SessionCache,
    ) -> Option<Arc<CachedSession>> {
        let cfg = &*self.config;
        let value = req.cookie(&cfg.cookie_name)?;
        if let Some(hit) = cache.get(value) {
            if hit.session.is_valid_at(now, cfg.leeway) {
                return Some(hit);
            }
            cache.remove(value);
            return None;
        }
        // Our own binding first; other client ids only when configured (`cookie.accept_client_ids`).
        let json = cfg.accepted_bindings.iter().find_map(|bind| {
            cfg.keys
                .open(Purpose::Session, &cfg.cookie_name, bind, value)
        })?;
        let session: Session = serde_json::from_slice(&json).ok()?;
        if !session.is_valid_at(now, cfg.leeway) {
            return None;
        }
        let entry = Arc::new(CachedSession {
            upstream: Arc::from(self.identity_headers(&session)),
            session,
        });
        cache.insert(value, entry.clone());
        Some(entry)
    }

    fn session_from(
        &self,
        v: VerifiedIdToken,
        tokens: &TokenResponse,
        now: UnixTime,
    ) -> Result<Session, Reason> {
        let cfg = &*self.config;
        let claim = |name: &str| -> Option<String> {
            if name == "sub" {
                return Some(v.subject.clone());
            }
            match v.claims.other.get(name)? {
                serde_json::Value::String(s) => Some(s.clone()),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            }
        };
        // OIDC Core §5.1: `email_verified` is a boolean. Only `true` counts (some IdPs send the string
        // "true"; "false", absent or anything else does not).
        let verified = match v.claims.other.get("email_verified") {
            Some(serde_json::Value::Bool(b)) => *b,
            Some(serde_json::Value::String(s)) => s == "true",
            _ => false,
        };
        let email_usable = verified || cfg.insecure_allow_unverified_email;
        let email = claim(&cfg.claims.email).filter(|_| email_usable);
        let user = if cfg.claims.user == cfg.claims.email && cfg.claims.user != "sub" {
            // The user is named by their email: an unverified one is whatever they typed at the IdP.
            email.clone().ok_or(Reason::EmailUnverified)?
        } else {
            claim(&cfg.claims.user).unwrap_or_else(|| v.subject.clone())
        };
        Ok(Session {
            user,
            sub: v.subject.clone(),
            email,
            email_verified: Some(verified),
            name: claim(&cfg.claims.name),
            preferred_username: claim(&cfg.claims.preferred_username),
            groups: groups_of(v.claims.other.get(&cfg.claims.groups)),
            issued_at: now.0,
            expires_at: now.plus(cfg.session_ttl).0,
            access_token: if cfg.pass_access_token || cfg.pass_authorization_header {
                tokens.access_token.clone()
            } else {
                None
            },
        })
    }

    /// Seals the session (without tokens it is small; only an enormous groups claim can overflow).
    fn seal_session(
        &self,
        session: &Session,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<String, Reason> {
        let cfg = &*self.config;
        let json = serde_json::to_vec(session).map_err(|_| Reason::SessionTooLarge)?;
        let sealed = cfg
            .keys
            .seal(Purpose::Session, &cfg.cookie_name, &cfg.binding, &json, rng)
            .map_err(|_| Reason::RandomnessUnavailable)?;
        if sealed.len() + cfg.cookie_name.len() < MAX_COOKIE_BYTES {
            Ok(sealed)
        } else {
            Err(Reason::SessionTooLarge)
        }
    }

    fn identity_headers(&self, s: &Session) -> Vec<Header> {
        let cfg = &*self.config;
        let mut h = Vec::with_capacity(8);
        let email = s.email.as_deref().unwrap_or("");
        let groups = s.groups.join(",");
        let preferred = s.preferred_username.as_deref().unwrap_or("");
        push_identity(&mut h, "x-forwarded-user", &s.user);
        push_identity(&mut h, "x-forwarded-email", email);
        push_identity(&mut h, "x-forwarded-groups", &groups);
        push_identity(&mut h, "x-forwarded-preferred-username", preferred);
        push_identity(&mut h, "x-auth-request-user", &s.user);
        push_identity(&mut h, "x-auth-request-email", email);
        if let Some(at) = &s.access_token {
            if cfg.pass_access_token {
                push_identity(&mut h, "x-forwarded-access-token", &at.0);
            }
            if cfg.pass_authorization_header {
                push_identity(&mut h, "authorization", &format!("Bearer {}", at.0));
            }
        }
        h
    }

    /// Request edits for anything we forward: spoofed identity headers and our cookies removed, then
    /// `identity` set.
    fn upstream_edits(&self, req: &Request<'_>, identity: Option<Arc<[Header]>>) -> HeaderEdits {
        let cfg = &*self.config;
        let mut edits = HeaderEdits {
            remove: spoofed_headers(req.headers, cfg.pass_authorization_header),
            set: Vec::new(),
            identity,
            add: Vec::new(),
        };
        match strip_cookies(req.headers, |n| cfg.is_our_cookie(n)) {
            Some(rest) if rest.is_empty() => edits.remove.push("cookie".into()),
            Some(rest) => edits.set.push(("cookie".into(), rest)),
            None => {}
        }
        edits
    }

    // ----- helpers ---------------------------------------------------------------------------------

    fn login_cookie_name(&self, state: &str) -> String {
        // The state's first 12 characters (72 random bits) name the attempt's cookie.
        format!(
            "{}{}",
            self.config.login_cookie_prefix(),
            state.get(..12).unwrap_or(state)
        )
    }

    fn redirect_uri(&self, req: &Request<'_>) -> String {
        match &self.config.redirect_url {
            Some(u) => u.clone(),
            None => format!(
                "{}://{}{}/callback",
                req.scheme, req.authority, self.config.prefix
            ),
        }
    }

    fn start_url(&self, return_to: &str) -> String {
        format!(
            "{}/start?rd={}",
            self.config.prefix,
            encode_component(return_to)
        )
    }

    fn error(&self, req: &Request<'_>, status: u16, reason: Reason) -> Decision {
        self.fail(status, reason, !wants_json(req), Vec::new())
    }

    /// A failed login step: the error page, and the attempt's login cookie cleared.
    fn login_error(&self, status: u16, reason: Reason, browser: bool, cookie: &str) -> Decision {
        let clear = std::vec![(
            "set-cookie".into(),
            self.config.cookie_attributes.clear(cookie)
        )];
        self.fail(status, reason, browser, clear)
    }

    fn fail(&self, status: u16, reason: Reason, browser: bool, extra: Vec<Header>) -> Decision {
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

/// The groups claim as group names: an array of strings, or one string. A name holding a comma or a
/// control character is dropped: upstreams split `X-Forwarded-Groups` on commas, so `"staff,admins"`
/// must never become two groups.
fn groups_of(claim: Option<&serde_json::Value>) -> Vec<String> {
    let ok = |g: &&str| !g.is_empty() && !g.chars().any(|c| c == ',' || c.is_control());
    match claim {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(serde_json::Value::as_str)
            .filter(ok)
            .map(String::from)
            .collect(),
        Some(serde_json::Value::String(s)) if ok(&s.as_str()) => std::vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Return targets to try, longest first: the URL itself, its path without the query, then `/`.
fn return_targets(full: &str) -> impl Iterator<Item = &str> {
    let path = full.split(['?', '#']).next().unwrap_or("/");
    [full, path, "/"].into_iter()
}

/// API clients get JSON errors; browsers get HTML.
fn wants_json(req: &Request<'_>) -> bool {
    req.header("accept").is_some_and(prefers_json)
        || req
            .header("x-requested-with")
            .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"))
}

/// A state we minted: 22 base64url characters (16 bytes). Anything else is not ours.
fn valid_state(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
