//! Chunked session cookies (`session::chunks`) and back-channel logout bodies, over arbitrary input.
//!
//! Properties:
//! - `join` never panics on any cookie list, and returns a value only when it is exactly one
//!   well-formed set: without the base cookie nothing; a single cookie beside no chunk is itself; a
//!   chunked set is the announced count's parts in index order (a model computed here);
//! - `split` then `join` gives back the value, in any cookie order, for any value `split` accepts, and
//!   every part is at most `CHUNK_BYTES` plus the count prefix;
//! - the engine, handed any body at `/oauth2/backchannel_logout`, answers 200/400/413 and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::session::chunks::{is_chunk_name, join, split, CHUNK_BYTES, MAX_CHUNKS};

const BASE: &str = "_pc";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    match mode % 3 {
        0 => {
            // Cookie list: `name=value` per line.
            let pairs: Vec<(&str, &str)> =
                text.split('\n').filter_map(|l| l.split_once('=')).collect();
            let got = join(pairs.iter().copied(), BASE);
            let first = pairs.iter().find(|(n, _)| *n == BASE).map(|(_, v)| *v);
            let chunks: Vec<(&str, &str)> = pairs
                .iter()
                .copied()
                .filter(|(n, _)| is_chunk_name(n, BASE))
                .collect();
            let Some(first) = first else {
                assert!(got.is_none(), "a session without its first cookie");
                return;
            };
            match first.split_once('~') {
                None => {
                    let expect = chunks.is_empty().then_some(first);
                    assert_eq!(got.as_deref(), expect);
                }
                Some((count, part0)) => {
                    let model = (|| {
                        let n: usize = match count.as_bytes() {
                            [d] if d.is_ascii_digit() => usize::from(d - b'0'),
                            _ => return None,
                        };
                        if !(2..=MAX_CHUNKS).contains(&n) || chunks.len() != n - 1 {
                            return None;
                        }
                        let mut whole = String::from(part0);
                        for i in 1..n {
                            let name = format!("{BASE}_{i}");
                            let mut it = chunks.iter().filter(|(c, _)| *c == name);
                            let (_, v) = it.next()?;
                            if it.next().is_some() {
                                return None;
                            }
                            whole.push_str(v);
                        }
                        Some(whole)
                    })();
                    assert_eq!(got.map(|c| c.into_owned()), model);
                }
            }
        }
        1 => {
            // Round trip of a sealed-looking value (base64url alphabet, as sealing produces).
            let value: String = rest
                .iter()
                .map(|b| {
                    char::from(
                        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
                            [usize::from(*b) % 65],
                    )
                })
                .cycle()
                .take(rest.len().saturating_mul(97) % (MAX_CHUNKS * CHUNK_BYTES + 500))
                .collect();
            let Some(parts) = split(&value, BASE) else {
                assert!(value.len() > MAX_CHUNKS * CHUNK_BYTES);
                return;
            };
            for (_, v) in &parts {
                assert!(v.len() <= CHUNK_BYTES + 2);
            }
            let mut pairs: Vec<(&str, &str)> = parts
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            if let Some(&b) = rest.first() {
                let by = usize::from(b) % pairs.len();
                pairs.rotate_left(by);
            }
            assert_eq!(
                join(pairs.into_iter(), BASE).as_deref(),
                Some(value.as_str())
            );
        }
        _ => {
            let d = portcullis_fuzz::engine::backchannel(rest);
            assert!(matches!(d, 200 | 400 | 413 | 503), "status {d}");
        }
    }
});
