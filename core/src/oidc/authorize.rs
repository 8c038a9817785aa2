//! The authorization request (OIDC Core §3.1.2.1) with PKCE (RFC 7636 §4.3).

use alloc::string::String;

use crate::request::encode_pairs;

/// What goes into the authorization URL.
#[derive(Debug, Clone)]
pub struct AuthorizeParams<'a> {
    /// The provider's `authorization_endpoint`.
    pub endpoint: &'a str,
    /// `client_id`.
    pub client_id: &'a str,
    /// `redirect_uri`.
    pub redirect_uri: &'a str,
    /// Space-joined scopes.
    pub scope: &'a str,
    /// `state`.
    pub state: &'a str,
    /// `nonce`.
    pub nonce: &'a str,
    /// `code_challenge` (S256).
    pub code_challenge: &'a str,
    /// `prompt`, when configured.
    pub prompt: Option<&'a str>,
}

/// The URL to redirect the browser to.
#[must_use]
pub fn authorization_url(p: &AuthorizeParams<'_>) -> String {
    let mut pairs = alloc::vec![
        ("response_type", "code"),
        ("client_id", p.client_id),
        ("redirect_uri", p.redirect_uri),
        ("scope", p.scope),
        ("state", p.state),
        ("nonce", p.nonce),
        ("code_challenge", p.code_challenge),
        ("code_challenge_method", "S256"),
    ];
    if let Some(prompt) = p.prompt {
        pairs.push(("prompt", prompt));
    }
    let query = encode_pairs(&pairs);
    let sep = if p.endpoint.contains('?') { '&' } else { '?' };
    let mut url = String::with_capacity(p.endpoint.len() + 1 + query.len());
    url.push_str(p.endpoint);
    url.push(sep);
    url.push_str(&query);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_is_present_and_encoded() {
        let u = authorization_url(&AuthorizeParams {
            endpoint: "https://idp/auth",
            client_id: "app",
            redirect_uri: "https://app/oauth2/callback",
            scope: "openid email",
            state: "st",
            nonce: "no",
            code_challenge: "cc",
            prompt: None,
        });
        assert_eq!(
            u,
            "https://idp/auth?response_type=code&client_id=app&redirect_uri=https%3A%2F%2Fapp%2Foauth2%2Fcallback\
             &scope=openid%20email&state=st&nonce=no&code_challenge=cc&code_challenge_method=S256"
        );
        let u2 = authorization_url(&AuthorizeParams {
            endpoint: "https://idp/auth?tenant=x",
            ..AuthorizeParams {
                endpoint: "",
                client_id: "a",
                redirect_uri: "r",
                scope: "openid",
                state: "s",
                nonce: "n",
                code_challenge: "c",
                prompt: Some("consent"),
            }
        });
        assert!(u2.starts_with("https://idp/auth?tenant=x&response_type=code"));
        assert!(
            u2.ends_with("&code_challenge_method=S256&prompt=consent"),
            "{u2}"
        );
    }
}
