//! Headers-first chain sync as a sans-IO state machine.
//!
//! The scheduler keeps a bounded run of *held* headers that extend a block the local chain
//! has (the anchor). Headers come from one peer at a time, in batches, and each one is
//! checked (producer of the slot, signature, parent, height, timestamps) before it is held.
//! Bodies for the first `body_window` held headers are fetched in parallel from every
//! peer that claims the height, a few hashes per request; a body must match its header
//! (`tx_root`) or the sender is penalized and the hashes go to another peer. Signatures
//! and state are the importer's to check: a block the chain refuses penalizes the peers
//! that sent its header and its body ([`SyncScheduler::on_import_failed`]).
//! Blocks leave in height order as soon as the front of the run is complete.
//!
//! Bounds: at most `max_held_headers` headers (a headers request never asks for more than
//! the free room, and a longer answer is refused whole), at most `body_window` bodies
//! requested or held, `max_requests_per_peer` requests per peer, `max_peers` peers.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use blyan_consensus::{Block, BlockError, Header};
use blyan_crypto::{Hash, PeerId};
use blyan_security::{Now, PeerEvent};

use crate::chain::{SyncChain, block_locator};
use crate::message::{
    BlockBody, MAX_BODIES_PER_REQUEST, MAX_HEADERS_PER_RESPONSE, MAX_LOCATOR_LEN, SignedHeader,
    Status,
};

/// Settings of the [`SyncScheduler`]. Defaults suit blocks of up to 1 MiB.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncConfig {
    /// Default 512 ([`MAX_HEADERS_PER_RESPONSE`]): headers asked for per request.
    pub header_batch: u32,
    /// Default 4096: most headers held ahead of the chain (about 1 MiB). Reached, no more
    /// headers are requested until blocks are imported.
    pub max_held_headers: usize,
    /// Default 128: how many of the oldest held headers may have their body requested or
    /// held at once. With 1 MiB blocks that caps bodies in memory at 128 MiB; typical
    /// blocks are far smaller.
    pub body_window: usize,
    /// Default 16: hashes per body request (at most [`MAX_BODIES_PER_REQUEST`]).
    pub bodies_per_request: usize,
    /// Default 2: requests in flight per peer.
    pub max_requests_per_peer: usize,
    /// Default 10 s: a request not answered by then counts as a timeout.
    pub request_timeout: Duration,
    /// Default 30 s: a peer that timed out or lied is not asked again for this long.
    pub peer_cooldown: Duration,
    /// Default 128: peers tracked (status updates for more are ignored).
    pub max_peers: usize,
    /// Default 128: most blocks in one [`SyncAction::Import`].
    pub import_batch: usize,
    /// Default 2 s: when gossip shows a peer has just the next block
    /// ([`SyncScheduler::note_height`] one above what we hold, or a status refresh showing
    /// just that block), sync leaves it to gossip
    /// for this long before fetching it, so a new block does not arrive twice (pushed or
    /// fetched by gossip, and again by sync). A larger gap is fetched at once.
    pub gossip_grace: Duration,
}

impl Default for SyncConfig {
    fn default() -> Self {
        Self {
            header_batch: MAX_HEADERS_PER_RESPONSE as u32,
            max_held_headers: 4096,
            body_window: 128,
            bodies_per_request: 16,
            max_requests_per_peer: 2,
            request_timeout: Duration::from_secs(10),
            peer_cooldown: Duration::from_secs(30),
            max_peers: 128,
            import_batch: 128,
            gossip_grace: Duration::from_secs(2),
        }
    }
}

/// Identifies one request the scheduler asked the driver to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(pub u64);

/// What a peer did wrong, as sync judged it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncFault {
    /// A header failed its checks (producer, signature, parent, height, time).
    InvalidHeader,
    /// A body does not match its header.
    InvalidBody,
    /// Headers that do not link to anything we hold or to each other.
    UnlinkedHeaders,
    /// More items than were asked for.
    Oversized,
    /// Claimed a height, then had no headers beyond ours.
    EmptyHeaders,
    /// No answer in time, or the request failed.
    Timeout,
    /// Sent the headers of blocks the chain then refused on import.
    InvalidChain,
}

impl SyncFault {
    /// The score event for `SecurityManager::report`.
    pub const fn event(self) -> PeerEvent {
        match self {
            Self::InvalidHeader | Self::InvalidBody | Self::InvalidChain => PeerEvent::InvalidBlock,
            Self::UnlinkedHeaders | Self::Oversized => PeerEvent::InvalidMessage,
            Self::EmptyHeaders => PeerEvent::Useless,
            Self::Timeout => PeerEvent::Timeout,
        }
    }

    /// A fixed label for logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidHeader => "invalid_header",
            Self::InvalidBody => "invalid_body",
            Self::UnlinkedHeaders => "unlinked_headers",
            Self::Oversized => "oversized",
            Self::EmptyHeaders => "empty_headers",
            Self::Timeout => "timeout",
            Self::InvalidChain => "invalid_chain",
        }
    }
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncAction {
    /// Send `GetHeaders { locator, max }` to `peer`; answer with
    /// [`SyncScheduler::on_headers`] or [`SyncScheduler::on_request_failed`].
    RequestHeaders {
        /// The peer.
        peer: PeerId,
        /// The request.
        request: RequestId,
        /// Block locator.
        locator: Vec<Hash>,
        /// Most headers wanted.
        max: u32,
    },
    /// Send `GetBodies { hashes }` to `peer`; answer with [`SyncScheduler::on_bodies`].
    RequestBodies {
        /// The peer.
        peer: PeerId,
        /// The request.
        request: RequestId,
        /// Block hashes, in height order.
        hashes: Vec<Hash>,
    },
    /// Verify and import these blocks, in this order; report a block whose body fails its
    /// signature checks with [`SyncScheduler::on_body_refused`] and one the chain refuses
    /// with [`SyncScheduler::on_import_failed`].
    Import {
        /// Consecutive blocks, parent first.
        blocks: Vec<Block>,
    },
    /// Report `fault.event()` for `peer` to the security manager.
    Penalize {
        /// The peer.
        peer: PeerId,
        /// What it did.
        fault: SyncFault,
    },
}

/// Sync figures for `/api/sync` and `blyan_sync_progress_ratio`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SyncProgress {
    /// Height of the local canonical tip.
    pub current_height: u64,
    /// The best height a peer claims (at least `current_height`).
    pub target_height: u64,
    /// `current / target`, 1 when there is nothing to sync.
    pub ratio: f64,
    /// Peers that delivered valid headers or bodies and are still tracked.
    pub peers_used: usize,
    /// Headers held ahead of the chain.
    pub held_headers: usize,
    /// Requests in flight.
    pub requests_in_flight: usize,
}

impl SyncProgress {
    /// Sets `blyan_sync_progress_ratio` through the `metrics` facade.
    pub fn record(&self) {
        blyan_ops::metrics_collector::set_sync_progress(self.ratio);
    }
}

#[derive(Clone, Debug)]
struct SyncPeer {
    best_height: u64,
    /// A height gossip showed one above ours, and since when: it becomes `best_height`
    /// after `gossip_grace` unless gossip delivered the block first.
    noted: Option<(u64, Duration)>,
    in_flight: usize,
    cooldown_until: Duration,
    used: bool,
}

#[derive(Clone, Debug)]
enum Body {
    Wanted,
    Requested(RequestId),
    /// The body and the peer that sent it.
    Received(Box<Block>, PeerId),
}

#[derive(Clone, Debug)]
struct Held {
    header: SignedHeader,
    hash: Hash,
    /// Who sent the header (penalized if the chain refuses the block).
    source: PeerId,
    body: Body,
    /// Peers that failed to deliver this body; not asked for it again while others can.
    failed: Vec<PeerId>,
}

/// Most peers remembered as having failed one body; beyond, the list starts over.
const MAX_FAILED_PER_BODY: usize = 8;

#[derive(Clone, Debug)]
enum Kind {
    Headers { max: u32 },
    Bodies { hashes: Vec<Hash> },
}

#[derive(Clone, Debug)]
struct InFlight {
    peer: PeerId,
    deadline: Duration,
    kind: Kind,
}

/// The last block handed out for import: new headers may continue from it.
#[derive(Clone, Debug)]
struct Anchor {
    header: Header,
    hash: Hash,
}

/// Headers-first sync scheduler: inputs are peer statuses, answers, failures and the
/// time; outputs are [`SyncAction`]s. Deterministic for a given input sequence.
#[derive(Debug)]
pub struct SyncScheduler {
    config: SyncConfig,
    peers: HashMap<PeerId, SyncPeer>,
    held: VecDeque<Held>,
    anchor: Option<Anchor>,
    requests: HashMap<RequestId, InFlight>,
    headers_request: Option<RequestId>,
    next_request: u64,
    /// Turns the choice of headers peer.
    rotation: usize,
    /// Who sent the header and the body of the latest blocks handed out, for
    /// [`Self::on_import_failed`].
    recent_sources: VecDeque<(Hash, PeerId, PeerId)>,
}

impl SyncScheduler {
    /// An idle scheduler. Values are clamped to workable minimums (at least one of
    /// everything, batches within the message caps).
    pub fn new(mut config: SyncConfig) -> Self {
        config.header_batch = config
            .header_batch
            .clamp(1, MAX_HEADERS_PER_RESPONSE as u32);
        config.max_held_headers = config.max_held_headers.max(1);
        config.body_window = config.body_window.clamp(1, config.max_held_headers);
        config.bodies_per_request = config.bodies_per_request.clamp(1, MAX_BODIES_PER_REQUEST);
        config.max_requests_per_peer = config.max_requests_per_peer.max(1);
        config.max_peers = config.max_peers.max(1);
        config.import_batch = config.import_batch.max(1);
        Self {
            config,
            peers: HashMap::new(),
            held: VecDeque::new(),
            anchor: None,
            requests: HashMap::new(),
            headers_request: None,
            next_request: 0,
            rotation: 0,
            recent_sources: VecDeque::new(),
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &SyncConfig {
        &self.config
    }

    /// A peer's (new) status, from the handshake or a later refresh. A refresh that
    /// shows just the next block waits `gossip_grace`, like [`Self::note_height`].
    pub fn on_status(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        peer: PeerId,
        status: &Status,
    ) -> Vec<SyncAction> {
        let next = self.tail_height(chain).saturating_add(1);
        let grace = !self.config.gossip_grace.is_zero();
        if let Some(known) = self.peers.get_mut(&peer) {
            if grace && status.best_height == next && status.best_height > known.best_height {
                // A status refresh that lands between the peer's import of a new block
                // and ours: gossip is delivering that block; wait as for an announcement.
                let since = known.noted.map_or(now.monotonic(), |(_, since)| since);
                known.noted = Some((status.best_height, since));
            } else {
                known.best_height = status.best_height;
            }
        } else if self.peers.len() < self.config.max_peers {
            self.peers.insert(
                peer,
                SyncPeer {
                    best_height: status.best_height,
                    noted: None,
                    in_flight: 0,
                    cooldown_until: Duration::ZERO,
                    used: false,
                },
            );
        }
        self.schedule(now, chain)
    }

    /// `peer` showed it has a block at `height` (a gossip announcement or push): raises
    /// its known height, so a node that fell behind starts syncing without waiting for the
    /// next status exchange. Just the next block (one above what we hold) is left to
    /// gossip for `gossip_grace` first. Unknown peers are ignored (their status comes
    /// first).
    pub fn note_height(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        peer: &PeerId,
        height: u64,
    ) -> Vec<SyncAction> {
        let next = self.tail_height(chain).saturating_add(1);
        let grace = !self.config.gossip_grace.is_zero();
        if let Some(p) = self.peers.get_mut(peer)
            && height > p.best_height
        {
            if height <= next && grace {
                let since = p.noted.map_or(now.monotonic(), |(_, since)| since);
                let noted = p.noted.map_or(height, |(h, _)| h.max(height));
                p.noted = Some((noted, since));
            } else {
                p.best_height = height;
                p.noted = None;
            }
        }
        self.schedule(now, chain)
    }

    /// Turns noted heights whose grace is over into known heights; forgets those gossip
    /// delivered meanwhile.
    fn promote_noted(&mut self, now: Now, chain: &impl SyncChain) {
        let local = chain.best().0;
        let grace = self.config.gossip_grace;
        for p in self.peers.values_mut() {
            let Some((height, since)) = p.noted else {
                continue;
            };
            if height <= local {
                p.noted = None;
            } else if now.monotonic().saturating_sub(since) >= grace {
                p.best_height = p.best_height.max(height);
                p.noted = None;
            }
        }
    }

    /// The peer disconnected: its requests go to others, without penalty.
    pub fn remove_peer(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        peer: &PeerId,
    ) -> Vec<SyncAction> {
        let ids: Vec<RequestId> = self
            .requests
            .iter()
            .filter(|(_, r)| r.peer == *peer)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            self.release(id, false);
        }
        self.peers.remove(peer);
        self.schedule(now, chain)
    }

    /// An answer to a headers request.
    pub fn on_headers(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        peer: PeerId,
        request: RequestId,
        headers: Vec<SignedHeader>,
    ) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        let Some(Kind::Headers { max }) = self.take_request(request, &peer) else {
            return self.schedule(now, chain);
        };
        if headers.len() > max as usize {
            self.fault(now, &mut actions, peer, SyncFault::Oversized);
        } else if headers.is_empty() {
            let tail = self.tail_height(chain);
            if let Some(p) = self.peers.get_mut(&peer)
                && p.best_height > tail
            {
                // It has nothing past our tail after all: stop asking until it says more.
                p.best_height = tail;
                actions.push(SyncAction::Penalize {
                    peer,
                    fault: SyncFault::EmptyHeaders,
                });
            }
        } else {
            self.accept_headers(now, chain, &mut actions, peer, headers);
        }
        actions.extend(self.schedule(now, chain));
        actions
    }

    fn accept_headers(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        actions: &mut Vec<SyncAction>,
        peer: PeerId,
        headers: Vec<SignedHeader>,
    ) {
        let Some(first) = headers.first() else {
            return;
        };
        let Some(mut parent) = self.attach_point(chain, &first.header.parent_hash) else {
            self.fault(now, actions, peer, SyncFault::UnlinkedHeaders);
            return;
        };
        let mut accepted = 0usize;
        for signed in headers {
            if self.held.len() >= self.config.max_held_headers {
                break;
            }
            if let Err(error) = chain.verify_header(&signed, &parent, now.unix_ms()) {
                let fault = match error {
                    BlockError::WrongParent { .. } => SyncFault::UnlinkedHeaders,
                    _ => SyncFault::InvalidHeader,
                };
                self.fault(now, actions, peer, fault);
                break;
            }
            let hash = signed.hash();
            parent = signed.header.clone();
            self.held.push_back(Held {
                header: signed,
                hash,
                source: peer,
                body: Body::Wanted,
                failed: Vec::new(),
            });
            accepted += 1;
        }
        if accepted > 0 {
            self.mark_used(&peer);
        }
    }

    /// Finds where headers whose first parent is `parent_hash` attach, dropping held
    /// headers above that point (the peer's chain branches there). `None` if the parent is
    /// neither held nor stored locally.
    fn attach_point(&mut self, chain: &impl SyncChain, parent_hash: &Hash) -> Option<Header> {
        if let Some(index) = self.held.iter().rposition(|h| h.hash == *parent_hash) {
            self.truncate_held(index + 1);
            return self.held.back().map(|h| h.header.header.clone());
        }
        if let Some(anchor) = &self.anchor
            && anchor.hash == *parent_hash
        {
            let header = anchor.header.clone();
            self.truncate_held(0);
            return Some(header);
        }
        let header = chain.header(parent_hash)?;
        self.truncate_held(0);
        self.anchor = Some(Anchor {
            header: header.clone(),
            hash: *parent_hash,
        });
        Some(header)
    }

    /// Drops held headers from `len` on, cancelling their body requests.
    fn truncate_held(&mut self, len: usize) {
        let cancelled: Vec<RequestId> = self
            .held
            .iter()
            .skip(len)
            .filter_map(|h| match h.body {
                Body::Requested(id) => Some(id),
                _ => None,
            })
            .collect();
        self.held.truncate(len);
        for id in cancelled {
            self.release(id, false);
        }
    }

    /// An answer to a bodies request: bodies for a prefix of the requested hashes.
    pub fn on_bodies(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        peer: PeerId,
        request: RequestId,
        bodies: Vec<BlockBody>,
    ) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        let Some(Kind::Bodies { hashes }) = self.take_request(request, &peer) else {
            return self.schedule(now, chain);
        };
        if bodies.len() > hashes.len() {
            self.fault(now, &mut actions, peer, SyncFault::Oversized);
            self.return_bodies(&hashes, request, peer);
        } else {
            let mut delivered = 0usize;
            let mut invalid = false;
            // Positional: the i-th body answers the i-th hash, whatever became of it here.
            let mut bodies = bodies.into_iter();
            for hash in &hashes {
                let body = bodies.next();
                let Some(held) = self.held.iter_mut().find(|h| {
                    h.hash == *hash && matches!(h.body, Body::Requested(id) if id == request)
                }) else {
                    continue;
                };
                let Some(body) = body else {
                    held.body = Body::Wanted;
                    push_failed(&mut held.failed, peer);
                    continue;
                };
                let block = body.into_block(held.header.clone());
                if chain.check_body(&block).is_err() {
                    held.body = Body::Wanted;
                    push_failed(&mut held.failed, peer);
                    invalid = true;
                    break;
                }
                held.body = Body::Received(Box::new(block), peer);
                delivered += 1;
            }
            if invalid {
                self.fault(now, &mut actions, peer, SyncFault::InvalidBody);
                self.return_bodies(&hashes, request, peer);
            }
            if delivered > 0 {
                self.mark_used(&peer);
            }
        }
        actions.extend(self.schedule(now, chain));
        actions
    }

    /// Puts every body still assigned to `request` back to wanted, excluding `peer`.
    fn return_bodies(&mut self, hashes: &[Hash], request: RequestId, peer: PeerId) {
        for held in self.held.iter_mut().filter(|h| hashes.contains(&h.hash)) {
            if matches!(held.body, Body::Requested(id) if id == request) {
                held.body = Body::Wanted;
                push_failed(&mut held.failed, peer);
            }
        }
    }

    /// The request failed (stream error, refused, malformed answer): like a timeout.
    pub fn on_request_failed(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        peer: PeerId,
        request: RequestId,
    ) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        if self.requests.get(&request).is_some_and(|r| r.peer == peer) {
            self.release(request, true);
            self.fault(now, &mut actions, peer, SyncFault::Timeout);
        }
        actions.extend(self.schedule(now, chain));
        actions
    }

    /// The chain refused block `hash` from an [`SyncAction::Import`] (a transaction
    /// signature, the state root...): the peers that sent its header and its body served
    /// an invalid chain. Everything held is dropped and sync restarts
    /// from the chain's tip.
    pub fn on_import_failed(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        hash: &Hash,
    ) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        if let Some(&(_, header_from, body_from)) =
            self.recent_sources.iter().find(|(h, _, _)| h == hash)
        {
            self.fault(now, &mut actions, header_from, SyncFault::InvalidChain);
            if body_from != header_from {
                self.fault(now, &mut actions, body_from, SyncFault::InvalidChain);
            }
        }
        self.restart(now, chain, actions)
    }

    /// Block `hash` from an [`SyncAction::Import`] failed a check of its body that its
    /// header does not commit to (a transaction signature: `tx_root` covers the
    /// transactions without their signatures). Only the peer that sent the body lied; the
    /// header's sender is not blamed. Everything held is dropped and sync restarts from the
    /// chain's tip, asking others first.
    pub fn on_body_refused(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        hash: &Hash,
    ) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        if let Some(&(_, _, body_from)) = self.recent_sources.iter().find(|(h, _, _)| h == hash) {
            self.fault(now, &mut actions, body_from, SyncFault::InvalidBody);
        }
        self.restart(now, chain, actions)
    }

    /// After a refused import: drops everything held and starts over from the chain's tip.
    fn restart(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        mut actions: Vec<SyncAction>,
    ) -> Vec<SyncAction> {
        self.truncate_held(0);
        self.anchor = None;
        self.recent_sources.clear();
        actions.extend(self.schedule(now, chain));
        actions
    }

    /// Expires requests past their deadline (penalizing their peers) and schedules work.
    /// Call it on a timer, e.g. every second, and after imports.
    pub fn poll(&mut self, now: Now, chain: &impl SyncChain) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        let mut expired: Vec<(RequestId, PeerId)> = self
            .requests
            .iter()
            .filter(|(_, r)| r.deadline <= now.monotonic())
            .map(|(id, r)| (*id, r.peer))
            .collect();
        expired.sort();
        for (id, peer) in expired {
            self.release(id, true);
            self.fault(now, &mut actions, peer, SyncFault::Timeout);
        }
        actions.extend(self.schedule(now, chain));
        actions
    }

    /// The sync figures now.
    pub fn progress(&self, chain: &impl SyncChain) -> SyncProgress {
        let (current, _) = chain.best();
        let target = self
            .peers
            .values()
            .map(|p| p.best_height)
            .max()
            .unwrap_or(0)
            .max(current);
        let ratio = if target == 0 {
            1.0
        } else {
            current as f64 / target as f64
        };
        SyncProgress {
            current_height: current,
            target_height: target,
            ratio,
            peers_used: self.peers.values().filter(|p| p.used).count(),
            held_headers: self.held.len(),
            requests_in_flight: self.requests.len(),
        }
    }

    /// Headers held ahead of the chain (never more than `max_held_headers`).
    pub fn held_headers(&self) -> usize {
        self.held.len()
    }

    /// Requests in flight with their peers and hashes (bodies) — for tests and
    /// diagnostics.
    pub fn in_flight(&self) -> impl Iterator<Item = (RequestId, PeerId, &[Hash])> {
        self.requests.iter().map(|(id, r)| {
            let hashes: &[Hash] = match &r.kind {
                Kind::Bodies { hashes } => hashes,
                Kind::Headers { .. } => &[],
            };
            (*id, r.peer, hashes)
        })
    }

    fn fault(&mut self, now: Now, actions: &mut Vec<SyncAction>, peer: PeerId, fault: SyncFault) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.cooldown_until = now.monotonic().saturating_add(self.config.peer_cooldown);
        }
        actions.push(SyncAction::Penalize { peer, fault });
    }

    fn mark_used(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.used = true;
        }
    }

    /// Removes `request` if it is `peer`'s and returns what it asked.
    fn take_request(&mut self, request: RequestId, peer: &PeerId) -> Option<Kind> {
        if self.requests.get(&request)?.peer != *peer {
            return None;
        }
        let flight = self.requests.remove(&request)?;
        self.finish(&flight.peer, request);
        Some(flight.kind)
    }

    /// Forgets `request`; its bodies become wanted again (`failed` excludes the peer).
    fn release(&mut self, request: RequestId, failed: bool) {
        let Some(flight) = self.requests.remove(&request) else {
            return;
        };
        self.finish(&flight.peer, request);
        if let Kind::Bodies { hashes } = flight.kind {
            for held in self.held.iter_mut().filter(|h| hashes.contains(&h.hash)) {
                if matches!(held.body, Body::Requested(id) if id == request) {
                    held.body = Body::Wanted;
                    if failed {
                        push_failed(&mut held.failed, flight.peer);
                    }
                }
            }
        }
    }

    fn finish(&mut self, peer: &PeerId, request: RequestId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.in_flight = p.in_flight.saturating_sub(1);
        }
        if self.headers_request == Some(request) {
            self.headers_request = None;
        }
    }

    /// Height of the last header we have (held, handed out, or the chain's tip).
    fn tail_height(&self, chain: &impl SyncChain) -> u64 {
        let local = chain.best().0;
        let pipeline = self
            .held
            .back()
            .map(|h| h.header.header.height)
            .or(self.anchor.as_ref().map(|a| a.header.height))
            .unwrap_or(0);
        local.max(pipeline)
    }

    fn new_request(&mut self, now: Now, peer: PeerId, kind: Kind) -> RequestId {
        let id = RequestId(self.next_request);
        self.next_request = self.next_request.wrapping_add(1);
        if let Some(p) = self.peers.get_mut(&peer) {
            p.in_flight += 1;
        }
        self.requests.insert(
            id,
            InFlight {
                peer,
                deadline: now.monotonic().saturating_add(self.config.request_timeout),
                kind,
            },
        );
        id
    }

    fn available(&self, now: Now, min_height: u64) -> Vec<PeerId> {
        let mut peers: Vec<(usize, PeerId)> = self
            .peers
            .iter()
            .filter(|(_, p)| {
                p.best_height >= min_height
                    && p.in_flight < self.config.max_requests_per_peer
                    && p.cooldown_until <= now.monotonic()
            })
            .map(|(id, p)| (p.in_flight, *id))
            .collect();
        peers.sort();
        peers.into_iter().map(|(_, id)| id).collect()
    }

    fn schedule(&mut self, now: Now, chain: &impl SyncChain) -> Vec<SyncAction> {
        let mut actions = Vec::new();
        self.promote_noted(now, chain);
        // Nothing held and the chain has reached the last block we handed out (or passed
        // it through gossip): continue from the chain's own tip, not from the old anchor,
        // so blocks gossip delivered are not fetched again.
        if self.held.is_empty()
            && self
                .anchor
                .as_ref()
                .is_some_and(|a| a.header.height <= chain.best().0)
        {
            self.anchor = None;
        }
        self.emit_imports(&mut actions);
        self.schedule_headers(now, chain, &mut actions);
        self.schedule_bodies(now, chain, &mut actions);
        actions
    }

    /// Blocks handed out for import that the chain has not reached yet (0 when the
    /// pipeline's newest block is not above the tip, as on a side branch). Counted
    /// against the header and body windows, so a slow importer slows fetching instead
    /// of letting blocks pile up between us and the chain.
    fn import_backlog(&self, chain: &impl SyncChain) -> usize {
        self.anchor.as_ref().map_or(0, |anchor| {
            usize::try_from(anchor.header.height.saturating_sub(chain.best().0))
                .unwrap_or(usize::MAX)
        })
    }

    fn emit_imports(&mut self, actions: &mut Vec<SyncAction>) {
        while matches!(self.held.front(), Some(h) if matches!(h.body, Body::Received(..))) {
            let mut blocks = Vec::new();
            while blocks.len() < self.config.import_batch {
                let Some(front) = self.held.front() else {
                    break;
                };
                if !matches!(front.body, Body::Received(..)) {
                    break;
                }
                let Some(held) = self.held.pop_front() else {
                    break;
                };
                let Body::Received(block, body_from) = held.body else {
                    break;
                };
                if self.recent_sources.len() >= self.config.import_batch.saturating_mul(2) {
                    self.recent_sources.pop_front();
                }
                self.recent_sources
                    .push_back((held.hash, held.source, body_from));
                self.anchor = Some(Anchor {
                    header: held.header.header.clone(),
                    hash: held.hash,
                });
                blocks.push(*block);
            }
            actions.push(SyncAction::Import { blocks });
        }
    }

    fn schedule_headers(
        &mut self,
        now: Now,
        chain: &impl SyncChain,
        actions: &mut Vec<SyncAction>,
    ) {
        if self.headers_request.is_some() {
            return;
        }
        let room = self
            .config
            .max_held_headers
            .saturating_sub(self.held.len() + self.import_backlog(chain));
        if room == 0 {
            return;
        }
        let tail = self.tail_height(chain);
        // Rotate among the peers ahead of us: no single peer (or liar claiming a huge
        // height) decides which chain we see, and a liar meets its penalty early.
        let mut ahead = self.available(now, tail.saturating_add(1));
        ahead.sort();
        let Some(peer) = ahead.get(self.rotation % ahead.len().max(1)).copied() else {
            return;
        };
        self.rotation = self.rotation.wrapping_add(1);
        // Continue from what we hold, then fall back on the chain's own locator so a peer
        // whose chain branched below our tail still finds the fork point.
        let mut locator: Vec<Hash> = self
            .held
            .back()
            .map(|h| h.hash)
            .or(self.anchor.as_ref().map(|a| a.hash))
            .into_iter()
            .collect();
        for hash in block_locator(chain) {
            if locator.len() >= MAX_LOCATOR_LEN {
                break;
            }
            if !locator.contains(&hash) {
                locator.push(hash);
            }
        }
        let max = u32::try_from(room)
            .unwrap_or(u32::MAX)
            .min(self.config.header_batch);
        let request = self.new_request(now, peer, Kind::Headers { max });
        self.headers_request = Some(request);
        actions.push(SyncAction::RequestHeaders {
            peer,
            request,
            locator,
            max,
        });
    }

    fn schedule_bodies(&mut self, now: Now, chain: &impl SyncChain, actions: &mut Vec<SyncAction>) {
        let window = self
            .config
            .body_window
            .saturating_sub(self.import_backlog(chain))
            .min(self.held.len());
        let mut index = 0;
        while index < window {
            let Some(first) = self.held.get(index) else {
                break;
            };
            if !matches!(first.body, Body::Wanted) {
                index += 1;
                continue;
            }
            // A run of consecutive wanted bodies, up to one request's worth.
            let mut end = index;
            while end < window
                && end - index < self.config.bodies_per_request
                && matches!(self.held.get(end).map(|h| &h.body), Some(Body::Wanted))
            {
                end += 1;
            }
            let top = self
                .held
                .get(end - 1)
                .map(|h| h.header.header.height)
                .unwrap_or(0);
            let candidates = self.available(now, top);
            let excluded = |p: &PeerId, held: &VecDeque<Held>| {
                held.range(index..end).any(|h| h.failed.contains(p))
            };
            let peer = candidates
                .iter()
                .find(|p| !excluded(p, &self.held))
                .or(candidates.first())
                .copied();
            let Some(peer) = peer else {
                // Nobody can take this run now; later runs need at least as high peers.
                break;
            };
            let hashes: Vec<Hash> = self.held.range(index..end).map(|h| h.hash).collect();
            let request = self.new_request(
                now,
                peer,
                Kind::Bodies {
                    hashes: hashes.clone(),
                },
            );
            for held in self.held.range_mut(index..end) {
                held.body = Body::Requested(request);
            }
            actions.push(SyncAction::RequestBodies {
                peer,
                request,
                hashes,
            });
            index = end;
        }
    }
}

fn push_failed(failed: &mut Vec<PeerId>, peer: PeerId) {
    if failed.contains(&peer) {
        return;
    }
    if failed.len() >= MAX_FAILED_PER_BODY {
        failed.clear();
    }
    failed.push(peer);
}
