//! Query strings and percent-encoding: `query_param`, `form_decode`, `percent_decode_bytes`,
//! `split_query`, and their inverses `encode_component` / `encode_pairs`.
//!
//! Properties:
//! - `percent_decode_bytes` agrees with a reference decoder: `None` exactly when some `%` (outside an
//!   escape) is not followed by two hex digits, otherwise the same bytes; never longer than its input;
//! - `form_decode` is `percent_decode_bytes(.., true)` then UTF-8;
//! - `encode_component` emits only unreserved characters and `%XX`, and decodes back to its input;
//! - `query_param` agrees with a model (first match with a bad value -> `BadEncoding`, a second match ->
//!   `Duplicate`), and a parameter written once by `encode_pairs` reads back;
//! - `split_query` splits at the first `?` before any `#`, and drops the fragment.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis_core::request::{
    encode_component, encode_pairs, form_decode, percent_decode_bytes, query_param, split_query,
    QueryError,
};

/// Input: a flags byte (bit 0: `plus_is_space`), then fields separated by `0xFF`: raw bytes to
/// percent-decode, a query string, a parameter name, then `key\0value` pairs for `encode_pairs`.
struct Input<'a> {
    raw: &'a [u8],
    query: String,
    name: String,
    pairs: Vec<(String, String)>,
    plus_is_space: bool,
}

fn decode(data: &[u8]) -> Option<Input<'_>> {
    let (&flags, rest) = data.split_first()?;
    let mut f = rest.split(|&b| b == 0xff);
    let text = |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or(&[])).into_owned();
    let raw = f.next().unwrap_or(&[]);
    let query = text(f.next());
    let name = text(f.next());
    let pairs = f
        .take(16)
        .map(|p| {
            let (k, v) = p.split_at(p.iter().position(|&b| b == 0).unwrap_or(p.len()));
            (text(Some(k)), text(Some(v.get(1..).unwrap_or(&[]))))
        })
        .collect();
    Some(Input {
        raw,
        query,
        name,
        pairs,
        plus_is_space: flags & 1 == 1,
    })
}

fn reference_decode(s: &[u8], plus: bool) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut it = s.iter().copied();
    while let Some(b) = it.next() {
        match b {
            b'%' => {
                let hi = (it.next()? as char).to_digit(16)?;
                let lo = (it.next()? as char).to_digit(16)?;
                out.push(u8::try_from(hi * 16 + lo).ok()?);
            }
            b'+' if plus => out.push(b' '),
            b => out.push(b),
        }
    }
    Some(out)
}

fn model_query_param(query: &str, name: &str) -> Result<Option<String>, QueryError> {
    let matches: Vec<&str> = query
        .split('&')
        .filter_map(|pair| {
            let (k, v) = match pair.find('=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, ""),
            };
            (form_decode(k).as_deref() == Some(name)).then_some(v)
        })
        .collect();
    match matches.as_slice() {
        [] => Ok(None),
        [first, rest @ ..] => match form_decode(first) {
            None => Err(QueryError::BadEncoding),
            Some(_) if !rest.is_empty() => Err(QueryError::Duplicate),
            Some(v) => Ok(Some(v)),
        },
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = decode(data) else {
        return;
    };
    // percent_decode_bytes against the reference.
    let got = percent_decode_bytes(input.raw, input.plus_is_space);
    assert_eq!(
        got,
        reference_decode(input.raw, input.plus_is_space),
        "{:?}",
        input.raw
    );
    if let Some(d) = &got {
        assert!(d.len() <= input.raw.len());
    }
    // form_decode.
    let fd = form_decode(&input.query);
    let want =
        percent_decode_bytes(input.query.as_bytes(), true).and_then(|b| String::from_utf8(b).ok());
    assert_eq!(fd, want);
    // encode_component round trip.
    for s in [input.query.as_str(), input.name.as_str()] {
        let e = encode_component(s);
        assert!(
            e.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "{e}"
        );
        assert_eq!(form_decode(&e).as_deref(), Some(s));
        assert_eq!(
            percent_decode_bytes(e.as_bytes(), false).as_deref(),
            Some(s.as_bytes())
        );
    }
    // query_param against the model.
    assert_eq!(
        query_param(&input.query, &input.name),
        model_query_param(&input.query, &input.name),
        "query {:?} name {:?}",
        input.query,
        input.name
    );
    // encode_pairs: a name written once reads back exactly.
    let pairs: Vec<(&str, &str)> = input
        .pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let q = encode_pairs(&pairs);
    for (k, v) in &pairs {
        let count = pairs.iter().filter(|(k2, _)| k2 == k).count();
        let read = query_param(&q, k);
        if count == 1 {
            assert_eq!(read, Ok(Some(v.to_string())), "{q}");
        } else {
            assert_eq!(read, Err(QueryError::Duplicate), "{q}");
        }
    }
    // split_query.
    let (p, qs) = split_query(&input.query);
    let before_hash = input.query.split('#').next().unwrap_or("");
    assert!(!p.contains(['?', '#']) && !qs.contains('#'));
    match before_hash.find('?') {
        Some(i) => assert_eq!((p, qs), (&before_hash[..i], &before_hash[i + 1..])),
        None => assert_eq!((p, qs), (before_hash, "")),
    }
});
