//! Refresh tokens: the forwarded access token is renewed before it expires, never forwarded expired.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::{CalloutResponse, Decision, Request};
use serde_json::json;

fn harness() -> Harness {
    let mut h = Harness::with(json!({"headers": {"pass_access_token": true}}));
    h.idp.issue_refresh_tokens = true;
    h
}

fn signed_in(h: &mut Harness) -> Browser {
    let mut b = Browser::default();
    let d = h.login(&mut b, "/", "alice");
    assert_eq!(reason_code(&d), "login_completed");
    b
}

fn forwarded_token(d: &Decision) -> Option<String> {
    identity_headers(d)
        .into_iter()
        .find(|(n, _)| n == "x-forwarded-access-token")
        .map(|(_, v)| v)
}

fn response_cookies(d: &Decision) -> Vec<(String, String)> {
    match d {
        Decision::Forward { response, .. } => response.add.clone(),
        Decision::Respond { headers, .. } => headers.clone(),
        _ => vec![],
    }
}

/// A browser request; the response's cookies are applied to the jar.
fn visit(h: &mut Harness, b: &mut Browser, accept: &str) -> Decision {
    let d = h.send("GET", "/app", &[("accept", accept)], Some(b));
    b.apply(&response_cookies(&d));
    d
}

/// Sends a request without serving its callout: the decision as the host first sees it.
fn first_decision(h: &mut Harness, b: &Browser, accept: &str) -> Decision {
    let hs: Vec<(String, String)> = vec![
        (":method".into(), "GET".into()),
        (":path".into(), "/app".into()),
        (":authority".into(), "app.test".into()),
        (":scheme".into(), "https".into()),
        ("accept".into(), accept.into()),
        ("cookie".into(), b.cookie_header().unwrap()),
    ];
    let raw = portcullis_core::request::raw_headers(&hs);
    let req = Request::from_headers(&raw);
    let d = h.engine.handle_request(&req, h.now, &mut h.rng, &mut h.vm);
    h.claim(d)
}

fn answer(h: &mut Harness, d: Decision) -> Decision {
    let Decision::Callout { callout, pending } = d else {
        panic!("expected a callout, got {d:?}")
    };
    let auth = callout
        .headers
        .iter()
        .find(|(n, _)| n == "authorization")
        .map(|(_, v)| v.clone());
    let (status, _, body) = h.idp.serve(
        callout.method,
        &callout.path,
        auth.as_deref(),
        &callout.body,
    );
    let d = h.engine.handle_callout_response(
        pending,
        CalloutResponse::Received {
            status,
            body: &body,
        },
        h.now,
        &mut h.rng,
        &mut h.vm,
    );
    h.flush_writes();
    d
}

#[test]
fn the_upstream_never_receives_an_expired_access_token_over_a_working_day() {
    let mut h = harness();
    let mut b = signed_in(&mut h);
    let mut seen = std::collections::BTreeSet::new();
    // Every 50 s for the session's 8 hours; the cache is dropped now and then (another worker).
    for i in 0..(8 * 3600 / 50 - 1) {
        if i % 7 == 0 {
            h.vm.clear_session_cache();
        }
        let d = visit(&mut h, &mut b, "text/html");
        let code = reason_code(&d);
        assert!(
            code == "authenticated" || code == "session_refreshed",
            "{i}: {code}"
        );
        let at = forwarded_token(&d).unwrap();
        let exp = h.idp.access_token_expiry[&at];
        assert!(
            exp > h.now.0,
            "{i}: forwarded a token that expired at {exp}"
        );
        seen.insert(at);
        h.advance(50);
    }
    // One renewal per 300-s token (at 240 s), not one per request.
    let refreshes = h.idp.refreshes;
    assert!((95..=125).contains(&refreshes), "{refreshes} refreshes");
    assert_eq!(seen.len() as u32, refreshes + 1);
    // The absolute lifetime still holds: past 8 hours, a login, whatever the refresh token says.
    h.advance(100);
    let d = visit(&mut h, &mut b, "text/html");
    assert_eq!(reason_code(&d), "login_started");
}

#[test]
fn rotation_keeps_the_new_refresh_token_and_the_cookie_keeps_its_end() {
    let mut h = harness();
    let mut b = signed_in(&mut h);
    let before = b.get("_pc").unwrap().to_string();
    h.advance(250);
    let d = visit(&mut h, &mut b, "application/json");
    assert_eq!(reason_code(&d), "session_refreshed");
    let cookies = response_cookies(&d);
    let set = cookies.iter().find(|(_, v)| v.starts_with("_pc=")).unwrap();
    // Max-Age is what is left of the session, not a fresh 8 hours.
    assert!(
        set.1.contains(&format!("Max-Age={}", 8 * 3600 - 250)),
        "{}",
        set.1
    );
    assert_ne!(b.get("_pc").unwrap(), before);
    // The rotated refresh token works for the next renewal (the old one was consumed).
    h.advance(250);
    h.vm.clear_session_cache();
    let d = visit(&mut h, &mut b, "application/json");
    assert_eq!(reason_code(&d), "session_refreshed");
    assert_eq!(h.idp.refreshes, 2);
}

#[test]
fn a_refused_refresh_keeps_a_valid_token_then_asks_for_a_login() {
    let mut h = harness();
    let mut b = signed_in(&mut h);
    h.idp.refresh_failure = Some((400, json!({"error": "invalid_grant"}).to_string()));
    h.advance(250);
    let d = visit(&mut h, &mut b, "application/json");
    assert_eq!(reason_code(&d), "session_refresh_failed");
    let at = forwarded_token(&d).unwrap();
    assert!(h.idp.access_token_expiry[&at] > h.now.0);
    let calls = h.callouts.len();
    // Not retried on every request while the token lasts.
    h.advance(10);
    assert_eq!(
        reason_code(&visit(&mut h, &mut b, "application/json")),
        "authenticated"
    );
    assert_eq!(h.callouts.len(), calls);
    // Expired and still refused: 401 for an API call, a fresh login for a navigation.
    h.advance(60);
    let d = visit(&mut h, &mut b, "application/json");
    assert_eq!(
        (status(&d), reason_code(&d)),
        (401, "session_refresh_failed")
    );
    let d = visit(&mut h, &mut b, "text/html");
    assert_eq!(status(&d), 302);
    assert!(
        location(&d).starts_with("/oauth2/start?rd="),
        "{}",
        location(&d)
    );
    // A token endpoint that is down is the same.
    let mut h = harness();
    let mut b = signed_in(&mut h);
    h.advance(301);
    h.callout_override = Some((503, b"busy".to_vec()));
    let d = visit(&mut h, &mut b, "application/json");
    assert_eq!(
        (status(&d), reason_code(&d)),
        (401, "session_refresh_failed")
    );
}

#[test]
fn concurrent_requests_share_one_refresh_and_waiters_resume_with_the_new_token() {
    let mut h = harness();
    let b = signed_in(&mut h);
    // Within the margin, token still valid: the first request refreshes, the others forward the
    // still-valid token and start no second refresh.
    h.advance(250);
    let first = first_decision(&mut h, &b, "application/json");
    assert!(matches!(first, Decision::Callout { .. }), "{first:?}");
    for _ in 0..5 {
        let d = first_decision(&mut h, &b, "application/json");
        assert_eq!(reason_code(&d), "authenticated");
    }
    let d = answer(&mut h, first);
    assert_eq!(reason_code(&d), "session_refreshed");
    assert_eq!(h.idp.refreshes, 1);
    // A stale tab still sending the old cookie gets the new token and cookie, with no second refresh.
    let d = first_decision(&mut h, &b, "application/json");
    assert_eq!(reason_code(&d), "authenticated");
    assert!(response_cookies(&d)
        .iter()
        .any(|(_, v)| v.starts_with("_pc=")));
    assert_eq!(forwarded_token(&d), forwarded_token(&answer_token(&h)));
    assert_eq!(h.idp.refreshes, 1);

    // Token already expired: the others wait, then resume with the new token.
    let mut h = harness();
    let b = signed_in(&mut h);
    h.advance(400);
    let first = first_decision(&mut h, &b, "application/json");
    let waiting: Vec<Decision> = (0..3)
        .map(|_| first_decision(&mut h, &b, "application/json"))
        .collect();
    let key = match &waiting[0] {
        Decision::Wait { key } => *key,
        d => panic!("expected a wait, got {d:?}"),
    };
    assert!(waiting
        .iter()
        .all(|d| matches!(d, Decision::Wait { key: k } if *k == key)));
    assert!(h.vm.take_woken().is_empty());
    let d = answer(&mut h, first);
    assert_eq!(reason_code(&d), "session_refreshed");
    assert_eq!(h.vm.take_woken(), vec![key]);
    let new_at = forwarded_token(&d).unwrap();
    for _ in &waiting {
        let d = first_decision(&mut h, &b, "application/json");
        assert_eq!(forwarded_token(&d).as_deref(), Some(new_at.as_str()));
    }
    assert_eq!(h.idp.refreshes, 1);
}

/// The token the last refresh issued (the fake IdP's newest).
fn answer_token(h: &Harness) -> Decision {
    let newest = h
        .idp
        .access_token_expiry
        .iter()
        .max_by_key(|(t, e)| (**e, t.len()))
        .map(|(t, _)| t.clone())
        .unwrap();
    Decision::Forward {
        request: portcullis_core::HeaderEdits {
            identity: Some(std::sync::Arc::from(vec![(
                "x-forwarded-access-token".to_string(),
                newest,
            )])),
            ..Default::default()
        },
        response: Default::default(),
        reason: portcullis_core::Reason::Authenticated,
        trace: Default::default(),
    }
}

#[test]
fn two_workers_never_present_the_same_refresh_token_and_share_the_result() {
    // Worker 1 claims the refresh in the shared store; worker 2 sees the claim and does not refresh.
    let mut h = harness();
    let b = signed_in(&mut h);
    let mut worker2 = h.vm.clone();
    h.advance(250);
    let one = first_decision(&mut h, &b, "application/json");
    assert!(matches!(one, Decision::Callout { .. }), "{one:?}");
    std::mem::swap(&mut h.vm, &mut worker2);
    let two = first_decision(&mut h, &b, "application/json");
    std::mem::swap(&mut h.vm, &mut worker2);
    assert_eq!(
        reason_code(&two),
        "authenticated",
        "worker 2 forwards the still-valid token"
    );
    let d1 = answer(&mut h, one);
    assert_eq!(reason_code(&d1), "session_refreshed");
    assert_eq!((h.idp.refreshes, h.idp.refresh_reuses), (1, 0));

    // Token already expired: worker 2 waits for worker 1's outcome and takes its new cookie.
    let mut h = harness();
    let b = signed_in(&mut h);
    let mut worker2 = h.vm.clone();
    h.advance(400);
    let one = first_decision(&mut h, &b, "application/json");
    std::mem::swap(&mut h.vm, &mut worker2);
    let two = first_decision(&mut h, &b, "application/json");
    let Decision::Wait { key } = two else {
        panic!("worker 2 should wait: {two:?}")
    };
    assert!(
        h.tick_watched().is_empty(),
        "nothing to resume while worker 1 refreshes"
    );
    std::mem::swap(&mut h.vm, &mut worker2);
    let d1 = answer(&mut h, one);
    assert_eq!(reason_code(&d1), "session_refreshed");
    let new_at = forwarded_token(&d1).unwrap();
    std::mem::swap(&mut h.vm, &mut worker2);
    assert_eq!(
        h.tick_watched(),
        vec![key],
        "worker 2's timer sees the outcome"
    );
    let d2 = first_decision(&mut h, &b, "application/json");
    assert_eq!(forwarded_token(&d2).as_deref(), Some(new_at.as_str()));
    let set = response_cookies(&d2);
    assert!(
        set.iter().any(|(_, v)| v.starts_with("_pc=")),
        "worker 2 hands out the new cookie too"
    );
    assert_eq!((h.idp.refreshes, h.idp.refresh_reuses), (1, 0));

    // A failed refresh is shared the same way: worker 2 then asks for a login instead of retrying.
    let mut h = harness();
    let b = signed_in(&mut h);
    let mut worker2 = h.vm.clone();
    h.advance(400);
    h.idp.refresh_failure = Some((400, json!({"error": "invalid_grant"}).to_string()));
    let one = first_decision(&mut h, &b, "application/json");
    std::mem::swap(&mut h.vm, &mut worker2);
    assert!(matches!(
        first_decision(&mut h, &b, "application/json"),
        Decision::Wait { .. }
    ));
    std::mem::swap(&mut h.vm, &mut worker2);
    assert_eq!(status(&answer(&mut h, one)), 401);
    std::mem::swap(&mut h.vm, &mut worker2);
    assert_eq!(h.tick_watched().len(), 1);
    let d2 = first_decision(&mut h, &b, "application/json");
    assert_eq!(
        (status(&d2), reason_code(&d2)),
        (401, "session_refresh_failed")
    );
}

#[test]
fn without_a_shared_claim_a_second_worker_would_reuse_the_token() {
    // The counterfactual the claim prevents: two VMs that cannot see each other (separate stores).
    let mut h = harness();
    let b = signed_in(&mut h);
    let mut worker2 = h.vm.clone();
    h.advance(250);
    let one = first_decision(&mut h, &b, "application/json");
    let store = std::mem::take(&mut h.store);
    std::mem::swap(&mut h.vm, &mut worker2);
    let two = first_decision(&mut h, &b, "application/json");
    std::mem::swap(&mut h.vm, &mut worker2);
    h.store = store;
    let d1 = answer(&mut h, one);
    assert_eq!(reason_code(&d1), "session_refreshed");
    std::mem::swap(&mut h.vm, &mut worker2);
    let d2 = answer(&mut h, two);
    assert_eq!(h.idp.refresh_reuses, 1);
    // Even then the session is not broken here: the old token was still valid and is forwarded.
    assert_eq!(reason_code(&d2), "session_refresh_failed");
    assert!(response_cookies(&d2).is_empty());
}

#[test]
fn without_a_forwarded_token_no_refresh_token_is_kept() {
    let mut h = Harness::new();
    h.idp.issue_refresh_tokens = true;
    let mut b = signed_in(&mut h);
    h.advance(400);
    let d = visit(&mut h, &mut b, "application/json");
    assert_eq!(reason_code(&d), "authenticated");
    assert_eq!(h.idp.refreshes, 0);
    assert!(b.get("_pc").unwrap().len() < 700);
}

#[test]
fn offline_access_asks_for_consent_as_oidc_core_requires() {
    let mut h = Harness::with(json!({"scopes": ["openid", "email", "offline_access"]}));
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/");
    assert_eq!(
        query_of(&auth).get("prompt").map(String::as_str),
        Some("consent")
    );
    let mut h =
        Harness::with(json!({"scopes": ["openid", "offline_access"], "prompt": "login consent"}));
    let auth = h.start(&mut Browser::default(), "/");
    assert_eq!(query_of(&auth)["prompt"], "login consent");
    let mut h = Harness::new();
    let auth = h.start(&mut Browser::default(), "/");
    assert!(!query_of(&auth).contains_key("prompt"));
    let mut cfg = base_config();
    merge(&mut cfg, &json!({"prompt": "always"}));
    let err = portcullis_core::Engine::from_json(&serde_json::to_vec(&cfg).unwrap()).unwrap_err();
    assert!(err.to_string().contains("prompt"), "{err}");
}

#[test]
fn waiters_of_a_refresh_whose_request_went_away_are_woken_by_the_timer() {
    let mut h = harness();
    let b = signed_in(&mut h);
    h.advance(400);
    // The first request starts a refresh and is then reset (its reply never comes).
    let lost = first_decision(&mut h, &b, "application/json");
    assert!(matches!(lost, Decision::Callout { .. }));
    drop(lost);
    let Decision::Wait { key } = first_decision(&mut h, &b, "application/json") else {
        panic!("expected a wait")
    };
    // Within the callout timeout nothing happens; after it, the timer wakes the waiter.
    assert!(h.engine.handle_timeout(h.now, &mut h.vm).is_empty());
    assert!(h.vm.take_woken().is_empty());
    h.advance(10);
    let _ = h.engine.handle_timeout(h.now, &mut h.vm);
    assert_eq!(h.vm.take_woken(), vec![key]);
    // Deciding again, it claims (the stale claim in the slot is free again) and refreshes itself.
    let d = first_decision(&mut h, &b, "application/json");
    let d = answer(&mut h, d);
    assert_eq!(reason_code(&d), "session_refreshed");
    assert_eq!(h.idp.refreshes, 1);
}

#[test]
fn every_claim_slot_is_among_the_shared_keys_a_host_creates_and_a_created_slot_is_free() {
    // Envoy's compare-and-swap write to a missing key is unconditional, so hosts create every key of
    // `shared_keys` before serving; a claim on a key outside that list would race.
    let mut h = harness();
    let keys = h.engine.shared_keys();
    let unique: std::collections::BTreeSet<&String> = keys.iter().collect();
    assert_eq!(
        (keys.len(), unique.len()),
        (257, 257),
        "256 claim slots and the logout store"
    );
    assert!(keys.contains(&h.engine.revocations_store_key()));
    let browsers: Vec<Browser> = (0..40)
        .map(|i| {
            let mut b = Browser::default();
            let d = h.login(&mut b, "/", &format!("user{i}"));
            assert_eq!(reason_code(&d), "login_completed");
            b
        })
        .collect();
    h.advance(3600);
    let mut claimed = 0;
    for b in &browsers {
        let hs: Vec<(String, String)> = vec![
            (":method".into(), "GET".into()),
            (":path".into(), "/app".into()),
            (":authority".into(), "app.test".into()),
            ("accept".into(), "application/json".into()),
            ("cookie".into(), b.cookie_header().unwrap()),
        ];
        let raw = portcullis_core::request::raw_headers(&hs);
        let req = Request::from_headers(&raw);
        let Decision::Claim { key, mut pending } =
            h.engine.handle_request(&req, h.now, &mut h.rng, &mut h.vm)
        else {
            continue;
        };
        claimed += 1;
        assert!(keys.contains(&key), "{key} is not created by hosts");
        // The value hosts create a key with reads as a free slot: the claim is written.
        let write = h
            .engine
            .claim_step(&mut pending, Some(portcullis_core::SHARED_INIT), h.now);
        assert!(write.is_some(), "a created slot is free");
    }
    assert!(
        claimed >= 30,
        "{claimed} of 40 expired sessions claimed a refresh"
    );
    // And the logout store reads the created value as empty.
    let mut vm = h.engine.new_vm();
    assert_eq!(
        vm.sync_revocations(Some(portcullis_core::SHARED_INIT), 1, h.now),
        None,
        "nothing to publish from an empty store"
    );
    assert_eq!(vm.revocations_held(), 0);
}
