//! ID token verification through the whole callback (OIDC Core §3.1.3.7), including the known attacks on
//! relying parties. Each test crafts the token the fake IdP returns from its token endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::testkit::{hs256_with_public_key, raw_jwt, sign_rs256, test_key, RSA_2_PEM};
use serde_json::{json, Map, Value};

/// Runs a login where the IdP returns the token `craft(idp claims with the right nonce)` builds.
fn login_with(
    h: &mut Harness,
    craft: impl FnOnce(&Harness, Map<String, Value>) -> String,
) -> portcullis_core::Decision {
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/");
    let cb = h.idp_login(&auth, "alice");
    let nonce = h.idp.last_nonce.clone().unwrap();
    let claims = h.idp.claims("alice", &nonce);
    let token = craft(h, claims);
    h.idp.id_token_override = Some(token);
    let d = h.navigate(&mut b, &cb);
    if status(&d) != 302 {
        assert!(
            b.get("_pc").is_none(),
            "never a session on a rejected token"
        );
    }
    d
}

fn rejected(craft: impl FnOnce(&Harness, Map<String, Value>) -> String) -> (u16, &'static str) {
    let mut h = Harness::new();
    let d = login_with(&mut h, craft);
    (status(&d), reason_code(&d))
}

fn with(mut c: Map<String, Value>, k: &str, v: Value) -> Map<String, Value> {
    c.insert(k.into(), v);
    c
}

fn without(mut c: Map<String, Value>, k: &str) -> Map<String, Value> {
    c.remove(k);
    c
}

#[test]
fn a_good_token_signs_in() {
    assert_eq!(rejected(|h, c| h.idp.sign(&c)), (302, "login_completed"));
}

#[test]
fn bad_signature_is_rejected() {
    assert_eq!(
        rejected(|h, c| {
            let t = h.idp.sign(&c);
            let (head, sig) = t.rsplit_once('.').unwrap();
            let mut s = sig.as_bytes().to_vec();
            s[10] = if s[10] == b'A' { b'B' } else { b'A' };
            format!("{head}.{}", String::from_utf8(s).unwrap())
        }),
        (403, "id_token_bad_signature")
    );
    // Claims changed after signing.
    assert_eq!(
        rejected(|h, c| {
            let t = h.idp.sign(&c);
            let parts: Vec<&str> = t.split('.').collect();
            let evil = raw_jwt(
                &json!({"alg":"RS256","kid":"rsa-1"}),
                &with(c, "sub", json!("admin")),
                b"",
            );
            let evil_payload = evil.split('.').nth(1).unwrap();
            format!("{}.{}.{}", parts[0], evil_payload, parts[2])
        }),
        (403, "id_token_bad_signature")
    );
}

#[test]
fn alg_none_is_rejected() {
    assert_eq!(
        rejected(|_, c| raw_jwt(&json!({"alg": "none"}), &c, b"")),
        (403, "id_token_alg_not_allowed")
    );
    assert_eq!(
        rejected(|_, c| raw_jwt(&json!({"alg": "None", "kid": "rsa-1"}), &c, b"")),
        (403, "id_token_alg_not_allowed")
    );
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_rejected() {
    assert_eq!(
        rejected(|_, c| hs256_with_public_key("rsa-1", &c)),
        (403, "id_token_alg_not_allowed")
    );
}

#[test]
fn algorithms_off_the_allowlist_are_rejected() {
    let mut h = Harness::with(json!({"id_token": {"allowed_algs": ["ES256"]}}));
    let d = login_with(&mut h, |h, c| h.idp.sign(&c));
    assert_eq!(reason_code(&d), "id_token_alg_not_allowed");
}

#[test]
fn keys_named_in_jku_x5u_or_jwk_headers_are_ignored() {
    // The attacker signs with their own key and points at it; only the issuer's JWKS counts.
    let attacker = test_key(RSA_2_PEM, "rsa-1");
    assert_eq!(
        rejected(|_, c| sign_rs256(&attacker, &c)),
        (403, "id_token_bad_signature")
    );
    let pk = attacker.public_key().to_components();
    let jwk = json!({"kty":"RSA","n": b64(&pk.n),"e": b64(&pk.e)});
    for header in [
        json!({"alg":"RS256","kid":"evil","jku":"https://evil.test/jwks"}),
        json!({"alg":"RS256","kid":"evil","x5u":"https://evil.test/cert"}),
        json!({"alg":"RS256","kid":"evil","jwk": jwk}),
    ] {
        let h = header.clone();
        let (s, r) = rejected(move |_, c| raw_jwt(&h, &c, b"sig"));
        assert_eq!((s, r), (403, "id_token_unknown_kid"), "{header}");
    }
}

fn b64(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn unknown_kid_triggers_one_jwks_refetch_then_rotation_succeeds() {
    let mut h = Harness::new();
    assert_eq!(h.idp.jwks_served, 1);
    h.advance(60);
    h.idp.rotate();
    let mut b = Browser::default();
    let d = h.login(&mut b, "/after-rotation", "alice");
    assert_eq!(
        (status(&d), location(&d).as_str()),
        (302, "/after-rotation"),
        "{d:?}"
    );
    assert_eq!(h.callouts, vec!["/token", "/jwks"]);
    assert_eq!(h.idp.jwks_served, 2);
    // The refetched keys are installed: the next login needs no refetch.
    let mut b = Browser::default();
    assert_eq!(status(&h.login(&mut b, "/", "bob")), 302);
    assert_eq!(h.idp.jwks_served, 2);
}

#[test]
fn unknown_kid_refetch_is_rate_limited() {
    let mut h = Harness::new();
    h.advance(60);
    let rogue = test_key(RSA_2_PEM, "nope");
    let d = login_with(&mut h, |_, c| sign_rs256(&rogue, &c));
    assert_eq!(reason_code(&d), "id_token_unknown_kid");
    assert_eq!(h.idp.jwks_served, 2, "one refetch");
    // Within the interval: no further refetch.
    h.advance(5);
    let d = login_with(&mut h, |_, c| sign_rs256(&rogue, &c));
    assert_eq!(reason_code(&d), "id_token_unknown_kid");
    assert_eq!(h.idp.jwks_served, 2, "rate limited");
    h.advance(30);
    let _ = login_with(&mut h, |_, c| sign_rs256(&rogue, &c));
    assert_eq!(h.idp.jwks_served, 3, "allowed again after the interval");
}

#[test]
fn claim_checks_reject_wrong_tokens() {
    type Mutation = Box<dyn FnOnce(Map<String, Value>) -> Map<String, Value>>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        (
            "wrong iss",
            Box::new(|c| with(c, "iss", json!("https://evil.test"))),
            "id_token_wrong_issuer",
        ),
        (
            "iss with trailing slash",
            Box::new(|c| with(c, "iss", json!("https://idp.test/"))),
            "id_token_wrong_issuer",
        ),
        (
            "missing iss",
            Box::new(|c| without(c, "iss")),
            "id_token_wrong_issuer",
        ),
        (
            "wrong aud",
            Box::new(|c| with(c, "aud", json!("other-app"))),
            "id_token_wrong_audience",
        ),
        (
            "missing aud",
            Box::new(|c| without(c, "aud")),
            "id_token_wrong_audience",
        ),
        (
            "bad azp",
            Box::new(|c| with(c, "azp", json!("other-app"))),
            "id_token_wrong_azp",
        ),
        (
            "several aud, no azp",
            Box::new(|c| without(with(c, "aud", json!(["app", "other"])), "azp")),
            "id_token_wrong_azp",
        ),
        (
            "expired",
            Box::new(|c| with(c, "exp", json!(1_700_000_000 - 61))),
            "id_token_expired",
        ),
        (
            "exp missing",
            Box::new(|c| without(c, "exp")),
            "id_token_exp_missing",
        ),
        (
            "iat missing",
            Box::new(|c| without(c, "iat")),
            "id_token_iat_missing",
        ),
        (
            "iat in the future",
            Box::new(|c| with(c, "iat", json!(1_700_000_000 + 3600))),
            "id_token_issued_in_future",
        ),
        (
            "nbf in the future",
            Box::new(|c| with(c, "nbf", json!(1_700_000_000 + 3600))),
            "id_token_issued_in_future",
        ),
        (
            "nonce mismatch",
            Box::new(|c| with(c, "nonce", json!("replayed-nonce"))),
            "id_token_nonce_mismatch",
        ),
        (
            "nonce missing",
            Box::new(|c| without(c, "nonce")),
            "id_token_nonce_mismatch",
        ),
        (
            "sub missing",
            Box::new(|c| without(c, "sub")),
            "id_token_sub_missing",
        ),
        (
            "sub empty",
            Box::new(|c| with(c, "sub", json!(""))),
            "id_token_sub_missing",
        ),
    ];
    for (name, mutate, want) in cases {
        let got = rejected(move |h, c| h.idp.sign(&mutate(c)));
        assert_eq!(got, (403, want), "{name}");
    }
}

#[test]
fn leeway_is_honoured_and_configurable() {
    assert_eq!(
        rejected(|h, c| h.idp.sign(&with(c, "exp", json!(1_700_000_000 - 30)))),
        (302, "login_completed")
    );
    assert_eq!(
        rejected(|h, c| h.idp.sign(&with(c, "iat", json!(1_700_000_000 + 30)))),
        (302, "login_completed")
    );
    let mut h = Harness::with(json!({"id_token": {"leeway_seconds": 0}}));
    let d = login_with(&mut h, |h, c| {
        h.idp.sign(&with(c, "exp", json!(1_700_000_000 - 1)))
    });
    assert_eq!(reason_code(&d), "id_token_expired");
}

#[test]
fn multiple_audiences_with_our_azp_are_accepted() {
    assert_eq!(
        rejected(|h, c| h.idp.sign(&with(c, "aud", json!(["other", "app"])))),
        (302, "login_completed")
    );
}

#[test]
fn malformed_tokens_are_rejected_without_panicking() {
    assert_eq!(
        rejected(|_, _| String::new()),
        (502, "token_response_invalid"),
        "an empty id_token is no token response"
    );
    for junk in [
        "a",
        "a.b",
        "a.b.c.d",
        "!!!.!!!.!!!",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "e30.e30.e30",
    ] {
        let j = junk.to_string();
        let (s, r) = rejected(move |_, _| j);
        assert_eq!(s, 403, "{junk:?}");
        assert!(r.starts_with("id_token_"), "{junk:?}: {r}");
    }
    let (s, r) = rejected(|_, c| {
        raw_jwt(
            &json!({"alg":"RS256","kid":"rsa-1","crit":["exp"]}),
            &c,
            b"x",
        )
    });
    assert_eq!((s, r), (403, "id_token_malformed"));
}

#[test]
fn rotation_right_after_a_scheduled_load_costs_no_failed_login() {
    // The scheduled load just happened (no time passes): the first unknown kid still refetches at once.
    let mut h = Harness::new();
    assert_eq!(h.idp.jwks_served, 1);
    h.idp.rotate();
    let mut b = Browser::default();
    let d = h.login(&mut b, "/", "alice");
    assert_eq!(reason_code(&d), "login_completed", "{d:?}");
    assert_eq!(h.idp.jwks_served, 2);
}

#[test]
fn a_flood_of_unknown_kids_costs_one_refetch_per_interval() {
    let mut h = Harness::new();
    for i in 0..20 {
        let rogue = test_key(RSA_2_PEM, &format!("random-{i}"));
        let d = login_with(&mut h, |_, c| sign_rs256(&rogue, &c));
        assert_eq!(reason_code(&d), "id_token_unknown_kid");
        h.advance(1);
    }
    assert_eq!(h.idp.jwks_served, 2, "the scheduled load and one refetch");
}

#[test]
fn a_token_without_kid_needs_exactly_one_fitting_key() {
    use jwt_simple::prelude::*;
    let no_kid = RS256KeyPair::from_pem(portcullis_core::testkit::RSA_1_PEM).unwrap();
    assert_eq!(
        rejected(|_, c| sign_rs256(&no_kid, &c)),
        (302, "login_completed"),
        "one RSA key published: unambiguous"
    );
    let mut h = Harness::new();
    h.idp.rotate();
    h.advance(601); // the next scheduled refresh loads both keys
    h.load_provider();
    let d = login_with(&mut h, |_, c| sign_rs256(&no_kid, &c));
    assert_eq!(
        reason_code(&d),
        "id_token_ambiguous_key",
        "two RSA keys: refused"
    );
}

#[test]
fn duplicate_kids_cost_at_most_three_signature_checks() {
    use portcullis_core::oidc::jwks::{parse_jwks, MAX_KEYS};
    use portcullis_core::oidc::verify::{verify_id_token, Expectations};
    let good = test_key(portcullis_core::testkit::RSA_1_PEM, "dup");
    let decoy = test_key(RSA_2_PEM, "dup");
    let jwk = |k: &jwt_simple::prelude::RS256KeyPair| {
        let c = k.public_key().to_components();
        json!({"kty":"RSA","kid":"dup","n": b64(&c.n),"e": b64(&c.e)})
    };
    let claims = Harness::new().idp.claims("alice", "n0nce");
    let token = sign_rs256(&good, &claims);
    let expect = Expectations {
        issuer: ISSUER,
        client_id: "app",
        nonce: Some("n0nce"),
        allowed_algs: &portcullis_core::oidc::Alg::ALL,
        now: portcullis_core::UnixTime(1_700_000_000),
        leeway: 60,
    };
    // The right key among the first three: verified. Behind ten decoys: not tried.
    let mut keys = vec![jwk(&decoy), jwk(&decoy), jwk(&good)];
    let set = parse_jwks(json!({ "keys": keys }).to_string().as_bytes()).unwrap();
    assert!(verify_id_token(&token, &set, &expect).is_ok());
    keys = vec![jwk(&decoy); 10];
    keys.push(jwk(&good));
    let set = parse_jwks(json!({ "keys": keys }).to_string().as_bytes()).unwrap();
    assert_eq!(
        verify_id_token(&token, &set, &expect).err(),
        Some(portcullis_core::IdTokenError::BadSignature)
    );
    // A set of more than MAX_KEYS keys is refused whole; odd keys are skipped, not fatal.
    let many = vec![jwk(&good); MAX_KEYS + 1];
    assert!(parse_jwks(json!({ "keys": many }).to_string().as_bytes()).is_err());
    let odd = json!({"keys": [{"kty": "RSA", "n": 5}, {"kty": "XYZ"}, {"kty": "oct", "k": "AAAA"}, jwk(&good)]});
    assert_eq!(
        parse_jwks(odd.to_string().as_bytes()).unwrap().keys.len(),
        1
    );
    let none = json!({"keys": [{"kty": "XYZ"}, {"kty": "oct", "k": "AAAA"}]});
    assert!(parse_jwks(none.to_string().as_bytes()).is_err());
}
