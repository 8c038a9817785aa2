//! `Config::from_json` on arbitrary plugin JSON (seeded with a valid configuration).
//!
//! Properties of every accepted configuration: an absolute http(s) issuer without query or fragment, a
//! non-empty cluster, a non-empty client id without NUL, a key ring with a primary key, a normalized
//! prefix, a cookie-token cookie name, an `openid` scope, normalized public paths, a post-logout target
//! that `validate_redirect` accepts, a non-empty algorithm list, the documented bounds (leeway <= 600,
//! refresh >= 10 s, callout timeout 1..=60000 ms, login TTL 1..=3600, 1..=20 pending logins, session TTL
//! > 0), client authentication consistent with the secret, and the binding `issuer NUL client_id`
//! first among the accepted bindings. An engine built from it answers `/oauth2/ping`.
//! A refused configuration's message never repeats the client secret or a cookie key secret.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::config::ClientAuth;
use portcullis_core::policy::path::normalize_path;
use portcullis_core::policy::redirect::validate_redirect;
use portcullis_core::request::{AbsoluteUrl, Request};
use portcullis_core::{Config, Decision, Engine, UnixTime};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

fn secrets(data: &[u8]) -> Vec<String> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if let Some(s) = v.get("client_secret").and_then(|s| s.as_str()) {
        out.push(s.to_string());
    }
    if let Some(keys) = v.pointer("/cookie/keys").and_then(|k| k.as_array()) {
        for k in keys {
            if let Some(s) = k.get("secret").and_then(|s| s.as_str()) {
                out.push(s.to_string());
            }
        }
    }
    // Only secrets long enough to be unmistakable, written exactly once (as JSON text) in the input.
    let text = String::from_utf8_lossy(data);
    out.retain(|s| {
        s.len() >= 8 && !s.contains(['"', '\\']) && text.matches(s.as_str()).count() == 1
    });
    out
}

/// Whether the error message echoes `secret`: the same input with the secret replaced by a marker of
/// the same length must not produce a message holding the marker (a message may hold the secret's text
/// for other reasons: serde lists every field name, and a secret may be spelled like one).
fn echoes(data: &[u8], secret: &str) -> Option<String> {
    const MARK: char = '~';
    let text = String::from_utf8_lossy(data);
    let marker: String = std::iter::repeat_n(MARK, secret.chars().count()).collect();
    if text.contains(&marker) {
        return None;
    }
    let modified = text.replacen(secret, &marker, 1);
    match Config::from_json(modified.as_bytes()) {
        Err(e) if e.to_string().contains(&marker) => Some(e.to_string()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let c = match Config::from_json(data) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            for s in secrets(data) {
                if let Some(msg) = echoes(data, &s) {
                    panic!("the error message repeats a secret: {msg}");
                }
            }
            return;
        }
    };
    assert!(
        AbsoluteUrl::parse(&c.issuer).is_some() && !c.issuer.contains(['?', '#']),
        "{:?}",
        c.issuer
    );
    assert!(!c.idp_cluster.trim().is_empty());
    assert!(!c.client_id.is_empty() && !c.client_id.contains('\0'));
    assert!(!c.keys.primary_id().is_empty());
    assert!(c.prefix.len() >= 2 && !c.prefix.ends_with('/'));
    assert_eq!(
        normalize_path(&c.prefix).as_deref(),
        Some(c.prefix.as_str())
    );
    assert!(
        !c.cookie_name.is_empty()
            && c.cookie_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    );
    assert!(c.scope.split(' ').any(|s| s == "openid"));
    assert_eq!(
        validate_redirect(&c.post_logout_redirect_url, &c.allowed_redirect_domains).as_deref(),
        Some(c.post_logout_redirect_url.as_str())
    );
    assert!(!c.allowed_algs.is_empty());
    assert!(c.leeway <= 600 && c.refresh_interval >= 10);
    assert!((1..=60_000).contains(&c.callout_timeout_ms));
    // (`max_pending_logins` went to 1..=50 with issue 8's twenty tabs; this oracle still said 20.)
    assert!((1..=3600).contains(&c.login_ttl) && (1..=50).contains(&c.max_pending_logins));
    if let Some(sts) = &c.sts {
        assert!(!sts.keys.is_empty() && !sts.redirect_uris.is_empty());
        assert!((1..=portcullis_core::config::MAX_STS_TTL).contains(&sts.max_ttl));
        assert!((1..=sts.max_ttl).contains(&sts.default_ttl));
        assert!(
            sts.client_secret.is_some() || sts.state_is_code_verifier,
            "a public exchange needs PKCE"
        );
        assert_ne!(sts.issuer, c.issuer);
    }
    assert!(c.session_ttl > 0);
    match c.client_auth {
        ClientAuth::None => assert!(c.client_secret.is_none()),
        _ => assert!(c.client_secret.as_ref().is_some_and(|s| !s.0.is_empty())),
    }
    assert_eq!(c.binding, format!("{}\0{}", c.issuer, c.client_id));
    assert_eq!(c.accepted_bindings.first(), Some(&c.binding));
    if let Some(r) = &c.redirect_url {
        let u = AbsoluteUrl::parse(r).expect("checked");
        assert_eq!(u.path_and_query, format!("{}/callback", c.prefix));
    }
    assert!(c.is_our_cookie(&c.cookie_name) && c.is_our_cookie(&c.login_cookie_prefix()));

    // The engine built from it serves its ping endpoint.
    let prefix = c.prefix.clone();
    let engine = Engine::new(c);
    let path = format!("{prefix}/ping");
    let headers: Vec<(&[u8], &[u8])> = vec![(b":method", b"GET"), (b":path", path.as_bytes())];
    let d = engine.handle_request(
        &Request::from_headers(&headers),
        UnixTime(1_700_000_000),
        &mut ChaCha20Rng::seed_from_u64(0),
        &mut engine.new_vm(),
    );
    assert!(matches!(d, Decision::Respond { status: 200, .. }), "{d:?}");
});
