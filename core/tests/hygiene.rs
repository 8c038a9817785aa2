//! Identity hygiene: what reaches the upstream as the user is only what the IdP vouches for, and a
//! session is only good where it was minted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::Decision;
use serde_json::{json, Value};

/// Signs in `user` with `claims` patched into the ID token, then returns the identity headers of a
/// request to `/app` (or the failed callback's decision code).
fn sign_in_with(patch: Value, cfg: Value) -> Result<Vec<(String, String)>, &'static str> {
    let mut h = Harness::with(cfg);
    let mut b = Browser::default();
    let d = login_with_token(&mut h, &mut b, "/app", "alice", |h, mut c| {
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
        h.idp.sign(&c)
    });
    if reason_code(&d) != "login_completed" {
        assert!(b.get("_pc").is_none(), "never a session on failure");
        return Err(reason_code(&d));
    }
    let d = h.send("GET", "/app", &[("accept", "text/html")], Some(&b));
    assert_eq!(reason_code(&d), "authenticated");
    Ok(identity_headers(&d))
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    get_header(h, name)
}

#[test]
fn only_a_verified_email_is_forwarded() {
    for (verified, forwarded) in [
        (json!(true), true),
        (json!("true"), true),
        (json!(false), false),
        (json!("false"), false),
        (json!(1), false),
        (Value::Null, false),
    ] {
        let h = sign_in_with(json!({"email_verified": verified}), json!({})).unwrap();
        for name in ["x-forwarded-email", "x-auth-request-email"] {
            assert_eq!(
                header(&h, name),
                forwarded.then_some("alice@example.com"),
                "email_verified {verified}: {name}"
            );
        }
        assert_eq!(header(&h, "x-forwarded-user"), Some("alice"));
    }
}

#[test]
fn the_unverified_email_opt_out_forwards_it() {
    let h = sign_in_with(
        json!({"email_verified": false}),
        json!({"insecure_allow_unverified_email": true}),
    )
    .unwrap();
    assert_eq!(header(&h, "x-forwarded-email"), Some("alice@example.com"));
}

#[test]
fn an_unverified_email_is_never_the_user() {
    let cfg = json!({"claims": {"user": "email"}});
    assert_eq!(
        sign_in_with(json!({"email_verified": "false"}), cfg.clone()),
        Err("email_unverified")
    );
    assert_eq!(
        sign_in_with(json!({"email_verified": null}), cfg.clone()),
        Err("email_unverified")
    );
    let h = sign_in_with(json!({}), cfg).unwrap();
    assert_eq!(header(&h, "x-forwarded-user"), Some("alice@example.com"));
}

#[test]
fn group_names_with_commas_or_control_characters_are_dropped() {
    let h = sign_in_with(
        json!({"groups": ["staff", "ops,admins", "bell\u{7}", "line\nbreak", "", "dev"]}),
        json!({}),
    )
    .unwrap();
    assert_eq!(header(&h, "x-forwarded-groups"), Some("staff,dev"));
    let h = sign_in_with(json!({"groups": "a,b"}), json!({})).unwrap();
    assert_eq!(header(&h, "x-forwarded-groups"), None);
    let h = sign_in_with(json!({"groups": "solo"}), json!({})).unwrap();
    assert_eq!(header(&h, "x-forwarded-groups"), Some("solo"));
}

#[test]
fn a_session_is_bound_to_its_client_id_unless_sharing_is_configured() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    assert_eq!(
        reason_code(&h.login(&mut b, "/", "alice")),
        "login_completed"
    );
    // The session of client `app` (issuer ISSUER), presented to deployments sharing its key ring.
    let mut verdict = |patch: Value| {
        let mut cfg = base_config();
        merge(&mut cfg, &patch);
        h.reconfigure_without_keys(&cfg);
        reason_code(&h.send("GET", "/x", &[("accept", "application/json")], Some(&b)))
    };
    assert_eq!(verdict(json!({})), "authenticated", "the control");
    assert_eq!(
        verdict(json!({"client_id": "other-app"})),
        "login_required",
        "another client id"
    );
    assert_eq!(
        verdict(json!({"client_id": "other-app", "cookie": {"accept_client_ids": ["app"]}})),
        "authenticated",
        "another client id configured to accept app's sessions"
    );
    assert_eq!(
        verdict(json!({"issuer": "https://other-idp.test"})),
        "login_required",
        "another issuer, same client id"
    );
}

#[test]
fn non_utf8_pseudo_headers_are_a_400_and_other_bytes_pass() {
    use portcullis_core::request::RawHeader;
    use portcullis_core::{Decision, Request};
    let mut h = Harness::new();
    let mut b = Browser::default();
    assert_eq!(
        reason_code(&h.login(&mut b, "/", "alice")),
        "login_completed"
    );
    let cookie = format!("theme=caf\u{e9}; {}", b.cookie_header().unwrap());
    let mut cookie_bytes = cookie.into_bytes();
    // A Latin-1 byte (not UTF-8) in a foreign cookie must not hide the session.
    let pos = cookie_bytes.iter().position(|&c| c == 0xc3).unwrap();
    cookie_bytes.splice(pos..pos + 2, [0xe9]);
    let ok: Vec<RawHeader<'_>> = vec![
        (b":method", b"GET"),
        (b":path", b"/app"),
        (b":authority", b"app.test"),
        (b"user-agent", b"caf\xe9"),
        (b"cookie", &cookie_bytes),
    ];
    let d = h
        .engine
        .handle_request(&Request::from_headers(&ok), h.now, &mut h.rng, &mut h.vm);
    let Decision::Forward { request, .. } = &d else {
        panic!("expected Forward, got {d:?}")
    };
    let up = request.apply_raw(&ok);
    let cookie_up = up.iter().find(|(n, _)| n == b"cookie").unwrap();
    assert_eq!(
        cookie_up.1, b"theme=caf\xe9",
        "foreign cookie kept byte for byte, ours removed"
    );
    assert!(up
        .iter()
        .any(|(n, v)| n == b"user-agent" && v == b"caf\xe9"));
    for bad in [
        vec![
            (&b":method"[..], &b"GET"[..]),
            (b":path", b"/caf\xe9"),
            (b":authority", b"app.test"),
        ],
        vec![
            (b":method", b"GET"),
            (b":path", b"/"),
            (b":authority", b"\xff"),
        ],
    ] {
        let d = h
            .engine
            .handle_request(&Request::from_headers(&bad), h.now, &mut h.rng, &mut h.vm);
        assert_eq!((status(&d), reason_code(&d)), (400, "request_malformed"));
    }
}

/// `headers.identity` picks the families sent upstream (each one a host call per header per request);
/// every spelling of both is still stripped from what the client sends, and `/oauth2/auth` still
/// answers with `X-Auth-Request-*`.
#[test]
fn identity_families_are_chosen_by_configuration_and_both_are_always_stripped() {
    for (families, forwarded, auth_request) in [
        (json!(null), true, true),
        (json!(["x-forwarded"]), true, false),
        (json!(["x-auth-request"]), false, true),
        (json!(["x-forwarded", "x-auth-request"]), true, true),
        (json!([]), false, false),
    ] {
        let cfg = if families.is_null() {
            json!({})
        } else {
            json!({"headers": {"identity": families}})
        };
        let mut h = Harness::with(cfg);
        let mut b = Browser::default();
        let d = h.login(&mut b, "/app", "alice");
        assert_eq!(reason_code(&d), "login_completed", "{families}");
        let sent: Vec<(String, String)> = [
            ("x-auth-request-user", "mallory"),
            ("X_Forwarded_User", "mallory"),
            ("x-forwarded-email", "mallory@evil.test"),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        let hs: Vec<(&str, &str)> = sent.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
        let d = h.send("GET", "/app", &hs, Some(&b));
        assert_eq!(reason_code(&d), "authenticated", "{families}");
        let up = upstream_headers(&d, &sent);
        let values = |name: &str| -> Vec<&str> {
            up.iter()
                .filter(|(n, _)| {
                    n.eq_ignore_ascii_case(name) || n.replace('_', "-").eq_ignore_ascii_case(name)
                })
                .map(|(_, v)| v.as_str())
                .collect()
        };
        assert!(
            !up.iter().any(|(_, v)| v.contains("mallory")),
            "{families}: {up:?}"
        );
        assert_eq!(
            values("x-forwarded-user"),
            if forwarded { vec!["alice"] } else { vec![] },
            "{families}"
        );
        assert_eq!(
            values("x-auth-request-user"),
            if auth_request { vec!["alice"] } else { vec![] },
            "{families}"
        );
        assert_eq!(
            values("x-forwarded-email").len(),
            usize::from(forwarded),
            "{families}"
        );
        let d = h.send("GET", "/oauth2/auth", &[], Some(&b));
        assert_eq!(status(&d), 202, "{families}");
        let Decision::Respond { headers, .. } = &d else {
            panic!("{d:?}")
        };
        assert_eq!(
            get_header(headers, "x-auth-request-user"),
            Some("alice"),
            "{families}"
        );
    }
    let mut cfg = base_config();
    merge(
        &mut cfg,
        &json!({"headers": {"identity": ["x-forwarded", "x-remote"]}}),
    );
    let err = portcullis_core::Engine::from_json(cfg.to_string().as_bytes())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("headers.identity[1]"), "{err}");
}
