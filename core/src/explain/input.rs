//! From the input to a request: the pseudo-headers and headers, the test session sealed with the
//! configuration's own key ring, and the stand-in IdP that lets a login redirect be shown.

use std::borrow::ToOwned;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};
use serde_json::{json, Map};

use super::{ExplainInput, SessionSummary, TestIdentity};
use crate::decision::CalloutResponse;
use crate::engine::Engine;
use crate::oidc::token::TokenResponse;
use crate::request::AbsoluteUrl;
use crate::session::chunks;
use crate::session::{Secret, Session};
use crate::time::UnixTime;
use crate::vm::VmState;

/// The pseudo-headers from the method and URL, then the given headers in order.
pub(super) fn build_headers(input: &ExplainInput) -> Result<Vec<(String, String)>, String> {
    let method = input.method.as_deref().map_or("GET", str::trim);
    let method = if method.is_empty() { "GET" } else { method };
    let mut given = Vec::new();
    for line in input.headers.lines('\n') {
        let Some((name, value)) = line.split_once(':') else {
            return Err(format!("headers: `{line}` is not `name: value`"));
        };
        let name = name.trim();
        if name.is_empty() || name.starts_with(':') || name.contains(' ') {
            return Err(format!(
                "headers: `{line}`: a header name (pseudo-headers come from the method and URL)"
            ));
        }
        given.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    let url = input.url.trim();
    let (scheme, authority, path) = if url.starts_with('/') {
        let host = given
            .iter()
            .find(|(n, _)| n == "host")
            .map_or("localhost", |(_, v)| v.as_str());
        ("http", host.to_owned(), url.to_owned())
    } else {
        let u = AbsoluteUrl::parse(url).ok_or_else(|| {
            format!(
                "url: `{url}` is not an absolute http(s) URL such as \
                 http://app.example.com/admin (or a path such as /admin)"
            )
        })?;
        let path = match u.path_and_query.split_once('#') {
            Some((p, _)) => p,
            None => u.path_and_query,
        };
        let path = if path.starts_with('/') {
            path.to_owned()
        } else {
            format!("/{path}")
        };
        let scheme = if u.scheme.eq_ignore_ascii_case("https") {
            "https"
        } else {
            "http"
        };
        (scheme, u.authority.to_owned(), path)
    };
    let mut headers = std::vec![
        (String::from(":method"), method.to_owned()),
        (String::from(":scheme"), String::from(scheme)),
        (String::from(":authority"), authority),
        (String::from(":path"), path),
    ];
    headers.extend(given);
    Ok(headers)
}

/// A minted test session: its description, the session, and its `(cookie name, sealed value)` pairs.
pub(super) struct Minted {
    pub(super) summary: SessionSummary,
    pub(super) session: Session,
    pub(super) cookies: Vec<(String, String)>,
}

/// The test identity's session, through the same claim mapping and sealing as a real login.
pub(super) fn mint_session(
    engine: &Engine,
    test: &TestIdentity,
    now: UnixTime,
    rng: &mut (impl RngCore + CryptoRng),
) -> Result<Minted, String> {
    let cfg = engine.config();
    let user = test.user.trim();
    if user.is_empty() {
        return Err(String::from("session.user: required for a test session"));
    }
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(user));
    if cfg.claims.user != "sub" && cfg.claims.user != cfg.claims.email {
        claims.insert(cfg.claims.user.clone(), json!(user));
    }
    if let Some(email) = test
        .email
        .as_deref()
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        claims.insert(cfg.claims.email.clone(), json!(email));
        claims.insert(
            "email_verified".into(),
            json!(test.email_verified.unwrap_or(true)),
        );
    }
    if let Some(groups) = &test.groups {
        let list: Vec<&str> = groups
            .lines(',')
            .into_iter()
            .flat_map(|l| l.split('\n'))
            .map(str::trim)
            .filter(|g| !g.is_empty())
            .collect();
        claims.insert(cfg.claims.groups.clone(), json!(list));
    }
    for (k, v) in test.claims.iter().flatten() {
        claims.insert(k.clone(), v.clone());
    }
    let tokens = TokenResponse {
        id_token: Secret(String::new()),
        access_token: None,
        token_type: None,
        scope: None,
        refresh_token: None,
        expires_in: None,
    };
    let session = engine
        .session_from(user, &claims, &tokens, now)
        .map_err(|r| {
            format!(
                "session: a login with these claims would fail: {} ({})",
                r.code(),
                r.failure_message().unwrap_or("refused")
            )
        })?;
    let (sealed, _) = engine
        .seal_session_value(&session, now, rng)
        .map_err(|r| format!("session: cannot be sealed: {}", r.code()))?;
    let cookies = chunks::split(&sealed, &cfg.cookie_name)
        .ok_or_else(|| String::from("session: too large for the cookies it may span"))?;
    let summary = SessionSummary {
        user: session.user.clone(),
        email: session.email.clone(),
        groups: session.groups.clone(),
        cookies: cookies.iter().map(|(n, _)| n.clone()).collect(),
        sealed_with_key: cfg.keys.primary_id().to_owned(),
        expires_at: session.expires_at,
    };
    Ok(Minted {
        summary,
        session,
        cookies,
    })
}

/// Adds cookies to the first `Cookie` header, or as a new one.
pub(super) fn add_cookies(headers: &mut Vec<(String, String)>, cookies: &[(String, String)]) {
    let pairs: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
    let joined = pairs.join("; ");
    match headers.iter_mut().find(|(n, _)| n == "cookie") {
        Some((_, v)) if !v.trim().is_empty() => {
            v.push_str("; ");
            v.push_str(&joined);
        }
        Some((_, v)) => *v = joined,
        None => headers.push((String::from("cookie"), joined)),
    }
}

/// The discovery document a stand-in IdP serves for `issuer`.
fn stand_in_discovery(issuer: &str) -> Vec<u8> {
    let base = issuer.trim_end_matches('/');
    json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{base}/authorize"),
        "token_endpoint": format!("{base}/token"),
        "jwks_uri": format!("{base}/jwks"),
        "end_session_endpoint": format!("{base}/logout"),
        "userinfo_endpoint": format!("{base}/userinfo"),
        "introspection_endpoint": format!("{base}/introspect"),
        "code_challenge_methods_supported": ["S256"],
    })
    .to_string()
    .into_bytes()
}

/// A key set whose one key (the Ed25519 identity point's encoding, all zeros) verifies no real token.
const STAND_IN_JWKS: &[u8] = br#"{"keys":[{"kty":"OKP","crv":"Ed25519","use":"sig","kid":"playground-stand-in","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}]}"#;

/// Loads every issuer's stand-in metadata and keys through the ordinary root-timer path (the engine
/// installs them in `vm` as it would a real IdP's).
pub(super) fn load_stand_in_provider(engine: &Engine, now: UnixTime, vm: &mut VmState) {
    let issuers: Vec<String> = engine
        .config()
        .issuers
        .iter()
        .map(|i| i.issuer.clone())
        .collect();
    let mut queue = engine.handle_timeout(now, vm);
    // Discovery then JWKS per issuer: a bound, not a loop the engine could keep going.
    for _ in 0..4 * (issuers.len() + 1) {
        let Some((callout, pending)) = queue.pop() else {
            break;
        };
        let discovery_of = issuers.iter().find(|iss| {
            let url = format!(
                "{}/.well-known/openid-configuration",
                iss.trim_end_matches('/')
            );
            AbsoluteUrl::parse(&url).is_some_and(|u| {
                u.authority == callout.authority && u.path_and_query == callout.path
            })
        });
        let body = match discovery_of {
            Some(iss) => stand_in_discovery(iss),
            None => STAND_IN_JWKS.to_vec(),
        };
        let reply = CalloutResponse::Received {
            status: 200,
            body: &body,
        };
        let step = engine.handle_root_response(pending, reply, now, vm);
        queue.extend(step.next);
    }
}
