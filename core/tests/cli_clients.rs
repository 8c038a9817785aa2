//! Issue 7: what command-line clients need. SkyPilot's token page sees our session cookie on the
//! routes that forward it; CLIs get 401s, never login redirects, on API routes; Flyte's clients send
//! `flyte-authorization`; `{prefix}/auth` answers oauth2-proxy's way; the token page's session token
//! works as a bearer and as the cookie; the STS exchanges a code for a token of ours.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use common::*;
use jwt_simple::prelude::*;
use portcullis_core::Decision;
use serde_json::{json, Value};

const JSON: (&str, &str) = ("accept", "application/json");

fn signed_in(h: &mut Harness, user: &str) -> Browser {
    let mut b = Browser::default();
    let d = h.login(&mut b, "/", user);
    assert_eq!(reason_code(&d), "login_completed");
    b
}

fn headers_of(d: &Decision) -> Vec<(String, String)> {
    match d {
        Decision::Respond { headers, .. } => headers.clone(),
        _ => Vec::new(),
    }
}

fn body_text(d: &Decision) -> String {
    match d {
        Decision::Respond { body, .. } => String::from_utf8_lossy(body).into_owned(),
        _ => String::new(),
    }
}

/// The request as sent (pseudo-headers and all), for checking what reaches the upstream.
fn sent(path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = vec![
        (":method".into(), "GET".into()),
        (":path".into(), path.into()),
        (":authority".into(), "app.test".into()),
    ];
    h.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    h
}

fn cookie_of(b: &Browser) -> String {
    b.cookie_header().unwrap()
}

// ----- SkyPilot: the session cookie on configured routes, API routes, {prefix}/auth ------------------

fn skypilot() -> Harness {
    Harness::with(json!({"routes": {"rules": [
        {"name": "token-page", "path": "/token", "action": "authenticate", "forward_session_cookie": true},
        {"name": "api", "prefix": "/api", "action": "authenticate", "api": true},
    ]}}))
}

#[test]
fn the_session_cookie_reaches_the_upstream_only_on_routes_that_forward_it() {
    let mut h = skypilot();
    let mut b = signed_in(&mut h, "alice");
    // A login attempt cookie and a foreign cookie ride along.
    b.set("_pc_login_x", "attempt");
    b.set("theme", "dark");
    let cookie = cookie_of(&b);
    let session = b.get("_pc").unwrap().to_string();
    for (path, forwarded) in [
        ("/token", true),
        ("/api/v1/status", false),
        ("/other", false),
    ] {
        let d = h.send("GET", path, &[JSON, ("cookie", &cookie)], None);
        assert_eq!(reason_code(&d), "authenticated", "{path}");
        let up = upstream_headers(&d, &sent(path, &[("cookie", &cookie)]));
        let c = get_header(&up, "cookie").unwrap_or_default().to_string();
        assert_eq!(
            c.contains(&format!("_pc={session}")),
            forwarded,
            "{path}: {c}"
        );
        assert!(c.contains("theme=dark"), "{path}: {c}");
        assert!(
            !c.contains("_pc_login_"),
            "{path}: login cookies never go upstream: {c}"
        );
        assert_eq!(
            get_header(&up, "x-auth-request-email"),
            Some("alice@example.com")
        );
    }
}

#[test]
fn every_chunk_of_a_large_session_is_forwarded_and_the_upstream_can_replay_them() {
    let mut h = skypilot();
    let (b, d) = login_with_groups(&mut h, 200);
    assert_eq!(reason_code(&d), "login_completed");
    assert!(
        b.get("_pc_1").is_some(),
        "the session spans several cookies"
    );
    let cookie = cookie_of(&b);
    let d = h.send("GET", "/token", &[JSON, ("cookie", &cookie)], None);
    let up = upstream_headers(&d, &sent("/token", &[("cookie", &cookie)]));
    let forwarded = get_header(&up, "cookie").unwrap().to_string();
    for (name, value) in &b.jar {
        assert!(
            forwarded.contains(&format!("{name}={value}")),
            "{name} forwarded"
        );
    }
    // What the upstream hands the CLI (the cookies it received) authenticates the CLI.
    h.vm.clear_session_cache();
    let d = h.send("GET", "/api/v1/status", &[("cookie", &forwarded)], None);
    assert_eq!(reason_code(&d), "authenticated");
}

#[test]
fn api_routes_answer_401_with_where_to_log_in_whatever_the_accept() {
    let mut h = skypilot();
    for accept in ["*/*", "text/html", "application/json"] {
        let d = h.send("GET", "/api/health", &[("accept", accept)], None);
        assert_eq!(
            (status(&d), reason_code(&d)),
            (401, "login_required"),
            "{accept}"
        );
        let body = body_json(&d);
        assert_eq!(body["login_url"], "/oauth2/start?rd=%2Fapi%2Fhealth");
        assert_eq!(body["token_url"], "/oauth2/token");
        let link = get_header(&headers_of(&d), "link").unwrap().to_string();
        assert_eq!(
            link,
            "</oauth2/start?rd=%2Fapi%2Fhealth>; rel=\"login\", </oauth2/token>; rel=\"token\""
        );
    }
    // The same request on a route that is not an API route is a browser navigation: a login.
    let d = h.send("GET", "/dashboard", &[("accept", "*/*")], None);
    assert_eq!((status(&d), reason_code(&d)), (302, "login_started"));
}

#[test]
fn the_auth_endpoint_answers_202_with_the_identity_or_401() {
    let mut h = Harness::new();
    let b = signed_in(&mut h, "alice");
    let d = h.send("GET", "/oauth2/auth", &[], Some(&b));
    assert_eq!((status(&d), reason_code(&d)), (202, "auth_checked"));
    let hs = headers_of(&d);
    assert_eq!(get_header(&hs, "x-auth-request-user"), Some("alice"));
    assert_eq!(
        get_header(&hs, "x-auth-request-email"),
        Some("alice@example.com")
    );
    assert!(get_header(&hs, "x-auth-request-groups")
        .is_some_and(|g| g.split(',').any(|x| x == "team-alice")));
    // Never the upstream-only headers, never a cookie.
    assert!(hs
        .iter()
        .all(|(n, _)| !n.starts_with("x-forwarded-") && n != "set-cookie"));
    // The policy of the original request decides (X-Forwarded-Uri / X-Original-URI, host, method).
    let mut p = Harness::with(json!({"routes": {"rules": [
        {"name": "admin", "prefix": "/admin", "action": "authenticate", "require": {"groups": ["admins"]}},
        {"name": "closed", "prefix": "/closed", "action": "deny"},
    ]}}));
    let a = signed_in(&mut p, "alice");
    for (hs, want) in [
        (vec![("x-forwarded-uri", "/admin/users?x=1")], 403),
        (vec![("x-original-uri", "/admin")], 403),
        (vec![("x-forwarded-uri", "/closed")], 403),
        (vec![("x-forwarded-uri", "/reports")], 202),
        (vec![("x-forwarded-uri", "/%2e%2e/admin")], 403),
        (vec![("x-forwarded-uri", "no-slash")], 400),
        // SkyPilot sends the whole URL, its trailing `/` cut.
        (
            vec![("x-forwarded-uri", "http://127.0.0.1:46580/admin/x")],
            403,
        ),
        (vec![("x-forwarded-uri", "http://127.0.0.1:46580")], 202),
    ] {
        let d = p.send("GET", "/oauth2/auth", &hs, Some(&a));
        assert_eq!(status(&d), want, "{hs:?}");
    }
    // Without a session, or a tampered one: 401 and no redirect, whatever the client accepts.
    let mut forged = b.clone();
    let v = forged.get("_pc").unwrap().to_string();
    forged.set("_pc", &format!("{}A", &v[..v.len() - 1]));
    h.vm.clear_session_cache();
    for who in [None, Some(&forged)] {
        let d = h.send("GET", "/oauth2/auth", &[("accept", "text/html")], who);
        assert_eq!((status(&d), reason_code(&d)), (401, "login_required"));
    }
}

// ----- the token page and session tokens ---------------------------------------------------------------

fn token_of(h: &mut Harness, b: &Browser) -> String {
    let d = h.send("GET", "/oauth2/token", &[JSON], Some(b));
    assert_eq!((status(&d), reason_code(&d)), (200, "session_token_issued"));
    let j = body_json(&d);
    assert_eq!(j["user"], "alice");
    assert_eq!(j["token_type"], "session");
    j["token"].as_str().unwrap().to_string()
}

#[test]
fn the_token_page_shows_the_session_and_keeps_it_private() {
    let mut h = Harness::with(json!({"token_page": true}));
    // Without a session: a navigation logs in and comes back to the page; an API call gets a 401.
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/oauth2/token");
    let cb = h.idp_login(&auth, "alice");
    let d = h.navigate(&mut b, &cb);
    assert_eq!(location(&d), "/oauth2/token");
    let d = h.send("GET", "/oauth2/token", &[JSON], None);
    assert_eq!(status(&d), 401);
    // With one: the HTML shows exactly the session cookie's value.
    let d = h.send("GET", "/oauth2/token", &[("accept", "text/html")], Some(&b));
    let html = body_text(&d);
    let session = b.get("_pc").unwrap();
    assert!(html.contains(&format!("<code id=\"portcullis-token\" style=\"word-break:break-all;white-space:pre-wrap\">{session}</code>")), "{html}");
    let hs = headers_of(&d);
    assert_eq!(get_header(&hs, "cache-control"), Some("no-store"));
    assert_eq!(get_header(&hs, "x-frame-options"), Some("DENY"));
    assert!(get_header(&hs, "content-security-policy")
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(token_of(&mut h, &b), session);
    let d = h.send("POST", "/oauth2/token", &[JSON], Some(&b));
    assert_eq!(status(&d), 405);
    // A script of the app (an XSS) or a frame cannot read it with the cookie; a top-level navigation can.
    for hs in [
        vec![
            ("sec-fetch-mode", "cors"),
            ("sec-fetch-dest", "empty"),
            JSON,
        ],
        vec![("sec-fetch-mode", "navigate"), ("sec-fetch-dest", "iframe")],
        vec![("sec-fetch-mode", "same-origin"), JSON],
    ] {
        let d = h.send("GET", "/oauth2/token", &hs, Some(&b));
        assert_eq!(
            (status(&d), reason_code(&d)),
            (403, "token_page_refused"),
            "{hs:?}"
        );
        assert!(!body_text(&d).contains(session));
    }
    let d = h.send(
        "GET",
        "/oauth2/token",
        &[
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-dest", "document"),
        ],
        Some(&b),
    );
    assert_eq!(status(&d), 200);
    assert_eq!(
        get_header(&headers_of(&d), "cross-origin-opener-policy"),
        Some("same-origin")
    );
    // Off unless configured: then the path is the app's like any other.
    let mut off = Harness::new();
    let b = signed_in(&mut off, "alice");
    let d = off.send("GET", "/oauth2/token", &[JSON], Some(&b));
    assert_eq!(reason_code(&d), "authenticated");
}

#[test]
fn a_session_token_authenticates_as_bearer_or_cookie_and_never_reaches_the_upstream() {
    let mut h = Harness::with(json!({
        "token_page": true,
        "bearer": {"issuers": [{"issuer": ISSUER, "audiences": ["api://x"]}]},
        "routes": {"rules": [
        {"name": "svc", "prefix": "/svc", "action": "authenticate", "accept": "bearer"},
        {"name": "either", "prefix": "/either", "action": "authenticate", "accept": "either"},
    ]}}));
    let b = signed_in(&mut h, "alice");
    let token = token_of(&mut h, &b);
    let auth = format!("Bearer {token}");
    for path in ["/app", "/svc/x", "/either/y", "/oauth2/userinfo"] {
        h.vm.clear_session_cache();
        let d = h.send("GET", path, &[JSON, ("authorization", &auth)], None);
        if path == "/oauth2/userinfo" {
            assert_eq!(body_json(&d)["user"], "alice");
            continue;
        }
        assert_eq!(reason_code(&d), "authenticated", "{path}");
        let up = upstream_headers(&d, &sent(path, &[("authorization", &auth)]));
        assert_eq!(
            get_header(&up, "authorization"),
            None,
            "{path}: our token stays with us"
        );
        assert_eq!(get_header(&up, "x-forwarded-user"), Some("alice"));
    }
    let d = h.send("GET", "/oauth2/auth", &[("authorization", &auth)], None);
    assert_eq!(status(&d), 202);
    // On a public path too the token stays with us (and trailing whitespace changes nothing).
    let padded = format!("{auth} \t");
    let d = h.send("GET", "/public/x", &[("authorization", &padded)], None);
    assert_eq!(reason_code(&d), "public_path");
    let up = upstream_headers(&d, &sent("/public/x", &[("authorization", &padded)]));
    assert_eq!(get_header(&up, "authorization"), None);
    // In another header, on a public path, it does not go upstream either.
    let d = h.send("GET", "/public/x", &[("flyte-authorization", &auth)], None);
    let up = upstream_headers(&d, &sent("/public/x", &[("flyte-authorization", &auth)]));
    assert_eq!(get_header(&up, "flyte-authorization"), None);
    // Another scheme is the client's own header, passed on.
    let basic = "Basic YWxpY2U6cHc=";
    let d = h.send("GET", "/public/x", &[("authorization", basic)], None);
    let up = upstream_headers(&d, &sent("/public/x", &[("authorization", basic)]));
    assert_eq!(get_header(&up, "authorization"), Some(basic));
    // As the cookie, with no browser behind it.
    h.vm.clear_session_cache();
    let d = h.send(
        "GET",
        "/app",
        &[JSON, ("cookie", &format!("_pc={token}"))],
        None,
    );
    assert_eq!(reason_code(&d), "authenticated");
    // Tampered (one character of the sealed part), or after the session ended: refused.
    let mut bad = token.clone().into_bytes();
    let i = bad.len() - 5;
    bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
    let bad = format!("Bearer {}", String::from_utf8(bad).unwrap());
    for path in ["/app", "/svc/x"] {
        let d = h.send("GET", path, &[JSON, ("authorization", &bad)], None);
        assert_eq!(
            (status(&d), reason_code(&d)),
            (401, "session_token_rejected"),
            "{path}"
        );
    }
    h.advance(24 * 3600);
    h.vm.clear_session_cache();
    let d = h.send("GET", "/svc/x", &[JSON, ("authorization", &auth)], None);
    assert_eq!(
        (status(&d), reason_code(&d)),
        (401, "session_token_rejected")
    );
}

// ----- Flyte ---------------------------------------------------------------------------------------------

fn flyte() -> Harness {
    Harness::with(json!({
        "flyte": {"client_id": "flytectl", "scopes": ["all", "offline"], "audience": "api://flyte"},
        "bearer": {"issuers": [{"issuer": ISSUER, "audiences": ["api://flyte"]}]},
        "routes": {"rules": [
            {"name": "auth-metadata", "prefix": "/flyteidl.service.AuthMetadataService", "action": "public"},
            {"name": "admin", "prefix": "/flyteidl.service.AdminService", "action": "authenticate",
             "accept": "bearer", "bearer_header": ["flyte-authorization", "authorization"]},
        ]},
    }))
}

fn access_token(h: &Harness, aud: &str) -> String {
    let mut c = h.idp.claims("alice", "n");
    c.insert("aud".into(), json!(aud));
    c.remove("nonce");
    h.idp.sign(&c)
}

#[test]
fn flyte_tokens_come_in_flyte_authorization_or_authorization_and_the_first_present_decides() {
    let mut h = flyte();
    let good = format!("Bearer {}", access_token(&h, "api://flyte"));
    let other = format!("Bearer {}", access_token(&h, "api://other"));
    let path = "/flyteidl.service.AdminService/ListProjects";
    let grpc = ("content-type", "application/grpc");
    for header in ["flyte-authorization", "authorization"] {
        let d = h.send("POST", path, &[grpc, (header, &good)], None);
        assert_eq!(reason_code(&d), "bearer_authenticated", "{header}");
    }
    // flyte-authorization is looked at first; a bad one is not rescued by a good authorization.
    let d = h.send(
        "POST",
        path,
        &[
            grpc,
            ("flyte-authorization", &other),
            ("authorization", &good),
        ],
        None,
    );
    assert_eq!(status(&d), 401);
    for hs in [
        vec![grpc],
        vec![grpc, ("flyte-authorization", "Bearer garbage")],
    ] {
        let d = h.send("POST", path, &hs, None);
        assert_eq!(status(&d), 401, "{hs:?}");
    }
    // The listed header that did not decide is not forwarded: nothing verified it.
    let d = h.send(
        "POST",
        path,
        &[
            grpc,
            ("flyte-authorization", &good),
            ("authorization", "Bearer forged"),
        ],
        None,
    );
    assert_eq!(reason_code(&d), "bearer_authenticated");
    let sent_h = [
        ("flyte-authorization", good.as_str()),
        ("authorization", "Bearer forged"),
    ];
    let up = upstream_headers(&d, &sent(path, &sent_h));
    assert_eq!(get_header(&up, "authorization"), None);
    assert_eq!(get_header(&up, "x-forwarded-user"), Some("alice"));
    // The metadata service is public (flyteadmin answers it itself).
    let d = h.send(
        "POST",
        "/flyteidl.service.AuthMetadataService/GetPublicClientConfig",
        &[grpc],
        None,
    );
    assert_eq!(reason_code(&d), "public_path");
}

#[test]
fn flyte_documents_are_served_without_a_token() {
    let mut h = flyte();
    let d = h.send("GET", "/config/v1/flyte_client", &[("accept", "*/*")], None);
    assert_eq!(status(&d), 200);
    assert_eq!(
        body_json(&d),
        json!({"client_id": "flytectl", "redirect_uri": "http://localhost:53593/callback", "scopes": ["all", "offline"],
               "authorization_metadata_key": "flyte-authorization", "service_http_endpoint": "", "audience": "api://flyte"})
    );
    let d = h.send("GET", "/.well-known/oauth-authorization-server", &[], None);
    let m = body_json(&d);
    assert_eq!(m["issuer"], ISSUER);
    assert_eq!(m["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(m["authorization_endpoint"], format!("{ISSUER}/auth"));
    assert_eq!(m["jwks_uri"], format!("{ISSUER}/jwks"));
    for f in [
        "response_types_supported",
        "scopes_supported",
        "grant_types_supported",
        "code_challenge_methods_supported",
    ] {
        assert!(m[f].is_array(), "{f}");
    }
    // Before discovery has loaded: 503, not an empty document.
    let mut cold = Harness::unready(json!({"flyte": {"client_id": "flytectl"}}));
    let d = cold.send("GET", "/.well-known/oauth-authorization-server", &[], None);
    assert_eq!(status(&d), 503);
    // Configuration errors name the field.
    for (patch, want) in [
        (
            json!({"flyte": {"client_id": "x", "redirect_uri": "not a url"}}),
            "flyte.redirect_uri",
        ),
        (
            json!({"flyte": {"client_id": "x", "metadata_path": "/oauth2/meta"}}),
            "flyte.metadata_path: must be outside the prefix",
        ),
        (
            json!({"flyte": {"client_id": "x", "authorization_metadata_key": "a b"}}),
            "flyte.authorization_metadata_key",
        ),
        (json!({"flyte": {}}), "client_id"),
    ] {
        let mut c = base_config();
        merge(&mut c, &patch);
        let e = portcullis_core::Engine::from_json(c.to_string().as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(want), "{patch}: {e}");
    }
}

// ----- the STS (lakeFS) --------------------------------------------------------------------------------

const REDIRECT: &str = "http://127.0.0.1:53595/callback";

fn sts_config(keys: Value, extra: Value) -> Value {
    let mut s = json!({"client_id": "app", "redirect_uris": [REDIRECT], "issuer": "https://portcullis.test/sts",
        "audience": "lakefs", "max_ttl_seconds": 7200, "signing_keys": keys,
        "authenticator_path": "/sts/login"});
    merge(&mut s, &extra);
    json!({"sts": s, "routes": {"rules": [
        {"name": "lakefs", "prefix": "/api/v1", "action": "authenticate", "accept": "bearer"},
    ]}})
}

fn ed_key(kid: &str) -> (Value, Ed25519KeyPair) {
    let k = Ed25519KeyPair::generate();
    (
        json!({"kid": kid, "alg": "EdDSA", "private_key_pem": k.to_pem()}),
        k,
    )
}

/// A code the fake IdP issued for `user` to the exchange client, with `verifier` as PKCE verifier.
fn code_for(h: &mut Harness, user: &str, verifier: &str) -> String {
    let challenge =
        URL_SAFE_NO_PAD.encode(<sha2::Sha256 as sha2::Digest>::digest(verifier.as_bytes()));
    let url = format!(
        "{ISSUER}/auth?response_type=code&client_id=app&redirect_uri={}&scope=openid%20email&state={verifier}&nonce=theirs&code_challenge={challenge}&code_challenge_method=S256",
        portcullis_core::request::encode_component(REDIRECT)
    );
    let back = h.idp.authorize(&url, user).unwrap();
    query_of(&back)["code"].clone()
}

fn exchange(h: &mut Harness, path: &str, body: &Value) -> Decision {
    h.send_with_body(
        "POST",
        path,
        &[("content-type", "application/json")],
        body.to_string().as_bytes(),
    )
}

const VERIFIER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

/// A code for `code` exchanged at the client-shape path: the minted token.
fn minted(h: &mut Harness, code: &str) -> String {
    let d = exchange(
        h,
        "/api/v1/sts/login",
        &json!({"code": code, "state": VERIFIER, "redirect_uri": REDIRECT}),
    );
    assert_eq!(status(&d), 200, "{}", body_text(&d));
    body_json(&d)["token"].as_str().unwrap().to_string()
}

/// Verification options that accept the fake clock's (past) times.
fn lenient() -> VerificationOptions {
    VerificationOptions {
        time_tolerance: Some(Duration::from_days(3650)),
        ..Default::default()
    }
}

#[test]
fn a_code_becomes_a_token_of_ours_that_routes_accept_and_jwks_json_verifies() {
    let (k1, pair) = ed_key("sts-1");
    let mut h = Harness::with(sts_config(json!([k1]), json!({})));
    let code = code_for(&mut h, "alice", VERIFIER);
    let d = exchange(
        &mut h,
        "/api/v1/sts/login",
        &json!({"code": code, "state": VERIFIER, "redirect_uri": REDIRECT, "ttl_seconds": 99999}),
    );
    assert_eq!(
        (status(&d), reason_code(&d)),
        (200, "token_exchanged"),
        "{}",
        body_text(&d)
    );
    let j = body_json(&d);
    let token = j["token"].as_str().unwrap().to_string();
    // ttl_seconds clamped to max_ttl_seconds.
    assert_eq!(j["token_expiration"], json!(h.now.0 + 7200));
    // The token verifies with the published key, independently of our verifier.
    let d = h.send("GET", "/oauth2/jwks.json", &[], None);
    let jwks = body_json(&d);
    assert_eq!(jwks["keys"][0]["kid"], "sts-1");
    assert_eq!(
        jwks["keys"][0]["x"],
        URL_SAFE_NO_PAD.encode(pair.public_key().to_bytes())
    );
    let opts = lenient();
    let claims = pair
        .public_key()
        .verify_token::<Value>(&token, Some(opts))
        .unwrap();
    assert_eq!(claims.subject.as_deref(), Some("alice"));
    assert_eq!(claims.custom["email"], "alice@example.com");
    assert!(claims.custom.get("nonce").is_none() && claims.custom.get("at_hash").is_none());
    // A bearer on the route, as the user.
    let d = h.send(
        "GET",
        "/api/v1/user",
        &[JSON, ("authorization", &format!("Bearer {token}"))],
        None,
    );
    assert_eq!(reason_code(&d), "bearer_authenticated");
    let up = identity_headers(&d);
    assert_eq!(get_header(&up, "x-auth-request-user"), Some("alice"));
    // The same code again: the IdP refuses it, so do we.
    let d = exchange(
        &mut h,
        "/api/v1/sts/login",
        &json!({"code": code, "state": VERIFIER, "redirect_uri": REDIRECT}),
    );
    assert_eq!((status(&d), reason_code(&d)), (401, "exchange_refused"));
    // Expired (after the clamped lifetime and the leeway).
    h.advance(7200 + 120);
    let d = h.send(
        "GET",
        "/api/v1/user",
        &[JSON, ("authorization", &format!("Bearer {token}"))],
        None,
    );
    assert_eq!(status(&d), 401);
}

#[test]
fn forged_foreign_key_and_wrong_audience_tokens_are_refused() {
    let (k1, _) = ed_key("sts-1");
    let mut h = Harness::with(sts_config(json!([k1]), json!({})));
    let code = code_for(&mut h, "alice", VERIFIER);
    let token = minted(&mut h, &code);
    let now = h.now.0;
    let claims = |aud: &str| JWTClaims {
        issued_at: Some(UnixTimeStamp::from_secs(now)),
        expires_at: Some(UnixTimeStamp::from_secs(now + 600)),
        invalid_before: None,
        issuer: Some("https://portcullis.test/sts".into()),
        subject: Some("mallory".into()),
        audiences: Some(Audiences::AsString(aud.into())),
        jwt_id: None,
        nonce: None,
        custom: json!({"email": "mallory@example.com"}),
    };
    let foreign = Ed25519KeyPair::generate().with_key_id("sts-1");
    let mut forged_sig = token.clone().into_bytes();
    let n = forged_sig.len() - 3;
    forged_sig[n] = if forged_sig[n] == b'A' { b'B' } else { b'A' };
    for (what, t) in [
        ("foreign key, same kid", foreign.sign(claims("lakefs")).unwrap()),
        ("flipped signature", String::from_utf8(forged_sig).unwrap()),
        ("none alg", format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"sts-1"}"#),
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"iss": "https://portcullis.test/sts", "aud": "lakefs", "sub": "mallory", "exp": now + 600})).unwrap()))),
    ] {
        let d = h.send("GET", "/api/v1/user", &[JSON, ("authorization", &format!("Bearer {t}"))], None);
        assert_eq!(status(&d), 401, "{what}: {}", body_text(&d));
    }
}

#[test]
fn es256_keys_sign_the_first_signs_and_all_are_published() {
    let es = ES256KeyPair::generate();
    let (ed, _) = ed_key("old");
    let keys = json!([{"kid": "new", "alg": "ES256", "private_key_pem": es.to_pem().unwrap()}, ed]);
    let mut h = Harness::with(sts_config(keys, json!({})));
    let jwks = body_json(&h.send("GET", "/oauth2/jwks.json", &[], None));
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids, ["new", "old"]);
    assert_eq!(jwks["keys"][0]["crv"], "P-256");
    let code = code_for(&mut h, "bob", VERIFIER);
    let token = minted(&mut h, &code);
    let opts = lenient();
    let c = es
        .public_key()
        .verify_token::<Value>(&token, Some(opts))
        .unwrap();
    assert_eq!(c.subject.as_deref(), Some("bob"));
    let d = h.send(
        "GET",
        "/api/v1/x",
        &[JSON, ("authorization", &format!("Bearer {token}"))],
        None,
    );
    assert_eq!(reason_code(&d), "bearer_authenticated");
}

#[test]
fn an_unverified_email_and_the_id_tokens_scopes_never_reach_a_minted_token() {
    let (k1, pair) = ed_key("sts-1");
    let mut h = Harness::with(sts_config(json!([k1]), json!({})));
    let code = code_for(&mut h, "alice", VERIFIER);
    let mut c = h.idp.claims("alice", "theirs");
    c.insert("email_verified".into(), json!(false));
    c.insert("scope".into(), json!("admin write"));
    h.idp.id_token_override = Some(h.idp.sign(&c));
    let token = minted(&mut h, &code);
    let opts = lenient();
    let claims = pair
        .public_key()
        .verify_token::<Value>(&token, Some(opts))
        .unwrap();
    assert!(claims.custom.get("email").is_none(), "{:?}", claims.custom);
    assert!(claims.custom.get("scope").is_none(), "{:?}", claims.custom);
    assert_eq!(claims.subject.as_deref(), Some("alice"));
}

#[test]
fn the_remote_authenticator_shape_answers_string_claims() {
    let (k1, _) = ed_key("sts-1");
    let mut h = Harness::with(sts_config(json!([k1]), json!({})));
    let code = code_for(&mut h, "alice", VERIFIER);
    let d = exchange(
        &mut h,
        "/sts/login",
        &json!({"code": code, "state": VERIFIER, "redirect_uri": REDIRECT}),
    );
    assert_eq!(status(&d), 200, "{}", body_text(&d));
    let claims = body_json(&d)["claims"].clone();
    let obj = claims.as_object().unwrap();
    assert!(obj.values().all(Value::is_string), "{claims}");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.com");
    assert_eq!(claims["email_verified"], "true");
    assert!(claims["groups"]
        .as_str()
        .unwrap()
        .split(',')
        .any(|g| g == "team-alice"));
    assert_eq!(claims["iss"], ISSUER);
}

#[test]
fn bad_exchange_requests_get_400s_and_idp_failures_their_own_status() {
    let (k1, _) = ed_key("sts-1");
    let mut h = Harness::with(sts_config(json!([k1]), json!({})));
    let ok = |code: &str| json!({"code": code, "state": VERIFIER, "redirect_uri": REDIRECT});
    for (body, want) in [
        (json!({"state": VERIFIER, "redirect_uri": REDIRECT}), 400),
        (
            json!({"code": "c", "state": VERIFIER, "redirect_uri": "http://evil.test/cb"}),
            400,
        ),
        (
            json!({"code": "c", "state": "short", "redirect_uri": REDIRECT}),
            400,
        ),
        (
            json!({"code": "c", "state": VERIFIER, "redirect_uri": REDIRECT, "ttl_seconds": "60"}),
            400,
        ),
        (
            json!({"code": "c", "state": VERIFIER, "redirect_uri": REDIRECT, "ttl_seconds": 0}),
            400,
        ),
        (json!([1, 2]), 400),
        (ok("never-issued"), 401),
    ] {
        let d = exchange(&mut h, "/api/v1/sts/login", &body);
        assert_eq!(status(&d), want, "{body}: {}", body_text(&d));
        assert!(body_json(&d)["message"].is_string());
    }
    let d = h.send_with_body("POST", "/api/v1/sts/login", &[], &vec![b'x'; 9000]);
    assert_eq!(status(&d), 413);
    let d = h.send("GET", "/api/v1/sts/login", &[], None);
    assert_eq!(status(&d), 405);
    // The IdP down, slow or answering garbage.
    let code = code_for(&mut h, "alice", VERIFIER);
    for (reply, want) in [
        ((500, b"oops".to_vec()), 502),
        ((504, vec![]), 504),
        ((200, b"{}".to_vec()), 502),
    ] {
        h.callout_override = Some(reply);
        let d = exchange(&mut h, "/api/v1/sts/login", &ok(&code));
        assert_eq!(status(&d), want);
    }
    h.callout_override = None;
    // An ID token for another client is refused even if the IdP issued it.
    let mut c = h.idp.claims("alice", "n");
    c.insert("aud".into(), json!("someone-else"));
    h.idp.id_token_override = Some(h.idp.sign(&c));
    let d = exchange(&mut h, "/api/v1/sts/login", &ok(&code));
    assert_eq!(
        (status(&d), reason_code(&d)),
        (401, "id_token_wrong_audience")
    );
}

#[test]
fn sts_configuration_errors_name_the_field() {
    let (k1, _) = ed_key("a");
    for (patch, want) in [
        (
            sts_config(json!([]), json!({})),
            "sts.signing_keys: must hold at least one key",
        ),
        (
            sts_config(
                json!([{"kid": "a", "alg": "EdDSA", "private_key_pem": "nope"}]),
                json!({}),
            ),
            "sts.signing_keys[0].private_key_pem",
        ),
        (
            sts_config(
                json!([{"kid": "a", "alg": "RS256", "private_key_pem": "x"}]),
                json!({}),
            ),
            "sts.signing_keys[0].alg",
        ),
        (
            sts_config(json!([k1.clone(), k1.clone()]), json!({})),
            "sts.signing_keys[1].kid: is used by another key",
        ),
        (
            sts_config(json!([k1.clone()]), json!({"max_ttl_seconds": 0})),
            "sts.max_ttl_seconds",
        ),
        (
            sts_config(json!([k1.clone()]), json!({"default_ttl_seconds": 9999})),
            "sts.default_ttl_seconds",
        ),
        (
            sts_config(json!([k1.clone()]), json!({"redirect_uris": []})),
            "sts.redirect_uris",
        ),
        (
            sts_config(json!([k1.clone()]), json!({"path": "/oauth2/sts"})),
            "sts.path: must be outside the prefix",
        ),
    ] {
        let mut c = base_config();
        merge(&mut c, &patch);
        let e = portcullis_core::Engine::from_json(c.to_string().as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(want), "{want}: got {e:?}");
        // Never the key material in an error.
        assert!(!e.contains("PRIVATE KEY"), "{e}");
    }
}
