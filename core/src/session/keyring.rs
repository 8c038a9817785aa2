//! The cookie key ring and AEAD sealing (AES-256-GCM-SIV).
//!
//! Sealed value: `<kid>.<base64url(nonce ‖ ciphertext ‖ tag)>`. The associated data binds the format
//! version, the purpose (`session`, `login` or `id_token_hint`), the cookie's name, the binding (the
//! issuer and client id the value was minted for) and the key id, so a login cookie can never be replayed
//! as a session, nor a cookie moved to another name, nor a session minted for one client accepted by a
//! deployment of another client that shares the key ring, nor a key id swapped. GCM-SIV keeps
//! a repeated 96-bit random nonce from being catastrophic (RFC 8452).
//!
//! Keys come from configuration, never from randomness at start: every worker VM of every replica must
//! open every other's cookies. The first key seals; all keys open (rotation: add the new key first, keep
//! the old one until its cookies have expired).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use aes_gcm_siv::aead::{Aead, KeyInit, Payload};
use aes_gcm_siv::{Aes256GcmSiv, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_core::{CryptoRng, RngCore};
use sha2::{Digest, Sha256};

/// What a sealed value is for; bound into the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The session cookie.
    Session,
    /// A per-attempt login cookie (state, nonce, PKCE verifier, original URL).
    Login,
    /// The ID token kept for `id_token_hint` at sign-out, in its own cookie sent only to the sign-out
    /// endpoint, so ordinary requests do not carry (and pay for) it.
    IdTokenHint,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Session => "session",
            Purpose::Login => "login",
            Purpose::IdTokenHint => "id_token_hint",
        }
    }
}

/// Longest sealed value we will try to open: a session split over the most chunk cookies there can be.
pub const MAX_SEALED_LEN: usize = super::chunks::MAX_CHUNKS * super::chunks::CHUNK_BYTES;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;

struct RingKey {
    id: String,
    cipher: Aes256GcmSiv,
}

/// Why a key ring could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRingError {
    /// No keys were given.
    Empty,
    /// A key id is empty, longer than 32 characters, or not `[A-Za-z0-9_-]`.
    BadId(String),
    /// Two keys share an id.
    DuplicateId(String),
}

/// The configured cookie keys. `Debug` shows only the key ids.
pub struct KeyRing {
    keys: Vec<RingKey>,
    /// The key of [`KeyRing::cache_id`], derived from the sealing key (domain-separated SHA-256).
    cache_key: [u8; 16],
}

impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.keys.iter().map(|k| &k.id))
            .finish()
    }
}

/// Sealing failed because the randomness source failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RandomnessUnavailable;

impl KeyRing {
    /// Builds a ring from `(id, 32-byte secret)` pairs; the first seals.
    pub fn new(keys: &[(String, [u8; 32])]) -> Result<Self, KeyRingError> {
        if keys.is_empty() {
            return Err(KeyRingError::Empty);
        }
        let mut ring = Vec::with_capacity(keys.len());
        for (id, secret) in keys {
            if id.is_empty()
                || id.len() > 32
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Err(KeyRingError::BadId(id.clone()));
            }
            if ring.iter().any(|k: &RingKey| k.id == *id) {
                return Err(KeyRingError::DuplicateId(id.clone()));
            }
            ring.push(RingKey {
                id: id.clone(),
                cipher: Aes256GcmSiv::new(secret.into()),
            });
        }
        let mut cache_key = [0u8; 16];
        if let Some((_, first)) = keys.first() {
            let d = Sha256::new()
                .chain_update(b"portcullis token-cache key\0")
                .chain_update(first)
                .finalize();
            cache_key.copy_from_slice(&d[..16]);
        }
        Ok(KeyRing {
            keys: ring,
            cache_key,
        })
    }

    /// A cache key for `value` (a bearer token): base64url of its SipHash-1-3-128 under a key derived
    /// from the sealing key. Keyed, so nobody without the key ring can make a value that collides with
    /// a cached one; 128 bits, so none collide by chance; and a few thousand instructions for a token
    /// of a kilobyte, where a SHA-256 costs over forty thousand without SHA extensions (wasm has none).
    #[must_use]
    pub fn cache_id(&self, value: &[u8]) -> String {
        use core::hash::Hasher as _;
        use siphasher::sip128::Hasher128 as _;
        let mut h = siphasher::sip128::SipHasher13::new_with_key(&self.cache_key);
        h.write(value);
        URL_SAFE_NO_PAD.encode(h.finish128().as_bytes())
    }

    /// Whether `id` names a key of the ring.
    #[must_use]
    pub fn has_id(&self, id: &str) -> bool {
        self.keys.iter().any(|k| k.id == id)
    }

    /// The id of the sealing key.
    #[must_use]
    pub fn primary_id(&self) -> &str {
        self.keys.first().map_or("", |k| k.id.as_str())
    }

    /// Seals `plaintext` for `purpose` under cookie `name` with the first key, bound to `bind` (the
    /// issuer and client id the value was minted for: another deployment sharing the key ring cannot
    /// open it under its own binding).
    pub fn seal(
        &self,
        purpose: Purpose,
        name: &str,
        bind: &str,
        plaintext: &[u8],
        rng: &mut (impl RngCore + CryptoRng),
    ) -> Result<String, RandomnessUnavailable> {
        let key = self.keys.first().ok_or(RandomnessUnavailable)?;
        let mut nonce = [0u8; NONCE_LEN];
        rng.try_fill_bytes(&mut nonce)
            .map_err(|_| RandomnessUnavailable)?;
        let aad = associated_data(purpose, name, bind, &key.id);
        let ct = key
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| RandomnessUnavailable)?;
        let mut blob = Vec::with_capacity(NONCE_LEN + ct.len());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        let mut out = String::with_capacity(key.id.len() + 1 + blob.len() * 4 / 3 + 4);
        out.push_str(&key.id);
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(&blob, &mut out);
        Ok(out)
    }

    /// Opens a sealed value; `None` for anything that is not exactly what we sealed with a key we hold,
    /// for this purpose, cookie name and binding.
    #[must_use]
    pub fn open(&self, purpose: Purpose, name: &str, bind: &str, value: &str) -> Option<Vec<u8>> {
        if value.len() > MAX_SEALED_LEN {
            return None;
        }
        let (kid, b64) = value.split_once('.')?;
        let key = self.keys.iter().find(|k| k.id == kid)?;
        let blob = URL_SAFE_NO_PAD.decode(b64).ok()?;
        if blob.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, ct) = blob.split_at(NONCE_LEN);
        let aad = associated_data(purpose, name, bind, kid);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ct,
                    aad: aad.as_bytes(),
                },
            )
            .ok()
    }
}

fn associated_data(purpose: Purpose, name: &str, bind: &str, kid: &str) -> String {
    let mut s = String::with_capacity(32 + name.len() + bind.len() + kid.len());
    s.push_str("portcullis/v2\0");
    s.push_str(purpose.label());
    s.push('\0');
    s.push_str(name);
    s.push('\0');
    s.push_str(bind);
    s.push('\0');
    s.push_str(kid);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;
    use rand_chacha::rand_core::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    fn ring(ids: &[(&str, u8)]) -> KeyRing {
        let keys: Vec<_> = ids
            .iter()
            .map(|(id, b)| (id.to_string(), [*b; 32]))
            .collect();
        KeyRing::new(&keys).unwrap()
    }

    #[test]
    fn cache_ids_are_keyed_by_the_sealing_key_and_bind_every_byte() {
        let a = ring(&[("k1", 1), ("k2", 2)]);
        let token = b"eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl";
        let id = a.cache_id(token);
        assert_eq!(id, a.cache_id(token), "deterministic");
        assert_eq!(id.len(), 22, "128 bits, base64url");
        // Another ring with the same first key agrees; another sealing key does not (it is the key).
        assert_eq!(id, ring(&[("other", 1)]).cache_id(token));
        assert_ne!(id, ring(&[("k2", 2), ("k1", 1)]).cache_id(token));
        // Any one byte changed, or the token cut or extended, gives another id.
        for i in 0..token.len() {
            let mut t = token.to_vec();
            t[i] ^= 1;
            assert_ne!(a.cache_id(&t), id, "byte {i}");
        }
        assert_ne!(a.cache_id(&token[..token.len() - 1]), id);
        assert_ne!(a.cache_id(&[&token[..], b"A"].concat()), id);
    }

    #[test]
    fn known_answer_seal_with_a_fixed_nonce() {
        // A fixed seed gives a fixed nonce; the output is then fully determined by key, AAD and plaintext.
        let r = ring(&[("k1", 7)]);
        let a = r
            .seal(
                Purpose::Session,
                "_pc",
                "B",
                b"hello",
                &mut ChaCha20Rng::seed_from_u64(1),
            )
            .unwrap();
        let b = r
            .seal(
                Purpose::Session,
                "_pc",
                "B",
                b"hello",
                &mut ChaCha20Rng::seed_from_u64(1),
            )
            .unwrap();
        assert_eq!(a, b);
        assert!(a.starts_with("k1."));
        // 12-byte nonce + 5-byte plaintext + 16-byte tag = 33 bytes = 44 base64url chars.
        assert_eq!(a.len(), 3 + 44);
        assert_eq!(
            r.open(Purpose::Session, "_pc", "B", &a).as_deref(),
            Some(&b"hello"[..])
        );
    }

    #[test]
    fn rotation_old_keys_open_new_key_seals() {
        let old = ring(&[("old", 1)]);
        let sealed_old = old
            .seal(
                Purpose::Session,
                "_pc",
                "B",
                b"x",
                &mut ChaCha20Rng::seed_from_u64(2),
            )
            .unwrap();
        let rotated = ring(&[("new", 2), ("old", 1)]);
        assert_eq!(
            rotated
                .open(Purpose::Session, "_pc", "B", &sealed_old)
                .as_deref(),
            Some(&b"x"[..])
        );
        let sealed_new = rotated
            .seal(
                Purpose::Session,
                "_pc",
                "B",
                b"y",
                &mut ChaCha20Rng::seed_from_u64(3),
            )
            .unwrap();
        assert!(sealed_new.starts_with("new."));
        assert_eq!(old.open(Purpose::Session, "_pc", "B", &sealed_new), None);
        let retired = ring(&[("new", 2)]);
        assert_eq!(
            retired.open(Purpose::Session, "_pc", "B", &sealed_old),
            None
        );
    }

    #[test]
    fn tampering_truncation_and_rebinding_all_fail() {
        let r = ring(&[("k1", 9), ("k2", 9)]);
        let v = r
            .seal(
                Purpose::Session,
                "_pc",
                "B",
                b"payload",
                &mut ChaCha20Rng::seed_from_u64(4),
            )
            .unwrap();
        // Every single-character change of the blob fails.
        let (kid, blob) = v.split_once('.').unwrap();
        for i in 0..blob.len() {
            let mut b = blob.as_bytes().to_vec();
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let t = alloc::format!("{kid}.{}", String::from_utf8(b).unwrap());
            assert_eq!(
                r.open(Purpose::Session, "_pc", "B", &t),
                None,
                "flip at {i}"
            );
        }
        for cut in [1, 10, blob.len() - 1] {
            assert_eq!(
                r.open(Purpose::Session, "_pc", "B", &v[..v.len() - cut]),
                None
            );
        }
        // Same secret under another id: the key id is bound, so the swap fails.
        assert_eq!(
            r.open(Purpose::Session, "_pc", "B", &v.replacen("k1.", "k2.", 1)),
            None
        );
        assert_eq!(
            r.open(Purpose::Login, "_pc", "B", &v),
            None,
            "purpose is bound"
        );
        assert_eq!(
            r.open(Purpose::Session, "_other", "B", &v),
            None,
            "cookie name is bound"
        );
        assert_eq!(
            r.open(Purpose::Session, "_pc", "B2", &v),
            None,
            "issuer and client id are bound"
        );
        assert_eq!(r.open(Purpose::Session, "_pc", "B", "nokid"), None);
        assert_eq!(r.open(Purpose::Session, "_pc", "B", "k1.!!!"), None);
        assert_eq!(
            r.open(
                Purpose::Session,
                "_pc",
                "B",
                &alloc::format!("k1.{}", "A".repeat(5000))
            ),
            None
        );
        assert_eq!(
            ring(&[("k1", 8)]).open(Purpose::Session, "_pc", "B", &v),
            None,
            "foreign key"
        );
    }

    #[test]
    fn bad_rings_are_refused_and_debug_hides_secrets() {
        assert_eq!(KeyRing::new(&[]).err(), Some(KeyRingError::Empty));
        assert_eq!(
            KeyRing::new(&[("a b".to_string(), [0; 32])]).err(),
            Some(KeyRingError::BadId("a b".to_string()))
        );
        assert_eq!(
            KeyRing::new(&[("a".to_string(), [0; 32]), ("a".to_string(), [1; 32])]).err(),
            Some(KeyRingError::DuplicateId("a".to_string()))
        );
        let dbg = alloc::format!("{:?}", ring(&[("k1", 0x41)]));
        assert_eq!(dbg, "[\"k1\"]");
        let _ = vec![0u8];
    }
}
