//! Routes, requirements and claim mapping: table-driven, plus a property test of the rule matcher
//! against a naive reference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::policy::rules::{glob_matches, segment_matches};
use portcullis_core::{Config, Decision};
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

/// A console for everyone, an admin area for one group, an API with read/write scopes, public health.
fn policy() -> Value {
    json!({
        "public_paths": [],
        "claims": {"headers": [
            {"name": "X-Spinnaker-User", "from": "email"},
            {"name": "X-Dept", "claim": "org.dept"}
        ]},
        "bearer": {"issuers": [{"issuer": ISSUER, "audiences": ["api://demo"]}]},
        "routes": {"rules": [
            {"name": "health", "path": "/healthz", "action": "public"},
            {"name": "static", "prefix": "/static", "methods": ["GET", "HEAD"], "action": "public"},
            {"name": "admin", "prefix": "/admin", "action": "authenticate",
             "require": {"groups": ["admins"]}},
            {"name": "blocked", "glob": "/internal/**", "action": "deny"},
            {"name": "reports", "glob": "/reports/*/pdf", "action": "authenticate",
             "require": {"email_domains": ["example.com"]}},
            {"name": "corp", "hosts": ["corp.example.com"], "action": "authenticate",
             "require": {"email_domains": [".corp.example.com"]}},
            {"name": "eng", "prefix": "/eng", "action": "authenticate",
             "require": {"claims": [{"claim": "org.dept", "equals": "eng"}]}},
            {"name": "api", "prefix": "/api", "action": "authenticate", "accept": "either",
             "require": {"scopes_by_method": {"GET": ["read"], "POST": ["write"]}}},
            {"name": "svc", "prefix": "/svc", "action": "authenticate", "accept": "bearer",
             "bearer_header": "flyte-authorization"}
        ]}
    })
}

fn cfg_with(patch: Value) -> Result<Config, String> {
    let mut cfg = base_config();
    merge(&mut cfg, &patch);
    Config::from_json(cfg.to_string().as_bytes()).map_err(|e| e.to_string())
}

fn route_of(h: &Harness, method: &str, host: &str, path: &str) -> String {
    let sent = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), host.to_string()),
    ];
    let raw = portcullis_core::request::raw_headers(&sent);
    let req = portcullis_core::Request::from_headers(&raw);
    match h.engine.config().policy.route(&req) {
        Ok(r) => r.name.clone(),
        Err(_) => "400".to_string(),
    }
}

#[test]
fn rules_match_first_wins_on_host_path_and_method() {
    let h = Harness::with(policy());
    let cases: &[(&str, &str, &str, &str)] = &[
        ("GET", "app.test", "/healthz", "health"),
        ("POST", "app.test", "/healthz", "health"),
        ("GET", "app.test", "/healthz/", "default"),
        ("GET", "app.test", "/healthzx", "default"),
        ("GET", "app.test", "/static", "static"),
        ("GET", "app.test", "/static/a.css", "static"),
        ("HEAD", "app.test", "/static/a/b/c.js", "static"),
        ("POST", "app.test", "/static/a.css", "default"),
        ("get", "app.test", "/static/a.css", "default"),
        ("GET", "app.test", "/staticx", "default"),
        ("GET", "app.test", "/static/../admin", "admin"),
        ("GET", "app.test", "/static/%2e%2e/admin", "admin"),
        ("GET", "app.test", "/static/%2E%2E/admin/x", "admin"),
        ("GET", "app.test", "/st%61tic/a.css", "static"),
        ("GET", "app.test", "/static/..%2Fadmin", "400"),
        ("GET", "app.test", "/static%2F..%2Fadmin", "400"),
        ("GET", "app.test", "/static//a", "400"),
        ("GET", "app.test", "/static/a%25", "400"),
        ("GET", "app.test", "/static/c:", "400"),
        ("GET", "app.test", "/static/..;/admin", "400"),
        ("GET", "app.test", "/static\\..\\admin", "400"),
        ("GET", "app.test", "/admin", "admin"),
        ("GET", "app.test", "/admin/", "admin"),
        ("GET", "app.test", "/admin/users", "admin"),
        ("GET", "app.test", "/administrator", "default"),
        ("GET", "app.test", "/ADMIN", "default"),
        ("GET", "app.test", "/internal", "blocked"),
        ("GET", "app.test", "/internalx", "default"),
        ("GET", "app.test", "/internal/", "blocked"),
        ("GET", "app.test", "/internal/a/b", "blocked"),
        ("GET", "app.test", "/reports/q1/pdf", "reports"),
        ("GET", "app.test", "/reports/q1/q2/pdf", "default"),
        ("GET", "app.test", "/reports//pdf", "400"),
        ("GET", "app.test", "/reports/q1/pdfx", "default"),
        ("GET", "corp.example.com", "/x", "corp"),
        ("GET", "CORP.Example.COM", "/x", "corp"),
        ("GET", "corp.example.com.", "/x", "corp"),
        ("GET", "corp.example.com:8443", "/x", "corp"),
        ("GET", "corp.example.com.:8443", "/x", "corp"),
        ("GET", "xcorp.example.com", "/x", "default"),
        ("GET", "corp.example.com.evil.com", "/x", "default"),
        ("GET", "corp.example.com@evil.com", "/x", "default"),
        ("GET", "evil.com#corp.example.com", "/x", "default"),
        ("GET", "corp.example.com:99999", "/x", "default"),
        ("GET", "corp.example.com:", "/x", "default"),
        ("GET", "corp.example.com", "/healthz", "health"),
        ("GET", "app.test", "/eng/x", "eng"),
        ("GET", "app.test", "/api", "api"),
        ("DELETE", "app.test", "/api/items/1", "api"),
        ("GET", "app.test", "/apix", "default"),
        ("GET", "app.test", "/svc/x", "svc"),
        ("GET", "app.test", "/oauth2x/ping", "default"),
    ];
    for (method, host, path, want) in cases {
        assert_eq!(
            route_of(&h, method, host, path),
            *want,
            "{method} {host} {path}"
        );
    }
    // Wildcard and port-pinned hosts.
    let h = Harness::with(json!({"public_paths": [], "routes": {"rules": [
        {"name": "wild", "hosts": ["*.apps.example.com"], "action": "public"},
        {"name": "port", "hosts": ["app.test:8443"], "action": "deny"}
    ]}}));
    for (host, want) in [
        ("a.apps.example.com", "wild"),
        ("a.b.apps.example.com", "wild"),
        ("A.Apps.Example.Com:443", "wild"),
        ("apps.example.com", "default"),
        ("xapps.example.com", "default"),
        ("app.test:8443", "port"),
        ("app.test", "default"),
        ("app.test:8444", "default"),
        ("[::1]:8443", "default"),
    ] {
        assert_eq!(route_of(&h, "GET", host, "/"), want, "{host}");
    }
}

fn bearer_claims(h: &Harness, scope: &str) -> serde_json::Map<String, Value> {
    let v = json!({"iss": ISSUER, "sub": "svc", "aud": "api://demo", "client_id": "worker",
        "iat": h.now.0, "exp": h.now.0 + 300, "scope": scope});
    v.as_object().unwrap().clone()
}

#[test]
fn requirements_decide_after_authentication() {
    let mut h = Harness::with(policy());
    let mut alice = Browser::default(); // groups: staff, team-alice (fake IdP); email alice@example.com
    assert_eq!(
        reason_code(&h.login(&mut alice, "/", "alice")),
        "login_completed"
    );
    let visit = |h: &mut Harness, b: &Browser, method: &str, path: &str| {
        let d = h.send(method, path, &[("accept", "application/json")], Some(b));
        (status(&d), reason_code(&d).to_string())
    };
    assert_eq!(
        visit(&mut h, &alice, "GET", "/console"),
        (0, "authenticated".into())
    );
    assert_eq!(
        visit(&mut h, &alice, "GET", "/admin/x"),
        (403, "forbidden_group".into())
    );
    let d = h.send(
        "GET",
        "/admin/x",
        &[("accept", "application/json")],
        Some(&alice),
    );
    assert_eq!(body_json(&d)["requirement"], "groups");
    assert_eq!(body_json(&d)["rule"], "admin");
    assert_eq!(
        visit(&mut h, &alice, "GET", "/internal/a"),
        (403, "route_denied".into())
    );
    assert_eq!(
        visit(&mut h, &alice, "GET", "/reports/q1/pdf"),
        (0, "authenticated".into())
    );
    assert_eq!(
        visit(&mut h, &alice, "GET", "/eng/x"),
        (403, "forbidden_claim".into())
    );
    // A session's scopes are the login's (openid email profile): no read/write.
    assert_eq!(
        visit(&mut h, &alice, "GET", "/api/x"),
        (403, "forbidden_scope".into())
    );
    // Bearer-only route: the session does not count; 401 with a bare challenge.
    let d = h.send(
        "GET",
        "/svc/x",
        &[("accept", "application/json")],
        Some(&alice),
    );
    assert_eq!((status(&d), reason_code(&d)), (401, "bearer_missing"));
    let Decision::Respond { headers, .. } = &d else {
        panic!()
    };
    assert_eq!(
        get_header(headers, "www-authenticate"),
        Some("Bearer realm=\"app.test\"")
    );
    // Mapped header from the verified email; the spoofed one from the client never passes.
    let sent = vec![("X-Spinnaker-User".to_string(), "root@evil".to_string())];
    let d = h.send(
        "GET",
        "/console",
        &[("X-Spinnaker-User", "root@evil")],
        Some(&alice),
    );
    let up = upstream_headers(&d, &sent);
    assert_eq!(
        up.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("x-spinnaker-user"))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>(),
        vec!["alice@example.com"]
    );
}

#[test]
fn bearer_scopes_by_method_and_custom_header() {
    let mut h = Harness::with(policy());
    let read = h.idp.sign(&bearer_claims(&h, "read"));
    let rw = h.idp.sign(&bearer_claims(&h, "read write"));
    let call = |h: &mut Harness, method: &str, path: &str, header: &str, token: &str| {
        let v = format!("Bearer {token}");
        let d = h.send(method, path, &[(header, v.as_str())], None);
        (status(&d), reason_code(&d).to_string(), d)
    };
    assert_eq!(
        call(&mut h, "GET", "/api/x", "authorization", &read).1,
        "bearer_authenticated"
    );
    let (s, code, d) = call(&mut h, "POST", "/api/x", "authorization", &read);
    assert_eq!((s, code.as_str()), (403, "insufficient_scope"));
    let Decision::Respond { headers, .. } = &d else {
        panic!()
    };
    assert_eq!(
        get_header(headers, "www-authenticate"),
        Some("Bearer realm=\"\", error=\"insufficient_scope\", scope=\"write\"")
    );
    assert_eq!(
        call(&mut h, "POST", "/api/x", "authorization", &rw).1,
        "bearer_authenticated"
    );
    // A method listed nowhere (no "*" entry) is refused.
    assert_eq!(
        call(&mut h, "DELETE", "/api/x", "authorization", &rw).1,
        "insufficient_scope"
    );
    // The custom header route ignores Authorization and reads flyte-authorization.
    assert_eq!(
        call(&mut h, "GET", "/svc/x", "authorization", &rw).1,
        "bearer_missing"
    );
    let (_, code, d) = call(&mut h, "GET", "/svc/x", "flyte-authorization", &rw);
    assert_eq!(code, "bearer_authenticated");
    let ids = identity_headers(&d);
    assert!(
        ids.contains(&("x-forwarded-user".into(), "svc".into())),
        "{ids:?}"
    );
}

#[test]
fn emails_domains_groups_and_claims_table() {
    use portcullis_core::identity::{Identity, Source};
    use portcullis_core::policy::requirements::{
        ClaimCondition, ClaimTest, Requirement, Requirements,
    };
    let id = |email: Option<&str>, groups: &[&str]| Identity {
        source: Source::Session,
        user: "u".into(),
        sub: "u".into(),
        email: email.map(String::from),
        name: None,
        preferred_username: None,
        groups: groups.iter().map(|s| s.to_string()).collect(),
        scopes: vec![],
        claims: Default::default(),
    };
    let domains = Requirements {
        email_domains: vec!["example.com".into(), ".corp.example.com".into()],
        ..Default::default()
    };
    for (email, ok) in [
        (Some("a@example.com"), true),
        (Some("A@EXAMPLE.COM"), true),
        (Some("a@sub.corp.example.com"), true),
        (Some("a@corp.example.com"), false),
        (Some("a@sub.example.com"), false),
        (Some("a@example.com.evil.com"), false),
        (Some("a@evilexample.com"), false),
        (Some("a@b@example.com"), false),
        (Some("example.com"), false),
        (Some("@example.com"), false),
        (Some("a@"), false),
        (Some("a@example.com "), false),
        (Some("a@example.com\n"), false),
        (Some("a@.example.com"), false),
        (Some("a@x..corp.example.com"), false),
        (Some("\"a@b\"@example.com"), false),
        (None, false),
    ] {
        assert_eq!(
            domains.check(&id(email, &[]), "GET").is_ok(),
            ok,
            "{email:?}"
        );
    }
    let emails = Requirements {
        emails: vec!["alice@example.com".into()],
        ..Default::default()
    };
    for (email, ok) in [
        ("alice@example.com", true),
        ("ALICE@example.com", true),
        ("alice@example.com.", false),
        ("malice@example.com", false),
        ("alice@example.co", false),
    ] {
        assert_eq!(
            emails.check(&id(Some(email), &[]), "GET").is_ok(),
            ok,
            "{email}"
        );
    }
    let groups = Requirements {
        groups: vec!["admins".into(), "ops".into()],
        ..Default::default()
    };
    for (g, ok) in [
        (&["admins"][..], true),
        (&["staff", "ops"][..], true),
        (&["Admins"][..], false),
        (&["admins,staff"][..], false),
        (&[][..], false),
    ] {
        assert_eq!(groups.check(&id(None, g), "GET").is_ok(), ok, "{g:?}");
    }
    let claim = |c: Value| {
        let mut i = id(None, &[]);
        i.claims.insert("realm_access.roles".into(), c);
        i
    };
    let cond = |test| Requirements {
        claims: vec![ClaimCondition {
            claim: "realm_access.roles".into(),
            test,
        }],
        ..Default::default()
    };
    for (req, c, ok) in [
        (
            cond(ClaimTest::Contains(json!("admin"))),
            json!(["user", "admin"]),
            true,
        ),
        (
            cond(ClaimTest::Contains(json!("admin"))),
            json!(["user"]),
            false,
        ),
        (
            cond(ClaimTest::Contains(json!("admin"))),
            json!("admin"),
            true,
        ),
        (
            cond(ClaimTest::Contains(json!("admin"))),
            json!("admins"),
            false,
        ),
        (cond(ClaimTest::Equals(json!("gold"))), json!("gold"), true),
        (
            cond(ClaimTest::Equals(json!("gold"))),
            json!(["gold"]),
            false,
        ),
        (cond(ClaimTest::Equals(json!(true))), json!("true"), false),
        (
            cond(ClaimTest::OneOf(vec![json!("a"), json!(2)])),
            json!(2),
            true,
        ),
        (
            cond(ClaimTest::OneOf(vec![json!("a"), json!(2)])),
            json!("2"),
            false,
        ),
    ] {
        let r = req.check(&claim(c.clone()), "GET");
        assert_eq!(r.is_ok(), ok, "{c}");
        if !ok {
            assert_eq!(r.unwrap_err().requirement, Requirement::Claim);
        }
    }
    assert!(
        cond(ClaimTest::Equals(json!("x")))
            .check(&id(None, &[]), "GET")
            .is_err(),
        "absent claim"
    );
}

#[test]
fn identities_from_odd_claims() {
    // Nested claim paths, a groups string, and email_verified as the string "false".
    let mut h = Harness::with(json!({
        "claims": {"email": "user.mail", "groups": "roles", "name": "profile.given"},
        "routes": {"rules": [{"name": "ops", "prefix": "/ops", "action": "authenticate",
                              "require": {"groups": ["ops"]}}]}
    }));
    let mut b = Browser::default();
    let d = login_with_token(&mut h, &mut b, "/", "carol", |h, mut c| {
        c.insert("user".into(), json!({"mail": "carol@example.com"}));
        c.insert("roles".into(), json!("ops"));
        c.insert("profile".into(), json!({"given": "Carol"}));
        h.idp.sign(&c)
    });
    assert_eq!(reason_code(&d), "login_completed");
    let d = h.send("GET", "/ops/x", &[("accept", "application/json")], Some(&b));
    let ids = identity_headers(&d);
    assert!(
        ids.contains(&("x-forwarded-email".into(), "carol@example.com".into())),
        "{ids:?}"
    );
    assert!(
        ids.contains(&("x-forwarded-groups".into(), "ops".into())),
        "{ids:?}"
    );
    let mut b = Browser::default();
    let d = login_with_token(&mut h, &mut b, "/", "dave", |h, mut c| {
        c.insert("user".into(), json!({"mail": "dave@example.com"}));
        c.insert("email_verified".into(), json!("false"));
        h.idp.sign(&c)
    });
    assert_eq!(reason_code(&d), "login_completed");
    let d = h.send("GET", "/x", &[("accept", "application/json")], Some(&b));
    let ids = identity_headers(&d);
    assert!(
        !ids.iter().any(|(n, _)| n == "x-forwarded-email"),
        "{ids:?}"
    );
}

#[test]
fn configuration_errors_name_the_rule() {
    let cases: &[(Value, &str)] = &[
        (
            json!({"routes": {"rules": [{"name": "a", "prefix": "/api", "action": "public"},
                                     {"name": "b", "path": "/api/x", "action": "deny"}]}}),
            "routes.rules[1] (b): can never match: routes.rules[0] (a)",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "public"},
                                     {"name": "b", "glob": "/x/*", "action": "deny"}]}}),
            "routes.rules[1] (b): can never match",
        ),
        (
            json!({"routes": {"rules": [{"prefix": "/a", "methods": ["GET"], "action": "public"},
                                     {"prefix": "/a/b", "methods": ["GET"], "action": "deny"}]}}),
            "routes.rules[1]: can never match: routes.rules[0]",
        ),
        (
            json!({"public_paths": ["/static/*"], "routes": {"rules": [{"name": "s", "prefix": "/static/js", "action": "deny"}]}}),
            "routes.rules[0] (s): can never match: public_paths[0]",
        ),
        (
            json!({"routes": {"rules": [{"name": "g", "glob": "/a/**x", "action": "deny"}]}}),
            "routes.rules[0] (g).glob:",
        ),
        (
            json!({"routes": {"rules": [{"name": "g", "glob": "a/*", "action": "deny"}]}}),
            "routes.rules[0] (g).glob:",
        ),
        (
            json!({"routes": {"rules": [{"name": "g", "glob": "/a/../*", "action": "deny"}]}}),
            "routes.rules[0] (g).glob:",
        ),
        (
            json!({"routes": {"rules": [{"name": "p", "prefix": "/a//b", "action": "deny"}]}}),
            "routes.rules[0] (p).prefix:",
        ),
        (
            json!({"routes": {"rules": [{"name": "p", "path": "/a", "prefix": "/b", "action": "deny"}]}}),
            "at most one of path, prefix, glob",
        ),
        (
            json!({"routes": {"rules": [{"name": "u", "action": "deny", "pathh": "/x"}]}}),
            "unknown field `pathh`",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "allow"}]}}),
            "routes.rules[0] (a).action:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "authenticate", "accept": "cookie"}]}}),
            "routes.rules[0] (a).accept:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "public", "require": {"groups": ["x"]}}]}}),
            "routes.rules[0] (a): require, bearer_header, forward_session_cookie and api",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "authenticate", "methods": ["get"]}]}}),
            "routes.rules[0] (a).methods[0]:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "hosts": ["bad host"], "action": "deny"}]}}),
            "routes.rules[0] (a).hosts[0]:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "authenticate", "require": {"emails": ["a@b@c"]}}]}}),
            "routes.rules[0] (a).require.emails[0]:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "authenticate", "require": {"email_domains": ["@x"]}}]}}),
            "routes.rules[0] (a).require.email_domains[0]:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "authenticate", "require": {"groups": ["a,b"]}}]}}),
            "routes.rules[0] (a).require.groups[0]:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "authenticate", "require": {"claims": [{"claim": "x", "equals": 1, "contains": 1}]}}]}}),
            "routes.rules[0] (a).require.claims[0]:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "authenticate", "require": {"scopes_by_method": {"get": ["r"]}}}]}}),
            "routes.rules[0] (a).require.scopes_by_method.get:",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "authenticate", "accept": "bearer"}]}}),
            "bearer.issuers: routes accept bearer tokens but no issuer",
        ),
        (
            json!({"routes": {"rules": [{"name": "a", "action": "deny"}, {"name": "a", "path": "/x", "action": "deny"}]}}),
            "routes.rules[1] (a).name: is used by another rule",
        ),
        (
            json!({"bearer": {"issuers": [{"issuer": ISSUER, "audiences": []}]}}),
            "bearer.issuers[0].audiences:",
        ),
        (
            json!({"bearer": {"issuers": [{"issuer": ISSUER, "audiences": ["a"], "allowed_algs": ["HS256"]}]}}),
            "bearer.issuers[0].allowed_algs[0]:",
        ),
        (
            json!({"claims": {"headers": [{"name": "X-Forwarded-User", "from": "email"}]}}),
            "claims.headers[0].name:",
        ),
        (
            json!({"claims": {"headers": [{"name": "X-A", "from": "password"}]}}),
            "claims.headers[0].from:",
        ),
        (json!({"public_paths": ["/a/../b"]}), "public_paths[0]:"),
        // Issue 7's route options.
        (
            json!({"routes": {"rules": [{"prefix": "/g", "action": "authenticate", "accept": "bearer", "bearer_header": ["flyte-authorization", "Flyte-Authorization"]}]}}),
            "routes.rules[0].bearer_header[1]: is listed twice",
        ),
        (
            json!({"routes": {"rules": [{"prefix": "/g", "action": "authenticate", "accept": "bearer", "bearer_header": []}]}}),
            "routes.rules[0].bearer_header: must name one to four headers",
        ),
        (
            json!({"routes": {"rules": [{"prefix": "/g", "action": "authenticate", "accept": "bearer", "bearer_header": ["cookie"]}]}}),
            "routes.rules[0].bearer_header[0]:",
        ),
        (
            json!({"routes": {"rules": [{"prefix": "/g", "action": "authenticate", "accept": "bearer", "forward_session_cookie": true}]}}),
            "routes.rules[0].forward_session_cookie: needs a route that accepts sessions",
        ),
        (
            json!({"routes": {"rules": [{"prefix": "/g", "action": "public", "api": true}]}}),
            "routes.rules[0]: require, bearer_header, forward_session_cookie and api only apply",
        ),
        (
            json!({"routes": {"default": {"action": "deny", "forward_session_cookie": true}}}),
            "routes.default: require, bearer_header, forward_session_cookie and api only apply",
        ),
    ];
    for (patch, want) in cases {
        let e = cfg_with(patch.clone()).err().unwrap_or_default();
        assert!(e.contains(want), "{patch}: got {e:?}, want {want:?}");
    }
    // Not shadowed: narrower first, different methods, different hosts.
    for ok in [
        json!({"routes": {"rules": [{"path": "/api/x", "action": "deny"}, {"prefix": "/api", "action": "public"}]}}),
        json!({"routes": {"rules": [{"prefix": "/a", "methods": ["GET"], "action": "public"}, {"prefix": "/a", "methods": ["POST"], "action": "deny"}]}}),
        json!({"routes": {"rules": [{"prefix": "/a", "methods": ["GET"], "action": "public"}, {"prefix": "/a", "action": "deny"}]}}),
        json!({"routes": {"rules": [{"hosts": ["a.test"], "action": "public"}, {"hosts": ["b.test"], "action": "deny"}]}}),
        json!({"routes": {"rules": [{"prefix": "/api", "action": "public"}, {"glob": "/apix/*", "action": "deny"}]}}),
    ] {
        assert!(
            cfg_with(ok.clone()).is_ok(),
            "{ok}: {:?}",
            cfg_with(ok.clone()).err()
        );
    }
}

/// A naive glob matcher (exponential, but the inputs are short): the reference for the real one.
fn naive_glob(pat: &[&str], segs: &[&str]) -> bool {
    match pat.split_first() {
        None => segs.is_empty(),
        Some((&"**", rest)) => (0..=segs.len()).any(|k| naive_glob(rest, &segs[k..])),
        Some((p, rest)) => match segs.split_first() {
            Some((s, srest)) => naive_seg(p.as_bytes(), s.as_bytes()) && naive_glob(rest, srest),
            None => false,
        },
    }
}

fn naive_seg(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|k| naive_seg(rest, &s[k..])),
        Some((c, rest)) => s.first() == Some(c) && naive_seg(rest, &s[1..]),
    }
}

#[test]
fn the_glob_matcher_agrees_with_a_naive_reference() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let pick = |rng: &mut ChaCha20Rng, alphabet: &[&str], n: usize| -> Vec<String> {
        (0..n)
            .map(|_| alphabet[(rng.next_u32() as usize) % alphabet.len()].to_string())
            .collect()
    };
    let mut agreed = [0u32; 2];
    for _ in 0..20_000 {
        let np = 1 + (rng.next_u32() % 5) as usize;
        let ns = 1 + (rng.next_u32() % 6) as usize;
        let pat_segs = pick(
            &mut rng,
            &["a", "b", "*", "**", "a*", "*b", "a*b", "ab", ""],
            np,
        );
        let path_segs = pick(&mut rng, &["a", "b", "ab", "ba", "aab", "", "abb"], ns);
        let pattern = format!("/{}", pat_segs.join("/"));
        let path = format!("/{}", path_segs.join("/"));
        let p: Vec<&str> = pattern.split('/').collect();
        let s: Vec<&str> = path.split('/').collect();
        let want = naive_glob(&p, &s);
        assert_eq!(glob_matches(&pattern, &path), want, "{pattern} vs {path}");
        agreed[usize::from(want)] += 1;
    }
    assert!(agreed[0] > 1000 && agreed[1] > 1000, "{agreed:?}");
    for (p, s, want) in [
        ("a*b", "ab", true),
        ("a*b", "axxb", true),
        ("*", "", true),
        ("a*", "b", false),
    ] {
        assert_eq!(segment_matches(p, s), want, "{p} {s}");
    }
}

/// A configuration with only `public_paths`: whether the engine's routing calls a path public.
struct PublicOnly(Config);

impl PublicOnly {
    fn new(paths: Value) -> Self {
        PublicOnly(cfg_with(json!({"public_paths": paths})).unwrap())
    }

    fn matches(&self, path: &str) -> bool {
        self.0
            .policy
            .route_parts(path, "app.test", "GET")
            .is_ok_and(|r| r.action == portcullis_core::policy::rules::Action::Public)
    }
}

#[test]
fn traversal_out_of_a_public_prefix_is_not_public() {
    let p = PublicOnly::new(json!(["/public/*", "/healthz"]));
    assert!(p.matches("/public/"));
    assert!(p.matches("/public/a/b.css"));
    assert!(p.matches("/healthz"));
    assert!(!p.matches("//public//x"), "empty segments are never public");
    for not_public in [
        "/public",
        "/healthz/",
        "/healthzx",
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public/%2E%2E/admin",
        "/public/..%2fadmin",
        "/public%2f../admin",
        "/public/..;/admin",
        "/public/.%2e/admin",
        "/public\\..\\admin",
        "/public/%252e%252e/admin",
        "/public/%25%32%65%25%32%65/admin",
        "/public/%c0%ae%c0%ae/admin",
        "/public/%e0%80%ae/admin",
        "/public/%ff/x",
        "/public/a|",
        "/public/c:",
        "/admin",
    ] {
        assert!(!p.matches(not_public), "{not_public}");
    }
    assert!(!PublicOnly::new(json!([])).matches("/public/"));
}

#[test]
fn userinfo_claims_fill_what_the_id_token_lacks() {
    let cfg = json!({"claims": {"userinfo": true, "groups": "org.teams",
        "headers": [{"name": "X-Dept", "claim": "department"}]}});
    let mut h = Harness::with(cfg.clone());
    h.idp.userinfo_claims = json!({"email": "carol@corp.example", "email_verified": true,
        "org": {"teams": ["ops"]}, "department": "eng", "name": "From Userinfo"})
    .as_object()
    .unwrap()
    .clone();
    let mut b = Browser::default();
    let d = login_with_token(&mut h, &mut b, "/", "carol", |h, mut c| {
        for k in ["email", "email_verified", "groups"] {
            c.remove(k);
        }
        h.idp.sign(&c)
    });
    assert_eq!(reason_code(&d), "login_completed");
    assert_eq!(h.callouts, vec!["/token", "/userinfo"]);
    let ids = identity_headers(&h.send("GET", "/x", &[("accept", "application/json")], Some(&b)));
    for want in [
        ("x-forwarded-email", "carol@corp.example"),
        ("x-forwarded-groups", "ops"),
        ("x-dept", "eng"),
    ] {
        assert!(
            ids.contains(&(want.0.into(), want.1.into())),
            "{want:?} in {ids:?}"
        );
    }
    // The ID token's own claims win over userinfo's (it is signed).
    let d = h.send(
        "GET",
        "/oauth2/userinfo",
        &[("accept", "application/json")],
        Some(&b),
    );
    assert_eq!(body_json(&d)["name"], "User carol");

    // A reply for someone else, an error, garbage: the login fails, no session.
    for (reply, status_want, code) in [
        (
            (200, r#"{"sub":"mallory","email":"m@x"}"#),
            403,
            "userinfo_sub_mismatch",
        ),
        ((500, "oops"), 502, "userinfo_unavailable"),
        ((200, "<html>"), 502, "userinfo_invalid"),
        ((504, ""), 504, "userinfo_timeout"),
    ] {
        let mut h = Harness::with(cfg.clone());
        h.idp.userinfo_override = Some((reply.0, reply.1.to_string()));
        let mut b = Browser::default();
        let d = h.login(&mut b, "/", "carol");
        assert_eq!(
            (status(&d), reason_code(&d)),
            (status_want, code),
            "{reply:?}"
        );
        assert!(b.get("_pc").is_none(), "{reply:?}: no session");
    }
    // Off (the default): no userinfo call.
    let mut h = Harness::new();
    let mut b = Browser::default();
    assert_eq!(
        reason_code(&h.login(&mut b, "/", "carol")),
        "login_completed"
    );
    assert_eq!(h.callouts, vec!["/token"]);
}
