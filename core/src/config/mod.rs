//! The plugin configuration: the JSON in Envoy's `configuration` / Istio's `pluginConfig`, parsed and
//! checked once. Every error names the field (`cookie.keys[0].secret: ...`). Unknown fields are errors,
//! so a typo never silently falls back to a default.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use serde::Deserialize;

mod bearer;
mod claims;
mod cookie;
mod flyte;
mod issuers;
mod operations;
mod routes;
#[cfg(feature = "oidc")]
mod sts;

pub use bearer::{BearerIssuer, Introspection};
pub use claims::{ClaimNames, Field, HeaderSource, MappedHeader};
pub use flyte::Flyte;
pub use issuers::IssuerConfig;
pub use operations::{Health, LogFormat};
#[cfg(feature = "oidc")]
pub use sts::{SigningKey, Sts, StsKey, MAX_STS_TTL};

use crate::oidc::Alg;
use crate::policy::headers::IDENTITY_HEADERS;
use crate::policy::path::normalize_path;
use crate::policy::redirect::{split_entry, validate_redirect};
use crate::policy::rules::{Accept, Action, Policy};
use crate::request::AbsoluteUrl;
use crate::session::cookie::CookieAttributes;
use crate::session::keyring::KeyRing;
use crate::session::Secret;

/// Why a configuration was refused. Each names the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// Not valid JSON, a wrong type, a missing required field or an unknown field (serde's message names
    /// it, with line and column).
    Json(String),
    /// A field is present but its value is not acceptable.
    Invalid {
        /// Dotted path of the field, e.g. `cookie.keys[0].secret`.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Json(m) => write!(f, "invalid plugin configuration: {m}"),
            ConfigError::Invalid { field, problem } => {
                write!(f, "invalid plugin configuration: {field}: {problem}")
            }
        }
    }
}

fn invalid(field: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        field: field.into(),
        problem: problem.into(),
    }
}

/// How we authenticate to the token endpoint (OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: `client_id` in the body, PKCE alone proves possession.
    None,
}

/// The checked configuration.
#[derive(Debug)]
pub struct Config {
    /// The OpenID issuer, exactly as it appears in `iss`.
    pub issuer: String,
    /// Envoy cluster (host-shim: logical name) through which the IdP is reached.
    pub idp_cluster: String,
    /// OAuth client id.
    pub client_id: String,
    /// OAuth client secret (absent for public clients).
    pub client_secret: Option<Secret>,
    /// Token endpoint authentication.
    pub client_auth: ClientAuth,
    /// Fixed redirect URI; derived from the request's scheme and host when absent.
    pub redirect_url: Option<String>,
    /// Space-joined scopes.
    pub scope: String,
    /// The authorization request's `prompt`, if any (OIDC Core §3.1.2.1). Defaults to `consent` when
    /// the scopes ask for `offline_access`, as OIDC Core §11 requires for a refresh token.
    pub prompt: Option<String>,
    /// Endpoint prefix, e.g. `/oauth2`.
    pub prefix: String,
    /// Session cookie name; login cookies are `<name>_login_<id>`.
    pub cookie_name: String,
    /// `Secure`, `Domain`.
    pub cookie_attributes: CookieAttributes,
    /// Session lifetime.
    pub session_ttl: u64,
    /// Login attempt lifetime.
    pub login_ttl: u64,
    /// Cap on pending login cookies per browser.
    pub max_pending_logins: usize,
    /// The cookie keys.
    pub keys: KeyRing,
    /// Claim names.
    pub claims: ClaimNames,
    /// Send `X-Forwarded-Access-Token`.
    pub pass_access_token: bool,
    /// Send `Authorization: Bearer <access token>`.
    pub pass_authorization_header: bool,
    /// Which families of built-in identity headers go upstream (`headers.identity`).
    pub identity_families: IdentityFamilies,
    /// Hosts (and ports) an absolute redirect may go to.
    pub allowed_redirect_domains: Vec<String>,
    /// Forward and use an email the IdP has not verified (`email_verified` not `true`). Off by default:
    /// an unverified email is whatever the user typed at the IdP.
    pub insecure_allow_unverified_email: bool,
    /// What sealed values are bound to: this issuer and client id. Sessions sealed for another binding do
    /// not open here.
    pub binding: String,
    /// The bindings whose sessions this deployment accepts: its own first, then one per
    /// `cookie.accept_client_ids` entry (same issuer, another client sharing the key ring).
    pub accepted_bindings: Vec<String>,
    /// The routing policy.
    pub policy: Policy,
    /// Where to land after sign-out when `rd` is absent.
    pub post_logout_redirect_url: String,
    /// ID token algorithm allowlist.
    pub allowed_algs: Vec<Alg>,
    /// Leeway for `exp`, `iat`, `nbf`.
    pub leeway: u64,
    /// Discovery + JWKS refresh period.
    pub refresh_interval: u64,
    /// Minimum time between JWKS refetches triggered by an unknown `kid`.
    pub jwks_min_refetch_interval: u64,
    /// Timeout for IdP callouts.
    pub callout_timeout_ms: u64,
    /// Per-VM opened-session cache size.
    pub session_cache_size: usize,
    /// The issuers whose keys each VM keeps fresh; index 0 is the login issuer.
    pub issuers: Vec<IssuerConfig>,
    /// Issuers of accepted bearer tokens.
    pub bearer: Vec<BearerIssuer>,
    /// Per-VM verified-token cache size.
    pub token_cache_size: usize,
    /// Claim paths kept in identities and sessions (those rules and mapped headers refer to).
    pub kept_claims: Vec<String>,
    /// Every header name we set upstream (lower-case): stripped from every forwarded request first.
    pub owned_headers: Vec<String>,
    /// Health-check paths outside the prefix.
    pub health: Health,
    /// How decision log lines are written.
    pub log_format: LogFormat,
    /// `metrics.upstream_status`: read every forwarded response's status for `requests_total{code}`
    /// (default); `false` counts forwarded requests as `code="upstream"` and saves the host call.
    pub metrics_upstream_status: bool,
    /// Whether `{prefix}/token` (the session token page for CLIs) is served.
    pub token_page: bool,
    /// Flyte's client configuration and metadata endpoints, when configured.
    pub flyte: Option<Flyte>,
    /// The token exchange, when configured.
    #[cfg(feature = "oidc")]
    pub sts: Option<Sts>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    issuer: String,
    idp_cluster: String,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    client_auth: Option<String>,
    #[serde(default)]
    redirect_url: Option<String>,
    #[serde(default = "default_scopes")]
    scopes: Vec<String>,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default = "default_prefix")]
    prefix: String,
    cookie: cookie::RawCookie,
    #[serde(default)]
    headers: RawHeaders,
    #[serde(default)]
    claims: claims::RawClaims,
    #[serde(default)]
    allowed_redirect_domains: Vec<String>,
    #[serde(default)]
    insecure_allow_unverified_email: bool,
    #[serde(default)]
    public_paths: Vec<String>,
    #[serde(default)]
    routes: routes::RawRoutes,
    #[serde(default)]
    bearer: bearer::RawBearer,
    #[serde(default)]
    post_logout_redirect_url: Option<String>,
    #[serde(default)]
    id_token: RawIdToken,
    #[serde(default)]
    provider: RawProvider,
    #[serde(default = "default_cache")]
    session_cache_size: usize,
    #[serde(default)]
    health: operations::RawHealth,
    #[serde(default)]
    log: operations::RawLog,
    #[serde(default)]
    metrics: operations::RawMetrics,
    #[serde(default)]
    token_page: bool,
    #[serde(default)]
    flyte: Option<flyte::RawFlyte>,
    #[cfg(feature = "oidc")]
    #[serde(default)]
    sts: Option<sts::RawSts>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHeaders {
    #[serde(default)]
    pass_access_token: bool,
    #[serde(default)]
    pass_authorization_header: bool,
    #[serde(default)]
    identity: Option<Vec<String>>,
}

/// The families of built-in identity headers sent upstream. Both are oauth2-proxy's: `X-Forwarded-*`
/// (its `--pass-user-headers`) and `X-Auth-Request-*` (its `--set-xauthrequest`). Every spelling of
/// both is stripped from what clients send whichever are sent; each one sent costs the filter a host
/// call per request, so naming only the family the upstream reads is the cheapest configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdentityFamilies {
    /// `X-Forwarded-User`, `-Email`, `-Groups`, `-Preferred-Username`.
    pub forwarded: bool,
    /// `X-Auth-Request-User`, `-Email`, `-Groups`, `-Preferred-Username`.
    pub auth_request: bool,
}

impl IdentityFamilies {
    fn parse(names: Option<Vec<String>>) -> Result<Self, ConfigError> {
        let Some(names) = names else {
            return Ok(IdentityFamilies {
                forwarded: true,
                auth_request: true,
            });
        };
        let mut f = IdentityFamilies {
            forwarded: false,
            auth_request: false,
        };
        for (i, n) in names.iter().enumerate() {
            match n.as_str() {
                "x-forwarded" => f.forwarded = true,
                "x-auth-request" => f.auth_request = true,
                _ => {
                    return Err(invalid(
                        format!("headers.identity[{i}]"),
                        "must be \"x-forwarded\" or \"x-auth-request\"",
                    ))
                }
            }
        }
        Ok(f)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIdToken {
    #[serde(default = "default_algs")]
    allowed_algs: Vec<String>,
    #[serde(default = "default_leeway")]
    leeway_seconds: u64,
}

impl Default for RawIdToken {
    fn default() -> Self {
        RawIdToken {
            allowed_algs: default_algs(),
            leeway_seconds: default_leeway(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    #[serde(default = "default_refresh")]
    refresh_interval_seconds: u64,
    #[serde(default = "default_refetch")]
    jwks_min_refetch_interval_seconds: u64,
    #[serde(default = "default_timeout")]
    callout_timeout_ms: u64,
}

impl Default for RawProvider {
    fn default() -> Self {
        RawProvider {
            refresh_interval_seconds: default_refresh(),
            jwks_min_refetch_interval_seconds: default_refetch(),
            callout_timeout_ms: default_timeout(),
        }
    }
}

fn default_scopes() -> Vec<String> {
    vec![
        "openid".to_string(),
        "email".to_string(),
        "profile".to_string(),
    ]
}
fn default_prefix() -> String {
    "/oauth2".to_string()
}
fn default_cache() -> usize {
    1024
}
fn default_algs() -> Vec<String> {
    Alg::ALL.iter().map(|a| a.name().to_string()).collect()
}
fn default_leeway() -> u64 {
    60
}
fn default_refresh() -> u64 {
    600
}
fn default_refetch() -> u64 {
    30
}
fn default_timeout() -> u64 {
    5000
}

pub(super) fn host_name(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-'))
}

/// The binding of sealed values: issuer and client id, joined by a NUL (which neither may contain).
fn binding_of(issuer: &str, client_id: &str) -> String {
    format!("{issuer}\0{client_id}")
}

/// Parses an algorithm allowlist; `field` names it in errors.
fn parse_algs(field: &str, names: &[String]) -> Result<Vec<Alg>, ConfigError> {
    let mut algs = Vec::new();
    for (i, a) in names.iter().enumerate() {
        let alg = Alg::from_name(a).ok_or_else(|| {
            invalid(
                format!("{field}[{i}]"),
                format!("{a:?} is not supported (none and HMAC are never accepted); use RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384 or EdDSA"),
            )
        })?;
        algs.push(alg);
    }
    if algs.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    Ok(algs)
}

impl Config {
    /// Parses and checks the plugin JSON.
    pub fn from_json(bytes: &[u8]) -> Result<Config, ConfigError> {
        let raw: RawConfig =
            crate::json::from_object(bytes).map_err(|e| ConfigError::Json(e.to_string()))?;
        Config::check(raw)
    }

    fn check(raw: RawConfig) -> Result<Config, ConfigError> {
        let issuer_url = AbsoluteUrl::parse(&raw.issuer)
            .ok_or_else(|| invalid("issuer", "must be an absolute http(s) URL without userinfo"))?;
        if raw.issuer.contains(['?', '#']) {
            return Err(invalid(
                "issuer",
                "must not have a query or fragment (OIDC Discovery §2)",
            ));
        }
        let _ = issuer_url;
        if raw.idp_cluster.trim().is_empty() {
            return Err(invalid(
                "idp_cluster",
                "must name the Envoy cluster that reaches the IdP",
            ));
        }
        if raw.client_id.is_empty() || raw.client_id.contains('\0') {
            return Err(invalid("client_id", "must not be empty"));
        }
        let client_secret = raw.client_secret.filter(|s| !s.is_empty()).map(Secret);
        let client_auth = match (raw.client_auth.as_deref(), &client_secret) {
            (None, Some(_)) | (Some("client_secret_basic"), Some(_)) => {
                ClientAuth::ClientSecretBasic
            }
            (Some("client_secret_post"), Some(_)) => ClientAuth::ClientSecretPost,
            (None, None) | (Some("none"), None) => ClientAuth::None,
            (Some("none"), Some(_)) => {
                return Err(invalid(
                    "client_auth",
                    "is \"none\" (public client) but client_secret is set",
                ))
            }
            (Some("client_secret_basic" | "client_secret_post"), None) => {
                return Err(invalid(
                    "client_secret",
                    "is required by the chosen client_auth",
                ))
            }
            (Some(other), _) => {
                return Err(invalid(
                    "client_auth",
                    format!(
                    "unknown method {other:?}; use client_secret_basic, client_secret_post or none"
                ),
                ))
            }
        };
        let prefix = raw.prefix;
        if !prefix.starts_with('/')
            || prefix.len() < 2
            || prefix.ends_with('/')
            || normalize_path(&prefix).as_deref() != Some(prefix.as_str())
        {
            return Err(invalid(
                "prefix",
                "must be a normalized path like /oauth2 (no trailing slash)",
            ));
        }
        if let Some(r) = &raw.redirect_url {
            let u = AbsoluteUrl::parse(r)
                .ok_or_else(|| invalid("redirect_url", "must be an absolute http(s) URL"))?;
            if u.path_and_query != format!("{prefix}/callback") {
                return Err(invalid(
                    "redirect_url",
                    format!("path must be {prefix}/callback, the callback endpoint"),
                ));
            }
        }
        if !raw.scopes.iter().any(|s| s == "openid") {
            return Err(invalid("scopes", "must include \"openid\""));
        }
        if raw
            .scopes
            .iter()
            .any(|s| s.is_empty() || s.bytes().any(|b| b <= b' ' || b == b'"' || b == b'\\'))
        {
            return Err(invalid(
                "scopes",
                "each scope must be a non-empty token without spaces",
            ));
        }
        if let Some(p) = &raw.prompt {
            let known = ["none", "login", "consent", "select_account"];
            if p.is_empty() || p.split(' ').any(|v| !known.contains(&v)) {
                return Err(invalid(
                    "prompt",
                    "space-separated values from none, login, consent, select_account",
                ));
            }
        }
        for (i, d) in raw.allowed_redirect_domains.iter().enumerate() {
            let ok = split_entry(d)
                .is_some_and(|(host, _)| host_name(host.strip_prefix('.').unwrap_or(host)));
            if !ok {
                return Err(invalid(
                    format!("allowed_redirect_domains[{i}]"),
                    "must be a host name or .domain (subdomains too), optionally with :port or :*",
                ));
            }
        }
        let c = cookie::cookie(raw.cookie)?;
        let post_logout = match raw.post_logout_redirect_url {
            Some(u) => validate_redirect(&u, &raw.allowed_redirect_domains).ok_or_else(|| {
                invalid(
                    "post_logout_redirect_url",
                    "must be a local path or a URL on allowed_redirect_domains",
                )
            })?,
            None => "/".to_string(),
        };
        let algs = parse_algs("id_token.allowed_algs", &raw.id_token.allowed_algs)?;
        if raw.id_token.leeway_seconds > 600 {
            return Err(invalid("id_token.leeway_seconds", "must be at most 600"));
        }
        let p = raw.provider;
        if p.refresh_interval_seconds < 10 {
            return Err(invalid(
                "provider.refresh_interval_seconds",
                "must be at least 10",
            ));
        }
        if p.callout_timeout_ms == 0 || p.callout_timeout_ms > 60_000 {
            return Err(invalid(
                "provider.callout_timeout_ms",
                "must be between 1 and 60000",
            ));
        }
        let binding = binding_of(&raw.issuer, &raw.client_id);
        let mut accepted_bindings = vec![binding.clone()];
        for id in &c.accept_client_ids {
            let b = binding_of(&raw.issuer, id);
            if !accepted_bindings.contains(&b) {
                accepted_bindings.push(b);
            }
        }
        let claims = claims::claims(raw.claims)?;
        let policy = routes::policy(raw.routes, &raw.public_paths)?;
        let headers = &claims.headers;
        let mut kept_claims = routes::claim_paths(&policy);
        for h in headers {
            if let HeaderSource::Claim(c) = &h.from {
                if !kept_claims.contains(c) {
                    kept_claims.push(c.clone());
                }
            }
        }
        let mut owned_headers: Vec<String> =
            IDENTITY_HEADERS.iter().map(|h| h.to_string()).collect();
        owned_headers.extend(headers.iter().map(|h| h.name.clone()));
        let login_issuer = IssuerConfig {
            issuer: raw.issuer.clone(),
            cluster: raw.idp_cluster.clone(),
            jwks_uri: None,
            refresh_interval: p.refresh_interval_seconds,
            jwks_min_refetch_interval: p.jwks_min_refetch_interval_seconds,
            callout_timeout_ms: p.callout_timeout_ms,
        };
        let mut issuers = vec![login_issuer];
        let (bearer, token_cache_size) =
            bearer::bearer(raw.bearer, &mut issuers, &algs, raw.id_token.leeway_seconds)?;
        let takes_bearer = policy
            .rules
            .iter()
            .map(|r| &r.route)
            .chain([&policy.default])
            .any(|r| r.action == Action::Authenticate && r.accept != Accept::Session);
        #[cfg(feature = "oidc")]
        let sts = raw.sts.map(|s| sts::sts(s, &prefix)).transpose()?;
        #[cfg(feature = "oidc")]
        if let Some(st) = &sts {
            // Tokens with the STS's `iss` are verified with the STS's keys only: an IdP of that name
            // would silently have every token refused.
            if st.issuer == raw.issuer || bearer.iter().any(|b| b.issuer == st.issuer) {
                return Err(invalid(
                    "sts.issuer",
                    "must differ from the login issuer and every bearer.issuers entry",
                ));
            }
        }
        #[cfg(feature = "oidc")]
        let own_tokens = sts.is_some();
        #[cfg(not(feature = "oidc"))]
        let own_tokens = false;
        if takes_bearer && bearer.is_empty() && !own_tokens {
            return Err(invalid(
                "bearer.issuers",
                "routes accept bearer tokens but no issuer (bearer.issuers, or the sts) is configured",
            ));
        }
        let health = operations::health(raw.health, &prefix)?;
        let log_format = operations::log(raw.log)?;
        let flyte = raw.flyte.map(|f| flyte::flyte(f, &prefix)).transpose()?;
        Ok(Config {
            health,
            log_format,
            metrics_upstream_status: raw.metrics.upstream_status,
            token_page: raw.token_page,
            flyte,
            #[cfg(feature = "oidc")]
            sts,
            issuers,
            bearer,
            token_cache_size,
            kept_claims,
            owned_headers,
            binding,
            accepted_bindings,
            insecure_allow_unverified_email: raw.insecure_allow_unverified_email,
            issuer: raw.issuer,
            idp_cluster: raw.idp_cluster,
            client_id: raw.client_id,
            client_secret,
            client_auth,
            redirect_url: raw.redirect_url,
            scope: raw.scopes.join(" "),
            prompt: raw.prompt.or_else(|| {
                raw.scopes
                    .iter()
                    .any(|s| s == "offline_access")
                    .then(|| String::from("consent"))
            }),
            prefix,
            cookie_name: c.name,
            cookie_attributes: c.attributes,
            session_ttl: c.session_ttl,
            login_ttl: c.login_ttl,
            max_pending_logins: c.max_pending_logins,
            keys: c.keys,
            claims,
            pass_access_token: raw.headers.pass_access_token,
            pass_authorization_header: raw.headers.pass_authorization_header,
            identity_families: IdentityFamilies::parse(raw.headers.identity)?,
            allowed_redirect_domains: raw.allowed_redirect_domains,
            policy,
            post_logout_redirect_url: post_logout,
            allowed_algs: algs,
            leeway: raw.id_token.leeway_seconds,
            refresh_interval: p.refresh_interval_seconds,
            jwks_min_refetch_interval: p.jwks_min_refetch_interval_seconds,
            callout_timeout_ms: p.callout_timeout_ms,
            session_cache_size: raw.session_cache_size,
        })
    }

    /// The login cookie name prefix: `<cookie name>_login_`.
    #[must_use]
    pub fn login_cookie_prefix(&self) -> String {
        format!("{}_login_", self.cookie_name)
    }

    /// True for any cookie name that is ours (session, login or hint).
    #[must_use]
    pub fn is_our_cookie(&self, name: &str) -> bool {
        match name.strip_prefix(self.cookie_name.as_str()) {
            Some("" | "_hint") => true,
            Some(rest) => {
                rest.starts_with("_login_")
                    || crate::session::chunks::is_chunk_name(name, &self.cookie_name)
            }
            None => false,
        }
    }

    /// True for the session cookie and its chunks (not the login or hint cookies).
    #[must_use]
    pub fn is_session_cookie(&self, name: &str) -> bool {
        name == self.cookie_name || crate::session::chunks::is_chunk_name(name, &self.cookie_name)
    }

    /// The ID-token hint cookie's name (`<cookie name>_hint`) and path (the sign-out endpoint).
    #[must_use]
    pub fn hint_cookie(&self) -> (String, String) {
        (
            format!("{}_hint", self.cookie_name),
            format!("{}/sign_out", self.prefix),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="; // 32 bytes

    fn base() -> serde_json::Value {
        serde_json::json!({
            "issuer": "http://127.0.0.1:9000",
            "idp_cluster": "idp",
            "client_id": "app",
            "client_secret": "s3cret",
            "cookie": {"keys": [{"id": "k1", "secret": KEY}]}
        })
    }

    fn set(v: &mut serde_json::Value, ptr: &str, value: serde_json::Value) {
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        let target = if parent.is_empty() {
            v
        } else {
            v.pointer_mut(parent).unwrap()
        };
        match target {
            serde_json::Value::Object(o) => {
                o.insert(key.to_string(), value);
            }
            serde_json::Value::Array(a) => a[key.parse::<usize>().unwrap()] = value,
            _ => panic!("{ptr} is not inside an object or array"),
        }
    }

    fn err_of(v: serde_json::Value) -> String {
        Config::from_json(v.to_string().as_bytes())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn minimal_config_gets_documented_defaults() {
        let c = Config::from_json(base().to_string().as_bytes()).unwrap();
        assert_eq!(c.scope, "openid email profile");
        assert_eq!(c.prefix, "/oauth2");
        assert_eq!(c.cookie_name, "_portcullis");
        assert!(c.cookie_attributes.secure);
        assert_eq!(c.client_auth, ClientAuth::ClientSecretBasic);
        assert_eq!(
            (c.session_ttl, c.login_ttl, c.max_pending_logins),
            (28800, 600, 20)
        );
        assert_eq!(c.allowed_algs.len(), 9);
        assert!(!c.insecure_allow_unverified_email);
        assert_eq!(c.accepted_bindings, vec![c.binding.clone()]);
        assert!(c.is_our_cookie("_portcullis") && c.is_our_cookie("_portcullis_login_abc"));
        assert!(!c.is_our_cookie("_portcullisx") && !c.is_our_cookie("other"));
        assert!(
            !format!("{c:?}").contains("s3cret"),
            "Debug must not print the client secret"
        );
    }

    #[test]
    fn errors_name_the_field() {
        let cases: &[(&str, serde_json::Value, &str)] = &[
            ("/issuer", serde_json::json!("not a url"), "issuer:"),
            (
                "/client_auth",
                serde_json::json!("private_key_jwt"),
                "client_auth:",
            ),
            (
                "/cookie/keys/0/secret",
                serde_json::json!("c2hvcnQ="),
                "cookie.keys[0].secret:",
            ),
            ("/cookie/keys", serde_json::json!([]), "cookie.keys:"),
            (
                "/id_token",
                serde_json::json!({"allowed_algs": ["RS256", "HS256"]}),
                "id_token.allowed_algs[1]:",
            ),
            (
                "/id_token",
                serde_json::json!({"allowed_algs": ["none"]}),
                "id_token.allowed_algs[0]:",
            ),
            ("/scopes", serde_json::json!(["email"]), "scopes:"),
            (
                "/public_paths",
                serde_json::json!(["/ok/*", "/a/../b"]),
                "public_paths[1]:",
            ),
            (
                "/redirect_url",
                serde_json::json!("https://app/elsewhere"),
                "redirect_url:",
            ),
            (
                "/post_logout_redirect_url",
                serde_json::json!("https://evil.com/"),
                "post_logout_redirect_url:",
            ),
            ("/prefix", serde_json::json!("oauth2/"), "prefix:"),
            (
                "/public_paths",
                serde_json::json!(["/a//b"]),
                "public_paths[0]:",
            ),
            (
                "/public_paths",
                serde_json::json!(["static/*"]),
                "public_paths[0]:",
            ),
            (
                "/cookie/domain",
                serde_json::json!("bad domain"),
                "cookie.domain:",
            ),
            (
                "/cookie/max_pending_logins",
                serde_json::json!(0),
                "cookie.max_pending_logins:",
            ),
            (
                "/allowed_redirect_domains",
                serde_json::json!(["ok.com:*", "bad.com:http"]),
                "allowed_redirect_domains[1]:",
            ),
            (
                "/allowed_redirect_domains",
                serde_json::json!(["x.com:70000"]),
                "allowed_redirect_domains[0]:",
            ),
            (
                "/cookie/accept_client_ids",
                serde_json::json!(["other", ""]),
                "cookie.accept_client_ids[1]:",
            ),
        ];
        for (ptr, value, want) in cases {
            let mut v = base();
            set(&mut v, ptr, value.clone());
            let e = err_of(v);
            assert!(e.contains(want), "{ptr}: got {e:?}, want {want:?}");
        }
    }

    #[test]
    fn cookie_name_prefixes_must_fit_the_attributes() {
        let mut v = base();
        set(&mut v, "/cookie/name", serde_json::json!("__Host-pc"));
        assert!(
            Config::from_json(v.to_string().as_bytes()).is_ok(),
            "__Host- with Secure, no Domain"
        );
        set(&mut v, "/cookie/domain", serde_json::json!(".example.com"));
        assert!(err_of(v).contains("cookie.name: a __Host- cookie"));
        let mut v = base();
        set(&mut v, "/cookie/name", serde_json::json!("__Secure-pc"));
        set(&mut v, "/cookie/secure", serde_json::json!(false));
        assert!(err_of(v).contains("cookie.name: a __Secure- cookie"));
    }

    #[test]
    fn unknown_and_missing_fields_are_named() {
        let mut v = base();
        v["cookie"]["secrue"] = serde_json::json!(false);
        assert!(err_of(v).contains("unknown field `secrue`"));
        let mut v = base();
        v.as_object_mut().unwrap().remove("issuer");
        assert!(err_of(v).contains("missing field `issuer`"));
        assert!(Config::from_json(b"{not json").is_err());
    }
}
