//! The issuer's JSON Web Key Set (RFC 7517), reduced to the verification keys we can use.

use std::string::String;
use std::vec::Vec;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::oidc::rsa::RsaPublicKey;
use crate::oidc::Alg;

/// A usable public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyMaterial {
    /// An RSA key, prepared once for verification (Montgomery constants computed at load).
    Rsa(RsaPublicKey),
    /// P-256 point, SEC1 uncompressed.
    P256(Vec<u8>),
    /// P-384 point, SEC1 uncompressed.
    P384(Vec<u8>),
    /// Ed25519 public key.
    Ed25519(Vec<u8>),
}

/// One key of the set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jwk {
    /// `kid`.
    pub kid: Option<String>,
    /// `alg`, when the IdP pins one.
    pub alg: Option<String>,
    /// The key.
    pub material: KeyMaterial,
}

impl Jwk {
    /// Whether this key can verify `alg` (key type and curve fit, and the key's own `alg` if pinned).
    #[must_use]
    pub fn fits(&self, alg: Alg) -> bool {
        if self.alg.as_deref().is_some_and(|a| a != alg.name()) {
            return false;
        }
        matches!(
            (&self.material, alg),
            (
                KeyMaterial::Rsa(_),
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
            ) | (KeyMaterial::P256(_), Alg::ES256)
                | (KeyMaterial::P384(_), Alg::ES384)
                | (KeyMaterial::Ed25519(_), Alg::EdDSA)
        )
    }
}

/// The key set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    /// Usable keys, in document order.
    pub keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct RawSet {
    // Each key is read on its own, so one odd key (a field of another type, an unknown `kty`) is skipped
    // instead of spoiling the whole set.
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawKey {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    crv: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
    #[serde(default)]
    x: Option<String>,
    #[serde(default)]
    y: Option<String>,
}

/// Most keys a set may hold (usable or not). IdPs publish a handful; a set of thousands is a fault or an
/// attack, and is refused whole (the keys already loaded are kept).
pub const MAX_KEYS: usize = 100;

/// Why a key set was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// Not a JSON key set.
    Malformed,
    /// More than [`MAX_KEYS`] keys.
    TooManyKeys,
    /// It holds no signature key we can use.
    NoUsableKeys,
}

fn b64(s: Option<&String>) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s?.trim_end_matches('=')).ok()
}

/// Parses a JWKS document. Keys for encryption (`use: enc`), private or symmetric keys (`kty: oct`),
/// and key types we do not support are skipped; `x5c`/`x5u` are ignored.
pub fn parse_jwks(body: &[u8]) -> Result<Jwks, JwksError> {
    let raw: RawSet = crate::json::from_object(body).map_err(|_| JwksError::Malformed)?;
    if raw.keys.len() > MAX_KEYS {
        return Err(JwksError::TooManyKeys);
    }
    let mut keys = Vec::new();
    for k in raw.keys {
        let Ok(k) = RawKey::deserialize(k) else {
            continue;
        };
        if k.use_.as_deref().is_some_and(|u| u != "sig") {
            continue;
        }
        let material = match (k.kty.as_str(), k.crv.as_deref()) {
            ("RSA", _) => match (b64(k.n.as_ref()), b64(k.e.as_ref())) {
                // Prepared here, once per key set: RSA keys of 2048-8192 bits with an odd exponent
                // below 2^32; anything else is skipped like any unusable key.
                (Some(n), Some(e)) => match RsaPublicKey::from_components(&n, &e) {
                    Ok(key) => KeyMaterial::Rsa(key),
                    Err(_) => continue,
                },
                _ => continue,
            },
            ("EC", Some(crv @ ("P-256" | "P-384"))) => {
                let (Some(x), Some(y)) = (b64(k.x.as_ref()), b64(k.y.as_ref())) else {
                    continue;
                };
                let len = if crv == "P-256" { 32 } else { 48 };
                if x.len() != len || y.len() != len {
                    continue;
                }
                let mut point = Vec::with_capacity(1 + 2 * len);
                point.push(4);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                if crv == "P-256" {
                    KeyMaterial::P256(point)
                } else {
                    KeyMaterial::P384(point)
                }
            }
            ("OKP", Some("Ed25519")) => match b64(k.x.as_ref()) {
                Some(x) if x.len() == 32 => KeyMaterial::Ed25519(x),
                _ => continue,
            },
            _ => continue,
        };
        let jwk = Jwk {
            kid: k.kid,
            alg: k.alg,
            material,
        };
        // A key pinned to an algorithm it cannot verify (`"alg": "ES256"` on an RSA key) is no key.
        if Alg::ALL.iter().any(|a| jwk.fits(*a)) {
            keys.push(jwk);
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys);
    }
    Ok(Jwks { keys })
}
