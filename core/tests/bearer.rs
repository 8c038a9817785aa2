//! Bearer JWTs (RFC 6750, RFC 9068): every rejection a relying party must make, rotation, the
//! verified-token cache, and what a flood of unknown kids may cost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::testkit::{hs256_with_public_key, raw_jwt, sign_rs256, test_key, RSA_2_PEM};
use portcullis_core::Decision;
use serde_json::{json, Map, Value};

const OTHER: &str = "https://other.test";

fn api() -> Value {
    json!({
        "public_paths": [],
        "bearer": {"token_cache_size": 2, "issuers": [
            {"issuer": ISSUER, "audiences": ["api://demo"]},
            {"issuer": OTHER, "jwks_uri": "https://other.test/jwks", "audiences": ["api://other"]}
        ]},
        "routes": {"rules": [
            {"name": "api", "prefix": "/api", "action": "authenticate", "accept": "bearer",
             "require": {"scopes": ["read"]}}
        ]}
    })
}

fn claims(h: &Harness) -> Map<String, Value> {
    json!({"iss": ISSUER, "sub": "svc-worker", "aud": "api://demo", "client_id": "svc-worker",
           "iat": h.now.0, "exp": h.now.0 + 300, "scope": "read write"})
    .as_object()
    .unwrap()
    .clone()
}

fn with(h: &Harness, edit: impl FnOnce(&mut Map<String, Value>)) -> Map<String, Value> {
    let mut c = claims(h);
    edit(&mut c);
    c
}

fn call(h: &mut Harness, token: &str) -> (u16, String, Decision) {
    let auth = format!("Bearer {token}");
    let d = h.send("GET", "/api/x", &[("authorization", auth.as_str())], None);
    (status(&d), reason_code(&d).to_string(), d)
}

fn challenge(d: &Decision) -> String {
    match d {
        Decision::Respond { headers, .. } => get_header(headers, "www-authenticate")
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

#[test]
fn a_good_token_reaches_the_upstream_as_its_client() {
    let mut h = Harness::with(api());
    let token = h.idp.sign(&claims(&h));
    let (s, code, d) = call(&mut h, &token);
    assert_eq!((s, code.as_str()), (0, "bearer_authenticated"));
    let sent = vec![
        ("authorization".to_string(), format!("Bearer {token}")),
        ("x-forwarded-user".to_string(), "admin".to_string()),
    ];
    let up = upstream_headers(&d, &sent);
    let user: Vec<&str> = up
        .iter()
        .filter(|(n, _)| n == "x-forwarded-user")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(user, vec!["svc-worker"], "the spoofed header is gone");
    assert!(
        up.iter()
            .any(|(n, v)| n == "authorization" && v.ends_with(&token)),
        "the client's own token is forwarded"
    );
    // A service token without `sub` is named by its client id.
    let t = h.idp.sign(&with(&h, |c| {
        c.remove("sub");
    }));
    let (_, code, d) = call(&mut h, &t);
    assert_eq!(code, "bearer_authenticated");
    assert!(identity_headers(&d).contains(&("x-forwarded-user".into(), "svc-worker".into())));
}

#[test]
fn every_bad_token_is_a_401_invalid_token_never_a_redirect_or_a_cookie() {
    let mut h = Harness::with(api());
    let now = h.now.0;
    let good = claims(&h);
    let sig = h.idp.sign(&good);
    let mut tampered = sig.clone();
    tampered.pop();
    tampered.push(if sig.ends_with('A') { 'B' } else { 'A' });
    let rsa2 = test_key(RSA_2_PEM, "rsa-1"); // another key claiming the published kid
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad signature", tampered, "bearer_bad_signature"),
        (
            "signed by another key under our kid",
            sign_rs256(&rsa2, &good),
            "bearer_bad_signature",
        ),
        (
            "alg none",
            raw_jwt(&json!({"alg": "none", "kid": "rsa-1"}), &good, b""),
            "bearer_alg_not_allowed",
        ),
        (
            "HS256 keyed with the RSA public key",
            hs256_with_public_key("rsa-1", &good),
            "bearer_alg_not_allowed",
        ),
        (
            "crit header",
            raw_jwt(
                &json!({"alg": "RS256", "kid": "rsa-1", "crit": ["exp"]}),
                &good,
                b"x",
            ),
            "bearer_malformed",
        ),
        (
            "jku pointing elsewhere is ignored",
            raw_jwt(
                &json!({"alg": "RS256", "kid": "evil", "jku": "https://evil.test/jwks"}),
                &good,
                b"sig",
            ),
            "bearer_unknown_kid",
        ),
        (
            "x5u pointing elsewhere is ignored",
            raw_jwt(
                &json!({"alg": "RS256", "kid": "evil", "x5u": "https://evil.test/cert"}),
                &good,
                b"sig",
            ),
            "bearer_unknown_kid",
        ),
        (
            "an embedded jwk is ignored",
            {
                use base64::Engine as _;
                let pk = rsa2.public_key().to_components();
                let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
                let jwk = json!({"kty": "RSA", "n": b64(&pk.n), "e": b64(&pk.e)});
                raw_jwt(
                    &json!({"alg": "RS256", "kid": "evil", "jwk": jwk}),
                    &good,
                    b"sig",
                )
            },
            "bearer_unknown_kid",
        ),
        (
            "wrong iss",
            h.idp.sign(&with(&h, |c| {
                c.insert("iss".into(), json!("https://evil.test"));
            })),
            "bearer_unknown_issuer",
        ),
        (
            "trailing-slash iss",
            h.idp.sign(&with(&h, |c| {
                c.insert("iss".into(), json!(format!("{ISSUER}/")));
            })),
            "bearer_unknown_issuer",
        ),
        (
            "wrong aud",
            h.idp.sign(&with(&h, |c| {
                c.insert("aud".into(), json!("api://other"));
            })),
            "bearer_wrong_audience",
        ),
        (
            "aud of the login client (an ID token)",
            h.idp.sign(&with(&h, |c| {
                c.insert("aud".into(), json!("app"));
            })),
            "bearer_wrong_audience",
        ),
        (
            "no aud",
            h.idp.sign(&with(&h, |c| {
                c.remove("aud");
            })),
            "bearer_wrong_audience",
        ),
        (
            "expired",
            h.idp.sign(&with(&h, |c| {
                c.insert("exp".into(), json!(now - 61));
            })),
            "bearer_expired",
        ),
        (
            "missing exp",
            h.idp.sign(&with(&h, |c| {
                c.remove("exp");
            })),
            "bearer_exp_missing",
        ),
        (
            "negative exp",
            h.idp.sign(&with(&h, |c| {
                c.insert("exp".into(), json!(-1));
            })),
            "bearer_malformed",
        ),
        (
            "future nbf",
            h.idp.sign(&with(&h, |c| {
                c.insert("nbf".into(), json!(now + 600));
            })),
            "bearer_issued_in_future",
        ),
        (
            "future iat",
            h.idp.sign(&with(&h, |c| {
                c.insert("iat".into(), json!(now + 600));
            })),
            "bearer_issued_in_future",
        ),
        (
            "no sub, no client",
            h.idp.sign(&with(&h, |c| {
                c.remove("sub");
                c.remove("client_id");
            })),
            "bearer_sub_missing",
        ),
        (
            "unknown kid",
            sign_rs256(&test_key(RSA_2_PEM, "nope"), &good),
            "bearer_unknown_kid",
        ),
        ("not a JWT", "abc.def".to_string(), "bearer_malformed"),
        (
            "issuer B's token presented with A's audience",
            h.idp.sign(&with(&h, |c| {
                c.insert("iss".into(), json!(OTHER));
            })),
            "bearer_wrong_audience",
        ),
    ];
    for (what, token, want) in cases {
        let (s, code, d) = call(&mut h, &token);
        assert_eq!((s, code.as_str()), (401, want), "{what}");
        assert!(
            challenge(&d).contains("error=\"invalid_token\""),
            "{what}: {}",
            challenge(&d)
        );
        if let Decision::Respond { headers, .. } = &d {
            assert!(
                get_header(headers, "location").is_none(),
                "{what}: no redirect"
            );
            assert!(
                get_header(headers, "set-cookie").is_none(),
                "{what}: no cookie"
            );
            let text = format!("{headers:?}");
            assert!(
                !text.contains(&token[..token.len().min(40)]) || token.len() < 20,
                "{what}: token echoed"
            );
        }
    }
    // Tokens not in Bearer form.
    for auth in [
        "Basic YWxhZGRpbjpvcGVu",
        "Bearer",
        "Bearer a b",
        "bearer\tx.y.z",
    ] {
        let d = h.send("GET", "/api/x", &[("authorization", auth)], None);
        assert_eq!(status(&d), 401, "{auth}");
    }
    // Issuer B's own token, with B's audience, verifies through B's keys.
    let b = h.idp.sign(&with(&h, |c| {
        c.insert("iss".into(), json!(OTHER));
        c.insert("aud".into(), json!(["x", "api://other"]));
    }));
    assert_eq!(call(&mut h, &b).1, "bearer_authenticated");
    // A missing scope is 403 insufficient_scope.
    let t = h.idp.sign(&with(&h, |c| {
        c.insert("scope".into(), json!("write"));
    }));
    let (s, code, d) = call(&mut h, &t);
    assert_eq!((s, code.as_str()), (403, "insufficient_scope"));
    assert!(challenge(&d).contains("scope=\"read\""));
}

#[test]
fn rotation_refetches_once_and_a_flood_of_kids_costs_few_fetches() {
    let mut h = Harness::with(api());
    h.idp.rotate();
    let before = h.callouts.len();
    let t = h.idp.sign(&claims(&h));
    assert_eq!(
        call(&mut h, &t).1,
        "bearer_authenticated",
        "the new kid after a refetch"
    );
    assert_eq!(h.callouts.len() - before, 1, "one JWKS fetch");
    assert_eq!(call(&mut h, &t).1, "bearer_authenticated");
    assert_eq!(h.callouts.len() - before, 1, "cached: no more fetches");
    // 200 tokens with random kids within the refetch interval: no more fetches at all.
    for i in 0..200 {
        let k = test_key(RSA_2_PEM, &format!("random-{i}"));
        let t = sign_rs256(
            &k,
            &with(&h, |c| {
                c.insert("jti".into(), json!(format!("t{i}")));
            }),
        );
        assert_eq!(call(&mut h, &t).1, "bearer_unknown_kid");
    }
    assert_eq!(h.callouts.len() - before, 1, "the flood cost no fetch");
    h.advance(31);
    let k = test_key(RSA_2_PEM, "random-late");
    let late = sign_rs256(&k, &claims(&h));
    assert_eq!(call(&mut h, &late).1, "bearer_unknown_kid");
    assert_eq!(h.callouts.len() - before, 2, "one more after the interval");
}

#[test]
fn the_token_cache_hits_expires_and_evicts() {
    let mut h = Harness::with(api());
    let t1 = h.idp.sign(&with(&h, |c| {
        c.insert("exp".into(), json!(h.now.0 + 100));
    }));
    assert_eq!(call(&mut h, &t1).1, "bearer_authenticated");
    assert_eq!(call(&mut h, &t1).1, "bearer_authenticated");
    let (hits, misses, held) = h.vm.token_cache_stats();
    assert_eq!((hits, misses, held), (1, 1, 1));
    // Valid until exp (+ leeway), then refused even from the cache.
    h.advance(159);
    assert_eq!(call(&mut h, &t1).1, "bearer_authenticated");
    h.advance(1);
    assert_eq!(call(&mut h, &t1).1, "bearer_expired");
    // Bounded: a third token evicts the oldest.
    let mk = |h: &Harness, i: u64| {
        h.idp.sign(&with(h, |c| {
            c.insert("jti".into(), json!(format!("t{i}")));
        }))
    };
    let (a, b, c) = (mk(&h, 1), mk(&h, 2), mk(&h, 3));
    for t in [&a, &b, &c] {
        assert_eq!(call(&mut h, t).1, "bearer_authenticated");
    }
    let (_, misses0, held) = h.vm.token_cache_stats();
    assert_eq!(held, 2);
    assert_eq!(call(&mut h, &a).1, "bearer_authenticated");
    assert_eq!(
        h.vm.token_cache_stats().1,
        misses0 + 1,
        "the evicted token is verified again"
    );
}

fn introspecting() -> Value {
    let mut cfg = api();
    cfg["bearer"]["issuers"][0]["introspection"] =
        json!({"client_id": "rs", "client_secret": "rs-secret"});
    cfg
}

#[test]
fn opaque_tokens_are_introspected_cached_until_exp_and_refused_when_inactive() {
    let mut h = Harness::with(introspecting());
    let exp = h.now.0 + 100;
    h.idp.introspection.insert(
        "opaque-good".into(),
        json!({"active": true, "client_id": "svc-worker", "scope": "read", "aud": "api://demo",
               "iss": ISSUER, "exp": exp, "token_type": "Bearer"}),
    );
    h.idp.introspection.insert(
        "opaque-other-aud".into(),
        json!({"active": true, "client_id": "svc", "scope": "read", "aud": "api://elsewhere", "exp": exp}),
    );
    h.idp.introspection.insert(
        "opaque-other-iss".into(),
        json!({"active": true, "client_id": "svc", "scope": "read", "aud": "api://demo", "iss": "https://evil.test", "exp": exp}),
    );
    h.idp.introspection.insert(
        "opaque-no-scope".into(),
        json!({"active": true, "sub": "u1", "aud": "api://demo", "exp": exp}),
    );
    let (s, code, d) = call(&mut h, "opaque-good");
    assert_eq!((s, code.as_str()), (0, "bearer_authenticated"));
    assert!(identity_headers(&d).contains(&("x-forwarded-user".into(), "svc-worker".into())));
    assert_eq!(h.idp.introspected, 1);
    assert_eq!(call(&mut h, "opaque-good").1, "bearer_authenticated");
    assert_eq!(h.idp.introspected, 1, "cached");
    for (token, want) in [
        ("opaque-unknown", "bearer_inactive"),
        ("opaque-other-aud", "bearer_wrong_audience"),
        ("opaque-other-iss", "bearer_wrong_issuer"),
    ] {
        let (s, code, d) = call(&mut h, token);
        assert_eq!((s, code.as_str()), (401, want), "{token}");
        assert!(challenge(&d).contains("invalid_token"));
    }
    assert_eq!(call(&mut h, "opaque-no-scope").1, "insufficient_scope");
    // Past exp (+ leeway 60): even the cached one is refused, and introspection says so too.
    h.advance(161);
    assert_eq!(call(&mut h, "opaque-good").1, "bearer_expired");
    // The IdP failing is not the token's fault: 502/504, not 401.
    let mut h = Harness::with(introspecting());
    h.idp.introspection_override = Some((500, "oops".into()));
    assert_eq!(call(&mut h, "x1").0, 502);
    h.idp.introspection_override = Some((504, String::new()));
    let (s, code, _) = call(&mut h, "x2");
    assert_eq!((s, code.as_str()), (504, "introspection_timeout"));
    h.idp.introspection_override = Some((200, "<html>".into()));
    assert_eq!(call(&mut h, "x3").1, "introspection_unavailable");
    // Without introspection configured an opaque token is simply malformed.
    let mut h = Harness::with(api());
    assert_eq!(call(&mut h, "opaque-good").1, "bearer_malformed");
    assert_eq!(h.idp.introspected, 0);
}
