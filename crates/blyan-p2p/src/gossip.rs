//! Block and transaction gossip as a sans-IO router.
//!
//! A node that accepts a new envelope pushes it in full to a few peers (by default one,
//! or `⌊√n⌋` of its `n` peers) and announces its id to the others; a peer that gets only the
//! announcement fetches the envelope from the announcer (or, if that fails, from the next
//! one). Nothing is relayed before the driver has checked the payload (a block's header
//! and signature, a transaction's fields and signature) and said so with
//! [`GossipRouter::validated`]. Peers known to have a message (its sender, its announcers)
//! get neither push nor announcement.
//!
//! Every envelope's origin signature is checked, then its `(origin, nonce, timestamp)`
//! passes `blyan-security`'s [`ReplayGuard`]. The seen-cache, the envelopes kept for
//! fetches, the pending fetches and the peer list all have caps.
//!
//! The router owns the replay check for gossip, after the seen-cache and the signature: a
//! duplicate is counted (not refused as a replay), and a forged envelope cannot burn an
//! origin's nonce. The driver therefore passes gossip to `SecurityManager::check_message`
//! as a direct message (rate limits by kind and bytes), not as a relayed one.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use blyan_crypto::{Hash, KeyPair, PeerId};
use blyan_security::{Now, PeerEvent, Reject, ReplayConfig, ReplayGuard};

use crate::error::MessageError;
use crate::message::{Announce, GossipEnvelope, GossipMessage, GossipPayload};
use crate::rng::SplitMix64;

/// Settings of the [`GossipRouter`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GossipConfig {
    /// The chain id origin signatures are bound to.
    pub chain_id: u32,
    /// Peers that get a full push of a new message (the others get an announcement);
    /// `None` means `⌊√n⌋` of the `n` peers that may lack it, at least 1 (what Ethereum's
    /// devp2p does for blocks). Default `Some(1)`: each node is pushed to by about as many
    /// peers as it pushes to, so a node receives about `fanout` pushed copies on top of
    /// the one it may have fetched after an announcement. Measured on 100 nodes with ~10
    /// peers each (docs/performance.md): fanout 1 gives ~1 duplicate per node, 2 gives
    /// ~2, `⌊√n⌋` (3) ~3, and fanout 1 was also the fastest there, since duplicates cost
    /// validation time. A larger fanout saves an announce-and-fetch round trip per hop
    /// on links with a long round trip, at one more copy per node.
    pub push_fanout: Option<usize>,
    /// Default 16,384: message ids remembered (about 2 MiB).
    pub seen_capacity: usize,
    /// Default 180 s: how long an id is remembered. Longer than the replay guard's
    /// freshness window (120 s), after which a copy is refused as stale anyway.
    pub seen_ttl: Duration,
    /// Default 256: envelopes kept to answer fetches (the newest ones; with 1 MiB blocks
    /// at most 256 MiB, in practice mostly small transactions).
    pub max_held_envelopes: usize,
    /// Default 256: envelopes being fetched after an announcement.
    pub max_pending_fetches: usize,
    /// Default 4: announcers remembered per pending fetch, to ask if the first fails.
    pub max_alternates: usize,
    /// Default 5 s: a fetch not answered by then goes to the next announcer.
    pub fetch_timeout: Duration,
    /// Default 1,024: peers the router relays to.
    pub max_peers: usize,
    /// Default 32: peers remembered per message as already having it.
    pub max_known_per_message: usize,
    /// Replay protection for origins' nonces and timestamps.
    pub replay: ReplayConfig,
    /// Seed of the push-target choice.
    pub seed: u64,
}

impl GossipConfig {
    /// Defaults for `chain_id`.
    pub fn new(chain_id: u32) -> Self {
        Self {
            chain_id,
            push_fanout: Some(1),
            seen_capacity: 16_384,
            seen_ttl: Duration::from_secs(180),
            max_held_envelopes: 256,
            max_pending_fetches: 256,
            max_alternates: 4,
            fetch_timeout: Duration::from_secs(5),
            max_peers: 1_024,
            max_known_per_message: 32,
            replay: ReplayConfig::default(),
            seed: 0,
        }
    }
}

/// The driver's verdict on a delivered payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Validation {
    /// Valid and new: relay it.
    Accept,
    /// Not wrong, but not worth relaying (already in the chain, too old, pool full).
    Ignore,
    /// Invalid: the sender is penalized with this event, nothing is relayed.
    Reject(PeerEvent),
}

/// Why the router penalizes a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GossipFault {
    /// An envelope whose origin signature does not verify (no honest node relays one).
    BadSignature,
    /// An envelope that cannot be encoded to compute its id, or a fetched envelope whose
    /// id is not the one asked for.
    Malformed,
    /// A replayed `(origin, nonce)` with different content, or a nonce below the window.
    Replay,
    /// The payload failed the driver's validation.
    Invalid,
    /// Announced a message, then did not deliver it.
    NotDelivered,
    /// A fetch timed out.
    Timeout,
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GossipAction {
    /// Send this one-way message to `to` (gossip protocol stream).
    Send {
        /// The peer.
        to: PeerId,
        /// The message.
        message: GossipMessage,
    },
    /// Ask `from` for envelope `id` (`GetGossip`); answer with [`GossipRouter::on_fetched`].
    Fetch {
        /// The announcer.
        from: PeerId,
        /// The message id.
        id: Hash,
        /// The announcement said it is a block (a large answer: the driver paces block
        /// fetches like sync requests; transaction fetches answer our peer's own
        /// announcement and go at once).
        is_block: bool,
    },
    /// Check this new payload (block: header and signature, at least; transaction: fields
    /// and signature) and hand it to the chain or pool; then call
    /// [`GossipRouter::validated`] with the verdict.
    Deliver {
        /// The message id.
        id: Hash,
        /// The peer it came from.
        from: PeerId,
        /// The envelope.
        envelope: Box<GossipEnvelope>,
    },
    /// Report `event` for `peer` to the security manager.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// The score event.
        event: PeerEvent,
        /// Why.
        fault: GossipFault,
    },
}

/// Counters for the propagation figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GossipStats {
    /// New envelopes accepted (first copies).
    pub received: u64,
    /// Full copies of an envelope already seen (the duplicates that cost bandwidth).
    pub duplicates: u64,
    /// Announcements received.
    pub announces: u64,
    /// Envelopes fetched after an announcement.
    pub fetches: u64,
    /// Full pushes sent.
    pub pushed: u64,
    /// Announcements sent.
    pub announced: u64,
    /// Envelopes dropped by the signature or replay checks or by validation.
    pub dropped: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Validating,
    Done,
}

#[derive(Clone, Debug)]
struct Seen {
    state: State,
    inserted: Duration,
    from: Option<PeerId>,
    envelope: Option<GossipEnvelope>,
    known: Vec<PeerId>,
    duplicates: u32,
}

#[derive(Clone, Debug)]
struct Fetch {
    peer: PeerId,
    deadline: Duration,
    alternates: Vec<PeerId>,
    is_block: bool,
}

/// The gossip router for one node.
#[derive(Debug)]
pub struct GossipRouter {
    config: GossipConfig,
    peers: Vec<PeerId>,
    seen: HashMap<Hash, Seen>,
    /// Ids in insertion order, for expiry and eviction.
    order: VecDeque<Hash>,
    /// Ids whose envelope is kept, oldest first.
    held: VecDeque<Hash>,
    fetches: HashMap<Hash, Fetch>,
    replay: ReplayGuard,
    rng: SplitMix64,
    last_nonce: u64,
    stats: GossipStats,
}

impl GossipRouter {
    /// A router with no peers.
    pub fn new(mut config: GossipConfig) -> Self {
        config.seen_capacity = config.seen_capacity.max(1);
        config.max_known_per_message = config.max_known_per_message.max(1);
        let replay = ReplayGuard::new(config.replay.clone());
        let rng = SplitMix64::new(config.seed);
        Self {
            config,
            peers: Vec::new(),
            seen: HashMap::new(),
            order: VecDeque::new(),
            held: VecDeque::new(),
            fetches: HashMap::new(),
            replay,
            rng,
            last_nonce: 0,
            stats: GossipStats::default(),
        }
    }

    /// Adds a peer to relay to (ignored past `max_peers` or if present).
    pub fn add_peer(&mut self, peer: PeerId) {
        if self.peers.len() < self.config.max_peers && !self.peers.contains(&peer) {
            self.peers.push(peer);
        }
    }

    /// Removes a peer; fetches from it go to the next announcer at the next
    /// [`poll`](Self::poll).
    pub fn remove_peer(&mut self, peer: &PeerId) {
        self.peers.retain(|p| p != peer);
        for fetch in self.fetches.values_mut() {
            fetch.alternates.retain(|p| p != peer);
            if fetch.peer == *peer {
                fetch.deadline = Duration::ZERO;
            }
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> GossipStats {
        self.stats
    }

    /// Ids remembered (never more than `seen_capacity`).
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    /// Envelopes being fetched (never more than `max_pending_fetches`).
    pub fn pending_fetches(&self) -> usize {
        self.fetches.len()
    }

    /// Full copies of `id` received after the first.
    pub fn duplicates_of(&self, id: &Hash) -> Option<u32> {
        self.seen.get(id).map(|s| s.duplicates)
    }

    /// Whether `peer` is known to have heard of `id`: it sent or announced it to us, or we
    /// pushed or announced it to them (as far as the bounded list per message recalls).
    pub fn knows(&self, id: &Hash, peer: &PeerId) -> bool {
        self.seen.get(id).is_some_and(|s| s.known.contains(peer))
    }

    /// The envelope `id`, to answer a peer's `GetGossip`, while it is kept.
    pub fn envelope(&self, id: &Hash) -> Option<&GossipEnvelope> {
        self.seen.get(id)?.envelope.as_ref()
    }

    /// Creates, signs and spreads a new message of ours. The first nonce is the wall
    /// clock in microseconds, so nonces increase across restarts as the replay guard
    /// requires; after it they count up by one. Consecutive messages thus have
    /// consecutive nonces and a receiver's replay window (the 256 nonces below the
    /// highest) holds our last 256 messages however fast we published them: with a
    /// clock-based nonce per message, a burst spread over a few milliseconds spanned
    /// thousands of nonces, and a copy arriving out of order was refused as too old and
    /// its relay penalized.
    pub fn publish(
        &mut self,
        now: Now,
        key: &KeyPair,
        payload: GossipPayload,
    ) -> Result<Vec<GossipAction>, MessageError> {
        let nonce = if self.last_nonce == 0 {
            now.unix_ms().saturating_mul(1_000).max(1)
        } else {
            self.last_nonce.saturating_add(1)
        };
        self.last_nonce = nonce;
        let envelope =
            GossipEnvelope::sign(key, self.config.chain_id, nonce, now.unix_ms(), payload)?;
        let id = envelope.id()?;
        self.remember(now, id, None, envelope, State::Done);
        Ok(self.relay(&id))
    }

    /// A message from `from` on a gossip stream.
    pub fn on_message(
        &mut self,
        now: Now,
        from: PeerId,
        message: GossipMessage,
    ) -> Vec<GossipAction> {
        match message {
            GossipMessage::Envelope(envelope) => self.on_envelope(now, from, *envelope),
            GossipMessage::Announce(announce) => self.on_announce(now, from, announce),
        }
    }

    fn on_announce(&mut self, now: Now, from: PeerId, announce: Announce) -> Vec<GossipAction> {
        self.stats.announces += 1;
        let max_known = self.config.max_known_per_message;
        if let Some(seen) = self.seen.get_mut(&announce.id) {
            push_bounded(&mut seen.known, from, max_known);
            return Vec::new();
        }
        if let Some(fetch) = self.fetches.get_mut(&announce.id) {
            if fetch.peer != from && fetch.alternates.len() < self.config.max_alternates {
                push_bounded(&mut fetch.alternates, from, self.config.max_alternates);
            }
            return Vec::new();
        }
        if self.fetches.len() >= self.config.max_pending_fetches {
            // Announcements are hints; the push or a later announcement will come.
            return Vec::new();
        }
        self.fetches.insert(
            announce.id,
            Fetch {
                peer: from,
                deadline: now.monotonic().saturating_add(self.config.fetch_timeout),
                alternates: Vec::new(),
                is_block: announce.is_block,
            },
        );
        vec![GossipAction::Fetch {
            from,
            id: announce.id,
            is_block: announce.is_block,
        }]
    }

    fn on_envelope(
        &mut self,
        now: Now,
        from: PeerId,
        envelope: GossipEnvelope,
    ) -> Vec<GossipAction> {
        let id = match envelope.id() {
            Ok(id) => id,
            Err(_) => return vec![penalty(from, GossipFault::Malformed)],
        };
        let max_known = self.config.max_known_per_message;
        if let Some(seen) = self.seen.get_mut(&id) {
            seen.duplicates = seen.duplicates.saturating_add(1);
            push_bounded(&mut seen.known, from, max_known);
            self.stats.duplicates += 1;
            return Vec::new();
        }
        if envelope.verify(self.config.chain_id).is_err() {
            self.stats.dropped += 1;
            return vec![penalty(from, GossipFault::BadSignature)];
        }
        // Only a genuine copy ends the fetch: a forged one leaves it to the announcers.
        self.fetches.remove(&id);
        match self.replay.check(
            now,
            envelope.origin_peer(),
            envelope.nonce,
            envelope.timestamp_ms,
        ) {
            Ok(()) => {}
            // Honest relays can be slow or clocks skewed: drop without blame.
            Err(Reject::Stale | Reject::FromFuture) => {
                self.stats.dropped += 1;
                return Vec::new();
            }
            Err(_) => {
                self.stats.dropped += 1;
                return vec![penalty(from, GossipFault::Replay)];
            }
        }
        self.stats.received += 1;
        self.remember(now, id, Some(from), envelope.clone(), State::Validating);
        vec![GossipAction::Deliver {
            id,
            from,
            envelope: Box::new(envelope),
        }]
    }

    /// An answer to a [`GossipAction::Fetch`].
    pub fn on_fetched(
        &mut self,
        now: Now,
        from: PeerId,
        id: Hash,
        envelope: Option<GossipEnvelope>,
    ) -> Vec<GossipAction> {
        if self.fetches.get(&id).is_none_or(|f| f.peer != from) {
            return Vec::new();
        }
        match envelope {
            Some(envelope) if envelope.id().ok() == Some(id) => {
                self.stats.fetches += 1;
                self.on_envelope(now, from, envelope)
            }
            Some(_) => self.retry_fetch(now, id, Some(penalty(from, GossipFault::Malformed))),
            None => {
                let blame = GossipAction::Penalize {
                    peer: from,
                    event: PeerEvent::Useless,
                    fault: GossipFault::NotDelivered,
                };
                self.retry_fetch(now, id, Some(blame))
            }
        }
    }

    fn retry_fetch(
        &mut self,
        now: Now,
        id: Hash,
        blame: Option<GossipAction>,
    ) -> Vec<GossipAction> {
        let mut actions: Vec<GossipAction> = blame.into_iter().collect();
        let Some(fetch) = self.fetches.get_mut(&id) else {
            return actions;
        };
        if fetch.alternates.is_empty() {
            self.fetches.remove(&id);
            return actions;
        }
        let next = fetch.alternates.remove(0);
        fetch.peer = next;
        fetch.deadline = now.monotonic().saturating_add(self.config.fetch_timeout);
        actions.push(GossipAction::Fetch {
            from: next,
            id,
            is_block: fetch.is_block,
        });
        actions
    }

    /// The driver's verdict on a [`GossipAction::Deliver`]: an accepted message is relayed.
    pub fn validated(&mut self, id: &Hash, verdict: Validation) -> Vec<GossipAction> {
        let Some(seen) = self.seen.get_mut(id) else {
            return Vec::new();
        };
        if seen.state != State::Validating {
            return Vec::new();
        }
        seen.state = State::Done;
        match verdict {
            Validation::Accept => self.relay(id),
            Validation::Ignore => Vec::new(),
            Validation::Reject(event) => {
                seen.envelope = None;
                self.stats.dropped += 1;
                seen.from
                    .map(|peer| GossipAction::Penalize {
                        peer,
                        event,
                        fault: GossipFault::Invalid,
                    })
                    .into_iter()
                    .collect()
            }
        }
    }

    /// Expires fetches (trying the next announcer) and forgets old ids. Call on a timer.
    pub fn poll(&mut self, now: Now) -> Vec<GossipAction> {
        let mut actions = Vec::new();
        let mut expired: Vec<(Hash, PeerId)> = self
            .fetches
            .iter()
            .filter(|(_, f)| f.deadline <= now.monotonic())
            .map(|(id, f)| (*id, f.peer))
            .collect();
        expired.sort();
        for (id, peer) in expired {
            // A peer that disconnected is not blamed for the fetch it could not answer.
            let blame = self
                .peers
                .contains(&peer)
                .then_some(GossipAction::Penalize {
                    peer,
                    event: PeerEvent::Timeout,
                    fault: GossipFault::Timeout,
                });
            actions.extend(self.retry_fetch(now, id, blame));
        }
        while let Some(oldest) = self.order.front() {
            let expired = self
                .seen
                .get(oldest)
                .is_none_or(|s| s.inserted.saturating_add(self.config.seen_ttl) <= now.monotonic());
            if !expired {
                break;
            }
            if let Some(id) = self.order.pop_front() {
                self.seen.remove(&id);
            }
        }
        self.held.retain(|id| self.seen.contains_key(id));
        self.replay.purge(now);
        actions
    }

    fn remember(
        &mut self,
        now: Now,
        id: Hash,
        from: Option<PeerId>,
        envelope: GossipEnvelope,
        state: State,
    ) {
        while self.seen.len() >= self.config.seen_capacity {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            self.seen.remove(&oldest);
        }
        while self.held.len() >= self.config.max_held_envelopes {
            let Some(oldest) = self.held.pop_front() else {
                break;
            };
            if let Some(seen) = self.seen.get_mut(&oldest) {
                seen.envelope = None;
            }
        }
        let keep = self.config.max_held_envelopes > 0;
        if keep {
            self.held.push_back(id);
        }
        self.order.push_back(id);
        self.seen.insert(
            id,
            Seen {
                state,
                inserted: now.monotonic(),
                from,
                envelope: keep.then_some(envelope),
                known: from.into_iter().collect(),
                duplicates: 0,
            },
        );
    }

    /// Pushes `id` to a few peers that may lack it and announces it to the rest.
    fn relay(&mut self, id: &Hash) -> Vec<GossipAction> {
        let Some(seen) = self.seen.get(id) else {
            return Vec::new();
        };
        let Some(envelope) = seen.envelope.clone() else {
            return Vec::new();
        };
        let mut targets: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|p| !seen.known.contains(p))
            .copied()
            .collect();
        let fanout = self
            .config
            .push_fanout
            .unwrap_or_else(|| targets.len().isqrt().max(1));
        let pushed = self.rng.choose_front(&mut targets, fanout);
        let announce = Announce {
            id: *id,
            hash: envelope.payload.hash(),
            height: envelope.payload.height(),
            is_block: envelope.payload.is_block(),
        };
        let mut actions = Vec::with_capacity(targets.len());
        for (i, to) in targets.iter().enumerate() {
            let message = if i < pushed {
                GossipMessage::Envelope(Box::new(envelope.clone()))
            } else {
                GossipMessage::Announce(announce)
            };
            actions.push(GossipAction::Send { to: *to, message });
        }
        self.stats.pushed += pushed as u64;
        self.stats.announced += (targets.len() - pushed) as u64;
        let max_known = self.config.max_known_per_message;
        if let Some(seen) = self.seen.get_mut(id) {
            for to in targets {
                push_bounded(&mut seen.known, to, max_known);
            }
        }
        actions
    }
}

fn penalty(peer: PeerId, fault: GossipFault) -> GossipAction {
    let event = match fault {
        GossipFault::BadSignature => PeerEvent::InvalidSignature,
        GossipFault::Malformed => PeerEvent::InvalidMessage,
        GossipFault::Invalid => PeerEvent::InvalidBlock,
        // An origin that signs two messages with one nonce makes honest relays look like
        // replayers: the relay gets the mildest penalty.
        GossipFault::Replay | GossipFault::NotDelivered => PeerEvent::Useless,
        GossipFault::Timeout => PeerEvent::Timeout,
    };
    GossipAction::Penalize { peer, event, fault }
}

/// Adds `peer` unless present; past `max` the oldest entry makes room.
fn push_bounded(list: &mut Vec<PeerId>, peer: PeerId, max: usize) {
    if list.contains(&peer) {
        return;
    }
    if list.len() >= max {
        list.remove(0);
    }
    list.push(peer);
}
