//! Our own endpoints under the configured prefix, one module each.

mod backchannel;
pub(crate) mod login;
mod sign_out;
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
