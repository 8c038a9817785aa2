//! `parse_token_response` and `oauth_error_code` on arbitrary token-endpoint bodies.
//!
//! Properties: an accepted response is a JSON object whose `id_token` is a non-empty string equal to the
//! parsed one, and whose `token_type`, if present, is `Bearer` in any case (cross-checked with a
//! `serde_json::Value` reading); the error code for a log line is at most 64 characters of
//! `[A-Za-z0-9_]`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::oidc::token::{oauth_error_code, parse_token_response};
use serde_json::Value;

fuzz_target!(|body: &[u8]| {
    let code = oauth_error_code(body);
    assert!(
        code.len() <= 64 && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
        "{code:?}"
    );
    if let Some(t) = parse_token_response(body) {
        assert!(!t.id_token.0.is_empty());
        // A JSON object, not serde's positional reading of an array (finding F4).
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        assert_eq!(
            first,
            Some(&b'{'),
            "accepted a document that is not an object"
        );
        // serde_json skips unknown fields without validating them (bad UTF-8, numbers out of range):
        // cross-check only what a `Value` can read.
        let Ok(v) = serde_json::from_slice::<Value>(body)
            .or_else(|_| serde_json::from_str(&String::from_utf8_lossy(body)))
        else {
            return;
        };
        let obj = v
            .as_object()
            .expect("accepted, so it is a JSON object (RFC 6749 §5.1)");
        // serde keeps the last of duplicate keys in a Value; the typed parse refuses duplicates.
        assert_eq!(
            obj.get("id_token").and_then(Value::as_str),
            Some(t.id_token.0.as_str())
        );
        match obj.get("token_type") {
            None | Some(Value::Null) => assert!(t.token_type.is_none()),
            Some(tt) => {
                let tt = tt.as_str().expect("a string");
                assert!(tt.eq_ignore_ascii_case("bearer"));
                assert_eq!(t.token_type.as_deref(), Some(tt));
            }
        }
        match obj.get("access_token") {
            None | Some(Value::Null) => assert!(t.access_token.is_none()),
            Some(a) => assert_eq!(t.access_token.map(|s| s.0).as_deref(), a.as_str()),
        }
    }
});
