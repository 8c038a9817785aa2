//! Where we are willing to send a browser after login or sign-out.
//!
//! The attacks this refuses are the open-redirect classics seen against oauth2-proxy and other relying
//! parties: protocol-relative `//evil.com`, `/\evil.com` (browsers treat `\` as `/`), the same hidden behind
//! percent-encoding (`/%2F%2Fevil.com`, `/%5Cevil.com`), tabs and newlines that browsers strip
//! (`/\t/evil.com`), userinfo tricks (`https://good.com@evil.com`), suffix confusion
//! (`https://good.com.evil.com`), non-http schemes (`javascript:`), parser differentials (a URL our parser
//! and the WHATWG parser a browser uses read differently), and another port on an allowed host (an
//! attacker's service on `good.com:8080`).

use alloc::string::String;

use crate::request::{percent_decode_bytes, AbsoluteUrl};

/// The validated redirect target, or `None` if it must not be used (callers then fall back to `/`).
///
/// Accepted: a same-host path beginning with exactly one `/`, free of `\`, whitespace and control
/// characters both as written and after percent-decoding; or an absolute `http(s)` URL (read the same by
/// our strict parser and by WHATWG's) whose host and port an allowlist entry admits (see [`host_allowed`]).
#[must_use]
pub fn validate_redirect(target: &str, allowed_domains: &[String]) -> Option<String> {
    // No control character anywhere, C1 (U+0080..U+009F) included, as written or percent-decoded.
    let decoded = percent_decode_bytes(target.as_bytes(), false)?;
    if target.chars().any(char::is_control)
        || String::from_utf8_lossy(&decoded)
            .chars()
            .any(char::is_control)
    {
        return None;
    }
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
    host_allowed(url.host, url.port, allowed_domains).then(|| String::from(target))
}

fn safe_path(p: &[u8]) -> bool {
    p.first() == Some(&b'/')
        && !matches!(p.get(1), Some(b'/') | Some(b'\\'))
        && !p.iter().any(|&b| b <= b' ' || b == 0x7f || b == b'\\')
}

/// Whether an allowlist entry admits `host` with `port` (`None`: the scheme's default port). Entries, as
/// in oauth2-proxy's `whitelist_domains`: `example.com` (that host), `.example.com` (it and every
/// subdomain), each optionally followed by `:8443` (that port only) or `:*` (any port). An entry without
/// a port admits the default port only.
#[must_use]
pub fn host_allowed(host: &str, port: Option<u16>, allowed_domains: &[String]) -> bool {
    allowed_domains.iter().any(|entry| {
        let Some((domain, port_rule)) = split_entry(entry) else {
            return false;
        };
        let port_ok = match port_rule {
            PortRule::Default => port.is_none(),
            PortRule::Any => true,
            PortRule::Exact(p) => port == Some(p),
        };
        port_ok && domain_matches(host, domain)
    })
}

/// The port part of an allowlist entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRule {
    /// No port written: the scheme's default only.
    Default,
    /// `:*`.
    Any,
    /// `:N`.
    Exact(u16),
}

/// Splits an allowlist entry into its domain and port rule; `None` if the port part is not `*` or a
/// port number (the configuration loader refuses such entries, naming them).
#[must_use]
pub fn split_entry(entry: &str) -> Option<(&str, PortRule)> {
    match entry.rsplit_once(':') {
        None => Some((entry, PortRule::Default)),
        Some((d, "*")) => Some((d, PortRule::Any)),
        Some((d, p)) if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u16>().ok().map(|p| (d, PortRule::Exact(p)))
        }
        Some(_) => None,
    }
}

/// Exact match, or subdomain of an entry with a leading dot (which also matches the bare domain).
fn domain_matches(host: &str, entry: &str) -> bool {
    if let Some(suffix) = entry.strip_prefix('.') {
        host.eq_ignore_ascii_case(suffix)
            || (host.len() > entry.len()
                && host.is_char_boundary(host.len() - entry.len())
                && host[host.len() - entry.len()..].eq_ignore_ascii_case(entry))
    } else {
        host.eq_ignore_ascii_case(entry)
    }
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
            "/x?q=a\u{9e}b",
            "/x?q=a%C2%9Eb",
            "/a\u{85}b",
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
            "https://a.b.example.com/p?q=1",
            "https://exact.org/",
            "https://EXACT.org/",
        ] {
            assert_eq!(validate_redirect(ok, &allow()).as_deref(), Some(ok), "{ok}");
        }
        assert_eq!(validate_redirect("https://app.example.com/", &[]), None);
    }

    #[test]
    fn allowlist_entries_admit_the_default_port_unless_they_name_one() {
        let allow = vec![
            ".example.com".to_string(),
            "exact.org:8443".to_string(),
            "any.net:*".to_string(),
        ];
        for ok in [
            "https://app.example.com/x",
            "https://app.example.com:443/x",
            "http://app.example.com:80/x",
            "https://exact.org:8443/",
            "https://any.net:1/",
            "https://any.net/",
        ] {
            assert!(validate_redirect(ok, &allow).is_some(), "{ok}");
        }
        for bad in [
            "https://app.example.com:8080/x",
            "http://app.example.com:443/x",
            "https://exact.org/",
            "https://exact.org:8444/",
            "https://sub.any.net/",
        ] {
            assert_eq!(validate_redirect(bad, &allow), None, "{bad}");
        }
        assert_eq!(split_entry("a.b:x"), None);
        assert_eq!(split_entry("a.b:99999"), None);
        assert_eq!(split_entry("a.b:1"), Some(("a.b", PortRule::Exact(1))));
    }

    #[test]
    fn urls_read_differently_by_whatwg_are_refused() {
        for bad in [
            "https://0x7f.1/",
            "https://2130706433/",
            "https://1.2.3/",
            "https:///example.com",
            "https:example.com",
            "https://a.example.com:65536/",
        ] {
            let allow = vec![
                ".example.com".to_string(),
                "0x7f.1".to_string(),
                "2130706433".to_string(),
                "1.2.3".to_string(),
            ];
            assert_eq!(validate_redirect(bad, &allow), None, "{bad}");
        }
    }
}
