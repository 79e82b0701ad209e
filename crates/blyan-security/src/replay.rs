//! Replay protection for relayed messages: a freshness window on timestamps and, per
//! origin, an anti-replay bitmap over nonces (RFC 4303 §3.4.3 style).

use core::time::Duration;
use std::collections::HashMap;

use blyan_crypto::PeerId;

use crate::bounded::{batch, evict_lowest};
use crate::reject::Reject;
use crate::time::Now;

/// How many nonces below an origin's highest one are remembered: 256 bits per origin.
/// A message overtaken by more than this many newer messages from the same origin is
/// refused ([`Reject::NonceTooOld`]). IPsec's default is 64 (RFC 4303); gossip reorders
/// more than a single path does, so we keep four times that.
pub const NONCE_WINDOW: u64 = 256;

const WORDS: usize = (NONCE_WINDOW / 64) as usize;

/// Limits of the replay guard.
///
/// Relayed messages carry `(origin, nonce, timestamp_ms)`, signed by the origin. The
/// nonce must increase with every message an origin sends, across restarts too: an origin
/// should start its counter at its wall-clock time in microseconds and add one per message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayConfig {
    /// Default 120 s: how old a relayed message may be. It covers many gossip hops with
    /// queueing; anything older is refused without looking at its nonce, which is what
    /// lets the guard forget an origin safely.
    pub max_age: Duration,
    /// Default 15 s: how far ahead of our clock a timestamp may be. NTP keeps clocks
    /// within milliseconds; this tolerates a badly synchronised VM without letting an
    /// origin pre-date messages far ahead.
    pub max_future_skew: Duration,
    /// Default 16384 origins (about 1.6 MiB). With the default new-origin budget of
    /// 2/s per peer and 50 peers, peers can introduce at most 50 × 2 × 120 = 12,000 fresh
    /// origins per `max_age`, fewer than this cap, so a full table holds stale origins
    /// that can be forgotten without loss.
    pub max_senders: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            max_age: Duration::from_secs(120),
            max_future_skew: Duration::from_secs(15),
            max_senders: 16_384,
        }
    }
}

/// One origin's window: the highest nonce accepted and a bitmap of the 256 below it.
#[derive(Clone, Debug)]
struct SenderWindow {
    highest: u64,
    /// Bit `i` is set when nonce `highest - i` has been accepted.
    seen: [u64; WORDS],
    /// The newest timestamp accepted: every message accepted from this origin is at most
    /// this old, which is what eviction relies on.
    newest_ts: u64,
    /// Messages at or below this timestamp are refused (the guard's floor when this
    /// window was created).
    min_ts: u64,
}

impl SenderWindow {
    fn first(nonce: u64, ts: u64, min_ts: u64) -> Self {
        let mut seen = [0; WORDS];
        seen[0] = 1;
        Self {
            highest: nonce,
            seen,
            newest_ts: ts,
            min_ts,
        }
    }

    fn accept(&mut self, nonce: u64, ts: u64) -> Result<(), Reject> {
        if ts <= self.min_ts {
            return Err(Reject::Stale);
        }
        if nonce > self.highest {
            shift_up(&mut self.seen, nonce - self.highest);
            self.highest = nonce;
            set_bit(&mut self.seen, 0);
        } else {
            let age = self.highest - nonce;
            if age >= NONCE_WINDOW {
                return Err(Reject::NonceTooOld);
            }
            if bit(&self.seen, age) {
                return Err(Reject::Replay);
            }
            set_bit(&mut self.seen, age);
        }
        self.newest_ts = self.newest_ts.max(ts);
        Ok(())
    }
}

fn bit(bits: &[u64; WORDS], i: u64) -> bool {
    let word = bits.get((i / 64) as usize).copied().unwrap_or(0);
    word & (1 << (i % 64)) != 0
}

fn set_bit(bits: &mut [u64; WORDS], i: u64) {
    if let Some(word) = bits.get_mut((i / 64) as usize) {
        *word |= 1 << (i % 64);
    }
}

/// Moves every bit `by` positions up (towards older nonces); bits past the window fall off.
fn shift_up(bits: &mut [u64; WORDS], by: u64) {
    if by >= NONCE_WINDOW {
        *bits = [0; WORDS];
        return;
    }
    let words = (by / 64) as usize;
    let rem = (by % 64) as u32;
    let old = *bits;
    for (i, dst) in bits.iter_mut().enumerate() {
        let lo = i
            .checked_sub(words)
            .and_then(|j| old.get(j))
            .copied()
            .unwrap_or(0);
        let carry = i
            .checked_sub(words + 1)
            .and_then(|j| old.get(j))
            .copied()
            .unwrap_or(0);
        *dst = if rem == 0 {
            lo
        } else {
            (lo << rem) | (carry >> (64 - rem))
        };
    }
}

/// Refuses relayed messages that are stale, from the future, or already seen from their
/// origin. Memory is fixed per origin (56 bytes of window) and the number of origins is
/// capped.
///
/// **Forgetting an origin is safe.** When the table is full, stale origins (whose newest
/// message is older than `max_age`) go first: any replay of their messages is stale
/// anyway. If fresh origins must go, the guard raises a *floor* to the newest timestamp
/// it forgot, and refuses, from unknown origins (and from origins re-learnt after that),
/// any message at or below the floor. Every message of a forgotten origin is at or below
/// the floor, so no replay is ever accepted; the cost is that, while a flood lasts, new
/// origins must be more recent than the floor. The per-peer new-origin budget keeps
/// floods from getting there (see [`ReplayConfig::max_senders`]).
#[derive(Debug)]
pub struct ReplayGuard {
    config: ReplayConfig,
    senders: HashMap<PeerId, SenderWindow>,
    floor_ts: u64,
}

impl ReplayGuard {
    /// An empty guard.
    pub fn new(config: ReplayConfig) -> Self {
        Self {
            config: ReplayConfig {
                max_senders: config.max_senders.max(1),
                ..config
            },
            senders: HashMap::new(),
            floor_ts: 0,
        }
    }

    /// Whether `origin` has a window.
    pub fn is_known(&self, origin: &PeerId) -> bool {
        self.senders.contains_key(origin)
    }

    /// Accepts `(origin, nonce, timestamp_ms)` once, or says why not. A refused message
    /// changes nothing.
    pub fn check(
        &mut self,
        now: Now,
        origin: PeerId,
        nonce: u64,
        timestamp_ms: u64,
    ) -> Result<(), Reject> {
        self.check_admitting(now, origin, nonce, timestamp_ms, || Ok(()))
    }

    /// As [`check`](Self::check), but a message from an origin not tracked yet must also
    /// pass `admit_new` (e.g. the relaying peer's new-origin budget) before the origin is
    /// given a window. One table lookup either way.
    pub fn check_admitting(
        &mut self,
        now: Now,
        origin: PeerId,
        nonce: u64,
        timestamp_ms: u64,
        admit_new: impl FnOnce() -> Result<(), Reject>,
    ) -> Result<(), Reject> {
        let max_age = u64::try_from(self.config.max_age.as_millis()).unwrap_or(u64::MAX);
        let skew = u64::try_from(self.config.max_future_skew.as_millis()).unwrap_or(u64::MAX);
        if timestamp_ms.saturating_add(max_age) < now.unix_ms() {
            return Err(Reject::Stale);
        }
        if timestamp_ms > now.unix_ms().saturating_add(skew) {
            return Err(Reject::FromFuture);
        }
        if let Some(window) = self.senders.get_mut(&origin) {
            return window.accept(nonce, timestamp_ms);
        }
        if timestamp_ms <= self.floor_ts {
            return Err(Reject::Stale);
        }
        admit_new()?;
        if self.senders.len() >= self.config.max_senders {
            self.purge(now);
        }
        if self.senders.len() >= self.config.max_senders {
            let batch = batch(self.config.max_senders);
            if let Some(forgot) = evict_lowest(&mut self.senders, batch, |_, w| w.newest_ts) {
                self.floor_ts = self.floor_ts.max(forgot);
            }
        }
        self.senders.insert(
            origin,
            SenderWindow::first(nonce, timestamp_ms, self.floor_ts),
        );
        Ok(())
    }

    /// Forgets origins whose newest message is older than `max_age`: any replay of theirs
    /// is refused as stale.
    pub fn purge(&mut self, now: Now) {
        let max_age = u64::try_from(self.config.max_age.as_millis()).unwrap_or(u64::MAX);
        let horizon = now.unix_ms().saturating_sub(max_age);
        self.senders.retain(|_, w| w.newest_ts >= horizon);
    }

    /// How many origins are tracked.
    pub fn len(&self) -> usize {
        self.senders.len()
    }

    /// Whether no origin is tracked.
    pub fn is_empty(&self) -> bool {
        self.senders.is_empty()
    }

    /// The cap on tracked origins.
    pub fn capacity(&self) -> usize {
        self.config.max_senders
    }

    /// Bytes per tracked origin, key and window, without map overhead.
    pub const fn entry_size() -> usize {
        size_of::<(PeerId, SenderWindow)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeSet;

    const T0: u64 = 1_700_000_000_000;

    fn at(ms: u64) -> Now {
        Now::new(Duration::from_millis(ms), T0 + ms)
    }

    fn origin(i: u32) -> PeerId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        PeerId::from_bytes(b)
    }

    #[test]
    fn replayed_nonce_and_stale_timestamp_are_refused() {
        let mut guard = ReplayGuard::new(ReplayConfig::default());
        let now = at(1000);
        assert_eq!(guard.check(now, origin(1), 10, T0 + 1000), Ok(()));
        assert_eq!(
            guard.check(now, origin(1), 10, T0 + 1000),
            Err(Reject::Replay)
        );
        assert_eq!(guard.check(now, origin(1), 9, T0 + 1000), Ok(()));
        assert_eq!(guard.check(now, origin(2), 10, T0 + 1000), Ok(()));
        let later = now + Duration::from_secs(121);
        assert_eq!(
            guard.check(later, origin(3), 1, T0 + 1000),
            Err(Reject::Stale)
        );
        assert_eq!(
            guard.check(now, origin(3), 1, T0 + 1000 + 16_000),
            Err(Reject::FromFuture)
        );
        assert_eq!(
            guard.check(now, origin(1), 10 + NONCE_WINDOW, T0 + 1000),
            Ok(())
        );
        assert_eq!(
            guard.check(now, origin(1), 10, T0 + 1000),
            Err(Reject::NonceTooOld)
        );
    }

    #[test]
    fn a_flood_of_origins_stays_bounded_and_never_lets_a_replay_through() {
        let config = ReplayConfig {
            max_senders: 128,
            ..ReplayConfig::default()
        };
        let mut guard = ReplayGuard::new(config);
        let now = at(10_000);
        assert_eq!(guard.check(now, origin(0), 1, T0 + 5_000), Ok(()));
        for i in 1..5_000u32 {
            let ts = T0 + 5_000 + u64::from(i);
            assert_eq!(guard.check(now, origin(i), 1, ts), Ok(()));
            assert!(guard.len() <= 128);
        }
        // Origin 0 was forgotten; its message is at or below the floor.
        assert!(!guard.is_known(&origin(0)));
        assert_eq!(
            guard.check(now, origin(0), 1, T0 + 5_000),
            Err(Reject::Stale)
        );
        // A new origin with a current timestamp still gets in.
        assert_eq!(guard.check(now, origin(99_999), 1, T0 + 10_000), Ok(()));
    }

    #[test]
    fn stale_origins_are_purged() {
        let mut guard = ReplayGuard::new(ReplayConfig::default());
        assert_eq!(guard.check(at(0), origin(1), 1, T0), Ok(()));
        guard.purge(at(121_000));
        assert!(guard.is_empty());
    }

    proptest! {
        /// The window accepts exactly the nonces a set-based model accepts.
        #[test]
        fn window_matches_a_set_model(nonces in proptest::collection::vec(0u64..2_000, 1..400)) {
            let mut window = SenderWindow::first(nonces[0], 10, 0);
            let mut seen = BTreeSet::from([nonces[0]]);
            let mut highest = nonces[0];
            for &n in &nonces[1..] {
                let expected = if n + NONCE_WINDOW <= highest {
                    Err(Reject::NonceTooOld)
                } else if seen.contains(&n) {
                    Err(Reject::Replay)
                } else {
                    Ok(())
                };
                prop_assert_eq!(window.accept(n, 10), expected);
                if expected.is_ok() {
                    seen.insert(n);
                    highest = highest.max(n);
                }
            }
        }
    }
}
