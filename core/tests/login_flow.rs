//! Browser login, end to end inside the core: engine + fake IdP + simulated clock + seeded RNG.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::oidc::pkce::challenge_s256;
use portcullis_core::session::keyring::Purpose;
use portcullis_core::session::LoginState;
use portcullis_core::{Decision, Request};
use serde_json::json;

#[test]
fn unauthenticated_navigation_redirects_to_idp() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let d = h.navigate(&mut b, "/app/page?x=1");
    assert_eq!(status(&d), 302);
    let loc = location(&d);
    assert!(loc.starts_with("https://idp.test/auth?"), "{loc}");
    let q = query_of(&loc);
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], "app");
    assert_eq!(q["redirect_uri"], "https://app.test/oauth2/callback");
    assert_eq!(q["scope"], "openid email profile");
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["state"].len(), 22);
    assert_eq!(q["nonce"].len(), 22);
    assert_eq!(q["code_challenge"].len(), 43);
    // The login cookie binds state, nonce, verifier and the original URL, sealed.
    let Decision::Respond { headers, .. } = &d else {
        unreachable!()
    };
    let set = get_header(headers, "set-cookie").unwrap();
    assert!(
        set.contains("HttpOnly")
            && set.contains("Secure")
            && set.contains("SameSite=Lax")
            && set.contains("Max-Age=600"),
        "{set}"
    );
    let names = b.login_cookies();
    assert_eq!(names.len(), 1);
    let sealed = b.get(&names[0]).unwrap();
    assert!(
        !sealed.contains(&q["state"]) && !sealed.contains("/app/page"),
        "login cookie must be opaque"
    );
    let json = h
        .engine
        .config()
        .keys
        .open(
            Purpose::Login,
            &names[0],
            &h.engine.config().binding,
            sealed,
        )
        .unwrap();
    let login: LoginState = serde_json::from_slice(&json).unwrap();
    assert_eq!(login.state.0, q["state"]);
    assert_eq!(login.nonce.0, q["nonce"]);
    assert_eq!(challenge_s256(&login.verifier.0), q["code_challenge"]);
    assert_eq!(login.return_to, "/app/page?x=1");
    assert_eq!(login.expires_at, h.now.0 + 600);
}

#[test]
fn head_navigation_also_redirects_but_post_gets_401() {
    let mut h = Harness::new();
    assert_eq!(status(&h.send("HEAD", "/x", &[], None)), 302);
    let d = h.send("POST", "/x", &[], None);
    assert_eq!(status(&d), 401);
}

#[test]
fn login_completes_restores_the_original_url_and_forwards_identity() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let d = h.login(&mut b, "/app/page?x=1", "alice");
    assert_eq!(status(&d), 302, "{d:?}");
    assert_eq!(location(&d), "/app/page?x=1");
    assert_eq!(reason_code(&d), "login_completed");
    assert!(b.get("_pc").is_some());
    assert!(
        b.login_cookies().is_empty(),
        "the login cookie is deleted after use"
    );
    let Decision::Respond { headers, .. } = &d else {
        unreachable!()
    };
    let session_cookie = headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("_pc="))
        .unwrap();
    assert!(
        session_cookie.1.contains("HttpOnly; Secure; SameSite=Lax")
            && session_cookie.1.contains("Max-Age=28800")
    );
    assert_eq!(h.callouts, vec!["/token"]);

    let sent = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), "/app/page".to_string()),
        (
            "cookie".to_string(),
            format!("theme=dark; _pc={}; lang=en", b.get("_pc").unwrap()),
        ),
    ];
    let d = h.engine.handle_request(
        &Request::from_headers(&portcullis_core::request::raw_headers(&sent)),
        h.now,
        &mut h.rng,
        &mut h.vm,
    );
    assert_eq!(reason_code(&d), "authenticated");
    let up = upstream_headers(&d, &sent);
    let hv = |n: &str| get_header(&up, n).map(str::to_string);
    assert_eq!(hv("x-forwarded-user").as_deref(), Some("alice"));
    assert_eq!(
        hv("x-forwarded-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        hv("x-forwarded-groups").as_deref(),
        Some("staff,team-alice")
    );
    assert_eq!(
        hv("x-forwarded-preferred-username").as_deref(),
        Some("alice")
    );
    assert_eq!(hv("x-auth-request-user").as_deref(), Some("alice"));
    assert_eq!(
        hv("x-auth-request-email").as_deref(),
        Some("alice@example.com")
    );
    assert_eq!(
        hv("cookie").as_deref(),
        Some("theme=dark; lang=en"),
        "our cookie never goes upstream"
    );
    assert_eq!(
        hv("x-forwarded-access-token"),
        None,
        "tokens only when enabled"
    );
    assert_eq!(hv("authorization"), None);
}

#[test]
fn access_token_is_forwarded_only_when_enabled() {
    let mut h = Harness::with(
        json!({"headers": {"pass_access_token": true, "pass_authorization_header": true}}),
    );
    let mut b = Browser::default();
    let _ = h.login(&mut b, "/", "bob");
    let sent = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), "/".to_string()),
        ("authorization".to_string(), "Bearer forged".to_string()),
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
    let up = upstream_headers(&d, &sent);
    assert!(get_header(&up, "x-forwarded-access-token")
        .unwrap()
        .starts_with("at-"));
    assert!(get_header(&up, "authorization")
        .unwrap()
        .starts_with("Bearer at-"));
    assert_eq!(
        get_header(&up, "cookie"),
        None,
        "a Cookie header holding only our cookie is removed"
    );
}

#[test]
fn identity_headers_spoofed_by_the_client_are_removed_in_every_spelling() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let _ = h.login(&mut b, "/", "alice");
    let mut sent: Vec<(String, String)> = vec![
        (":method".into(), "GET".into()),
        (":path".into(), "/".into()),
        ("cookie".into(), format!("_pc={}", b.get("_pc").unwrap())),
    ];
    for n in [
        "X-Forwarded-User",
        "x-forwarded-user",
        "x_forwarded_user",
        "X-FORWARDED-EMAIL",
        "x-forwarded-groups",
        "X_Auth_Request_User",
        "x-auth-request-email",
        "x-forwarded-access-token",
    ] {
        sent.push((n.into(), "admin".into()));
    }
    let d = h.engine.handle_request(
        &Request::from_headers(&portcullis_core::request::raw_headers(&sent)),
        h.now,
        &mut h.rng,
        &mut h.vm,
    );
    let up = upstream_headers(&d, &sent);
    assert!(
        !up.iter().any(|(_, v)| v == "admin"),
        "spoofed values survived: {up:?}"
    );
    assert_eq!(
        up.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-forwarded-user"))
            .count(),
        1
    );

    // On a public path, the same spoofing is stripped too (and nothing is added).
    let mut public = sent.clone();
    public[1].1 = "/public/a.css".into();
    let d = h.engine.handle_request(
        &Request::from_headers(&portcullis_core::request::raw_headers(&public)),
        h.now,
        &mut h.rng,
        &mut h.vm,
    );
    assert_eq!(reason_code(&d), "public_path");
    let up = upstream_headers(&d, &public);
    assert!(!up.iter().any(|(n, _)| n
        .to_ascii_lowercase()
        .replace('_', "-")
        .starts_with("x-forwarded-user")));
    assert_eq!(get_header(&up, "cookie"), None);
}

#[test]
fn xhr_and_json_requests_get_401_and_no_login_cookie() {
    let mut h = Harness::new();
    for headers in [
        vec![("accept", "application/json")],
        vec![("x-requested-with", "XMLHttpRequest")],
        vec![("sec-fetch-mode", "cors")],
    ] {
        let d = h.send("GET", "/api/items?page=2", &headers, None);
        assert_eq!(status(&d), 401, "{headers:?}");
        let Decision::Respond { headers: rh, .. } = &d else {
            unreachable!()
        };
        assert!(get_header(rh, "www-authenticate")
            .unwrap()
            .starts_with("Bearer realm="));
        assert!(
            get_header(rh, "set-cookie").is_none(),
            "no login cookie for non-navigations"
        );
        assert_eq!(get_header(rh, "content-type"), Some("application/json"));
        let body = body_json(&d);
        assert_eq!(body["error"], "login_required");
        assert_eq!(
            body["login_url"],
            "/oauth2/start?rd=%2Fapi%2Fitems%3Fpage%3D2"
        );
    }
}

#[test]
fn parallel_logins_in_several_tabs_all_succeed() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let auth: Vec<String> = ["/one", "/two", "/three"]
        .iter()
        .map(|p| h.start(&mut b, p))
        .collect();
    assert_eq!(b.login_cookies().len(), 3);
    let callbacks: Vec<String> = auth.iter().map(|a| h.idp_login(a, "alice")).collect();
    // Finish them out of order.
    for (i, want) in [(2, "/three"), (0, "/one"), (1, "/two")] {
        let d = h.navigate(&mut b, &callbacks[i]);
        assert_eq!((status(&d), location(&d).as_str()), (302, want), "{d:?}");
    }
    assert!(b.login_cookies().is_empty());
}

#[test]
fn pending_login_cookies_are_capped_oldest_dropped() {
    let mut h = Harness::with(json!({"cookie": {"max_pending_logins": 2}}));
    let mut b = Browser::default();
    let first = h.start(&mut b, "/1");
    let _second = h.start(&mut b, "/2");
    let oldest = b.login_cookies()[0].clone();
    let third = h.start(&mut b, "/3");
    let names = b.login_cookies();
    assert_eq!(names.len(), 2);
    assert!(
        !names.contains(&oldest),
        "the oldest attempt's cookie was dropped"
    );
    let cb = h.idp_login(&first, "alice");
    assert_eq!(
        reason_code(&h.navigate(&mut b, &cb)),
        "login_cookie_missing"
    );
    let cb = h.idp_login(&third, "alice");
    assert_eq!(location(&h.navigate(&mut b, &cb)), "/3");
}

#[test]
fn callback_with_wrong_state_is_rejected() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/");
    let cb = h.idp_login(&auth, "alice");
    let state = query_of(&cb)["state"].clone();
    // Same cookie-name prefix (first 12 characters), different state.
    let mut forged = state.clone();
    forged.replace_range(20.., if &state[20..] == "AA" { "BB" } else { "AA" });
    let d = h.navigate(&mut b, &cb.replace(&state, &forged));
    assert_eq!((status(&d), reason_code(&d)), (403, "state_mismatch"));
    assert!(h.callouts.is_empty(), "no code exchange on a bad state");
    assert!(b.get("_pc").is_none());
}

#[test]
fn callback_replayed_after_success_is_rejected() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/");
    let cb = h.idp_login(&auth, "alice");
    assert_eq!(status(&h.navigate(&mut b, &cb)), 302);
    let mut fresh = Browser::default();
    let d = h.navigate(&mut fresh, &cb);
    assert_eq!((status(&d), reason_code(&d)), (403, "login_cookie_missing"));
    // The browser that already signed in is sent to the app (the code is not redeemed again).
    let before = h.callouts.len();
    let session = b.get("_pc").unwrap().to_string();
    let d = h.navigate(&mut b, &cb);
    assert_eq!(
        (status(&d), reason_code(&d), location(&d).as_str()),
        (302, "already_signed_in", "/")
    );
    assert_eq!(h.callouts.len(), before, "no second code exchange");
    assert_eq!(b.get("_pc"), Some(session.as_str()));
}

#[test]
fn twenty_tabs_starting_a_login_at_once_all_land_on_their_own_url() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let paths: Vec<String> = (0..20).map(|i| format!("/tab/{i}?q={i}")).collect();
    let auth: Vec<String> = paths.iter().map(|p| h.start(&mut b, p)).collect();
    assert_eq!(b.login_cookies().len(), 20, "no attempt was evicted");
    let bytes: usize = b
        .jar
        .iter()
        .filter(|(n, _)| n.starts_with("_pc_login_"))
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum();
    assert!(
        bytes < 8 * 1024,
        "20 attempts take {bytes} bytes of Cookie header"
    );
    let callbacks: Vec<String> = auth.iter().map(|a| h.idp_login(a, "alice")).collect();
    // The IdP answers them in any order; each lands where it started.
    for i in (0..20).rev().step_by(2).chain((0..20).step_by(2)) {
        let d = h.navigate(&mut b, &callbacks[i]);
        assert_eq!(
            (reason_code(&d), location(&d)),
            ("login_completed", paths[i].clone()),
            "tab {i}"
        );
    }
    assert!(b.login_cookies().is_empty());
    // A twenty-first pending attempt evicts the oldest (the cap is documented: 20 by default).
    let mut c = Browser::default();
    let first: Vec<String> = (0..21)
        .map(|i| h.start(&mut c, &format!("/t{i}")))
        .collect();
    assert_eq!(c.login_cookies().len(), 20);
    let cb = h.idp_login(&first[0], "alice");
    assert_eq!(
        reason_code(&h.navigate(&mut c, &cb)),
        "login_cookie_missing"
    );
}

#[test]
fn a_stale_attempt_expires() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/late");
    let cb = h.idp_login(&auth, "alice");
    h.advance(601);
    let d = h.navigate(&mut b, &cb);
    assert_eq!((status(&d), reason_code(&d)), (403, "login_cookie_invalid"));
}

#[test]
fn callback_without_login_cookie_is_rejected() {
    let mut h = Harness::new();
    let mut victim = Browser::default();
    let auth = h.start(&mut victim, "/");
    let cb = h.idp_login(&auth, "attacker");
    // Login CSRF: the attacker's callback URL opened in another browser.
    let mut other = Browser::default();
    let d = h.navigate(&mut other, &cb);
    assert_eq!((status(&d), reason_code(&d)), (403, "login_cookie_missing"));
    let Decision::Respond { headers, body, .. } = &d else {
        unreachable!()
    };
    assert!(get_header(headers, "content-type")
        .unwrap()
        .starts_with("text/html"));
    assert!(String::from_utf8_lossy(body).contains("login_cookie_missing"));
}

#[test]
fn callback_error_cases_get_clear_statuses() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/");
    let state = query_of(&auth)["state"].clone();
    let d = h.navigate(
        &mut b,
        &format!("/oauth2/callback?error=access_denied&state={state}"),
    );
    assert_eq!((status(&d), reason_code(&d)), (403, "idp_error"));
    assert!(
        b.login_cookies().is_empty(),
        "the attempt's cookie is cleared"
    );
    for (q, want) in [
        ("code=x", "callback_malformed"),
        ("state=abc", "callback_malformed"),
        ("code=x&code=y&state=s", "callback_malformed"),
        ("", "callback_malformed"),
    ] {
        let d = h.navigate(&mut Browser::default(), &format!("/oauth2/callback?{q}"));
        assert_eq!((status(&d), reason_code(&d)), (400, want), "{q}");
    }
    let auth = h.start(&mut b, "/");
    let cb = h.idp_login(&auth, "alice");
    let d = h.navigate(
        &mut b,
        &cb.replace("iss=https%3A%2F%2Fidp.test", "iss=https%3A%2F%2Fevil.test"),
    );
    assert_eq!((status(&d), reason_code(&d)), (400, "issuer_mismatch"));
    let d = h.send("POST", "/oauth2/callback?code=x&state=y", &[], Some(&b));
    assert_eq!(status(&d), 405);
    // API clients get JSON.
    let d = h.send(
        "GET",
        "/oauth2/callback?error=x",
        &[("accept", "application/json")],
        None,
    );
    assert_eq!(body_json(&d)["error"], "idp_error");
}

#[test]
fn expired_login_attempt_is_rejected() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/");
    let cb = h.idp_login(&auth, "alice");
    h.advance(601);
    let d = h.navigate(&mut b, &cb);
    assert_eq!((status(&d), reason_code(&d)), (403, "login_cookie_invalid"));
}

#[test]
fn tampered_login_cookie_is_rejected() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/");
    let cb = h.idp_login(&auth, "alice");
    let name = b.login_cookies()[0].clone();
    let v = b.get(&name).unwrap().to_string();
    let flipped = format!(
        "{}{}",
        &v[..v.len() - 1],
        if v.ends_with('A') { 'B' } else { 'A' }
    );
    b.set(&name, &flipped);
    let d = h.navigate(&mut b, &cb);
    assert_eq!((status(&d), reason_code(&d)), (403, "login_cookie_invalid"));
}

#[test]
fn token_endpoint_failures_end_in_clear_errors() {
    for (setup, want_status, want_reason) in [
        (
            (
                Some((500u16, b"{\"error\":\"server_error\"}".to_vec())),
                false,
            ),
            502,
            "token_endpoint_error",
        ),
        (
            (Some((200, b"<html>not json".to_vec())), false),
            502,
            "token_response_invalid",
        ),
        (
            (
                Some((
                    200,
                    b"{\"access_token\":\"x\",\"token_type\":\"Bearer\"}".to_vec(),
                )),
                false,
            ),
            502,
            "token_response_invalid",
        ),
        (
            (
                Some((
                    200,
                    b"{\"id_token\":\"a.b.c\",\"token_type\":\"MAC\"}".to_vec(),
                )),
                false,
            ),
            502,
            "token_response_invalid",
        ),
        ((None, true), 502, "token_endpoint_error"),
        (
            (Some((504, b"upstream request timeout".to_vec())), false),
            504,
            "token_endpoint_timeout",
        ),
        (
            (
                Some((
                    503,
                    b"upstream connect error or disconnect/reset before headers".to_vec(),
                )),
                false,
            ),
            503,
            "token_endpoint_unavailable",
        ),
        (
            (Some((200, b"{\"id_token\":\"".to_vec())), false),
            502,
            "token_response_invalid",
        ),
        (
            (Some((200, b"[]".to_vec())), false),
            502,
            "token_response_invalid",
        ),
        (
            (
                Some((
                    200,
                    vec![b' '; portcullis_core::decision::MAX_CALLOUT_BODY + 1],
                )),
                false,
            ),
            502,
            "token_response_invalid",
        ),
    ] {
        let mut h = Harness::new();
        let mut b = Browser::default();
        let auth = h.start(&mut b, "/");
        let cb = h.idp_login(&auth, "alice");
        h.callout_override = setup.0;
        h.callout_fails = setup.1;
        let d = h.navigate(&mut b, &cb);
        assert_eq!((status(&d), reason_code(&d)), (want_status, want_reason));
        assert!(b.get("_pc").is_none(), "never a session on failure");
    }
}

#[test]
fn client_secret_post_and_public_clients_exchange_codes() {
    let mut h = Harness::with(json!({"client_auth": "client_secret_post"}));
    let mut b = Browser::default();
    assert_eq!(
        reason_code(&h.login(&mut b, "/", "alice")),
        "login_completed"
    );

    let mut cfg = base_config();
    cfg.as_object_mut().unwrap().remove("client_secret");
    let mut h = Harness::with(json!({}));
    h.reconfigure(&cfg);
    let mut b = Browser::default();
    assert_eq!(
        reason_code(&h.login(&mut b, "/", "alice")),
        "login_completed"
    );

    // A wrong secret is refused by the IdP: 502, no session.
    let mut h = Harness::with(json!({"client_secret": "wrong"}));
    let mut b = Browser::default();
    let d = h.login(&mut b, "/", "alice");
    assert_eq!((status(&d), reason_code(&d)), (502, "token_endpoint_error"));
}

#[test]
fn open_redirects_via_rd_fall_back_to_root() {
    for rd in [
        "//evil.com",
        "/\\evil.com",
        "https://evil.com/",
        "/%2F%2Fevil.com",
        "https%3A%2F%2Fevil.com",
        "javascript:alert(1)",
        "/%09/evil.com",
    ] {
        let mut h = Harness::new();
        let mut b = Browser::default();
        let d = h.login(
            &mut b,
            &format!(
                "/oauth2/start?rd={}",
                portcullis_core::request::encode_component(rd)
            ),
            "alice",
        );
        assert_eq!(location(&d), "/", "rd={rd}");
    }
    let mut h = Harness::new();
    let mut b = Browser::default();
    let d = h.login(
        &mut b,
        "/oauth2/start?rd=https%3A%2F%2Fgrafana.example.com%2Fd%2F1",
        "alice",
    );
    assert_eq!(
        location(&d),
        "https://grafana.example.com/d/1",
        "allowlisted subdomain"
    );
    let mut b = Browser::default();
    let d = h.login(&mut b, "/oauth2/start?rd=%2Fdash%3Fa%3D1", "alice");
    assert_eq!(location(&d), "/dash?a=1");
}

#[test]
fn protocol_relative_original_url_is_not_restored() {
    // Without rules the path is not normalised, so the login starts and must not come back to it.
    let mut h = Harness::with(json!({"public_paths": []}));
    let mut b = Browser::default();
    let d = h.login(&mut b, "//evil.com/x", "alice");
    assert_eq!(location(&d), "/");
    // With rules, a path with an empty segment cannot be matched safely: 400, no login at all.
    let mut h = Harness::new();
    let d = h.send("GET", "//evil.com/x", &[("accept", "text/html")], None);
    assert_eq!((status(&d), reason_code(&d)), (400, "path_invalid"));
}

#[test]
fn redirect_uri_follows_the_forwarded_proto_and_host() {
    let mut h = Harness::new();
    let d = h.send("GET", "/", &[("x-forwarded-proto", "http")], None);
    assert_eq!(
        query_of(&location(&d))["redirect_uri"],
        "http://app.test/oauth2/callback"
    );
    let mut h = Harness::with(json!({"redirect_url": "https://auth.example.com/oauth2/callback"}));
    let d = h.send("GET", "/", &[], None);
    assert_eq!(
        query_of(&location(&d))["redirect_uri"],
        "https://auth.example.com/oauth2/callback"
    );
}

#[test]
fn requests_before_the_provider_is_ready_get_503_never_pass() {
    let mut h = Harness::unready(json!({}));
    let d = h.send("GET", "/app", &[], None);
    assert_eq!((status(&d), reason_code(&d)), (503, "provider_not_ready"));
    let Decision::Respond { headers, .. } = &d else {
        unreachable!()
    };
    assert_eq!(get_header(headers, "retry-after"), Some("2"));
    assert_eq!(
        status(&h.send("GET", "/oauth2/callback?code=a&state=b", &[], None)),
        503
    );
    assert_eq!(
        status(&h.send("GET", "/api", &[("accept", "application/json")], None)),
        401
    );
    assert_eq!(
        reason_code(&h.send("GET", "/public/x", &[], None)),
        "public_path"
    );
    h.load_provider();
    assert_eq!(status(&h.send("GET", "/app", &[], None)), 302);
}

#[test]
fn ping_is_exact_and_public_paths_are_normalized() {
    let mut h = Harness::unready(json!({}));
    let d = h.send("GET", "/oauth2/ping", &[], None);
    assert_eq!((status(&d), reason_code(&d)), (200, "ping"));
    h.load_provider();
    assert_eq!(status(&h.send("GET", "/oauth2/ping/x", &[], None)), 302);
    assert_eq!(status(&h.send("GET", "/oauth2/pingx", &[], None)), 302);
    assert_eq!(
        reason_code(&h.send("GET", "/public/app.css?v=1", &[], None)),
        "public_path"
    );
    assert_eq!(
        reason_code(&h.send("GET", "/healthz", &[], None)),
        "public_path"
    );
    // Resolved to a protected path (login), or not normalisable at all (400): never public.
    for (sneaky, want) in [
        ("/public/../admin", 302),
        ("/public/%2e%2e/admin", 302),
        ("/public/..%2Fadmin", 400),
        ("/public/..;/admin", 400),
        ("/public%2F../admin", 400),
        ("/healthz/../admin", 302),
        ("/public//../admin", 400),
    ] {
        assert_eq!(
            status(&h.send("GET", sneaky, &[], None)),
            want,
            "{sneaky} must require login or be refused"
        );
    }
}

#[test]
fn failing_randomness_mints_nothing() {
    struct Broken;
    impl rand_core::RngCore for Broken {
        fn next_u32(&mut self) -> u32 {
            0
        }
        fn next_u64(&mut self) -> u64 {
            0
        }
        fn fill_bytes(&mut self, _: &mut [u8]) {}
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), rand_core::Error> {
            Err(rand_core::Error::from(
                core::num::NonZeroU32::new(rand_core::Error::CUSTOM_START).unwrap(),
            ))
        }
    }
    impl rand_core::CryptoRng for Broken {}
    let mut h = Harness::new();
    let sent = vec![
        (":method".to_string(), "GET".to_string()),
        (":path".to_string(), "/".to_string()),
    ];
    let d = h.engine.handle_request(
        &Request::from_headers(&portcullis_core::request::raw_headers(&sent)),
        h.now,
        &mut Broken,
        &mut h.vm,
    );
    assert_eq!(
        (status(&d), reason_code(&d)),
        (500, "randomness_unavailable")
    );
}
