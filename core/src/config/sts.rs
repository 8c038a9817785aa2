//! The `sts` section: lakeFS's clients exchange an IdP authorization code for a short-lived token that
//! Portcullis signs with its own keys (published at `{prefix}/jwks.json`, accepted as a bearer token).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use jwt_simple::algorithms::{ECDSAP256KeyPairLike, ES256KeyPair, Ed25519KeyPair};
use serde::Deserialize;

use super::flyte::printable;
use super::operations::health_path;
use super::{invalid, ConfigError};
use crate::oidc::jwks::{parse_jwks, Jwks};
use crate::request::AbsoluteUrl;
use crate::session::Secret;

/// The token exchange (lakeFS's STS login) and the tokens it mints.
#[derive(Debug)]
pub struct Sts {
    /// The client shape (`{code, state, redirect_uri, ttl_seconds}` -> `{token, token_expiration}`).
    pub path: Option<String>,
    /// The remote-authenticator shape (`{code, redirect_uri, state}` -> `{claims}`).
    pub authenticator_path: Option<String>,
    /// The client the code was issued to (its ID token's `aud`).
    pub client_id: String,
    /// Its secret (`client_secret_basic`); `None`: a public client, whose PKCE verifier is `state`.
    pub client_secret: Option<Secret>,
    /// The redirect URIs a request may name (exactly).
    pub redirect_uris: Vec<String>,
    /// Whether the request's `state` is the PKCE `code_verifier` (lakeFS's own sample helper sends
    /// the verifier as `state`); `false`: the code is redeemed without PKCE.
    pub state_is_code_verifier: bool,
    /// `iss` of the minted tokens.
    pub issuer: String,
    /// `aud` of the minted tokens.
    pub audience: String,
    /// Lifetime when the request names none.
    pub default_ttl: u64,
    /// The longest lifetime granted (`ttl_seconds` is clamped to it).
    pub max_ttl: u64,
    /// The signing keys: the first signs, all verify and are published.
    pub keys: Vec<SigningKey>,
    /// The public keys as a JWKS document (`{prefix}/jwks.json`).
    pub jwks_document: String,
    /// The same keys for verifying minted tokens as bearer tokens.
    pub jwks: Jwks,
}

/// A signing key of the STS.
#[derive(Debug)]
pub struct SigningKey {
    /// Its `kid`.
    pub kid: String,
    /// The key.
    pub key: StsKey,
}

/// The algorithms the STS signs with.
#[derive(Debug)]
pub enum StsKey {
    /// Ed25519 (`EdDSA`).
    Ed25519(Ed25519KeyPair),
    /// ECDSA P-256 with SHA-256 (`ES256`).
    Es256(ES256KeyPair),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSts {
    #[serde(default = "default_sts_path")]
    path: Option<String>,
    #[serde(default)]
    authenticator_path: Option<String>,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    redirect_uris: Vec<String>,
    #[serde(default = "default_true")]
    state_is_code_verifier: bool,
    #[serde(default = "default_sts_name")]
    issuer: String,
    #[serde(default = "default_sts_name")]
    audience: String,
    #[serde(default = "default_ttl")]
    default_ttl_seconds: u64,
    #[serde(default = "default_max_ttl")]
    max_ttl_seconds: u64,
    signing_keys: Vec<RawSigningKey>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigningKey {
    kid: String,
    alg: String,
    private_key_pem: String,
}

fn default_sts_path() -> Option<String> {
    Some(String::from("/api/v1/sts/login"))
}
fn default_true() -> bool {
    true
}
fn default_sts_name() -> String {
    String::from("portcullis")
}
fn default_ttl() -> u64 {
    3600
}
fn default_max_ttl() -> u64 {
    12 * 3600
}

/// Longest lifetime a minted token may be configured to have (a day: these are short-lived tokens).
pub const MAX_STS_TTL: u64 = 24 * 3600;

pub(super) fn sts(raw: RawSts, prefix: &str) -> Result<Sts, ConfigError> {
    let path = health_path("sts.path", raw.path, prefix)?;
    let authenticator_path = health_path("sts.authenticator_path", raw.authenticator_path, prefix)?;
    if path.is_none() && authenticator_path.is_none() {
        return Err(invalid(
            "sts.path",
            "is null and so is sts.authenticator_path: nothing to serve",
        ));
    }
    if path.is_some() && path == authenticator_path {
        return Err(invalid(
            "sts.authenticator_path",
            "must differ from sts.path",
        ));
    }
    if !printable(&raw.client_id) {
        return Err(invalid("sts.client_id", "must be a client id"));
    }
    if raw.client_secret.as_deref().is_none_or(str::is_empty) && !raw.state_is_code_verifier {
        return Err(invalid(
            "sts.state_is_code_verifier",
            "must be true for a public exchange client (no client_secret): a code must not be redeemable without PKCE",
        ));
    }
    if raw.redirect_uris.is_empty() {
        return Err(invalid(
            "sts.redirect_uris",
            "must list the redirect URIs the exchange client uses",
        ));
    }
    for (i, u) in raw.redirect_uris.iter().enumerate() {
        if AbsoluteUrl::parse(u).is_none() || u.contains('#') {
            return Err(invalid(
                format!("sts.redirect_uris[{i}]"),
                "must be an absolute http(s) URL without a fragment",
            ));
        }
    }
    if !printable(&raw.issuer) {
        return Err(invalid(
            "sts.issuer",
            "must be a non-empty printable string",
        ));
    }
    if !printable(&raw.audience) {
        return Err(invalid(
            "sts.audience",
            "must be a non-empty printable string",
        ));
    }
    if raw.max_ttl_seconds == 0 || raw.max_ttl_seconds > MAX_STS_TTL {
        return Err(invalid(
            "sts.max_ttl_seconds",
            format!("must be 1..={MAX_STS_TTL}"),
        ));
    }
    if raw.default_ttl_seconds == 0 || raw.default_ttl_seconds > raw.max_ttl_seconds {
        return Err(invalid(
            "sts.default_ttl_seconds",
            "must be 1..=max_ttl_seconds",
        ));
    }
    if raw.signing_keys.is_empty() {
        return Err(invalid(
            "sts.signing_keys",
            "must hold at least one key (the first signs)",
        ));
    }
    let mut keys: Vec<SigningKey> = Vec::new();
    let mut jwks: Vec<serde_json::Value> = Vec::new();
    for (i, k) in raw.signing_keys.iter().enumerate() {
        let field = format!("sts.signing_keys[{i}]");
        if !printable(&k.kid) || k.kid.contains('"') {
            return Err(invalid(
                format!("{field}.kid"),
                "must be a printable key id",
            ));
        }
        if keys.iter().any(|x| x.kid == k.kid) {
            return Err(invalid(format!("{field}.kid"), "is used by another key"));
        }
        let bad_pem = || {
            invalid(
                format!("{field}.private_key_pem"),
                format!("must be a PKCS#8 PEM private key for {}", k.alg),
            )
        };
        let (key, jwk) = match k.alg.as_str() {
            "EdDSA" => {
                let pair = Ed25519KeyPair::from_pem(&k.private_key_pem)
                    .map_err(|_| bad_pem())?
                    .with_key_id(&k.kid);
                let x = b64(&pair.public_key().to_bytes());
                let jwk = serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x,
                    "kid": k.kid, "alg": "EdDSA", "use": "sig"});
                (StsKey::Ed25519(pair), jwk)
            }
            "ES256" => {
                let pair = ES256KeyPair::from_pem(&k.private_key_pem)
                    .map_err(|_| bad_pem())?
                    .with_key_id(&k.kid);
                let point = pair.key_pair().public_key().to_bytes_uncompressed();
                // SEC 1 uncompressed: 0x04 || X (32) || Y (32).
                let (Some(x), Some(y)) = (point.get(1..33), point.get(33..65)) else {
                    return Err(bad_pem());
                };
                let jwk = serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y),
                    "kid": k.kid, "alg": "ES256", "use": "sig"});
                (StsKey::Es256(pair), jwk)
            }
            _ => {
                return Err(invalid(
                    format!("{field}.alg"),
                    "must be \"EdDSA\" or \"ES256\"",
                ))
            }
        };
        keys.push(SigningKey {
            kid: k.kid.clone(),
            key,
        });
        jwks.push(jwk);
    }
    let jwks_document = alloc::string::ToString::to_string(&serde_json::json!({ "keys": jwks }));
    let parsed = parse_jwks(jwks_document.as_bytes())
        .map_err(|_| invalid("sts.signing_keys", "could not be published as a JWKS"))?;
    if parsed.keys.len() != keys.len() {
        return Err(invalid(
            "sts.signing_keys",
            "could not be published as a JWKS",
        ));
    }
    Ok(Sts {
        path,
        authenticator_path,
        client_id: raw.client_id,
        client_secret: raw.client_secret.filter(|s| !s.is_empty()).map(Secret),
        redirect_uris: raw.redirect_uris,
        state_is_code_verifier: raw.state_is_code_verifier,
        issuer: raw.issuer,
        audience: raw.audience,
        default_ttl: raw.default_ttl_seconds,
        max_ttl: raw.max_ttl_seconds,
        keys,
        jwks_document,
        jwks: parsed,
    })
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
