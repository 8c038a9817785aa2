//! The configuration playground: `portcullis-core` compiled to `wasm32-unknown-unknown` and called
//! from a static page (`playground/www/`, served by `just playground`). Conversion only: the page
//! hands over the plugin JSON and a request document, the core explains its decision
//! ([`portcullis_core::explain`]), the page shows the JSON it gets back. `portcullis-host-shim
//! explain` prints the very same JSON from the command line.
//!
//! Randomness comes from a ChaCha RNG with the core's fixed [`SEED`], so the same input always
//! explains the same way (nothing the page shows is a secret: sealed values are elided).
#![forbid(unsafe_code)]

use portcullis_core::explain::{explain_json, SEED};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use wasm_bindgen::prelude::wasm_bindgen;

/// Explains what the plugin configuration `config` does with `request` (an `ExplainInput`
/// document: `{"method", "url", "headers", "session": {"user", "email", "groups"}}`). Returns the
/// explanation's JSON: a configuration error naming its field, or the rule, outcome, status, reason
/// and upstream headers.
#[wasm_bindgen]
#[must_use]
pub fn explain(config: &str, request: &str) -> String {
    let mut rng = ChaCha20Rng::seed_from_u64(SEED);
    explain_json(config.as_bytes(), request.as_bytes(), &mut rng)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_in_json_out() {
        let out = explain("{", r#"{"url": "http://app.example.com/"}"#);
        let v: serde_json::Value = serde_json::from_str(&out).unwrap_or_default();
        assert!(v["config_error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("invalid plugin configuration")));
    }
}
