//! The operations bench/micro times, in one place: [`Ops::new`] sets everything up once, each operation
//! is one method, and [`OPS`] lists them by group and name. The criterion benches (`benches/micro.rs`,
//! native) and the wasm timing loop (`src/main.rs`, wasm32-wasip1 under node's V8 as Envoy runs
//! filters) both iterate [`OPS`], so both measure the same code.
//!
//! Everything goes through portcullis-core's public API, as the filter calls it: the randomness is
//! `OsRng` (WASI `random_get` in wasm, as in the filter), the clock a fixed [`NOW`].
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use portcullis_core::decision::{Header, Outcome};
use portcullis_core::identity::Identity;
use portcullis_core::oidc::jwks::{parse_jwks, Jwks};
use portcullis_core::oidc::pkce::{challenge_s256, random_token};
use portcullis_core::oidc::verify::{verify_access_token, AccessExpectations};
use portcullis_core::oidc::Alg;
use portcullis_core::policy::headers::{spoofed_headers, strip_cookies};
use portcullis_core::request::{parse_header_map, serialize_header_map, RawHeader};
use portcullis_core::session::cache::CachedSession;
use portcullis_core::session::keyring::Purpose;
use portcullis_core::session::revocations::{self, Kind, Revocations};
use portcullis_core::session::Session;
use portcullis_core::testkit::{test_key, RSA_1_PEM};
use portcullis_core::{Decision, Engine, Request, SessionCache, UnixTime, VmState};
use rand_core::OsRng;
use serde_json::{json, Map, Value};

/// The bearer tokens' issuer.
pub const ISS: &str = "https://idp.bench";
/// The bearer tokens' audience.
pub const AUD: &str = "api://bench";
/// The time every operation runs at (tokens and sessions are minted for it).
pub const NOW: u64 = 1_700_000_000;

/// One timed operation: `run` calls it once (its result through `black_box`).
#[derive(Clone, Copy)]
pub struct Op {
    /// Criterion's group (`target/criterion/<group>/<name>/`).
    pub group: &'static str,
    /// Criterion's benchmark id within the group.
    pub name: &'static str,
    /// One call.
    pub run: fn(&mut Ops),
}

impl Op {
    /// `<group>_<name>`: the wasm harness's JSON key is this with `_us` appended.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}_{}", self.group, self.name)
    }
}

/// One [`Op`]: `op!(group, name, |o| call)` times `call` (its result kept from the optimiser).
macro_rules! op {
    ($group:literal, $name:literal, |$o:ident| $call:expr) => {
        Op {
            group: $group,
            name: $name,
            run: |$o| {
                black_box($call);
            },
        }
    };
}

/// Every operation, in the order both harnesses run them.
pub const OPS: &[Op] = &[
    op!("session", "seal", |o| o.session_seal()),
    op!("session", "open", |o| o.session_open()),
    op!("session", "cache_hit", |o| o.session_cache_hit()),
    op!("pkce", "S256", |o| o.pkce()),
    op!("jwks", "parse_and_prepare_3_keys", |o| o.jwks_parse()),
    op!("verify", "RS256", |o| o.verify(Alg::RS256)),
    op!("verify", "PS256", |o| o.verify(Alg::PS256)),
    op!("verify", "ES256", |o| o.verify(Alg::ES256)),
    op!("verify", "EdDSA", |o| o.verify(Alg::EdDSA)),
    op!("jwt_simple", "RS256", |o| o.jwt_simple_rs256()),
    op!("policy", "rule_match", |o| o.rule_match()),
    op!("policy", "header_strip", |o| o.header_strip()),
    op!("request", "session", |o| o.request(Page::Session)),
    op!("request", "public", |o| o.request(Page::Public)),
];

/// `session` as the engine seals a session cookie: JSON, AES-256-GCM-SIV under the first key, bound to
/// the cookie name and the issuer and client id.
fn seal_session(engine: &Engine, session: &Session) -> String {
    let cfg = engine.config();
    let json = serde_json::to_vec(session).unwrap();
    cfg.keys
        .seal(
            Purpose::Session,
            &cfg.cookie_name,
            &cfg.binding,
            &json,
            &mut OsRng,
        )
        .unwrap()
}

/// Which browser request [`Ops::request`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// `/dashboard/d/abc?orgId=1` with a valid (cached) session cookie.
    Session,
    /// `/public/app.css`, the same headers.
    Public,
}

/// Everything the operations need, built once.
pub struct Ops {
    engine: Engine,
    vm: VmState,
    session: Session,
    /// Our sealed session cookie value (as the engine seals it: its key ring, name and binding).
    sealed: String,
    cache: SessionCache,
    revocations: Revocations,
    jwks_body: String,
    jwks: Jwks,
    tokens: Vec<(Alg, String)>,
    rsa_n: Vec<u8>,
    rsa_e: Vec<u8>,
    /// The browser request's header map as the host serializes it (proxy-wasm's format).
    session_buf: Vec<u8>,
    public_buf: Vec<u8>,
    /// The same headers, parsed (kept for the whole process).
    headers: Vec<RawHeader<'static>>,
}

/// The engine's configuration: a key ring, public paths and several rules, as a deployment has.
fn config() -> Value {
    json!({
        "issuer": "https://idp.test", "idp_cluster": "idp", "client_id": "app", "client_secret": "app-secret",
        "cookie": {"keys": [{"id": "k1", "secret": "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}]},
        "public_paths": ["/public/*", "/favicon.ico"],
        "routes": {"rules": [
            {"name": "healthz", "path": "/healthz", "action": "public"},
            {"name": "assets", "prefix": "/static/", "action": "public"},
            {"name": "metrics", "path": "/metrics", "action": "deny"},
            {"name": "admin", "prefix": "/admin/", "action": "authenticate", "require": {"groups": ["admins"]}},
            {"name": "internal", "hosts": ["internal.app.test"], "prefix": "/", "action": "deny"},
            {"name": "writes", "prefix": "/api/", "methods": ["POST", "PUT", "DELETE"], "action": "authenticate",
             "api": true, "require": {"groups": ["editors"]}},
            {"name": "versions", "glob": "/api/dashboards/*/versions", "action": "authenticate", "api": true},
            {"name": "dashboards", "prefix": "/dashboard/", "action": "authenticate",
             "require": {"email_domains": ["example.com"]}},
        ]},
    })
}

/// A session as a login through an IdP like the testkit's makes it (about 200 bytes of JSON).
fn session() -> Session {
    Session {
        user: "alice".into(),
        sub: "alice".into(),
        email: Some("alice@example.com".into()),
        email_verified: Some(true),
        name: Some("User alice".into()),
        preferred_username: Some("alice".into()),
        groups: vec!["staff".into(), "team-alice".into()],
        issued_at: NOW - 60,
        expires_at: NOW + 28_800,
        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        sid: Some("sid-4f2a9c1e".into()),
        ..Session::default()
    }
}

/// The identity headers a cached session forwards (what the engine computes once per session).
fn upstream(id: &Identity) -> Arc<[Header]> {
    let email = id.email.clone().unwrap_or_default();
    let groups = id.groups.join(",");
    let user = id.user.clone();
    let pu = id.preferred_username.clone().unwrap_or_default();
    Arc::from(vec![
        ("x-forwarded-user".into(), user.clone()),
        ("x-forwarded-email".into(), email.clone()),
        ("x-forwarded-groups".into(), groups),
        ("x-forwarded-preferred-username".into(), pu),
        ("x-auth-request-user".into(), user),
        ("x-auth-request-email".into(), email),
    ])
}

/// A browser's navigation: about fifteen headers, ~1.5 KB of cookies of which ours is one.
fn browser_headers(path: &str, session: &str) -> Vec<(String, String)> {
    let cookies = format!(
        "_ga=GA1.2.{0}.{0}; _gid=GA1.2.99.88; theme=dark; _portcullis={session}; csrftoken={1}; grafana_session={1}{1}",
        1_700_000_000u64,
        "a1b2c3d4e5f6".repeat(20)
    );
    [
        (":method", "GET"),
        (":path", path),
        (":authority", "app.test"),
        (":scheme", "https"),
        ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("cookie", &cookies),
        ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"),
        ("accept-language", "en-US,en;q=0.9"),
        ("accept-encoding", "gzip, deflate, br"),
        ("sec-fetch-mode", "navigate"),
        ("sec-fetch-dest", "document"),
        ("sec-fetch-site", "same-origin"),
        ("sec-ch-ua", "\"Chromium\";v=\"131\""),
        ("upgrade-insecure-requests", "1"),
        ("referer", "https://app.test/"),
        ("x-forwarded-proto", "https"),
    ]
    .iter()
    .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
    .collect()
}

fn serialized(h: &[(String, String)]) -> Vec<u8> {
    let raw: Vec<RawHeader<'_>> = h
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect();
    serialize_header_map(&raw)
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// Access-token claims issued at [`NOW`], valid for an hour.
fn claims() -> JWTClaims<Map<String, Value>> {
    let mut extra = Map::new();
    extra.insert("scope".into(), json!("read write"));
    extra.insert("client_id".into(), json!("svc"));
    let mut c = Claims::with_custom_claims(extra, Duration::from_secs(3600))
        .with_issuer(ISS)
        .with_subject("svc")
        .with_audience(AUD);
    c.issued_at = Some(Duration::from_secs(NOW));
    c.invalid_before = Some(Duration::from_secs(NOW));
    c.expires_at = Some(Duration::from_secs(NOW + 3600));
    c
}

impl Ops {
    /// Builds everything; the JWKS is parsed last, so the next verification is the first after it
    /// (the harnesses time that one as `first_RS256`).
    #[must_use]
    pub fn new() -> Self {
        let engine = Engine::from_json(config().to_string().as_bytes()).unwrap();
        let cfg = engine.config();
        let session = session();
        let seal = |s: &Session| seal_session(&engine, s);
        let sealed = seal(&session);
        // A full cache (the default 1024 sessions), ours among them.
        let mut cache = SessionCache::new(cfg.session_cache_size);
        for i in 0..cfg.session_cache_size {
            let mut s = session.clone();
            s.sub = format!("user-{i}");
            s.user.clone_from(&s.sub);
            let cookie = if i == cfg.session_cache_size / 2 {
                s = session.clone();
                sealed.clone()
            } else {
                seal(&s)
            };
            let identity = Identity::of_session(&s);
            let mut keys = vec![revocations::key(Kind::Sub, &s.sub)];
            if let Some(sid) = &s.sid {
                keys.push(revocations::key(Kind::Sid, sid));
            }
            cache.insert(
                &cookie,
                Arc::new(CachedSession {
                    upstream: upstream(&identity),
                    identity,
                    issued_at: s.issued_at,
                    expires_at: s.expires_at,
                    revocation_keys: keys,
                    refreshable: None,
                }),
            );
        }
        // Some other user's session ended by back-channel logout, so the revocation check looks.
        let mut revocations = Revocations::default();
        revocations.add(
            revocations::key(Kind::Sub, "mallory"),
            NOW - 600,
            NOW + 28_800,
        );

        let session_headers = browser_headers("/dashboard/d/abc?orgId=1", &sealed);
        let public_headers = browser_headers("/public/app.css", &sealed);
        let session_buf = serialized(&session_headers);
        let public_buf = serialized(&public_headers);
        let headers: &'static [(String, String)] = Box::leak(session_headers.into_boxed_slice());
        let headers = headers
            .iter()
            .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
            .collect();

        let rsa = test_key(RSA_1_PEM, "rsa");
        let ps = PS256KeyPair::from_pem(RSA_1_PEM)
            .unwrap()
            .with_key_id("rsa");
        let es = ES256KeyPair::generate().with_key_id("es");
        let ed = Ed25519KeyPair::generate().with_key_id("ed");
        let rc = rsa.public_key().to_components();
        let ep = es.public_key().public_key().to_bytes_uncompressed();
        let xp = ed.public_key().to_bytes();
        let tokens = vec![
            (Alg::RS256, rsa.sign(claims()).unwrap()),
            (Alg::PS256, ps.sign(claims()).unwrap()),
            (Alg::ES256, es.sign(claims()).unwrap()),
            (Alg::EdDSA, ed.sign(claims()).unwrap()),
        ];
        let jwks_body = json!({"keys": [
            {"kty": "RSA", "kid": "rsa", "n": b64(&rc.n), "e": b64(&rc.e)},
            {"kty": "EC", "crv": "P-256", "kid": "es", "x": b64(&ep[1..33]), "y": b64(&ep[33..65])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&xp)},
        ]})
        .to_string();

        let vm = engine.new_vm();
        let jwks = parse_jwks(jwks_body.as_bytes()).unwrap();
        Ops {
            engine,
            vm,
            session,
            sealed,
            cache,
            revocations,
            jwks_body,
            jwks,
            tokens,
            rsa_n: rc.n,
            rsa_e: rc.e,
            session_buf,
            public_buf,
            headers,
        }
    }

    /// Checks that every operation does what it is meant to (valid tokens verify, the cached session
    /// is found, the session request is forwarded as authenticated, ...). Panics otherwise. Run it
    /// after the cold verification, before timing.
    pub fn check(&mut self) {
        let sealed = self.session_seal();
        let cfg = self.engine.config();
        let opened: Session = serde_json::from_slice(
            &cfg.keys
                .open(Purpose::Session, &cfg.cookie_name, &cfg.binding, &sealed)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(opened, self.session);
        assert_eq!(self.session_open(), self.session);
        assert!(self.session_cache_hit().is_some(), "cache miss");
        let (verifier, challenge) = self.pkce();
        assert_eq!((verifier.len(), challenge.len()), (43, 43));
        assert_eq!(self.jwks_parse().keys.len(), 3);
        for (alg, _) in self.tokens.clone() {
            assert!(self.verify(alg), "{alg:?} does not verify");
        }
        assert!(self.jwt_simple_rs256());
        assert_eq!(self.rule_match(), "dashboards");
        let (removed, cookie) = self.header_strip();
        assert_eq!(removed, 0);
        let cookie = cookie.expect("our cookie stripped");
        assert!(!cookie.windows(12).any(|w| w == b"_portcullis="));
        assert_eq!(
            cookie.len() + "; _portcullis=".len() + self.sealed.len(),
            self.cookie_len()
        );
        // The first request opens the cookie and caches it; the timed ones are cache hits.
        let first = self.request(Page::Session);
        let public = self.request(Page::Public);
        assert_eq!(
            public, 16,
            "public request: every header kept (ours out of the cookie)"
        );
        assert!(first > public, "session request: identity headers added");
        assert_eq!(self.request(Page::Session), first);
    }

    fn cookie_len(&self) -> usize {
        self.headers
            .iter()
            .find(|(n, _)| *n == b"cookie")
            .map_or(0, |(_, v)| v.len())
    }

    /// Seals the session as the engine does at login and refresh: JSON, then AES-256-GCM-SIV under
    /// the first key, bound to the cookie name and the issuer and client id.
    pub fn session_seal(&self) -> String {
        seal_session(&self.engine, &self.session)
    }

    /// Opens the sealed session as the engine does on a cache miss: AEAD open, then the JSON parse.
    pub fn session_open(&self) -> Session {
        let cfg = self.engine.config();
        let json = cfg
            .keys
            .open(
                Purpose::Session,
                &cfg.cookie_name,
                &cfg.binding,
                &self.sealed,
            )
            .unwrap();
        serde_json::from_slice(&json).unwrap()
    }

    /// A session-cache hit as the engine checks one: the lookup by the exact cookie value in a full
    /// cache (1024 sessions), the validity window, and the back-channel revocations.
    pub fn session_cache_hit(&self) -> Option<Arc<CachedSession>> {
        let hit = self.cache.get(&self.sealed)?;
        (hit.is_valid_at(UnixTime(NOW), 60)
            && !self
                .revocations
                .revoked(&hit.revocation_keys, hit.issued_at))
        .then_some(hit)
    }

    /// PKCE at login start: a 32-byte random verifier (43 characters) and its S256 challenge.
    pub fn pkce(&self) -> (String, String) {
        let verifier = random_token(&mut OsRng, 32).unwrap();
        let challenge = challenge_s256(&verifier);
        (verifier, challenge)
    }

    /// A JWKS of three keys (RSA 2048, P-256, Ed25519) parsed and its RSA key prepared.
    pub fn jwks_parse(&self) -> Jwks {
        parse_jwks(self.jwks_body.as_bytes()).unwrap()
    }

    /// Bearer-token verification as on a token-cache miss: signature, then `iss`, `aud`, times.
    pub fn verify(&self, alg: Alg) -> bool {
        let token = self
            .tokens
            .iter()
            .find(|(a, _)| *a == alg)
            .map(|(_, t)| t.as_str())
            .unwrap_or_default();
        let audiences = [AUD.to_string()];
        let algs = [alg];
        let expect = AccessExpectations {
            issuer: ISS,
            audiences: &audiences,
            allowed_algs: &algs,
            now: UnixTime(NOW),
            leeway: 60,
        };
        verify_access_token(token, &self.jwks, &expect).is_ok()
    }

    /// jwt-simple's own RS256 (the key rebuilt from `n` and `e` per token, as the core did before its
    /// verify-only RSA), for comparison.
    pub fn jwt_simple_rs256(&self) -> bool {
        let k = RS256PublicKey::from_components(&self.rsa_n, &self.rsa_e).unwrap();
        let opts = VerificationOptions {
            artificial_time: Some(Duration::from_secs(NOW)),
            ..VerificationOptions::default()
        };
        k.verify_token::<Map<String, Value>>(&self.tokens[0].1, Some(opts))
            .is_ok()
    }

    /// The policy's route for the session request's path: ten rules (two public paths, eight
    /// configured: exact, prefix, glob, host and method rules), the match the last rule.
    pub fn rule_match(&self) -> &str {
        let route = self
            .engine
            .config()
            .policy
            .route_parts("/dashboard/d/abc", "app.test", "GET")
            .unwrap();
        &route.name
    }

    /// The upstream header edits' two scans of the browser request (what `upstream_edits` computes
    /// through these public functions): the identity-header spoof scan over every header name, and the
    /// `Cookie` header rebuilt without ours. Its third scan (a session token in any header) is
    /// crate-private; `request_*` includes it. Returns the number of spoofed headers and the new cookie.
    pub fn header_strip(&self) -> (usize, Option<Vec<u8>>) {
        let cfg = self.engine.config();
        let removed = spoofed_headers(
            &self.headers,
            &cfg.owned_headers,
            cfg.pass_authorization_header,
        );
        let cookie = strip_cookies(&self.headers, |n| cfg.is_our_cookie(n));
        (removed.len(), cookie)
    }

    /// The core's whole part of one browser request, as the filter runs it: the host's header map
    /// parsed, the decision (`Engine::handle_request`: route, cookie, session-cache hit, requirements,
    /// upstream edits), the edits applied to the headers, and the request finished (metrics, log
    /// line). Returns the number of headers sent upstream.
    pub fn request(&mut self, page: Page) -> usize {
        let buf = match page {
            Page::Session => &self.session_buf,
            Page::Public => &self.public_buf,
        };
        let raw = parse_header_map(buf).unwrap();
        let req = Request::from_headers(&raw);
        self.vm.request_started();
        let d = self
            .engine
            .handle_request(&req, UnixTime(NOW), &mut OsRng, &mut self.vm);
        let n = match &d {
            Decision::Forward { request, .. } => request.apply_raw(&raw).len(),
            _ => panic!("{page:?}: {d:?}"),
        };
        let outcome = Outcome::begin(&req, &d);
        black_box(self.engine.finish_request(&outcome, 200, 900, &mut self.vm));
        n
    }
}

impl Default for Ops {
    fn default() -> Self {
        Self::new()
    }
}
