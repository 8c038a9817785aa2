//! An in-process fake OpenID provider for tests (feature `testkit`): discovery, JWKS, an authorization
//! endpoint that logs in whoever is named, and a token endpoint that checks the code, `redirect_uri`,
//! PKCE and client authentication like a real one. Keys are fixed test keys, so tokens are reproducible.
//! Served in-process by the core simulation tests and over real sockets by the host-shim tests.
#![allow(
    clippy::missing_panics_doc,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::collections::BTreeMap;
use std::format;
use std::string::{String, ToString};
use std::vec::Vec;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwt_simple::prelude::*;
use serde_json::{json, Map, Value};

use crate::oidc::pkce::challenge_s256;
use crate::request::{encode_pairs, form_decode, query_param, split_query, AbsoluteUrl};

/// PKCS#8 PEM of the first test RSA key (`kid` `rsa-1`).
pub const RSA_1_PEM: &str = include_str!("rsa-1.pem");
/// PKCS#8 PEM of the second test RSA key (`kid` `rsa-2`), published only after [`FakeIdp::rotate`].
pub const RSA_2_PEM: &str = include_str!("rsa-2.pem");
/// The first key's public half, PEM: the "HMAC secret" of the algorithm-confusion attack.
pub const RSA_1_PUBLIC_PEM: &str = include_str!("rsa-1.pub.pem");

/// A code the fake IdP has issued.
#[derive(Debug, Clone)]
pub struct Grant {
    /// `client_id` of the authorization request.
    pub client_id: String,
    /// `redirect_uri` of the authorization request.
    pub redirect_uri: String,
    /// `nonce`.
    pub nonce: String,
    /// `code_challenge`.
    pub challenge: String,
    /// The user (becomes `sub`).
    pub user: String,
}

/// The fake provider.
pub struct FakeIdp {
    /// Issuer URL.
    pub issuer: String,
    /// The registered client.
    pub client_id: String,
    /// Its secret.
    pub client_secret: String,
    /// The client's one registered redirect URI (when set, others are refused like a real IdP would).
    pub registered_redirect_uri: Option<String>,
    /// Published keys, by kid.
    keys: Vec<(String, RS256KeyPair)>,
    /// Index of the signing key in `keys`.
    signing: usize,
    codes: BTreeMap<String, Grant>,
    counter: u64,
    /// The current time used for `iat`/`exp` of issued tokens.
    pub now: u64,
    /// When set, the next token response carries this ID token instead of a good one.
    pub id_token_override: Option<String>,
    /// When set, the token endpoint answers with this status and body.
    pub token_failure: Option<(u16, String)>,
    /// The nonce of the last authorization request.
    pub last_nonce: Option<String>,
    /// How many times the JWKS was served.
    pub jwks_served: u32,
    /// Access tokens issued, and whose they are (the userinfo endpoint answers for them).
    access_tokens: BTreeMap<String, String>,
    /// When set, the userinfo endpoint answers with this status and body.
    pub userinfo_override: Option<(u16, String)>,
    /// Claims the userinfo endpoint adds (on top of `sub`).
    pub userinfo_claims: Map<String, Value>,
    /// Introspection replies by opaque token (unknown tokens are `{"active": false}`).
    pub introspection: BTreeMap<String, Value>,
    /// How many introspection requests were served.
    pub introspected: u32,
    /// When set, the introspection endpoint answers with this status and body.
    pub introspection_override: Option<(u16, String)>,
    /// The IdP session id (`sid`) put in ID tokens.
    pub session_id: String,
    /// Bytes of padding added to every access token (to make sessions large).
    pub access_token_pad: usize,
    /// `expires_in` of access tokens.
    pub access_token_ttl: u64,
    /// Whether the code grant issues a refresh token.
    pub issue_refresh_tokens: bool,
    /// Whether a refresh consumes the refresh token and issues a new one (rotation).
    pub rotate_refresh_tokens: bool,
    /// Every access token issued and when it expires.
    pub access_token_expiry: BTreeMap<String, u64>,
    /// Live refresh tokens and their user.
    refresh_tokens: BTreeMap<String, String>,
    /// How many refresh-token grants succeeded.
    pub refreshes: u32,
    /// How many times a rotated-away (consumed) refresh token was presented again: IdPs with replay
    /// detection (oidc-provider) revoke the whole grant then.
    pub refresh_reuses: u32,
    consumed_refresh_tokens: std::collections::BTreeSet<String>,
    /// When set, the refresh-token grant answers with this status and body.
    pub refresh_failure: Option<(u16, String)>,
}

fn rsa(pem: &str, kid: &str) -> RS256KeyPair {
    match RS256KeyPair::from_pem(pem) {
        Ok(k) => k.with_key_id(kid),
        Err(e) => panic!("bad test key {kid}: {e}"),
    }
}

impl FakeIdp {
    /// A provider at `issuer` with client `app` / `app-secret`.
    #[must_use]
    pub fn new(issuer: &str) -> Self {
        FakeIdp {
            issuer: issuer.to_string(),
            client_id: "app".into(),
            client_secret: "app-secret".into(),
            registered_redirect_uri: None,
            keys: std::vec![("rsa-1".into(), rsa(RSA_1_PEM, "rsa-1"))],
            signing: 0,
            codes: BTreeMap::new(),
            counter: 0,
            now: 1_700_000_000,
            id_token_override: None,
            token_failure: None,
            last_nonce: None,
            jwks_served: 0,
            access_tokens: BTreeMap::new(),
            userinfo_override: None,
            userinfo_claims: Map::new(),
            introspection: BTreeMap::new(),
            introspected: 0,
            introspection_override: None,
            session_id: "idp-session-1".into(),
            access_token_pad: 0,
            access_token_ttl: 300,
            issue_refresh_tokens: false,
            rotate_refresh_tokens: true,
            refresh_tokens: BTreeMap::new(),
            access_token_expiry: BTreeMap::new(),
            refreshes: 0,
            refresh_reuses: 0,
            consumed_refresh_tokens: std::collections::BTreeSet::new(),
            refresh_failure: None,
        }
    }

    /// A new access token for `user`, remembered for userinfo.
    fn mint_access_token(&mut self, user: &str) -> String {
        self.counter += 1;
        let at = format!("at-{}{}", self.counter, "p".repeat(self.access_token_pad));
        self.access_tokens.insert(at.clone(), user.to_string());
        self.access_token_expiry
            .insert(at.clone(), self.now + self.access_token_ttl);
        at
    }

    /// A new refresh token for `user`.
    fn mint_refresh_token(&mut self, user: &str) -> String {
        self.counter += 1;
        let rt = format!("rt-{}", self.counter);
        self.refresh_tokens.insert(rt.clone(), user.to_string());
        rt
    }

    /// The refresh-token grant (RFC 6749 §6): a new access token, and with rotation a new refresh token
    /// (the old one is consumed; reusing it fails like at IdPs with replay detection).
    fn refresh(&mut self, rt: Option<String>) -> (u16, String) {
        if let Some((s, b)) = &self.refresh_failure {
            return (*s, b.clone());
        }
        if rt
            .as_ref()
            .is_some_and(|rt| self.consumed_refresh_tokens.contains(rt))
        {
            self.refresh_reuses += 1;
        }
        let Some(user) = rt
            .as_ref()
            .and_then(|rt| self.refresh_tokens.get(rt))
            .cloned()
        else {
            return (400, json!({"error": "invalid_grant"}).to_string());
        };
        self.refreshes += 1;
        let at = self.mint_access_token(&user);
        let mut body = json!({"access_token": at, "token_type": "Bearer", "expires_in": self.access_token_ttl, "scope": "openid email profile offline_access"});
        if self.rotate_refresh_tokens {
            if let Some(old) = &rt {
                self.refresh_tokens.remove(old);
                self.consumed_refresh_tokens.insert(old.clone());
            }
            body["refresh_token"] = json!(self.mint_refresh_token(&user));
        }
        (200, body.to_string())
    }

    /// Whether this refresh token is still live.
    #[must_use]
    pub fn refresh_token_live(&self, rt: &str) -> bool {
        self.refresh_tokens.contains_key(rt)
    }

    /// Publishes a second key and signs with it from now on (the old one stays published).
    pub fn rotate(&mut self) {
        self.keys.push(("rsa-2".into(), rsa(RSA_2_PEM, "rsa-2")));
        self.signing = self.keys.len() - 1;
    }

    /// The discovery document.
    #[must_use]
    pub fn discovery(&self) -> String {
        json!({
            "issuer": self.issuer,
            "authorization_endpoint": format!("{}/auth", self.issuer),
            "token_endpoint": format!("{}/token", self.issuer),
            "jwks_uri": format!("{}/jwks", self.issuer),
            "end_session_endpoint": format!("{}/session/end", self.issuer),
            "userinfo_endpoint": format!("{}/userinfo", self.issuer),
            "introspection_endpoint": format!("{}/introspect", self.issuer),
            "code_challenge_methods_supported": ["S256"],
        })
        .to_string()
    }

    /// The JWKS document (counts as served).
    pub fn jwks(&mut self) -> String {
        self.jwks_served += 1;
        let keys: Vec<Value> = self
            .keys
            .iter()
            .map(|(kid, k)| {
                let c = k.public_key().to_components();
                json!({"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
                       "n": URL_SAFE_NO_PAD.encode(c.n), "e": URL_SAFE_NO_PAD.encode(c.e)})
            })
            .collect();
        json!({ "keys": keys }).to_string()
    }

    /// Good ID-token claims for `user`.
    #[must_use]
    pub fn claims(&self, user: &str, nonce: &str) -> Map<String, Value> {
        let v = json!({
            "iss": self.issuer, "sub": user, "aud": self.client_id, "azp": self.client_id,
            "exp": self.now + 300, "iat": self.now, "nonce": nonce,
            "email": format!("{user}@example.com"), "email_verified": true,
            "name": format!("User {user}"), "preferred_username": user, "groups": ["staff", format!("team-{user}")], "sid": self.session_id,
        });
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    /// The claims of a good back-channel logout token for `sid` and/or `sub`.
    #[must_use]
    pub fn logout_claims(&self, sid: Option<&str>, sub: Option<&str>) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("iss".into(), json!(self.issuer));
        m.insert("aud".into(), json!(self.client_id));
        m.insert("iat".into(), json!(self.now));
        m.insert("exp".into(), json!(self.now + 120));
        m.insert("jti".into(), json!(format!("jti-{}", self.now)));
        m.insert(
            "events".into(),
            json!({"http://schemas.openid.net/event/backchannel-logout": {}}),
        );
        if let Some(sid) = sid {
            m.insert("sid".into(), json!(sid));
        }
        if let Some(sub) = sub {
            m.insert("sub".into(), json!(sub));
        }
        m
    }

    /// Signs arbitrary claims with the current key (RS256, with `kid`).
    #[must_use]
    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        sign_rs256(&self.keys[self.signing].1, claims)
    }

    /// The browser's visit to the authorization endpoint: returns the redirect back to the client
    /// (`redirect_uri?code&state&iss`) or an error text.
    pub fn authorize(&mut self, url: &str, user: &str) -> Result<String, String> {
        let q = split_query(url).1;
        let get = |n: &str| {
            query_param(q, n)
                .ok()
                .flatten()
                .ok_or_else(|| format!("missing {n}"))
        };
        if get("response_type")? != "code" {
            return Err("response_type must be code".into());
        }
        if get("client_id")? != self.client_id {
            return Err("unknown client".into());
        }
        if get("code_challenge_method")? != "S256" {
            return Err("S256 required".into());
        }
        let redirect_uri = get("redirect_uri")?;
        if self
            .registered_redirect_uri
            .as_ref()
            .is_some_and(|r| *r != redirect_uri)
        {
            return Err("redirect_uri not registered".into());
        }
        if !get("scope")?.split(' ').any(|s| s == "openid") {
            return Err("openid scope required".into());
        }
        self.counter += 1;
        let code = format!("code-{}", self.counter);
        let nonce = get("nonce")?;
        self.last_nonce = Some(nonce.clone());
        self.codes.insert(
            code.clone(),
            Grant {
                client_id: self.client_id.clone(),
                redirect_uri: redirect_uri.clone(),
                nonce,
                challenge: get("code_challenge")?,
                user: user.into(),
            },
        );
        let state = get("state")?;
        Ok(format!(
            "{redirect_uri}?{}",
            encode_pairs(&[("code", &code), ("state", &state), ("iss", &self.issuer)])
        ))
    }

    /// The token endpoint: `(status, JSON body)`.
    pub fn token(&mut self, body: &[u8], authorization: Option<&str>) -> (u16, String) {
        if let Some((s, b)) = &self.token_failure {
            return (*s, b.clone());
        }
        let form = String::from_utf8_lossy(body).into_owned();
        let get = |n: &str| query_param(&form, n).ok().flatten();
        let err = |e: &str| (400, json!({"error": e}).to_string());
        // Client authentication: basic, post, or none (public client with PKCE).
        let (id, secret) = match authorization.and_then(|a| a.strip_prefix("Basic ")) {
            Some(b64) => {
                let Some(pair) = STANDARD
                    .decode(b64)
                    .ok()
                    .and_then(|b| String::from_utf8(b).ok())
                else {
                    return (401, json!({"error": "invalid_client"}).to_string());
                };
                let (i, s) = pair.split_once(':').unwrap_or((&pair, ""));
                (form_decode(i), form_decode(s))
            }
            None => (get("client_id"), get("client_secret")),
        };
        if id.as_deref() != Some(self.client_id.as_str())
            || secret.as_deref().is_some_and(|s| s != self.client_secret)
        {
            return (401, json!({"error": "invalid_client"}).to_string());
        }
        match get("grant_type").as_deref() {
            Some("authorization_code") => {}
            Some("refresh_token") => return self.refresh(get("refresh_token")),
            _ => return err("unsupported_grant_type"),
        }
        let Some(grant) = get("code").and_then(|c| self.codes.remove(&c)) else {
            return err("invalid_grant");
        };
        if get("redirect_uri").as_deref() != Some(grant.redirect_uri.as_str()) {
            return err("invalid_grant");
        }
        if get("code_verifier").map(|v| challenge_s256(&v)).as_deref()
            != Some(grant.challenge.as_str())
        {
            return err("invalid_grant");
        }
        let _ = grant.client_id;
        let id_token = self
            .id_token_override
            .take()
            .unwrap_or_else(|| self.sign(&self.claims(&grant.user, &grant.nonce)));
        let at = self.mint_access_token(&grant.user);
        let mut body = json!({"access_token": at, "token_type": "Bearer", "expires_in": self.access_token_ttl, "id_token": id_token});
        if self.issue_refresh_tokens {
            body["refresh_token"] = json!(self.mint_refresh_token(&grant.user));
        }
        (200, body.to_string())
    }

    /// The userinfo endpoint: `sub` of the access token's user plus `userinfo_claims`.
    pub fn userinfo(&self, authorization: Option<&str>) -> (u16, String) {
        if let Some((s, b)) = &self.userinfo_override {
            return (*s, b.clone());
        }
        let user = authorization
            .and_then(|a| a.strip_prefix("Bearer "))
            .and_then(|t| self.access_tokens.get(t));
        match user {
            Some(u) => {
                let mut c = self.userinfo_claims.clone();
                c.insert("sub".into(), json!(u));
                (200, Value::Object(c).to_string())
            }
            None => (401, json!({"error": "invalid_token"}).to_string()),
        }
    }

    /// Serves a raw HTTP request (for host-shim tests): discovery, JWKS, token, authorization (user from
    /// `login_hint`, default `alice`) and end-session. Returns status, headers and body.
    pub fn serve(
        &mut self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let json_ct = || std::vec![("content-type".to_string(), "application/json".to_string())];
        let issuer_path = AbsoluteUrl::parse(&self.issuer).map_or(String::new(), |u| {
            u.path_and_query.trim_end_matches('/').to_string()
        });
        let local = path.strip_prefix(issuer_path.as_str()).unwrap_or(path);
        let (p, q) = split_query(local);
        match (method, p) {
            ("GET", "/.well-known/openid-configuration") => {
                (200, json_ct(), self.discovery().into_bytes())
            }
            ("GET", "/jwks") => (200, json_ct(), self.jwks().into_bytes()),
            ("POST", "/introspect") => {
                self.introspected += 1;
                if let Some((st, b)) = &self.introspection_override {
                    return (*st, json_ct(), b.clone().into_bytes());
                }
                if !authorization.is_some_and(|a| a.starts_with("Basic ")) {
                    return (401, json_ct(), br#"{"error":"invalid_client"}"#.to_vec());
                }
                let form = String::from_utf8_lossy(body).into_owned();
                let token = query_param(&form, "token")
                    .ok()
                    .flatten()
                    .unwrap_or_default();
                let reply = self
                    .introspection
                    .get(&token)
                    .cloned()
                    .unwrap_or_else(|| json!({"active": false}));
                (200, json_ct(), reply.to_string().into_bytes())
            }
            ("GET", "/userinfo") => {
                let (s, b) = self.userinfo(authorization);
                (s, json_ct(), b.into_bytes())
            }
            ("POST", "/token") => {
                let (s, b) = self.token(body, authorization);
                (s, json_ct(), b.into_bytes())
            }
            ("GET", "/auth") => {
                let user = query_param(q, "login_hint")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "alice".into());
                match self.authorize(path, &user) {
                    Ok(loc) => (302, std::vec![("location".to_string(), loc)], Vec::new()),
                    Err(e) => (400, Vec::new(), e.into_bytes()),
                }
            }
            ("GET", "/session/end") => {
                let to = query_param(q, "post_logout_redirect_uri")
                    .ok()
                    .flatten()
                    .unwrap_or_else(|| "/".into());
                (302, std::vec![("location".to_string(), to)], Vec::new())
            }
            _ => (404, Vec::new(), b"not found".to_vec()),
        }
    }
}

/// jwt-simple claims that serialize to exactly `claims` (every standard field left to the map).
fn exactly(claims: &Map<String, Value>) -> JWTClaims<Map<String, Value>> {
    JWTClaims {
        issued_at: None,
        expires_at: None,
        invalid_before: None,
        issuer: None,
        subject: None,
        audiences: None,
        jwt_id: None,
        nonce: None,
        custom: claims.clone(),
    }
}

impl FakeIdp {
    /// Serves a request's callouts (token endpoint, JWKS, ...) until the engine decides: what a host
    /// does with `Decision::Callout`, for simulations outside the core's own tests (fuzzing, the
    /// native profile).
    pub fn drive(
        &mut self,
        engine: &crate::Engine,
        mut d: crate::Decision,
        now: crate::UnixTime,
        rng: &mut (impl rand_core::RngCore + rand_core::CryptoRng),
        vm: &mut crate::VmState,
    ) -> crate::Decision {
        while let crate::Decision::Callout { callout, pending } = d {
            let auth = callout
                .headers
                .iter()
                .find(|(n, _)| n == "authorization")
                .map(|(_, v)| v.clone());
            let (status, _, body) = self.serve(
                callout.method,
                &callout.path,
                auth.as_deref(),
                &callout.body,
            );
            d = engine.handle_callout_response(
                pending,
                crate::CalloutResponse::Received {
                    status,
                    body: &body,
                },
                now,
                rng,
                vm,
            );
        }
        d
    }
}

/// Signs `claims` as given (nothing added) with an RS256 key.
#[must_use]
pub fn sign_rs256(key: &RS256KeyPair, claims: &Map<String, Value>) -> String {
    let c = exactly(claims);
    key.sign(c).unwrap_or_default()
}

/// A JWT with an arbitrary header and payload and the given signature bytes (for attack tokens).
#[must_use]
pub fn raw_jwt(header: &Value, claims: &Map<String, Value>, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

/// The algorithm-confusion attack: HS256 over the token, keyed with the RSA *public* key's PEM.
#[must_use]
pub fn hs256_with_public_key(kid: &str, claims: &Map<String, Value>) -> String {
    let key = HS256Key::from_bytes(RSA_1_PUBLIC_PEM.as_bytes()).with_key_id(kid);
    let c = exactly(claims);
    key.authenticate(c).unwrap_or_default()
}

/// An RS256 key pair loaded from one of the fixed PEMs, with a kid.
#[must_use]
pub fn test_key(pem: &str, kid: &str) -> RS256KeyPair {
    rsa(pem, kid)
}
