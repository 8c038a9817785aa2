//! The request as the core reads it, and the small parsers for its parts: cookies, query strings and
//! percent-encoding. Everything here is total: bad input yields `None`/skips, never a panic.

use alloc::string::String;
use alloc::vec::Vec;

/// A downstream request's headers, including the HTTP/2-style pseudo-headers `:method`, `:path`,
/// `:authority` and `:scheme` (Envoy hands them over this way; host-shim builds them).
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:path`, including the query string.
    pub path: &'a str,
    /// `:authority` (Host).
    pub authority: &'a str,
    /// `x-forwarded-proto` if present (TLS-terminating load balancer), else `:scheme`, else `http`.
    pub scheme: &'a str,
    /// All headers, pseudo-headers included, as received.
    pub headers: &'a [(String, String)],
}

impl<'a> Request<'a> {
    /// Reads the pseudo-headers out of a header list. Missing ones become empty strings (and then fail
    /// whatever check needs them).
    #[must_use]
    pub fn from_headers(headers: &'a [(String, String)]) -> Self {
        let mut req = Request {
            method: "",
            path: "",
            authority: "",
            scheme: "",
            headers,
        };
        let mut forwarded_proto = "";
        for (name, value) in headers {
            match name.as_str() {
                ":method" => req.method = value,
                ":path" => req.path = value,
                ":authority" => req.authority = value,
                ":scheme" => req.scheme = value,
                n if n.eq_ignore_ascii_case("host") && req.authority.is_empty() => {
                    req.authority = value
                }
                n if n.eq_ignore_ascii_case("x-forwarded-proto") => forwarded_proto = value,
                _ => {}
            }
        }
        // The redirect URI is derived from this, so only the two schemes we can produce are accepted.
        req.scheme = if forwarded_proto.eq_ignore_ascii_case("https")
            || (!forwarded_proto.eq_ignore_ascii_case("http") && req.scheme == "https")
        {
            "https"
        } else {
            "http"
        };
        req
    }

    /// The first value of a header (case-insensitive name).
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path without query.
    #[must_use]
    pub fn path_only(&self) -> &'a str {
        split_query(self.path).0
    }

    /// The query string (without `?`), empty if none.
    #[must_use]
    pub fn query(&self) -> &'a str {
        split_query(self.path).1
    }

    /// Every cookie in every `Cookie` header, in the order sent (RFC 6265 §5.4: oldest first).
    pub fn cookies(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .flat_map(|(_, v)| parse_cookie_header(v))
    }

    /// The first cookie with this exact name.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Splits `path?query#fragment` into path and query (fragment dropped).
#[must_use]
pub fn split_query(path: &str) -> (&str, &str) {
    let path = path.split('#').next().unwrap_or("");
    match path.split_once('?') {
        Some((p, q)) => (p, q),
        None => (path, ""),
    }
}

/// Parses one `Cookie` header value: `a=b; c=d`. Pairs without `=` are skipped.
pub fn parse_cookie_header(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value.split(';').filter_map(|pair| {
        let (n, v) = pair.split_once('=')?;
        let n = n.trim();
        let v = v.trim().trim_matches('"');
        if n.is_empty() {
            None
        } else {
            Some((n, v))
        }
    })
}

/// Why a query parameter could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryError {
    /// The parameter appears more than once (ambiguous: refused rather than guessed).
    Duplicate,
    /// The value is not valid percent-encoded UTF-8.
    BadEncoding,
}

/// The decoded value of a query parameter that must appear at most once.
pub fn query_param(query: &str, name: &str) -> Result<Option<String>, QueryError> {
    let mut found = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        if form_decode(k).as_deref() != Some(name) {
            continue;
        }
        if found.is_some() {
            return Err(QueryError::Duplicate);
        }
        found = Some(form_decode(v).ok_or(QueryError::BadEncoding)?);
    }
    Ok(found)
}

/// Decodes `application/x-www-form-urlencoded` (`+` is a space). `None` on a bad escape or bad UTF-8.
#[must_use]
pub fn form_decode(s: &str) -> Option<String> {
    let bytes = percent_decode_bytes(s.as_bytes(), true)?;
    String::from_utf8(bytes).ok()
}

/// Decodes `%XX` escapes. `None` on a malformed escape.
#[must_use]
pub fn percent_decode_bytes(s: &[u8], plus_is_space: bool) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'%' => {
                let hi = hex_val(*s.get(i + 1)?)?;
                let lo = hex_val(*s.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 3;
            }
            b'+' if plus_is_space => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

pub(crate) fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (safe for query values and forms).
#[must_use]
pub fn encode_component(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 15)]));
        }
    }
    out
}

/// Builds `a=b&c=d` with both sides percent-encoded.
#[must_use]
pub fn encode_pairs(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&encode_component(k));
        out.push('=');
        out.push_str(&encode_component(v));
    }
    out
}

/// An absolute `http(s)` URL split into its parts, parsed strictly: no userinfo, no backslash, no
/// whitespace or control characters, a host of `[a-z0-9.-]` (or a bracketed IPv6 literal) and an
/// optional numeric port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUrl<'a> {
    /// `http` or `https` (lowercased by the caller's comparison).
    pub scheme: &'a str,
    /// `host[:port]` as written.
    pub authority: &'a str,
    /// The host, without port.
    pub host: &'a str,
    /// Path and query; `/` when empty.
    pub path_and_query: &'a str,
}

impl<'a> AbsoluteUrl<'a> {
    /// Parses strictly; `None` for anything unusual.
    #[must_use]
    pub fn parse(url: &'a str) -> Option<Self> {
        if url.bytes().any(|b| b <= b' ' || b == 0x7f || b == b'\\') {
            return None;
        }
        let (scheme, rest) = url.split_once("://")?;
        if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
            return None;
        }
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let host = if let Some(v6) = authority.strip_prefix('[') {
            let close = v6.find(']')?;
            let after = &v6[close + 1..];
            if !(after.is_empty() || valid_port(after.strip_prefix(':')?)) {
                return None;
            }
            let inner = &v6[..close];
            if inner.is_empty()
                || !inner
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
            {
                return None;
            }
            &authority[..close + 2]
        } else {
            let (host, port) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if let Some(p) = port {
                if !valid_port(p) {
                    return None;
                }
            }
            if host.is_empty()
                || !host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
            {
                return None;
            }
            host
        };
        let path_and_query = if tail.is_empty() || tail.starts_with('#') {
            "/"
        } else {
            tail
        };
        Some(AbsoluteUrl {
            scheme,
            authority,
            host,
            path_and_query,
        })
    }
}

fn valid_port(p: &str) -> bool {
    !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    #[test]
    fn cookies_are_read_from_every_cookie_header_in_order() {
        let h = vec![
            (":path".to_string(), "/x?a=1".to_string()),
            ("cookie".to_string(), "a=1; b=2".to_string()),
            ("Cookie".to_string(), "c=\"3\"".to_string()),
        ];
        let r = Request::from_headers(&h);
        let all: Vec<_> = r.cookies().collect();
        assert_eq!(all, vec![("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(r.path_only(), "/x");
        assert_eq!(r.query(), "a=1");
    }

    #[test]
    fn duplicated_query_parameters_are_refused() {
        assert_eq!(
            query_param("state=a&state=b", "state"),
            Err(QueryError::Duplicate)
        );
        assert_eq!(
            query_param("x=1&state=a%2Fb+c", "state"),
            Ok(Some("a/b c".to_string()))
        );
        assert_eq!(
            query_param("state=%zz", "state"),
            Err(QueryError::BadEncoding)
        );
        assert_eq!(query_param("x=1", "state"), Ok(None));
    }

    #[test]
    fn scheme_comes_from_forwarded_proto_then_scheme() {
        let h = vec![
            (":scheme".to_string(), "http".to_string()),
            ("x-forwarded-proto".to_string(), "https".to_string()),
        ];
        assert_eq!(Request::from_headers(&h).scheme, "https");
        let h = vec![(":scheme".to_string(), "javascript".to_string())];
        assert_eq!(Request::from_headers(&h).scheme, "http");
    }

    #[test]
    fn absolute_urls_are_parsed_strictly() {
        let u = AbsoluteUrl::parse("https://App.example.com:8443/a?b=c").unwrap();
        assert_eq!(
            (u.host, u.authority, u.path_and_query),
            ("App.example.com", "App.example.com:8443", "/a?b=c")
        );
        assert_eq!(
            AbsoluteUrl::parse("http://[::1]:9000")
                .unwrap()
                .path_and_query,
            "/"
        );
        for bad in [
            "https://good.com@evil.com/",
            "https://evil.com\\@good.com/",
            "https://evil.com%2f.good.com/",
            "javascript://good.com/%0aalert(1)",
            "https://good.com:99999999/",
            "https:///evil.com",
            "//evil.com",
            "https://good.com/\tx",
        ] {
            assert!(AbsoluteUrl::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn components_are_encoded() {
        assert_eq!(encode_component("a b/ü~"), "a%20b%2F%C3%BC~");
        assert_eq!(encode_pairs(&[("a", "1"), ("b c", "&")]), "a=1&b%20c=%26");
    }
}
