//! The time the caller hands to every decision.

use core::ops::Add;
use core::time::Duration;

/// One reading of the two clocks the security layer needs, taken once per event by the
/// driver and passed in (nothing in this crate reads a clock by itself).
///
/// - `monotonic` is time since an arbitrary fixed origin (e.g. process start). It drives
///   the token buckets, score decay, ban expiry and connection ages. It must never go
///   backwards; if it does, the buckets simply see no time pass (no panic).
/// - `unix_ms` is wall-clock time in milliseconds since the Unix epoch. It is used only
///   where another node's clock is involved (the timestamp of a relayed message) and to
///   translate ban expiries to and from the ban file, which must survive a restart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Now {
    monotonic: Duration,
    unix_ms: u64,
}

impl Now {
    /// A reading at `monotonic` since the caller's origin and `unix_ms` wall-clock time.
    pub const fn new(monotonic: Duration, unix_ms: u64) -> Self {
        Self { monotonic, unix_ms }
    }

    /// Monotonic time since the caller's origin.
    pub const fn monotonic(&self) -> Duration {
        self.monotonic
    }

    /// Wall-clock milliseconds since the Unix epoch.
    pub const fn unix_ms(&self) -> u64 {
        self.unix_ms
    }
}

/// Advances both clocks together, as a simulation does. The wall clock moves by the
/// whole milliseconds the monotonic clock crosses, so many small steps add up exactly.
impl Add<Duration> for Now {
    type Output = Self;

    fn add(self, by: Duration) -> Self {
        let monotonic = self.monotonic.saturating_add(by);
        let crossed = monotonic
            .as_millis()
            .saturating_sub(self.monotonic.as_millis());
        Self {
            monotonic,
            unix_ms: self
                .unix_ms
                .saturating_add(u64::try_from(crossed).unwrap_or(u64::MAX)),
        }
    }
}

/// Reads the operating system's clocks into a [`Now`]: the thin IO shell around the
/// deciding core, for drivers that run on real time.
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: std::time::Instant,
}

impl SystemClock {
    /// A clock whose monotonic origin is this instant.
    pub fn new() -> Self {
        Self {
            origin: std::time::Instant::now(),
        }
    }

    /// The current reading. A wall clock set before 1970 reads as 0.
    pub fn now(&self) -> Now {
        let unix_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Now::new(self.origin.elapsed(), unix_ms)
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

/// Nanoseconds as `u64`, saturating (584 years of uptime).
pub(crate) fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_steps_keep_both_clocks_in_step() {
        let mut now = Now::new(Duration::from_micros(999_500), 5_000);
        for _ in 0..2_000 {
            now = now + Duration::from_micros(1);
        }
        assert_eq!(now.monotonic(), Duration::from_micros(1_001_500));
        assert_eq!(now.unix_ms(), 5_002);
    }
}
