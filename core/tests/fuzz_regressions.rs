//! Regressions from the cargo-fuzz campaign (fuzz/RESULTS.md): one test per finding, with the
//! minimised input (fuzz/regressions/<target>/). Each failed before its fix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use portcullis_core::oidc::jwks::{parse_jwks, JwksError};
use portcullis_core::oidc::token::parse_token_response;
use portcullis_core::oidc::verify::{verify_id_token, Expectations};
use portcullis_core::oidc::Alg;
use portcullis_core::policy::headers::strip_cookies;
use portcullis_core::policy::path::normalize_path;
use portcullis_core::policy::redirect::validate_redirect;
use portcullis_core::request::{parse_cookie_header, RawHeader};
use portcullis_core::testkit::FakeIdp;
use portcullis_core::{Decision, Request, UnixTime};
use serde_json::json;

/// Whitespace that `str::trim` removes but `u8::is_ascii_whitespace` does not.
const UNICODE_WS: &[&str] = &[
    "\u{b}", "\u{85}", "\u{a0}", "\u{2000}", "\u{200a}", "\u{3000}",
];

fn our_cookie(n: &str) -> bool {
    n == "_pc" || n == "_pc_hint" || n.starts_with("_pc_login_")
}

/// F0 (fuzz/regressions/engine_sequence/f0-vt-session-cookie-forwarded): `Cookie: \x0b_pc=<session>`
/// authenticates (the reader trims Unicode whitespace) and is forwarded upstream unchanged (the
/// stripper trims ASCII whitespace only), so the session cookie reaches the app.
#[test]

fn a_session_cookie_the_engine_reads_is_never_forwarded_whatever_its_whitespace() {
    let mut h = Harness::new();
    let mut b = Browser::default();
    assert_eq!(
        reason_code(&h.login(&mut b, "/", "alice")),
        "login_completed"
    );
    let session = b.get("_pc").unwrap().to_string();
    for ws in UNICODE_WS {
        let cookie = format!("{ws}_pc={session}; theme=dark");
        let sent = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), "/app".to_string()),
            (":authority".to_string(), "app.test".to_string()),
            ("cookie".to_string(), cookie.clone()),
        ];
        let d = h.send("GET", "/app", &[("cookie", cookie.as_str())], None);
        if let Decision::Forward { .. } = d {
            for (n, v) in upstream_headers(&d, &sent) {
                if n.eq_ignore_ascii_case("cookie") {
                    for (name, _) in parse_cookie_header(v.as_bytes()) {
                        assert!(!our_cookie(name), "{ws:?}: {name:?} forwarded in {v:?}");
                    }
                }
            }
        }
        // The same property on the two functions directly.
        let headers: Vec<RawHeader<'_>> = vec![(b"cookie", cookie.as_bytes())];
        let read: Vec<_> = parse_cookie_header(cookie.as_bytes())
            .map(|(n, _)| n)
            .collect();
        let left =
            strip_cookies(&headers, our_cookie).unwrap_or_else(|| cookie.as_bytes().to_vec());
        for (name, _) in parse_cookie_header(&left) {
            assert!(
                !our_cookie(name),
                "{ws:?}: read {read:?}, {name:?} left in {left:?}"
            );
        }
    }
}

/// F0, second half: browsers apply the `__Host-`/`__Secure-` prefix rules to the name as set, so a
/// cookie named `<U+2000>__Host-pc` (tossed from a sibling subdomain) is not protected by them; read as
/// `__Host-pc` it would fix a session on the victim. Cookie names are trimmed of SP/HTAB only.
#[test]

fn cookie_names_are_trimmed_of_ascii_space_and_tab_only() {
    for ws in UNICODE_WS {
        let v = format!("{ws}__Host-pc=attacker");
        let names: Vec<&str> = parse_cookie_header(v.as_bytes()).map(|(n, _)| n).collect();
        assert!(!names.contains(&"__Host-pc"), "{ws:?} read as {names:?}");
    }
    let names: Vec<&str> = parse_cookie_header(b" \t_pc=x").map(|(n, _)| n).collect();
    assert_eq!(names, vec!["_pc"]);
}

/// F1 (fuzz/regressions/path/f1-empty-segment-dotdot): the empty segment of `//` is dropped before
/// `..` is resolved, so `/p//../public/` is public for us (`/public/`) while RFC 3986 / WHATWG (and an
/// upstream that does not merge slashes) resolve it to `/p/public/`.
#[test]

fn an_empty_segment_before_dotdot_never_makes_a_path_public() {
    let input: &[u8] = b"/p//../public/";
    let p = std::str::from_utf8(input).unwrap();
    for path in [p, "/admin//../public/x", "/a/b////../../../../public/x"] {
        assert!(
            !is_public(path),
            "{path:?} is public (normalized {:?})",
            normalize_path(path)
        );
    }
}

/// F2 (fuzz/regressions/engine_sequence/f2-authority-ctl-in-realm): control characters of `:authority`
/// reach the `WWW-Authenticate` realm of the 401.
#[test]

fn the_401_realm_holds_no_control_characters() {
    let mut h = Harness::new();
    for authority in ["\0", "app.test\r\nset-cookie: x=y", "a\u{7f}b"] {
        let headers: Vec<RawHeader<'_>> = vec![
            (b":method", b"GET"),
            (b":path", b"/app"),
            (b":authority", authority.as_bytes()),
            (b"accept", b"application/json"),
        ];
        let d = h.engine.handle_request(
            &Request::from_headers(&headers),
            h.now,
            &mut h.rng,
            &mut h.vm,
        );
        let Decision::Respond { headers, .. } = &d else {
            panic!("{d:?}")
        };
        for (n, v) in headers {
            assert!(
                !v.chars().any(char::is_control),
                "{authority:?}: {n}: {v:?}"
            );
        }
    }
}

/// F2, second half (fuzz/regressions/engine_sequence/f2-cookie-name-ctl-in-set-cookie): stale login
/// cookies are cleared by the names the client sent, control characters included.
#[test]

fn set_cookie_clears_hold_no_control_characters() {
    let mut h = Harness::new();
    // More pending attempts than `max_pending_logins` (5), so a new login clears the oldest too.
    let cookie = (0..6)
        .map(|i| format!("_pc_login_{i}\0\r\nx\u{1}=v"))
        .collect::<Vec<_>>()
        .join("; ");
    for path in ["/", "/oauth2/sign_out"] {
        let d = h.send(
            "GET",
            path,
            &[("accept", "text/html"), ("cookie", cookie.as_str())],
            None,
        );
        let Decision::Respond { headers, .. } = &d else {
            panic!("{d:?}")
        };
        for (n, v) in headers {
            assert!(!v.chars().any(char::is_control), "{path}: {n}: {v:?}");
        }
    }
}

/// F4 (fuzz/regressions/token_response/f4-json-array): serde's derived `Deserialize` reads a struct
/// from a JSON array too, so `["<id_token>"]` is a token response.
#[test]

fn a_token_response_is_a_json_object() {
    let input: &[u8] = b"[\"]\"]";
    assert!(parse_token_response(input).is_none());
    assert!(parse_token_response(br#"["a.b.c", "at", "Bearer"]"#).is_none());
}

/// F5: a key whose pinned `alg` is not one it can verify is kept, so a set of only such keys is
/// accepted instead of refused as `NoUsableKeys` (and replaces the loaded keys on refresh).
#[test]

fn a_key_set_without_a_usable_key_is_refused() {
    let mut idp = FakeIdp::new(ISSUER);
    let mut set: serde_json::Value = serde_json::from_str(&idp.jwks()).unwrap();
    set["keys"][0]["alg"] = json!("RSn256");
    assert_eq!(
        parse_jwks(set.to_string().as_bytes()),
        Err(JwksError::NoUsableKeys)
    );
    set["keys"][0]["alg"] = json!("ES256");
    assert_eq!(
        parse_jwks(set.to_string().as_bytes()),
        Err(JwksError::NoUsableKeys)
    );
}

/// F6 (fuzz/regressions/jwt/f6-negative-exp-never-expires): jwt-simple reads a negative `exp` as an
/// unsigned number of seconds, saturating to 2^32 - 1 (year 2106), so a token with `"exp": -1` never
/// expires.
#[test]

fn a_negative_expiry_has_passed() {
    let idp = FakeIdp::new(ISSUER);
    let mut claims = idp.claims("alice", "n");
    for exp in [json!(-1), json!(-1_700_000_000), json!(-0.5)] {
        claims.insert("exp".into(), exp.clone());
        let token = idp.sign(&claims);
        let jwks = parse_jwks(idp_jwks().as_bytes()).unwrap();
        let e = Expectations {
            issuer: ISSUER,
            client_id: "app",
            nonce: Some("n"),
            allowed_algs: &Alg::ALL,
            now: UnixTime(idp.now),
            leeway: 60,
        };
        assert!(
            verify_id_token(&token, &jwks, &e).is_err(),
            "exp {exp} accepted"
        );
    }
}

/// F7 (fuzz/regressions/path/f7-fast-path-drive-letter), introduced with the drive-letter rule
/// (e909de7): public-path matching takes its allocation-free fast path (`already_normal`) for
/// `/public/a|`, which it therefore calls public, while `normalize_path` refuses the `a|` segment.
/// The two readings must agree (the fast path must leave drive-letter segments to the slow one).
#[test]
fn the_fast_path_agrees_with_normalization_on_drive_letters() {
    let input: &[u8] = b"/public/a|";
    for p in [
        std::str::from_utf8(input).unwrap(),
        "/public/c:",
        "/public/x/C%3a",
        "/public/b|/y",
    ] {
        let via_normalized = normalize_path(p).is_some_and(|n| n.starts_with("/public/"));
        assert_eq!(
            is_public(p),
            via_normalized,
            "{p:?} (normalized {:?})",
            normalize_path(p)
        );
    }
}

/// F8 (fuzz/regressions/redirect/f8-c1-control-accepted,
/// fuzz/regressions/engine_sequence/f8-c1-control-in-location): `validate_redirect` refused control
/// bytes below 0x20 and 0x7f only, so a C1 control character (U+0080–U+009F, two bytes in UTF-8) passed
/// and `sign_out?rd=/a%C2%9E` answered `Location: /a\u{9e}`.
#[test]
fn redirect_targets_hold_no_control_character_of_any_kind() {
    let input: &[u8] = b"/a\xc2\x9e";
    let allow = vec![".example.com".to_string()];
    for t in [
        std::str::from_utf8(input).unwrap(),
        "/a\u{85}b",
        "/a%C2%9E",
        "/x?q=%C2%85",
        "https://app.example.com/\u{9f}",
    ] {
        assert_eq!(validate_redirect(t, &allow), None, "{t:?}");
    }
    let mut h = Harness::new();
    let d = h.send("GET", "/oauth2/sign_out?rd=/a%C2%9E", &[], None);
    let loc = location(&d);
    assert!(!loc.chars().any(char::is_control), "Location {loc:?}");
}

fn idp_jwks() -> String {
    FakeIdp::new(ISSUER).jwks()
}

/// Whether `public_paths: ["/public/*"]` routes `path` to a public rule.
fn is_public(path: &str) -> bool {
    let mut cfg = base_config();
    cfg["public_paths"] = json!(["/public/*"]);
    let c = portcullis_core::Config::from_json(cfg.to_string().as_bytes()).unwrap();
    c.policy
        .route_parts(path, "app.test", "GET")
        .is_ok_and(|r| r.action == portcullis_core::policy::rules::Action::Public)
}
