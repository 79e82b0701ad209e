//! Connection admission: caps per direction, per IP and per subnet, and the choice of
//! whom to evict when inbound slots are full.

use core::time::Duration;
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use blyan_crypto::PeerId;

use crate::error::ConfigError;
use crate::net_group::{IpKey, Subnet};
use crate::rate_limit::{Quotas, TokenBucket};
use crate::reject::Reject;

/// Who opened the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// The peer dialled us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

impl Direction {
    /// A fixed label for `blyan_p2p_peers_total{direction}`.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// A connection that was let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use = "an eviction names a connection the caller must close"]
pub enum Admission {
    /// Admitted into a free slot.
    Accepted,
    /// Admitted in place of this inbound peer, which has already been removed from the
    /// table: the caller closes its connection.
    AcceptedEvicting(PeerId),
}

/// How many inbound peers each rule shields from eviction, in the order applied. Modelled
/// on Bitcoin Core's `AttemptToEvictConnection` (`src/node/eviction.cpp`), which protects
/// 4 by netgroup, 8 by ping, 4 by recent transactions, 4 by recent blocks, then half the
/// rest by uptime: an attacker must beat honest peers on every axis at once to take
/// their slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EvictionProtection {
    /// Default 4: peers from distinct-looking netgroups, ordered by a keyed hash of the
    /// netgroup (an attacker cannot pick netgroups that sort first).
    pub by_netgroup: usize,
    /// Default 8: the highest scores (our stand-in for Bitcoin's ping: proven usefulness).
    pub by_score: usize,
    /// Default 4: the most recent to deliver a useful block or transaction.
    pub by_recent_useful: usize,
    /// Default true: then half of the rest, the longest connected.
    pub half_by_uptime: bool,
}

impl Default for EvictionProtection {
    fn default() -> Self {
        Self {
            by_netgroup: 4,
            by_score: 8,
            by_recent_useful: 4,
            half_by_uptime: true,
        }
    }
}

/// Connection caps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Default 40 inbound peers. With `max_outbound` this makes 50 peers, the node's
    /// `network.max_peers` default (Bitcoin Core: 125 in total, ~11 outbound).
    pub max_inbound: usize,
    /// Default 10 outbound peers: the connections we chose, which an attacker does not
    /// control, are what resists eclipse attacks (Bitcoin Core keeps 8 + 2 block-relay).
    pub max_outbound: usize,
    /// Default 3 connections per IPv4 address or IPv6 /64 (both directions): a few nodes
    /// behind one NAT, not a farm on one host.
    pub max_per_ip: usize,
    /// Default 8 per IPv4 /24 or IPv6 /48: a cloud subnet hosts unrelated operators, but
    /// one subnet never holds more than a fifth of our 40 inbound slots.
    pub max_per_subnet: usize,
    /// Which inbound peers eviction protects.
    pub protection: EvictionProtection,
    /// Key of the netgroup hash used by eviction protection. Set it from OS randomness
    /// at start (the node does); fixed values make tests reproducible.
    pub eviction_key: u64,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_inbound: 40,
            max_outbound: 10,
            max_per_ip: 3,
            max_per_subnet: 8,
            protection: EvictionProtection::default(),
            eviction_key: 0,
        }
    }
}

impl ConnectionLimits {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("max_per_ip", self.max_per_ip),
            ("max_per_subnet", self.max_per_subnet),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero { name });
            }
        }
        if self.max_inbound + self.max_outbound == 0 {
            return Err(ConfigError::Zero { name: "max_peers" });
        }
        Ok(())
    }
}

/// One admitted connection and the buckets that limit it.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) ip: IpKey,
    pub(crate) direction: Direction,
    pub(crate) connected_at: Duration,
    pub(crate) last_useful: Option<Duration>,
    pub(crate) messages: TokenBucket,
    pub(crate) bytes: TokenBucket,
    pub(crate) new_origins: TokenBucket,
}

/// The peers behind one IP, and their shared buckets.
#[derive(Debug)]
pub(crate) struct IpUsage {
    pub(crate) connections: usize,
    pub(crate) messages: TokenBucket,
    pub(crate) bytes: TokenBucket,
}

/// Admitted connections. Sizes are bounded by the caps: `peers` and `ips` hold at most
/// `max_inbound + max_outbound` entries, `subnets` no more.
#[derive(Debug)]
pub(crate) struct ConnectionTable {
    limits: ConnectionLimits,
    pub(crate) peers: HashMap<PeerId, Connection>,
    pub(crate) ips: HashMap<IpKey, IpUsage>,
    subnets: HashMap<Subnet, usize>,
    inbound: usize,
    outbound: usize,
}

struct Candidate {
    peer: PeerId,
    subnet: Subnet,
    connected_at: Duration,
    last_useful: Option<Duration>,
    score: f64,
    keyed_netgroup: u64,
}

impl ConnectionTable {
    pub(crate) fn new(limits: ConnectionLimits) -> Self {
        Self {
            limits,
            peers: HashMap::new(),
            ips: HashMap::new(),
            subnets: HashMap::new(),
            inbound: 0,
            outbound: 0,
        }
    }

    pub(crate) fn count(&self, direction: Direction) -> usize {
        match direction {
            Direction::Inbound => self.inbound,
            Direction::Outbound => self.outbound,
        }
    }

    pub(crate) fn subnet_count(&self) -> usize {
        self.subnets.len()
    }

    /// Admits `peer` from `ip` or says why not; may evict an inbound peer to make room.
    pub(crate) fn admit(
        &mut self,
        now: Duration,
        peer: PeerId,
        ip: IpKey,
        direction: Direction,
        quotas: &Quotas,
        score_of: impl Fn(&PeerId) -> f64,
    ) -> Result<Admission, Reject> {
        if self.peers.contains_key(&peer) {
            return Err(Reject::AlreadyConnected);
        }
        if self.ips.get(&ip).map_or(0, |u| u.connections) >= self.limits.max_per_ip {
            return Err(Reject::TooManyPerIp);
        }
        let subnet = ip.subnet();
        if self.subnets.get(&subnet).copied().unwrap_or(0) >= self.limits.max_per_subnet {
            return Err(Reject::TooManyPerSubnet);
        }
        let mut admission = Admission::Accepted;
        match direction {
            Direction::Outbound if self.outbound >= self.limits.max_outbound => {
                return Err(Reject::OutboundFull);
            }
            Direction::Inbound if self.inbound >= self.limits.max_inbound => {
                // A newcomer with a bad record does not push out anyone.
                if score_of(&peer) < 0.0 {
                    return Err(Reject::InboundFull);
                }
                let victim = self.select_victim(&score_of).ok_or(Reject::InboundFull)?;
                self.remove(&victim);
                admission = Admission::AcceptedEvicting(victim);
            }
            _ => {}
        }
        self.insert(now, peer, ip, direction, quotas);
        Ok(admission)
    }

    fn insert(
        &mut self,
        now: Duration,
        peer: PeerId,
        ip: IpKey,
        direction: Direction,
        quotas: &Quotas,
    ) {
        let usage = self.ips.entry(ip).or_insert_with(|| IpUsage {
            connections: 0,
            messages: TokenBucket::new(quotas.ip_messages, now),
            bytes: TokenBucket::new(quotas.ip_bytes, now),
        });
        usage.connections += 1;
        *self.subnets.entry(ip.subnet()).or_insert(0) += 1;
        match direction {
            Direction::Inbound => self.inbound += 1,
            Direction::Outbound => self.outbound += 1,
        }
        self.peers.insert(
            peer,
            Connection {
                ip,
                direction,
                connected_at: now,
                last_useful: None,
                messages: TokenBucket::new(quotas.peer_messages, now),
                bytes: TokenBucket::new(quotas.peer_bytes, now),
                new_origins: TokenBucket::new(quotas.peer_new_origins, now),
            },
        );
    }

    /// Removes a connection and returns it, keeping every count consistent.
    pub(crate) fn remove(&mut self, peer: &PeerId) -> Option<Connection> {
        let conn = self.peers.remove(peer)?;
        if let Some(usage) = self.ips.get_mut(&conn.ip) {
            usage.connections = usage.connections.saturating_sub(1);
            if usage.connections == 0 {
                self.ips.remove(&conn.ip);
            }
        }
        let subnet = conn.ip.subnet();
        if let Some(n) = self.subnets.get_mut(&subnet) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.subnets.remove(&subnet);
            }
        }
        match conn.direction {
            Direction::Inbound => self.inbound = self.inbound.saturating_sub(1),
            Direction::Outbound => self.outbound = self.outbound.saturating_sub(1),
        }
        Some(conn)
    }

    /// The peers connected from `ip`.
    pub(crate) fn peers_at(&self, ip: IpKey) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(_, c)| c.ip == ip)
            .map(|(p, _)| *p)
            .collect()
    }

    /// Bitcoin Core's eviction, adapted: shield the peers that are hard for an attacker
    /// to imitate, then take the youngest peer of the most crowded netgroup.
    fn select_victim(&self, score_of: &impl Fn(&PeerId) -> f64) -> Option<PeerId> {
        let key = self.limits.eviction_key;
        let mut candidates: Vec<Candidate> = self
            .peers
            .iter()
            .filter(|(_, c)| c.direction == Direction::Inbound)
            .map(|(peer, c)| {
                let subnet = c.ip.subnet();
                let mut h = DefaultHasher::new();
                key.hash(&mut h);
                subnet.hash(&mut h);
                Candidate {
                    peer: *peer,
                    subnet,
                    connected_at: c.connected_at,
                    last_useful: c.last_useful,
                    score: score_of(peer),
                    keyed_netgroup: h.finish(),
                }
            })
            .collect();
        // A stable starting order makes every later sort deterministic.
        candidates.sort_by_key(|c| c.peer);
        let p = self.limits.protection;
        protect(&mut candidates, p.by_netgroup, |a, b| {
            a.keyed_netgroup.cmp(&b.keyed_netgroup)
        });
        protect(&mut candidates, p.by_score, |a, b| {
            b.score.total_cmp(&a.score)
        });
        let useful = candidates
            .iter()
            .filter(|c| c.last_useful.is_some())
            .count();
        protect(&mut candidates, p.by_recent_useful.min(useful), |a, b| {
            b.last_useful.cmp(&a.last_useful)
        });
        if p.half_by_uptime {
            let half = candidates.len() / 2;
            protect(&mut candidates, half, |a, b| {
                a.connected_at.cmp(&b.connected_at)
            });
        }
        // The most crowded netgroup; ties go to the one with the youngest member.
        let mut groups: HashMap<Subnet, (usize, Duration)> = HashMap::new();
        for c in &candidates {
            let g = groups.entry(c.subnet).or_insert((0, Duration::ZERO));
            g.0 += 1;
            g.1 = g.1.max(c.connected_at);
        }
        let (crowded, _) = groups
            .into_iter()
            .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))?;
        candidates
            .iter()
            .filter(|c| c.subnet == crowded)
            .max_by(|a, b| {
                a.connected_at
                    .cmp(&b.connected_at)
                    .then(b.peer.cmp(&a.peer))
            })
            .map(|c| c.peer)
    }
}

/// Sorts best-first by `better` and removes the first `n` from the candidates.
fn protect(
    candidates: &mut Vec<Candidate>,
    n: usize,
    better: impl Fn(&Candidate, &Candidate) -> core::cmp::Ordering,
) {
    candidates.sort_by(|a, b| better(a, b));
    let n = n.min(candidates.len());
    candidates.drain(..n);
}
