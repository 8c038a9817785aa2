//! The browser login: `{prefix}/start`, the redirect to the IdP (authorization code + PKCE + state +
//! nonce, one sealed cookie per attempt), `{prefix}/callback`, the token exchange, ID-token
//! verification (with an on-demand JWKS refetch for an unknown `kid`) and the session cookie.

use std::boxed::Box;
use std::collections::BTreeSet;
use std::format;
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;

use crate::decision::{CalloutResponse, Decision, Header, Reason, MAX_CALLOUT_BODY};
use crate::engine::{wants_json, Engine, Pending};
use crate::oidc::authorize::{authorization_url, AuthorizeParams};
use crate::oidc::discovery::get_callout;
use crate::oidc::pkce::{challenge_s256, random_token};
use crate::oidc::refresh::Provider;
use crate::oidc::token::{parse_token_response, token_request, TokenResponse};
use crate::oidc::userinfo::{merge, parse_userinfo, userinfo_request};
use crate::oidc::verify::{verify_id_token, Expectations};
use crate::oidc::IdTokenError;
use crate::policy::redirect::validate_redirect;
use crate::request::{query_param, Request};
use crate::response;
use crate::session::keyring::Purpose;
use crate::session::{LoginState, Secret};
use crate::time::UnixTime;
use crate::vm::VmState;

/// Largest `name=value` we will set as one cookie (browsers keep at least 4096 bytes per cookie).
pub const MAX_COOKIE_BYTES: usize = 4000;

/// Most stale login-attempt cookies one response clears (each `Set-Cookie` is ~150 bytes, so the
/// clearing stays under ~1.5 KB whatever a client sends).
pub const MAX_CLEARED_PER_RESPONSE: usize = 8;

/// Most login-attempt cookie names read from one request.
const MAX_LOGIN_COOKIES_READ: usize = 64;

/// One login attempt past its callback: what it started with, its cookie, and how to answer.
#[derive(Debug)]
pub(crate) struct Attempt {
    login: LoginState,
    /// The attempt's login cookie (cleared however the attempt ends).
    cookie: String,
    /// HTML answers (else JSON).
    browser: bool,
}

/// A login paused on a callout.
#[derive(Debug)]
pub(crate) enum Flow {
    /// Waiting for the token endpoint.
    Token(Attempt),
    /// Waiting for a JWKS refetch (the ID token named an unknown `kid`).
    Jwks(Attempt, TokenResponse),
    /// The ID token verified; waiting for the userinfo endpoint (`claims.userinfo`).
    Userinfo {
        attempt: Attempt,
        tokens: TokenResponse,
        subject: String,
        claims: Map<String, Value>,
    },
}

impl Engine {
    /// Continues a login after its callout's reply.
    pub(crate) fn continue_login(
        &self,
        flow: Flow,
        response: CalloutResponse<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        match flow {
            Flow::Token(attempt) => {
                let fail = |status, reason| self.login_error(status, reason, &attempt);
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
                let Some(provider) = vm.provider(0).cloned() else {
                    return fail(503, Reason::ProviderNotReady);
                };
                self.finish_login(attempt, tokens, &provider, true, now, rng)
            }
            Flow::Jwks(attempt, tokens) => {
                match self.install_refetched_jwks(0, response, now, vm) {
                    Ok(provider) => self.finish_login(attempt, tokens, &provider, false, now, rng),
                    Err((status, reason)) => self.login_error(status, reason, &attempt),
                }
            }
            Flow::Userinfo {
                attempt,
                tokens,
                subject,
                claims,
            } => match parse_userinfo(response, &subject) {
                Ok(extra) => {
                    let claims = merge(claims, extra);
                    self.complete_login(attempt, &tokens, &subject, &claims, now, rng)
                }
                Err((status, reason)) => self.login_error(status, reason, &attempt),
            },
        }
    }

    // ----- endpoints -------------------------------------------------------------------------------

    pub(crate) fn start(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &VmState,
    ) -> Decision {
        if !(req.method == "GET" || req.method == "HEAD") {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        let rd = query_param(req.query(), "rd").ok().flatten();
        let target = rd
            .and_then(|rd| validate_redirect(&rd, &self.config.allowed_redirect_domains))
            .unwrap_or_else(|| String::from("/"));
        self.begin_login(req, target, now, rng, vm)
    }

    pub(crate) fn begin_login(
        &self,
        req: &Request<'_>,
        return_to: String,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &VmState,
    ) -> Decision {
        let cfg = &*self.config;
        let Some(provider) = vm.provider(0) else {
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
            prompt: cfg.prompt.as_deref(),
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
    pub(crate) fn login_cookie_names<'r>(&self, req: &Request<'r>) -> Vec<&'r str> {
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

    pub(crate) fn callback(&self, req: &Request<'_>, now: UnixTime, vm: &mut VmState) -> Decision {
        let cfg = &*self.config;
        if req.method != "GET" {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        let Some(provider) = vm.provider(0) else {
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
        let login = req.cookie(&cookie).map(|sealed| {
            cfg.keys
                .open(Purpose::Login, &cookie, &cfg.binding, sealed)
                .and_then(|json| serde_json::from_slice::<LoginState>(&json).ok())
                .filter(|l| now.0 < l.expires_at)
        });
        let login = match login {
            Some(Some(login)) => login,
            // The attempt is gone (another tab finished first and the browser went back, or it
            // expired) but this browser is signed in: send it to the app, not to an error. The code
            // is never redeemed.
            _ if self.session(req, now, vm).is_some() => {
                return response::redirect(String::from("/"), clear, Reason::AlreadySignedIn)
            }
            None => return fail(403, Reason::LoginCookieMissing),
            Some(None) => return fail(403, Reason::LoginCookieInvalid),
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
                pending: Pending(Box::new(crate::engine::Flow::Login(Flow::Token(Attempt {
                    login,
                    cookie,
                    browser,
                })))),
            },
            None => fail(502, Reason::TokenEndpointError),
        }
    }

    pub(crate) fn finish_login(
        &self,
        attempt: Attempt,
        tokens: TokenResponse,
        provider: &Arc<Provider>,
        may_refetch: bool,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Decision {
        let cfg = &*self.config;
        let expect = Expectations {
            issuer: &cfg.issuer,
            client_id: &cfg.client_id,
            nonce: Some(&attempt.login.nonce.0),
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
                    crate::metrics::IdpEndpoint::Jwks,
                ) {
                    Some(callout) => Decision::Callout {
                        callout,
                        pending: Pending(Box::new(crate::engine::Flow::Login(Flow::Jwks(
                            attempt, tokens,
                        )))),
                    },
                    None => self.login_error(502, Reason::JwksUnavailable, &attempt),
                };
            }
            Err(e) => {
                return self.login_error(403, Reason::IdTokenRejected(e), &attempt);
            }
        };
        let subject = verified.subject;
        let claims: Map<String, Value> = verified.claims.other.into_iter().collect();
        if !cfg.claims.userinfo {
            return self.complete_login(attempt, &tokens, &subject, &claims, now, rng);
        }
        // OIDC Core §5.3: the userinfo endpoint, with the access token, for claims the ID token lacks.
        let callout = match (&provider.metadata.userinfo_endpoint, &tokens.access_token) {
            (Some(endpoint), Some(at)) => {
                userinfo_request(endpoint, &at.0, &cfg.idp_cluster, cfg.callout_timeout_ms)
            }
            _ => None,
        };
        match callout {
            Some(callout) => Decision::Callout {
                callout,
                pending: Pending(Box::new(crate::engine::Flow::Login(Flow::Userinfo {
                    attempt,
                    tokens,
                    subject,
                    claims,
                }))),
            },
            None => self.login_error(502, Reason::UserinfoUnavailable, &attempt),
        }
    }

    /// The identity is known: seal the session, clear the attempt, keep the ID token for sign-out.
    fn complete_login(
        &self,
        attempt: Attempt,
        tokens: &TokenResponse,
        subject: &str,
        claims: &Map<String, Value>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Decision {
        let cfg = &*self.config;
        match self
            .session_from(subject, claims, tokens, now)
            .and_then(|session| self.seal_session(&session, now, rng))
        {
            Ok(mut headers) => {
                headers.push((
                    "set-cookie".into(),
                    cfg.cookie_attributes.clear(&attempt.cookie),
                ));
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
                response::redirect(attempt.login.return_to, headers, Reason::LoginCompleted)
            }
            Err(Reason::EmailUnverified) => {
                self.login_error(403, Reason::EmailUnverified, &attempt)
            }
            Err(reason) => self.login_error(500, reason, &attempt),
        }
    }
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

    /// A failed login step: the error page, and the attempt's login cookie cleared.
    fn login_error(&self, status: u16, reason: Reason, attempt: &Attempt) -> Decision {
        let clear = std::vec![(
            "set-cookie".into(),
            self.config.cookie_attributes.clear(&attempt.cookie)
        )];
        self.fail(status, reason, attempt.browser, clear)
    }
}

fn return_targets(full: &str) -> impl Iterator<Item = &str> {
    let path = full.split(['?', '#']).next().unwrap_or("/");
    [full, path, "/"].into_iter()
}

fn valid_state(s: &str) -> bool {
    s.len() == 22
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
