//! Times bearer-token verification as the core does it on a token-cache miss (`verify_access_token`
//! against a JWKS parsed, and its RSA keys prepared, once), per algorithm, plus jwt-simple's own RS256
//! verification (what the core used before its verify-only RSA) for comparison.
//!
//! Built for wasm32-wasip1 and run under node (V8, with Envoy's settings: no Liftoff, eager compile) by
//! `just bench`; it also runs natively. Prints one JSON object: per operation the median of `ROUNDS`
//! rounds of `ITERS` calls, in microseconds per call. `--quick`: fewer calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::time::Instant;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::*;
use portcullis_core::oidc::jwks::parse_jwks;
use portcullis_core::oidc::verify::{verify_access_token, AccessExpectations};
use portcullis_core::oidc::Alg;
use portcullis_core::testkit::{test_key, RSA_1_PEM};
use portcullis_core::UnixTime;
use serde_json::{json, Map, Value};

const ISS: &str = "https://idp.bench";
const AUD: &str = "api://bench";
const NOW: u64 = 1_700_000_000;

fn claims() -> JWTClaims<Map<String, Value>> {
    let mut extra = Map::new();
    extra.insert("scope".into(), json!("read write"));
    extra.insert("client_id".into(), json!("svc"));
    Claims::with_custom_claims(extra, Duration::from_secs(3600))
        .with_issuer(ISS)
        .with_subject("svc")
        .with_audience(AUD)
}

fn b64(b: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(b)
}

/// Median microseconds per call of `f` over `rounds` rounds of `iters` calls.
fn time(rounds: usize, iters: usize, mut f: impl FnMut()) -> f64 {
    let mut per_call: Vec<f64> = (0..rounds)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                f();
            }
            t.elapsed().as_secs_f64() * 1e6 / iters as f64
        })
        .collect();
    per_call.sort_by(|a, b| a.total_cmp(b));
    per_call[per_call.len() / 2]
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, iters): (usize, usize) = if quick { (3, 20) } else { (5, 200) };
    // jwt-simple stamps iat/exp from the real clock; verify at that time.
    let now = UnixTime(
        jwt_simple::prelude::Clock::now_since_epoch()
            .as_secs()
            .max(NOW),
    );

    let rsa = test_key(RSA_1_PEM, "rsa");
    let es = ES256KeyPair::generate().with_key_id("es");
    let ed = Ed25519KeyPair::generate().with_key_id("ed");
    let rc = rsa.public_key().to_components();
    let ep = es.public_key().public_key().to_bytes_uncompressed();
    let xp = ed.public_key().to_bytes();
    let jwks = json!({"keys": [
        {"kty": "RSA", "kid": "rsa", "n": b64(&rc.n), "e": b64(&rc.e)},
        {"kty": "EC", "crv": "P-256", "kid": "es", "x": b64(&ep[1..33]), "y": b64(&ep[33..65])},
        {"kty": "OKP", "crv": "Ed25519", "kid": "ed", "x": b64(&xp)},
    ]})
    .to_string();
    let prepare = time(rounds, iters.div_ceil(4), || {
        parse_jwks(jwks.as_bytes()).unwrap();
    });
    let set = parse_jwks(jwks.as_bytes()).unwrap();
    let ps = PS256KeyPair::from_pem(RSA_1_PEM)
        .unwrap()
        .with_key_id("rsa");
    let tokens = [
        ("RS256", Alg::RS256, rsa.sign(claims()).unwrap()),
        ("PS256", Alg::PS256, ps.sign(claims()).unwrap()),
        ("ES256", Alg::ES256, es.sign(claims()).unwrap()),
        ("EdDSA", Alg::EdDSA, ed.sign(claims()).unwrap()),
    ];
    let audiences = [AUD.to_string()];
    let mut out = Map::new();
    out.insert("jwks_parse_and_prepare_3_keys_us".into(), json!(prepare));
    for (name, alg, token) in &tokens {
        let algs = [*alg];
        let expect = AccessExpectations {
            issuer: ISS,
            audiences: &audiences,
            allowed_algs: &algs,
            now,
            leeway: 60,
        };
        verify_access_token(token, &set, &expect).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        let us = time(rounds, iters, || {
            verify_access_token(token, &set, &expect).unwrap();
        });
        out.insert(format!("verify_{name}_us"), json!(us));
    }
    // The previous path: jwt-simple's RS256 (key rebuilt from n and e per token, as the core did).
    let rs_token = &tokens[0].2;
    let us = time(rounds, iters.div_ceil(4), || {
        let k = RS256PublicKey::from_components(&rc.n, &rc.e).unwrap();
        let opts = VerificationOptions {
            artificial_time: Some(Duration::from_secs(now.0)),
            ..VerificationOptions::default()
        };
        k.verify_token::<Map<String, Value>>(rs_token, Some(opts))
            .unwrap();
    });
    out.insert("jwt_simple_RS256_us".into(), json!(us));
    out.insert("rounds".into(), json!(rounds));
    out.insert("iterations".into(), json!(iters));
    println!("{}", Value::Object(out));
}
