//! `SecurityManager`: the parts composed behind the seed's faces.

use core::net::IpAddr;
use core::time::Duration;
use std::path::Path;

use blyan_crypto::PeerId;

use crate::bans::{BanConfig, BanList, BanReason, PeerBan};
use crate::connections::{Admission, Connection, ConnectionLimits, ConnectionTable, Direction};
use crate::error::{ConfigError, PersistError};
use crate::net_group::IpKey;
use crate::rate_limit::{
    AttemptLimiter, MessageKind, Quotas, RateLimitConfig, Shortfall, TokenBucket,
};
use crate::reject::{Reject, Resource, Scope};
use crate::replay::{ReplayConfig, ReplayGuard};
use crate::scores::{PeerEvent, PeerScores, ScoreConfig, Standing};
use crate::time::Now;

/// Every setting of the security layer; `Default` is the documented production default.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SecurityConfig {
    /// Token buckets and message costs.
    pub rate: RateLimitConfig,
    /// Connection caps and eviction.
    pub connections: ConnectionLimits,
    /// Replay protection of relayed messages.
    pub replay: ReplayConfig,
    /// Peer scores.
    pub scores: ScoreConfig,
    /// Bans.
    pub bans: BanConfig,
}

/// The origin's stamp on a relayed (gossip) message: signed by the origin, checked by
/// `blyan-p2p` before the message reaches [`SecurityManager::check_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Relayed {
    /// The node that created and signed the message.
    pub origin: PeerId,
    /// The origin's per-message counter (strictly increasing, see [`ReplayConfig`]).
    pub nonce: u64,
    /// The origin's wall-clock time when it sent the message, Unix milliseconds.
    pub timestamp_ms: u64,
}

/// What the security layer needs to know about a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MessageMeta {
    /// Its kind, which sets its cost.
    pub kind: MessageKind,
    /// Its size on the wire.
    pub bytes: usize,
    /// For relayed messages, the origin's stamp.
    pub relayed: Option<Relayed>,
}

impl MessageMeta {
    /// A direct message (authenticated by the connection itself).
    pub const fn direct(kind: MessageKind, bytes: usize) -> Self {
        Self {
            kind,
            bytes,
            relayed: None,
        }
    }

    /// A relayed message stamped by `origin`.
    pub const fn relayed(
        kind: MessageKind,
        bytes: usize,
        origin: PeerId,
        nonce: u64,
        timestamp_ms: u64,
    ) -> Self {
        Self {
            kind,
            bytes,
            relayed: Some(Relayed {
                origin,
                nonce,
                timestamp_ms,
            }),
        }
    }
}

/// A ban and the connections it closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanAction {
    /// The ban itself.
    pub ban: PeerBan,
    /// Peers removed from the connection table: the caller closes their connections.
    /// The banned peer (if it was connected) and, after an IP ban, every peer at that IP.
    pub disconnect: Vec<PeerId>,
}

/// What the caller should do after [`SecurityManager::report`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a verdict may name connections the caller must close"]
pub enum Verdict {
    /// Nothing.
    Keep,
    /// Close the peer's connection (already removed from the table). It may reconnect
    /// once its score has decayed above the disconnect threshold.
    Disconnect,
    /// The peer is banned; close the listed connections.
    Ban(BanAction),
}

/// The current size of every table, for metrics and for tests of the caps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TableSizes {
    /// Admitted connections.
    pub connections: usize,
    /// IPs with at least one connection.
    pub connected_ips: usize,
    /// Subnets with at least one connection.
    pub connected_subnets: usize,
    /// IPs with a connection-attempt bucket.
    pub attempt_ips: usize,
    /// Origins with a replay window.
    pub replay_senders: usize,
    /// Peers with a score.
    pub scores: usize,
    /// Peer ban records (active and remembered).
    pub banned_peers: usize,
    /// IP ban records (active and remembered).
    pub banned_ips: usize,
}

/// DoS protection for one node: admission of connections and messages, peer scores, bans.
///
/// A deterministic state machine: every method takes the time as a [`Now`] and nothing
/// here reads a clock, sleeps or does IO (except [`save_bans`](Self::save_bans) and
/// [`load_bans`](Self::load_bans)). Wrap it in a mutex to share it between tasks.
#[derive(Debug)]
pub struct SecurityManager {
    rate: RateLimitConfig,
    quotas: Quotas,
    attempts: AttemptLimiter,
    connections: ConnectionTable,
    replay: ReplayGuard,
    scores: PeerScores,
    bans: BanList,
    max_connections: usize,
}

impl SecurityManager {
    /// A manager with no peers and no bans; the configuration is checked.
    pub fn new(config: SecurityConfig) -> Result<Self, ConfigError> {
        let quotas = config.rate.quotas()?;
        let attempts_quota = config
            .rate
            .connection_attempts
            .to_quota("connection_attempts")?;
        if config.rate.max_tracked_ips == 0 {
            return Err(ConfigError::Zero {
                name: "max_tracked_ips",
            });
        }
        if config.replay.max_senders == 0 {
            return Err(ConfigError::Zero {
                name: "max_senders",
            });
        }
        config.connections.validate()?;
        let max_connections = config.connections.max_inbound + config.connections.max_outbound;
        Ok(Self {
            attempts: AttemptLimiter::new(attempts_quota, config.rate.max_tracked_ips),
            quotas,
            rate: config.rate,
            connections: ConnectionTable::new(config.connections),
            replay: ReplayGuard::new(config.replay),
            scores: PeerScores::new(config.scores)?,
            bans: BanList::new(config.bans)?,
            max_connections,
        })
    }

    /// Decides whether to admit a connection from `peer` at `ip`, and registers it when
    /// admitted. Inbound attempts are rate limited per IP, counted whatever the outcome.
    /// When inbound slots are full, a connected inbound peer may be evicted in its favour
    /// ([`Admission::AcceptedEvicting`]).
    pub fn check_connection(
        &mut self,
        now: Now,
        peer: PeerId,
        ip: IpAddr,
        direction: Direction,
    ) -> Result<Admission, Reject> {
        let t = now.monotonic();
        let key = IpKey::of(ip);
        if self.bans.is_ip_banned(t, key) {
            return Err(Reject::IpBanned);
        }
        if self.bans.is_peer_banned(t, &peer) {
            return Err(Reject::Banned);
        }
        if direction == Direction::Inbound && !self.attempts.try_attempt(t, key) {
            return Err(Reject::TooManyAttempts);
        }
        if self.scores.standing(self.scores.score(t, &peer)) != Standing::Good {
            return Err(Reject::LowScore);
        }
        let scores = &self.scores;
        self.connections
            .admit(t, peer, key, direction, &self.quotas, |p| {
                scores.score(t, p)
            })
    }

    /// Forgets the connection of `peer` (it closed); returns its direction, `None` when
    /// the table had already dropped it (eviction, disconnect, ban).
    pub fn connection_closed(&mut self, peer: &PeerId) -> Option<Direction> {
        self.connections.remove(peer).map(|c| c.direction)
    }

    /// Decides whether to process a message from the connected `peer` at `ip`: its
    /// buckets (per peer and per IP, by cost and by bytes), then, for relayed messages,
    /// the origin's freshness and nonce. Tokens spent by a refused message stay spent.
    /// Scores are not touched: the caller reports what a refusal means
    /// (e.g. [`PeerEvent::RateLimited`]), since a relayed duplicate can be innocent.
    pub fn check_message(
        &mut self,
        now: Now,
        peer: &PeerId,
        ip: IpAddr,
        meta: &MessageMeta,
    ) -> Result<(), Reject> {
        let t = now.monotonic();
        let key = IpKey::of(ip);
        // Banned peers and IPs are never in the connection table (a ban removes them),
        // so the fast path needs no ban lookup.
        let (Some(conn), Some(usage)) = (
            self.connections.peers.get(peer).filter(|c| c.ip == key),
            self.connections.ips.get(&key),
        ) else {
            return Err(self.unknown_sender(t, peer, key));
        };
        let cost = self.rate.costs.of(meta.kind);
        let kib = u32::try_from(meta.bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX);
        take(&conn.messages, t, cost, Scope::Peer, Resource::Messages)?;
        take(&conn.bytes, t, kib, Scope::Peer, Resource::Bytes)?;
        take(&usage.messages, t, cost, Scope::Ip, Resource::Messages)?;
        take(&usage.bytes, t, kib, Scope::Ip, Resource::Bytes)?;
        if let Some(r) = meta.relayed {
            let new_origin = || take(&conn.new_origins, t, 1, Scope::Peer, Resource::NewOrigins);
            self.replay
                .check_admitting(now, r.origin, r.nonce, r.timestamp_ms, new_origin)?;
        }
        Ok(())
    }

    fn unknown_sender(&self, t: Duration, peer: &PeerId, key: IpKey) -> Reject {
        if self.bans.is_peer_banned(t, peer) {
            Reject::Banned
        } else if self.bans.is_ip_banned(t, key) {
            Reject::IpBanned
        } else {
            Reject::UnknownConnection
        }
    }

    /// Records what `peer` did and returns what to do about it. Crossing the disconnect
    /// threshold removes the connection; crossing the ban threshold, or a fatal event,
    /// bans the peer for the base duration escalated by its record.
    pub fn report(&mut self, now: Now, peer: &PeerId, event: PeerEvent) -> Verdict {
        let t = now.monotonic();
        if event.is_useful()
            && let Some(conn) = self.connections.peers.get_mut(peer)
        {
            conn.last_useful = Some(t);
        }
        match self.scores.apply(t, *peer, event) {
            Standing::Good => Verdict::Keep,
            Standing::Disconnect => {
                self.connections.remove(peer);
                Verdict::Disconnect
            }
            Standing::Ban => {
                let reason = match event {
                    PeerEvent::InvalidSignature => BanReason::InvalidSignature,
                    PeerEvent::Equivocation => BanReason::Equivocation,
                    _ => BanReason::LowScore,
                };
                let base = self.bans.config().base_duration;
                Verdict::Ban(self.ban(t, *peer, reason, base))
            }
        }
    }

    /// Bans `peer`: `duration` for a first offence, doubled for each earlier one within
    /// the offence memory (capped at `max_duration`, or `duration` if longer).
    pub fn ban_peer(
        &mut self,
        now: Now,
        peer: PeerId,
        reason: BanReason,
        duration: Duration,
    ) -> BanAction {
        self.ban(now.monotonic(), peer, reason, duration)
    }

    fn ban(&mut self, t: Duration, peer: PeerId, reason: BanReason, base: Duration) -> BanAction {
        let ip = self.connections.peers.get(&peer).map(|c| c.ip);
        let mut disconnect = Vec::new();
        if self.connections.remove(&peer).is_some() {
            disconnect.push(peer);
        }
        let ban = self.bans.ban_peer(t, peer, ip, reason, base);
        if let Some(ip) = ban.ip_banned {
            disconnect.extend(self.disconnect_ip(ip));
        }
        BanAction { ban, disconnect }
    }

    /// Bans an IP (IPv4 address or the IPv6 /64 of `ip`) and returns the peers whose
    /// connections the caller must close.
    pub fn ban_ip(&mut self, now: Now, ip: IpAddr, duration: Duration) -> Vec<PeerId> {
        let key = IpKey::of(ip);
        self.bans
            .ban_ip(now.monotonic(), key, BanReason::Manual, duration);
        self.disconnect_ip(key)
    }

    fn disconnect_ip(&mut self, ip: IpKey) -> Vec<PeerId> {
        let peers = self.connections.peers_at(ip);
        for p in &peers {
            self.connections.remove(p);
        }
        peers
    }

    /// Lifts a peer's ban, forgets its offences and its score (an operator's pardon).
    pub fn unban_peer(&mut self, peer: &PeerId) -> bool {
        self.scores.forget(peer);
        self.bans.unban_peer(peer)
    }

    /// Lifts an IP's ban and forgets its offences.
    pub fn unban_ip(&mut self, ip: IpAddr) -> bool {
        self.bans.unban_ip(IpKey::of(ip))
    }

    /// Whether `peer` is banned.
    pub fn is_banned(&self, now: Now, peer: &PeerId) -> bool {
        self.bans.is_peer_banned(now.monotonic(), peer)
    }

    /// Whether `ip` (or its IPv6 /64) is banned.
    pub fn is_ip_banned(&self, now: Now, ip: IpAddr) -> bool {
        self.bans.is_ip_banned(now.monotonic(), IpKey::of(ip))
    }

    /// The peer's score (0 when unknown).
    pub fn score(&self, now: Now, peer: &PeerId) -> f64 {
        self.scores.score(now.monotonic(), peer)
    }

    /// The connection of `peer`, if admitted.
    pub fn connection(&self, peer: &PeerId) -> Option<(IpKey, Direction)> {
        self.connections
            .peers
            .get(peer)
            .map(|c| (c.ip, c.direction))
    }

    /// How many connections are admitted in `direction`.
    pub fn connected(&self, direction: Direction) -> usize {
        self.connections.count(direction)
    }

    /// The ban list.
    pub fn bans(&self) -> &BanList {
        &self.bans
    }

    /// Drops what time has made useless: refilled attempt buckets, stale replay windows,
    /// neutral scores, ban records past their memory. Call it every minute or so; the
    /// caps hold without it, it only returns memory sooner.
    pub fn maintain(&mut self, now: Now) {
        let t = now.monotonic();
        self.attempts.purge(t);
        self.replay.purge(now);
        self.scores.purge(t);
        self.bans.purge(t);
    }

    /// Writes the ban list to `path` atomically.
    pub fn save_bans(&self, path: &Path, now: Now) -> Result<(), PersistError> {
        self.bans.save(path, now)
    }

    /// Adds the bans saved at `path` (a missing file adds none). Connected peers that
    /// turn out to be banned are removed and returned: the caller closes them.
    pub fn load_bans(&mut self, path: &Path, now: Now) -> Result<Vec<PeerId>, PersistError> {
        self.bans.load(path, now)?;
        let t = now.monotonic();
        let banned: Vec<PeerId> = self
            .connections
            .peers
            .iter()
            .filter(|(p, c)| self.bans.is_peer_banned(t, p) || self.bans.is_ip_banned(t, c.ip))
            .map(|(p, _)| *p)
            .collect();
        for p in &banned {
            self.connections.remove(p);
        }
        Ok(banned)
    }

    /// The size of every table.
    pub fn table_sizes(&self) -> TableSizes {
        TableSizes {
            connections: self.connections.peers.len(),
            connected_ips: self.connections.ips.len(),
            connected_subnets: self.connections.subnet_count(),
            attempt_ips: self.attempts.len(),
            replay_senders: self.replay.len(),
            scores: self.scores.len(),
            banned_peers: self.bans.peer_records(),
            banned_ips: self.bans.ip_records(),
        }
    }

    /// The cap of every table (what [`table_sizes`](Self::table_sizes) never exceeds).
    pub fn table_caps(&self) -> TableSizes {
        let bans = self.bans.config();
        TableSizes {
            connections: self.max_connections,
            connected_ips: self.max_connections,
            connected_subnets: self.max_connections,
            attempt_ips: self.attempts.capacity(),
            replay_senders: self.replay.capacity(),
            scores: self.scores.capacity(),
            banned_peers: bans.max_banned_peers,
            banned_ips: bans.max_banned_ips,
        }
    }

    /// Bytes of state kept per admitted connection, excluding map overhead: the
    /// connection (three buckets) plus, at worst, its own per-IP entry.
    pub const fn connection_entry_size() -> usize {
        size_of::<(PeerId, Connection)>()
            + size_of::<(IpKey, crate::connections::IpUsage)>()
            + size_of::<(crate::net_group::Subnet, usize)>()
    }
}

fn take(
    bucket: &TokenBucket,
    t: Duration,
    n: u32,
    scope: Scope,
    resource: Resource,
) -> Result<(), Reject> {
    bucket.take(t, n).map_err(|s| match s {
        Shortfall::Empty => Reject::RateLimited { scope, resource },
        Shortfall::TooLarge => Reject::MessageTooLarge,
    })
}
