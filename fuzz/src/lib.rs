//! Shared pieces of the Portcullis fuzz targets: the fixed configuration, header-name pickers, and the
//! independent oracles the targets check the core against.
//!
//! The oracles are deliberately written differently from the core (simpler, slower, stricter): a
//! property checked with the code under test proves little.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use portcullis_core::policy::headers::IDENTITY_HEADERS;
use serde_json::{json, Value};

pub mod engine;

/// The fake IdP's issuer.
pub const ISSUER: &str = "https://idp.test";
/// A client secret no fuzzer will produce by chance, so finding it in a response means a leak.
pub const CLIENT_SECRET: &str = "pc-fuzz-secret-Zq8xW3vT";
/// Cookie key (base64 of 32 bytes), as in core/tests/common/mod.rs.
pub const KEY_1: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
/// The host the app is served on.
pub const APP_HOST: &str = "app.test";

/// The configuration every engine-level target uses (`core/tests/common/mod.rs` `base_config`, with
/// a one-hour session and `/public/*` public).
#[must_use]
pub fn base_config() -> Value {
    json!({
        "issuer": ISSUER,
        "idp_cluster": "idp",
        "client_id": "app",
        "client_secret": CLIENT_SECRET,
        "cookie": {"name": "_pc", "session_ttl_seconds": 3600, "keys": [{"id": "k1", "secret": KEY_1}]},
        "public_paths": ["/public/*"],
        "allowed_redirect_domains": [".example.com"],
    })
}

/// Header names worth trying, besides raw bytes: pseudo-headers, the ones the core reads, and identity
/// headers in several spellings.
pub const HEADER_NAMES: &[&str] = &[
    ":method",
    ":path",
    ":authority",
    ":scheme",
    "host",
    "Host",
    "HOST",
    "x-forwarded-proto",
    "X-Forwarded-Proto",
    "cookie",
    "Cookie",
    "COOKIE",
    "accept",
    "sec-fetch-mode",
    "x-requested-with",
    "authorization",
    "x-forwarded-user",
    "X-Forwarded-User",
    "x_forwarded_user",
    "X_FORWARDED_EMAIL",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-auth-request-user",
    "X_Auth_Request_Email",
    "x-auth-request-groups",
    "x-auth-request-preferred-username",
    "x-auth-request-access-token",
    "x-forwarded-userx",
    "x-forwarded-for",
    "user-agent",
];

/// Oracle: does this header name, as an upstream folding case and `_`/`-` would read it, name one of
/// the identity headers Portcullis owns?
#[must_use]
pub fn is_identity_name(name: &[u8]) -> bool {
    let folded: Vec<u8> = name
        .iter()
        .map(|&b| {
            if b == b'_' {
                b'-'
            } else {
                b.to_ascii_lowercase()
            }
        })
        .collect();
    IDENTITY_HEADERS.iter().any(|h| h.as_bytes() == folded)
}

/// Oracle: the session, login and hint cookie names of a `_pc` configuration.
#[must_use]
pub fn is_pc_cookie(name: &str) -> bool {
    name == "_pc"
        || name == "_pc_hint"
        || name.starts_with("_pc_login_")
        // The session's chunk cookies (`session::chunks`: `_pc_1` … `_pc_5`).
        || matches!(name, "_pc_1" | "_pc_2" | "_pc_3" | "_pc_4" | "_pc_5")
}

/// Percent-decodes leniently (a bad escape stays as written), for oracles.
#[must_use]
pub fn lenient_percent_decode(s: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%'
            && i + 3 <= s.len()
            && s[i + 1].is_ascii_hexdigit()
            && s[i + 2].is_ascii_hexdigit()
        {
            let hex = |c: u8| (c as char).to_digit(16).unwrap_or(0) as u8;
            out.push(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 3;
            continue;
        }
        out.push(s[i]);
        i += 1;
    }
    out
}

/// Oracle: does the fixed allowlist `[".example.com", "exact.org:8443"]` admit this WHATWG-parsed URL?
#[must_use]
pub fn allowlist_admits(u: &url::Url) -> bool {
    let Some(host) = u.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    let sub_of_example = host == "example.com" || host.ends_with(".example.com");
    (sub_of_example && u.port().is_none()) || (host == "exact.org" && u.port() == Some(8443))
}

/// True if the bytes hold an ASCII control character, ASCII whitespace or a backslash, or (read as
/// UTF-8) any other control character, such as the C1 controls U+0080–U+009F (finding F8).
#[must_use]
pub fn has_ctl_ws_backslash(b: &[u8]) -> bool {
    b.iter().any(|&c| c <= b' ' || c == 0x7f || c == b'\\') || has_control(b)
}

/// True if the bytes, read as UTF-8, hold a control character (ASCII or not).
#[must_use]
pub fn has_control(b: &[u8]) -> bool {
    String::from_utf8_lossy(b).chars().any(char::is_control)
}

/// Findings written up in `fuzz/RESULTS.md` that the core has not fixed yet are tolerated (the input is
/// still run, only that one assertion is skipped) so that a campaign or CI smoke keeps testing everything
/// else. `PORTCULLIS_FUZZ_STRICT=1` asserts them too (use it to confirm a fix, then delete the guard).
#[must_use]
pub fn tolerate_known(_finding: &str) -> bool {
    static STRICT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    !*STRICT.get_or_init(|| std::env::var_os("PORTCULLIS_FUZZ_STRICT").is_some_and(|v| v == "1"))
}
