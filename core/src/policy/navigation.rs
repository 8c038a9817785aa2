//! Is this request a top-level browser navigation (which may be redirected to the IdP), or an API/XHR
//! call (which gets a 401 it can act on)?

use crate::request::Request;

/// True for a top-level navigation: GET or HEAD, not marked as XHR, `Sec-Fetch-Mode` absent or
/// `navigate`, and an `Accept` that does not prefer JSON over HTML.
#[must_use]
pub fn is_navigation(req: &Request<'_>) -> bool {
    if !(req.method == "GET" || req.method == "HEAD") {
        return false;
    }
    if req
        .header("x-requested-with")
        .is_some_and(|v| v.eq_ignore_ascii_case("xmlhttprequest"))
    {
        return false;
    }
    if req
        .header("sec-fetch-mode")
        .is_some_and(|v| !v.eq_ignore_ascii_case("navigate"))
    {
        return false;
    }
    !req.header("accept").is_some_and(prefers_json)
}

/// True when the client would rather have JSON: the best q-value for `application/json` (or a `+json`
/// type) beats the best for `text/html`.
#[must_use]
pub fn prefers_json(accept: &str) -> bool {
    let (mut json, mut html) = (0u16, 0u16);
    for part in accept.split(',') {
        let mut it = part.split(';');
        let media = it.next().unwrap_or("").trim();
        let q = it
            .filter_map(|p| p.trim().strip_prefix("q="))
            .next()
            .map_or(1000, parse_q);
        if media.eq_ignore_ascii_case("application/json")
            || media.to_ascii_lowercase().ends_with("+json")
        {
            json = json.max(q);
        } else if media.eq_ignore_ascii_case("text/html")
            || media.eq_ignore_ascii_case("application/xhtml+xml")
        {
            html = html.max(q);
        }
    }
    json > 0 && json > html
}

/// q-value in thousandths; malformed → 0.
fn parse_q(q: &str) -> u16 {
    let q = q.trim();
    let (int, frac) = q.split_once('.').unwrap_or((q, ""));
    let whole: u16 = match int {
        "0" => 0,
        "1" => 1000,
        _ => return 0,
    };
    let mut f = 0u16;
    let mut scale = 100u16;
    for b in frac.bytes().take(3) {
        if !b.is_ascii_digit() {
            return 0;
        }
        f += u16::from(b - b'0') * scale;
        scale /= 10;
    }
    (whole + f).min(1000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::{String, ToString};
    use alloc::vec::Vec;

    fn req(method: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut h = alloc::vec![
            (":method".to_string(), method.to_string()),
            (":path".to_string(), "/".to_string())
        ];
        h.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
        h
    }

    #[test]
    fn browsers_navigate_and_apis_do_not() {
        let nav = |m: &str, e: &[(&str, &str)]| {
            is_navigation(&Request::from_headers(&crate::request::raw_headers(&req(
                m, e,
            ))))
        };
        assert!(nav("GET", &[]));
        assert!(nav("HEAD", &[("accept", "*/*")]));
        assert!(nav(
            "GET",
            &[
                (
                    "accept",
                    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
                ),
                ("sec-fetch-mode", "navigate")
            ]
        ));
        assert!(!nav("POST", &[]));
        assert!(!nav("GET", &[("accept", "application/json")]));
        assert!(!nav(
            "GET",
            &[("accept", "text/html;q=0.5, application/json")]
        ));
        assert!(nav(
            "GET",
            &[("accept", "text/html, application/json;q=0.9")]
        ));
        assert!(!nav("GET", &[("X-Requested-With", "XMLHttpRequest")]));
        assert!(!nav("GET", &[("sec-fetch-mode", "cors")]));
        assert!(!nav("GET", &[("accept", "application/problem+json")]));
    }
}
