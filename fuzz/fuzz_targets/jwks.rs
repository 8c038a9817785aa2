//! `parse_jwks` and `parse_discovery` on arbitrary bodies.
//!
//! Properties:
//! - an accepted key set holds 1..=`MAX_KEYS` keys, each of which fits at least one supported algorithm,
//!   with material of the right shape (RSA modulus >= 2048 bits, SEC1 uncompressed P-256/P-384 points,
//!   32-byte Ed25519 keys); a set refused as too large really lists more than `MAX_KEYS` entries;
//! - an accepted discovery document has exactly the expected issuer, and every endpoint is an absolute
//!   http(s) URL that the `url` crate parses, without userinfo.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::oidc::discovery::parse_discovery;
use portcullis_core::oidc::jwks::{parse_jwks, JwksError, KeyMaterial, MAX_KEYS};
use portcullis_core::oidc::Alg;
use portcullis_fuzz::ISSUER;

fuzz_target!(|body: &[u8]| {
    match parse_jwks(body) {
        Ok(set) => {
            assert!(!set.keys.is_empty() && set.keys.len() <= MAX_KEYS);
            for k in &set.keys {
                assert!(
                    Alg::ALL.iter().any(|a| k.fits(*a)),
                    "unusable key kept: {k:?}"
                );
                match &k.material {
                    KeyMaterial::Rsa(k) => assert!(k.bits() >= 2048 && k.bits() <= 8192),
                    KeyMaterial::P256(p) => assert!(p.len() == 65 && p[0] == 4),
                    KeyMaterial::P384(p) => assert!(p.len() == 97 && p[0] == 4),
                    KeyMaterial::Ed25519(x) => assert_eq!(x.len(), 32),
                }
            }
        }
        Err(JwksError::TooManyKeys) => {
            let v: serde_json::Value = serde_json::from_slice(body).expect("counted, so JSON");
            let n = v.get("keys").and_then(|k| k.as_array()).map_or(0, Vec::len);
            assert!(n > MAX_KEYS, "refused as too many with {n} keys");
        }
        Err(_) => {}
    }
    if let Ok(m) = parse_discovery(body, ISSUER) {
        assert_eq!(m.issuer, ISSUER);
        for u in [
            Some(&m.authorization_endpoint),
            Some(&m.token_endpoint),
            Some(&m.jwks_uri),
            m.end_session_endpoint.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            let p = url::Url::parse(u).unwrap_or_else(|e| panic!("endpoint {u:?} accepted: {e}"));
            assert!(matches!(p.scheme(), "http" | "https"), "{u:?}");
            assert!(p.username().is_empty() && p.password().is_none(), "{u:?}");
            assert!(p.host_str().is_some(), "{u:?}");
        }
    }
});
