//! Renewing a session's forwarded access token with its refresh token (RFC 6749 §6), so the upstream
//! never receives an expired one.
//!
//! A request whose session's access token is within its renewal margin starts one refresh (a callout
//! to the token endpoint) for that cookie in this VM; requests arriving meanwhile forward the current
//! token while it is still valid, or wait ([`Decision::Wait`]) when it has expired, and are resumed
//! when the refresh ends.
//!
//! Across the workers of one proxy, a refresh is first claimed in the host's shared data
//! ([`Decision::Claim`]): one of 256 slots, chosen by the cookie's hash, holds `claim`, then the
//! outcome (`done` with the new sealed cookie, or `failed`). A worker that loses the claim does not
//! present the same refresh token a second time (IdPs that rotate refresh tokens, oidc-provider among
//! them, revoke the whole grant when a used one comes back): its requests forward the still-valid
//! token, or wait and take the other worker's new cookie from the slot at their next tick. The new session (new access token, the rotated refresh token when the IdP
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

/// Shared-data slots for cross-worker claims (bounded: the host's store has no delete).
pub const CLAIM_SLOTS: u64 = 256;

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
    /// Sealed cookies other workers published, by wait key, until a waiter comes back for them.
    shared_done: BTreeMap<u64, String>,
    /// Refreshes another worker claimed that requests here wait for: wait key → (slot, since).
    watching: BTreeMap<u64, (String, u64)>,
    /// Slot values to write to the host's shared data (unconditionally).
    writes: Vec<(String, Vec<u8>)>,
}

impl Refreshes {
    /// The wait keys whose refresh has ended since the last call (the host resumes the requests it
    /// parked under them).
    pub fn take_woken(&mut self) -> Vec<u64> {
        core::mem::take(&mut self.woken)
    }

    /// The shared-data slots this VM waits on (the host reads each on its timer and hands it to
    /// `Engine::handle_watched`).
    #[must_use]
    pub fn watched_slots(&self) -> Vec<String> {
        let mut v: Vec<String> = self.watching.values().map(|(k, _)| k.clone()).collect();
        v.sort();
        v.dedup();
        v
    }

    /// Slot values to write to the host's shared data, without compare-and-swap.
    pub fn take_writes(&mut self) -> Vec<(String, Vec<u8>)> {
        core::mem::take(&mut self.writes)
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

/// What the shared slot said when a refresh was claimed.
#[derive(Debug)]
enum Claim {
    /// Not looked at yet, or free (ours if the write succeeds).
    Free,
    /// Another worker is refreshing this cookie.
    Taken,
    /// Another cookie holds the slot: refresh without a claim.
    Collision,
    /// Another worker already renewed it: its sealed cookie.
    Done(String),
    /// Another worker's refresh failed; not retried before this time.
    Failed(u64),
}

/// A refresh waiting for its claim.
#[derive(Debug)]
pub(crate) struct ClaimFlow {
    flow: RefreshFlow,
    callout: crate::decision::Callout,
    slot: String,
    claim: Claim,
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
        // A result another worker published while requests here waited for it.
        if let Some(sealed) = vm.refreshes.shared_done.remove(&wait_key(ctx.cookie)) {
            let old: Arc<str> = Arc::from(ctx.cookie);
            let _ = self.install_shared_result(&old, &sealed, now, vm);
        }
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
        let slot = self.claim_slot(ctx.cookie);
        Decision::Claim {
            key: slot.clone(),
            pending: Pending(std::boxed::Box::new(Flow::Claim(ClaimFlow {
                flow: RefreshFlow {
                    cookie,
                    session,
                    old: hit,
                    edits: request,
                    navigation: is_navigation(ctx.req),
                    return_to: ctx.return_to(),
                    realm: String::from(ctx.req.authority),
                },
                callout,
                slot,
                claim: Claim::Free,
            }))),
        }
    }

    fn claim_slot(&self, cookie: &str) -> String {
        self.claim_slot_key(wait_key(cookie) % CLAIM_SLOTS)
    }

    pub(crate) fn claim_slot_key(&self, slot: u64) -> String {
        std::format!("portcullis/refresh/{}/{slot}", self.binding_tag())
    }

    /// One step of a claim: `current` is the slot's value in the host's shared data. Returns the value
    /// to write (with compare-and-swap) when the slot is free for us, `None` when there is nothing to
    /// write; either way the host then calls [`Engine::handle_claim`].
    pub fn claim_step(
        &self,
        pending: &mut Pending,
        current: Option<&[u8]>,
        now: UnixTime,
    ) -> Option<Vec<u8>> {
        let Flow::Claim(c) = &mut *pending.0 else {
            return None;
        };
        let wk = wait_key(&c.flow.cookie);
        let fresh = |started: u64| now.0 <= started + self.config.callout_timeout_ms / 1000 + 2;
        c.claim = match parse_slot(current) {
            Slot::Claim { key, started } if key == wk && fresh(started) => Claim::Taken,
            Slot::Done { key, until, sealed } if key == wk && now.0 < until => Claim::Done(sealed),
            Slot::Failed { key, retry_at } if key == wk && now.0 < retry_at => {
                Claim::Failed(retry_at)
            }
            Slot::Claim { started, .. } if fresh(started) => Claim::Collision,
            _ => Claim::Free,
        };
        matches!(c.claim, Claim::Free)
            .then(|| std::format!("claim {wk:016x} {}", now.0).into_bytes())
    }

    /// The claim is decided (`written`: our claim was stored): refresh, take another worker's result,
    /// or wait for it.
    pub fn handle_claim(
        &self,
        pending: Pending,
        written: bool,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Decision {
        let d = self.claimed(pending, written, now, vm);
        vm.count(&d, false);
        d
    }

    fn claimed(
        &self,
        pending: Pending,
        written: bool,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Decision {
        let Flow::Claim(c) = *pending.0 else {
            return self.fail(500, Reason::RequestMalformed, false, Vec::new());
        };
        let ClaimFlow {
            flow,
            callout,
            slot,
            claim,
        } = c;
        let wk = wait_key(&flow.cookie);
        match claim {
            // Ours; or another cookie holds the slot (rare: 256 slots), refresh without a claim.
            Claim::Free if written => Decision::Callout {
                callout,
                pending: Pending(std::boxed::Box::new(Flow::Refresh(flow))),
            },
            Claim::Collision => Decision::Callout {
                callout,
                pending: Pending(std::boxed::Box::new(Flow::Refresh(flow))),
            },
            Claim::Done(sealed) => {
                vm.refreshes.in_flight.remove(&flow.cookie);
                match self.install_shared_result(&flow.cookie, &sealed, now, vm) {
                    Some((entry, cookies)) => {
                        let mut edits = flow.edits;
                        edits.identity = Some(entry.upstream.clone());
                        with_cookies(
                            Decision::Forward {
                                request: edits,
                                response: HeaderEdits::default(),
                                reason: Reason::Authenticated,
                                trace: crate::decision::Trace::default(),
                            },
                            &cookies,
                        )
                    }
                    None => self.old_or_failed(flow, now),
                }
            }
            Claim::Failed(retry_at) => {
                vm.refreshes.in_flight.remove(&flow.cookie);
                vm.refreshes.remember(
                    flow.cookie.clone(),
                    Outcome::Failed { retry_at },
                    now.0 + REPLACED_FOR,
                );
                self.old_or_failed(flow, now)
            }
            // Taken by another worker (or our write kept losing): never a second refresh with the
            // same token. Forward the still-valid one, or wait for the other worker's outcome.
            Claim::Free | Claim::Taken => {
                vm.refreshes.in_flight.remove(&flow.cookie);
                if flow.session.access_expires_at.is_some_and(|ax| now.0 < ax) {
                    return forward_old(flow, Reason::Authenticated);
                }
                if vm.refreshes.watching.len() < MAX_TRACKED {
                    vm.refreshes.watching.insert(wk, (slot, now.0));
                }
                Decision::Wait { key: wk }
            }
        }
    }

    /// The host read a watched slot: waiters whose refresh another worker finished (or gave up on)
    /// are woken, and a published cookie is kept for them.
    pub fn handle_watched(
        &self,
        slot: &str,
        value: Option<&[u8]>,
        now: UnixTime,
        vm: &mut VmState,
    ) {
        let waiting: Vec<(u64, u64)> = vm
            .refreshes
            .watching
            .iter()
            .filter(|(_, (s, _))| s == slot)
            .map(|(k, (_, since))| (*k, *since))
            .collect();
        let parsed = parse_slot(value);
        for (wk, since) in waiting {
            let give_up = now.0 > since + self.config.callout_timeout_ms / 1000 + 3;
            let resolved = match &parsed {
                Slot::Done { key, sealed, .. } if *key == wk => {
                    vm.refreshes.shared_done.insert(wk, sealed.clone());
                    true
                }
                Slot::Claim { key, .. } if *key == wk => give_up,
                // Failed, or the slot moved on: the waiters decide again.
                _ => true,
            };
            if resolved {
                vm.refreshes.watching.remove(&wk);
                vm.refreshes.woken.push(wk);
            }
        }
    }

    /// Takes another worker's new sealed cookie for `old`: the new session, remembered for the old
    /// cookie, with the `Set-Cookie` headers that carry it.
    fn install_shared_result(
        &self,
        old: &Arc<str>,
        sealed: &str,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Option<(Arc<CachedSession>, Arc<[Header]>)> {
        let entry = self.open_sealed(sealed, now, vm)?;
        let expires_at = entry.expires_at;
        let cookies: Arc<[Header]> = Arc::from(self.session_cookies(sealed, expires_at, now)?);
        vm.refreshes.remember(
            old.clone(),
            Outcome::Refreshed(entry.clone(), cookies.clone()),
            now.0 + REPLACED_FOR,
        );
        Some((entry, cookies))
    }

    /// A refresh did not happen here: the old token while it lasts, else a fresh login / 401.
    fn old_or_failed(&self, flow: RefreshFlow, now: UnixTime) -> Decision {
        if flow.session.access_expires_at.is_some_and(|ax| now.0 < ax) {
            return forward_old(flow, Reason::SessionRefreshFailed);
        }
        self.refresh_failed(flow.navigation, &flow.return_to, &flow.realm)
    }

    /// Forgets refreshes in flight past their callout timeout (the request that started one was
    /// reset, so its reply will never come) and wakes the requests waiting on them: they decide again
    /// and start a refresh of their own. Called from `Engine::handle_timeout`.
    pub(crate) fn expire_refreshes(&self, now: UnixTime, vm: &mut VmState) {
        let limit = self.config.callout_timeout_ms / 1000 + 2;
        let r = &mut vm.refreshes;
        if r.in_flight.is_empty() {
            return;
        }
        let stale: Vec<Arc<str>> = r
            .in_flight
            .iter()
            .filter(|(_, started)| now.0 > **started + limit)
            .map(|(k, _)| k.clone())
            .collect();
        for k in stale {
            r.in_flight.remove(&k);
            r.woken.push(wait_key(&k));
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
            let (value, cookies) = self.seal_session_value(&s, now, rng).ok()?;
            Some((s, value, cookies))
        });
        let until = now.0 + REPLACED_FOR;
        let slot = self.claim_slot(&flow.cookie);
        let wk = wait_key(&flow.cookie);
        match sealed {
            Some((session, value, cookies)) => {
                // The other workers' waiters take the new cookie from the slot.
                vm.refreshes.writes.push((
                    slot,
                    std::format!("done {wk:016x} {until}\n{value}").into_bytes(),
                ));
                let entry = self.cache_entry(session);
                let cookies: Arc<[Header]> = Arc::from(cookies);
                // The new cookie's own value opens from the cache too.
                vm.sessions.insert(&value, entry.clone());
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
                        trace: crate::decision::Trace::default(),
                    },
                    &cookies,
                )
            }
            None => {
                vm.refreshes.writes.push((
                    slot,
                    std::format!("failed {wk:016x} {}", now.0 + RETRY_AFTER_FAILURE).into_bytes(),
                ));
                vm.refreshes.remember(
                    flow.cookie.clone(),
                    Outcome::Failed {
                        retry_at: now.0 + RETRY_AFTER_FAILURE,
                    },
                    until,
                );
                let still_valid = flow.session.access_expires_at.is_some_and(|ax| now.0 < ax);
                if still_valid {
                    return forward_old(flow, Reason::SessionRefreshFailed);
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
        let mut d = response::login_required(realm, &url, &self.token_url());
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

/// Forwards with the session's current (still valid) token.
fn forward_old(flow: RefreshFlow, reason: Reason) -> Decision {
    let mut edits = flow.edits;
    edits.identity = Some(flow.old.upstream.clone());
    Decision::Forward {
        request: edits,
        response: HeaderEdits::default(),
        reason,
        trace: crate::decision::Trace::default(),
    }
}

/// A claim slot's contents.
#[derive(Debug, PartialEq, Eq)]
enum Slot {
    Empty,
    Claim {
        key: u64,
        started: u64,
    },
    Done {
        key: u64,
        until: u64,
        sealed: String,
    },
    Failed {
        key: u64,
        retry_at: u64,
    },
}

/// Reads a slot; anything unreadable is `Empty` (free).
fn parse_slot(value: Option<&[u8]>) -> Slot {
    let Some(text) = value.and_then(|v| core::str::from_utf8(v).ok()) else {
        return Slot::Empty;
    };
    let (head, rest) = text.split_once('\n').unwrap_or((text, ""));
    let mut it = head.split(' ');
    let (Some(kind), Some(key), Some(n), None) = (it.next(), it.next(), it.next(), it.next())
    else {
        return Slot::Empty;
    };
    let (Ok(key), Ok(n)) = (u64::from_str_radix(key, 16), n.parse::<u64>()) else {
        return Slot::Empty;
    };
    match kind {
        "claim" => Slot::Claim { key, started: n },
        "done" if !rest.is_empty() => Slot::Done {
            key,
            until: n,
            sealed: String::from(rest),
        },
        "failed" => Slot::Failed { key, retry_at: n },
        _ => Slot::Empty,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_round_trip_and_garbage_is_free() {
        assert_eq!(parse_slot(None), Slot::Empty);
        assert_eq!(
            parse_slot(Some(b"claim 00000000000000ff 17")),
            Slot::Claim {
                key: 255,
                started: 17
            }
        );
        assert_eq!(
            parse_slot(Some(b"done 0a 99\nk1.abc")),
            Slot::Done {
                key: 10,
                until: 99,
                sealed: "k1.abc".into()
            }
        );
        assert_eq!(
            parse_slot(Some(b"failed 1 5")),
            Slot::Failed {
                key: 1,
                retry_at: 5
            }
        );
        for junk in [
            &b""[..],
            b"done 1 2",
            b"claim x 1",
            b"claim 1",
            b"claim 1 2 3",
            b"\xff",
            b"other 1 2",
        ] {
            assert_eq!(parse_slot(Some(junk)), Slot::Empty, "{junk:?}");
        }
    }
}
