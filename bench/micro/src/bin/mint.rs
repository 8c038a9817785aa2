//! Mints N distinct, valid session cookies for a plugin configuration, for bench/footprint.mjs (resident
//! memory with N cached sessions): `mint <plugin-config.json> N` prints N lines, each the value of a
//! `Cookie` header (`_portcullis=<sealed>`, or its chunk cookies when a session outgrows one cookie).
//!
//! Why not N real logins through Envoy: each costs three requests, a token callout and an RS256 ID-token
//! signature, and measures the login path, not the cache. The session cache entry is built from the
//! opened cookie alone (`open_session` -> `cache_entry`), so a cookie sealed here with the configured key
//! ring, cookie name and binding yields exactly the entry a login's cookie yields, provided the sealed
//! session has a login's shape. To get that shape without restating it, one real login runs here,
//! natively, through the core's engine (built from the very configuration Envoy gets) against the
//! testkit's in-process IdP; its cookie is opened and the session varied per user (`sub`, name, email,
//! groups, IdP session id), then sealed again through the configuration's own `KeyRing`. Every minted
//! cookie is then checked through the engine (a fresh request must be forwarded) before it is printed.
//!
//! The in-process IdP answers every callout of the configuration (a bearer issuer's static `jwks_uri`
//! gets its JWKS too); only the login issuer's answers matter for a session.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write as _;

use portcullis_core::request::raw_headers;
use portcullis_core::session::keyring::Purpose;
use portcullis_core::session::{chunks, Session};
use portcullis_core::testkit::FakeIdp;
use portcullis_core::{CalloutResponse, Decision, Engine, Request, UnixTime};

fn header<'a>(headers: &'a [(String, String)], name: &str, prefix: &str) -> &'a str {
    headers
        .iter()
        .find(|(n, v)| n == name && v.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {name} {prefix}… in {headers:?}"))
        .1
        .as_str()
}

fn decide(
    engine: &Engine,
    headers: &[(String, String)],
    now: UnixTime,
    rng: &mut rand_chacha::ChaCha20Rng,
    vm: &mut portcullis_core::VmState,
) -> Decision {
    let raw = raw_headers(headers);
    engine.handle_request(&Request::from_headers(&raw), now, rng, vm)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let cfg_file = args
        .next()
        .expect("usage: mint <plugin-config.json> <count>");
    let n: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: mint <plugin-config.json> <count>");
    let bytes = std::fs::read(&cfg_file).expect("read the configuration");
    let cfg: serde_json::Value = serde_json::from_slice(&bytes).expect("the configuration is JSON");
    let engine = Engine::from_json(&bytes).expect("a valid configuration");
    let c = engine.config();

    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let now = UnixTime(secs);
    let mut idp = FakeIdp::new(cfg["issuer"].as_str().expect("issuer"));
    idp.client_id = cfg["client_id"].as_str().expect("client_id").into();
    idp.client_secret = cfg["client_secret"].as_str().unwrap_or_default().into();
    idp.now = secs;
    let mut rng = <rand_chacha::ChaCha20Rng as rand_core::SeedableRng>::seed_from_u64(secs);
    let mut vm = engine.new_vm();
    // Discovery and JWKS, as the filter's root context loads them.
    let mut queue = engine.handle_timeout(now, &mut vm);
    while let Some((callout, pending)) = queue.pop() {
        let (status, _, body) = idp.serve(callout.method, &callout.path, None, &callout.body);
        let r = CalloutResponse::Received {
            status,
            body: &body,
        };
        queue.extend(engine.handle_root_response(pending, r, now, &mut vm).next);
    }
    let nav = |path: &str, cookie: &str| -> Vec<(String, String)> {
        let mut h: Vec<(String, String)> = [
            (":method", "GET"),
            (":path", path),
            (":authority", "app.test"),
            (":scheme", "https"),
            ("accept", "text/html"),
        ]
        .iter()
        .map(|(a, b)| ((*a).to_string(), (*b).to_string()))
        .collect();
        if !cookie.is_empty() {
            h.push(("cookie".into(), cookie.into()));
        }
        h
    };

    // One real login: navigation, the IdP, the callback (token endpoint and ID-token check).
    let d = decide(&engine, &nav("/", ""), now, &mut rng, &mut vm);
    let Decision::Respond { headers, .. } = &d else {
        panic!("no login redirect: {d:?}")
    };
    let location = header(headers, "location", "").to_string();
    let login_cookie = header(headers, "set-cookie", "")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let back = idp.authorize(&location, "user00000").expect("authorize");
    let callback = back.strip_prefix("https://app.test").expect("our callback");
    let d = decide(
        &engine,
        &nav(callback, &login_cookie),
        now,
        &mut rng,
        &mut vm,
    );
    let d = idp.drive(&engine, d, now, &mut rng, &mut vm);
    let Decision::Respond { headers, .. } = &d else {
        panic!("login failed: {d:?}")
    };
    let prefix = format!("{}=", c.cookie_name);
    let sealed = header(headers, "set-cookie", &prefix)[prefix.len()..]
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let plain = c
        .keys
        .open(Purpose::Session, &c.cookie_name, &c.binding, &sealed)
        .expect("the login's session (one cookie) opens");
    let template: Session = serde_json::from_slice(&plain).expect("a session");

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..n {
        let user = format!("user{i:05}");
        let mut s = template.clone();
        let swap = |v: &str| v.replace("user00000", &user);
        s.user = swap(&s.user);
        s.sub = swap(&s.sub);
        s.email = s.email.as_deref().map(swap);
        s.name = s.name.as_deref().map(swap);
        s.preferred_username = s.preferred_username.as_deref().map(swap);
        s.groups = s.groups.iter().map(|g| swap(g)).collect();
        s.sid = s.sid.as_ref().map(|sid| format!("{sid}-{i}"));
        let json = serde_json::to_vec(&s).unwrap();
        let sealed = c
            .keys
            .seal(
                Purpose::Session,
                &c.cookie_name,
                &c.binding,
                &json,
                &mut rng,
            )
            .expect("seal");
        let parts = chunks::split(&sealed, &c.cookie_name).expect("fits the chunk cookies");
        let cookie = parts
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        // The engine must take it: forwarded, not redirected to a login.
        let d = decide(&engine, &nav("/", &cookie), now, &mut rng, &mut vm);
        if !matches!(d, Decision::Forward { .. }) {
            panic!("minted session {i} not accepted: {d:?}");
        }
        writeln!(out, "{cookie}").unwrap();
    }
    out.flush().unwrap();
}
