//! A bounded per-VM cache of opened sessions, keyed by the exact cookie value, so steady-state requests
//! skip the AEAD open and JSON parse. The key is the full sealed value: a tampered cookie is a different
//! key and goes through `open` (and fails). Entries still have their expiry checked on every hit.
//! The same structure, keyed by a token's SHA-256, caches verified bearer tokens.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::sync::Arc;

use crate::decision::Header;
use crate::identity::Identity;

/// What a cache hit gives back: the identity, when it stops being valid, and the headers computed from
/// it once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedSession {
    /// Who.
    pub identity: Identity,
    /// When it was issued (a session) or the token's `iat` (0 if absent).
    pub issued_at: u64,
    /// When it stops being valid: the session's end, or the token's `exp`.
    pub expires_at: u64,
    /// The identity headers to send upstream (shared into every `Forward`, never copied).
    pub upstream: Arc<[Header]>,
    /// The hashed `sub` and `sid` a back-channel logout may name (sessions only).
    pub revocation_keys: alloc::vec::Vec<crate::session::revocations::RevocationKey>,
    /// The session itself when it can be refreshed (it holds a refresh token), else `None`.
    pub refreshable: Option<Arc<crate::session::Session>>,
}

impl CachedSession {
    /// Valid at `now` (issued not in the future beyond `leeway`).
    #[must_use]
    pub fn is_valid_at(&self, now: crate::time::UnixTime, leeway: u64) -> bool {
        now.0 < self.expires_at && self.issued_at <= now.0.saturating_add(leeway)
    }
}

/// FIFO-bounded map from cookie value to opened session.
#[derive(Debug, Default, Clone)]
pub struct SessionCache {
    map: BTreeMap<Arc<str>, Arc<CachedSession>>,
    order: VecDeque<Arc<str>>,
    capacity: usize,
}

impl SessionCache {
    /// A cache holding at most `capacity` sessions (0 disables it).
    #[must_use]
    pub fn new(capacity: usize) -> Self {
        SessionCache {
            map: BTreeMap::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// The entry for this exact cookie value.
    #[must_use]
    pub fn get(&self, cookie: &str) -> Option<Arc<CachedSession>> {
        self.map.get(cookie).cloned()
    }

    /// Forgets one cookie value (e.g. found expired).
    pub fn remove(&mut self, cookie: &str) {
        if self.map.remove(cookie).is_some() {
            self.order.retain(|k| &**k != cookie);
        }
    }

    /// Remembers an opened session, evicting the oldest entry when full.
    pub fn insert(&mut self, cookie: &str, entry: Arc<CachedSession>) {
        if self.capacity == 0 || self.map.contains_key(cookie) {
            return;
        }
        while self.map.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        let key: Arc<str> = Arc::from(cookie);
        self.order.push_back(key.clone());
        self.map.insert(key, entry);
    }

    /// Most sessions held.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Number of cached sessions.
    #[must_use]
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::String;
    use alloc::vec;

    fn entry(user: &str) -> Arc<CachedSession> {
        let session = crate::session::Session {
            user: String::from(user),
            sub: String::from(user),
            expires_at: 10,
            ..Default::default()
        };
        Arc::new(CachedSession {
            identity: Identity::of_session(&session),
            issued_at: 0,
            expires_at: 10,
            upstream: Arc::from(vec![]),
            revocation_keys: vec![],
            refreshable: None,
        })
    }

    #[test]
    fn bounded_oldest_evicted_first() {
        let mut c = SessionCache::new(2);
        c.insert("a", entry("a"));
        c.insert("b", entry("b"));
        c.insert("c", entry("c"));
        assert_eq!(c.len(), 2);
        assert!(c.get("a").is_none());
        assert_eq!(
            c.get("c").map(|e| e.identity.user.clone()).as_deref(),
            Some("c")
        );
        c.remove("b");
        assert!(c.get("b").is_none());
        assert_eq!(c.len(), 1);
        let mut off = SessionCache::new(0);
        off.insert("a", entry("a"));
        assert!(off.is_empty());
    }
}
