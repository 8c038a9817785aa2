//! The explanations the playground and `portcullis-shim explain` show, for the cases a reader asks
//! about first.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::json;

const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn config() -> Vec<u8> {
    json!({
        "issuer": "https://login.example.com",
        "idp_cluster": "idp",
        "client_id": "app",
        "client_secret": "s",
        "cookie": {"keys": [{"id": "k1", "secret": KEY}]},
        "public_paths": ["/static/*"],
        "routes": {"rules": [
            {"name": "admin", "prefix": "/admin", "action": "authenticate",
             "require": {"groups": ["admins"]}},
            {"name": "debug", "prefix": "/debug", "action": "deny"}
        ]}
    })
    .to_string()
    .into_bytes()
}

fn run(config: &[u8], input: &ExplainInput) -> Explanation {
    explain(config, input, &mut ChaCha20Rng::seed_from_u64(7))
}

fn get(url: &str, headers: &[&str]) -> ExplainInput {
    ExplainInput {
        url: url.into(),
        headers: Lines::Many(headers.iter().map(|h| String::from(*h)).collect()),
        ..ExplainInput::default()
    }
}

fn as_user(mut input: ExplainInput, user: &str, groups: &[&str]) -> ExplainInput {
    input.session = Some(TestIdentity {
        user: user.into(),
        email: Some(format!("{user}@example.com")),
        groups: Some(Lines::Many(
            groups.iter().map(|g| String::from(*g)).collect(),
        )),
        ..TestIdentity::default()
    });
    input
}

fn decision(ex: &Explanation) -> &DecisionSummary {
    ex.decision.as_ref().expect("a decision")
}

fn header<'a>(d: &'a DecisionSummary, name: &str) -> Option<&'a str> {
    d.upstream_headers
        .as_ref()?
        .iter()
        .find_map(|h| h.strip_prefix(name)?.strip_prefix(": "))
}

fn response_header<'a>(d: &'a DecisionSummary, name: &str) -> Option<&'a str> {
    d.response_headers
        .iter()
        .find_map(|h| h.strip_prefix(name)?.strip_prefix(": "))
}

const NAVIGATION: &[&str] = &["accept: text/html", "sec-fetch-mode: navigate"];

#[test]
fn a_bad_config_names_its_field() {
    let mut cfg: Value = serde_json::from_slice(&config()).unwrap();
    cfg["cookie"]["keys"][0]["secret"] = json!("short");
    let ex = run(
        cfg.to_string().as_bytes(),
        &get("http://app.example.com/", &[]),
    );
    let p = ex.config_error.as_ref().expect("refused");
    assert_eq!(p.field.as_deref(), Some("cookie.keys[0].secret"));
    assert!(p.message.contains("cookie.keys[0].secret"), "{}", p.message);
    assert!(!ex.ok && ex.decision.is_none());
    assert!(ex.to_json().contains("cookie.keys[0].secret"));
}

#[test]
fn a_group_only_route_without_the_group_is_403_naming_the_group() {
    let ex = run(
        &config(),
        &as_user(
            get("http://app.example.com/admin/users", NAVIGATION),
            "bob",
            &["dev"],
        ),
    );
    assert_eq!(ex.route.as_ref().unwrap().rule.as_deref(), Some("admin"));
    let d = decision(&ex);
    assert_eq!((d.outcome, d.status), ("forbidden", Some(403)));
    assert_eq!(d.reason, Some("forbidden_group"));
    let r = d.requirement.as_ref().expect("the failed requirement");
    assert_eq!(r.field, "require.groups");
    assert_eq!(r.required, ["admins"]);
    assert_eq!(r.has.as_deref(), Some(&[String::from("dev")][..]));
    assert!(d.summary.contains("admins"), "{}", d.summary);
    assert!(d.upstream_headers.is_none());
}

#[test]
fn with_the_group_it_forwards_with_identity_headers_and_without_spoofed_ones() {
    let input = as_user(
        get(
            "http://app.example.com/admin",
            &[
                "x-forwarded-user: mallory",
                "X-Forwarded-Groups: admins",
                "cookie: theme=dark",
            ],
        ),
        "alice",
        &["admins", "dev"],
    );
    let ex = run(&config(), &input);
    let d = decision(&ex);
    assert_eq!((d.outcome, d.reason), ("forward", Some("authenticated")));
    assert_eq!(header(d, "x-forwarded-user"), Some("alice"));
    assert_eq!(header(d, "x-forwarded-email"), Some("alice@example.com"));
    assert_eq!(header(d, "x-forwarded-groups"), Some("admins,dev"));
    let ups = d.upstream_headers.as_ref().unwrap();
    assert!(!ups.iter().any(|h| h.contains("mallory")), "{ups:?}");
    assert_eq!(
        ups.iter()
            .filter(|h| h.starts_with("x-forwarded-user:"))
            .count(),
        1
    );
    // Our session cookie never reaches the upstream; the client's own cookies do.
    assert_eq!(header(d, "cookie"), Some("theme=dark"));
    assert_eq!(
        d.stripped_headers,
        ["x-forwarded-user", "x-forwarded-groups", "cookie"]
    );
    // The sealed value is never printed.
    let s = ex.request.as_ref().unwrap().session.as_ref().unwrap();
    assert_eq!(
        (s.cookies.as_slice(), s.sealed_with_key.as_str()),
        (&[String::from("_portcullis")][..], "k1")
    );
    assert!(!ex.to_json().contains("_portcullis="));
}

#[test]
fn a_public_path_forwards_without_identity() {
    let ex = run(
        &config(),
        &get(
            "http://app.example.com/static/app.js",
            &["x-forwarded-user: mallory"],
        ),
    );
    assert_eq!(ex.route.as_ref().unwrap().action, Some("public"));
    let d = decision(&ex);
    assert_eq!((d.outcome, d.reason), ("forward", Some("public_path")));
    assert_eq!(header(d, "x-forwarded-user"), None);
    assert_eq!(d.stripped_headers, ["x-forwarded-user"]);
}

#[test]
fn no_session_is_a_login_redirect_for_a_navigation_and_401_for_an_api_call() {
    let ex = run(
        &config(),
        &get("http://app.example.com/reports", NAVIGATION),
    );
    assert_eq!(ex.route.as_ref().unwrap().rule.as_deref(), Some("default"));
    let d = decision(&ex);
    assert_eq!((d.outcome, d.status), ("login_redirect", Some(302)));
    let location = response_header(d, "location").unwrap();
    assert!(
        location.starts_with("https://login.example.com/authorize?"),
        "{location}"
    );
    // The login cookie is shown by name only.
    let cookie = response_header(d, "set-cookie").unwrap();
    assert!(cookie.contains("=<sealed, "), "{cookie}");

    for api in [
        &["accept: application/json"][..],
        &["x-requested-with: XMLHttpRequest"][..],
    ] {
        let ex = run(&config(), &get("http://app.example.com/reports", api));
        let d = decision(&ex);
        assert_eq!(
            (d.outcome, d.status),
            ("unauthorized", Some(401)),
            "{api:?}"
        );
        assert_eq!(d.reason, Some("login_required"));
    }
}

#[test]
fn before_the_provider_loads_a_navigation_is_503() {
    let mut input = get("http://app.example.com/reports", NAVIGATION);
    input.provider_loaded = Some(false);
    let d = run(&config(), &input).decision.unwrap();
    assert_eq!(
        (d.status, d.reason),
        (Some(503), Some("provider_not_ready"))
    );
}

#[test]
fn a_deny_rule_and_a_bad_path() {
    let d = run(&config(), &get("http://app.example.com/debug/x", &[]))
        .decision
        .unwrap();
    assert_eq!((d.outcome, d.reason), ("forbidden", Some("route_denied")));
    let ex = run(&config(), &get("http://app.example.com/a//b", &[]));
    assert!(ex.route.as_ref().unwrap().unroutable.is_some());
    assert_eq!(decision(&ex).reason, Some("path_invalid"));
}

#[test]
fn json_in_json_out_and_input_errors_name_what_is_wrong() {
    let out = explain_json(
        &config(),
        br#"{"method":"GET","url":"http://app.example.com/admin","headers":"accept: text/html\nsec-fetch-mode: navigate","session":{"user":"bob","groups":"dev, qa"}}"#,
        &mut ChaCha20Rng::seed_from_u64(1),
    );
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["decision"]["status"], 403);
    assert_eq!(v["request"]["session"]["groups"], json!(["dev", "qa"]));
    // Deterministic for a fixed seed.
    let again = explain_json(
        &config(),
        br#"{"method":"GET","url":"http://app.example.com/admin","headers":"accept: text/html\nsec-fetch-mode: navigate","session":{"user":"bob","groups":"dev, qa"}}"#,
        &mut ChaCha20Rng::seed_from_u64(1),
    );
    assert_eq!(out, again);

    let bad = run(&config(), &get("app.example.com/x", &[]));
    assert!(bad.input_error.unwrap().starts_with("url:"));
    let bad = run(&config(), &get("/x", &["no colon"]));
    assert!(bad.input_error.unwrap().starts_with("headers:"));
    let v: Value = serde_json::from_str(&explain_json(
        b"{}",
        b"{\"urll\": 1}",
        &mut ChaCha20Rng::seed_from_u64(1),
    ))
    .unwrap();
    assert!(v["input_error"].as_str().unwrap().contains("urll"), "{v}");
    assert!(v["config_error"]["message"].as_str().is_some(), "{v}");
}

#[test]
fn the_test_sessions_sealed_value_is_never_shown_where_a_route_forwards_it_or_the_token_page_shows_it(
) {
    let mut cfg: serde_json::Value = serde_json::from_slice(&config()).unwrap();
    cfg["token_page"] = json!(true);
    cfg["routes"]["rules"] = json!([{"name": "sky", "path": "/token", "action": "authenticate",
        "forward_session_cookie": true}]);
    let cfg = cfg.to_string().into_bytes();
    for (url, accept) in [
        ("https://app.example.com/token", "accept: text/html"),
        (
            "https://app.example.com/oauth2/token",
            "accept: application/json",
        ),
    ] {
        let ex = run(&cfg, &as_user(get(url, &[accept]), "alice", &["staff"]));
        let text = serde_json::to_string(&ex).unwrap();
        let d = decision(&ex);
        assert!(
            text.contains("<sealed, "),
            "{url}: the value's place is marked: {text}"
        );
        // No sealed value of the ring's key (`k1.<base64url>`) anywhere in the explanation.
        let leaked = text.match_indices("k1.").any(|(i, _)| {
            text[i + 3..]
                .chars()
                .take(40)
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        });
        assert!(!leaked, "{url}: {text}");
        assert!(d.reason.is_some());
    }
}
