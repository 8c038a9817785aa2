//! The command-line credentials of issue 7 under hostile input: session tokens (the token page's) and
//! tokens our STS minted, sent as `Authorization`, `Flyte-Authorization` or a cookie, genuine, expired,
//! bit-flipped, truncated, spliced or arbitrary bytes, to API, bearer, forwarding and our own endpoints;
//! and the STS endpoints fed arbitrary request bodies and arbitrary token-endpoint replies.
//!
//! Invariants after every request:
//! - never a panic;
//! - a request is let through (`Forward` on an authenticated route, 202 from `{prefix}/auth`, 200 from
//!   `{prefix}/userinfo` or `{prefix}/token`) only when it carried one of the genuine credentials
//!   unmodified, valid at that time, and then as that credential's user;
//! - the session token never reaches the upstream, except as the session cookie on the route that
//!   forwards it; and no response body holds the client secret;
//! - the STS never mints (200) from a token-endpoint reply the fuzzer wrote (it cannot sign as the IdP).
//!
//! Input: a seed byte, then operations `op = byte % 4`: 0 a request with a credential, 1 an STS request
//! with a fuzzed body and a fuzzed token-endpoint reply, 2 advance minutes (u8), 3 advance seconds (u16).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis_core::decision::{CalloutResponse, Decision};
use portcullis_core::request::{raw_headers, RawHeader, Request};
use portcullis_core::{Engine, UnixTime, VmState};
use portcullis_fuzz::engine::{apply_set_cookies, drive, fake_idp, nav_headers, T0};
use portcullis_fuzz::{base_config, APP_HOST, CLIENT_SECRET};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use serde_json::{json, Value};

/// A fixed Ed25519 STS key (fuzzing only).
const STS_KEY: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEINebkPsV3h1Z+H1qcjK0LUVxee20MnV7SVb+z7JEhyhW\n-----END PRIVATE KEY-----\n";
const REDIRECT: &str = "http://127.0.0.1:53595/callback";
const VERIFIER: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";
const SESSION_TTL: u64 = 3600;
const STS_TTL: u64 = 600;
const LEEWAY: u64 = 60;

struct Setup {
    engine: Engine,
    vm: VmState,
    /// The token page's token for alice (the sealed session), valid until T0 + SESSION_TTL.
    session: String,
    /// A token the STS minted for bob, valid until T0 + STS_TTL (plus leeway).
    minted: String,
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let mut cfg = base_config();
        let extra = json!({
            "sts": {"client_id": "app", "redirect_uris": [REDIRECT], "issuer": "https://portcullis.test/sts",
                    "audience": "lakefs", "default_ttl_seconds": STS_TTL, "max_ttl_seconds": STS_TTL,
                    "authenticator_path": "/sts/login",
                    "signing_keys": [{"kid": "sts-1", "alg": "EdDSA", "private_key_pem": STS_KEY}]},
            "flyte": {"client_id": "flytectl"},
            "token_page": true,
            "routes": {"rules": [
                {"name": "fwd", "prefix": "/fwd", "action": "authenticate", "forward_session_cookie": true},
                {"name": "api", "prefix": "/api", "action": "authenticate", "accept": "either", "api": true,
                 "bearer_header": ["flyte-authorization", "authorization"]},
            ]},
        });
        for (k, v) in extra.as_object().expect("object") {
            cfg[k] = v.clone();
        }
        let engine = Engine::from_json(cfg.to_string().as_bytes()).expect("config");
        let mut idp = fake_idp(T0);
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let mut vm = engine.new_vm();
        let mut queue = engine.handle_timeout(UnixTime(T0), &mut vm);
        while let Some((callout, pending)) = queue.pop() {
            let (status, _, body) = idp.serve(callout.method, &callout.path, None, &callout.body);
            let step = engine.handle_root_response(
                pending,
                CalloutResponse::Received { status, body: &body },
                UnixTime(T0),
                &mut vm,
            );
            queue.extend(step.next);
        }
        assert!(vm.is_ready());
        // Alice logs in; her session is the token page's token.
        let mut jar = Vec::new();
        let d = drive(&engine, &mut idp, &nav_headers("/", &jar), T0, &mut rng, &mut vm);
        apply_set_cookies(&mut jar, headers(&d));
        let back = idp.authorize(&location(&d), "alice").expect("authorize");
        let cb = back.strip_prefix("https://app.test").expect("callback").to_string();
        let d = drive(&engine, &mut idp, &nav_headers(&cb, &jar), T0, &mut rng, &mut vm);
        apply_set_cookies(&mut jar, headers(&d));
        let session = jar.iter().find(|(n, _)| n == "_pc").expect("session").1.clone();
        // Bob exchanges a code at the STS.
        let challenge = portcullis_core::oidc::pkce::challenge_s256(VERIFIER);
        let url = format!(
            "https://idp.test/auth?response_type=code&client_id=app&redirect_uri={}&scope=openid&state={VERIFIER}&nonce=x&code_challenge={challenge}&code_challenge_method=S256",
            portcullis_core::request::encode_component(REDIRECT)
        );
        let back = idp.authorize(&url, "bob").expect("authorize bob");
        let code = back.split("code=").nth(1).and_then(|r| r.split('&').next()).expect("code").to_string();
        let body = json!({"code": code, "state": VERIFIER, "redirect_uri": REDIRECT}).to_string();
        let d = post(&engine, &mut vm, &mut rng, "/api/v1/sts/login", body.as_bytes(), T0, |c| {
            let (s, _, b) = idp.serve(c.method, &c.path, c.headers.iter().find(|(n, _)| n == "authorization").map(|(_, v)| v.as_str()), &c.body);
            (s, b)
        });
        let Decision::Respond { status: 200, body, .. } = &d else { panic!("setup: exchange {d:?}") };
        let minted = serde_json::from_slice::<Value>(body).expect("json")["token"].as_str().expect("token").to_string();
        Setup { engine, vm, session, minted }
    })
}

fn headers(d: &Decision) -> &[(String, String)] {
    match d {
        Decision::Respond { headers, .. } => headers,
        _ => &[],
    }
}

fn location(d: &Decision) -> String {
    headers(d)
        .iter()
        .find(|(n, _)| n == "location")
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A POST with a body; the callout (if any) answered by `reply`.
fn post(
    engine: &Engine,
    vm: &mut VmState,
    rng: &mut ChaCha20Rng,
    path: &str,
    body: &[u8],
    now: u64,
    mut reply: impl FnMut(&portcullis_core::Callout) -> (u16, Vec<u8>),
) -> Decision {
    let h: Vec<(String, String)> = vec![
        (":method".into(), "POST".into()),
        (":path".into(), path.into()),
        (":authority".into(), APP_HOST.into()),
        ("content-type".into(), "application/json".into()),
    ];
    let raw = raw_headers(&h);
    let mut req = Request::from_headers(&raw);
    let d = engine.handle_request(&req, UnixTime(now), rng, vm);
    let d = match d {
        Decision::ReadBody { limit } => {
            req.body = Some(&body[..body.len().min(limit + 1)]);
            engine.handle_request(&req, UnixTime(now), rng, vm)
        }
        d => d,
    };
    match d {
        Decision::Callout { callout, pending } => {
            let (status, b) = reply(&callout);
            engine.handle_callout_response(
                pending,
                CalloutResponse::Received { status, body: &b },
                UnixTime(now),
                rng,
                vm,
            )
        }
        d => d,
    }
}

struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = (self.byte() as usize).min(max).min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn done(&self) -> bool {
        self.0.is_empty()
    }
}

const PATHS: &[&str] = &[
    "/api/v1/user",
    "/fwd/token",
    "/app",
    "/oauth2/auth",
    "/oauth2/userinfo",
    "/oauth2/token",
    "/oauth2/jwks.json",
    "/config/v1/flyte_client",
    "/.well-known/oauth-authorization-server",
    "/public/x",
];
const CARRIERS: &[&str] = &[
    "authorization",
    "flyte-authorization",
    "cookie",
    "Authorization",
    "FLYTE_AUTHORIZATION",
];

/// Which credential a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cred {
    Session,
    Minted,
    Other,
}

fn credential(s: &Setup, input: &mut Input<'_>, cookie: bool) -> (Vec<u8>, Cred) {
    let kind = input.byte() % 6;
    let base = if kind % 2 == 0 { &s.session } else { &s.minted };
    let genuine = if kind % 2 == 0 {
        Cred::Session
    } else {
        Cred::Minted
    };
    match kind {
        0 | 1 => (base.as_bytes().to_vec(), genuine),
        2 | 3 => {
            // One byte changed, or cut short: never genuine.
            let mut t = base.as_bytes().to_vec();
            let at = input.byte() as usize % t.len();
            let was = t[at];
            let with = input.byte();
            if input.byte() % 2 == 0 || with == was {
                t.truncate(at);
            } else {
                t[at] = with;
            }
            (t, Cred::Other)
        }
        4 => {
            // A genuine token with fuzz bytes spliced in after it.
            let mut t = base.as_bytes().to_vec();
            let tail = input.bytes(16);
            t.extend_from_slice(tail);
            // Trailing spaces are no change (a bearer value is trimmed, RFC 9110 §5.5 OWS), nor is a
            // `;` after a cookie value (another cookie follows).
            let rest = tail
                .iter()
                .position(|b| !matches!(b, b' ' | b'\t'))
                .map_or(&[][..], |i| &tail[i..]);
            if rest.is_empty() || (cookie && rest.first() == Some(&b';')) {
                return (t, genuine);
            }
            (t, Cred::Other)
        }
        _ => (input.bytes(64).to_vec(), Cred::Other),
    }
}

fn valid(cred: Cred, now: u64) -> bool {
    match cred {
        Cred::Session => now < T0 + SESSION_TTL,
        Cred::Minted => now < T0 + STS_TTL + LEEWAY,
        Cred::Other => false,
    }
}

fn check_request(
    s: &Setup,
    vm: &mut VmState,
    rng: &mut ChaCha20Rng,
    now: u64,
    input: &mut Input<'_>,
) {
    let path = PATHS[input.byte() as usize % PATHS.len()];
    let carrier = CARRIERS[input.byte() as usize % CARRIERS.len()];
    let (value, cred) = credential(s, input, carrier.eq_ignore_ascii_case("cookie"));
    let scheme = input.byte() % 3;
    let mut sent: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (b":method".to_vec(), b"GET".to_vec()),
        (b":path".to_vec(), path.as_bytes().to_vec()),
        (b":authority".to_vec(), APP_HOST.as_bytes().to_vec()),
        (
            b"accept".to_vec(),
            if input.byte() % 2 == 0 {
                b"application/json".to_vec()
            } else {
                b"*/*".to_vec()
            },
        ),
    ];
    let carried = if carrier.eq_ignore_ascii_case("cookie") {
        [b"_pc=".as_slice(), &value].concat()
    } else {
        let prefix: &[u8] = match scheme {
            0 => b"Bearer ",
            1 => b"bearer ",
            _ => b"Basic ",
        };
        [prefix, &value].concat()
    };
    let usable = scheme < 2 || carrier.eq_ignore_ascii_case("cookie");
    sent.push((carrier.as_bytes().to_vec(), carried));
    let raw: Vec<RawHeader<'_>> = sent
        .iter()
        .map(|(n, v)| (n.as_slice(), v.as_slice()))
        .collect();
    let req = Request::from_headers(&raw);
    let d = s.engine.handle_request(&req, UnixTime(now), rng, vm);
    // Bearer credentials never need a callout here (our own keys; the IdP bearer list is empty).
    let passed = match &d {
        Decision::Forward { request, .. } => {
            if !matches!(path, "/public/x" | "/config/v1/flyte_client") {
                let up = request.apply_raw(&raw);
                let user = up
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(b"x-forwarded-user"))
                    .map(|(_, v)| v.clone());
                let want: &[u8] = if cred == Cred::Session {
                    b"alice"
                } else {
                    b"bob"
                };
                assert_eq!(
                    user.as_deref(),
                    Some(want),
                    "forwarded as the credential's user"
                );
            }
            // The genuine session token, as `Bearer` in any header or as the cookie, never goes
            // upstream, but as the cookie on the forwarding route. A value in another shape (another
            // scheme, spliced bytes) is the client's own header, passed on untouched.
            let up = request.apply_raw(&raw);
            let leaks = up.iter().any(|(_, v)| contains(v, s.session.as_bytes()));
            let cookie = carrier.eq_ignore_ascii_case("cookie");
            let ours = cred == Cred::Session && (cookie || usable);
            let allowed = path.starts_with("/fwd") && cookie;
            assert!(
                !(ours && leaks) || allowed,
                "session token upstream on {path} via {carrier}"
            );
            !matches!(path, "/public/x" | "/config/v1/flyte_client")
        }
        Decision::Respond { status, body, .. } => {
            assert!(
                !contains(body, CLIENT_SECRET.as_bytes()),
                "client secret in a response"
            );
            match path {
                "/oauth2/auth" => *status == 202,
                "/oauth2/userinfo" | "/oauth2/token" => *status == 200,
                _ => false,
            }
        }
        _ => false,
    };
    if passed {
        assert!(
            usable && valid(cred, now),
            "let through without a genuine, valid credential: {path} {carrier} {:?}",
            String::from_utf8_lossy(&value)
        );
        if matches!(path, "/oauth2/auth" | "/oauth2/userinfo" | "/oauth2/token") {
            assert_eq!(cred, Cred::Session, "our endpoints take sessions only");
        }
    }
}

fn check_exchange(
    s: &Setup,
    vm: &mut VmState,
    rng: &mut ChaCha20Rng,
    now: u64,
    input: &mut Input<'_>,
) {
    let path = if input.byte() % 2 == 0 {
        "/api/v1/sts/login"
    } else {
        "/sts/login"
    };
    let body: Vec<u8> = match input.byte() % 3 {
        0 => input.bytes(200).to_vec(),
        1 => json!({"code": String::from_utf8_lossy(input.bytes(40)), "state": VERIFIER, "redirect_uri": REDIRECT,
                    "ttl_seconds": input.byte()}).to_string().into_bytes(),
        _ => json!({"code": "c", "state": String::from_utf8_lossy(input.bytes(130)), "redirect_uri": String::from_utf8_lossy(input.bytes(40))}).to_string().into_bytes(),
    };
    let status = [200u16, 400, 401, 500, 503, 504, 302][input.byte() as usize % 7];
    let reply: Vec<u8> = match input.byte() % 3 {
        0 => input.bytes(255).to_vec(),
        // A token response shape around a fuzzed (unsigned) ID token, or the minted token (ours, not the IdP's).
        1 => json!({"id_token": String::from_utf8_lossy(input.bytes(120)), "access_token": "a", "token_type": "Bearer"}).to_string().into_bytes(),
        _ => json!({"id_token": s.minted, "access_token": "a", "token_type": "Bearer"}).to_string().into_bytes(),
    };
    let d = post(&s.engine, vm, rng, path, &body, now, |_| {
        (status, reply.clone())
    });
    if let Decision::Respond { status, body, .. } = &d {
        assert!(!contains(body, CLIENT_SECRET.as_bytes()));
        assert_ne!(
            *status,
            200,
            "minted from a reply the fuzzer wrote: {}",
            String::from_utf8_lossy(body)
        );
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

fuzz_target!(|data: &[u8]| {
    let s = setup();
    let mut input = Input(data);
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(input.byte()));
    let mut vm = s.vm.clone();
    let mut now = T0;
    let mut steps = 0;
    while !input.done() && steps < 32 {
        steps += 1;
        match input.byte() % 4 {
            0 => check_request(s, &mut vm, &mut rng, now, &mut input),
            1 => check_exchange(s, &mut vm, &mut rng, now, &mut input),
            2 => now += 60 * u64::from(input.byte()),
            _ => now += u64::from(u16::from_le_bytes([input.byte(), input.byte()])),
        }
    }
});
