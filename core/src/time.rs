//! Time as the core sees it: whole seconds since the Unix epoch, always handed in by the host.

/// Seconds since 1970-01-01T00:00:00Z. The core never reads a clock; every call takes one of these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct UnixTime(pub u64);

impl UnixTime {
    /// The time `secs` seconds later (saturating).
    #[must_use]
    pub fn plus(self, secs: u64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// Seconds elapsed from `earlier` to `self` (0 if `earlier` is later).
    #[must_use]
    pub fn since(self, earlier: UnixTime) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}
