//! Sessions ended by the IdP through back-channel logout, by IdP session (`sid`) or user (`sub`).
//!
//! Every worker VM keeps its own copy; the adapter shares them through the host's process-wide store
//! (proxy-wasm shared data) with [`crate::Engine::sync_revocations`]. Entries are hashed (a hostile
//! `sid` costs the same 16 bytes as any other), bounded at [`MAX_REVOCATIONS`], and expire when every
//! session issued before them has expired anyway (`revoked_at + session lifetime`).

use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use core::fmt::Write as _;

use sha2::{Digest, Sha256};

/// Most revocations held (each is one line of ~50 bytes in the shared store).
pub const MAX_REVOCATIONS: usize = 10_000;

/// A hashed `sid` or `sub`.
pub type RevocationKey = [u8; 16];

/// The key of an IdP session id or a subject (domain-separated so a `sub` can never name a `sid`).
#[must_use]
pub fn key(kind: Kind, value: &str) -> RevocationKey {
    let mut h = Sha256::new();
    h.update(match kind {
        Kind::Sid => b"sid\0",
        Kind::Sub => b"sub\0",
    });
    h.update(value.as_bytes());
    let d = h.finalize();
    let mut k = [0u8; 16];
    k.copy_from_slice(&d[..16]);
    k
}

/// What a revocation names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An IdP session (`sid`).
    Sid,
    /// A user (`sub`): every session of theirs issued before the logout.
    Sub,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    revoked_at: u64,
    until: u64,
}

/// This VM's revocations, and those it has not yet published.
#[derive(Debug, Default, Clone)]
pub struct Revocations {
    entries: BTreeMap<RevocationKey, Entry>,
    pending: BTreeMap<RevocationKey, Entry>,
    /// The store version last taken in (the host's compare-and-swap value).
    seen: Option<u32>,
}

impl Revocations {
    /// Whether a session issued at `issued_at` with these keys has been ended.
    #[must_use]
    pub fn revoked(&self, keys: &[RevocationKey], issued_at: u64) -> bool {
        !self.entries.is_empty()
            && keys.iter().any(|k| {
                self.entries
                    .get(k)
                    .is_some_and(|e| issued_at <= e.revoked_at)
            })
    }

    /// Records a revocation here and marks it for publishing.
    pub fn add(&mut self, key: RevocationKey, revoked_at: u64, until: u64) {
        let e = Entry { revoked_at, until };
        for map in [&mut self.entries, &mut self.pending] {
            let slot = map.entry(key).or_insert(e);
            slot.revoked_at = slot.revoked_at.max(revoked_at);
            slot.until = slot.until.max(until);
        }
        bound(&mut self.entries);
        bound(&mut self.pending);
    }

    /// Entries held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether none are held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether some have not been published yet.
    #[must_use]
    pub fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Takes in the shared store's contents (what other workers published) and drops expired entries;
    /// returns the store's new contents when this VM has something to add.
    /// `version` is the store's compare-and-swap value: an unchanged store is not parsed again.
    pub fn sync(&mut self, shared: Option<&[u8]>, version: u32, now: u64) -> Option<Vec<u8>> {
        if self.pending.is_empty() && self.seen == Some(version) {
            return None;
        }
        self.seen = Some(version);
        let mut merged = shared.map(parse).unwrap_or_default();
        for (k, e) in &self.pending {
            let slot = merged.entry(*k).or_insert(*e);
            slot.revoked_at = slot.revoked_at.max(e.revoked_at);
            slot.until = slot.until.max(e.until);
        }
        merged.retain(|_, e| e.until > now);
        bound(&mut merged);
        self.entries = merged;
        (!self.pending.is_empty()).then(|| serialize(&self.entries))
    }

    /// The store accepted what [`Revocations::sync`] returned.
    pub fn published(&mut self) {
        self.pending.clear();
    }
}

/// Keeps the `MAX_REVOCATIONS` entries that expire last.
fn bound(map: &mut BTreeMap<RevocationKey, Entry>) {
    if map.len() <= MAX_REVOCATIONS {
        return;
    }
    let mut untils: Vec<u64> = map.values().map(|e| e.until).collect();
    untils.sort_unstable();
    let cut = untils[map.len() - MAX_REVOCATIONS];
    let mut excess = map.len() - MAX_REVOCATIONS;
    map.retain(|_, e| {
        if excess > 0 && e.until < cut {
            excess -= 1;
            false
        } else {
            true
        }
    });
    // Ties at the cut: drop from the front until bounded.
    while map.len() > MAX_REVOCATIONS {
        let Some(k) = map.iter().find(|(_, e)| e.until == cut).map(|(k, _)| *k) else {
            break;
        };
        map.remove(&k);
    }
}

/// `hex(key) revoked_at until\n` per entry.
fn serialize(map: &BTreeMap<RevocationKey, Entry>) -> Vec<u8> {
    let mut s = alloc::string::String::with_capacity(map.len() * 56);
    for (k, e) in map {
        for b in k {
            let _ = write!(s, "{b:02x}");
        }
        let _ = writeln!(s, " {} {}", e.revoked_at, e.until);
    }
    s.into_bytes()
}

/// Reads what `serialize` wrote; malformed lines are skipped (the store is ours, but never trusted to
/// be well-formed), and at most `MAX_REVOCATIONS` lines are read.
fn parse(bytes: &[u8]) -> BTreeMap<RevocationKey, Entry> {
    let mut map = BTreeMap::new();
    for line in bytes.split(|&b| b == b'\n').take(MAX_REVOCATIONS) {
        let mut it = line.split(|&b| b == b' ');
        let (Some(hex), Some(at), Some(until), None) = (it.next(), it.next(), it.next(), it.next())
        else {
            continue;
        };
        let (Some(k), Some(at), Some(until)) = (unhex(hex), number(at), number(until)) else {
            continue;
        };
        map.insert(
            k,
            Entry {
                revoked_at: at,
                until,
            },
        );
    }
    map
}

fn number(b: &[u8]) -> Option<u64> {
    core::str::from_utf8(b).ok()?.parse().ok()
}

fn unhex(b: &[u8]) -> Option<RevocationKey> {
    if b.len() != 32 {
        return None;
    }
    let mut k = [0u8; 16];
    for (i, pair) in b.chunks(2).enumerate() {
        let s = core::str::from_utf8(pair).ok()?;
        k[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_ends_sessions_issued_before_it_only() {
        let mut r = Revocations::default();
        let sid = key(Kind::Sid, "s-1");
        r.add(sid, 100, 1000);
        assert!(r.revoked(&[sid], 100));
        assert!(r.revoked(&[sid], 50));
        assert!(!r.revoked(&[sid], 101), "a later login is a new session");
        assert!(
            !r.revoked(&[key(Kind::Sub, "s-1")], 50),
            "sid and sub are distinct"
        );
    }

    #[test]
    fn workers_share_through_the_store_and_entries_expire() {
        let mut a = Revocations::default();
        let mut b = Revocations::default();
        let k = key(Kind::Sub, "alice");
        a.add(k, 100, 1000);
        let store = a.sync(None, 0, 100).unwrap();
        a.published();
        assert!(!a.has_pending());
        assert_eq!(b.sync(Some(&store), 1, 100), None, "nothing of b's to add");
        assert!(b.revoked(&[k], 90));
        // b adds its own; the merged store carries both.
        let k2 = key(Kind::Sid, "x");
        b.add(k2, 200, 2000);
        let store = b.sync(Some(&store), 1, 200).unwrap();
        b.published();
        a.sync(Some(&store), 2, 200);
        assert!(a.revoked(&[k2], 150) && a.revoked(&[k], 90));
        // After `until`, gone.
        a.sync(Some(&store), 3, 1000);
        assert!(!a.revoked(&[k], 90));
        assert!(a.revoked(&[k2], 150));
    }

    #[test]
    fn the_store_is_bounded_and_garbage_is_skipped() {
        let mut r = Revocations::default();
        for i in 0..(MAX_REVOCATIONS + 50) {
            r.add(key(Kind::Sid, &alloc::format!("{i}")), 1, 10 + i as u64);
        }
        assert_eq!(r.len(), MAX_REVOCATIONS);
        let store = r.sync(Some(b"zz 1 2\n\xff\xfe\n0011 1\n"), 0, 0).unwrap();
        assert_eq!(parse(&store).len(), MAX_REVOCATIONS);
        // The earliest-expiring were dropped, the newest kept.
        assert!(r.revoked(
            &[key(Kind::Sid, &alloc::format!("{}", MAX_REVOCATIONS + 49))],
            1
        ));
        assert!(!r.revoked(&[key(Kind::Sid, "0")], 1));
    }
}
