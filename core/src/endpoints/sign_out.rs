//! `{prefix}/sign_out`: clears our cookies and, when the IdP offers it, ends the IdP session too
//! (OIDC RP-Initiated Logout 1.0 with the ID token as hint).

use std::format;
use std::string::String;
use std::vec::Vec;

use crate::decision::{Decision, Header, Reason};
use crate::endpoints::login::MAX_CLEARED_PER_RESPONSE;
use crate::engine::Engine;
use crate::policy::redirect::validate_redirect;
use crate::request::{encode_pairs, query_param, Request};
use crate::response;
use crate::session::chunks;
use crate::session::keyring::Purpose;
use crate::vm::VmState;

impl Engine {
    pub(crate) fn sign_out(&self, req: &Request<'_>, vm: &mut VmState) -> Decision {
        let cfg = &*self.config;
        if !(req.method == "GET" || req.method == "POST") {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        if let Some(value) =
            chunks::join(req.cookies_with_prefix(&cfg.cookie_name), &cfg.cookie_name)
        {
            vm.sessions.remove(&value);
        }
        let (hint_name, hint_path) = cfg.hint_cookie();
        let hint = req
            .cookie(&hint_name)
            .and_then(|v| {
                cfg.keys
                    .open(Purpose::IdTokenHint, &hint_name, &cfg.binding, v)
            })
            .and_then(|b| String::from_utf8(b).ok());
        let target = query_param(req.query(), "rd")
            .ok()
            .flatten()
            .and_then(|rd| validate_redirect(&rd, &cfg.allowed_redirect_domains))
            .unwrap_or_else(|| cfg.post_logout_redirect_url.clone());
        let mut headers: Vec<Header> = std::vec![
            (
                "set-cookie".into(),
                cfg.cookie_attributes.clear(&cfg.cookie_name)
            ),
            (
                "set-cookie".into(),
                cfg.cookie_attributes.clear_at(&hint_name, &hint_path)
            ),
        ];
        headers.extend(
            chunks::chunk_names_from(&cfg.cookie_name, 1)
                .map(|name| ("set-cookie".into(), cfg.cookie_attributes.clear(&name))),
        );
        for name in self
            .login_cookie_names(req)
            .into_iter()
            .take(MAX_CLEARED_PER_RESPONSE)
        {
            headers.push(("set-cookie".into(), cfg.cookie_attributes.clear(name)));
        }
        let end_session = vm
            .provider(0)
            .and_then(|p| p.metadata.end_session_endpoint.as_deref());
        let location = match (end_session, hint) {
            (Some(endpoint), Some(hint)) => {
                let absolute = if target.starts_with('/') {
                    format!("{}://{}{}", req.scheme, req.authority, target)
                } else {
                    target
                };
                let sep = if endpoint.contains('?') { '&' } else { '?' };
                format!(
                    "{endpoint}{sep}{}",
                    encode_pairs(&[
                        ("id_token_hint", &hint),
                        ("client_id", &cfg.client_id),
                        ("post_logout_redirect_uri", &absolute)
                    ])
                )
            }
            _ => target,
        };
        response::redirect(location, headers, Reason::SignedOut)
    }
}
