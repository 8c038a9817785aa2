//! Session cookies: sealing, tampering, expiry, key rotation, the per-VM cache, sign-out and userinfo.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::session::keyring::Purpose;
use portcullis_core::session::Session;
use portcullis_core::{Decision, Engine, Request};
use serde_json::json;

fn signed_in(h: &mut Harness) -> Browser {
    let mut b = Browser::default();
    let d = h.login(&mut b, "/", "alice");
    assert_eq!(reason_code(&d), "login_completed");
    b
}

fn visit(h: &mut Harness, b: &Browser) -> &'static str {
    reason_code(&h.send("GET", "/app", &[("accept", "text/html")], Some(b)))
}

#[test]
fn session_carries_the_configured_claims_and_expiry() {
    let mut h = Harness::new();
    let b = signed_in(&mut h);
    let json = h
        .engine
        .config()
        .keys
        .open(
            Purpose::Session,
            "_pc",
            &h.engine.config().binding,
            b.get("_pc").unwrap(),
        )
        .unwrap();
    let s: Session = serde_json::from_slice(&json).unwrap();
    assert_eq!((s.user.as_str(), s.sub.as_str()), ("alice", "alice"));
    assert_eq!(s.email.as_deref(), Some("alice@example.com"));
    assert_eq!(s.email_verified, Some(true));
    assert_eq!(s.name.as_deref(), Some("User alice"));
    assert_eq!(s.groups, vec!["staff", "team-alice"]);
    assert_eq!(s.expires_at - s.issued_at, 28800);
    assert!(s.access_token.is_none());
    // The ID token lives in its own cookie, scoped to the sign-out endpoint, and is a sealed JWT.
    let hint = h
        .engine
        .config()
        .keys
        .open(
            Purpose::IdTokenHint,
            "_pc_hint",
            &h.engine.config().binding,
            b.get("_pc_hint").unwrap(),
        )
        .unwrap();
    assert_eq!(String::from_utf8(hint).unwrap().split('.').count(), 3);
    assert!(
        b.get("_pc").unwrap().len() < 600,
        "the per-request cookie stays small: {}",
        b.get("_pc").unwrap().len()
    );

    let mut h = Harness::with(json!({"claims": {"user": "email"}}));
    let mut b = Browser::default();
    let _ = h.login(&mut b, "/", "carol");
    let d = h.send("GET", "/", &[], Some(&b));
    let sent = vec![(":path".to_string(), "/".to_string())];
    assert_eq!(
        get_header(&upstream_headers(&d, &sent), "x-forwarded-user"),
        Some("carol@example.com")
    );
}

#[test]
fn tampered_truncated_or_foreign_cookies_mean_a_fresh_login() {
    let mut h = Harness::new();
    let b = signed_in(&mut h);
    assert_eq!(visit(&mut h, &b), "authenticated");
    let good = b.get("_pc").unwrap().to_string();
    let foreign = {
        let mut other = Harness::with(json!({"cookie": {"keys": [{"id": "k1", "secret": KEY_2}]}}));
        signed_in(&mut other).get("_pc").unwrap().to_string()
    };
    let mut flipped = good.clone().into_bytes();
    let i = flipped.len() / 2;
    flipped[i] = if flipped[i] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(flipped).unwrap(),
        good[..good.len() - 5].to_string(),
        good[..3].to_string(),
        foreign,
        "k1.".to_string(),
        String::new(),
        "garbage".to_string(),
        format!("k9.{}", &good[3..]),
        "k1.".to_string() + &"A".repeat(6000),
    ] {
        let mut t = Browser::default();
        t.set("_pc", &bad);
        let d = h.send("GET", "/app", &[("accept", "text/html")], Some(&t));
        assert_eq!(
            (status(&d), reason_code(&d)),
            (302, "login_started"),
            "cookie {bad:.20}"
        );
        let d = h.send("GET", "/api", &[("accept", "application/json")], Some(&t));
        assert_eq!(status(&d), 401);
    }
}

#[test]
fn expired_sessions_are_not_accepted_even_from_the_cache() {
    let mut h = Harness::with(json!({"cookie": {"session_ttl_seconds": 100}}));
    let b = signed_in(&mut h);
    assert_eq!(visit(&mut h, &b), "authenticated");
    assert_eq!(h.vm.cached_sessions(), 1, "opened once, cached");
    h.advance(99);
    assert_eq!(visit(&mut h, &b), "authenticated");
    h.advance(1);
    assert_eq!(visit(&mut h, &b), "login_started");
    assert_eq!(h.vm.cached_sessions(), 0, "expired entry evicted");
    // Without the cache, too.
    h.vm.clear_session_cache();
    let sent = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), "/".to_string()),
        (
            "cookie".to_string(),
            format!("_pc={}", b.get("_pc").unwrap()),
        ),
    ];
    let d = h.engine.handle_request(
        &Request::from_headers(&portcullis_core::request::raw_headers(&sent)),
        h.now,
        &mut h.rng,
        &mut h.vm,
    );
    assert_eq!(reason_code(&d), "login_started");
}

#[test]
fn every_worker_and_replica_with_the_key_ring_opens_the_cookie() {
    let mut h = Harness::new();
    let b = signed_in(&mut h);
    // A second engine from the same configuration (another VM, another replica, after a restart).
    let other = Engine::from_json(base_config().to_string().as_bytes()).unwrap();
    let sent = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), "/".to_string()),
        (
            "cookie".to_string(),
            format!("_pc={}", b.get("_pc").unwrap()),
        ),
    ];
    let d = other.handle_request(
        &Request::from_headers(&portcullis_core::request::raw_headers(&sent)),
        h.now,
        &mut h.rng,
        &mut other.new_vm(),
    );
    assert_eq!(
        reason_code(&d),
        "authenticated",
        "sessions need no provider and no shared state"
    );
}

#[test]
fn key_rotation_keeps_old_sessions_and_seals_with_the_new_key() {
    let mut h = Harness::new();
    let b = signed_in(&mut h);
    let rotated =
        json!({"cookie": {"keys": [{"id": "k2", "secret": KEY_2}, {"id": "k1", "secret": KEY_1}]}});
    let mut h2 = Harness::with(rotated);
    assert_eq!(visit(&mut h2, &b), "authenticated");
    let b2 = signed_in(&mut h2);
    assert!(b2.get("_pc").unwrap().starts_with("k2."));
    let mut h3 = Harness::with(json!({"cookie": {"keys": [{"id": "k2", "secret": KEY_2}]}}));
    assert_eq!(
        visit(&mut h3, &b),
        "login_started",
        "retired key no longer opens"
    );
    assert_eq!(visit(&mut h3, &b2), "authenticated");
}

#[test]
fn a_login_cookie_is_never_accepted_as_a_session() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    h.start(&mut b, "/");
    let name = b.login_cookies()[0].clone();
    let v = b.get(&name).unwrap().to_string();
    let mut t = Browser::default();
    t.set("_pc", &v);
    assert_eq!(visit(&mut h, &t), "login_started");
}

#[test]
fn sign_out_clears_every_cookie_and_ends_the_idp_session() {
    let mut h = Harness::new();
    let mut b = signed_in(&mut h);
    h.start(&mut b, "/oauth2/start?rd=%2Fpending");
    assert_eq!(b.login_cookies().len(), 1);
    let d = h.navigate(&mut b, "/oauth2/sign_out?rd=%2Fbye");
    assert_eq!((status(&d), reason_code(&d)), (302, "signed_out"));
    let loc = location(&d);
    assert!(loc.starts_with("https://idp.test/session/end?"), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q["client_id"], "app");
    assert_eq!(q["post_logout_redirect_uri"], "https://app.test/bye");
    assert_eq!(q["id_token_hint"].split('.').count(), 3);
    let Decision::Respond { headers, .. } = &d else {
        unreachable!()
    };
    let clears: Vec<&String> = headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v)
        .collect();
    assert_eq!(
        clears.len(),
        3 + portcullis_core::session::chunks::MAX_CHUNKS - 1,
        "session, its possible chunks, hint and the pending login cookie"
    );
    assert!(
        clears
            .iter()
            .any(|c| c.starts_with("_pc_hint=; Path=/oauth2/sign_out; Max-Age=0")),
        "{clears:?}"
    );
    for c in clears {
        assert!(
            c.contains("Max-Age=0")
                && c.contains("Path=/")
                && c.contains("HttpOnly; Secure; SameSite=Lax"),
            "{c}"
        );
    }
    assert!(b.jar.is_empty());
    assert_eq!(visit(&mut h, &b), "login_started");
    // Open redirect through sign-out: refused, falls back to the configured default.
    let mut b = signed_in(&mut h);
    let d = h.navigate(&mut b, "/oauth2/sign_out?rd=https%3A%2F%2Fevil.com");
    assert_eq!(
        query_of(&location(&d))["post_logout_redirect_uri"],
        "https://app.test/"
    );
    // Without a session there is no hint: straight to the target.
    let d = h.navigate(&mut Browser::default(), "/oauth2/sign_out");
    assert_eq!(location(&d), "/");
}

#[test]
fn userinfo_answers_from_the_session() {
    let mut h = Harness::new();
    let b = signed_in(&mut h);
    let d = h.send(
        "GET",
        "/oauth2/userinfo",
        &[("accept", "application/json")],
        Some(&b),
    );
    assert_eq!(status(&d), 200);
    let v = body_json(&d);
    assert_eq!(v["user"], "alice");
    assert_eq!(v["email"], "alice@example.com");
    assert_eq!(v["groups"], json!(["staff", "team-alice"]));
    assert!(v.get("id_token").is_none());
    let d = h.send("GET", "/oauth2/userinfo", &[], None);
    assert_eq!(status(&d), 401);
}

#[test]
fn an_oversized_id_token_drops_the_sign_out_hint_rather_than_fail() {
    let mut h = Harness::new();
    let (mut b, d) = login_with_groups(&mut h, 120);
    assert_eq!(reason_code(&d), "login_completed");
    let json = h
        .engine
        .config()
        .keys
        .open(
            Purpose::Session,
            "_pc",
            &h.engine.config().binding,
            b.get("_pc").unwrap(),
        )
        .unwrap();
    let s: Session = serde_json::from_slice(&json).unwrap();
    assert_eq!(s.groups.len(), 120);
    assert!(b.get("_pc").unwrap().len() < 4000);
    assert!(
        b.get("_pc_hint").is_none(),
        "the hint would not fit in a cookie, so it was not set"
    );
    // Sign-out still works, without the IdP round trip that would need the hint.
    let d = h.navigate(&mut b, "/oauth2/sign_out");
    assert_eq!((status(&d), location(&d).as_str()), (302, "/"));
}

/// The README's rolling rotation, step by step across two replicas (each a harness with its own
/// configuration): add behind, promote, retire. Nobody is logged out until their key is retired.
#[test]
fn rolling_key_rotation_across_two_replicas_logs_nobody_out() {
    let k1 = json!({"id": "k1", "secret": KEY_1});
    let k2 = json!({"id": "k2", "secret": KEY_2});
    let ring = |keys: Vec<&serde_json::Value>| {
        let mut c = base_config();
        merge(&mut c, &json!({"cookie": {"keys": keys}}));
        c
    };
    let mut a = Harness::new();
    let mut b = Harness::new();
    let early = signed_in(&mut a);
    let both = |a: &mut Harness, b: &mut Harness, br: &Browser, what: &str| {
        assert_eq!(visit(a, br), "authenticated", "replica A, {what}");
        assert_eq!(visit(b, br), "authenticated", "replica B, {what}");
    };
    both(&mut a, &mut b, &early, "before");
    // 1. Add k2 behind k1, A first: k1 still seals.
    a.reconfigure(&ring(vec![&k1, &k2]));
    both(&mut a, &mut b, &early, "A has k1,k2");
    b.reconfigure(&ring(vec![&k1, &k2]));
    both(&mut a, &mut b, &early, "both have k1,k2");
    let mid = signed_in(&mut b);
    assert!(
        mid.get("_pc").unwrap().starts_with("k1."),
        "adding does not change the sealing key"
    );
    // 2. Promote k2 on A: its new sessions open on B, which still seals with k1.
    a.reconfigure(&ring(vec![&k2, &k1]));
    let late = signed_in(&mut a);
    assert!(late.get("_pc").unwrap().starts_with("k2."));
    both(&mut a, &mut b, &late, "a k2 session while B seals with k1");
    both(&mut a, &mut b, &early, "A promoted");
    b.reconfigure(&ring(vec![&k2, &k1]));
    for s in [&early, &mid, &late] {
        both(&mut a, &mut b, s, "both promoted");
    }
    // 3. Retire k1: k1 sessions are a fresh login, never an error; k2 sessions live on.
    a.reconfigure(&ring(vec![&k2]));
    b.reconfigure(&ring(vec![&k2]));
    both(&mut a, &mut b, &late, "k1 retired");
    for h in [&mut a, &mut b] {
        assert_eq!(visit(h, &early), "login_started");
        let d = h.send("GET", "/app", &[("accept", "application/json")], Some(&mid));
        assert_eq!((status(&d), reason_code(&d)), (401, "login_required"));
    }
}
