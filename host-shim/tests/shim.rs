//! host-shim over real sockets: the shim proxies to a real echo upstream and calls the testkit IdP over
//! HTTP. The same engine as in Envoy; here in `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use portcullis_core::testkit::FakeIdp;
use portcullis_host_shim::{start, Running, ShimConfig};
use serde_json::{json, Value};

/// Serves the fake IdP on a real socket.
fn idp_server() -> (String, Arc<Mutex<FakeIdp>>) {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    let idp = Arc::new(Mutex::new(FakeIdp::new(&base)));
    let shared = idp.clone();
    thread::spawn(move || {
        for mut req in server.incoming_requests() {
            let mut body = Vec::new();
            let _ = req.as_reader().read_to_end(&mut body);
            let auth = req
                .headers()
                .iter()
                .find(|h| h.field.equiv("authorization"))
                .map(|h| h.value.to_string());
            let (status, headers, out) = {
                let mut idp = shared.lock().unwrap();
                idp.now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                idp.serve(req.method().as_str(), req.url(), auth.as_deref(), &body)
            };
            let mut resp = tiny_http::Response::from_data(out).with_status_code(status);
            for (n, v) in headers {
                resp.add_header(tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()).unwrap());
            }
            let _ = req.respond(resp);
        }
    });
    (base, idp)
}

/// An upstream that echoes the request headers it received as JSON.
fn echo_server() -> String {
    let server = tiny_http::Server::http("127.0.0.1:0").unwrap();
    let base = format!("http://{}", server.server_addr().to_ip().unwrap());
    thread::spawn(move || {
        for req in server.incoming_requests() {
            let mut headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for h in req.headers() {
                headers
                    .entry(h.field.as_str().as_str().to_ascii_lowercase())
                    .or_default()
                    .push(h.value.to_string());
            }
            let body = json!({"path": req.url(), "headers": headers}).to_string();
            let _ = req.respond(tiny_http::Response::from_string(body));
        }
    });
    base
}

struct Stack {
    /// The `_portcullis_hint=...` pair of the last login (a browser sends it only to /oauth2/sign_out).
    hint: Mutex<String>,
    shim: Option<Running>,
    base: String,
    idp: Arc<Mutex<FakeIdp>>,
    idp_base: String,
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(s) = self.shim.take() {
            s.stop();
        }
    }
}

fn stack_with(idp_base_override: Option<&str>) -> Stack {
    let (idp_base, idp) = idp_server();
    let upstream = echo_server();
    let cluster_base = idp_base_override.map_or(idp_base.clone(), str::to_string);
    let plugin = json!({
        "issuer": idp_base,
        "idp_cluster": "idp",
        "client_id": "app",
        "client_secret": "app-secret",
        "cookie": {"keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]},
        "provider": {"jwks_min_refetch_interval_seconds": 0},
    });
    let shim = start(ShimConfig {
        listen: "127.0.0.1:0".parse::<SocketAddr>().unwrap(),
        upstream,
        clusters: BTreeMap::from([("idp".to_string(), cluster_base)]),
        plugin_json: plugin.to_string().into_bytes(),
        workers: 4,
    })
    .unwrap();
    let base = format!("http://{}", shim.addr);
    Stack {
        hint: Mutex::new(String::new()),
        shim: Some(shim),
        base,
        idp,
        idp_base,
    }
}

fn stack() -> Stack {
    let s = stack_with(None);
    // Wait for discovery + JWKS.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if get(&format!("{}/oauth2/start", s.base), &[]).0 == 302 {
            return s;
        }
        thread::sleep(Duration::from_millis(50));
    }
    panic!("shim never became ready");
}

/// GET without following redirects: (status, headers, body).
fn get(url: &str, headers: &[(&str, &str)]) -> (u16, Vec<(String, String)>, String) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent.get(url);
    for (n, v) in headers {
        req = req.set(n, v);
    }
    let resp = match req.call() {
        Ok(r) | Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("{url}: {e}"),
    };
    let status = resp.status();
    let mut hs = Vec::new();
    for n in resp.headers_names() {
        for v in resp.all(&n) {
            hs.push((n.clone(), v.to_string()));
        }
    }
    (status, hs, resp.into_string().unwrap_or_default())
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn set_cookies(h: &[(String, String)]) -> Vec<String> {
    h.iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.clone())
        .collect()
}

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

/// Full login over sockets; returns the session `name=value`.
fn login(s: &Stack, path: &str) -> (String, String) {
    let (st, h, _) = get(&format!("{}{path}", s.base), &[("accept", "text/html")]);
    assert_eq!(st, 302);
    let auth = header(&h, "location").unwrap().to_string();
    assert!(auth.starts_with(&format!("{}/auth?", s.idp_base)), "{auth}");
    let login_cookie = cookie_pair(&set_cookies(&h)[0]);
    let (st, h, _) = get(&auth, &[]);
    assert_eq!(st, 302);
    let callback = header(&h, "location").unwrap().to_string();
    assert!(
        callback.starts_with(&format!("{}/oauth2/callback?", s.base)),
        "{callback}"
    );
    let (st, h, body) = get(&callback, &[("cookie", &login_cookie)]);
    assert_eq!(st, 302, "{body}");
    let session = set_cookies(&h)
        .into_iter()
        .find(|c| c.starts_with("_portcullis="))
        .unwrap();
    let hint = set_cookies(&h)
        .into_iter()
        .find(|c| c.starts_with("_portcullis_hint=") && c.contains("Path=/oauth2/sign_out"))
        .expect("the ID-token hint cookie, scoped to the sign-out path");
    *s.hint.lock().unwrap() = cookie_pair(&hint);
    (
        cookie_pair(&session),
        header(&h, "location").unwrap().to_string(),
    )
}

#[test]
fn login_over_real_sockets_forwards_identity_to_the_upstream() {
    let s = stack();
    let (session, back) = login(&s, "/app?x=1");
    assert_eq!(back, "/app?x=1");
    let (st, _, body) = get(
        &format!("{}/app?x=1", s.base),
        &[
            ("cookie", &format!("other=1; {session}")),
            ("x-forwarded-user", "mallory"),
            ("x_forwarded_email", "m@evil"),
        ],
    );
    assert_eq!(st, 200);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["path"], "/app?x=1");
    assert_eq!(v["headers"]["x-forwarded-user"], json!(["alice"]));
    assert_eq!(
        v["headers"]["x-forwarded-email"],
        json!(["alice@example.com"])
    );
    assert_eq!(
        v["headers"]["x-forwarded-groups"],
        json!(["staff,team-alice"])
    );
    assert_eq!(v["headers"]["cookie"], json!(["other=1"]));
    assert!(v["headers"].get("x_forwarded_email").is_none());
}

#[test]
fn api_calls_get_401_and_tampered_cookies_restart_login() {
    let s = stack();
    let (st, h, body) = get(
        &format!("{}/api", s.base),
        &[("accept", "application/json")],
    );
    assert_eq!(st, 401);
    assert!(set_cookies(&h).is_empty());
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["error"],
        "login_required"
    );
    let (session, _) = login(&s, "/");
    let tampered = format!("{}x", &session[..session.len() - 1]);
    let (st, _, _) = get(
        &format!("{}/", s.base),
        &[("cookie", &tampered), ("accept", "text/html")],
    );
    assert_eq!(st, 302);
}

#[test]
fn sign_out_redirects_to_the_idp_end_session_with_a_hint() {
    let s = stack();
    let (session, _) = login(&s, "/");
    let hint = s.hint.lock().unwrap().clone();
    let (st, h, _) = get(
        &format!("{}/oauth2/sign_out", s.base),
        &[("cookie", &format!("{session}; {hint}"))],
    );
    assert_eq!(st, 302);
    let loc = header(&h, "location").unwrap();
    assert!(
        loc.starts_with(&format!("{}/session/end?id_token_hint=", s.idp_base)),
        "{loc}"
    );
    assert!(set_cookies(&h)
        .iter()
        .any(|c| c.starts_with("_portcullis=;") && c.contains("Max-Age=0")));
}

#[test]
fn key_rotation_at_the_idp_is_followed_through_a_refetch() {
    let s = stack();
    s.idp.lock().unwrap().rotate();
    let served_before = s.idp.lock().unwrap().jwks_served;
    let (session, _) = login(&s, "/rotated");
    assert!(session.starts_with("_portcullis=k1."));
    assert_eq!(
        s.idp.lock().unwrap().jwks_served,
        served_before + 1,
        "exactly one refetch for the new kid"
    );
    let (_, _) = login(&s, "/again");
    assert_eq!(
        s.idp.lock().unwrap().jwks_served,
        served_before + 1,
        "the new key set was installed"
    );
}

#[test]
fn an_unreachable_idp_gives_503_with_retry_after_and_never_passes() {
    let s = stack_with(Some("http://127.0.0.1:9"));
    thread::sleep(Duration::from_millis(300));
    let (st, h, _) = get(&format!("{}/app", s.base), &[("accept", "text/html")]);
    assert_eq!(st, 503);
    assert_eq!(header(&h, "retry-after"), Some("2"));
    let (st, _, body) = get(&format!("{}/oauth2/ping", s.base), &[]);
    assert_eq!((st, body.as_str()), (200, "OK"));
}

#[test]
fn a_bad_plugin_configuration_refuses_to_start() {
    let err = start(ShimConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        upstream: "http://127.0.0.1:1".into(),
        clusters: BTreeMap::new(),
        plugin_json: br#"{"issuer":"http://x","idp_cluster":"idp","client_id":"a","cookie":{"keys":[{"id":"k","secret":"short"}]}}"#.to_vec(),
        workers: 1,
    })
    .err()
    .unwrap();
    assert!(err.to_string().contains("cookie.keys[0].secret"), "{err}");
}

/// The shim reports callout failures the way Envoy does (a timeout as its own 504, a refused connection
/// as its own 503), so the core maps every host's failures one way.
#[test]
fn callout_timeouts_and_refusals_are_reported_like_envoy() {
    use portcullis_core::Callout;
    use portcullis_host_shim::Clusters;
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let _keep = thread::spawn(move || {
        let mut held = Vec::new();
        for s in silent.incoming().take(4) {
            held.push(s);
        }
        thread::sleep(Duration::from_secs(5));
    });
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let clusters = Clusters::new(BTreeMap::from([
        ("silent".to_string(), format!("http://{silent_addr}")),
        ("closed".to_string(), format!("http://{closed_addr}")),
    ]));
    let call = |cluster: &str| Callout {
        endpoint: portcullis_core::metrics::IdpEndpoint::Jwks,
        cluster: cluster.into(),
        method: "GET",
        path: "/jwks".into(),
        authority: "idp".into(),
        headers: vec![],
        body: vec![],
        timeout_ms: 300,
    };
    let started = Instant::now();
    assert_eq!(clusters.send(&call("silent")).status, Some(504));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(clusters.send(&call("closed")).status, Some(503));
    assert_eq!(clusters.send(&call("no-such-cluster")).status, None);
}
