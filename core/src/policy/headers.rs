//! Identity headers: the ones we send upstream, and the stripping of any a client tried to send itself.
//!
//! Upstreams trust these headers, so a client must never be able to set them: every spelling is removed
//! (any case, `_` for `-` as CGI/WSGI upstreams fold them together, every duplicate) before ours are added.

use alloc::string::String;
use alloc::vec::Vec;

use crate::decision::Header;

/// Headers Portcullis owns on the way upstream, lowercase with `-`.
pub const IDENTITY_HEADERS: &[&str] = &[
    "x-forwarded-user",
    "x-forwarded-email",
    "x-forwarded-groups",
    "x-forwarded-preferred-username",
    "x-forwarded-access-token",
    "x-auth-request-user",
    "x-auth-request-email",
    "x-auth-request-groups",
    "x-auth-request-preferred-username",
    "x-auth-request-access-token",
];

/// True if `name`, folded (ASCII lowercase, `_` → `-`), equals `canonical` (already lowercase with `-`).
#[must_use]
pub fn folds_to(name: &str, canonical: &str) -> bool {
    name.len() == canonical.len()
        && name.bytes().zip(canonical.bytes()).all(|(a, b)| {
            let a = if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            };
            a == b
        })
}

/// The names (as sent) of every request header that spoofs an identity header, each listed once.
/// `also_authorization` adds `Authorization` when we are the ones who set it.
#[must_use]
pub fn spoofed_headers(headers: &[(String, String)], also_authorization: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in headers {
        let owned = IDENTITY_HEADERS.iter().any(|c| folds_to(name, c))
            || (also_authorization && folds_to(name, "authorization"));
        if owned && !out.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            out.push(name.clone());
        }
    }
    out
}

/// The `Cookie` header value with our cookies (`is_ours`) removed, or `None` if nothing of ours was there
/// (then the header is left untouched). `Some("")` means remove the header entirely.
#[must_use]
pub fn strip_cookies(
    headers: &[(String, String)],
    is_ours: impl Fn(&str) -> bool,
) -> Option<String> {
    let mut removed = false;
    let mut kept = String::new();
    for (name, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
    {
        let _ = name;
        for pair in value.split(';') {
            let cookie_name = pair.split_once('=').map_or(pair, |(n, _)| n).trim();
            if cookie_name.is_empty() {
                continue;
            }
            if is_ours(cookie_name) {
                removed = true;
            } else {
                if !kept.is_empty() {
                    kept.push_str("; ");
                }
                kept.push_str(pair.trim());
            }
        }
    }
    removed.then_some(kept)
}

/// A header value safe to send: control characters (CR, LF, NUL, ...) dropped so an IdP claim can never
/// split or corrupt a header.
#[must_use]
pub fn sanitize_value(v: &str) -> String {
    v.chars().filter(|c| !c.is_control()).collect()
}

/// Pushes `(name, sanitized value)` unless the value is empty.
pub fn push_identity(out: &mut Vec<Header>, name: &str, value: &str) {
    let v = sanitize_value(value);
    if !v.is_empty() {
        out.push((String::from(name), v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn every_spelling_of_an_identity_header_is_found_once() {
        let req = h(&[
            ("x-forwarded-user", "a"),
            ("X-Forwarded-User", "b"),
            ("x_forwarded_email", "c"),
            ("X_AUTH_REQUEST_USER", "d"),
            ("x-forwarded-groups", "admins"),
            ("x-forwarded-for", "1.2.3.4"),
            ("authorization", "Bearer x"),
            ("x-forwarded-userx", "no"),
        ]);
        let s = spoofed_headers(&req, false);
        assert_eq!(
            s,
            vec![
                "x-forwarded-user",
                "x_forwarded_email",
                "X_AUTH_REQUEST_USER",
                "x-forwarded-groups"
            ]
        );
        assert!(spoofed_headers(&req, true).contains(&"authorization".to_string()));
    }

    #[test]
    fn our_cookies_are_removed_from_the_cookie_header() {
        let req = h(&[
            ("cookie", "a=1; _pc=xyz; b=2"),
            ("cookie", "_pc_login_abc=q"),
        ]);
        let ours = |n: &str| n == "_pc" || n.starts_with("_pc_login_");
        assert_eq!(strip_cookies(&req, ours).as_deref(), Some("a=1; b=2"));
        assert_eq!(
            strip_cookies(&h(&[("cookie", "_pc=1")]), ours).as_deref(),
            Some("")
        );
        assert_eq!(strip_cookies(&h(&[("cookie", "a=1")]), ours), None);
    }

    #[test]
    fn values_lose_control_characters() {
        assert_eq!(sanitize_value("alice\r\nX-Evil: 1"), "aliceX-Evil: 1");
    }
}
