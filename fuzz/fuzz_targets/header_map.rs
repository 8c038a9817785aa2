//! `parse_header_map`: proxy-wasm's serialized header map, parsed straight from the host's buffer.
//!
//! Properties:
//! - whatever parses re-serializes to exactly the input (the parser accepts one canonical shape and no
//!   trailing or missing bytes), except the empty buffer, which is documented to read as no headers;
//! - every parsed name and value is borrowed from inside the buffer;
//! - `serialize_header_map` of arbitrary pairs (any bytes, NULs included) parses back to the same pairs.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use portcullis_core::request::{parse_header_map, serialize_header_map, RawHeader};

fn inside(buf: &[u8], s: &[u8]) -> bool {
    let (b, p) = (buf.as_ptr() as usize, s.as_ptr() as usize);
    s.is_empty() || (p >= b && p + s.len() <= b + buf.len())
}

fuzz_target!(|data: &[u8]| {
    if let Some(pairs) = parse_header_map(data) {
        if data.is_empty() {
            assert!(pairs.is_empty());
        } else {
            assert_eq!(serialize_header_map(&pairs), data, "parsed {pairs:?}");
        }
        for (n, v) in &pairs {
            assert!(inside(data, n) && inside(data, v));
        }
        // Bounded: at most one pair per 10 bytes (sizes plus two NULs).
        assert!(pairs.len() <= data.len() / 10);
    }
    // Round trip of arbitrary pairs built from the same bytes.
    let mut u = Unstructured::new(data);
    if let Ok(owned) = Vec::<(Vec<u8>, Vec<u8>)>::arbitrary(&mut u) {
        let pairs: Vec<RawHeader<'_>> = owned.iter().map(|(n, v)| (&n[..], &v[..])).collect();
        let buf = serialize_header_map(&pairs);
        assert_eq!(parse_header_map(&buf), Some(pairs.clone()), "round trip");
        // Any strict prefix of a non-empty serialization is refused.
        if buf.len() > 4 {
            let cut = usize::from(data.first().copied().unwrap_or(0)) % (buf.len() - 1) + 1;
            assert_eq!(
                parse_header_map(&buf[..cut]),
                None,
                "prefix of {} bytes",
                cut
            );
        }
    }
});
