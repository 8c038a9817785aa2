//! Renewing a session's forwarded access token with its refresh token (RFC 6749 §6), so the upstream
//! never receives an expired one.
//!
//! A request whose session's access token is within its renewal margin starts one refresh (a callout
//! to the token endpoint) for that cookie in this VM; requests arriving meanwhile forward the current
//! token while it is still valid, or wait ([`Decision::Wait`]) when it has expired, and are resumed
//! when the refresh ends. The new session (new access token, the rotated refresh token when the IdP
//! rotates, the same absolute end) is sealed into a new cookie; the old cookie maps to it in this VM
//! for a while, so every request still carrying the old cookie gets the new token and the new cookie.

use std::collections::{BTreeMap, VecDeque};
use std::string::String;
use std::sync::Arc;
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::decision::{CalloutResponse, Decision, Header, HeaderEdits, Reason, MAX_CALLOUT_BODY};
use crate::engine::{Engine, Flow, Pending};
use crate::oidc::token::{parse_refresh_response, refresh_request};
use crate::policy::navigation::is_navigation;
use crate::policy::redirect::validate_redirect;
use crate::request::Request;
use crate::response;
use crate::session::cache::CachedSession;
use crate::session::chunks;
use crate::session::Session;
use crate::time::UnixTime;
use crate::vm::VmState;

/// The most a token is renewed ahead of its expiry (seconds); shorter-lived tokens are renewed in
/// their last quarter.
pub const REFRESH_MARGIN: u64 = 60;

/// How long a failed refresh is not retried while the old token is still valid (seconds).
pub const RETRY_AFTER_FAILURE: u64 = 30;

/// How long the old cookie keeps mapping to its refreshed session in a VM (seconds).
const REPLACED_FOR: u64 = 300;

/// Most refreshes in flight and replacements remembered per VM.
const MAX_TRACKED: usize = 1024;

/// What became of a cookie's refresh in this VM.
#[derive(Debug, Clone)]
enum Outcome {
    /// Renewed: the new session and the cookies that carry it.
    Refreshed(Arc<CachedSession>, Arc<[Header]>),
    /// Refused or failed; not retried before this time.
    Failed { retry_at: u64 },
}

/// Per-VM refresh bookkeeping.
#[derive(Debug, Default, Clone)]
pub struct Refreshes {
    /// Refreshes in flight: old cookie → when started.
    in_flight: BTreeMap<Arc<str>, u64>,
    /// Finished refreshes: old cookie → outcome and until when it is remembered.
    done: BTreeMap<Arc<str>, (Outcome, u64)>,
    order: VecDeque<Arc<str>>,
    /// Wait keys whose waiters may be resumed.
    woken: Vec<u64>,
}

impl Refreshes {
    /// The wait keys whose refresh has ended since the last call (the host resumes the requests it
    /// parked under them).
    pub fn take_woken(&mut self) -> Vec<u64> {
        core::mem::take(&mut self.woken)
    }

    fn remember(&mut self, key: Arc<str>, outcome: Outcome, until: u64) {
        if self.done.insert(key.clone(), (outcome, until)).is_none() {
            self.order.push_back(key);
        }
        while self.done.len() > MAX_TRACKED {
            match self.order.pop_front() {
                Some(old) => {
                    self.done.remove(&old);
                }
                None => break,
            }
        }
    }
}

/// The key a waiting request is parked under (the cookie's hash: hosts never see the cookie).
#[must_use]
pub fn wait_key(cookie: &str) -> u64 {
    let d = Sha256::digest(cookie.as_bytes());
    u64::from_le_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

/// A request paused on a refresh.
#[derive(Debug)]
pub(crate) struct RefreshFlow {
    cookie: Arc<str>,
    session: Arc<Session>,
    old: Arc<CachedSession>,
    edits: HeaderEdits,
    navigation: bool,
    return_to: String,
    realm: String,
}

/// The request facts a refresh decision needs.
pub(crate) struct RefreshCtx<'a, 'r> {
    /// The sealed session cookie (joined).
    pub cookie: &'a str,
    /// The request.
    pub req: &'a Request<'r>,
}

impl RefreshCtx<'_, '_> {
    fn return_to(&self) -> String {
        validate_redirect(self.req.path, &[]).unwrap_or_else(|| String::from("/"))
    }
}

/// When the session's access token should be renewed, if it can be.
fn renew_at(s: &Session) -> Option<u64> {
    let ax = s.access_expires_at?;
    let lifetime = s.access_lifetime.unwrap_or(0);
    Some(ax.saturating_sub(REFRESH_MARGIN.min(lifetime / 4)))
}

impl Engine {
    /// A session request that passed its route's requirements: forward it (`forward`, built with
    /// the identity it is given), or renew its access token first.
    pub(crate) fn forward_session(
        &self,
        hit: Arc<CachedSession>,
        ctx: &RefreshCtx<'_, '_>,
        forward: impl FnOnce(&Arc<CachedSession>) -> Decision,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Decision {
        let Some(session) = hit.refreshable.clone() else {
            return forward(&hit);
        };
        let Some(renew) = renew_at(&session) else {
            return forward(&hit);
        };
        let expired = session.access_expires_at.is_some_and(|ax| now.0 >= ax);
        let r = &mut vm.refreshes;
        // Already renewed (or refused) in this VM for this cookie.
        match r.done.get(ctx.cookie) {
            Some((Outcome::Refreshed(new, cookies), until)) if now.0 < *until => {
                let (new, cookies) = (new.clone(), cookies.clone());
                return with_cookies(forward(&new), &cookies);
            }
            Some((Outcome::Failed { retry_at }, until)) if now.0 < *until => {
                if !expired && now.0 < *retry_at {
                    return forward(&hit);
                }
                if expired && now.0 < *retry_at {
                    return self.refresh_failed(
                        is_navigation(ctx.req),
                        &ctx.return_to(),
                        ctx.req.authority,
                    );
                }
            }
            _ => {}
        }
        if now.0 < renew {
            return forward(&hit);
        }
        if let Some(started) = r.in_flight.get(ctx.cookie) {
            let stale = now.0 > started + self.config.callout_timeout_ms / 1000 + 2;
            if !stale {
                return if expired {
                    Decision::Wait {
                        key: wait_key(ctx.cookie),
                    }
                } else {
                    forward(&hit)
                };
            }
        }
        let (Some(provider), Some(rt)) = (vm.provider(0), session.refresh_token.as_ref()) else {
            return forward(&hit);
        };
        let Some(callout) = refresh_request(&self.config, &provider.metadata.token_endpoint, &rt.0)
        else {
            return forward(&hit);
        };
        let request = match forward(&hit) {
            Decision::Forward { request, .. } => request,
            refused => return refused,
        };
        if vm.refreshes.in_flight.len() >= MAX_TRACKED {
            // Pathological: more sessions refreshing at once than tracked. Never unbounded.
            vm.refreshes.in_flight.clear();
        }
        let cookie: Arc<str> = Arc::from(ctx.cookie);
        vm.refreshes.in_flight.insert(cookie.clone(), now.0);
        Decision::Callout {
            callout,
            pending: Pending(std::boxed::Box::new(Flow::Refresh(RefreshFlow {
                cookie,
                session,
                old: hit,
                edits: request,
                navigation: is_navigation(ctx.req),
                return_to: ctx.return_to(),
                realm: String::from(ctx.req.authority),
            }))),
        }
    }

    /// The token endpoint answered (or did not) a refresh.
    pub(crate) fn finish_refresh(
        &self,
        flow: RefreshFlow,
        response: CalloutResponse<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        let r = &mut vm.refreshes;
        r.in_flight.remove(&flow.cookie);
        r.woken.push(wait_key(&flow.cookie));
        let renewed = match response {
            CalloutResponse::Received { status: 200, body } if body.len() <= MAX_CALLOUT_BODY => {
                parse_refresh_response(body)
            }
            _ => None,
        };
        let sealed = renewed.and_then(|t| {
            let mut s = (*flow.session).clone();
            s.access_token = Some(t.access_token.clone());
            s.access_lifetime = t.lifetime();
            s.access_expires_at = t.lifetime().map(|l| now.plus(l).0);
            if let Some(rotated) = t.refresh_token {
                s.refresh_token = Some(rotated);
            }
            let cookies = self.seal_session(&s, now, rng).ok()?;
            Some((s, cookies))
        });
        let until = now.0 + REPLACED_FOR;
        match sealed {
            Some((session, cookies)) => {
                let entry = self.cache_entry(session);
                let cookies: Arc<[Header]> = Arc::from(cookies);
                // The new cookie's own value opens from the cache too.
                if let Some(value) = new_cookie_value(&cookies, &self.config.cookie_name) {
                    vm.sessions.insert(&value, entry.clone());
                }
                vm.sessions.remove(&flow.cookie);
                vm.refreshes.remember(
                    flow.cookie,
                    Outcome::Refreshed(entry.clone(), cookies.clone()),
                    until,
                );
                let mut edits = flow.edits;
                edits.identity = Some(entry.upstream.clone());
                with_cookies(
                    Decision::Forward {
                        request: edits,
                        response: HeaderEdits::default(),
                        reason: Reason::SessionRefreshed,
                    },
                    &cookies,
                )
            }
            None => {
                vm.refreshes.remember(
                    flow.cookie,
                    Outcome::Failed {
                        retry_at: now.0 + RETRY_AFTER_FAILURE,
                    },
                    until,
                );
                let still_valid = flow.session.access_expires_at.is_some_and(|ax| now.0 < ax);
                if still_valid {
                    let mut edits = flow.edits;
                    edits.identity = Some(flow.old.upstream.clone());
                    return Decision::Forward {
                        request: edits,
                        response: HeaderEdits::default(),
                        reason: Reason::SessionRefreshFailed,
                    };
                }
                self.refresh_failed(flow.navigation, &flow.return_to, &flow.realm)
            }
        }
    }

    /// The access token expired and could not be renewed: a fresh login for navigations (silent
    /// while the IdP session lasts), 401 for everything else.
    fn refresh_failed(&self, navigation: bool, return_to: &str, realm: &str) -> Decision {
        let url = self.start_url(return_to);
        if navigation {
            return response::redirect(url, Vec::new(), Reason::SessionRefreshFailed);
        }
        let mut d = response::login_required(realm, &url);
        if let Decision::Respond { reason, .. } = &mut d {
            *reason = Reason::SessionRefreshFailed;
        }
        d
    }
}

/// Adds `set-cookie` headers to a forward's response.
fn with_cookies(mut d: Decision, cookies: &[Header]) -> Decision {
    if let Decision::Forward { response, .. } = &mut d {
        response.add.extend(cookies.iter().cloned());
    }
    d
}

/// The sealed value carried by `set-cookie` headers (joined when chunked).
fn new_cookie_value(cookies: &[Header], base: &str) -> Option<String> {
    let pairs: Vec<(&str, &str)> = cookies
        .iter()
        .filter_map(|(_, v)| v.split(';').next()?.split_once('='))
        .filter(|(_, v)| !v.is_empty())
        .collect();
    chunks::join(pairs.into_iter(), base).map(|c| c.into_owned())
}
