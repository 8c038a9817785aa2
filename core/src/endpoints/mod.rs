//! Our own endpoints under the configured prefix, one module each.

mod backchannel;
mod cli;
mod flyte;
pub(crate) mod login;
mod sign_out;
pub(crate) mod sts;
mod userinfo;

/// One of our endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    /// `{prefix}/ping` (and the configured ping path): liveness.
    Ping,
    /// `{prefix}/ready` (and the configured ready path): readiness, every issuer's keys loaded.
    Ready,
    /// `{prefix}/start?rd=`: begin a login.
    Start,
    /// `{prefix}/callback`: the IdP's redirect back.
    Callback,
    /// `{prefix}/sign_out`.
    SignOut,
    /// `{prefix}/userinfo`: the session as JSON.
    UserInfo,
    /// `{prefix}/backchannel_logout`: the IdP ends sessions (OIDC Back-Channel Logout 1.0).
    BackchannelLogout,
    /// `{prefix}/auth`: oauth2-proxy's auth request (202 with `X-Auth-Request-*`, or 401).
    Auth,
    /// `{prefix}/token`: the session token page for CLIs.
    Token,
    /// `{prefix}/jwks.json`: the public keys of the tokens the STS mints.
    Jwks,
    /// Flyte's public client configuration (`flyte.client_config_path`).
    FlyteClientConfig,
    /// The OAuth 2.0 authorization-server metadata for Flyte's clients (`flyte.metadata_path`).
    FlyteMetadata,
    /// The token exchange in lakeFS's client shape (`sts.path`).
    StsLogin,
    /// The token exchange in lakeFS's remote-authenticator shape (`sts.authenticator_path`).
    StsAuthenticator,
}

impl Endpoint {
    /// The endpoint a raw path (no query) names, if any. Exact names only: `{prefix}/callback/x` is not
    /// ours and goes through the policy like any other path.
    pub(crate) fn parse(path: &str, prefix: &str) -> Option<Endpoint> {
        match path.strip_prefix(prefix)?.strip_prefix('/')? {
            "ping" => Some(Endpoint::Ping),
            "ready" => Some(Endpoint::Ready),
            "start" => Some(Endpoint::Start),
            "callback" => Some(Endpoint::Callback),
            "sign_out" => Some(Endpoint::SignOut),
            "userinfo" => Some(Endpoint::UserInfo),
            "backchannel_logout" => Some(Endpoint::BackchannelLogout),
            "auth" => Some(Endpoint::Auth),
            "token" => Some(Endpoint::Token),
            "jwks.json" => Some(Endpoint::Jwks),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_exact_endpoint_names_are_ours() {
        assert_eq!(
            Endpoint::parse("/oauth2/callback", "/oauth2"),
            Some(Endpoint::Callback)
        );
        for p in [
            "/oauth2/callback/",
            "/oauth2/callbackx",
            "/oauth2x/callback",
            "/oauth2",
            "/x/oauth2/ping",
        ] {
            assert_eq!(Endpoint::parse(p, "/oauth2"), None, "{p}");
        }
    }
}
