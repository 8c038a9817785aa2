//! Endpoints for command-line clients and auth-request proxies: `{prefix}/auth` (oauth2-proxy's auth
//! request: who is this?) and `{prefix}/token` (a session token to paste into a CLI).

use std::format;
use std::string::String;
use std::vec::Vec;

use rand_core::{CryptoRng, RngCore};

use crate::decision::{Decision, Header, Reason};
use crate::engine::{wants_json, Engine};
use crate::policy::navigation::is_navigation;
use crate::policy::rules::Action;
use crate::request::Request;
use crate::response::{self, escape_html};
use crate::time::UnixTime;
use crate::vm::VmState;

impl Engine {
    /// `{prefix}/auth`, as oauth2-proxy answers it for nginx's `auth_request` and SkyPilot's
    /// oauth2-proxy mode: 202 with `X-Auth-Request-User`, `-Email`, `-Groups` and
    /// `-Preferred-Username` for a valid session (cookie or session token) that the policy admits for
    /// the original request, 401 without a session, 403 when the route denies it or a requirement
    /// fails. Never a redirect: the caller decides where to send the browser. The original request is
    /// `X-Forwarded-Uri` (SkyPilot, Traefik) or `X-Original-URI` (nginx), on `X-Forwarded-Host` or this
    /// authority, with `X-Forwarded-Method` / `X-Original-Method` (default `GET`).
    pub(crate) fn auth_request(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        vm: &mut VmState,
    ) -> Decision {
        let uri = req
            .header("x-forwarded-uri")
            .or_else(|| req.header("x-original-uri"))
            .unwrap_or("/");
        // SkyPilot sends the whole URL (`str(request.url).rstrip('/')`), nginx and Traefik the path.
        let (uri, url_host) = match crate::request::AbsoluteUrl::parse(uri) {
            Some(u) => (u.path_and_query, Some(u.authority)),
            None => (uri, None),
        };
        let path = uri.split(['?', '#']).next().unwrap_or("/");
        let host = url_host
            .or_else(|| req.header("x-forwarded-host"))
            .unwrap_or(req.authority);
        let method = req
            .header("x-forwarded-method")
            .or_else(|| req.header("x-original-method"))
            .unwrap_or("GET");
        let route = match self.config.policy.route_parts(path, host, method) {
            Ok(r) if path.starts_with('/') => r,
            _ => return self.error(req, 400, Reason::PathInvalid),
        };
        if route.action == Action::Deny {
            return self
                .error(req, 403, Reason::RouteDenied)
                .traced(&route.name, None);
        }
        let Some((hit, _)) = self.any_session(req, now, vm) else {
            return self.login_required(req, "/");
        };
        if let Err(unmet) = route.requirements.check(&hit.identity, method) {
            return response::forbidden(unmet.requirement, &route.name, false)
                .traced(&route.name, Some(&hit.identity.user));
        }
        // The built-in family whatever `headers.identity` sends upstream, then mapped headers of that
        // prefix (already in the cached upstream set).
        let mut headers = crate::identity::headers::auth_request_headers(&hit.identity);
        let builtin = headers.len();
        headers.extend(
            hit.upstream
                .iter()
                .filter(|(n, _)| n.starts_with("x-auth-request-"))
                .filter(|(n, _)| !headers[..builtin].iter().any(|(b, _)| b == n))
                .cloned()
                .collect::<Vec<_>>(),
        );
        headers.push((String::from("cache-control"), String::from("no-store")));
        Decision::Respond {
            status: 202,
            headers,
            body: Vec::new(),
            reason: Reason::AuthChecked,
            trace: crate::decision::Trace::default(),
        }
    }

    /// `{prefix}/token`: after a browser login, a page showing the session token (the sealed session
    /// itself), which a CLI sends back as `Authorization: Bearer <token>` or as the session cookie until
    /// the session ends. JSON for API clients. Without a session, a navigation logs in and comes back.
    pub(crate) fn token_page(
        &self,
        req: &Request<'_>,
        now: UnixTime,
        rng: &mut (impl RngCore + CryptoRng),
        vm: &mut VmState,
    ) -> Decision {
        if req.method != "GET" && req.method != "HEAD" {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        // A page of the app (an XSS, a low-trust app on the cookie's domain) must not read the session
        // off this page: with the cookie, only a top-level navigation gets it (Fetch Metadata; clients
        // without it, CLIs and curl, send none), and the page opens in its own browsing-context group.
        let scripted = req
            .header("sec-fetch-mode")
            .is_some_and(|m| !m.eq_ignore_ascii_case("navigate"))
            || req
                .header("sec-fetch-dest")
                .is_some_and(|d| !d.eq_ignore_ascii_case("document"));
        if scripted && self.session_token_in(req).is_none() {
            return self.error(req, 403, Reason::TokenPageRefused);
        }
        let Some((hit, token)) = self.any_session(req, now, vm) else {
            let here = self.token_url();
            if is_navigation(req) {
                return self.begin_login(req, here, now, rng, vm);
            }
            return self.login_required(req, &here);
        };
        let user = hit.identity.user.clone();
        let cookie = &self.config.cookie_name;
        let d = if wants_json(req) {
            response::json(
                200,
                &serde_json::json!({"token": &*token, "token_type": "session", "expires_at": hit.expires_at,
                    "user": &user, "cookie": cookie}),
                private_page_headers(),
                Reason::SessionTokenIssued,
            )
        } else {
            let body = format!(
                "<!doctype html><html><head><meta charset=\"utf-8\"><title>Session token</title></head>\
                 <body style=\"font-family:sans-serif;max-width:48em;margin:4em auto\"><h1>Session token</h1>\
                 <p>Signed in as <b id=\"portcullis-user\">{user}</b>. This token is your session until it ends \
                 (unix time <span id=\"portcullis-expires\">{expires}</span>): treat it like a password.</p>\
                 <pre><code id=\"portcullis-token\" style=\"word-break:break-all;white-space:pre-wrap\">{token}</code></pre>\
                 <p>Use it as <code>Authorization: Bearer &lt;token&gt;</code> or as the cookie <code>{cookie}=&lt;token&gt;</code>.</p>\
                 </body></html>",
                user = escape_html(&user),
                expires = hit.expires_at,
                token = escape_html(&token),
                cookie = escape_html(cookie),
            );
            let mut headers = private_page_headers();
            headers.push((String::from("cache-control"), String::from("no-store")));
            headers.push((
                String::from("content-type"),
                String::from("text/html; charset=utf-8"),
            ));
            Decision::Respond {
                status: 200,
                headers,
                body: body.into_bytes(),
                reason: Reason::SessionTokenIssued,
                trace: crate::decision::Trace::default(),
            }
        };
        d
    }
}

/// A page that shows a credential: never framed, scripted or leaked through a referrer (and, with
/// the `no-store` every response of ours carries, never cached).
fn private_page_headers() -> Vec<Header> {
    [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
        ),
        ("x-frame-options", "DENY"),
        ("cross-origin-opener-policy", "same-origin"),
        ("cross-origin-resource-policy", "same-origin"),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
    ]
    .into_iter()
    .map(|(n, v)| (String::from(n), String::from(v)))
    .collect()
}
