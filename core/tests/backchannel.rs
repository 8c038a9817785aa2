//! OpenID Connect Back-Channel Logout 1.0: a verified logout token ends the sessions it names.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::testkit::raw_jwt;
use portcullis_core::Decision;
use serde_json::{json, Map, Value};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

fn post_logout(h: &mut Harness, token: &str) -> Decision {
    let body = format!("logout_token={token}");
    h.send_with_body(
        "POST",
        "/oauth2/backchannel_logout",
        &[FORM],
        body.as_bytes(),
    )
}

fn signed_in(h: &mut Harness, user: &str) -> Browser {
    let mut b = Browser::default();
    let d = h.login(&mut b, "/", user);
    assert_eq!(reason_code(&d), "login_completed");
    b
}

fn visit(h: &mut Harness, b: &Browser) -> &'static str {
    reason_code(&h.send("GET", "/app", &[("accept", "application/json")], Some(b)))
}

#[test]
fn a_logout_token_for_a_sid_ends_that_session_in_cache_and_cookie_alike() {
    let mut h = Harness::new();
    let alice = signed_in(&mut h, "alice");
    h.idp.session_id = "idp-session-2".into();
    let other = signed_in(&mut h, "alice"); // another IdP session of the same user
    assert_eq!(visit(&mut h, &alice), "authenticated"); // now cached
    h.advance(5);
    let token = h
        .idp
        .sign(&h.idp.logout_claims(Some("idp-session-1"), None));
    let d = post_logout(&mut h, &token);
    assert_eq!((status(&d), reason_code(&d)), (200, "backchannel_logout"));
    let Decision::Respond { headers, .. } = &d else {
        unreachable!()
    };
    assert!(headers
        .iter()
        .any(|(n, v)| n == "cache-control" && v == "no-store"));
    assert_eq!(
        visit(&mut h, &alice),
        "login_required",
        "cached session ended"
    );
    h.vm.clear_session_cache();
    assert_eq!(visit(&mut h, &alice), "login_required", "cookie path too");
    assert_eq!(
        visit(&mut h, &other),
        "authenticated",
        "the other IdP session lives"
    );
    // A new login after the logout (same sid reused by a sloppy IdP, even) is a new session.
    h.advance(1);
    let again = signed_in(&mut h, "alice");
    h.idp.session_id = "idp-session-1".into();
    assert_eq!(visit(&mut h, &again), "authenticated");
}

#[test]
fn a_logout_token_with_only_sub_ends_every_session_of_that_user() {
    let mut h = Harness::new();
    let a1 = signed_in(&mut h, "alice");
    h.idp.session_id = "s2".into();
    let a2 = signed_in(&mut h, "alice");
    let bob = signed_in(&mut h, "bob");
    h.advance(2);
    let token = h.idp.sign(&h.idp.logout_claims(None, Some("alice")));
    assert_eq!(
        reason_code(&post_logout(&mut h, &token)),
        "backchannel_logout"
    );
    assert_eq!(visit(&mut h, &a1), "login_required");
    assert_eq!(visit(&mut h, &a2), "login_required");
    assert_eq!(visit(&mut h, &bob), "authenticated");
}

#[test]
fn every_wrong_claim_is_a_400_naming_it_and_ends_nothing() {
    let mut h = Harness::new();
    let alice = signed_in(&mut h, "alice");
    let good = h.idp.logout_claims(Some("idp-session-1"), Some("alice"));
    let with = |f: &dyn Fn(&mut Map<String, Value>)| {
        let mut c = good.clone();
        f(&mut c);
        c
    };
    let now = h.idp.now;
    let cases: Vec<(&str, Map<String, Value>)> = vec![
        (
            "logout_token_wrong_issuer",
            with(&|c| {
                c.insert("iss".into(), json!("https://evil.test"));
            }),
        ),
        (
            "logout_token_wrong_audience",
            with(&|c| {
                c.insert("aud".into(), json!("other-client"));
            }),
        ),
        (
            "logout_token_iat_missing",
            with(&|c| {
                c.remove("iat");
            }),
        ),
        (
            "logout_token_iat_future",
            with(&|c| {
                c.insert("iat".into(), json!(now + 3600));
            }),
        ),
        (
            "logout_token_too_old",
            with(&|c| {
                c.insert("iat".into(), json!(now - 3600));
                c.insert("exp".into(), json!(now + 60));
            }),
        ),
        (
            "logout_token_expired",
            with(&|c| {
                c.insert("exp".into(), json!(now - 600));
            }),
        ),
        (
            "logout_token_jti_missing",
            with(&|c| {
                c.remove("jti");
            }),
        ),
        (
            "logout_token_events_missing",
            with(&|c| {
                c.remove("events");
            }),
        ),
        (
            "logout_token_events_missing",
            with(&|c| {
                c.insert(
                    "events".into(),
                    json!({"http://schemas.openid.net/event/backchannel-logout": "yes"}),
                );
            }),
        ),
        (
            "logout_token_events_missing",
            with(&|c| {
                c.insert("events".into(), json!({"urn:other": {}}));
            }),
        ),
        (
            "logout_token_nonce_present",
            with(&|c| {
                c.insert("nonce".into(), json!("n"));
            }),
        ),
        (
            "logout_token_sid_sub_missing",
            with(&|c| {
                c.remove("sid");
                c.remove("sub");
            }),
        ),
    ];
    for (code, claims) in &cases {
        let t = h.idp.sign(claims);
        let d = post_logout(&mut h, &t);
        assert_eq!((status(&d), reason_code(&d)), (400, *code), "{claims:?}");
        assert_eq!(body_json(&d)["error"], "invalid_request");
    }
    // Signature: alg none, HS256 with the public key, a foreign key, a flipped byte.
    let none = raw_jwt(&json!({"alg": "none"}), &good, b"");
    let hs = portcullis_core::testkit::hs256_with_public_key("rsa-1", &good);
    let foreign = {
        let mut other = portcullis_core::testkit::FakeIdp::new(ISSUER);
        other.rotate();
        other.sign(&good)
    };
    let mut flipped = h.idp.sign(&good);
    let last = flipped.pop().unwrap();
    flipped.push(if last == 'A' { 'B' } else { 'A' });
    for (what, t) in [
        ("none", none),
        ("hs256", hs),
        ("foreign", foreign),
        ("flipped", flipped),
    ] {
        let d = post_logout(&mut h, &t);
        assert_eq!(status(&d), 400, "{what}");
        assert!(reason_code(&d).starts_with("logout_token_"), "{what}");
    }
    // An ID token is not a logout token (it has a nonce and no events).
    let id = h.idp.sign(&h.idp.claims("alice", "n"));
    assert_eq!(status(&post_logout(&mut h, &id)), 400);
    assert_eq!(visit(&mut h, &alice), "authenticated", "nothing was ended");
}

#[test]
fn the_endpoint_reads_a_body_only_for_post_and_bounds_it() {
    let mut h = Harness::new();
    let d = h.send("GET", "/oauth2/backchannel_logout", &[], None);
    assert_eq!(status(&d), 405);
    let d = h.send("POST", "/oauth2/backchannel_logout", &[FORM], None);
    assert!(matches!(d, Decision::ReadBody { limit } if limit >= 4096));
    let big = vec![b'a'; 64 * 1024];
    let d = h.send_with_body("POST", "/oauth2/backchannel_logout", &[FORM], &big);
    assert_eq!((status(&d), reason_code(&d)), (413, "body_too_large"));
    for body in [
        &b""[..],
        b"logout_token=",
        b"x=y",
        b"\xff\xfe",
        b"logout_token=a&logout_token=b",
    ] {
        let d = h.send_with_body("POST", "/oauth2/backchannel_logout", &[FORM], body);
        assert_eq!(status(&d), 400, "{body:?}");
    }
}

#[test]
fn other_workers_learn_of_a_logout_through_the_shared_store() {
    // Two VMs of one proxy (two workers) with a host store between them.
    let mut h = Harness::new();
    let alice = signed_in(&mut h, "alice");
    let mut worker2 = h.vm.clone();
    h.advance(1);
    let token = h
        .idp
        .sign(&h.idp.logout_claims(Some("idp-session-1"), None));
    assert_eq!(
        reason_code(&post_logout(&mut h, &token)),
        "backchannel_logout"
    );
    assert!(h.vm.has_unpublished_revocations());
    // Worker 1 publishes; worker 2 has not synced yet and still accepts the session.
    let store = h.vm.sync_revocations(None, 0, h.now).unwrap();
    h.vm.revocations_published();
    assert!(!h.vm.has_unpublished_revocations());
    std::mem::swap(&mut h.vm, &mut worker2);
    assert_eq!(visit(&mut h, &alice), "authenticated");
    // After its sync (the filter's timer, ≤ 1 s), it refuses it too.
    assert_eq!(h.vm.sync_revocations(Some(&store), 1, h.now), None);
    assert_eq!(h.vm.revocations_held(), 1);
    assert_eq!(visit(&mut h, &alice), "login_required");
    // Entries expire with the session lifetime.
    h.advance(8 * 3600 + 120);
    h.vm.sync_revocations(Some(&store), 2, h.now);
    assert_eq!(h.vm.revocations_held(), 0);
}
