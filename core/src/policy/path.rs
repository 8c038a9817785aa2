//! Path normalization for rule matching.
//!
//! A request is only let through without authentication when its *normalized* path matches a public
//! entry, so `/public/../admin`, `/public/%2e%2e/admin` or `/public//../admin` never count as public.
//! Anything an upstream might read differently from us is refused outright (the path is then simply not
//! public): empty segments (`//`: `/p//../public/` is `/public/` to a reader that merges slashes and
//! `/p/public/` to one that follows RFC 3986), encoded `/` or `\`, a raw `\`, `;` path parameters (`/public/..;/admin` is `/admin` to
//! Tomcat), NUL and control characters, malformed escapes, double encoding (`%25`: an upstream that
//! decodes twice reads `/public/%252e%252e/admin` as `/admin`), and escapes of bytes that are not valid
//! UTF-8 once decoded (overlong forms such as `%c0%ae` for `.`, which lenient decoders turn into dots).

use alloc::string::String;
use alloc::vec::Vec;

use crate::request::hex_val;

/// The normalized form of a path (no query): unreserved percent-escapes decoded, `//` merged, dot
/// segments resolved (RFC 3986 §5.2.4). `None` when the path must not be interpreted at all.
#[must_use]
pub fn normalize_path(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return None;
    }
    // 1. Decode only unreserved escapes (RFC 3986 §6.2.2.2); refuse encoded separators.
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hi = hex_val(*bytes.get(i + 1)?)?;
            let lo = hex_val(*bytes.get(i + 2)?)?;
            let c = hi << 4 | lo;
            if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                decoded.push(c);
            } else if matches!(c, b'/' | b'\\' | b';' | b'%') || c < 0x20 || c == 0x7f {
                return None;
            } else {
                decoded.extend_from_slice(&bytes[i..i + 3]);
            }
            i += 3;
        } else if b == b'\\' || b == b';' || b <= b' ' || b == 0x7f {
            return None;
        } else {
            decoded.push(b);
            i += 1;
        }
    }
    // Escaped bytes above 0x7f must decode to valid UTF-8 (this refuses overlong `%c0%ae` forms).
    if bytes.contains(&b'%') && core::str::from_utf8(&percent_decode_all(bytes)?).is_err() {
        return None;
    }
    // 2. Resolve segments: `.` dropped, `..` pops. An empty segment (`//`) is refused: RFC 3986 and
    //    WHATWG keep it as a segment (`/p//../public/` is `/p/public/` to them), Envoy's merge_slashes
    //    and many apps drop it (`/public/`); a path two readers resolve differently is never public.
    let text = String::from_utf8(decoded).ok()?;
    if text.contains("//") {
        return None;
    }
    let mut out: Vec<&str> = Vec::new();
    for seg in text.split('/') {
        // A Windows drive letter (`c:`, `x|`): WHATWG keeps it where `..` would pop it for a file URL,
        // and the `url` crate (an upstream's parser) does so for http too: `/x|/../healthz`.
        let b = seg.as_bytes();
        let drive = |rest: &[u8]| {
            matches!(rest, b":" | b"|")
                || rest.eq_ignore_ascii_case(b"%3a")
                || rest.eq_ignore_ascii_case(b"%7c")
        };
        if b.first().is_some_and(u8::is_ascii_alphabetic) && drive(&b[1..]) {
            return None;
        }
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let mut norm = String::with_capacity(text.len());
    for s in &out {
        norm.push('/');
        norm.push_str(s);
    }
    if norm.is_empty()
        || (text.ends_with('/') || text.ends_with("/.") || text.ends_with("/..")) && !out.is_empty()
    {
        norm.push('/');
    }
    Some(norm)
}

fn percent_decode_all(bytes: &[u8]) -> Option<Vec<u8>> {
    crate::request::percent_decode_bytes(bytes, false)
}

/// True when `normalize_path(p) == Some(p)` is certain without doing the work: an absolute path with
/// no escapes, separators to refuse, empty segments or dot segments.
pub fn already_normal(p: &str) -> bool {
    let b = p.as_bytes();
    if b.first() != Some(&b'/') {
        return false;
    }
    let mut prev_slash = false;
    for (i, &c) in b.iter().enumerate() {
        match c {
            // `:` and `|` may form a drive-letter segment, which normalize_path refuses.
            b'%' | b'\\' | b';' | b':' | b'|' => return false,
            c if c <= b' ' || c == 0x7f || c >= 0x80 => return false,
            b'/' if prev_slash => return false,
            b'.' if prev_slash => {
                // A segment starting with `.`: only `.` and `..` need work; `.well-known` is fine.
                let rest = &b[i..];
                let seg_end = rest.iter().position(|&x| x == b'/').unwrap_or(rest.len());
                if rest[..seg_end] == *b"." || rest[..seg_end] == *b".." {
                    return false;
                }
            }
            _ => {}
        }
        prev_slash = c == b'/';
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalization_resolves_dots_merges_slashes_and_decodes_unreserved() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../b", "/b"),
            ("/a/b/../../..", "/"),
            ("/a/b/", "/a/b/"),
            ("/a/b/..", "/a/"),
            ("/%61%62c", "/abc"),
            ("/a/%2e%2e/b", "/b"),
            ("/a/%2E/b", "/a/b"),
            ("/a%20b", "/a%20b"),
            ("/a/..", "/"),
        ] {
            assert_eq!(normalize_path(raw).as_deref(), Some(want), "{raw}");
        }
    }

    #[test]
    fn the_fast_path_agrees_with_normalization() {
        for p in [
            "/",
            "/a/b",
            "/a/b/",
            "/.well-known/x",
            "/a..b/c",
            "/a/.x",
            "/public/a|",
            "/public/c:",
            "/x:y/z",
            "/a//b",
            "/a/./b",
            "/a/../b",
            "/a/.",
            "/a/..",
            "/%61",
            "/a;b",
            "/a\\b",
            "/\u{fc}",
            "",
            "a",
        ] {
            if already_normal(p) {
                assert_eq!(normalize_path(p).as_deref(), Some(p), "{p}");
            }
        }
        assert!(
            already_normal("/app/page") && !already_normal("/a//b") && !already_normal("/a/../b")
        );
    }

    #[test]
    fn ambiguous_paths_are_refused() {
        for bad in [
            "/a%2Fb",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "/public/..;/admin",
            "/a%3b/b",
            "/a%00",
            "/a%zz",
            "/a%2",
            "/a%25",
            "/a//b",
            "//a",
            "/p//../public/",
            "/x|/../healthz",
            "/c:/../public/x",
            "/public/C%3A/x",
            "/a/%2e%2e//b",
            "/a%252f",
            "/%c0%af",
            "/%c0%ae%c0%ae/",
            "/%80",
            "a/b",
            "",
            "/a b",
        ] {
            assert_eq!(normalize_path(bad), None, "{bad:?}");
        }
    }
}
