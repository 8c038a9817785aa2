//! Where we are willing to send a browser after login or sign-out.
//!
//! The attacks this refuses are the open-redirect classics seen against oauth2-proxy and other relying
//! parties: protocol-relative `//evil.com`, `/\evil.com` (browsers treat `\` as `/`), the same hidden behind
//! percent-encoding (`/%2F%2Fevil.com`, `/%5Cevil.com`), tabs and newlines that browsers strip
//! (`/\t/evil.com`), userinfo tricks (`https://good.com@evil.com`), suffix confusion
//! (`https://good.com.evil.com`) and non-http schemes (`javascript:`).

use alloc::string::String;

use crate::request::{percent_decode_bytes, AbsoluteUrl};

/// The validated redirect target, or `None` if it must not be used (callers then fall back to `/`).
///
/// Accepted: a same-host path beginning with exactly one `/`, free of `\`, whitespace and control
/// characters both as written and after percent-decoding; or an absolute `http(s)` URL whose host equals an
/// allowlist entry, or is a subdomain of an entry written with a leading `.` (`.example.com`).
#[must_use]
pub fn validate_redirect(target: &str, allowed_domains: &[String]) -> Option<String> {
    if target.starts_with('/') {
        // The path part must be safe as written and decoded; the query may hold encoded spaces, but no
        // control characters once decoded (CR/LF header splitting downstream).
        let split = target.find(['?', '#']).unwrap_or(target.len());
        let (path, rest) = target.split_at(split);
        let ok = safe_path(target.as_bytes())
            && percent_decode_bytes(path.as_bytes(), false).is_some_and(|d| safe_path(&d))
            && percent_decode_bytes(rest.as_bytes(), false)
                .is_some_and(|d| !d.iter().any(|&b| b < b' ' || b == 0x7f));
        return ok.then(|| String::from(target));
    }
    let url = AbsoluteUrl::parse(target)?;
    // The decoded form must not smuggle anything either (e.g. `%0d%0a` header splitting downstream).
    let decoded = percent_decode_bytes(target.as_bytes(), false)?;
    if decoded
        .iter()
        .any(|&b| b <= b' ' || b == 0x7f || b == b'\\')
    {
        return None;
    }
    host_allowed(url.host, allowed_domains).then(|| String::from(target))
}

fn safe_path(p: &[u8]) -> bool {
    p.first() == Some(&b'/')
        && !matches!(p.get(1), Some(b'/') | Some(b'\\'))
        && !p.iter().any(|&b| b <= b' ' || b == 0x7f || b == b'\\')
}

/// Exact match, or subdomain of an entry with a leading dot (which also matches the bare domain).
#[must_use]
pub fn host_allowed(host: &str, allowed_domains: &[String]) -> bool {
    allowed_domains.iter().any(|entry| {
        if let Some(suffix) = entry.strip_prefix('.') {
            host.eq_ignore_ascii_case(suffix)
                || (host.len() > entry.len()
                    && host.is_char_boundary(host.len() - entry.len())
                    && host[host.len() - entry.len()..].eq_ignore_ascii_case(entry))
        } else {
            host.eq_ignore_ascii_case(entry)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use alloc::vec::Vec;

    fn allow() -> Vec<String> {
        vec![".example.com".to_string(), "exact.org".to_string()]
    }

    #[test]
    fn same_host_paths_are_accepted() {
        for ok in ["/", "/app", "/app/x?y=1&z=%20#frag", "/a%2Fb"] {
            assert_eq!(validate_redirect(ok, &allow()).as_deref(), Some(ok), "{ok}");
        }
    }

    #[test]
    fn open_redirect_attempts_are_refused() {
        for bad in [
            "//evil.com",
            "///evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/%2F%2Fevil.com",
            "/%2fevil.com",
            "/%5Cevil.com",
            "/%5cevil.com",
            "/\t/evil.com",
            "/%09/evil.com",
            "/\r\n/evil.com",
            "/%0d%0aSet-Cookie:x=y",
            "/x?q=%0d%0aSet-Cookie:x=y",
            "/%20/evil.com",
            "/ /evil.com",
            "/%",
            "https://evil.com/",
            "https://example.com.evil.com/",
            "https://evilexample.com/",
            "https://app.example.com@evil.com/",
            "https://evil.com\\@app.example.com/",
            "https://evil.com%2F@app.example.com/",
            "https://exact.org.evil.com/",
            "https://sub.exact.org/",
            "javascript:alert(1)",
            "javascript://app.example.com/%0aalert(1)",
            "data:text/html,hi",
            "ftp://app.example.com/",
            "evil.com",
            "https:evil.com",
            "https://app.example.com/%0d%0a",
            "",
        ] {
            assert_eq!(
                validate_redirect(bad, &allow()),
                None,
                "{bad:?} must be refused"
            );
        }
    }

    #[test]
    fn allowlisted_absolute_urls_are_accepted() {
        for ok in [
            "https://app.example.com/x",
            "http://example.com",
            "https://a.b.example.com:8443/p?q=1",
            "https://exact.org/",
            "https://EXACT.org/",
        ] {
            assert_eq!(validate_redirect(ok, &allow()).as_deref(), Some(ok), "{ok}");
        }
        assert_eq!(validate_redirect("https://app.example.com/", &[]), None);
    }
}
