//! `parse_cookie_header`, `Request::from_headers`, `strip_cookies` and `spoofed_headers` over arbitrary
//! raw header pairs (any bytes, not just UTF-8).
//!
//! Properties:
//! - `parse_cookie_header` yields non-empty names without `;`/`=`, trimmed of SP/HTAB only, values
//!   without `;`, all borrowed from the input, exactly the UTF-8 pairs of `cookie_pairs`;
//! - `Request::from_headers` agrees with a simple model: `malformed` exactly when a pseudo-header or the
//!   first `Host` is not UTF-8, scheme `http`/`https` as documented, `:authority` else first `Host`,
//!   `cookies()` = every `Cookie` header parsed in order, `header()` = first UTF-8 value or `None`;
//! - `strip_cookies` with the engine's predicate (`Config::is_our_cookie`): afterwards no cookie the
//!   core would read, and no pair at all, has one of our names, and every other cookie is kept, in
//!   order;
//! - removing `spoofed_headers` leaves no header that folds (case, `_`) to an identity header, and the
//!   list names only such headers, once each up to case.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::decision::HeaderEdits;
use portcullis_core::policy::headers::{spoofed_headers, strip_cookies};
use portcullis_core::request::{
    cookie_pairs, parse_cookie_header, parse_header_map, RawHeader, Request,
};
use portcullis_fuzz::{is_identity_name, is_pc_cookie};

/// Input: a flags byte (bit 0: `also_authorization`), then the headers, either as a proxy-wasm
/// serialized header map (any bytes) or, if the rest does not parse as one, as `name:value` lines split
/// on `\n` (the first `:` after the first byte separates name and value, so `:path:/x` works).
fn headers_of(data: &[u8]) -> (bool, Vec<RawHeader<'_>>) {
    let Some((&flags, rest)) = data.split_first() else {
        return (false, Vec::new());
    };
    let headers = match parse_header_map(rest) {
        Some(h) if !h.is_empty() => h,
        _ => rest
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| match l.iter().skip(1).position(|&b| b == b':') {
                Some(i) => (&l[..=i], &l[i + 2..]),
                None => (l, &l[l.len()..]),
            })
            .collect(),
    };
    (flags & 1 == 1, headers)
}

fn is_ours(n: &str) -> bool {
    // The engine's predicate for cookie name `_pc`, as built from a real configuration.
    portcullis_fuzz::engine::config().is_our_cookie(n)
}

fn sub_of(outer: &[u8], inner: &str) -> bool {
    let (o, i) = (outer.as_ptr() as usize, inner.as_ptr() as usize);
    inner.is_empty() || (i >= o && i + inner.len() <= o + outer.len())
}

fn ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn check_cookie_header(value: &[u8]) {
    let pieces = value.split(|&b| b == b';').count();
    let mut n = 0;
    for (name, v) in parse_cookie_header(value) {
        n += 1;
        assert!(!name.is_empty(), "empty cookie name from {value:?}");
        assert!(!name.contains([';', '=']), "name {name:?} from {value:?}");
        assert!(!v.contains(';'), "value {v:?} from {value:?}");
        // Only SP and HTAB are trimmed (RFC 6265bis §5.6), nothing else (finding F0).
        let nb = name.as_bytes();
        assert!(
            !ows(nb[0]) && !ows(nb[nb.len() - 1]),
            "untrimmed name {name:?} from {value:?}"
        );
        assert!(
            sub_of(value, name) && sub_of(value, v),
            "not borrowed from the input"
        );
    }
    assert!(n <= pieces);
    // The one splitting that both the reader and the stripper use.
    let mut readable = 0;
    for c in cookie_pairs(value) {
        assert!(!c.pair.is_empty() && !c.pair.contains(&b';'), "{c:?}");
        for part in [Some(c.pair), Some(c.name), c.value].into_iter().flatten() {
            if let (Some(&f), Some(&l)) = (part.first(), part.last()) {
                assert!(!ows(f) && !ows(l), "untrimmed {c:?}");
            }
        }
        let utf8 = |b: &[u8]| std::str::from_utf8(b).is_ok();
        if !c.name.is_empty() && utf8(c.name) && c.value.is_some_and(utf8) {
            readable += 1;
        }
    }
    assert_eq!(
        readable, n,
        "parse_cookie_header reads exactly the UTF-8 pairs with `=` of {value:?}"
    );
}

/// The documented reading of the pseudo-headers, written independently of `from_headers`.
fn model(headers: &[RawHeader<'_>]) -> (bool, String, String, String, &'static str) {
    let mut malformed = false;
    let last_utf8 = |name: &[u8], malformed: &mut bool| -> String {
        let mut v = String::new();
        for (n, val) in headers.iter().filter(|(n, _)| *n == name) {
            let _ = n;
            match std::str::from_utf8(val) {
                Ok(s) => v = s.to_string(),
                Err(_) => *malformed = true,
            }
        }
        v
    };
    let method = last_utf8(b":method", &mut malformed);
    let path = last_utf8(b":path", &mut malformed);
    let mut authority = last_utf8(b":authority", &mut malformed);
    let scheme = last_utf8(b":scheme", &mut malformed);
    if let Some((_, h)) = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"host"))
    {
        match std::str::from_utf8(h) {
            Ok(h) if authority.is_empty() => authority = h.to_string(),
            Ok(_) => {}
            Err(_) => malformed = true,
        }
    }
    let proto = headers
        .iter()
        .rev()
        .find(|(n, _)| n.eq_ignore_ascii_case(b"x-forwarded-proto"))
        .map(|(_, v)| std::str::from_utf8(v).unwrap_or("").to_ascii_lowercase());
    let https = match proto.as_deref() {
        Some("https") => true,
        Some("http") => false,
        _ => scheme == "https",
    };
    (
        malformed,
        method,
        path,
        authority,
        if https { "https" } else { "http" },
    )
}

fn check_request(headers: &[RawHeader<'_>]) {
    let req = Request::from_headers(headers);
    let (malformed, method, path, authority, scheme) = model(headers);
    assert_eq!(req.malformed, malformed, "malformed");
    assert_eq!(req.scheme, scheme, "scheme");
    assert_eq!(req.method, method, "method");
    assert_eq!(req.path, path, "path");
    assert_eq!(req.authority, authority, "authority");
    let want: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
        .flat_map(|(_, v)| parse_cookie_header(v))
        .collect();
    assert_eq!(req.cookies().collect::<Vec<_>>(), want);
    for name in ["accept", "cookie", "sec-fetch-mode", "X-Requested-With"] {
        let first = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| std::str::from_utf8(v).ok());
        assert_eq!(req.header(name), first, "header({name})");
    }
    let (p, q) = (req.path_only(), req.query());
    assert!(!p.contains(['?', '#']) && !q.contains('#'));
}

fn check_strip(headers: &[RawHeader<'_>]) {
    let cookie_values: Vec<&[u8]> = headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
        .map(|(_, v)| *v)
        .collect();
    let before: Vec<(&str, &str)> = cookie_values
        .iter()
        .flat_map(|v| parse_cookie_header(v))
        .collect();
    let result = strip_cookies(headers, is_ours);
    // What an upstream receives: the rebuilt header, or the original headers when nothing was removed.
    let after_values: Vec<Vec<u8>> = match &result {
        Some(v) => vec![v.clone()],
        None => cookie_values.iter().map(|v| v.to_vec()).collect(),
    };
    let after: Vec<(&str, &str)> = after_values
        .iter()
        .flat_map(|v| parse_cookie_header(v))
        .collect();
    for (n, v) in &after {
        assert!(
            !is_ours(n),
            "our cookie {n:?}={v:?} survives strip_cookies (core's own cookie parser reads it); \
             input cookie headers {cookie_values:?}, result {result:?}"
        );
    }
    // Nothing named exactly like one of ours survives, whatever its value's bytes.
    for v in &after_values {
        for c in cookie_pairs(v) {
            assert!(
                c.value.is_none() || !std::str::from_utf8(c.name).is_ok_and(is_pc_cookie),
                "our cookie {:?} survives strip_cookies; input {cookie_values:?}, result {result:?}",
                String::from_utf8_lossy(c.name)
            );
        }
    }
    let kept: Vec<(&str, &str)> = before
        .iter()
        .copied()
        .filter(|(n, _)| !is_ours(n))
        .collect();
    assert_eq!(
        after, kept,
        "other cookies must be kept, in order; input {cookie_values:?}"
    );
    if let Some(v) = &result {
        assert!(!v.starts_with(b"; ") && !v.ends_with(b"; "), "{v:?}");
    }
}

fn check_spoofed(headers: &[RawHeader<'_>], also_authorization: bool) {
    let identity: Vec<String> = portcullis_core::policy::headers::IDENTITY_HEADERS
        .iter()
        .map(|s| s.to_string())
        .collect();
    let names = spoofed_headers(headers, &identity, also_authorization);
    let owned = |n: &[u8]| {
        is_identity_name(n) || (also_authorization && n.eq_ignore_ascii_case(b"authorization"))
    };
    for (i, n) in names.iter().enumerate() {
        assert!(owned(n.as_bytes()), "{n:?} is not an identity header");
        assert!(
            !names[i + 1..].iter().any(|m| m.eq_ignore_ascii_case(n)),
            "{n:?} listed twice"
        );
    }
    let edits = HeaderEdits {
        remove: names,
        ..HeaderEdits::default()
    };
    for (n, v) in edits.apply_raw(headers) {
        assert!(!owned(&n), "spoofed {n:?}: {v:?} survives removal");
    }
}

fuzz_target!(|data: &[u8]| {
    let (also_authorization, mut headers) = headers_of(data);
    headers.truncate(64);
    for (_, v) in &headers {
        check_cookie_header(v);
    }
    check_request(&headers);
    check_strip(&headers);
    check_spoofed(&headers, also_authorization);
});
