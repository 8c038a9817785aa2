//! The request as the core reads it, and the small parsers for its parts: cookies, query strings and
//! percent-encoding. Everything here is total: bad input yields `None`/skips, never a panic.

use alloc::string::String;
use alloc::vec::Vec;

/// One header as the host delivered it: name and value as bytes. Values need not be UTF-8 (Envoy passes
/// Latin-1 bytes through); the core reads only the headers it needs and never rewrites the others.
pub type RawHeader<'a> = (&'a [u8], &'a [u8]);

/// A downstream request's headers, including the HTTP/2-style pseudo-headers `:method`, `:path`,
/// `:authority` and `:scheme` (Envoy hands them over this way; host-shim builds them).
///
/// Bytes that are not UTF-8 are handled one documented way: in `:method`, `:path`, `:authority` or
/// `Host` they make the request [`malformed`](Request::malformed) (the engine answers 400); in any other
/// header the core reads (`cookie`, `accept`, `sec-fetch-mode`, `x-requested-with`, `x-forwarded-proto`)
/// the value is treated as absent (for `cookie`, per cookie pair, so one foreign Latin-1 cookie does not
/// hide the session); every other header passes upstream untouched, byte for byte.
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
    pub headers: &'a [RawHeader<'a>],
    /// A pseudo-header or `Host` was not UTF-8: the request cannot be interpreted (400).
    pub malformed: bool,
    /// The request body, once the host has read it (only when a decision asked for it with
    /// [`crate::Decision::ReadBody`]; `Some(&[])` when there is none).
    pub body: Option<&'a [u8]>,
}

impl<'a> Request<'a> {
    /// Reads the pseudo-headers out of a header list. Missing ones become empty strings (and then fail
    /// whatever check needs them).
    #[must_use]
    pub fn from_headers(headers: &'a [RawHeader<'a>]) -> Self {
        let mut req = Request {
            method: "",
            path: "",
            authority: "",
            scheme: "",
            headers,
            malformed: false,
            body: None,
        };
        let mut forwarded_proto = "";
        let mut host = None;
        for &(name, value) in headers {
            let slot = match name {
                b":method" => &mut req.method,
                b":path" => &mut req.path,
                b":authority" => &mut req.authority,
                b":scheme" => &mut req.scheme,
                n if n.eq_ignore_ascii_case(b"host") => {
                    if host.is_none() {
                        host = Some(value);
                    }
                    continue;
                }
                n if n.eq_ignore_ascii_case(b"x-forwarded-proto") => {
                    forwarded_proto = core::str::from_utf8(value).unwrap_or("");
                    continue;
                }
                _ => continue,
            };
            match core::str::from_utf8(value) {
                Ok(v) => *slot = v,
                Err(_) => req.malformed = true,
            }
        }
        if let Some(h) = host {
            match core::str::from_utf8(h) {
                Ok(h) if req.authority.is_empty() => req.authority = h,
                Ok(_) => {}
                Err(_) => req.malformed = true,
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

    /// The first value of a header (case-insensitive name); `None` when absent or not UTF-8.
    #[must_use]
    pub fn header(&self, name: &str) -> Option<&'a str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .and_then(|(_, v)| core::str::from_utf8(v).ok())
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

    /// Every cookie in every `Cookie` header, in the order sent (RFC 6265 §5.4: oldest first). Pairs
    /// that are not UTF-8 are skipped.
    pub fn cookies(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
            .flat_map(|(_, v)| parse_cookie_header(v))
    }

    /// The cookies whose names start with `prefix`, as [`Request::cookies`] reads them (only those
    /// are UTF-8-checked: the others, often kilobytes of an app's own, are skipped by name).
    pub fn cookies_with_prefix<'p>(
        &self,
        prefix: &'p str,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'p
    where
        'a: 'p,
    {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(b"cookie"))
            .flat_map(|(_, v)| cookie_pairs(v))
            .filter(move |p| p.name.starts_with(prefix.as_bytes()))
            .filter_map(cookie_text)
    }

    /// The first cookie with this exact name.
    #[must_use]
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        self.cookies().find(|(n, _)| *n == name).map(|(_, v)| v)
    }
}

/// Borrows string header pairs as [`RawHeader`]s (for hosts and tests that hold `String`s).
#[must_use]
pub fn raw_headers(headers: &[(String, String)]) -> Vec<RawHeader<'_>> {
    headers
        .iter()
        .map(|(n, v)| (n.as_bytes(), v.as_bytes()))
        .collect()
}

/// Parses proxy-wasm's serialized header map (`proxy_get_header_map_pairs`): a little-endian `u32`
/// count, then a `u32` name length and `u32` value length per pair, then each name and value followed
/// by a NUL. Borrows from `buf`; `None` if the buffer is not exactly that shape (never panics, never
/// reads out of bounds, never allocates more than the buffer can describe).
#[must_use]
pub fn parse_header_map(buf: &[u8]) -> Option<Vec<RawHeader<'_>>> {
    if buf.is_empty() {
        return Some(Vec::new());
    }
    let read_u32 = |at: usize| -> Option<usize> {
        let b = buf.get(at..at.checked_add(4)?)?;
        usize::try_from(u32::from_le_bytes([b[0], b[1], b[2], b[3]])).ok()
    };
    let count = read_u32(0)?;
    // Each pair needs 8 bytes of sizes and 2 NULs: a count the buffer cannot hold is refused up front.
    if count > buf.len() / 10 {
        return None;
    }
    let mut data = 4 + count * 8;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let name_len = read_u32(4 + i * 8)?;
        let value_len = read_u32(8 + i * 8)?;
        let name_end = data.checked_add(name_len)?;
        let name = buf.get(data..name_end)?;
        if buf.get(name_end) != Some(&0) {
            return None;
        }
        let value_start = name_end + 1;
        let value_end = value_start.checked_add(value_len)?;
        let value = buf.get(value_start..value_end)?;
        if buf.get(value_end) != Some(&0) {
            return None;
        }
        data = value_end + 1;
        out.push((name, value));
    }
    (data == buf.len()).then_some(out)
}

/// The inverse of [`parse_header_map`] (proxy-wasm's `set_header_map_pairs` format), for hosts and tests.
#[must_use]
pub fn serialize_header_map(pairs: &[RawHeader<'_>]) -> Vec<u8> {
    let size = 4 + pairs
        .iter()
        .map(|(n, v)| 10 + n.len() + v.len())
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len32(pairs.len()));
    for (n, v) in pairs {
        out.extend_from_slice(&len32(n.len()));
        out.extend_from_slice(&len32(v.len()));
    }
    for (n, v) in pairs {
        out.extend_from_slice(n);
        out.push(0);
        out.extend_from_slice(v);
        out.push(0);
    }
    out
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

/// One pair of a `Cookie` header, as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CookiePair<'a> {
    /// The name, trimmed of SP and HTAB (for a pair without `=`: the whole trimmed pair).
    pub name: &'a [u8],
    /// The value, trimmed of SP and HTAB; `None` for a pair without `=`.
    pub value: Option<&'a [u8]>,
    /// The whole pair, trimmed of SP and HTAB.
    pub pair: &'a [u8],
}

/// Splits a `Cookie` header value on `;`. Names and values are trimmed of SP and HTAB only, as browsers
/// and RFC 6265bis §5.6 do: any other byte (`\x0b`, a non-breaking space, …) is part of the name, so
/// `\x0b_pc` is not our cookie. The one reading of the header: the parser below and the stripper of our
/// cookies both use it, so they can never disagree about which cookie is which.
pub fn cookie_pairs(value: &[u8]) -> impl Iterator<Item = CookiePair<'_>> {
    // `memchr` finds the separators a word (or a SIMD vector) at a time: a browser's `Cookie` header
    // is often kilobytes, and it is read on every request (a byte-at-a-time split was a third of the
    // core's instructions on a session request).
    let mut rest = Some(value);
    core::iter::from_fn(move || loop {
        let v = rest?;
        let raw = match memchr::memchr(b';', v) {
            Some(i) => {
                let (raw, tail) = v.split_at(i);
                rest = tail.get(1..);
                raw
            }
            None => {
                rest = None;
                v
            }
        };
        let pair = trim_ows(raw);
        if pair.is_empty() {
            continue;
        }
        return Some(match memchr::memchr(b'=', pair) {
            Some(eq) => {
                let (name, tail) = pair.split_at(eq);
                CookiePair {
                    name: trim_ows(name),
                    value: Some(trim_ows(tail.get(1..).unwrap_or_default())),
                    pair,
                }
            }
            None => CookiePair {
                name: pair,
                value: None,
                pair,
            },
        });
    })
}

/// Trims SP and HTAB (HTTP's optional whitespace), nothing else.
fn trim_ows(b: &[u8]) -> &[u8] {
    let ows = |c: &u8| *c == b' ' || *c == b'\t';
    let start = b.iter().position(|c| !ows(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ows(c)).map_or(start, |e| e + 1);
    &b[start..end]
}

/// Parses one `Cookie` header value: `a=b; c=d`. Pairs without `=`, with an empty name, or that are not
/// UTF-8 are skipped; a value's surrounding double quotes are removed.
pub fn parse_cookie_header(value: &[u8]) -> impl Iterator<Item = (&str, &str)> {
    cookie_pairs(value).filter_map(cookie_text)
}

/// One pair as text: `None` without `=`, with an empty name, or not UTF-8; quotes around the value
/// removed.
fn cookie_text(p: CookiePair<'_>) -> Option<(&str, &str)> {
    let n = core::str::from_utf8(p.name).ok()?;
    let v = core::str::from_utf8(p.value?).ok()?;
    let v = v
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v);
    (!n.is_empty()).then_some((n, v))
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

/// An absolute `http(s)` URL split into its parts, parsed twice: strictly by hand (no userinfo, no
/// backslash, no whitespace or control characters, a host of `[a-z0-9.-]` or a bracketed IPv6 literal, an
/// optional numeric port) and by the `url` crate (WHATWG, the way a browser reads a `Location`), and
/// accepted only when both agree on scheme, host and port. A string two parsers read differently is
/// exactly what open-redirect and SSRF tricks are made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AbsoluteUrl<'a> {
    /// `http` or `https` (lowercased by the caller's comparison).
    pub scheme: &'a str,
    /// `host[:port]` as written.
    pub authority: &'a str,
    /// The host, without port.
    pub host: &'a str,
    /// The explicit port, `None` when absent or the scheme's default (WHATWG drops a default port).
    pub port: Option<u16>,
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
        // The WHATWG reading must agree with ours.
        let whatwg = url::Url::parse(url).ok()?;
        let same_host = match whatwg.host()? {
            url::Host::Domain(d) => d.eq_ignore_ascii_case(host),
            url::Host::Ipv4(ip) => {
                // WHATWG reads `0x7f.1` or `2130706433` as an IPv4 address; we only accept the dotted
                // quad written the same way.
                let mut buf = String::new();
                let _ = core::fmt::Write::write_fmt(&mut buf, format_args!("{ip}"));
                buf == host
            }
            url::Host::Ipv6(_) => host.starts_with('['),
        };
        if !same_host
            || !whatwg.scheme().eq_ignore_ascii_case(scheme)
            || whatwg.username() != ""
            || whatwg.password().is_some()
        {
            return None;
        }
        Some(AbsoluteUrl {
            scheme,
            authority,
            host,
            port: whatwg.port(),
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
        let raw = raw_headers(&h);
        let r = Request::from_headers(&raw);
        let all: Vec<_> = r.cookies().collect();
        assert_eq!(all, vec![("a", "1"), ("b", "2"), ("c", "3")]);
        assert_eq!(r.path_only(), "/x");
        assert_eq!(r.query(), "a=1");
    }

    #[test]
    fn non_utf8_bytes_are_absent_or_malformed_never_a_panic() {
        let h: Vec<RawHeader<'_>> = vec![
            (&b":method"[..], &b"GET"[..]),
            (&b":path"[..], &b"/x"[..]),
            (&b":authority"[..], &b"app"[..]),
            (&b"user-agent"[..], &b"caf\xe9"[..]),
            (&b"accept"[..], &b"text/\xff"[..]),
            (&b"cookie"[..], &b"a=caf\xe9; _pc=ok; \xff=1; b=2"[..]),
            (&b"x-forwarded-proto"[..], &b"\xffhttps"[..]),
        ];
        let r = Request::from_headers(&h);
        assert!(!r.malformed);
        assert_eq!(
            r.header("accept"),
            None,
            "a non-UTF-8 value reads as absent"
        );
        assert_eq!(r.scheme, "http");
        let all: Vec<_> = r.cookies().collect();
        assert_eq!(all, vec![("_pc", "ok"), ("b", "2")]);
        for bad in [
            (&b":path"[..], &b"/caf\xe9"[..]),
            (&b":method"[..], &b"G\xffT"[..]),
            (&b":authority"[..], &b"\xff"[..]),
            (&b"Host"[..], &b"h\xe9"[..]),
        ] {
            let h: Vec<RawHeader<'_>> = vec![
                (&b":method"[..], &b"GET"[..]),
                (&b":path"[..], &b"/"[..]),
                bad,
            ];
            assert!(Request::from_headers(&h).malformed, "{bad:?}");
        }
    }

    #[test]
    fn header_maps_round_trip_and_hostile_buffers_are_refused() {
        let pairs: Vec<RawHeader<'_>> = vec![
            (&b":path"[..], &b"/"[..]),
            (&b"x"[..], &b"caf\xe9\x00y"[..]),
            (&b""[..], &b""[..]),
        ];
        let buf = serialize_header_map(&pairs);
        assert_eq!(parse_header_map(&buf), Some(pairs.clone()));
        assert_eq!(parse_header_map(&[]), Some(vec![]));
        // Every truncation, and one extra byte, is refused.
        for cut in 1..buf.len() {
            assert_eq!(parse_header_map(&buf[..cut]), None, "cut at {cut}");
        }
        let mut long = buf.clone();
        long.push(0);
        assert_eq!(parse_header_map(&long), None);
        // A count or a length the buffer cannot hold, and a missing NUL.
        assert_eq!(
            parse_header_map(&[0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
            None
        );
        let mut lie = buf.clone();
        lie[4] = 0xff;
        assert_eq!(parse_header_map(&lie), None);
        let mut nul = buf;
        let at = 4 + 3 * 8 + 5;
        nul[at] = b'!';
        assert_eq!(parse_header_map(&nul), None);
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
        assert_eq!(Request::from_headers(&raw_headers(&h)).scheme, "https");
        let h = vec![(":scheme".to_string(), "javascript".to_string())];
        assert_eq!(Request::from_headers(&raw_headers(&h)).scheme, "http");
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
