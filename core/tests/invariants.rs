//! Invariants over many random requests (seeded, so a failure reproduces): whatever the method, path,
//! headers and cookies, and however the clock moves,
//! - a non-public path is forwarded only with a currently valid session cookie;
//! - nothing forwarded carries a client-sent identity header or one of our cookies;
//! - the engine never panics.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::policy::headers::folds_to;
use portcullis_core::{Decision, Request};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;

const PATHS: &[&str] = &[
    "/",
    "/app",
    "/app?x=1",
    "/public/",
    "/public/a.css",
    "/public/../admin",
    "/public/%2e%2e/admin",
    "/public/..%2fadmin",
    "/public/..;/admin",
    "/public/%252e%252e/admin",
    "/public/%c0%ae%c0%ae/admin",
    "//public/x",
    "/public%2f..%2fadmin",
    "/healthz",
    "/healthz/..",
    "/oauth2/ping",
    "/oauth2/ping/x",
    "/oauth2/start?rd=//evil.com",
    "/oauth2/callback?code=a&state=bbbbbbbbbbbbbbbbbbbbbb",
    "/oauth2/userinfo",
    "/oauth2/sign_out",
    "/OAUTH2/ping",
    "*",
    "",
    "app",
    "/\u{0}",
    "/%",
    "/a b",
];
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get", ""];
const SPOOF: &[&str] = &[
    "x-forwarded-user",
    "X-Forwarded-User",
    "x_forwarded_user",
    "X-FORWARDED-EMAIL",
    "x-forwarded-groups",
    "x-auth-request-user",
    "X_Auth_Request_Email",
    "x-forwarded-access-token",
    "x-forwarded-preferred-username",
];

fn pick<'a>(rng: &mut ChaCha20Rng, xs: &[&'a str]) -> &'a str {
    xs[(rng.next_u32() as usize) % xs.len()]
}

#[test]
fn protected_routes_are_never_forwarded_without_a_valid_session() {
    let mut h = Harness::with(serde_json::json!({"cookie": {"session_ttl_seconds": 3600}}));
    let mut b = Browser::default();
    let _ = h.login(&mut b, "/", "alice");
    let valid = b.get("_pc").unwrap().to_string();
    let hint = b.get("_pc_hint").unwrap().to_string();
    let mut login_browser = Browser::default();
    let _ = h.start(&mut login_browser, "/");
    let login_cookie = login_browser.jar[0].clone();
    let issued = h.now;
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let mut forwarded = [0usize; 2];

    for i in 0..20_000 {
        if rng.next_u32() % 50 == 0 {
            h.advance(u64::from(rng.next_u32() % 400));
        }
        let path = pick(&mut rng, PATHS).to_string();
        let method = pick(&mut rng, METHODS);
        let mut headers: Vec<(String, String)> = vec![
            (":method".into(), method.into()),
            (":path".into(), path.clone()),
            (":authority".into(), "app.test".into()),
        ];
        if rng.next_u32() % 2 == 0 {
            headers.push((
                "accept".into(),
                pick(&mut rng, &["text/html", "application/json", "*/*"]).into(),
            ));
        }
        for _ in 0..rng.next_u32() % 3 {
            headers.push((pick(&mut rng, SPOOF).into(), "admin".into()));
        }
        let cookie_kind = rng.next_u32() % 7;
        let session_value = match cookie_kind {
            0 => None,
            1 | 2 => Some(valid.clone()),
            3 => {
                let mut v = valid.clone().into_bytes();
                let at = (rng.next_u32() as usize) % v.len();
                v[at] = if v[at] == b'A' { b'B' } else { b'A' };
                Some(String::from_utf8(v).unwrap())
            }
            4 => Some(valid[..(rng.next_u32() as usize) % valid.len()].to_string()),
            5 => Some(login_cookie.1.clone()),
            _ => Some(hint.clone()),
        };
        let mut cookie = String::from("theme=dark");
        if let Some(v) = &session_value {
            cookie.push_str(&format!("; _pc={v}"));
        }
        if rng.next_u32() % 3 == 0 {
            cookie.push_str(&format!(
                "; {}={}; _pc_hint={hint}",
                login_cookie.0, login_cookie.1
            ));
        }
        headers.push(("cookie".into(), cookie));

        let mut raw = portcullis_core::request::raw_headers(&headers);
        // Bytes that are not UTF-8 (Latin-1, as Envoy passes them through) in any header, a foreign
        // cookie and a spoofed identity header included.
        let hostile: &[(&[u8], &[u8])] = &[
            (b"user-agent", b"caf\xe9"),
            (b"cookie", b"lang=\xff\xfe; x=caf\xe9"),
            (b"X-Forwarded-User", b"adm\xefn"),
            (b"accept", b"text/\xe9"),
            (b"x-forwarded-proto", b"\xff"),
        ];
        for _ in 0..rng.next_u32() % 3 {
            raw.push(hostile[(rng.next_u32() as usize) % hostile.len()]);
        }
        let req = Request::from_headers(&raw);
        let d = h.engine.handle_request(&req, h.now, &mut h.rng, &mut h.vm);
        let Decision::Forward { .. } = &d else {
            continue;
        };

        let public = h
            .engine
            .config()
            .policy
            .route(&req)
            .is_ok_and(|r| r.action == portcullis_core::policy::rules::Action::Public);
        let session_ok =
            session_value.as_deref() == Some(valid.as_str()) && h.now.0 < issued.0 + 3600;
        assert!(
            public || session_ok,
            "#{i}: forwarded {method} {path:?} (cookie kind {cookie_kind}, t+{}): {d:?}",
            h.now.0 - issued.0
        );
        forwarded[usize::from(session_ok)] += 1;

        let Decision::Forward { request, .. } = &d else {
            unreachable!()
        };
        let up: Vec<(String, String)> = request
            .apply_raw(&raw)
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8_lossy(&n).into_owned(),
                    String::from_utf8_lossy(&v).into_owned(),
                )
            })
            .collect();
        for (n, v) in &up {
            if SPOOF
                .iter()
                .any(|s| folds_to(n.as_bytes(), &s.to_ascii_lowercase().replace('_', "-")))
            {
                assert!(!v.starts_with("adm"), "#{i}: spoofed {n} reached upstream");
            }
            if n.eq_ignore_ascii_case("cookie") {
                assert!(!v.contains("_pc"), "#{i}: our cookie reached upstream: {v}");
            }
        }
        if !session_ok {
            assert!(
                get_header(&up, "x-forwarded-user").is_none(),
                "#{i}: identity without a session"
            );
        }
    }
    // The generator must exercise both kinds of forwarding, or the test proves nothing.
    assert!(forwarded[0] > 100 && forwarded[1] > 100, "{forwarded:?}");
}
