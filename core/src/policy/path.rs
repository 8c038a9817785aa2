//! Path normalization for public-path matching.
//!
//! A request is only let through without authentication when its *normalized* path matches a public
//! entry, so `/public/../admin`, `/public/%2e%2e/admin` or `/public//../admin` never count as public.
//! Anything an upstream might read differently from us is refused outright (the path is then simply not
//! public): encoded `/` or `\`, a raw `\`, `;` path parameters (`/public/..;/admin` is `/admin` to
//! Tomcat), NUL and control characters, and malformed escapes.

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
            } else if matches!(c, b'/' | b'\\' | b';') || c < 0x20 || c == 0x7f {
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
    // 2. Resolve segments: empty and `.` dropped, `..` pops.
    let text = String::from_utf8(decoded).ok()?;
    let mut out: Vec<&str> = Vec::new();
    for seg in text.split('/') {
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

/// The configured public paths. An entry ending in `*` is a prefix (`/static/*` matches `/static/` and
/// everything below it); any other entry matches exactly.
#[derive(Debug, Clone, Default)]
pub struct PublicPaths {
    exact: Vec<String>,
    prefixes: Vec<String>,
}

impl PublicPaths {
    /// Builds the matcher. Entries must be normalized paths (checked by the config loader).
    #[must_use]
    pub fn new(entries: &[String]) -> Self {
        let mut p = PublicPaths::default();
        for e in entries {
            match e.strip_suffix('*') {
                Some(prefix) => p.prefixes.push(String::from(prefix)),
                None => p.exact.push(e.clone()),
            }
        }
        p
    }

    /// True if nothing is public (the common case; skips normalization on the hot path).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// Whether the raw request path (no query) is public.
    #[must_use]
    pub fn matches(&self, raw_path: &str) -> bool {
        if self.is_empty() {
            return false;
        }
        let Some(norm) = normalize_path(raw_path) else {
            return false;
        };
        self.exact.contains(&norm) || self.prefixes.iter().any(|p| norm.starts_with(p.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn normalization_resolves_dots_merges_slashes_and_decodes_unreserved() {
        for (raw, want) in [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a//b", "/a/b"),
            ("/a/./b", "/a/b"),
            ("/a/../b", "/b"),
            ("/../../b", "/b"),
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
            "a/b",
            "",
            "/a b",
        ] {
            assert_eq!(normalize_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn traversal_out_of_a_public_prefix_is_not_public() {
        let p = PublicPaths::new(&["/public/*".to_string(), "/healthz".to_string()]);
        assert!(p.matches("/public/"));
        assert!(p.matches("/public/a/b.css"));
        assert!(p.matches("/healthz"));
        assert!(p.matches("//public//x"));
        for not_public in [
            "/public",
            "/healthz/",
            "/healthzx",
            "/public/../admin",
            "/public/%2e%2e/admin",
            "/public/%2E%2E/admin",
            "/public/..%2fadmin",
            "/public%2f../admin",
            "/public/..;/admin",
            "/public/.%2e/admin",
            "/public\\..\\admin",
            "/admin",
        ] {
            assert!(!p.matches(not_public), "{not_public}");
        }
        assert!(!PublicPaths::new(&[]).matches("/public/"));
    }
}
