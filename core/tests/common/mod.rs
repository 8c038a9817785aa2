//! Simulation harness (like quinn's `Pair`): an engine, the in-process fake IdP, a browser cookie jar,
//! a simulated clock and a seeded RNG. Nothing sleeps and nothing touches the network.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;

use portcullis_core::testkit::FakeIdp;
use portcullis_core::{CalloutResponse, Decision, Engine, Request, UnixTime, VmState};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};

pub const ISSUER: &str = "https://idp.test";
pub const KEY_1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
pub const KEY_2: &str = "YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODk=";

pub fn base_config() -> Value {
    json!({
        "issuer": ISSUER,
        "idp_cluster": "idp",
        "client_id": "app",
        "client_secret": "app-secret",
        "cookie": {"name": "_pc", "keys": [{"id": "k1", "secret": KEY_1}]},
        "public_paths": ["/public/*", "/healthz"],
        "allowed_redirect_domains": [".example.com"],
    })
}

/// Deep-merges `patch` into `base`.
pub fn merge(base: &mut Value, patch: &Value) {
    match (base, patch) {
        (Value::Object(b), Value::Object(p)) => {
            for (k, v) in p {
                merge(b.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
        (b, p) => *b = p.clone(),
    }
}

/// A browser's cookie jar for one host.
#[derive(Default, Debug, Clone)]
pub struct Browser {
    pub jar: Vec<(String, String)>,
}

impl Browser {
    pub fn cookie_header(&self) -> Option<String> {
        if self.jar.is_empty() {
            return None;
        }
        Some(
            self.jar
                .iter()
                .map(|(n, v)| format!("{n}={v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }

    /// Applies `set-cookie` headers (Max-Age=0 deletes); keeps creation order like a browser.
    pub fn apply(&mut self, headers: &[(String, String)]) {
        for (n, v) in headers {
            if !n.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            let pair = v.split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.jar.retain(|(n, _)| n != name);
            if !v.contains("Max-Age=0") {
                self.jar.push((name.to_string(), value.to_string()));
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.jar
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn set(&mut self, name: &str, value: &str) {
        self.jar.retain(|(n, _)| n != name);
        self.jar.push((name.to_string(), value.to_string()));
    }

    pub fn login_cookies(&self) -> Vec<String> {
        self.jar
            .iter()
            .filter(|(n, _)| n.starts_with("_pc_login_"))
            .map(|(n, _)| n.clone())
            .collect()
    }
}

pub struct Harness {
    pub engine: Engine,
    pub idp: FakeIdp,
    /// The per-VM state (session cache, issuers' keys, refresh schedule).
    pub vm: VmState,
    pub rng: ChaCha20Rng,
    pub now: UnixTime,
    /// How many callouts went to the IdP during requests, by path.
    pub callouts: Vec<String>,
    /// When set, request-time callouts get this reply instead of the fake IdP's.
    pub callout_override: Option<(u16, Vec<u8>)>,
    pub callout_fails: bool,
    /// The host's process-wide shared data (value, compare-and-swap version), shared by every VM a
    /// test swaps in.
    pub store: BTreeMap<String, (Vec<u8>, u32)>,
}

pub fn get_header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

impl Harness {
    pub fn new() -> Self {
        Self::with(json!({}))
    }

    /// A harness whose configuration is `base_config()` with `patch` merged in, provider loaded.
    pub fn with(patch: Value) -> Self {
        let mut h = Self::unready(patch);
        h.load_provider();
        h
    }

    pub fn unready(patch: Value) -> Self {
        let mut cfg = base_config();
        merge(&mut cfg, &patch);
        let engine = Engine::from_json(cfg.to_string().as_bytes()).expect("config");
        let mut idp = FakeIdp::new(ISSUER);
        idp.now = 1_700_000_000;
        Harness {
            vm: engine.new_vm(),
            engine,
            idp,
            rng: ChaCha20Rng::seed_from_u64(42),
            now: UnixTime(1_700_000_000),
            callouts: Vec::new(),
            callout_override: None,
            callout_fails: false,
            store: BTreeMap::new(),
        }
    }

    /// Drives the root refresh timer against the fake IdP until every issuer is loaded.
    pub fn load_provider(&mut self) {
        let mut queue = self.engine.handle_timeout(self.now, &mut self.vm);
        assert!(!queue.is_empty(), "a refresh is due");
        while let Some((callout, pending)) = queue.pop() {
            let (status, _, body) =
                self.idp
                    .serve(callout.method, &callout.path, None, &callout.body);
            let step = self.engine.handle_root_response(
                pending,
                CalloutResponse::Received {
                    status,
                    body: &body,
                },
                self.now,
                &mut self.vm,
            );
            if let Some(log) = &step.log {
                assert!(!log.warn, "refresh failed: {}", log.text);
            }
            queue.extend(step.next);
        }
        assert!(self.vm.is_ready());
    }

    /// Replaces the configuration (a new engine and a new VM state), keys loaded again.
    pub fn reconfigure(&mut self, cfg: &Value) {
        self.reconfigure_without_keys(cfg);
        self.load_provider();
    }

    /// Replaces the configuration; nothing is loaded yet (sessions open without the IdP's keys).
    pub fn reconfigure_without_keys(&mut self, cfg: &Value) {
        self.engine = Engine::from_json(cfg.to_string().as_bytes()).expect("config");
        self.vm = self.engine.new_vm();
    }

    pub fn advance(&mut self, secs: u64) {
        self.now = self.now.plus(secs);
        self.idp.now = self.now.0;
    }

    /// Sends a request; request-time callouts are served by the fake IdP until a final decision.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        browser: Option<&Browser>,
    ) -> Decision {
        let mut h: Vec<(String, String)> = vec![
            (":method".into(), method.into()),
            (":path".into(), path.into()),
            (":authority".into(), "app.test".into()),
            (":scheme".into(), "https".into()),
        ];
        h.extend(headers.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        if let Some(c) = browser.and_then(Browser::cookie_header) {
            h.push(("cookie".into(), c));
        }
        let raw = portcullis_core::request::raw_headers(&h);
        let req = Request::from_headers(&raw);
        let d = self
            .engine
            .handle_request(&req, self.now, &mut self.rng, &mut self.vm);
        let d = self.claim(d);
        let d = self.drive(d);
        assert_no_duplicate_headers(&d);
        d
    }

    /// Serves request-time callouts with the fake IdP (or the override) until a final decision.
    pub fn drive(&mut self, mut d: Decision) -> Decision {
        while let Decision::Callout { callout, pending } = d {
            self.callouts.push(callout.path.clone());
            let auth = callout
                .headers
                .iter()
                .find(|(n, _)| n == "authorization")
                .map(|(_, v)| v.clone());
            let (status, _, body) = match &self.callout_override {
                Some((s, b)) => (*s, vec![], b.clone()),
                None => self.idp.serve(
                    callout.method,
                    &callout.path,
                    auth.as_deref(),
                    &callout.body,
                ),
            };
            let reply = if self.callout_fails {
                CalloutResponse::Failed
            } else {
                CalloutResponse::Received {
                    status,
                    body: &body,
                }
            };
            d = self.engine.handle_callout_response(
                pending,
                reply,
                self.now,
                &mut self.rng,
                &mut self.vm,
            );
            self.flush_writes();
        }
        d
    }

    /// A request with a body (handed over when the engine asks for it, as a host does); callouts
    /// are served as in [`Harness::send`].
    pub fn send_with_body(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Decision {
        let mut h: Vec<(String, String)> = vec![
            (":method".into(), method.into()),
            (":path".into(), path.into()),
            (":authority".into(), "app.test".into()),
            (":scheme".into(), "https".into()),
        ];
        h.extend(headers.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        let raw = portcullis_core::request::raw_headers(&h);
        let mut req = Request::from_headers(&raw);
        let d = self
            .engine
            .handle_request(&req, self.now, &mut self.rng, &mut self.vm);
        let Decision::ReadBody { limit } = d else {
            return d;
        };
        req.body = Some(&body[..body.len().min(limit + 1)]);
        let d = self
            .engine
            .handle_request(&req, self.now, &mut self.rng, &mut self.vm);
        self.drive(d)
    }

    /// Carries out a `Decision::Claim` against the shared store as a host does (read, step, write
    /// with compare-and-swap); other decisions pass through.
    pub fn claim(&mut self, d: Decision) -> Decision {
        let Decision::Claim { key, mut pending } = d else {
            return d;
        };
        let (current, cas) = self
            .store
            .get(&key)
            .map(|(v, c)| (Some(v.clone()), *c))
            .unwrap_or((None, 0));
        let written = match self
            .engine
            .claim_step(&mut pending, current.as_deref(), self.now)
        {
            Some(bytes) => {
                let stored = self.store.get(&key).map_or(0, |(_, c)| *c);
                if stored == cas {
                    self.store.insert(key, (bytes, cas + 1));
                    true
                } else {
                    false
                }
            }
            None => false,
        };
        self.engine
            .handle_claim(pending, written, self.now, &mut self.vm)
    }

    /// Writes what the VM asked to publish to the shared store.
    pub fn flush_writes(&mut self) {
        for (k, v) in self.vm.take_shared_writes() {
            let e = self.store.entry(k).or_insert((Vec::new(), 0));
            e.0 = v;
            e.1 += 1;
        }
    }

    /// The host's timer: reads every watched slot; returns the wait keys that may resume.
    pub fn tick_watched(&mut self) -> Vec<u64> {
        for slot in self.vm.watched_slots() {
            let value = self.store.get(&slot).map(|(v, _)| v.clone());
            self.engine
                .handle_watched(&slot, value.as_deref(), self.now, &mut self.vm);
        }
        self.vm.take_woken()
    }

    /// A top-level browser navigation.
    pub fn navigate(&mut self, browser: &mut Browser, path: &str) -> Decision {
        let d = self.send("GET", path, &[("accept", "text/html")], Some(browser));
        if let Decision::Respond { headers, .. } = &d {
            browser.apply(headers);
        }
        d
    }

    /// Starts a login by navigating to `path`; returns the IdP authorization URL.
    pub fn start(&mut self, browser: &mut Browser, path: &str) -> String {
        match self.navigate(browser, path) {
            Decision::Respond {
                status: 302,
                headers,
                ..
            } => get_header(&headers, "location").unwrap().to_string(),
            other => panic!("expected a redirect to the IdP, got {other:?}"),
        }
    }

    /// The IdP logs `user` in and sends the browser back; returns the callback's path+query.
    pub fn idp_login(&mut self, authorize_url: &str, user: &str) -> String {
        let back = self
            .idp
            .authorize(authorize_url, user)
            .expect("IdP accepted the request");
        back.strip_prefix("https://app.test")
            .expect("callback on our host")
            .to_string()
    }

    /// Full login; returns the final decision of the callback.
    pub fn login(&mut self, browser: &mut Browser, path: &str, user: &str) -> Decision {
        let auth = self.start(browser, path);
        let cb = self.idp_login(&auth, user);
        self.navigate(browser, &cb)
    }
}

/// Logs alice in with an ID token carrying `n` groups (`group-number-<i>`): a session larger than one
/// cookie from a few hundred. Returns her browser and the callback's decision.
pub fn login_with_groups(h: &mut Harness, n: usize) -> (Browser, Decision) {
    let mut b = Browser::default();
    let auth = h.start(&mut b, "/");
    let cb = h.idp_login(&auth, "alice");
    let nonce = h.idp.last_nonce.clone().unwrap();
    let mut c = h.idp.claims("alice", &nonce);
    c.insert(
        "groups".into(),
        json!((0..n)
            .map(|i| format!("group-number-{i}"))
            .collect::<Vec<_>>()),
    );
    h.idp.id_token_override = Some(h.idp.sign(&c));
    let d = h.navigate(&mut b, &cb);
    (b, d)
}

/// Local responses never repeat a header other than `set-cookie` (a repeated `cache-control` or
/// `location` is at best ambiguous to clients and caches).
pub fn assert_no_duplicate_headers(d: &Decision) {
    if let Decision::Respond { headers, .. } = d {
        for (i, (n, _)) in headers.iter().enumerate() {
            if n.eq_ignore_ascii_case("set-cookie") {
                continue;
            }
            assert!(
                !headers[i + 1..]
                    .iter()
                    .any(|(m, _)| m.eq_ignore_ascii_case(n)),
                "header {n} repeated in {headers:?}"
            );
        }
    }
}

pub fn status(d: &Decision) -> u16 {
    match d {
        Decision::Respond { status, .. } => *status,
        Decision::Forward { .. } => 0,
        Decision::Callout { .. } => 1,
        Decision::ReadBody { .. } => 2,
        Decision::Wait { .. } => 3,
        Decision::Claim { .. } => 4,
    }
}

pub fn location(d: &Decision) -> String {
    match d {
        Decision::Respond { headers, .. } => get_header(headers, "location")
            .unwrap_or_default()
            .to_string(),
        _ => String::new(),
    }
}

pub fn reason_code(d: &Decision) -> &'static str {
    d.reason().map_or("callout", |r| r.code())
}

pub fn body_json(d: &Decision) -> Value {
    match d {
        Decision::Respond { body, .. } => serde_json::from_slice(body).unwrap_or(Value::Null),
        _ => Value::Null,
    }
}

/// Request headers after applying a Forward's edits to `sent`.
pub fn upstream_headers(d: &Decision, sent: &[(String, String)]) -> Vec<(String, String)> {
    let Decision::Forward { request, .. } = d else {
        panic!("expected Forward, got {d:?}")
    };
    request.apply(sent)
}

pub fn query_of(url: &str) -> BTreeMap<String, String> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.to_string(),
                portcullis_core::request::form_decode(v).unwrap(),
            )
        })
        .collect()
}

/// Runs a login where the fake IdP's token endpoint returns the ID token `craft` builds from good
/// claims for `user` (with the right nonce).
pub fn login_with_token(
    h: &mut Harness,
    b: &mut Browser,
    path: &str,
    user: &str,
    craft: impl FnOnce(&Harness, serde_json::Map<String, Value>) -> String,
) -> Decision {
    let auth = h.start(b, path);
    let cb = h.idp_login(&auth, user);
    let nonce = h.idp.last_nonce.clone().unwrap();
    let claims = h.idp.claims(user, &nonce);
    let token = craft(h, claims);
    h.idp.id_token_override = Some(token);
    let d = h.navigate(b, &cb);
    h.idp.id_token_override = None;
    d
}

/// The identity headers a Forward sets upstream (empty for anything else).
pub fn identity_headers(d: &Decision) -> Vec<(String, String)> {
    match d {
        Decision::Forward { request, .. } => request
            .sets()
            .map(|(n, v)| (n.to_string(), String::from_utf8_lossy(v).into_owned()))
            .collect(),
        _ => Vec::new(),
    }
}
