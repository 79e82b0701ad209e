//! The clock the sans-IO core is given: milliseconds since the driver's own epoch.

use std::time::Duration;

/// A point in time as the driver sees it: milliseconds since an epoch the driver picks (its
/// start, or a simulator's zero).
///
/// The core never reads a clock; every method that depends on time takes a `Timestamp`.
/// A tokio driver passes `start.elapsed()`, a simulator its virtual clock, so the same
/// input sequence always gives the same decisions.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The driver's epoch.
    pub const ZERO: Timestamp = Timestamp(0);

    /// `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating at the far future instead of overflowing.
    pub fn saturating_add(self, duration: Duration) -> Self {
        let ms = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(ms))
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl From<Duration> for Timestamp {
    /// A duration since the epoch (what `Instant::elapsed` returns), saturating.
    fn from(since_epoch: Duration) -> Self {
        Timestamp::ZERO.saturating_add(since_epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        let t = Timestamp::from_millis(u64::MAX - 1);
        assert_eq!(
            t.saturating_add(Duration::from_secs(1)).as_millis(),
            u64::MAX
        );
        assert_eq!(
            Timestamp::from_millis(5).saturating_duration_since(Timestamp::from_millis(9)),
            Duration::ZERO
        );
        assert_eq!(
            Timestamp::from(Duration::from_millis(1500)).saturating_duration_since(Timestamp::ZERO),
            Duration::from_millis(1500)
        );
    }
}
