//! JSON documents from the network and from configuration are JSON *objects*. serde's derived
//! `Deserialize` also reads a struct from a JSON array (fields by position), so `["<id_token>"]` would be
//! a token response; every document is checked to be an object first.

use serde::de::DeserializeOwned;

/// Parses `bytes` as `T`, only when the document is a JSON object (leading whitespace allowed).
pub fn from_object<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first != Some(&b'{') {
        // Let serde produce the error, from a document it must refuse.
        return serde_json::from_slice::<serde_json::Map<alloc::string::String, serde_json::Value>>(bytes)
            .and_then(|_| serde_json::from_slice(b"\"not an object\""));
    }
    serde_json::from_slice(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    struct T {
        #[allow(dead_code)]
        a: alloc::string::String,
    }

    #[test]
    fn arrays_and_scalars_are_not_objects() {
        assert!(from_object::<T>(br#" {"a": "x"}"#).is_ok());
        assert!(
            serde_json::from_slice::<T>(br#"["x"]"#).is_ok(),
            "what serde alone accepts"
        );
        for bad in [&br#"["x"]"#[..], b"\"x\"", b"1", b"null", b"", b"  "] {
            assert!(from_object::<T>(bad).is_err(), "{bad:?}");
        }
    }
}
