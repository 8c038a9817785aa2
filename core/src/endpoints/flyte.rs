//! Flyte's two public documents, as flyteadmin serves them over HTTP (grpc-gateway, snake_case field
//! names whatever the `Accept`): the public client configuration its CLI logs in with, and the
//! authorization server's metadata (the IdP's own endpoints, filtered to the fields of flyteadmin's
//! `OAuth2MetadataResponse`). Both without a token, as flyteadmin marks them anonymous.

use std::vec::Vec;

use crate::decision::{Decision, Reason};
use crate::engine::Engine;
use crate::request::Request;
use crate::response;
use crate::vm::VmState;

impl Engine {
    /// `flyte.client_config_path`: `PublicClientAuthConfigResponse`.
    pub(crate) fn flyte_client_config(&self, req: &Request<'_>) -> Decision {
        let Some(f) = self.config.flyte.as_ref() else {
            return self.error(req, 404, Reason::MethodNotAllowed);
        };
        if req.method != "GET" && req.method != "HEAD" {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        response::json(
            200,
            &serde_json::json!({
                "client_id": f.client_id,
                "redirect_uri": f.redirect_uri,
                "scopes": f.scopes,
                "authorization_metadata_key": f.authorization_metadata_key,
                "service_http_endpoint": "",
                "audience": f.audience.as_deref().unwrap_or(""),
            }),
            Vec::new(),
            Reason::MetadataServed,
        )
    }

    /// `flyte.metadata_path`: the login issuer's metadata as RFC 8414 fields (503 until discovery has
    /// loaded in this worker).
    pub(crate) fn flyte_metadata(&self, req: &Request<'_>, vm: &VmState) -> Decision {
        if req.method != "GET" && req.method != "HEAD" {
            return self.error(req, 405, Reason::MethodNotAllowed);
        }
        let Some(provider) = vm.provider(0) else {
            return self.error(req, 503, Reason::ProviderNotReady);
        };
        let m = &provider.metadata;
        let list = |v: &Option<serde_json::Value>| match v {
            Some(serde_json::Value::Array(a)) if a.iter().all(serde_json::Value::is_string) => {
                serde_json::Value::Array(a.clone())
            }
            _ => serde_json::Value::Array(Vec::new()),
        };
        let device = match &m.device_authorization_endpoint {
            Some(serde_json::Value::String(s)) => s.as_str(),
            _ => "",
        };
        response::json(
            200,
            &serde_json::json!({
                "issuer": m.issuer,
                "authorization_endpoint": m.authorization_endpoint,
                "token_endpoint": m.token_endpoint,
                "response_types_supported": list(&m.response_types_supported),
                "scopes_supported": list(&m.scopes_supported),
                "token_endpoint_auth_methods_supported": list(&m.token_endpoint_auth_methods_supported),
                "jwks_uri": m.jwks_uri,
                "code_challenge_methods_supported": m.code_challenge_methods_supported.clone().unwrap_or_default(),
                "grant_types_supported": list(&m.grant_types_supported),
                "device_authorization_endpoint": device,
            }),
            Vec::new(),
            Reason::MetadataServed,
        )
    }
}
