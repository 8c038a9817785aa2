//! A session too large for one cookie, split over numbered cookies and sealed as one value.
//!
//! One cookie: `<name>=<sealed>` (the sealed value starts with a key id, which never contains `~`).
//! Several: `<name>=<n>~<part 0>`, `<name>_1=<part 1>` … `<name>_<n-1>=<part n-1>`, where the parts
//! concatenate to one sealed value. The AEAD covers the whole: a missing, reordered, truncated or
//! mixed-up part fails to open. A chunk cookie the first cookie does not announce (an extra one, or a
//! duplicate) means no session either, so a stale chunk can never be spliced in.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

/// Most cookies one session may span (so the largest session is about `MAX_CHUNKS * CHUNK_BYTES`,
/// ~22 KB of sealed value, well under Envoy's default 60 KB request-header limit).
pub const MAX_CHUNKS: usize = 6;

/// Value bytes per chunk cookie (name, attributes and `Set-Cookie` overhead stay under the 4096 bytes
/// browsers keep per cookie).
pub const CHUNK_BYTES: usize = 3800;

/// The `name_<i>` chunk index of a cookie name, if it is one of ours (`1..MAX_CHUNKS`).
fn chunk_index(cookie_name: &str, base: &str) -> Option<usize> {
    let digits = cookie_name.strip_prefix(base)?.strip_prefix('_')?;
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // `_01` is not `_1`: only the canonical spelling is ours.
    if digits.starts_with('0') {
        return None;
    }
    digits.parse().ok().filter(|i| (1..MAX_CHUNKS).contains(i))
}

/// Whether `cookie_name` is one of the session's chunk cookies (`<base>_1` …).
#[must_use]
pub fn is_chunk_name(cookie_name: &str, base: &str) -> bool {
    chunk_index(cookie_name, base).is_some()
}

/// The sealed session from a request's cookies (`name`, value pairs in order), or `None` when the
/// cookies are not exactly one well-formed set: borrowed when it fits in one cookie.
#[must_use]
pub fn join<'a>(
    cookies: impl Iterator<Item = (&'a str, &'a str)>,
    base: &str,
) -> Option<Cow<'a, str>> {
    let mut first: Option<&'a str> = None;
    let mut parts: [Option<&'a str>; MAX_CHUNKS] = [None; MAX_CHUNKS];
    let mut extra = false;
    for (name, value) in cookies {
        if name == base {
            // The first cookie of that name wins (RFC 6265 §5.4 sends the most specific first).
            if first.is_none() {
                first = Some(value);
            }
        } else if let Some(i) = chunk_index(name, base) {
            if parts[i].replace(value).is_some() {
                extra = true;
            }
        }
    }
    let first = first?;
    let Some((count, part0)) = first.split_once('~') else {
        // A single-cookie session: any chunk beside it is stale or planted.
        return (!extra && parts.iter().all(Option::is_none)).then_some(Cow::Borrowed(first));
    };
    let n: usize = match count.as_bytes() {
        [d] if d.is_ascii_digit() => usize::from(d - b'0'),
        _ => return None,
    };
    if extra || !(2..=MAX_CHUNKS).contains(&n) || parts[n..].iter().any(Option::is_some) {
        return None;
    }
    let mut whole = String::with_capacity(n * CHUNK_BYTES);
    whole.push_str(part0);
    for part in &parts[1..n] {
        whole.push_str((*part)?);
    }
    Some(Cow::Owned(whole))
}

/// Splits a sealed value into `(cookie name, value)` pairs, or `None` if it needs more than
/// `MAX_CHUNKS` cookies.
#[must_use]
pub fn split(sealed: &str, base: &str) -> Option<Vec<(String, String)>> {
    if sealed.len() <= CHUNK_BYTES {
        return Some(alloc::vec![(String::from(base), String::from(sealed))]);
    }
    let n = sealed.len().div_ceil(CHUNK_BYTES);
    if n > MAX_CHUNKS {
        return None;
    }
    // The sealed value is base64url and a key id: ASCII, so every byte offset is a char boundary.
    let bytes = sealed.as_bytes();
    let mut out = Vec::with_capacity(n);
    for (i, part) in bytes.chunks(CHUNK_BYTES).enumerate() {
        let part = core::str::from_utf8(part).ok()?;
        if i == 0 {
            out.push((String::from(base), format!("{n}~{part}")));
        } else {
            out.push((format!("{base}_{i}"), String::from(part)));
        }
    }
    Some(out)
}

/// The chunk cookie names from `from` up to the most there can be (to clear what a smaller session no
/// longer uses, or everything at sign-out).
pub fn chunk_names_from(base: &str, from: usize) -> impl Iterator<Item = String> + '_ {
    (from.max(1)..MAX_CHUNKS).map(move |i| format!("{base}_{i}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use alloc::vec;

    fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect()
    }

    #[test]
    fn small_values_stay_one_cookie_and_round_trip() {
        let parts = split("k1.abc", "_pc").unwrap();
        assert_eq!(parts, vec![("_pc".into(), "k1.abc".into())]);
        assert_eq!(join(pairs(&parts).into_iter(), "_pc").unwrap(), "k1.abc");
    }

    #[test]
    fn large_values_split_and_join_in_any_cookie_order() {
        let sealed = "k1.".to_string() + &"x".repeat(3 * CHUNK_BYTES);
        let parts = split(&sealed, "_pc").unwrap();
        assert_eq!(parts.len(), 4);
        assert!(parts[0].1.starts_with("4~k1."));
        assert_eq!(parts[3].0, "_pc_3");
        let mut p = pairs(&parts);
        assert_eq!(join(p.iter().copied(), "_pc").unwrap(), sealed);
        p.reverse();
        assert_eq!(join(p.iter().copied(), "_pc").unwrap(), sealed);
    }

    #[test]
    fn missing_extra_duplicate_or_stale_chunks_are_no_session() {
        let sealed = "k1.".to_string() + &"y".repeat(2 * CHUNK_BYTES);
        let parts = split(&sealed, "_pc").unwrap();
        let p = pairs(&parts);
        assert_eq!(p.len(), 3);
        // missing each chunk in turn (the first is the header: without it there is no session)
        for skip in 0..p.len() {
            let q: Vec<_> = p
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != skip)
                .map(|(_, x)| *x)
                .collect();
            assert!(join(q.into_iter(), "_pc").is_none(), "missing {skip}");
        }
        // an extra chunk beyond the count
        let mut q = p.clone();
        q.push(("_pc_3", "zz"));
        assert!(join(q.into_iter(), "_pc").is_none());
        // a duplicate chunk
        let mut q = p.clone();
        q.push(("_pc_1", "zz"));
        assert!(join(q.into_iter(), "_pc").is_none());
        // a stale chunk beside a single-cookie session
        assert!(join([("_pc", "k1.a"), ("_pc_1", "b")].into_iter(), "_pc").is_none());
        // bad counts
        for first in ["1~a", "7~a", "x~a", "12~a", "~a", "0~a"] {
            assert!(
                join([(("_pc"), first), ("_pc_1", "b")].into_iter(), "_pc").is_none(),
                "{first}"
            );
        }
        // non-canonical names are not chunks (and so not a stale chunk either)
        assert!(!is_chunk_name("_pc_01", "_pc"));
        assert!(!is_chunk_name("_pc_6", "_pc"));
        assert!(!is_chunk_name("_pc_hint", "_pc"));
        assert!(is_chunk_name("_pc_5", "_pc"));
    }

    #[test]
    fn too_large_is_refused() {
        let sealed = "k1.".to_string() + &"z".repeat(MAX_CHUNKS * CHUNK_BYTES);
        assert!(split(&sealed, "_pc").is_none());
        let fits = "k1.".to_string() + &"z".repeat(MAX_CHUNKS * CHUNK_BYTES - 3);
        assert_eq!(split(&fits, "_pc").unwrap().len(), MAX_CHUNKS);
    }
}
