//! The `bearer` section: issuers whose JWT access tokens routes may accept.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use serde::Deserialize;

use super::{invalid, parse_algs, ConfigError, IssuerConfig};
use crate::oidc::Alg;
use crate::request::AbsoluteUrl;
use crate::session::Secret;

/// One issuer of bearer tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerIssuer {
    /// `iss`, exactly.
    pub issuer: String,
    /// Its index in [`super::Config::issuers`] (its keys and refresh schedule).
    pub index: usize,
    /// Accepted audiences: `aud` must hold one of them.
    pub audiences: Vec<String>,
    /// Accepted algorithms.
    pub allowed_algs: Vec<Alg>,
    /// Leeway for `exp`, `nbf`, `iat`.
    pub leeway: u64,
    /// RFC 7662 introspection of opaque tokens, when configured.
    pub introspection: Option<Introspection>,
}

/// How opaque tokens are introspected (RFC 7662): as this client, with `client_secret_basic`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Introspection {
    /// The endpoint; `None`: discovery's `introspection_endpoint`.
    pub endpoint: Option<String>,
    /// The resource server's client id at the IdP.
    pub client_id: String,
    /// Its secret.
    pub client_secret: Secret,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawBearer {
    #[serde(default)]
    issuers: Vec<RawBearerIssuer>,
    #[serde(default)]
    token_cache_size: Option<usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBearerIssuer {
    issuer: String,
    #[serde(default)]
    cluster: Option<String>,
    #[serde(default)]
    jwks_uri: Option<String>,
    audiences: Vec<String>,
    #[serde(default)]
    allowed_algs: Option<Vec<String>>,
    #[serde(default)]
    leeway_seconds: Option<u64>,
    #[serde(default)]
    introspection: Option<RawIntrospection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntrospection {
    #[serde(default)]
    endpoint: Option<String>,
    client_id: String,
    client_secret: String,
}

/// Parses the section, adding an issuer to `issuers` for each one not already there (the login issuer,
/// with discovery through the same cluster, is shared: one key set, one refresh schedule).
pub(super) fn bearer(
    raw: RawBearer,
    issuers: &mut Vec<IssuerConfig>,
    default_algs: &[Alg],
    default_leeway: u64,
) -> Result<(Vec<BearerIssuer>, usize), ConfigError> {
    let mut out: Vec<BearerIssuer> = Vec::new();
    for (i, b) in raw.issuers.into_iter().enumerate() {
        let field = format!("bearer.issuers[{i}]");
        if AbsoluteUrl::parse(&b.issuer).is_none() || b.issuer.contains(['?', '#']) {
            return Err(invalid(
                format!("{field}.issuer"),
                "must be an absolute http(s) URL without query or fragment",
            ));
        }
        if out.iter().any(|o| o.issuer == b.issuer) {
            return Err(invalid(
                format!("{field}.issuer"),
                "is configured twice (tokens are matched to an issuer by iss)",
            ));
        }
        if let Some(u) = &b.jwks_uri {
            if AbsoluteUrl::parse(u).is_none() {
                return Err(invalid(
                    format!("{field}.jwks_uri"),
                    "must be an absolute http(s) URL",
                ));
            }
        }
        if b.audiences.is_empty() || b.audiences.iter().any(String::is_empty) {
            return Err(invalid(
                format!("{field}.audiences"),
                "must list the audiences (aud) this deployment accepts",
            ));
        }
        let allowed_algs = match &b.allowed_algs {
            Some(a) => parse_algs(&format!("{field}.allowed_algs"), a)?,
            None => default_algs.to_vec(),
        };
        let leeway = b.leeway_seconds.unwrap_or(default_leeway);
        if leeway > 600 {
            return Err(invalid(
                format!("{field}.leeway_seconds"),
                "must be at most 600",
            ));
        }
        let login = &issuers[0];
        let cluster = b.cluster.unwrap_or_else(|| login.cluster.clone());
        if cluster.trim().is_empty() {
            return Err(invalid(
                format!("{field}.cluster"),
                "must name an Envoy cluster",
            ));
        }
        let index = match issuers
            .iter()
            .position(|s| s.issuer == b.issuer && s.cluster == cluster && s.jwks_uri == b.jwks_uri)
        {
            Some(i) => i,
            None => {
                issuers.push(IssuerConfig {
                    issuer: b.issuer.clone(),
                    cluster,
                    jwks_uri: b.jwks_uri,
                    refresh_interval: login.refresh_interval,
                    jwks_min_refetch_interval: login.jwks_min_refetch_interval,
                    callout_timeout_ms: login.callout_timeout_ms,
                });
                issuers.len() - 1
            }
        };
        let introspection = match b.introspection {
            None => None,
            Some(x) => {
                let f = format!("{field}.introspection");
                if out.iter().any(|o| o.introspection.is_some()) {
                    return Err(invalid(
                        f,
                        "only one issuer may introspect (opaque tokens name no issuer)",
                    ));
                }
                if x.endpoint
                    .as_deref()
                    .is_some_and(|e| AbsoluteUrl::parse(e).is_none())
                {
                    return Err(invalid(
                        format!("{f}.endpoint"),
                        "must be an absolute http(s) URL",
                    ));
                }
                if x.client_id.is_empty() || x.client_secret.is_empty() {
                    return Err(invalid(
                        f,
                        "needs client_id and client_secret (the resource server's credentials)",
                    ));
                }
                Some(Introspection {
                    endpoint: x.endpoint,
                    client_id: x.client_id,
                    client_secret: Secret(x.client_secret),
                })
            }
        };
        out.push(BearerIssuer {
            issuer: b.issuer,
            index,
            audiences: b.audiences,
            allowed_algs,
            leeway,
            introspection,
        });
    }
    let cache = raw.token_cache_size.unwrap_or(1024);
    if cache > 100_000 {
        return Err(invalid("bearer.token_cache_size", "must be at most 100000"));
    }
    Ok((out, cache))
}
