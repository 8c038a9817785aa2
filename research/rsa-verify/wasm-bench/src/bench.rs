//! Times RSA signature verification approaches (and jwt-simple's ES256/EdDSA for
//! reference) on fixed keys and tokens from data/bench_data.txt.
//!
//! Usage: `bench [FILTER] [ITERS]`. Each selected case runs once ("first": the first call
//! in this process, before any warm-up, so under V8 it runs whatever tier compiled it
//! first) and then ITERS more times, each timed alone; prints first/median/min in µs.
use std::collections::HashMap;
use std::hint::black_box;
use std::time::Instant;

use base64::Engine as _;
use jwt_simple::prelude::*;
use sha2::{Digest, Sha256};

mod mont_exp;

const DATA: &str = include_str!("../data/bench_data.txt");

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

/// (signing input, decoded signature) of a compact JWS.
fn split(token: &str) -> (Vec<u8>, Vec<u8>) {
    let dot = token.rfind('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(&token[dot + 1..])
        .unwrap();
    (token.as_bytes()[..dot].to_vec(), sig)
}

const SHA256_PREFIX: [u8; 19] = [
    0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01, 0x05,
    0x00, 0x04, 0x20,
];

/// The PKCS#1 v1.5 encoded message for SHA-256 of `msg` (for the crypto-bigint variants).
fn pkcs1_em_sha256(len: usize, msg: &[u8]) -> Vec<u8> {
    let d = Sha256::digest(msg);
    let mut em = vec![0x00, 0x01];
    em.resize(len - 19 - 32 - 1, 0xff);
    em.push(0);
    em.extend_from_slice(&SHA256_PREFIX);
    em.extend_from_slice(&d);
    em
}

/// crypto-bigint 0.7, heap-backed (BoxedMontyParams prepared once).
mod cb_boxed {
    use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
    use crypto_bigint::{BoxedUint, Odd};

    pub struct Key {
        pub params: BoxedMontyParams,
        pub e: BoxedUint,
        pub e_bits: u32,
        pub precision: u32,
        pub len: usize,
    }

    pub fn prepare(n: &[u8], e: &[u8]) -> Key {
        let nn = BoxedUint::from_be_slice_vartime(n);
        let precision = nn.bits_precision();
        let params = BoxedMontyParams::new_vartime(Odd::new(nn).unwrap());
        let e = BoxedUint::from_be_slice_vartime(e);
        let e_bits = e.bit_width();
        Key {
            params,
            e,
            e_bits,
            precision,
            len: n.len(),
        }
    }

    fn em(key: &Key, r: BoxedUint) -> Vec<u8> {
        let b = r.to_be_bytes();
        b[b.len() - key.len..].to_vec()
    }

    /// Generic windowed exponentiation bounded by the exponent's bit length (what rsa 0.10 does).
    pub fn verify_pow(key: &Key, sig: &[u8], em_expected: &[u8]) -> bool {
        let Ok(s) = BoxedUint::from_be_slice(sig, key.precision) else {
            return false;
        };
        let x = BoxedMontyForm::new(s, &key.params);
        let r = x.pow_bounded_exp(&key.e, key.e_bits).retrieve();
        em(key, r) == em_expected
    }

    /// Hand-chained: 16 squarings and one multiplication (e = 65537 only).
    pub fn verify_chain65537(key: &Key, sig: &[u8], em_expected: &[u8]) -> bool {
        let Ok(s) = BoxedUint::from_be_slice(sig, key.precision) else {
            return false;
        };
        let x = BoxedMontyForm::new(s, &key.params);
        let mut acc = x.clone();
        for _ in 0..16 {
            acc = acc.square();
        }
        let r = acc.mul(&x).retrieve();
        em(key, r) == em_expected
    }
}

/// crypto-bigint 0.7, fixed-size U2048 (FixedMontyParams prepared once).
mod cb_fixed {
    use crypto_bigint::modular::{FixedMontyForm, FixedMontyParams};
    use crypto_bigint::{Odd, U2048};

    pub struct Key {
        pub params: FixedMontyParams<{ U2048::LIMBS }>,
    }

    pub fn prepare(n: &[u8]) -> Key {
        let n = U2048::from_be_slice(n);
        Key {
            params: FixedMontyParams::new_vartime(Odd::new(n).unwrap()),
        }
    }

    pub fn verify_chain65537(key: &Key, sig: &[u8], em_expected: &[u8]) -> bool {
        let s = U2048::from_be_slice(sig);
        let x = FixedMontyForm::new(&s, &key.params);
        let r = x.square_repeat_vartime(16).mul(&x).retrieve();
        r.to_be_bytes().as_ref() == em_expected
    }
}

struct Stats {
    first: f64,
    median: f64,
    min: f64,
}

fn run(name: &str, filter: &str, iters: usize, mut f: impl FnMut() -> bool) {
    if !name.contains(filter) {
        return;
    }
    let t = Instant::now();
    let ok = f();
    let first = t.elapsed().as_secs_f64() * 1e6;
    assert!(ok, "{name}: did not verify");
    let mut v = Vec::with_capacity(iters);
    for _ in 0..iters {
        let t = Instant::now();
        black_box(f());
        v.push(t.elapsed().as_secs_f64() * 1e6);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let s = Stats {
        first,
        median: v[v.len() / 2],
        min: v[0],
    };
    println!(
        "{name:<44} first {:9.1}  median {:9.1}  min {:9.1}",
        s.first, s.median, s.min
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let filter = args.get(1).map(String::as_str).unwrap_or("");
    let filter = if filter == "all" { "" } else { filter };
    let iters: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(200);

    let d: HashMap<&str, &str> = DATA.lines().filter_map(|l| l.split_once(' ')).collect();
    let n2048 = unhex(d["rsa2048_n"]);
    let e2048 = unhex(d["rsa2048_e"]);
    let n4096 = unhex(d["rsa4096_n"]);
    let e4096 = unhex(d["rsa4096_e"]);
    let (rs2048_in, rs2048_sig) = split(d["rs256_2048"]);
    let (ps2048_in, ps2048_sig) = split(d["ps256_2048"]);
    let (rs4096_in, rs4096_sig) = split(d["rs256_4096"]);

    // ---- ours (rsa_lab::rsa_verify) ----
    use rsa_lab::rsa_verify::{Hash, RsaPublicKey};
    run("ours prepare 2048", filter, iters, || {
        black_box(RsaPublicKey::from_components(black_box(&n2048), &e2048)).is_ok()
    });
    run("ours prepare 4096", filter, iters, || {
        black_box(RsaPublicKey::from_components(black_box(&n4096), &e4096)).is_ok()
    });
    let k2048 = RsaPublicKey::from_components(&n2048, &e2048).unwrap();
    let k4096 = RsaPublicKey::from_components(&n4096, &e4096).unwrap();
    run("ours RS256 2048 verify", filter, iters, || {
        k2048.verify_pkcs1v15(Hash::Sha256, black_box(&rs2048_in), black_box(&rs2048_sig))
    });
    run("ours PS256 2048 verify", filter, iters, || {
        k2048.verify_pss(Hash::Sha256, black_box(&ps2048_in), black_box(&ps2048_sig))
    });
    run("ours RS256 4096 verify", filter, iters, || {
        k4096.verify_pkcs1v15(Hash::Sha256, black_box(&rs4096_in), black_box(&rs4096_sig))
    });

    // ---- loop-shape experiments (not the deliverable) ----
    {
        fn be(l: &[u32], len: usize) -> Vec<u8> {
            let mut out: Vec<u8> = l.iter().rev().flat_map(|x| x.to_be_bytes()).collect();
            out.split_off(out.len() - len)
        }
        for (bits, n, input, sig) in [
            (2048, &n2048, &rs2048_in, &rs2048_sig),
            (4096, &n4096, &rs4096_in, &rs4096_sig),
        ] {
            let len = n.len();
            let key = mont_exp::Key::new(n);
            let key64 = mont_exp::Key64::new(&key);
            let s = mont_exp::limbs(sig, key.n.len());
            let s64 = mont_exp::to64(&s);
            let em = pkcs1_em_sha256(len, input);
            run(&format!("exp SOS-index {bits}"), filter, iters, || {
                be(&mont_exp::exp_sos_index(&key, black_box(&s)), len) == em
            });
            run(&format!("exp CIOS {bits}"), filter, iters, || {
                be(&mont_exp::exp_cios(&key, black_box(&s)), len) == em
            });
            run(
                &format!("exp CIOS-mul+SOS-sqr {bits}"),
                filter,
                iters,
                || be(&mont_exp::exp_mixed(&key, black_box(&s)), len) == em,
            );
            run(&format!("exp u64-limbs {bits}"), filter, iters, || {
                be(
                    &mont_exp::from64(&mont_exp::exp_u64(&key64, black_box(&s64))),
                    len,
                ) == em
            });
        }
    }

    // ---- crypto-bigint 0.7 with prepared params ----
    run("crypto-bigint boxed prepare 2048", filter, iters, || {
        black_box(cb_boxed::prepare(black_box(&n2048), &e2048)).len == 256
    });
    let cb2048 = cb_boxed::prepare(&n2048, &e2048);
    let cb4096 = cb_boxed::prepare(&n4096, &e4096);
    run("crypto-bigint boxed pow RS256 2048", filter, iters, || {
        let em = pkcs1_em_sha256(256, black_box(&rs2048_in));
        cb_boxed::verify_pow(&cb2048, black_box(&rs2048_sig), &em)
    });
    run(
        "crypto-bigint boxed chain RS256 2048",
        filter,
        iters,
        || {
            let em = pkcs1_em_sha256(256, black_box(&rs2048_in));
            cb_boxed::verify_chain65537(&cb2048, black_box(&rs2048_sig), &em)
        },
    );
    run(
        "crypto-bigint boxed chain RS256 4096",
        filter,
        iters,
        || {
            let em = pkcs1_em_sha256(512, black_box(&rs4096_in));
            cb_boxed::verify_chain65537(&cb4096, black_box(&rs4096_sig), &em)
        },
    );
    let cbf2048 = cb_fixed::prepare(&n2048);
    run(
        "crypto-bigint U2048 chain RS256 2048",
        filter,
        iters,
        || {
            let em = pkcs1_em_sha256(256, black_box(&rs2048_in));
            cb_fixed::verify_chain65537(&cbf2048, black_box(&rs2048_sig), &em)
        },
    );

    // ---- rsa 0.9 (num-bigint-dig) ----
    {
        use rsa09::{BigUint, Pkcs1v15Sign, Pss, RsaPublicKey};
        let k = RsaPublicKey::new(
            BigUint::from_bytes_be(&n2048),
            BigUint::from_bytes_be(&e2048),
        )
        .unwrap();
        let k4 = RsaPublicKey::new(
            BigUint::from_bytes_be(&n4096),
            BigUint::from_bytes_be(&e4096),
        )
        .unwrap();
        run("rsa 0.9 RS256 2048 verify", filter, iters, || {
            let h = Sha256::digest(black_box(&rs2048_in));
            k.verify(Pkcs1v15Sign::new::<Sha256>(), &h, black_box(&rs2048_sig))
                .is_ok()
        });
        run("rsa 0.9 PS256 2048 verify", filter, iters, || {
            let h = Sha256::digest(black_box(&ps2048_in));
            k.verify(Pss::new::<Sha256>(), &h, black_box(&ps2048_sig))
                .is_ok()
        });
        run("rsa 0.9 RS256 4096 verify", filter, iters, || {
            let h = Sha256::digest(black_box(&rs4096_in));
            k4.verify(Pkcs1v15Sign::new::<Sha256>(), &h, black_box(&rs4096_sig))
                .is_ok()
        });
    }

    // ---- rsa 0.10 (crypto-bigint 0.7, Montgomery params precomputed in the key) ----
    {
        use rsa010::sha2::{Digest as _, Sha256 as Sha256v11};
        use rsa010::traits::PublicKeyParts as _;
        use rsa010::{BoxedUint, Pkcs1v15Sign, PublicKey as RsaPublicKey};
        let mk = |n: &[u8], e: &[u8]| {
            RsaPublicKey::new(
                BoxedUint::from_be_slice_vartime(n),
                BoxedUint::from_be_slice_vartime(e),
            )
            .unwrap()
        };
        run("rsa 0.10 prepare 2048", filter, iters, || {
            black_box(mk(black_box(&n2048), &e2048)).size() == 256
        });
        let k = mk(&n2048, &e2048);
        let k4 = mk(&n4096, &e4096);
        run("rsa 0.10 RS256 2048 verify", filter, iters, || {
            let h = Sha256v11::digest(black_box(&rs2048_in));
            k.verify(Pkcs1v15Sign::new::<Sha256v11>(), &h, black_box(&rs2048_sig))
                .is_ok()
        });
        run("rsa 0.10 PS256 2048 verify", filter, iters, || {
            let h = Sha256v11::digest(black_box(&ps2048_in));
            k.verify(
                rsa010::pss::Pss::<Sha256v11>::new(),
                &h,
                black_box(&ps2048_sig),
            )
            .is_ok()
        });
        run("rsa 0.10 RS256 4096 verify", filter, iters, || {
            let h = Sha256v11::digest(black_box(&rs4096_in));
            k4.verify(Pkcs1v15Sign::new::<Sha256v11>(), &h, black_box(&rs4096_sig))
                .is_ok()
        });
    }

    // ---- jwt-simple 0.12 (pure-rust): full token verification ----
    {
        run("jwt-simple RS256 2048 prepare", filter, iters, || {
            RS256PublicKey::from_components(black_box(&n2048), &e2048).is_ok()
        });
        let rs = RS256PublicKey::from_components(&n2048, &e2048).unwrap();
        let ps = PS256PublicKey::from_components(&n2048, &e2048).unwrap();
        let rs4 = RS256PublicKey::from_components(&n4096, &e4096).unwrap();
        let es = ES256PublicKey::from_bytes(&unhex(d["es256_pk"])).unwrap();
        let ed = Ed25519PublicKey::from_bytes(&unhex(d["ed25519_pk"])).unwrap();
        let (t_rs, t_ps, t_rs4, t_es, t_ed) = (
            d["rs256_2048"],
            d["ps256_2048"],
            d["rs256_4096"],
            d["es256"],
            d["ed25519"],
        );
        if let Err(e) = rs.verify_token::<NoCustomClaims>(t_rs, None) {
            eprintln!("jwt-simple RS256: {e}");
        }
        run("jwt-simple RS256 2048 verify_token", filter, iters, || {
            rs.verify_token::<NoCustomClaims>(black_box(t_rs), None)
                .is_ok()
        });
        run("jwt-simple PS256 2048 verify_token", filter, iters, || {
            ps.verify_token::<NoCustomClaims>(black_box(t_ps), None)
                .is_ok()
        });
        run("jwt-simple RS256 4096 verify_token", filter, iters, || {
            rs4.verify_token::<NoCustomClaims>(black_box(t_rs4), None)
                .is_ok()
        });
        run("jwt-simple ES256 verify_token", filter, iters, || {
            es.verify_token::<NoCustomClaims>(black_box(t_es), None)
                .is_ok()
        });
        run("jwt-simple EdDSA verify_token", filter, iters, || {
            ed.verify_token::<NoCustomClaims>(black_box(t_ed), None)
                .is_ok()
        });
    }
}
