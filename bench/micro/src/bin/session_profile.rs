//! The core's session and public-route paths, natively, for a per-function instruction profile:
//! `valgrind --tool=callgrind target/release/session_profile [session|public|bearer] N` then
//! `callgrind_annotate`. One engine, one login through the in-process fake IdP, then N requests as
//! a browser sends them (about fifteen headers, the session cookie among others), each decided and
//! finished (metrics and log line) as the filter does. The wasm build executes the same code; the
//! proportions, not the absolute counts, carry over.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use portcullis_core::decision::Outcome;
use portcullis_core::request::raw_headers;
use portcullis_core::testkit::FakeIdp;
use portcullis_core::{CalloutResponse, Decision, Engine, Request, UnixTime};
use serde_json::json;

const ISSUER: &str = "https://idp.test";
const NOW: u64 = 1_700_000_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().unwrap_or_else(|| "session".into());
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(20_000);
    let cfg = json!({"issuer": ISSUER, "idp_cluster": "idp", "client_id": "app", "client_secret": "app-secret",
        "cookie": {"keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]},
        "public_paths": ["/public/*"],
        "bearer": {"issuers": [{"issuer": ISSUER, "audiences": ["api://bench"]}]},
        "routes": {"rules": [{"name": "api", "prefix": "/api", "action": "authenticate", "accept": "bearer"}]}});
    let engine = Engine::from_json(cfg.to_string().as_bytes()).unwrap();
    let mut idp = FakeIdp::new(ISSUER);
    idp.now = NOW;
    let now = UnixTime(NOW);
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(1);
    let mut vm = engine.new_vm();
    let mut queue = engine.handle_timeout(now, &mut vm);
    while let Some((c, p)) = queue.pop() {
        let (status, _, body) = idp.serve(c.method, &c.path, None, &c.body);
        queue.extend(
            engine
                .handle_root_response(
                    p,
                    CalloutResponse::Received {
                        status,
                        body: &body,
                    },
                    now,
                    &mut vm,
                )
                .next,
        );
    }
    // One login: navigation, IdP, callback.
    let nav = |path: &str, cookie: &str| -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = [
            (":method", "GET"),
            (":path", path),
            (":authority", "app.test"),
            (":scheme", "https"),
            (
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            ),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        if !cookie.is_empty() {
            h.push(("cookie".into(), cookie.into()));
        }
        h
    };
    let decide = |engine: &Engine,
                  h: &[(String, String)],
                  vm: &mut portcullis_core::VmState,
                  rng: &mut _| {
        let raw = raw_headers(h);
        let req = Request::from_headers(&raw);
        engine.handle_request(&req, now, rng, vm)
    };
    let d = decide(&engine, &nav("/", ""), &mut vm, &mut rng);
    let Decision::Respond { headers, .. } = &d else {
        panic!("{d:?}")
    };
    let loc = headers
        .iter()
        .find(|(n, _)| n == "location")
        .unwrap()
        .1
        .clone();
    let login_cookie = headers
        .iter()
        .find(|(n, _)| n == "set-cookie")
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let back = idp.authorize(&loc, "alice").unwrap();
    let cb = back.strip_prefix("https://app.test").unwrap().to_string();
    let d = decide(&engine, &nav(&cb, &login_cookie), &mut vm, &mut rng);
    let d = idp.drive(&engine, d, now, &mut rng, &mut vm);
    let Decision::Respond { headers, .. } = &d else {
        panic!("{d:?}")
    };
    let session = headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("_portcullis="))
        .unwrap()
        .1
        .split(';')
        .next()
        .unwrap()
        .to_string();
    // A browser's request: ~15 headers, ~1.5 KB of cookies of which ours is one.
    let cookies = format!("_ga=GA1.2.{0}.{0}; _gid=GA1.2.99.88; theme=dark; {session}; csrftoken={1}; grafana_session={1}{1}", 1_700_000_000u64, "a1b2c3d4e5f6".repeat(20));
    let path = match case.as_str() {
        "public" => "/public/app.css",
        "bearer" => "/api/v1/items",
        _ => "/dashboard/d/abc?orgId=1",
    };
    let mut h = nav(path, &cookies);
    if case == "bearer" {
        // A service's request: an RS256 access token (cached after the first request), no cookies.
        let claims = serde_json::json!({"iss": ISSUER, "sub": "svc", "aud": "api://bench", "client_id": "svc",
            "iat": NOW, "exp": NOW + 3600, "scope": "read write"});
        let token = idp.sign(claims.as_object().unwrap());
        h = nav(path, "");
        h.push(("authorization".into(), format!("Bearer {token}")));
        h.push(("user-agent".into(), "svc/1.0".into()));
    }
    for (k, v) in [("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
        ("accept-language", "en-US,en;q=0.9"), ("accept-encoding", "gzip, deflate, br"), ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"), ("sec-fetch-site", "same-origin"), ("sec-ch-ua", "\"Chromium\";v=\"131\""),
        ("upgrade-insecure-requests", "1"), ("referer", "https://app.test/"), ("x-forwarded-proto", "https")] {
        if case != "bearer" {
            h.push((k.into(), v.into()));
        }
    }
    let mut forwarded = 0usize;
    for _ in 0..n {
        let raw = raw_headers(&h);
        let req = Request::from_headers(&raw);
        vm.request_started();
        let d = engine.handle_request(&req, now, &mut rng, &mut vm);
        let edits = match &d {
            Decision::Forward { request, .. } => request.apply_raw(&raw).len(),
            _ => panic!("{d:?}"),
        };
        forwarded += edits;
        let outcome = Outcome::begin(&req, &d);
        let _ = engine.finish_request(&outcome, 200, 900, &mut vm);
    }
    let _ = vm.take_metrics();
    println!("{case}: {n} requests, {forwarded} upstream headers in all");
}
