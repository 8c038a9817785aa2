//! PKCE (RFC 7636) and the random values of a login attempt.

use alloc::string::String;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

use crate::session::keyring::RandomnessUnavailable;

/// `BASE64URL(SHA256(verifier))`: the `S256` code challenge (RFC 7636 §4.2).
#[must_use]
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `n` random bytes as base64url without padding. 32 bytes give the 43-character verifier RFC 7636 §4.1
/// recommends; 16 bytes (128 bits) suffice for `state` and `nonce`.
pub fn random_token(
    rng: &mut (impl RngCore + CryptoRng),
    n: usize,
) -> Result<String, RandomnessUnavailable> {
    let mut buf = [0u8; 32];
    let n = n.min(buf.len());
    rng.try_fill_bytes(&mut buf[..n])
        .map_err(|_| RandomnessUnavailable)?;
    Ok(URL_SAFE_NO_PAD.encode(&buf[..n]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn rfc7636_appendix_b_vector() {
        assert_eq!(
            challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn verifier_has_the_recommended_length_and_alphabet() {
        let v = random_token(&mut ChaCha20Rng::seed_from_u64(5), 32).unwrap();
        assert_eq!(v.len(), 43);
        assert!(v
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(
            v,
            random_token(&mut ChaCha20Rng::seed_from_u64(6), 32).unwrap()
        );
    }
}
