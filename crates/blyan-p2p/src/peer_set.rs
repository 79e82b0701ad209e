//! The peer manager's deciding core: which candidates to dial, which connections to keep.
//!
//! Candidates come from the bootstrap list and the DHT. The set dials until
//! `target_outbound` outbound connections are up or being set up; every connection, in or
//! out, is admitted by the [`SecurityManager`] (caps per direction, IP and subnet, bans,
//! scores, inbound eviction) before it gets any state here. A connection first exchanges
//! [`Status`]: a mismatch disconnects with its [`StatusMismatch`]. Ready peers are pinged
//! every `keepalive_interval` and dropped when a ping goes unanswered. Reports that push a
//! score below the disconnect or ban threshold disconnect. A candidate that fails or
//! drops is dialled again after an exponential backoff with seeded jitter.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use blyan_crypto::PeerId;
use blyan_security::{Admission, Direction, Now, PeerEvent, Reject, SecurityManager, Verdict};

use crate::message::Status;
use crate::rng::SplitMix64;
use crate::status::{StatusMismatch, check_status};

/// Settings of the [`PeerSet`]. Connection caps (inbound, outbound, per IP) are the
/// security manager's; these are the dialling and liveness policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSetConfig {
    /// Default 8: outbound connections to keep (Bitcoin Core keeps 8 full-relay ones).
    pub target_outbound: usize,
    /// Default 4: dials in flight at once.
    pub max_pending_dials: usize,
    /// Default 1,024: candidates remembered; when full, a discovered candidate with the
    /// most failures makes room (bootstrap nodes are never evicted).
    pub max_candidates: usize,
    /// Default 10 s: a connection that has not completed the status exchange by then is
    /// closed.
    pub handshake_timeout: Duration,
    /// Default 30 s: ping interval of a quiet ready peer.
    pub keepalive_interval: Duration,
    /// Default 20 s: a ping unanswered this long closes the connection.
    pub keepalive_timeout: Duration,
    /// Default 60 s: a ready peer is sent our status again this often; its answer
    /// refreshes its best height for sync, so a node that fell behind notices by itself.
    pub status_interval: Duration,
    /// Default 1 s: first reconnect delay; it doubles with each consecutive failure.
    pub backoff_base: Duration,
    /// Default 10 min: longest reconnect delay.
    pub backoff_max: Duration,
    /// Default 20: the delay is spread by ± this percentage, so peers that lost each
    /// other at once do not all redial at once.
    pub jitter_percent: u32,
    /// Seed of the jitter.
    pub seed: u64,
}

impl Default for PeerSetConfig {
    fn default() -> Self {
        Self {
            target_outbound: 8,
            max_pending_dials: 4,
            max_candidates: 1_024,
            handshake_timeout: Duration::from_secs(10),
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            status_interval: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(600),
            jitter_percent: 20,
            seed: 0,
        }
    }
}

/// Where a candidate came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CandidateSource {
    /// The configured bootstrap list: never evicted, always retried.
    Bootstrap,
    /// Discovery (DHT lookups, peer exchange).
    Discovered,
}

/// Why the set closes a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DisconnectReason {
    /// The status handshake showed another protocol, chain or genesis.
    #[error("status mismatch: {0}")]
    Status(#[from] StatusMismatch),
    /// No status within the handshake timeout.
    #[error("no status within the handshake timeout")]
    HandshakeTimeout,
    /// A keep-alive ping went unanswered.
    #[error("keep-alive ping unanswered")]
    KeepAliveTimeout,
    /// The security manager refused the connection.
    #[error("refused: {0}")]
    Rejected(Reject),
    /// Evicted to make room for a better inbound peer.
    #[error("evicted for another inbound peer")]
    Evicted,
    /// The peer's score fell below the disconnect threshold.
    #[error("score below the disconnect threshold")]
    LowScore,
    /// The peer (or its IP) was banned.
    #[error("banned")]
    Banned,
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerAction {
    /// Open an outbound connection; report [`PeerSet::on_connected`] or
    /// [`PeerSet::on_dial_failed`].
    Dial {
        /// The peer (the connection must authenticate as this id).
        peer: PeerId,
        /// Its address.
        addr: SocketAddr,
    },
    /// Send our [`Status`] (to a newly admitted peer, or to refresh a ready one's view;
    /// its answer goes to [`PeerSet::on_status`]).
    SendStatus {
        /// The peer.
        peer: PeerId,
    },
    /// Send a keep-alive ping.
    Ping {
        /// The peer.
        peer: PeerId,
        /// To be echoed in the pong.
        nonce: u64,
    },
    /// Close the connection.
    Disconnect {
        /// The peer.
        peer: PeerId,
        /// Why (for the log and the close frame).
        reason: DisconnectReason,
    },
    /// The peer completed the handshake (or refreshed its status): give it to sync and
    /// gossip.
    Ready {
        /// The peer.
        peer: PeerId,
        /// Its status.
        status: Status,
    },
    /// A ready peer is gone: remove it from sync and gossip.
    Gone {
        /// The peer.
        peer: PeerId,
    },
}

#[derive(Clone, Debug)]
struct Candidate {
    addr: SocketAddr,
    source: CandidateSource,
    failures: u32,
    next_attempt: Duration,
    dialing: bool,
}

#[derive(Clone, Debug)]
enum Phase {
    Handshaking {
        deadline: Duration,
    },
    Ready {
        since: Duration,
        last_ping: Duration,
        last_status: Duration,
        ping: Option<(u64, Duration)>,
    },
}

#[derive(Clone, Debug)]
struct Connection {
    direction: Direction,
    phase: Phase,
}

/// The peer manager core. Per-peer state is bounded: connections by the security
/// manager's caps (state exists only for admitted connections), candidates by
/// `max_candidates`.
#[derive(Debug)]
pub struct PeerSet {
    config: PeerSetConfig,
    candidates: HashMap<PeerId, Candidate>,
    connections: HashMap<PeerId, Connection>,
    rng: SplitMix64,
    next_ping: u64,
}

impl PeerSet {
    /// An empty set.
    pub fn new(config: PeerSetConfig) -> Self {
        let rng = SplitMix64::new(config.seed);
        Self {
            config,
            candidates: HashMap::new(),
            connections: HashMap::new(),
            rng,
            next_ping: 0,
        }
    }

    /// Adds (or updates the address of) a candidate to dial.
    pub fn add_candidate(&mut self, peer: PeerId, addr: SocketAddr, source: CandidateSource) {
        if let Some(known) = self.candidates.get_mut(&peer) {
            known.addr = addr;
            if source == CandidateSource::Bootstrap {
                known.source = source;
            }
            return;
        }
        if self.candidates.len() >= self.config.max_candidates {
            let evict = self
                .candidates
                .iter()
                .filter(|(_, c)| c.source == CandidateSource::Discovered && !c.dialing)
                .max_by_key(|(id, c)| (c.failures, **id))
                .map(|(id, _)| *id);
            match evict {
                Some(id) => {
                    self.candidates.remove(&id);
                }
                None => return,
            }
        }
        self.candidates.insert(
            peer,
            Candidate {
                addr,
                source,
                failures: 0,
                next_attempt: Duration::ZERO,
                dialing: false,
            },
        );
    }

    /// Candidates remembered.
    pub fn candidates(&self) -> usize {
        self.candidates.len()
    }

    /// Connections (handshaking or ready) in `direction`.
    pub fn connected(&self, direction: Direction) -> usize {
        self.connections
            .values()
            .filter(|c| c.direction == direction)
            .count()
    }

    /// Peers that completed the handshake.
    pub fn ready_peers(&self) -> impl Iterator<Item = &PeerId> {
        self.connections
            .iter()
            .filter(|(_, c)| matches!(c.phase, Phase::Ready { .. }))
            .map(|(id, _)| id)
    }

    /// When `peer` may be dialled next (`None` if not a candidate).
    pub fn next_attempt(&self, peer: &PeerId) -> Option<Duration> {
        self.candidates.get(peer).map(|c| c.next_attempt)
    }

    /// Timeouts, keep-alives and dials due at `now`.
    pub fn poll(&mut self, now: Now, security: &mut SecurityManager) -> Vec<PeerAction> {
        let t = now.monotonic();
        let mut actions = Vec::new();
        let mut ids: Vec<PeerId> = self.connections.keys().copied().collect();
        ids.sort();
        for peer in ids {
            let Some(conn) = self.connections.get_mut(&peer) else {
                continue;
            };
            let close = match &mut conn.phase {
                Phase::Handshaking { deadline } if *deadline <= t => {
                    Some(DisconnectReason::HandshakeTimeout)
                }
                Phase::Ready {
                    ping: Some((_, deadline)),
                    ..
                } if *deadline <= t => Some(DisconnectReason::KeepAliveTimeout),
                Phase::Ready {
                    last_ping, ping, ..
                } if ping.is_none()
                    && last_ping.saturating_add(self.config.keepalive_interval) <= t =>
                {
                    self.next_ping = self.next_ping.wrapping_add(1);
                    let nonce = self.next_ping;
                    *last_ping = t;
                    *ping = Some((nonce, t.saturating_add(self.config.keepalive_timeout)));
                    actions.push(PeerAction::Ping { peer, nonce });
                    None
                }
                _ => None,
            };
            if let Some(conn) = self.connections.get_mut(&peer)
                && let Phase::Ready { last_status, .. } = &mut conn.phase
                && close.is_none()
                && last_status.saturating_add(self.config.status_interval) <= t
            {
                *last_status = t;
                actions.push(PeerAction::SendStatus { peer });
            }
            if let Some(reason) = close {
                self.close(now, security, peer, reason, &mut actions);
            }
        }
        self.dial(now, security, &mut actions);
        actions
    }

    fn dial(&mut self, now: Now, security: &SecurityManager, actions: &mut Vec<PeerAction>) {
        let t = now.monotonic();
        let pending = self.candidates.values().filter(|c| c.dialing).count();
        let outbound = self.connected(Direction::Outbound) + pending;
        let want = self
            .config
            .target_outbound
            .saturating_sub(outbound)
            .min(self.config.max_pending_dials.saturating_sub(pending));
        if want == 0 {
            return;
        }
        let mut due: Vec<(u8, u32, PeerId)> = self
            .candidates
            .iter()
            .filter(|(id, c)| {
                !c.dialing
                    && c.next_attempt <= t
                    && !self.connections.contains_key(id)
                    && !security.is_banned(now, id)
            })
            .map(|(id, c)| {
                (
                    u8::from(c.source == CandidateSource::Discovered),
                    c.failures,
                    *id,
                )
            })
            .collect();
        due.sort();
        for (_, _, peer) in due.into_iter().take(want) {
            if let Some(c) = self.candidates.get_mut(&peer) {
                c.dialing = true;
                actions.push(PeerAction::Dial { peer, addr: c.addr });
            }
        }
    }

    /// A dial failed (unreachable, wrong identity, refused): back off.
    pub fn on_dial_failed(&mut self, now: Now, peer: &PeerId) {
        self.back_off(now, peer);
    }

    /// A connection is up (dialled by us or accepted): admission through `security`.
    pub fn on_connected(
        &mut self,
        now: Now,
        security: &mut SecurityManager,
        peer: PeerId,
        ip: IpAddr,
        direction: Direction,
    ) -> Vec<PeerAction> {
        let mut actions = Vec::new();
        if let Some(c) = self.candidates.get_mut(&peer)
            && direction == Direction::Outbound
        {
            c.dialing = false;
        }
        let admission = if self.connections.contains_key(&peer) {
            Err(Reject::AlreadyConnected)
        } else {
            security.check_connection(now, peer, ip, direction)
        };
        match admission {
            Err(reject) => {
                if direction == Direction::Outbound {
                    self.back_off(now, &peer);
                }
                actions.push(PeerAction::Disconnect {
                    peer,
                    reason: DisconnectReason::Rejected(reject),
                });
            }
            Ok(admitted) => {
                if let Admission::AcceptedEvicting(evicted) = admitted {
                    self.forget(now, evicted, DisconnectReason::Evicted, &mut actions);
                }
                self.connections.insert(
                    peer,
                    Connection {
                        direction,
                        phase: Phase::Handshaking {
                            deadline: now
                                .monotonic()
                                .saturating_add(self.config.handshake_timeout),
                        },
                    },
                );
                actions.push(PeerAction::SendStatus { peer });
            }
        }
        actions
    }

    /// The peer's status arrived: checked against ours.
    pub fn on_status(
        &mut self,
        now: Now,
        security: &mut SecurityManager,
        peer: PeerId,
        ours: &Status,
        theirs: Status,
    ) -> Vec<PeerAction> {
        let mut actions = Vec::new();
        let Some(conn) = self.connections.get_mut(&peer) else {
            return actions;
        };
        if let Err(mismatch) = check_status(ours, &theirs) {
            // Another chain or version will not change by retrying: forget the candidate.
            self.candidates.remove(&peer);
            self.close(now, security, peer, mismatch.into(), &mut actions);
            return actions;
        }
        let t = now.monotonic();
        if let Phase::Handshaking { .. } = conn.phase {
            conn.phase = Phase::Ready {
                since: t,
                last_ping: t,
                last_status: t,
                ping: None,
            };
        } else if let Phase::Ready { last_status, .. } = &mut conn.phase {
            *last_status = t;
        }
        actions.push(PeerAction::Ready {
            peer,
            status: theirs,
        });
        actions
    }

    /// A pong: clears the outstanding ping if the nonce matches.
    pub fn on_pong(&mut self, peer: &PeerId, nonce: u64) {
        if let Some(Connection {
            phase: Phase::Ready { ping, .. },
            ..
        }) = self.connections.get_mut(peer)
            && ping.is_some_and(|(n, _)| n == nonce)
        {
            *ping = None;
        }
    }

    /// The connection closed (either side, or the transport failed).
    pub fn on_disconnected(
        &mut self,
        now: Now,
        security: &mut SecurityManager,
        peer: PeerId,
    ) -> Vec<PeerAction> {
        let mut actions = Vec::new();
        if let Some(conn) = self.connections.remove(&peer) {
            let _ = security.connection_closed(&peer);
            self.after_close(now, peer, &conn, &mut actions);
        }
        actions
    }

    /// Reports what `peer` did to `security` and closes what the verdict says to close.
    pub fn report(
        &mut self,
        now: Now,
        security: &mut SecurityManager,
        peer: PeerId,
        event: PeerEvent,
    ) -> Vec<PeerAction> {
        let mut actions = Vec::new();
        match security.report(now, &peer, event) {
            Verdict::Keep => {}
            Verdict::Disconnect => {
                self.forget(now, peer, DisconnectReason::LowScore, &mut actions);
            }
            Verdict::Ban(ban) => {
                self.candidates.remove(&peer);
                let mut closed = ban.disconnect;
                if !closed.contains(&peer) {
                    closed.push(peer);
                }
                for id in closed {
                    self.forget(now, id, DisconnectReason::Banned, &mut actions);
                }
            }
        }
        actions
    }

    /// Closes a connection the security manager still has.
    fn close(
        &mut self,
        now: Now,
        security: &mut SecurityManager,
        peer: PeerId,
        reason: DisconnectReason,
        actions: &mut Vec<PeerAction>,
    ) {
        let _ = security.connection_closed(&peer);
        self.forget(now, peer, reason, actions);
    }

    /// Closes a connection the security manager has already dropped.
    fn forget(
        &mut self,
        now: Now,
        peer: PeerId,
        reason: DisconnectReason,
        actions: &mut Vec<PeerAction>,
    ) {
        if let Some(conn) = self.connections.remove(&peer) {
            actions.push(PeerAction::Disconnect { peer, reason });
            self.after_close(now, peer, &conn, actions);
        }
    }

    fn after_close(
        &mut self,
        now: Now,
        peer: PeerId,
        conn: &Connection,
        actions: &mut Vec<PeerAction>,
    ) {
        if let Phase::Ready { since, .. } = conn.phase {
            actions.push(PeerAction::Gone { peer });
            // A connection that lasted longer than the longest backoff was a good one: the
            // failure count starts over.
            if now.monotonic().saturating_sub(since) >= self.config.backoff_max
                && let Some(c) = self.candidates.get_mut(&peer)
            {
                c.failures = 0;
            }
        }
        if conn.direction == Direction::Outbound {
            self.back_off(now, &peer);
        }
    }

    fn back_off(&mut self, now: Now, peer: &PeerId) {
        let Some(c) = self.candidates.get_mut(peer) else {
            return;
        };
        c.dialing = false;
        c.failures = c.failures.saturating_add(1);
        let exp = c.failures.saturating_sub(1).min(30);
        let base = self
            .config
            .backoff_base
            .saturating_mul(1u32 << exp)
            .min(self.config.backoff_max);
        let spread = f64::from(self.config.jitter_percent.min(100)) / 100.0;
        let factor = 1.0 - spread + 2.0 * spread * self.rng.unit();
        let delay = base.mul_f64(factor).min(self.config.backoff_max);
        c.next_attempt = now.monotonic().saturating_add(delay);
    }
}
