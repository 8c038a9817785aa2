//! Size probe: a wasm binary that only verifies RSA signatures with rsa_lab (feature-less
//! build) or, with `--cfg base`, only hashes with the same sha2 functions; the difference
//! in .wasm size is what the RSA module adds.
use std::hint::black_box;

fn main() {
    let args: Vec<Vec<u8>> = std::env::args().map(String::into_bytes).collect();
    let a = args.first().cloned().unwrap_or_default();
    #[cfg(not(base))]
    {
        use rsa_lab::rsa_verify::{Hash, RsaPublicKey};
        if let Ok(k) = RsaPublicKey::from_components(black_box(&a), black_box(&a)) {
            for h in [Hash::Sha256, Hash::Sha384, Hash::Sha512] {
                println!(
                    "{}",
                    k.verify_pkcs1v15(black_box(h), &a, &a) | k.verify_pss(black_box(h), &a, &a)
                );
            }
        }
    }
    #[cfg(base)]
    {
        use sha2::Digest;
        println!("{:?}", sha2::Sha256::digest(&a));
        println!("{:?}", sha2::Sha384::digest(&a));
        println!("{:?}", sha2::Sha512::digest(&a));
    }
}
