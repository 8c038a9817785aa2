//! Local responses: redirects, the 401 for API clients, and error pages (HTML for browsers, JSON for
//! API clients). Bodies carry a stable error code and a fixed message; never a token, a secret or any
//! text the client or IdP supplied.

use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use crate::decision::{Decision, Header, Reason};

fn h(name: &str, value: impl Into<String>) -> Header {
    (String::from(name), value.into())
}

/// A 302 to `location` with extra headers (cookies).
pub fn redirect(location: String, mut extra: Vec<Header>, reason: Reason) -> Decision {
    extra.push(h("location", location));
    extra.push(h("cache-control", "no-store"));
    Decision::Respond {
        status: 302,
        headers: extra,
        body: Vec::new(),
        reason,
        trace: crate::decision::Trace::default(),
    }
}

/// A plain-text response (health checks).
pub fn text(status: u16, body: &str, reason: Reason) -> Decision {
    Decision::Respond {
        status,
        headers: vec![
            h("content-type", "text/plain"),
            h("cache-control", "no-store"),
        ],
        body: Vec::from(body.as_bytes()),
        reason,
        trace: crate::decision::Trace::default(),
    }
}

/// A JSON body response.
pub fn json(
    status: u16,
    body: &serde_json::Value,
    mut extra: Vec<Header>,
    reason: Reason,
) -> Decision {
    extra.push(h("content-type", "application/json"));
    extra.push(h("cache-control", "no-store"));
    Decision::Respond {
        status,
        headers: extra,
        body: serde_json::to_vec(body).unwrap_or_default(),
        reason,
        trace: crate::decision::Trace::default(),
    }
}

/// Minimal HTML escaping for the few dynamic parts of a page (codes and our own URLs).
#[must_use]
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// An error page: HTML with a "sign in again" link for browsers, JSON for API clients.
pub fn error(
    status: u16,
    reason: Reason,
    message: &str,
    browser: bool,
    retry_url: &str,
    mut extra: Vec<Header>,
) -> Decision {
    if matches!(
        reason,
        Reason::ProviderNotReady | Reason::TokenEndpointUnavailable
    ) {
        extra.push(h("retry-after", "2"));
    }
    if browser {
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Sign-in problem</title></head>\
             <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>{status} &mdash; sign-in problem</h1>\
             <p>{}</p><p><small>Code: <code>{}</code></small></p><p><a href=\"{}\">Sign in again</a></p></body></html>",
            escape_html(message),
            escape_html(reason.code()),
            escape_html(retry_url)
        );
        extra.push(h("content-type", "text/html; charset=utf-8"));
        extra.push(h("cache-control", "no-store"));
        Decision::Respond {
            status,
            headers: extra,
            body: body.into_bytes(),
            reason,
            trace: crate::decision::Trace::default(),
        }
    } else {
        json(
            status,
            &serde_json::json!({"error": reason.code(), "message": message}),
            extra,
            reason,
        )
    }
}

/// The 401 for requests that are not top-level navigations: no login cookie is minted; the body and a
/// `Link` header (RFC 8288, relative to the request) tell the client where a browser could start a
/// login, and where a CLI gets a session token to paste.
pub fn login_required(realm: &str, login_url: &str, token_url: &str) -> Decision {
    let extra = vec![
        h(
            "www-authenticate",
            format!(
                "Bearer realm=\"{}\"",
                realm
                    .chars()
                    .filter(|c| !c.is_control() && !matches!(c, '"' | '\\'))
                    .collect::<String>()
            ),
        ),
        h(
            "link",
            format!("<{login_url}>; rel=\"login\", <{token_url}>; rel=\"token\""),
        ),
    ];
    json(
        401,
        &serde_json::json!({"error": "login_required", "message": "authentication required",
            "login_url": login_url, "token_url": token_url}),
        extra,
        Reason::LoginRequired,
    )
}

/// A 403 for an authenticated caller a route's requirement refuses: HTML for browsers, JSON for API
/// clients; it names the requirement and the rule (configuration, never caller data).
pub fn forbidden(
    requirement: crate::policy::requirements::Requirement,
    rule: &str,
    browser: bool,
) -> Decision {
    let reason = Reason::Forbidden(requirement);
    let message = reason.failure_message().unwrap_or("forbidden");
    if browser {
        let body = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>Not allowed</title></head>\
             <body style=\"font-family:sans-serif;max-width:40em;margin:4em auto\"><h1>403 &mdash; not allowed</h1>\
             <p>{}</p><p><small>Requirement: <code>{}</code> of rule <code>{}</code></small></p></body></html>",
            escape_html(message),
            escape_html(requirement.field()),
            escape_html(rule)
        );
        Decision::Respond {
            status: 403,
            headers: vec![
                h("content-type", "text/html; charset=utf-8"),
                h("cache-control", "no-store"),
            ],
            body: body.into_bytes(),
            reason,
            trace: crate::decision::Trace::default(),
        }
    } else {
        json(
            403,
            &serde_json::json!({"error": reason.code(), "message": message,
                "requirement": requirement.field(), "rule": rule}),
            Vec::new(),
            reason,
        )
    }
}

/// A bearer-token answer with its RFC 6750 §3 challenge: 401 without a token (no `error`), 401
/// `invalid_token`, 403 `insufficient_scope` (naming the scope). Never a redirect, never a cookie.
pub fn bearer_challenge(realm: &str, status: u16, reason: Reason, scope: Option<&str>) -> Decision {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| !c.is_control() && !matches!(c, '"' | '\\'))
            .take(256)
            .collect()
    };
    let mut challenge = format!("Bearer realm=\"{}\"", clean(realm));
    let error = match reason {
        Reason::BearerMissing => None,
        Reason::InsufficientScope => Some("insufficient_scope"),
        _ => Some("invalid_token"),
    };
    if let Some(e) = error {
        challenge.push_str(&format!(", error=\"{e}\""));
    }
    if let Some(s) = scope {
        challenge.push_str(&format!(", scope=\"{}\"", clean(s)));
    }
    let message = reason
        .failure_message()
        .unwrap_or("a bearer token is required");
    json(
        status,
        &serde_json::json!({"error": error.unwrap_or("unauthorized"), "code": reason.code(), "message": message}),
        vec![h("www-authenticate", challenge)],
        reason,
    )
}
