//! Peer scores: weighted events, exponential decay toward neutral, thresholds.

use core::time::Duration;
use std::collections::HashMap;

use blyan_crypto::PeerId;

use crate::bounded::{batch, evict_lowest};
use crate::error::ConfigError;

/// Scores closer to 0 than this are neutral: the entry is dropped.
const NEUTRAL: f64 = 0.01;

/// Something a peer did. Weights are fixed by the protocol's judgement of harm, not
/// tuned per node; the thresholds in [`ScoreConfig`] are what an operator adjusts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PeerEvent {
    /// -20: sent a block that failed validation (blocks are validated before relay, so
    /// the sender is at fault). Three of them within a half-life mean a ban.
    InvalidBlock,
    /// -5: sent a transaction that failed validation (cheaper to check than a block).
    InvalidTransaction,
    /// -10: sent bytes that do not decode, or broke the protocol's sequencing.
    InvalidMessage,
    /// -2: did not answer a request in time (networks fail honestly too).
    Timeout,
    /// -5: exceeded a rate limit.
    RateLimited,
    /// -1: sent a duplicate or unsolicited message.
    Useless,
    /// +2: delivered a new valid block first.
    UsefulBlock,
    /// +0.2: delivered a new valid transaction.
    UsefulTransaction,
    /// Fatal: relayed something with an invalid signature (no honest node relays one).
    InvalidSignature,
    /// Fatal: produced or relayed two conflicting signed statements.
    Equivocation,
}

impl PeerEvent {
    /// The score change; `None` for fatal events, which ban at once.
    pub const fn weight(&self) -> Option<f64> {
        match self {
            Self::InvalidBlock => Some(-20.0),
            Self::InvalidTransaction => Some(-5.0),
            Self::InvalidMessage => Some(-10.0),
            Self::Timeout => Some(-2.0),
            Self::RateLimited => Some(-5.0),
            Self::Useless => Some(-1.0),
            Self::UsefulBlock => Some(2.0),
            Self::UsefulTransaction => Some(0.2),
            Self::InvalidSignature | Self::Equivocation => None,
        }
    }

    /// Whether the event bans without a second chance.
    pub const fn is_fatal(&self) -> bool {
        self.weight().is_none()
    }

    /// Whether the event marks the peer as useful (for eviction protection).
    pub const fn is_useful(&self) -> bool {
        matches!(self, Self::UsefulBlock | Self::UsefulTransaction)
    }

    /// A fixed label for `blyan_peer_penalties_total{reason}`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::InvalidBlock => "invalid_block",
            Self::InvalidTransaction => "invalid_transaction",
            Self::InvalidMessage => "invalid_message",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::Useless => "useless",
            Self::UsefulBlock => "useful_block",
            Self::UsefulTransaction => "useful_transaction",
            Self::InvalidSignature => "invalid_signature",
            Self::Equivocation => "equivocation",
        }
    }
}

/// Score bounds, decay and thresholds. Values follow Lighthouse's peer scoring
/// (`beacon_node/lighthouse_network/src/peer_manager/peerdb/score.rs`: half-life 600 s,
/// min -100, disconnect at -20, ban at -50), except the maximum (see `max`).
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreConfig {
    /// Default 10 min: time for a score to halve toward 0. One invalid block is mostly
    /// forgiven after an hour (2^-6); a burst of timeouts after a few minutes.
    pub half_life: Duration,
    /// Default -100: the lowest score.
    pub min: f64,
    /// Default +20 (Lighthouse: +100): a good record protects a peer from eviction, but
    /// should not be a credit that pays for attacks later; +20 absorbs one invalid block.
    pub max: f64,
    /// Default -20: at or below, the peer is disconnected and may not reconnect until
    /// its score decays above.
    pub disconnect_threshold: f64,
    /// Default -50: at or below, the peer is banned.
    pub ban_threshold: f64,
    /// Default 4096: peers whose scores are remembered (connected or not, so that a
    /// reconnection does not reset a score). Neutral entries are dropped; when full,
    /// non-negative scores closest to 0 go first, then negative ones closest to 0.
    pub max_tracked: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            half_life: Duration::from_secs(600),
            min: -100.0,
            max: 20.0,
            disconnect_threshold: -20.0,
            ban_threshold: -50.0,
            max_tracked: 4096,
        }
    }
}

impl ScoreConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let ordered = self.min <= self.ban_threshold
            && self.ban_threshold < self.disconnect_threshold
            && self.disconnect_threshold < 0.0
            && 0.0 < self.max
            && self.min.is_finite()
            && self.max.is_finite();
        if !ordered {
            return Err(ConfigError::ScoreThresholds);
        }
        if self.half_life.is_zero() {
            return Err(ConfigError::ZeroDuration { name: "half_life" });
        }
        if self.max_tracked == 0 {
            return Err(ConfigError::Zero {
                name: "max_tracked",
            });
        }
        Ok(())
    }
}

/// Where a score leaves a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Standing {
    /// Keep the peer.
    Good,
    /// At or below the disconnect threshold.
    Disconnect,
    /// At or below the ban threshold, or a fatal event.
    Ban,
}

#[derive(Clone, Copy, Debug)]
struct ScoreEntry {
    value: f64,
    updated: Duration,
}

/// The scores of a bounded set of peers; time is monotonic `Duration`s from the caller.
#[derive(Debug)]
pub struct PeerScores {
    config: ScoreConfig,
    table: HashMap<PeerId, ScoreEntry>,
}

impl PeerScores {
    /// An empty table.
    pub fn new(config: ScoreConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            table: HashMap::new(),
        })
    }

    /// The peer's score at `now`, 0 when unknown.
    pub fn score(&self, now: Duration, peer: &PeerId) -> f64 {
        self.table.get(peer).map_or(0.0, |e| self.decayed(e, now))
    }

    /// What a score means.
    pub fn standing(&self, score: f64) -> Standing {
        if score <= self.config.ban_threshold {
            Standing::Ban
        } else if score <= self.config.disconnect_threshold {
            Standing::Disconnect
        } else {
            Standing::Good
        }
    }

    /// Applies `event` at `now` and returns the peer's standing. A fatal event drops the
    /// score to the minimum.
    pub fn apply(&mut self, now: Duration, peer: PeerId, event: PeerEvent) -> Standing {
        let current = self.score(now, &peer);
        let value = match event.weight() {
            Some(w) => (current + w).clamp(self.config.min, self.config.max),
            None => self.config.min,
        };
        if !self.table.contains_key(&peer) && self.table.len() >= self.config.max_tracked {
            self.purge(now);
            if self.table.len() >= self.config.max_tracked {
                let half_life = self.config.half_life;
                evict_lowest(&mut self.table, batch(self.config.max_tracked), |_, e| {
                    let v = decay(e.value, now.saturating_sub(e.updated), half_life);
                    // Positive f64 bit patterns sort like the numbers they encode.
                    (v < 0.0, v.abs().to_bits())
                });
            }
        }
        self.table.insert(
            peer,
            ScoreEntry {
                value,
                updated: now,
            },
        );
        if event.is_fatal() {
            Standing::Ban
        } else {
            self.standing(value)
        }
    }

    /// Drops entries that have decayed to neutral.
    pub fn purge(&mut self, now: Duration) {
        let half_life = self.config.half_life;
        self.table.retain(|_, e| {
            decay(e.value, now.saturating_sub(e.updated), half_life).abs() >= NEUTRAL
        });
    }

    /// Forgets a peer's score (an operator's pardon).
    pub fn forget(&mut self, peer: &PeerId) {
        self.table.remove(peer);
    }

    /// How many peers are tracked.
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Whether no peer is tracked.
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The cap on tracked peers.
    pub fn capacity(&self) -> usize {
        self.config.max_tracked
    }

    /// The configuration in force.
    pub fn config(&self) -> &ScoreConfig {
        &self.config
    }

    fn decayed(&self, e: &ScoreEntry, now: Duration) -> f64 {
        decay(
            e.value,
            now.saturating_sub(e.updated),
            self.config.half_life,
        )
    }

    /// Bytes per tracked peer, key and entry, without map overhead.
    pub const fn entry_size() -> usize {
        size_of::<(PeerId, ScoreEntry)>()
    }
}

fn decay(value: f64, elapsed: Duration, half_life: Duration) -> f64 {
    value * (-(elapsed.as_secs_f64() / half_life.as_secs_f64())).exp2()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(i: u32) -> PeerId {
        let mut b = [0u8; 32];
        b[..4].copy_from_slice(&i.to_be_bytes());
        PeerId::from_bytes(b)
    }

    #[test]
    fn scores_decay_to_neutral() {
        let mut scores = PeerScores::new(ScoreConfig::default()).unwrap();
        let t = Duration::from_secs(1);
        assert_eq!(
            scores.apply(t, peer(1), PeerEvent::InvalidBlock),
            Standing::Disconnect
        );
        assert!((scores.score(t, &peer(1)) + 20.0).abs() < 1e-9);
        let one_half_life = t + Duration::from_secs(600);
        assert!((scores.score(one_half_life, &peer(1)) + 10.0).abs() < 1e-9);
        let much_later = t + Duration::from_secs(600 * 20);
        assert!(scores.score(much_later, &peer(1)).abs() < NEUTRAL);
        scores.purge(much_later);
        assert!(scores.is_empty());
    }

    #[test]
    fn thresholds_and_fatal_events() {
        let mut scores = PeerScores::new(ScoreConfig::default()).unwrap();
        let t = Duration::ZERO;
        assert_eq!(scores.apply(t, peer(1), PeerEvent::Timeout), Standing::Good);
        assert_eq!(
            scores.apply(t, peer(1), PeerEvent::InvalidBlock),
            Standing::Disconnect
        );
        assert_eq!(
            scores.apply(t, peer(1), PeerEvent::InvalidBlock),
            Standing::Disconnect
        );
        assert_eq!(
            scores.apply(t, peer(1), PeerEvent::InvalidBlock),
            Standing::Ban
        );
        assert_eq!(
            scores.apply(t, peer(2), PeerEvent::Equivocation),
            Standing::Ban
        );
        assert_eq!(scores.score(t, &peer(2)), -100.0);
    }

    #[test]
    fn scores_are_clamped() {
        let mut scores = PeerScores::new(ScoreConfig::default()).unwrap();
        for _ in 0..100 {
            scores.apply(Duration::ZERO, peer(1), PeerEvent::UsefulBlock);
            scores.apply(Duration::ZERO, peer(2), PeerEvent::InvalidMessage);
        }
        assert_eq!(scores.score(Duration::ZERO, &peer(1)), 20.0);
        assert_eq!(scores.score(Duration::ZERO, &peer(2)), -100.0);
    }

    #[test]
    fn table_is_bounded_and_keeps_bad_peers_longest() {
        let config = ScoreConfig {
            max_tracked: 64,
            ..ScoreConfig::default()
        };
        let mut scores = PeerScores::new(config).unwrap();
        scores.apply(Duration::ZERO, peer(0), PeerEvent::InvalidBlock);
        for i in 1..10_000 {
            scores.apply(Duration::ZERO, peer(i), PeerEvent::Useless);
            assert!(scores.len() <= 64);
        }
        assert!(scores.score(Duration::ZERO, &peer(0)) < -19.0);
    }

    #[test]
    fn bad_thresholds_are_refused() {
        let config = ScoreConfig {
            ban_threshold: -10.0,
            ..ScoreConfig::default()
        };
        assert_eq!(
            PeerScores::new(config).err(),
            Some(ConfigError::ScoreThresholds)
        );
    }
}
