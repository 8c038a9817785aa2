//! `validate_redirect(target, [".example.com", "exact.org:8443"])`.
//!
//! Properties of every accepted target (which must come back unchanged):
//! - either it starts with exactly one `/` (not `//`, not `/\`), holds no control character, whitespace
//!   or backslash as written, its path part holds none of those (nor a leading `//` or `/\`) after
//!   percent-decoding, its query/fragment holds no control character after percent-decoding, and a
//!   WHATWG parser (the `url` crate, as a browser reads a `Location`) resolves it against
//!   `https://app.test/` to the same host, scheme and port;
//! - or it is an absolute http(s) URL that the `url` crate parses, without userinfo, whose host and port
//!   the allowlist admits (checked here independently: `example.com` or a subdomain on the default port,
//!   or `exact.org:8443`), with no control character, whitespace or backslash even after decoding.
//!
//! Documented design note: the query of a same-host target may hold *encoded* spaces and backslashes
//! (`/x?q=a%20b`); only control characters are refused there after decoding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::policy::redirect::validate_redirect;
use portcullis_fuzz::{
    allowlist_admits, has_control, has_ctl_ws_backslash, lenient_percent_decode,
};
use std::sync::OnceLock;

fn allowed() -> &'static [String] {
    static A: OnceLock<Vec<String>> = OnceLock::new();
    A.get_or_init(|| vec![".example.com".to_string(), "exact.org:8443".to_string()])
}

fn base() -> &'static url::Url {
    static B: OnceLock<url::Url> = OnceLock::new();
    B.get_or_init(|| url::Url::parse("https://app.test/").unwrap())
}

fn check_same_host(t: &str) {
    let b = t.as_bytes();
    assert!(
        b[0] == b'/' && b.get(1) != Some(&b'/') && b.get(1) != Some(&b'\\'),
        "{t:?}"
    );
    assert!(
        !has_ctl_ws_backslash(b),
        "{t:?} holds a control char, whitespace or backslash"
    );
    let split = t.find(['?', '#']).unwrap_or(t.len());
    let (path, rest) = t.split_at(split);
    let dp = lenient_percent_decode(path.as_bytes());
    assert!(
        dp.first() == Some(&b'/') && dp.get(1) != Some(&b'/') && dp.get(1) != Some(&b'\\'),
        "{t:?} decodes to {dp:?}"
    );
    assert!(!has_ctl_ws_backslash(&dp), "{t:?} decodes to {dp:?}");
    let dr = lenient_percent_decode(rest.as_bytes());
    assert!(!has_control(&dr), "{t:?} query decodes to {dr:?}");
    let u = base()
        .join(t)
        .unwrap_or_else(|e| panic!("{t:?} accepted but WHATWG refuses it: {e}"));
    assert_eq!(
        (u.scheme(), u.host_str(), u.port()),
        ("https", Some("app.test"), None),
        "{t:?} leaves the host: {u}"
    );
}

fn check_absolute(t: &str) {
    assert!(!has_ctl_ws_backslash(t.as_bytes()), "{t:?}");
    let d = lenient_percent_decode(t.as_bytes());
    assert!(!has_ctl_ws_backslash(&d), "{t:?} decodes to {d:?}");
    let u =
        url::Url::parse(t).unwrap_or_else(|e| panic!("{t:?} accepted but WHATWG refuses it: {e}"));
    assert!(matches!(u.scheme(), "http" | "https"), "{t:?}");
    assert!(
        u.username().is_empty() && u.password().is_none(),
        "{t:?} has userinfo"
    );
    assert!(
        allowlist_admits(&u),
        "{t:?} accepted, but WHATWG reads host {:?} port {:?}",
        u.host_str(),
        u.port()
    );
    // Relative resolution must not change it either (what a browser does with a Location).
    let r = base().join(t).unwrap();
    assert_eq!((r.host_str(), r.port()), (u.host_str(), u.port()));
}

fuzz_target!(|data: &[u8]| {
    let t = String::from_utf8_lossy(data);
    let Some(v) = validate_redirect(&t, allowed()) else {
        return;
    };
    assert_eq!(v, *t);
    if t.starts_with('/') {
        check_same_host(&t);
    } else {
        check_absolute(&t);
    }
});
