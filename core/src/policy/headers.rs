//! Identity headers: the ones we send upstream, and the stripping of any a client tried to send itself.
//!
//! Upstreams trust these headers, so a client must never be able to set them: every spelling is removed
//! (any case, `_` for `-` as CGI/WSGI upstreams fold them together, every duplicate) before ours are added.

use alloc::string::String;
use alloc::vec::Vec;

use crate::decision::Header;
use crate::request::{cookie_pairs, RawHeader};

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
pub fn folds_to(name: &[u8], canonical: &str) -> bool {
    name.len() == canonical.len()
        && name.iter().zip(canonical.bytes()).all(|(&a, b)| {
            let a = if a == b'_' {
                b'-'
            } else {
                a.to_ascii_lowercase()
            };
            a == b
        })
}

/// The names (as sent) of every request header that spoofs one of `owned` (lowercase with `-`: the
/// identity headers and every mapped one), each listed once. `also_authorization` adds `Authorization`
/// when we are the ones who set it. A name is compared with earlier finds only when it is itself a spoof.
#[must_use]
pub fn spoofed_headers(
    headers: &[RawHeader<'_>],
    owned: &[String],
    also_authorization: bool,
) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (name, _) in headers {
        // Owned header names are ASCII, so a name that folds to one is ASCII too.
        let owned = owned.iter().any(|c| folds_to(name, c))
            || (also_authorization && folds_to(name, "authorization"));
        if !owned {
            continue;
        }
        let Ok(name) = core::str::from_utf8(name) else {
            continue;
        };
        // Envoy removes a header by case-insensitive name, so one entry per spelling up to case.
        if !out.iter().any(|n| n.eq_ignore_ascii_case(name)) {
            out.push(String::from(name));
        }
    }
    out
}

/// The `Cookie` header value with our cookies (`is_ours`) removed, or `None` if nothing of ours was there
/// (then the header is left untouched). `Some(empty)` means remove the header entirely. Other cookies
/// are kept byte for byte, UTF-8 or not.
#[must_use]
pub fn strip_cookies(headers: &[RawHeader<'_>], is_ours: impl Fn(&str) -> bool) -> Option<Vec<u8>> {
    let mut removed = false;
    let mut kept: Vec<u8> = Vec::new();
    for (_, value) in headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
    {
        for c in cookie_pairs(value) {
            if c.value.is_some() && core::str::from_utf8(c.name).is_ok_and(&is_ours) {
                removed = true;
            } else {
                if !kept.is_empty() {
                    kept.extend_from_slice(b"; ");
                }
                kept.extend_from_slice(c.pair);
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

    fn h<'a>(pairs: &[(&'a str, &'a str)]) -> Vec<RawHeader<'a>> {
        pairs
            .iter()
            .map(|(a, b)| (a.as_bytes(), b.as_bytes()))
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
        let owned: Vec<String> = IDENTITY_HEADERS.iter().map(|s| s.to_string()).collect();
        let s = spoofed_headers(&req, &owned, false);
        assert_eq!(
            s,
            vec![
                "x-forwarded-user",
                "x_forwarded_email",
                "X_AUTH_REQUEST_USER",
                "x-forwarded-groups"
            ]
        );
        assert!(spoofed_headers(&req, &owned, true).contains(&"authorization".to_string()));
    }

    #[test]
    fn our_cookies_are_removed_from_the_cookie_header() {
        let req = h(&[
            ("cookie", "a=1; _pc=xyz; b=2"),
            ("cookie", "_pc_login_abc=q"),
        ]);
        let ours = |n: &str| n == "_pc" || n.starts_with("_pc_login_");
        assert_eq!(strip_cookies(&req, ours).as_deref(), Some(&b"a=1; b=2"[..]));
        assert_eq!(
            strip_cookies(&h(&[("cookie", "_pc=1")]), ours).as_deref(),
            Some(&b""[..])
        );
        assert_eq!(strip_cookies(&h(&[("cookie", "a=1")]), ours), None);
        // Foreign cookies that are not UTF-8 survive byte for byte.
        let latin: Vec<RawHeader<'_>> = vec![(&b"cookie"[..], &b"t=caf\xe9;  _pc=x ;\xff"[..])];
        assert_eq!(
            strip_cookies(&latin, ours).as_deref(),
            Some(&b"t=caf\xe9; \xff"[..])
        );
    }

    #[test]
    fn values_lose_control_characters() {
        assert_eq!(sanitize_value("alice\r\nX-Evil: 1"), "aliceX-Evil: 1");
    }
}
