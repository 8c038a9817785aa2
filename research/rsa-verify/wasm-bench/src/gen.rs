//! Native only: makes the keys and tokens the bench verifies (data/bench_data.txt), so the
//! wasm bench needs no key generation.
use jwt_simple::prelude::*;
use std::fmt::Write as _;

fn hex(b: &[u8]) -> String {
    b.iter().fold(String::new(), |mut s, x| {
        let _ = write!(s, "{x:02x}");
        s
    })
}

fn claims() -> JWTClaims<NoCustomClaims> {
    Claims::create(Duration::from_days(3650))
        .with_issuer("https://login.example.com/realms/portcullis")
        .with_subject("f3a1c2de-7b0e-4d8c-9a51-2c6d0f1e9b77")
        .with_audience("portcullis-filter")
        .with_nonce("n-0S6_WzA2Mj")
}

fn main() {
    let mut out = String::new();
    let rs2048 = RS256KeyPair::generate(2048).unwrap();
    let c = rs2048.public_key().to_components();
    writeln!(out, "rsa2048_n {}\nrsa2048_e {}", hex(&c.n), hex(&c.e)).unwrap();
    writeln!(out, "rs256_2048 {}", rs2048.sign(claims()).unwrap()).unwrap();
    let ps2048 = PS256KeyPair::from_der(&rs2048.to_der().unwrap()).unwrap();
    writeln!(out, "ps256_2048 {}", ps2048.sign(claims()).unwrap()).unwrap();
    let rs4096 = RS256KeyPair::generate(4096).unwrap();
    let c = rs4096.public_key().to_components();
    writeln!(out, "rsa4096_n {}\nrsa4096_e {}", hex(&c.n), hex(&c.e)).unwrap();
    writeln!(out, "rs256_4096 {}", rs4096.sign(claims()).unwrap()).unwrap();
    let es = ES256KeyPair::generate();
    writeln!(out, "es256_pk {}", hex(&es.public_key().to_bytes())).unwrap();
    writeln!(out, "es256 {}", es.sign(claims()).unwrap()).unwrap();
    let ed = Ed25519KeyPair::generate();
    writeln!(out, "ed25519_pk {}", hex(&ed.public_key().to_bytes())).unwrap();
    writeln!(out, "ed25519 {}", ed.sign(claims()).unwrap()).unwrap();
    std::fs::write(
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/bench_data.txt"),
        out,
    )
    .unwrap();
}
