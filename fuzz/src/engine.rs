//! The fixed world the `engine_sequence` target starts every run from, built once per process by
//! driving the real engine against the in-process fake IdP (as `core/tests/common/mod.rs` does): a
//! loaded provider, two real logins (alice, bob), three pending login attempts with their login
//! cookies, and for each attempt a table of token-endpoint replies signed by the fake IdP (good, from
//! the rotated key, wrong nonce, expired, `alg: none`, HS256 with the public key, ...).
//!
//! The fake IdP publishes its RSA key `rsa-1` and, here, also an Ed25519 key `ed-1`: ID tokens minted
//! while fuzzing are signed with `ed-1` (microseconds) rather than RS256 (milliseconds under coverage
//! instrumentation); RS256 tokens signed in setup keep the RSA path covered.

use std::sync::OnceLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use portcullis_core::request::{query_param, raw_headers, Request};
use portcullis_core::session::keyring::Purpose;
use portcullis_core::session::{Secret, Session};
use portcullis_core::testkit::{
    hs256_with_public_key, raw_jwt, sign_rs256, test_key, FakeIdp, RSA_2_PEM,
};
use portcullis_core::{CalloutResponse, Config, Decision, Engine, UnixTime, VmState};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Map, Value};

use crate::{base_config, APP_HOST, CLIENT_SECRET, ISSUER};

/// The world's clock at setup.
pub const T0: u64 = 1_700_000_000;
/// Configured leeway (default).
pub const LEEWAY: u64 = 60;
/// Configured session lifetime.
pub const SESSION_TTL: u64 = 3600;

/// The configuration, parsed once.
pub fn config() -> &'static Config {
    static C: OnceLock<Config> = OnceLock::new();
    C.get_or_init(|| Config::from_json(base_config().to_string().as_bytes()).expect("config"))
}

/// A sealed session value the engine must accept while `issued <= now + leeway && now < expires`.
#[derive(Debug, Clone)]
pub struct KnownSession {
    /// The `_pc` cookie value.
    pub value: String,
    /// `X-Forwarded-User` it must produce (control characters dropped).
    pub user: String,
    /// `issued_at`.
    pub issued: u64,
    /// `expires_at`.
    pub expires: u64,
}

impl KnownSession {
    /// Whether the engine must treat it as a session at `now`.
    #[must_use]
    pub fn valid_at(&self, now: u64) -> bool {
        now < self.expires && self.issued <= now + LEEWAY
    }
}

/// What a token-endpoint reply of an attempt holds.
pub const TOKEN_KINDS: &[&str] = &[
    "good",
    "rotated_key",
    "wrong_nonce",
    "expired",
    "wrong_aud",
    "alg_none",
    "hs256_public_key",
    "token_type_mac",
    "email_unverified",
    "huge_groups",
    "no_id_token",
    "hostile_claims",
    "good_eddsa",
];

/// The kind an automatic reply uses for a setup attempt's code (`good_eddsa`, cheap to verify).
pub const AUTO_KIND: usize = 12;

/// Kinds whose ID token is genuinely signed by the IdP for that attempt (a login may complete).
/// `huge_groups` (400 groups) is one since sessions may span several cookies.
pub const GOOD_KINDS: &[usize] = &[0, 1, 8, 9, 11, 12];

/// A login attempt started in setup: its login cookie, state, nonce, and token replies by kind.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// Login cookie name and value.
    pub cookie: (String, String),
    /// `state`.
    pub state: String,
    /// `nonce`.
    pub nonce: String,
    /// Token endpoint bodies, indexed like [`TOKEN_KINDS`].
    pub tokens: Vec<Vec<u8>>,
}

/// Everything a run starts from.
pub struct World {
    /// The engine.
    pub engine: Engine,
    /// A VM state with the fake IdP's provider loaded (each run starts from a clone).
    pub vm: VmState,
    /// Sessions that are valid at some time (real logins, plus hand-sealed edge cases).
    pub sessions: Vec<KnownSession>,
    /// Sealed values that must never authenticate (wrong purpose, name, binding, or expired).
    pub bogus: Vec<String>,
    /// ID-token hint cookie values of the real logins.
    pub hints: Vec<String>,
    /// Pending login attempts.
    pub attempts: Vec<Attempt>,
    /// The fake IdP's discovery document.
    pub discovery: Vec<u8>,
    /// Its JWKS (`rsa-1`).
    pub jwks: Vec<u8>,
    /// Its JWKS after rotation (`rsa-1`, `rsa-2`).
    pub jwks_rotated: Vec<u8>,
}

/// The world, built once.
pub fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(build)
}

/// The fake IdP's Ed25519 signing key (`ed-1`), fixed.
pub fn ed_key() -> &'static ed25519_compact::KeyPair {
    static K: OnceLock<ed25519_compact::KeyPair> = OnceLock::new();
    K.get_or_init(|| ed25519_compact::KeyPair::from_seed(ed25519_compact::Seed::new([7; 32])))
}

/// Claims signed with `ed-1` (EdDSA, with `kid`).
#[must_use]
pub fn sign_ed(claims: &Map<String, Value>) -> String {
    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "ed-1"}).to_string();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
    );
    let sig = ed_key().sk.sign(input.as_bytes(), None);
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(*sig))
}

/// A JWKS document of the fake IdP with `ed-1` added.
#[must_use]
pub fn with_ed_key(jwks: &str) -> Vec<u8> {
    let mut set: Value = serde_json::from_str(jwks).expect("jwks");
    if let Some(keys) = set["keys"].as_array_mut() {
        keys.push(
            json!({"kty": "OKP", "crv": "Ed25519", "kid": "ed-1", "use": "sig",
                         "x": URL_SAFE_NO_PAD.encode(*ed_key().pk)}),
        );
    }
    set.to_string().into_bytes()
}

/// A fake IdP for `app` with the fuzz client secret.
#[must_use]
pub fn fake_idp(now: u64) -> FakeIdp {
    let mut idp = FakeIdp::new(ISSUER);
    idp.client_secret = CLIENT_SECRET.to_string();
    idp.now = now;
    idp
}

/// Serves request-time callouts with the fake IdP until a final decision.
pub fn drive(
    engine: &Engine,
    idp: &mut FakeIdp,
    headers: &[(String, String)],
    now: u64,
    rng: &mut ChaCha20Rng,
    vm: &mut VmState,
) -> Decision {
    let raw = raw_headers(headers);
    let req = Request::from_headers(&raw);
    let mut d = engine.handle_request(&req, UnixTime(now), rng, vm);
    if let Decision::ReadBody { .. } = d {
        let mut with_body = req;
        with_body.body = Some(&[]);
        d = engine.handle_request(&with_body, UnixTime(now), rng, vm);
    }
    idp.drive(engine, d, UnixTime(now), rng, vm)
}

/// A browser navigation's headers.
#[must_use]
pub fn nav_headers(path: &str, cookies: &[(String, String)]) -> Vec<(String, String)> {
    let mut h = vec![
        (":method".into(), "GET".into()),
        (":path".into(), path.into()),
        (":authority".into(), APP_HOST.into()),
        (":scheme".into(), "https".into()),
        ("accept".into(), "text/html".into()),
    ];
    if !cookies.is_empty() {
        let c: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
        h.push(("cookie".into(), c.join("; ")));
    }
    h
}

/// Applies `set-cookie` headers to a jar (Max-Age=0 deletes), keeping creation order.
pub fn apply_set_cookies(jar: &mut Vec<(String, String)>, headers: &[(String, String)]) {
    for (n, v) in headers {
        if !n.eq_ignore_ascii_case("set-cookie") {
            continue;
        }
        let pair = v.split(';').next().unwrap_or("");
        let Some((name, value)) = pair.split_once('=') else {
            continue;
        };
        jar.retain(|(n, _)| n != name);
        if !v.contains("Max-Age=0") {
            jar.push((name.to_string(), value.to_string()));
        }
    }
}

fn respond_headers(d: &Decision) -> &[(String, String)] {
    match d {
        Decision::Respond { headers, .. } => headers,
        other => panic!("setup: expected a local response, got {other:?}"),
    }
}

fn location(d: &Decision) -> String {
    respond_headers(d)
        .iter()
        .find(|(n, _)| n == "location")
        .map(|(_, v)| v.clone())
        .expect("setup: a location")
}

fn token_body(id_token: &str, token_type: &str) -> Vec<u8> {
    json!({"access_token": "at-setup", "token_type": token_type, "expires_in": 300, "id_token": id_token})
        .to_string()
        .into_bytes()
}

fn build() -> World {
    let engine = Engine::from_json(base_config().to_string().as_bytes()).expect("config");
    let mut idp = fake_idp(T0);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut vm = engine.new_vm();
    vm.set_session_cache_capacity(16);

    // The provider, through the root timer as a host's root context does.
    let mut queue = engine.handle_timeout(UnixTime(T0), &mut vm);
    while let Some((callout, pending)) = queue.pop() {
        let (status, _, mut body) = idp.serve(callout.method, &callout.path, None, &callout.body);
        if callout.path.ends_with("/jwks") {
            body = with_ed_key(&String::from_utf8_lossy(&body));
        }
        let step = engine.handle_root_response(
            pending,
            CalloutResponse::Received {
                status,
                body: &body,
            },
            UnixTime(T0),
            &mut vm,
        );
        assert!(
            step.log.as_ref().is_none_or(|l| !l.warn),
            "setup: refresh failed: {:?}",
            step.log
        );
        queue.extend(step.next);
    }
    assert!(vm.is_ready(), "setup: provider loaded");

    // Two real logins.
    let mut sessions = Vec::new();
    let mut hints = Vec::new();
    for user in ["alice", "bob"] {
        let mut jar = Vec::new();
        let d = drive(
            &engine,
            &mut idp,
            &nav_headers("/", &jar),
            T0,
            &mut rng,
            &mut vm,
        );
        apply_set_cookies(&mut jar, respond_headers(&d));
        let back = idp
            .authorize(&location(&d), user)
            .expect("setup: authorize");
        let cb = back
            .strip_prefix("https://app.test")
            .expect("setup: callback on our host");
        let d = drive(
            &engine,
            &mut idp,
            &nav_headers(cb, &jar),
            T0,
            &mut rng,
            &mut vm,
        );
        assert_eq!(
            d.reason().map(|r| r.code()),
            Some("login_completed"),
            "setup: {d:?}"
        );
        apply_set_cookies(&mut jar, respond_headers(&d));
        let get = |n: &str| jar.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        sessions.push(KnownSession {
            value: get("_pc").expect("setup: session cookie"),
            user: user.to_string(),
            issued: T0,
            expires: T0 + SESSION_TTL,
        });
        hints.push(get("_pc_hint").expect("setup: hint cookie"));
    }

    // Pending attempts and their token replies.
    let rotated_key = test_key(RSA_2_PEM, "rsa-2");
    let mut attempts = Vec::new();
    for (i, user) in ["carol", "dave", "erin"].into_iter().enumerate() {
        let mut jar = Vec::new();
        let d = drive(
            &engine,
            &mut idp,
            &nav_headers(&format!("/app/{i}?x=1"), &jar),
            T0,
            &mut rng,
            &mut vm,
        );
        apply_set_cookies(&mut jar, respond_headers(&d));
        let loc = location(&d);
        let q = loc.split_once('?').map_or("", |(_, q)| q);
        let state = query_param(q, "state")
            .ok()
            .flatten()
            .expect("setup: state");
        let nonce = query_param(q, "nonce")
            .ok()
            .flatten()
            .expect("setup: nonce");
        let cookie = jar
            .into_iter()
            .find(|(n, _)| n.starts_with("_pc_login_"))
            .expect("setup: login cookie");
        let good = idp.claims(user, &nonce);
        let with = |patch: Value| -> Map<String, Value> {
            let mut c = good.clone();
            if let Value::Object(p) = patch {
                for (k, v) in p {
                    c.insert(k, v);
                }
            }
            c
        };
        let groups: Vec<Value> = (0..400)
            .map(|g| Value::from(format!("group-{g:05}")))
            .collect();
        let tokens = vec![
            token_body(&idp.sign(&good), "Bearer"),
            token_body(&sign_rs256(&rotated_key, &good), "Bearer"),
            token_body(
                &idp.sign(&with(json!({"nonce": "not-the-nonce"}))),
                "Bearer",
            ),
            token_body(
                &idp.sign(&with(json!({"exp": T0 - 1000, "iat": T0 - 2000}))),
                "Bearer",
            ),
            token_body(
                &idp.sign(&with(json!({"aud": "other", "azp": "other"}))),
                "Bearer",
            ),
            token_body(
                &raw_jwt(&json!({"alg": "none", "kid": "rsa-1"}), &good, b""),
                "Bearer",
            ),
            token_body(&hs256_with_public_key("rsa-1", &good), "Bearer"),
            token_body(&idp.sign(&good), "MAC"),
            token_body(&idp.sign(&with(json!({"email_verified": false}))), "Bearer"),
            token_body(&idp.sign(&with(json!({"groups": groups}))), "Bearer"),
            json!({"access_token": "at-setup", "token_type": "Bearer"})
                .to_string()
                .into_bytes(),
            token_body(
                &sign_ed(&with(json!({
                    "sub": "mallory\r\nx-forwarded-groups: admins",
                    "email": "m@example.com\r\nx-evil: 1",
                    "groups": ["ok", "a,b", "x\ny", "", 5],
                    "name": "N\u{0}ul",
                    "preferred_username": "\u{7f}pref",
                }))),
                "Bearer",
            ),
            token_body(&sign_ed(&good), "Bearer"),
        ];
        assert_eq!(tokens.len(), TOKEN_KINDS.len());
        attempts.push(Attempt {
            cookie,
            state,
            nonce,
            tokens,
        });
    }

    // Hand-sealed values: edge-case sessions that are valid at some time, and values that never are.
    let cfg = engine.config();
    let session = |user: &str, issued: u64, expires: u64| Session {
        user: user.to_string(),
        sub: user.to_string(),
        email: Some(format!("{user}@example.com")),
        email_verified: Some(true),
        name: None,
        preferred_username: None,
        groups: vec!["staff".into()],
        issued_at: issued,
        expires_at: expires,
        access_token: Some(Secret("at-never-forwarded".into())),
        ..Default::default()
    };
    let seal = |purpose, name: &str, bind: &str, s: &Session, rng: &mut ChaCha20Rng| {
        cfg.keys
            .seal(
                purpose,
                name,
                bind,
                &serde_json::to_vec(s).expect("json"),
                rng,
            )
            .expect("seal")
    };
    for (user, issued, expires) in [
        ("frank", T0 + 30, T0 + SESSION_TTL), // issued in the future, within the leeway
        ("grace", T0 + 1000, T0 + 2 * SESSION_TTL), // valid only from T0 + 940
        ("heidi\r\nx-forwarded-user: root", T0, T0 + 600),
        ("ivan", T0 + 100_000, T0 + 200_000), // valid only after a long clock jump
    ] {
        let value = seal(
            Purpose::Session,
            "_pc",
            &cfg.binding,
            &session(user, issued, expires),
            &mut rng,
        );
        let clean: String = user.chars().filter(|c| !c.is_control()).collect();
        sessions.push(KnownSession {
            value,
            user: clean,
            issued,
            expires,
        });
    }
    let eve = session("eve", T0, T0 + SESSION_TTL);
    let other_binding = format!("{ISSUER}\0other-client");
    let bogus = vec![
        seal(Purpose::Login, "_pc", &cfg.binding, &eve, &mut rng),
        seal(Purpose::IdTokenHint, "_pc", &cfg.binding, &eve, &mut rng),
        seal(Purpose::Session, "_pc_hint", &cfg.binding, &eve, &mut rng),
        seal(Purpose::Session, "_pc", &other_binding, &eve, &mut rng),
        seal(
            Purpose::Session,
            "_pc",
            &cfg.binding,
            &session("eve", T0 - 7200, T0 - 1),
            &mut rng,
        ),
        "k1.".to_string(),
        "k2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_string(),
    ];

    let discovery = idp.discovery().into_bytes();
    let jwks = with_ed_key(&idp.jwks());
    let mut rotated = fake_idp(T0);
    rotated.rotate();
    let jwks_rotated = with_ed_key(&rotated.jwks());
    vm.clear_session_cache();
    World {
        engine,
        vm,
        sessions,
        bogus,
        hints,
        attempts,
        discovery,
        jwks,
        jwks_rotated,
    }
}

/// POSTs `body` to the back-channel logout endpoint of the fuzz world's engine (provider loaded);
/// returns the status of the final answer (0 for a forward, which must not happen).
#[must_use]
pub fn backchannel(body: &[u8]) -> u16 {
    let w = world();
    let mut vm = w.vm.clone();
    let headers = vec![
        (":method".to_string(), "POST".to_string()),
        (
            ":path".to_string(),
            "/oauth2/backchannel_logout".to_string(),
        ),
        (":authority".to_string(), APP_HOST.to_string()),
        (":scheme".to_string(), "https".to_string()),
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
    ];
    let raw = raw_headers(&headers);
    let mut req = Request::from_headers(&raw);
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let d = w
        .engine
        .handle_request(&req, UnixTime(T0), &mut rng, &mut vm);
    assert!(matches!(d, Decision::ReadBody { .. }), "{d:?}");
    req.body = Some(body);
    match w
        .engine
        .handle_request(&req, UnixTime(T0), &mut rng, &mut vm)
    {
        Decision::Respond { status, .. } => status,
        _ => 0,
    }
}
