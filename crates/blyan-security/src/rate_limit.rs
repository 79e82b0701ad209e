//! Token buckets (`governor`'s GCRA) driven by the caller's clock, and their quotas.

use core::num::NonZeroU32;
use core::sync::atomic::{AtomicU64, Ordering};
use core::time::Duration;
use std::collections::HashMap;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::bounded::{batch, evict_lowest};
use crate::error::ConfigError;
use crate::net_group::IpKey;
use crate::time::nanos;

/// A rate: `amount` units every `per`, with room for a burst of `burst` units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateQuota {
    /// Units replenished every `per`.
    pub amount: u32,
    /// The replenishment period.
    pub per: Duration,
    /// Bucket size: how many units may be spent at once after a quiet period.
    pub burst: u32,
}

impl RateQuota {
    /// `amount` units per second, bursts of `burst`.
    pub const fn per_second(amount: u32, burst: u32) -> Self {
        Self {
            amount,
            per: Duration::from_secs(1),
            burst,
        }
    }

    /// `amount` units per minute, bursts of `burst`.
    pub const fn per_minute(amount: u32, burst: u32) -> Self {
        Self {
            amount,
            per: Duration::from_secs(60),
            burst,
        }
    }

    /// The governor quota; `name` says which setting was wrong.
    pub(crate) fn to_quota(self, name: &'static str) -> Result<Quota, ConfigError> {
        let invalid = ConfigError::InvalidQuota { name };
        let burst = NonZeroU32::new(self.burst).ok_or(invalid.clone())?;
        if self.amount == 0 {
            return Err(invalid);
        }
        let interval = self.per / self.amount;
        let quota = Quota::with_period(interval).ok_or(invalid)?;
        Ok(quota.allow_burst(burst))
    }
}

/// Kinds of message, as far as cost is concerned. `blyan-p2p` maps each wire message to
/// one of these; the set is closed so that metric labels stay bounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// Handshake, status, ping/pong: cheap to handle.
    Control,
    /// A gossiped transaction: one signature check and a pool lookup.
    Transaction,
    /// A gossiped block: a full validation.
    Block,
    /// A request for blocks: disk reads and an upload on our side.
    SyncRequest,
    /// A response to one of our requests.
    SyncResponse,
    /// A DHT RPC.
    Discovery,
}

impl MessageKind {
    /// Every kind, for iteration and metric pre-registration.
    pub const ALL: [Self; 6] = [
        Self::Control,
        Self::Transaction,
        Self::Block,
        Self::SyncRequest,
        Self::SyncResponse,
        Self::Discovery,
    ];

    /// A fixed lowercase label for metrics.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Control => "control",
            Self::Transaction => "transaction",
            Self::Block => "block",
            Self::SyncRequest => "sync_request",
            Self::SyncResponse => "sync_response",
            Self::Discovery => "discovery",
        }
    }
}

/// What each kind of message costs in the per-peer and per-IP message buckets: the cost
/// is our work to handle it, so an expensive message spends more of the quota.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageCosts {
    /// Default 1: a few microseconds of work.
    pub control: u32,
    /// Default 2: one signature verification (~50 µs) plus a pool lookup.
    pub transaction: u32,
    /// Default 20: a block is validated in full (every signature, a state transition).
    pub block: u32,
    /// Default 10: disk reads and an upload of up to a frame.
    pub sync_request: u32,
    /// Default 1: solicited; the sync scheduler already bounds how many we ask for.
    pub sync_response: u32,
    /// Default 2: a routing-table lookup and a small answer.
    pub discovery: u32,
}

impl MessageCosts {
    /// The cost of one message of `kind`.
    pub const fn of(&self, kind: MessageKind) -> u32 {
        match kind {
            MessageKind::Control => self.control,
            MessageKind::Transaction => self.transaction,
            MessageKind::Block => self.block,
            MessageKind::SyncRequest => self.sync_request,
            MessageKind::SyncResponse => self.sync_response,
            MessageKind::Discovery => self.discovery,
        }
    }
}

impl Default for MessageCosts {
    fn default() -> Self {
        Self {
            control: 1,
            transaction: 2,
            block: 20,
            sync_request: 10,
            sync_response: 1,
            discovery: 2,
        }
    }
}

/// Every rate limit. Message quotas are in cost units ([`MessageCosts`]), byte quotas in
/// KiB (a message of `n` bytes spends `ceil(n / 1024)`, at least 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Default 200 units/s, burst 400: 100 transactions or 10 blocks a second per peer,
    /// far above an honest peer's share of a chain producing a block a slot, and a burst
    /// that absorbs a reconnecting peer's announcements.
    pub peer_messages: RateQuota,
    /// Default 4096 KiB/s (32 Mbit/s), burst 32768 KiB: the burst is two maximum frames
    /// (16 MiB, the wire limit), so every legal message can pass a full bucket.
    pub peer_bytes_kib: RateQuota,
    /// Default 400 units/s, burst 800: twice one peer, so the peers behind one IP
    /// (at most `max_per_ip`) share a budget instead of multiplying it.
    pub ip_messages: RateQuota,
    /// Default 8192 KiB/s, burst 65536 KiB: twice one peer, as above.
    pub ip_bytes_kib: RateQuota,
    /// Default 2/s, burst 64: relayed messages whose origin the replay guard has not
    /// seen yet. This bounds how fast peers can fill the replay table with fresh origins
    /// (see [`ReplayConfig::max_senders`](crate::ReplayConfig::max_senders)); 64 lets a
    /// new peer introduce the origins it relays at once when it joins.
    pub peer_new_origins: RateQuota,
    /// Default 10/min, burst 5: inbound connection attempts per IP. A restarting node
    /// reconnects a handful of times; a tight loop of handshakes (each costing us a TLS
    /// handshake and a signature check) is refused early.
    pub connection_attempts: RateQuota,
    /// Default 8192: IPs whose attempt buckets are tracked. Buckets that have refilled
    /// are dropped first (they are indistinguishable from fresh ones), then the buckets
    /// closest to refilled.
    pub max_tracked_ips: usize,
    /// Cost of each message kind.
    pub costs: MessageCosts,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            peer_messages: RateQuota::per_second(200, 400),
            peer_bytes_kib: RateQuota::per_second(4096, 32 * 1024),
            ip_messages: RateQuota::per_second(400, 800),
            ip_bytes_kib: RateQuota::per_second(8192, 64 * 1024),
            peer_new_origins: RateQuota::per_second(2, 64),
            connection_attempts: RateQuota::per_minute(10, 5),
            max_tracked_ips: 8192,
            costs: MessageCosts::default(),
        }
    }
}

/// The validated quotas of a [`RateLimitConfig`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Quotas {
    pub(crate) peer_messages: Quota,
    pub(crate) peer_bytes: Quota,
    pub(crate) ip_messages: Quota,
    pub(crate) ip_bytes: Quota,
    pub(crate) peer_new_origins: Quota,
}

impl RateLimitConfig {
    pub(crate) fn quotas(&self) -> Result<Quotas, ConfigError> {
        for kind in MessageKind::ALL {
            if self.costs.of(kind) == 0 {
                return Err(ConfigError::ZeroCost {
                    kind: kind.as_str(),
                });
            }
        }
        Ok(Quotas {
            peer_messages: self.peer_messages.to_quota("peer_messages")?,
            peer_bytes: self.peer_bytes_kib.to_quota("peer_bytes_kib")?,
            ip_messages: self.ip_messages.to_quota("ip_messages")?,
            ip_bytes: self.ip_bytes_kib.to_quota("ip_bytes_kib")?,
            peer_new_origins: self.peer_new_origins.to_quota("peer_new_origins")?,
        })
    }
}

/// Why a bucket refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shortfall {
    /// Not enough tokens now; waiting refills the bucket.
    Empty,
    /// More tokens than the bucket can ever hold.
    TooLarge,
}

/// A governor clock that reads the time the caller last stored: the sans-IO bridge.
///
/// Governor asks its clock for `now()` inside every check. Rather than let it read the
/// system clock, each bucket carries this 8-byte cell and [`TokenBucket::take`] stores the
/// caller's `now` in it right before the check. One cell per bucket (not one shared
/// `Arc`) keeps buckets independent and costs one relaxed store per check.
#[derive(Debug, Default)]
struct ManualClock(AtomicU64);

impl Clock for ManualClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.0.load(Ordering::Relaxed))
    }
}

/// One token bucket: governor's GCRA (40 bytes of state) driven by explicit time.
#[derive(Debug)]
pub struct TokenBucket(RateLimiter<NotKeyed, InMemoryState, ManualClock, NoOpMiddleware<Nanos>>);

impl TokenBucket {
    /// A full bucket at `now` (monotonic).
    pub fn new(quota: Quota, now: Duration) -> Self {
        let clock = ManualClock(AtomicU64::new(nanos(now)));
        Self(RateLimiter::direct_with_clock(quota, clock))
    }

    /// Spends `n` tokens at `now` (monotonic), all or nothing. Spending 0 always succeeds.
    pub fn take(&self, now: Duration, n: u32) -> Result<(), Shortfall> {
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(());
        };
        self.0.clock().0.store(nanos(now), Ordering::Relaxed);
        match self.0.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_not_until)) => Err(Shortfall::Empty),
            Err(_insufficient) => Err(Shortfall::TooLarge),
        }
    }
}

/// Per-IP buckets of inbound connection attempts, in a table of bounded size.
#[derive(Debug)]
pub struct AttemptLimiter {
    quota: Quota,
    /// After a take at `t`, the bucket is certainly full again at `t + refill`.
    refill: Duration,
    capacity: usize,
    table: HashMap<IpKey, Attempts>,
}

#[derive(Debug)]
struct Attempts {
    bucket: TokenBucket,
    /// From this time on the bucket is full, so forgetting it loses nothing.
    idle_at: Duration,
}

impl AttemptLimiter {
    /// A limiter of `quota` per IP, tracking at most `capacity` IPs.
    pub fn new(quota: Quota, capacity: usize) -> Self {
        Self {
            quota,
            refill: quota.burst_size_replenished_in(),
            capacity: capacity.max(1),
            table: HashMap::new(),
        }
    }

    /// Counts one attempt from `ip` at `now` (monotonic); `false` when over quota.
    pub fn try_attempt(&mut self, now: Duration, ip: IpKey) -> bool {
        if !self.table.contains_key(&ip) && self.table.len() >= self.capacity {
            self.table.retain(|_, a| a.idle_at > now);
            if self.table.len() >= self.capacity {
                // Evict the buckets closest to full: the least information is lost.
                evict_lowest(&mut self.table, batch(self.capacity), |_, a| a.idle_at);
            }
        }
        let entry = self.table.entry(ip).or_insert_with(|| Attempts {
            bucket: TokenBucket::new(self.quota, now),
            idle_at: now,
        });
        let allowed = entry.bucket.take(now, 1).is_ok();
        if allowed {
            entry.idle_at = now.saturating_add(self.refill);
        }
        allowed
    }

    /// Forgets the buckets that have refilled by `now`.
    pub fn purge(&mut self, now: Duration) {
        self.table.retain(|_, a| a.idle_at > now);
    }

    /// How many IPs are tracked.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no IP is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The table's cap.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn bucket_throttles_then_recovers() {
        let quota = RateQuota::per_second(10, 20).to_quota("t").unwrap();
        let bucket = TokenBucket::new(quota, secs(100));
        for _ in 0..20 {
            assert_eq!(bucket.take(secs(100), 1), Ok(()));
        }
        assert_eq!(bucket.take(secs(100), 1), Err(Shortfall::Empty));
        // 100 ms refills exactly one token.
        let later = secs(100) + Duration::from_millis(100);
        assert_eq!(bucket.take(later, 1), Ok(()));
        assert_eq!(bucket.take(later, 1), Err(Shortfall::Empty));
        assert_eq!(bucket.take(later, 21), Err(Shortfall::TooLarge));
        assert_eq!(bucket.take(secs(103), 20), Ok(()));
        assert_eq!(bucket.take(secs(103), 0), Ok(()));
    }

    #[test]
    fn time_going_backwards_only_stops_refilling() {
        let quota = RateQuota::per_second(1, 1).to_quota("t").unwrap();
        let bucket = TokenBucket::new(quota, secs(50));
        assert_eq!(bucket.take(secs(50), 1), Ok(()));
        assert_eq!(bucket.take(secs(10), 1), Err(Shortfall::Empty));
        assert_eq!(bucket.take(secs(51), 1), Ok(()));
    }

    #[test]
    fn invalid_quotas_are_typed_errors() {
        assert!(RateQuota::per_second(0, 1).to_quota("a").is_err());
        assert!(RateQuota::per_second(1, 0).to_quota("b").is_err());
        let tiny = RateQuota {
            amount: u32::MAX,
            per: Duration::from_nanos(1),
            burst: 1,
        };
        assert!(tiny.to_quota("c").is_err());
    }

    #[test]
    fn attempt_table_stays_bounded_under_a_flood_of_ips() {
        let quota = RateQuota::per_minute(10, 5).to_quota("t").unwrap();
        let mut limiter = AttemptLimiter::new(quota, 64);
        for i in 0..10_000u32 {
            let ip = IpKey::V4(i.to_be_bytes());
            assert!(limiter.try_attempt(secs(1), ip));
            assert!(limiter.len() <= 64);
        }
        // A refilled bucket is forgotten.
        limiter.purge(secs(1000));
        assert!(limiter.is_empty());
    }

    #[test]
    fn attempts_are_limited_per_ip() {
        let quota = RateQuota::per_minute(10, 5).to_quota("t").unwrap();
        let mut limiter = AttemptLimiter::new(quota, 64);
        let ip = IpKey::V4([10, 0, 0, 1]);
        for _ in 0..5 {
            assert!(limiter.try_attempt(secs(1), ip));
        }
        assert!(!limiter.try_attempt(secs(1), ip));
        assert!(limiter.try_attempt(secs(1), IpKey::V4([10, 0, 0, 2])));
        assert!(limiter.try_attempt(secs(7), ip));
    }
}
