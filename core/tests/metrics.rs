//! Metrics, health checks and the decision log, through the engine: every counter family moves when
//! (and only when) its event happens, health checks are answered before authentication and never
//! counted as traffic, and the log line names rule, user and latency.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::metrics::{MetricKind, MetricUpdate, IN_FLIGHT};
use portcullis_core::{CalloutResponse, Decision, Outcome, Request};
use serde_json::{json, Map, Value};

fn policy() -> Value {
    json!({
        "public_paths": ["/public/*"],
        "bearer": {"issuers": [{"issuer": ISSUER, "audiences": ["api://demo"]}]},
        "routes": {
            "rules": [
                {"name": "admin", "prefix": "/admin", "action": "authenticate",
                 "require": {"groups": ["admins"]}},
                {"name": "blocked", "prefix": "/internal", "action": "deny"},
                {"name": "api", "prefix": "/api", "action": "authenticate", "accept": "bearer",
                 "require": {"scopes": ["read"]}}
            ],
            "default": {"action": "deny"}
        }
    })
}

fn take(h: &mut Harness) -> Vec<MetricUpdate> {
    h.vm.take_metrics()
}

fn value(updates: &[MetricUpdate], name: &str) -> i64 {
    updates
        .iter()
        .filter(|u| u.name == name)
        .map(|u| u.delta)
        .sum()
}

fn token(h: &Harness, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
    let mut c = json!({"iss": ISSUER, "sub": "svc-worker", "aud": "api://demo",
        "client_id": "svc-worker", "iat": h.now.0, "exp": h.now.0 + 300, "scope": "read"})
    .as_object()
    .unwrap()
    .clone();
    edit(&mut c);
    h.idp.sign(&c)
}

/// The request an adapter would have decided, for `Outcome::begin`.
fn outcome_of(method: &str, path: &str, d: &Decision) -> Outcome {
    let sent = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), path.to_string()),
        (":authority".to_string(), "app.test".to_string()),
    ];
    let raw = portcullis_core::request::raw_headers(&sent);
    Outcome::begin(&Request::from_headers(&raw), d)
}

#[test]
fn loading_the_keys_counts_a_keyset_refresh_and_a_failed_refresh_counts_too() {
    let mut h = Harness::new();
    let u = take(&mut h);
    assert_eq!(
        value(&u, "portcullis_keyset_refreshes_total.outcome.ok"),
        1,
        "{u:?}"
    );
    assert_eq!(
        value(&u, "portcullis_keyset_refreshes_total.outcome.failed"),
        0
    );
    h.advance(3600);
    let due = h.engine.handle_timeout(h.now, &mut h.vm);
    assert!(!due.is_empty());
    for (_, pending) in due {
        let _ = h.engine.handle_root_response(
            pending,
            CalloutResponse::Received {
                status: 500,
                body: b"",
            },
            h.now,
            &mut h.vm,
        );
    }
    let u = take(&mut h);
    assert_eq!(
        value(&u, "portcullis_keyset_refreshes_total.outcome.failed"),
        1,
        "{u:?}"
    );
}

#[test]
fn a_login_counts_one_start_and_one_completion() {
    let mut h = Harness::with(json!({}));
    let _ = take(&mut h);
    let mut b = Browser::default();
    let d = h.login(&mut b, "/app", "alice");
    assert_eq!(status(&d), 302, "{d:?}");
    let u = take(&mut h);
    assert_eq!(value(&u, "portcullis_logins_started_total"), 1, "{u:?}");
    assert_eq!(value(&u, "portcullis_logins_completed_total"), 1);
    assert_eq!(
        value(&u, "portcullis_decisions_total.reason.login_started"),
        1
    );
    assert_eq!(
        value(&u, "portcullis_decisions_total.reason.login_completed"),
        1
    );
    assert!(
        u.iter()
            .all(|x| !x.name.starts_with("portcullis_logins_failed_total")),
        "{u:?}"
    );
    // Signed in: a routine pass counts only as a decision.
    let d = h.navigate(&mut b, "/app");
    assert!(matches!(d, Decision::Forward { .. }));
    let u = take(&mut h);
    assert_eq!(
        value(&u, "portcullis_decisions_total.reason.authenticated"),
        1
    );
    assert_eq!(u.len(), 1, "{u:?}");
}

#[test]
fn a_failed_callback_counts_a_login_failure_by_reason() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    let url = h.start(&mut b, "/app");
    let back = h.idp_login(&url, "alice");
    let forged = back.replace("state=", "state=x");
    let _ = take(&mut h);
    let d = h.navigate(&mut b, &forged);
    assert!(status(&d) >= 400, "{}: {forged}", reason_code(&d));
    let u = take(&mut h);
    let code = reason_code(&d);
    assert_eq!(
        value(&u, &format!("portcullis_logins_failed_total.reason.{code}")),
        1,
        "{code}: {u:?}"
    );
    // The same failure reason outside a login endpoint is no login failure: a bare 401 is not either.
    let d = h.send("GET", "/app", &[("accept", "application/json")], None);
    assert_eq!(status(&d), 401);
    let u = take(&mut h);
    assert!(
        u.iter()
            .all(|x| !x.name.starts_with("portcullis_logins_failed")),
        "{u:?}"
    );
}

#[test]
fn a_denial_counts_its_rule_and_requirement_and_traces_rule_and_user() {
    let mut h = Harness::with(policy());
    let mut b = Browser::default();
    assert_eq!(status(&h.login(&mut b, "/admin", "alice")), 302);
    let _ = take(&mut h);
    let d = h.navigate(&mut b, "/admin/users");
    assert_eq!(status(&d), 403);
    let trace = d.trace().cloned().unwrap();
    assert_eq!(trace.rule.as_deref(), Some("admin"));
    assert_eq!(trace.user.as_deref(), Some("alice"));
    let d2 = h.navigate(&mut b, "/internal/x");
    assert_eq!(status(&d2), 403);
    let d3 = h.navigate(&mut b, "/elsewhere");
    assert_eq!(status(&d3), 403);
    let u = take(&mut h);
    assert_eq!(
        value(
            &u,
            "portcullis_policy_denials_total.rule.admin.requirement.groups"
        ),
        1,
        "{u:?}"
    );
    assert_eq!(
        value(
            &u,
            "portcullis_policy_denials_total.rule.blocked.requirement.deny"
        ),
        1
    );
    assert_eq!(
        value(
            &u,
            "portcullis_policy_denials_total.rule.default.requirement.deny"
        ),
        1
    );
    // A routine pass carries no trace (nothing allocated on the hot path).
    let d = h.navigate(&mut b, "/public/x");
    assert_eq!(d.trace().cloned().unwrap_or_default(), Default::default());
}

#[test]
fn bearer_tokens_count_verified_cache_hits_misses_and_rejections_by_reason() {
    let mut h = Harness::with(policy());
    let _ = take(&mut h);
    let good = token(&h, |_| {});
    let auth = format!("Bearer {good}");
    for _ in 0..3 {
        let d = h.send("GET", "/api/x", &[("authorization", &auth)], None);
        assert!(matches!(d, Decision::Forward { .. }), "{d:?}");
    }
    let expired = token(&h, |c| {
        c.insert("exp".into(), json!(h.now.0 - 3600));
    });
    let d = h.send(
        "GET",
        "/api/x",
        &[("authorization", &format!("Bearer {expired}"))],
        None,
    );
    assert_eq!(status(&d), 401);
    let unscoped = token(&h, |c| {
        c.insert("scope".into(), json!("write"));
    });
    let d = h.send(
        "GET",
        "/api/x",
        &[("authorization", &format!("Bearer {unscoped}"))],
        None,
    );
    assert_eq!(status(&d), 403);
    let u = take(&mut h);
    assert_eq!(value(&u, "portcullis_tokens_verified_total"), 3, "{u:?}");
    assert_eq!(value(&u, "portcullis_token_cache_hits_total"), 2);
    assert_eq!(value(&u, "portcullis_token_cache_misses_total"), 3);
    let rejected: Vec<&MetricUpdate> = u
        .iter()
        .filter(|x| {
            x.name
                .starts_with("portcullis_tokens_rejected_total.reason.")
        })
        .collect();
    assert_eq!(rejected.len(), 1, "{u:?}");
    assert!(rejected[0].name.ends_with(reason_code(&h.send(
        "GET",
        "/api/x",
        &[("authorization", &format!("Bearer {expired}"))],
        None
    ))));
    assert_eq!(
        value(
            &u,
            "portcullis_policy_denials_total.rule.api.requirement.scopes"
        ),
        1
    );
}

#[test]
fn health_checks_are_answered_before_authentication_and_never_counted_as_traffic() {
    // Everything is denied by default, yet the health checks answer.
    let mut h = Harness::unready(policy());
    for path in ["/ping", "/oauth2/ping"] {
        let d = h.send("GET", path, &[], None);
        assert_eq!((status(&d), reason_code(&d)), (200, "ping"), "{path}");
    }
    for path in ["/ready", "/oauth2/ready"] {
        let d = h.send("GET", path, &[], None);
        assert_eq!((status(&d), reason_code(&d)), (503, "not_ready"), "{path}");
    }
    h.load_provider();
    let d = h.send("GET", "/ready", &[], None);
    assert_eq!((status(&d), reason_code(&d)), (200, "ready"));
    // Not a prefix match: /ping/x and /readyz go through the policy (here: denied).
    for path in ["/ping/x", "/readyz"] {
        assert_eq!(status(&h.send("GET", path, &[], None)), 403, "{path}");
    }
    let _ = take(&mut h);
    // What a host does when the requests end: health is not traffic, the rest is.
    let ping = h.send("GET", "/ping", &[], None);
    h.vm.request_started();
    let line = h
        .engine
        .finish_request(&outcome_of("GET", "/ping", &ping), 200, 80, &mut h.vm);
    assert_eq!(line, None, "health checks write no log line");
    let u = take(&mut h);
    assert!(u.is_empty(), "health checks count nowhere: {u:?}");
    let denied = h.send("GET", "/elsewhere", &[], None);
    h.vm.request_started();
    h.vm.request_started();
    let line = h
        .engine
        .finish_request(
            &outcome_of("GET", "/elsewhere", &denied),
            403,
            1_500,
            &mut h.vm,
        )
        .unwrap();
    assert_eq!(
        line.text,
        "403 route_denied GET /elsewhere rule=default latency_ms=1.5"
    );
    let u = take(&mut h);
    assert_eq!(
        value(&u, "oauth2_proxy_requests_total.code.403"),
        1,
        "{u:?}"
    );
    assert_eq!(
        value(
            &u,
            "oauth2_proxy_response_duration_seconds_bucket.method.get.le.0.005"
        ),
        1
    );
    assert_eq!(
        value(
            &u,
            "portcullis_response_duration_microseconds_sum.method.get"
        ),
        1_500
    );
    let gauge: Vec<&MetricUpdate> = u.iter().filter(|x| x.name == IN_FLIGHT).collect();
    assert_eq!(gauge.len(), 1);
    assert_eq!(
        (gauge[0].kind, gauge[0].delta),
        (MetricKind::Gauge, 1),
        "one still in flight"
    );
}

#[test]
fn health_paths_are_configurable_or_off_and_bad_ones_name_the_field() {
    let mut h = Harness::with(json!({"health": {"ping_path": "/healthz", "ready_path": null}}));
    assert_eq!(reason_code(&h.send("GET", "/healthz", &[], None)), "ping");
    assert_eq!(
        reason_code(&h.send("GET", "/oauth2/ready", &[], None)),
        "ready"
    );
    // Turned off: /ready and /ping are ordinary paths again (a navigation logs in).
    for p in ["/ready", "/ping"] {
        let d = h.send("GET", p, &[("accept", "text/html")], None);
        assert_eq!(reason_code(&d), "login_started", "{p}");
    }
    for (health, field) in [
        (json!({"ping_path": "ping"}), "health.ping_path"),
        (json!({"ready_path": "/a/../b"}), "health.ready_path"),
        (json!({"ready_path": "/oauth2/health"}), "health.ready_path"),
        (
            json!({"ping_path": "/x", "ready_path": "/x"}),
            "health.ready_path",
        ),
        (json!({"pingpath": "/x"}), "pingpath"),
    ] {
        let mut cfg = base_config();
        merge(&mut cfg, &json!({ "health": health }));
        let e = portcullis_core::Config::from_json(cfg.to_string().as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(field), "{e}");
    }
    let mut cfg = base_config();
    merge(&mut cfg, &json!({"log": {"format": "xml"}}));
    let e = portcullis_core::Config::from_json(cfg.to_string().as_bytes())
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("log.format"), "{e}");
}

#[test]
fn json_log_lines_name_rule_user_and_latency_and_never_the_query() {
    let mut p = policy();
    p["log"] = json!({"format": "json"});
    let mut h = Harness::with(p);
    let mut b = Browser::default();
    assert_eq!(status(&h.login(&mut b, "/admin", "alice")), 302);
    let d = h.navigate(&mut b, "/admin/users?code=secret-code&state=s");
    assert_eq!(status(&d), 403);
    let o = outcome_of("GET", "/admin/users?code=secret-code&state=s", &d);
    let line = h.engine.finish_request(&o, 403, 2_000, &mut h.vm).unwrap();
    assert!(line.warn);
    assert!(!line.text.contains("secret-code"), "{}", line.text);
    let v: Value = serde_json::from_str(&line.text).unwrap();
    assert_eq!(
        v,
        json!({"status": 403, "reason": "forbidden_group", "method": "GET", "path": "/admin/users",
               "rule": "admin", "user": "alice", "latency_ms": 2.0})
    );
}

/// `metrics.upstream_status`: on (the default), the adapter reads every forwarded response's status
/// and it is counted by code; off, it is never read (a host call saved per request) and forwarded
/// requests count as `code="upstream"`. Our own replies carry their code either way, unread.
#[test]
fn upstream_status_is_read_by_default_and_counted_as_upstream_when_off() {
    for off in [false, true] {
        let mut cfg = json!({"public_paths": ["/public/*"]});
        if off {
            cfg["metrics"] = json!({"upstream_status": false});
        }
        let mut h = Harness::with(cfg);
        assert!(
            !h.engine.needs_response_status(302),
            "our own status is known"
        );
        assert_eq!(h.engine.needs_response_status(0), !off);
        let _ = take(&mut h);
        let public = h.send("GET", "/public/a", &[], None);
        assert!(matches!(public, Decision::Forward { .. }));
        let o = outcome_of("GET", "/public/a", &public);
        assert!(o.forwarded);
        // The adapter passes what it read: the upstream's 502 when on, nothing (0) when off.
        h.vm.request_started();
        let _ = h
            .engine
            .finish_request(&o, if off { 0 } else { 502 }, 900, &mut h.vm);
        let redirect = h.send("GET", "/app", &[("accept", "text/html")], None);
        assert_eq!(status(&redirect), 302);
        let o = outcome_of("GET", "/app", &redirect);
        assert!(!o.forwarded);
        h.vm.request_started();
        let _ = h.engine.finish_request(&o, 302, 900, &mut h.vm);
        // A forwarded request that never got a response is not traffic when the status is read.
        h.vm.request_started();
        let _ =
            h.engine
                .finish_request(&outcome_of("GET", "/public/a", &public), 0, 900, &mut h.vm);
        let u = take(&mut h);
        assert_eq!(
            value(&u, "oauth2_proxy_requests_total.code.302"),
            1,
            "{u:?}"
        );
        assert_eq!(
            value(&u, "oauth2_proxy_requests_total.code.502"),
            i64::from(!off),
            "{u:?}"
        );
        assert_eq!(
            value(&u, "oauth2_proxy_requests_total.code.upstream"),
            if off { 2 } else { 0 },
            "{u:?}"
        );
    }
    let mut cfg = base_config();
    merge(&mut cfg, &json!({"metrics": {"upstream_statuses": false}}));
    let err = portcullis_core::Engine::from_json(cfg.to_string().as_bytes())
        .map(|_| ())
        .unwrap_err()
        .to_string();
    assert!(err.contains("upstream_status"), "{err}");
}
