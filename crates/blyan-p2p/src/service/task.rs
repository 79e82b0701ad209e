//! The network task: owns the cores, turns events into their calls and their actions
//! into IO. Every handler here is synchronous; IO runs in spawned tasks that report back
//! as [`Done`] events, so the task never waits on a peer.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use blyan_consensus::Block;
use blyan_crypto::{Hash, KeyPair, PeerId};
use blyan_dht::{Dht, Key, NodeInfo};
use blyan_ops::metrics_collector;
use blyan_ops::{MessageStatus, MessageType, PenaltyReason, RejectionReason};
use blyan_security::{
    Direction, MessageKind, MessageMeta, Now, PeerEvent, Reject, SecurityManager, SystemClock,
};
use blyan_wire::{Connection, Endpoint, Protocol};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

use super::import::{Blame, ImportJob, import_loop};
use super::serve::{Event, Serving, read_loop};
use super::{
    BAN_FILE, ChainHost, Command, IMPORT_QUEUE, NetworkConfig, NetworkStatus, PeerInfo, seeds,
};
use crate::bounded_vec::BoundedVec;
use crate::chain::{check_gossip_block, verdict_of};
use crate::gossip::{GossipAction, GossipRouter, Validation};
use crate::message::{
    BlockBody, GOSSIP_PROTOCOL, GossipEnvelope, GossipMessage, GossipPayload, SYNC_PROTOCOL,
    SignedHeader, Status, SyncRequest, SyncResponse, WireMessage,
};
use crate::peer_set::{CandidateSource, DisconnectReason, PeerAction, PeerSet};
use crate::rng::SplitMix64;
use crate::sync::{RequestId, SyncAction, SyncProgress, SyncScheduler};

/// How often the security manager forgets expired state.
const MAINTAIN_EVERY: Duration = Duration::from_secs(10);

/// What a task spawned by the network task reports.
pub(super) enum Done {
    Accepted(Connection),
    DhtDialled(Connection),
    Dialled {
        peer: PeerId,
        result: Option<Connection>,
    },
    StatusAnswer {
        peer: PeerId,
        theirs: Option<Status>,
    },
    Pong {
        peer: PeerId,
        nonce: Option<u64>,
    },
    Headers {
        peer: PeerId,
        request: RequestId,
        headers: Option<Vec<SignedHeader>>,
    },
    Bodies {
        peer: PeerId,
        request: RequestId,
        bodies: Option<Vec<BlockBody>>,
    },
    Fetched {
        peer: PeerId,
        id: Hash,
        envelope: Option<Box<GossipEnvelope>>,
    },
    Validated {
        id: Hash,
        verdict: Validation,
    },
    Imported,
    ImportFailed {
        hash: Hash,
        blame: Blame,
    },
    Discovered(Vec<NodeInfo>),
}

/// An admitted peer connection.
struct Peer {
    connection: Connection,
    serial: u64,
    direction: Direction,
    status: Option<Status>,
    since: Instant,
}

pub(super) struct Task<H: ChainHost> {
    endpoint: Endpoint,
    key: Arc<KeyPair>,
    config: NetworkConfig,
    serving: Arc<Serving<H>>,
    events: mpsc::Receiver<Event>,
    commands: mpsc::Receiver<Command>,
    peers: PeerSet,
    sync: SyncScheduler,
    gossip: GossipRouter,
    conns: HashMap<PeerId, Peer>,
    slots: Arc<Semaphore>,
    next_serial: u64,
    importer: Option<mpsc::Sender<ImportJob>>,
    stopping: Arc<AtomicBool>,
    helpers: Vec<JoinHandle<()>>,
    rng: SplitMix64,
    discovering: bool,
    last_discovery: Option<Instant>,
    last_maintain: Instant,
    /// Per connected peer, when our next sync request to it may leave.
    next_request: HashMap<PeerId, Instant>,
}

impl<H: ChainHost> Task<H> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        endpoint: Endpoint,
        key: Arc<KeyPair>,
        host: Arc<H>,
        config: NetworkConfig,
        security: SecurityManager,
        clock: SystemClock,
        dht: Dht,
        commands: mpsc::Receiver<Command>,
    ) -> Self {
        let (events_tx, events) = mpsc::channel(config.event_queue.max(1));
        let seed = u64::from_le_bytes(key.peer_id().as_bytes()[..8].try_into().unwrap_or([0; 8]));
        let mut peers_config = config.peers.clone();
        peers_config.seed ^= seed;
        let mut gossip_config = config.gossip.clone();
        gossip_config.seed ^= seed;
        let serving = Arc::new(Serving {
            host,
            dht,
            events: events_tx,
            security: Arc::new(Mutex::new(security)),
            clock,
            max_bodies_bytes: config.max_bodies_bytes,
        });
        Self {
            endpoint,
            key,
            peers: PeerSet::new(peers_config),
            sync: SyncScheduler::new(config.sync.clone()),
            gossip: GossipRouter::new(gossip_config),
            slots: Arc::new(Semaphore::new(config.max_connections)),
            config,
            serving,
            events,
            commands,
            conns: HashMap::new(),
            next_serial: 0,
            importer: None,
            stopping: Arc::new(AtomicBool::new(false)),
            helpers: Vec::new(),
            rng: SplitMix64::new(seed),
            discovering: false,
            last_discovery: None,
            last_maintain: Instant::now(),
            next_request: HashMap::new(),
        }
    }

    pub(super) async fn run(mut self) {
        self.start_helpers();
        let mut tick = tokio::time::interval(self.config.tick);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                Some(event) = self.events.recv() => self.on_event(event),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        self.stop().await;
                        let _ = reply.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        self.stop().await;
                        return;
                    }
                },
                _ = tick.tick() => self.on_tick(),
            }
        }
    }

    fn start_helpers(&mut self) {
        let events = self.serving.events.clone();
        let endpoint = self.endpoint.clone();
        self.helpers.push(tokio::spawn(async move {
            while let Some(connection) = endpoint.accept().await {
                let done = Event::Task(Box::new(Done::Accepted(connection)));
                if events.send(done).await.is_err() {
                    return;
                }
            }
        }));

        let (sink, mut dialled) = mpsc::channel(64);
        self.serving.dht.route_dialled_connections(sink);
        let events = self.serving.events.clone();
        self.helpers.push(tokio::spawn(async move {
            while let Some(connection) = dialled.recv().await {
                let done = Event::Task(Box::new(Done::DhtDialled(connection)));
                if events.send(done).await.is_err() {
                    return;
                }
            }
        }));

        let (importer, batches) = mpsc::channel(IMPORT_QUEUE);
        self.importer = Some(importer);
        self.helpers.push(tokio::spawn(import_loop(
            Arc::clone(&self.serving.host),
            batches,
            self.serving.events.clone(),
            Arc::clone(&self.stopping),
        )));

        for (peer, addr) in self.config.bootstrap.clone() {
            if peer != self.key.peer_id() {
                self.peers
                    .add_candidate(peer, addr, CandidateSource::Bootstrap);
            }
        }
        let seeds = seeds(&self.config.bootstrap);
        if !seeds.is_empty() {
            let dht = self.serving.dht.clone();
            let events = self.serving.events.clone();
            tokio::spawn(async move {
                match dht.bootstrap(seeds).await {
                    Ok(found) => tracing::info!(nodes = found, "DHT bootstrap done"),
                    Err(error) => tracing::warn!(%error, "DHT bootstrap failed"),
                }
                let _ = events
                    .send(Event::Task(Box::new(Done::Discovered(Vec::new()))))
                    .await;
            });
            self.discovering = true;
        }
    }

    async fn stop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        if let Some(dir) = &self.config.data_dir {
            let now = self.now();
            if let Err(error) = self.security().save_bans(&dir.join(BAN_FILE), now) {
                tracing::warn!(%error, "could not save the ban file");
            }
        }
        for (_, peer) in self.conns.drain() {
            peer.connection.close();
        }
        self.importer = None;
        for helper in self.helpers.drain(..) {
            helper.abort();
            let _ = helper.await;
        }
    }

    fn now(&self) -> Now {
        self.serving.clock.now()
    }

    fn security(&self) -> MutexGuard<'_, SecurityManager> {
        lock(&self.serving.security)
    }

    /// Runs one sync core call against the chain and carries out its actions (nothing
    /// once the chain is closed).
    fn drive_sync(&mut self, call: impl FnOnce(&mut SyncScheduler, &H::Chain) -> Vec<SyncAction>) {
        let sync = &mut self.sync;
        if let Some(actions) = self.serving.host.with_chain(|chain| call(sync, chain)) {
            self.run_sync(actions);
        }
    }

    fn local_status(&self) -> Option<Status> {
        self.serving.host.local_status()
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Publish(payload) => {
                let now = self.now();
                match self.gossip.publish(now, &self.key, *payload) {
                    Ok(actions) => self.run_gossip(actions),
                    Err(error) => tracing::warn!(%error, "could not publish"),
                }
            }
            Command::Peers(reply) => {
                let _ = reply.send(self.peer_infos());
            }
            Command::Status(reply) => {
                let _ = reply.send(self.status());
            }
            Command::Shutdown(_) => {}
        }
    }

    fn peer_infos(&self) -> Vec<PeerInfo> {
        let now = self.now();
        let security = self.security();
        let mut infos: Vec<PeerInfo> = self
            .conns
            .iter()
            .map(|(id, peer)| PeerInfo {
                peer_id: *id,
                addr: peer.connection.remote_addr(),
                direction: peer.direction,
                ready: peer.status.is_some(),
                best_height: peer.status.as_ref().map_or(0, |s| s.best_height),
                finalized_height: peer.status.as_ref().map_or(0, |s| s.finalized_height),
                score: security.score(now, id),
                connected_secs: peer.since.elapsed().as_secs(),
            })
            .collect();
        infos.sort_by_key(|p| p.peer_id);
        infos
    }

    fn status(&self) -> NetworkStatus {
        let now = self.now();
        let count = |d: Direction| self.conns.values().filter(|p| p.direction == d).count();
        let sync = self.progress().unwrap_or(SyncProgress {
            current_height: 0,
            target_height: 0,
            ratio: 1.0,
            peers_used: 0,
            held_headers: 0,
            requests_in_flight: 0,
        });
        NetworkStatus {
            peers: self.conns.values().filter(|p| p.status.is_some()).count(),
            inbound: count(Direction::Inbound),
            outbound: count(Direction::Outbound),
            candidates: self.peers.candidates(),
            sync,
            banned: self.security().bans().banned_peers(now.monotonic()).count(),
            dht_nodes: 0,
            gossip: self.gossip.stats(),
        }
    }

    fn progress(&self) -> Option<SyncProgress> {
        let sync = &self.sync;
        self.serving.host.with_chain(|chain| sync.progress(chain))
    }

    fn on_tick(&mut self) {
        let now = self.now();
        let actions = {
            let mut security = lock(&self.serving.security);
            if self.last_maintain.elapsed() >= MAINTAIN_EVERY {
                security.maintain(now);
                self.last_maintain = Instant::now();
            }
            self.peers.poll(now, &mut security)
        };
        self.run_peer(actions);
        self.drive_sync(|sync, chain| sync.poll(now, chain));
        let actions = self.gossip.poll(now);
        self.run_gossip(actions);
        if let Some(progress) = self.progress() {
            progress.record();
        }
        let count = |d: Direction| self.conns.values().filter(|p| p.direction == d).count();
        metrics_collector::set_peers(blyan_ops::Direction::Inbound, count(Direction::Inbound));
        metrics_collector::set_peers(blyan_ops::Direction::Outbound, count(Direction::Outbound));
        let banned = self.security().bans().banned_peers(now.monotonic()).count();
        metrics_collector::set_banned_peers(banned);
        self.maybe_discover();
    }

    fn maybe_discover(&mut self) {
        let outbound = self
            .conns
            .values()
            .filter(|p| p.direction == Direction::Outbound)
            .count();
        let due = self
            .last_discovery
            .is_none_or(|t| t.elapsed() >= self.config.discovery_interval);
        if self.discovering || !due || outbound >= self.config.peers.target_outbound {
            return;
        }
        self.discovering = true;
        self.last_discovery = Some(Instant::now());
        let mut target = [0u8; 32];
        for chunk in target.chunks_mut(8) {
            chunk.copy_from_slice(&self.rng.next_u64().to_le_bytes());
        }
        let dht = self.serving.dht.clone();
        let events = self.serving.events.clone();
        tokio::spawn(async move {
            let found = dht
                .find_node(Key::from_bytes(target))
                .await
                .unwrap_or_default();
            let _ = events
                .send(Event::Task(Box::new(Done::Discovered(found))))
                .await;
        });
    }

    fn on_event(&mut self, event: Event) {
        match event {
            Event::Closed { peer, serial } => {
                if self.conns.get(&peer).is_some_and(|p| p.serial == serial) {
                    self.conns.remove(&peer);
                    self.next_request.remove(&peer);
                    let now = self.now();
                    let actions =
                        self.peers
                            .on_disconnected(now, &mut lock(&self.serving.security), peer);
                    tracing::debug!(%peer, "peer connection closed");
                    self.run_peer(actions);
                }
            }
            Event::Gossip { peer, addr, bytes } => self.on_gossip(peer, addr, &bytes),
            Event::InboundStatus {
                peer,
                connection,
                serial,
                theirs,
                reply,
            } => {
                let answer = self.on_inbound_status(peer, connection, serial, theirs);
                let _ = reply.send(answer);
            }
            Event::GetGossip { peer, id, reply } => {
                let envelope = self.gossip.envelope(&id).cloned();
                let _ = reply.send((envelope, self.gossip.knows(&id, &peer)));
            }
            Event::Penalty { peer, event } => self.report(peer, event),
            Event::Task(done) => self.on_done(*done),
        }
    }

    fn on_inbound_status(
        &mut self,
        peer: PeerId,
        connection: Connection,
        serial: u64,
        theirs: Status,
    ) -> Option<Status> {
        let ours = self.local_status()?;
        if let Some(known) = self.conns.get_mut(&peer) {
            // Already a peer (perhaps over our own connection): their status refreshes
            // what sync knows of them.
            if known.status.is_some() {
                known.status = Some(theirs.clone());
                let now = self.now();
                self.drive_sync(|sync, chain| sync.on_status(now, chain, peer, &theirs));
            }
            return Some(ours);
        }
        if crate::status::check_status(&ours, &theirs).is_err() {
            tracing::info!(%peer, "inbound peer follows another chain; refused");
            return None;
        }
        let now = self.now();
        self.conns.insert(
            peer,
            Peer {
                connection: connection.clone(),
                serial,
                direction: Direction::Inbound,
                status: None,
                since: Instant::now(),
            },
        );
        let ip = connection.remote_addr().ip();
        let actions = self.peers.on_connected(
            now,
            &mut lock(&self.serving.security),
            peer,
            ip,
            Direction::Inbound,
        );
        // A peer dropped for its score that keeps coming back before the score recovered
        // loses more of it, so persistence ends in a ban.
        let returning = actions.iter().any(|a| {
            matches!(a, PeerAction::Disconnect {
                peer: p,
                reason: DisconnectReason::Rejected(Reject::LowScore),
            } if *p == peer)
        });
        self.run_peer(actions);
        if returning {
            tracing::info!(%peer, "a peer dropped for its score reconnected too soon");
            self.report(peer, PeerEvent::RateLimited);
        }
        self.conns.contains_key(&peer).then_some(ours)
    }

    fn on_gossip(&mut self, peer: PeerId, addr: SocketAddr, bytes: &[u8]) {
        if self.conns.get(&peer).is_none_or(|p| p.status.is_none()) {
            metrics_collector::record_message(MessageType::Other, MessageStatus::Dropped);
            return;
        }
        let message = match GossipMessage::decode(bytes) {
            Ok(message) => message,
            Err(_) => {
                metrics_collector::record_message(MessageType::Other, MessageStatus::Invalid);
                self.report(peer, PeerEvent::InvalidMessage);
                return;
            }
        };
        let (kind, label, height) = match &message {
            GossipMessage::Envelope(envelope) => match &envelope.payload {
                GossipPayload::Block(block) => (
                    MessageKind::Block,
                    MessageType::BlockGossip,
                    Some(block.header.height),
                ),
                GossipPayload::Tx(_) => (MessageKind::Transaction, MessageType::TxGossip, None),
            },
            GossipMessage::Announce(announce) if announce.is_block => (
                MessageKind::Control,
                MessageType::BlockGossip,
                Some(announce.height),
            ),
            GossipMessage::Announce(_) => (MessageKind::Control, MessageType::TxGossip, None),
        };
        let now = self.now();
        let checked = self.security().check_message(
            now,
            &peer,
            addr.ip(),
            &MessageMeta::direct(kind, bytes.len()),
        );
        if let Err(reject) = checked {
            count_rejection(reject);
            metrics_collector::record_message(label, MessageStatus::RateLimited);
            if matches!(reject, Reject::RateLimited { .. } | Reject::MessageTooLarge) {
                self.report(peer, PeerEvent::RateLimited);
            }
            return;
        }
        metrics_collector::record_message(label, MessageStatus::Received);
        if let Some(height) = height {
            self.drive_sync(|sync, chain| sync.note_height(now, chain, &peer, height));
        }
        let actions = self.gossip.on_message(now, peer, message);
        self.run_gossip(actions);
    }

    fn on_done(&mut self, done: Done) {
        let now = self.now();
        match done {
            Done::Accepted(connection) => {
                if self.spawn_reader(connection.clone()).is_some() {
                    self.serving.dht.adopt_connection(connection);
                }
            }
            Done::DhtDialled(connection) => {
                let _ = self.spawn_reader(connection);
            }
            Done::Dialled { peer, result } => self.on_dialled(peer, result),
            Done::StatusAnswer { peer, theirs } => {
                let Some(theirs) = theirs else {
                    return;
                };
                let Some(ours) = self.local_status() else {
                    return;
                };
                let actions = self.peers.on_status(
                    now,
                    &mut lock(&self.serving.security),
                    peer,
                    &ours,
                    theirs,
                );
                self.run_peer(actions);
            }
            Done::Pong { peer, nonce } => {
                if let Some(nonce) = nonce {
                    self.peers.on_pong(&peer, nonce);
                }
            }
            Done::Headers {
                peer,
                request,
                headers,
            } => {
                self.drive_sync(|sync, chain| match headers {
                    Some(headers) => sync.on_headers(now, chain, peer, request, headers),
                    None => sync.on_request_failed(now, chain, peer, request),
                });
            }
            Done::Bodies {
                peer,
                request,
                bodies,
            } => {
                self.drive_sync(|sync, chain| match bodies {
                    Some(bodies) => sync.on_bodies(now, chain, peer, request, bodies),
                    None => sync.on_request_failed(now, chain, peer, request),
                });
            }
            Done::Fetched { peer, id, envelope } => {
                let actions = self.gossip.on_fetched(now, peer, id, envelope.map(|e| *e));
                self.run_gossip(actions);
            }
            Done::Validated { id, verdict } => {
                let actions = self.gossip.validated(&id, verdict);
                self.run_gossip(actions);
            }
            Done::Imported => {
                self.drive_sync(|sync, chain| sync.poll(now, chain));
            }
            Done::ImportFailed { hash, blame } => {
                self.drive_sync(|sync, chain| match blame {
                    Blame::Body => sync.on_body_refused(now, chain, &hash),
                    Blame::Chain => sync.on_import_failed(now, chain, &hash),
                });
            }
            Done::Discovered(nodes) => {
                self.discovering = false;
                let me = self.key.peer_id();
                for node in nodes {
                    if node.peer_id() == me {
                        continue;
                    }
                    if let Some(addr) = node.addrs().first() {
                        self.peers.add_candidate(
                            node.peer_id(),
                            *addr,
                            CandidateSource::Discovered,
                        );
                    }
                }
            }
        }
    }

    fn on_dialled(&mut self, peer: PeerId, result: Option<Connection>) {
        let now = self.now();
        let Some(connection) = result else {
            self.peers.on_dial_failed(now, &peer);
            return;
        };
        let Some(serial) = self.spawn_reader(connection.clone()) else {
            self.peers.on_dial_failed(now, &peer);
            return;
        };
        self.serving.dht.adopt_connection(connection.clone());
        let ip = connection.remote_addr().ip();
        if self.conns.contains_key(&peer) {
            // The peer dialled us first; keep that connection.
            let mut security = lock(&self.serving.security);
            let _ = self
                .peers
                .on_connected(now, &mut security, peer, ip, Direction::Outbound);
            connection.close();
            return;
        }
        self.conns.insert(
            peer,
            Peer {
                connection,
                serial,
                direction: Direction::Outbound,
                status: None,
                since: Instant::now(),
            },
        );
        let actions = self.peers.on_connected(
            now,
            &mut lock(&self.serving.security),
            peer,
            ip,
            Direction::Outbound,
        );
        self.run_peer(actions);
    }

    /// Starts the reader of a new connection; `None` (and the connection closed) when
    /// every reader slot is taken.
    fn spawn_reader(&mut self, connection: Connection) -> Option<u64> {
        let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() else {
            tracing::debug!(peer = %connection.remote_peer_id(), "connection limit reached; closing");
            connection.close();
            return None;
        };
        self.next_serial = self.next_serial.wrapping_add(1);
        let serial = self.next_serial;
        tokio::spawn(read_loop(
            Arc::clone(&self.serving),
            connection,
            serial,
            slot,
        ));
        Some(serial)
    }

    fn report(&mut self, peer: PeerId, event: PeerEvent) {
        if let Some(reason) = penalty_reason(event) {
            metrics_collector::record_penalty(reason);
        }
        let now = self.now();
        let actions = self
            .peers
            .report(now, &mut lock(&self.serving.security), peer, event);
        self.run_peer(actions);
    }

    fn spawn_done(&self, work: impl Future<Output = Done> + Send + 'static) {
        let events = self.serving.events.clone();
        tokio::spawn(async move {
            let done = work.await;
            let _ = events.send(Event::Task(Box::new(done))).await;
        });
    }

    fn run_peer(&mut self, actions: Vec<PeerAction>) {
        for action in actions {
            match action {
                PeerAction::Dial { peer, addr } => {
                    let endpoint = self.endpoint.clone();
                    self.spawn_done(async move {
                        let result = match endpoint.dial(addr, Some(peer)).await {
                            Ok(connection) => Some(connection),
                            Err(error) => {
                                tracing::debug!(%peer, %addr, %error, "dial failed");
                                None
                            }
                        };
                        Done::Dialled { peer, result }
                    });
                }
                PeerAction::SendStatus { peer } => {
                    let (Some(connection), Some(ours)) =
                        (self.connection(&peer), self.local_status())
                    else {
                        continue;
                    };
                    metrics_collector::record_message(MessageType::Handshake, MessageStatus::Sent);
                    self.spawn_done(async move {
                        let theirs = match request(&connection, SyncRequest::Status(ours)).await {
                            Some(SyncResponse::Status(theirs)) => Some(theirs),
                            _ => None,
                        };
                        Done::StatusAnswer { peer, theirs }
                    });
                }
                PeerAction::Ping { peer, nonce } => {
                    let Some(connection) = self.connection(&peer) else {
                        continue;
                    };
                    self.spawn_done(async move {
                        let nonce = match request(&connection, SyncRequest::Ping { nonce }).await {
                            Some(SyncResponse::Pong { nonce }) => Some(nonce),
                            _ => None,
                        };
                        Done::Pong { peer, nonce }
                    });
                }
                PeerAction::Disconnect { peer, reason } => {
                    if let DisconnectReason::Rejected(reject) = reason {
                        count_rejection(reject);
                    }
                    self.next_request.remove(&peer);
                    if let Some(gone) = self.conns.remove(&peer) {
                        tracing::info!(%peer, %reason, "disconnecting peer");
                        gone.connection.close();
                    }
                }
                PeerAction::Ready { peer, status } => {
                    let first = self.conns.get(&peer).is_some_and(|p| p.status.is_none());
                    if let Some(known) = self.conns.get_mut(&peer) {
                        known.status = Some(status.clone());
                    }
                    if first {
                        tracing::info!(%peer, best_height = status.best_height, "peer ready");
                        self.gossip.add_peer(peer);
                    }
                    let now = self.now();
                    self.drive_sync(|sync, chain| sync.on_status(now, chain, peer, &status));
                }
                PeerAction::Gone { peer } => {
                    self.gossip.remove_peer(&peer);
                    let now = self.now();
                    self.drive_sync(|sync, chain| sync.remove_peer(now, chain, &peer));
                }
            }
        }
    }

    /// How long our next sync request to `peer` waits, so we stay under the rate its
    /// security manager allows (`sync_requests_per_second`). Sync keeps at most
    /// `max_requests_per_peer` requests per peer outstanding, so few ever wait.
    fn pace(&mut self, peer: &PeerId) -> Duration {
        let interval = Duration::from_secs(1) / self.config.sync_requests_per_second.max(1);
        let now = Instant::now();
        let slot = self
            .next_request
            .get(peer)
            .copied()
            .filter(|t| *t > now)
            .unwrap_or(now);
        self.next_request
            .insert(*peer, slot.checked_add(interval).unwrap_or(slot));
        slot.saturating_duration_since(now)
    }

    /// Sends `asked` to `peer` once its pacing allows, and reports the answer (`None` on
    /// any failure, or when the peer is not connected) through `done`.
    fn paced_request(
        &mut self,
        peer: PeerId,
        asked: SyncRequest,
        done: impl FnOnce(Option<SyncResponse>) -> Done + Send + 'static,
    ) {
        let connection = self.connection(&peer);
        let wait = self.pace(&peer);
        self.spawn_done(async move {
            tokio::time::sleep(wait).await;
            let answer = match connection {
                Some(c) => request(&c, asked).await,
                None => None,
            };
            done(answer)
        });
    }

    /// A gossip fetch: a block fetch is paced like a sync request (it may be a megabyte
    /// to upload); a transaction fetch answers the peer's own announcement, costs it a
    /// control message, and goes at once, so a burst of transactions is not held back
    /// (and timed out) behind the pacing.
    fn gossip_fetch(
        &mut self,
        peer: PeerId,
        asked: SyncRequest,
        is_block: bool,
        done: impl FnOnce(Option<SyncResponse>) -> Done + Send + 'static,
    ) {
        if is_block {
            self.paced_request(peer, asked, done);
            return;
        }
        let connection = self.connection(&peer);
        self.spawn_done(async move {
            let answer = match connection {
                Some(c) => request(&c, asked).await,
                None => None,
            };
            done(answer)
        });
    }

    fn connection(&self, peer: &PeerId) -> Option<Connection> {
        self.conns.get(peer).map(|p| p.connection.clone())
    }

    fn run_sync(&mut self, actions: Vec<SyncAction>) {
        for action in actions {
            match action {
                SyncAction::RequestHeaders {
                    peer,
                    request: id,
                    locator,
                    max,
                } => {
                    let asked = SyncRequest::GetHeaders {
                        locator: BoundedVec::truncating(locator),
                        max,
                    };
                    self.paced_request(peer, asked, move |answer| Done::Headers {
                        peer,
                        request: id,
                        headers: match answer {
                            Some(SyncResponse::Headers(h)) => Some(h.into_inner()),
                            _ => None,
                        },
                    });
                }
                SyncAction::RequestBodies {
                    peer,
                    request: id,
                    hashes,
                } => {
                    let asked = SyncRequest::GetBodies {
                        hashes: BoundedVec::truncating(hashes),
                    };
                    self.paced_request(peer, asked, move |answer| Done::Bodies {
                        peer,
                        request: id,
                        bodies: match answer {
                            Some(SyncResponse::Bodies(b)) => Some(b.into_inner()),
                            _ => None,
                        },
                    });
                }
                SyncAction::Import { blocks } => self.import(blocks),
                SyncAction::Penalize { peer, fault } => {
                    tracing::info!(%peer, fault = fault.as_str(), "sync penalty");
                    self.report(peer, fault.event());
                }
            }
        }
    }

    fn import(&self, blocks: Vec<Block>) {
        let Some(importer) = &self.importer else {
            return;
        };
        if let Err(error) = importer.try_send(ImportJob::Synced(blocks)) {
            // Sync's own backlog bound keeps this from happening (see IMPORT_QUEUE).
            tracing::warn!(%error, "import queue full; synced blocks dropped");
        }
    }

    fn run_gossip(&mut self, actions: Vec<GossipAction>) {
        for action in actions {
            match action {
                GossipAction::Send { to, message } => {
                    let Some(connection) = self.connection(&to) else {
                        continue;
                    };
                    let Ok(bytes) = message.encode() else {
                        continue;
                    };
                    tokio::spawn(async move {
                        if let Err(error) = connection
                            .send_message_bytes(Protocol(GOSSIP_PROTOCOL), &bytes)
                            .await
                        {
                            tracing::debug!(peer = %to, %error, "gossip send failed");
                        }
                    });
                }
                GossipAction::Fetch { from, id, is_block } => {
                    let asked = SyncRequest::GetGossip { id };
                    self.gossip_fetch(from, asked, is_block, move |answer| Done::Fetched {
                        peer: from,
                        id,
                        envelope: match answer {
                            Some(SyncResponse::Gossip(e)) => e,
                            _ => None,
                        },
                    });
                }
                GossipAction::Deliver { id, envelope, .. } => self.deliver(id, *envelope),
                GossipAction::Penalize { peer, event, fault } => {
                    tracing::info!(%peer, ?fault, "gossip penalty");
                    self.report(peer, event);
                }
            }
        }
    }

    /// Validates a delivered payload off the task: a block against its parent under the
    /// chain lock, then its signatures without it (and, if all checks out, into the
    /// importer, verified), a transaction into the pool.
    fn deliver(&self, id: Hash, envelope: GossipEnvelope) {
        let host = Arc::clone(&self.serving.host);
        let importer = self.importer.clone();
        let now_ms = self.now().unix_ms();
        self.spawn_done(async move {
            let payload = envelope.payload;
            let verdict = tokio::task::spawn_blocking(move || match payload {
                GossipPayload::Block(block) => {
                    let verdict = host
                        .with_chain(|chain| check_gossip_block(chain, &block, now_ms))
                        .unwrap_or(Validation::Ignore);
                    if verdict != Validation::Accept {
                        return (verdict, None);
                    }
                    match host.validator().pre_verify(block) {
                        Ok(verified) => (Validation::Accept, Some(verified)),
                        Err(error) => (verdict_of(Err(error)), None),
                    }
                }
                GossipPayload::Tx(tx) => (host.submit_tx(tx), None),
            })
            .await
            .unwrap_or((Validation::Ignore, None));
            if let (Some(block), Some(importer)) = (verdict.1, importer)
                && importer
                    .try_send(ImportJob::Gossiped(Box::new(block)))
                    .is_err()
            {
                tracing::debug!("import queue full; a gossiped block waits for sync");
            }
            Done::Validated {
                id,
                verdict: verdict.0,
            }
        });
    }
}

/// One request on the sync protocol; `None` on any failure (timeouts are the transport's).
async fn request(connection: &Connection, message: SyncRequest) -> Option<SyncResponse> {
    match connection
        .request::<SyncRequest, SyncResponse>(Protocol(SYNC_PROTOCOL), &message)
        .await
    {
        Ok(response) => Some(response),
        Err(error) => {
            tracing::debug!(peer = %connection.remote_peer_id(), %error, "sync request failed");
            None
        }
    }
}

const fn penalty_reason(event: PeerEvent) -> Option<PenaltyReason> {
    Some(match event {
        PeerEvent::InvalidBlock => PenaltyReason::InvalidBlock,
        PeerEvent::InvalidTransaction => PenaltyReason::InvalidTransaction,
        PeerEvent::InvalidMessage => PenaltyReason::MalformedMessage,
        PeerEvent::Timeout => PenaltyReason::Timeout,
        PeerEvent::RateLimited => PenaltyReason::RateLimitExceeded,
        PeerEvent::InvalidSignature => PenaltyReason::InvalidSignature,
        PeerEvent::Equivocation => PenaltyReason::ProtocolViolation,
        _ => return None,
    })
}

/// Locks the security manager; a panic elsewhere while it was held leaves it usable (its
/// tables are consistent after every call).
fn lock(security: &Mutex<SecurityManager>) -> MutexGuard<'_, SecurityManager> {
    security.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The `blyan_security_rejections_total` reason of a refusal, for the refusals that are
/// the security layer protecting us (not bookkeeping such as a second connection).
pub(super) const fn rejection_reason(reject: Reject) -> Option<RejectionReason> {
    Some(match reject {
        Reject::Banned | Reject::IpBanned | Reject::LowScore => RejectionReason::Banned,
        Reject::TooManyAttempts | Reject::RateLimited { .. } => RejectionReason::RateLimited,
        Reject::InboundFull | Reject::OutboundFull => RejectionReason::TooManyPeers,
        Reject::TooManyPerIp => RejectionReason::TooManyPerIp,
        Reject::TooManyPerSubnet => RejectionReason::TooManyPerSubnet,
        Reject::MessageTooLarge => RejectionReason::Oversized,
        Reject::Replay | Reject::NonceTooOld => RejectionReason::Replay,
        Reject::Stale | Reject::FromFuture => RejectionReason::StaleTimestamp,
        Reject::AlreadyConnected | Reject::UnknownConnection => return None,
    })
}

/// Counts a security refusal in `blyan_security_rejections_total{reason}`.
pub(super) fn count_rejection(reject: Reject) {
    if let Some(reason) = rejection_reason(reject) {
        metrics_collector::record_security_rejection(reason);
    }
}
