//! Headers-first sync in simulated time: several fresh nodes sync one honest chain from
//! honest servers, servers that send bad headers, servers that send bad bodies, servers
//! that forge transaction signatures (which `tx_root` does not cover) and servers that
//! never answer. Every step checks the scheduler's bounds.

use std::collections::{BTreeMap, HashSet};

use blyan_consensus::Block;
use blyan_crypto::{KeyPair, PeerId, Signature};
use blyan_p2p::{
    BlockBody, BoundedVec, RequestId, SignedHeader, SyncAction, SyncConfig, SyncFault,
    SyncScheduler, serve_bodies, serve_headers,
};
use proptest::prelude::*;

use crate::common::{MemChain, build_chain, now, peer, transfer};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Honest,
    /// Every header after the first carries a bad signature.
    BadHeaders,
    /// Every body carries an extra transaction (its `tx_root` no longer matches).
    BadBodies,
    /// Bodies match their headers but a transaction signature is forged (`tx_root` does
    /// not cover signatures): only the importer's verification catches it.
    ForgedSignatures,
    /// Never answers.
    Silent,
}

struct Server {
    id: PeerId,
    behaviour: Behaviour,
    chain: MemChain,
}

struct Node {
    sync: SyncScheduler,
    chain: MemChain,
}

enum Reply {
    Headers(Vec<SignedHeader>),
    Bodies(Vec<BlockBody>),
}

struct Pending {
    node: usize,
    peer: PeerId,
    request: RequestId,
    reply: Reply,
}

struct Sim {
    servers: Vec<Server>,
    nodes: Vec<Node>,
    queue: BTreeMap<(u64, u64), Pending>,
    seq: u64,
    rng: u64,
    penalties: Vec<(PeerId, SyncFault)>,
    max_held: usize,
    cap: usize,
    window: usize,
    per_peer: usize,
}

fn config() -> SyncConfig {
    SyncConfig {
        header_batch: 40,
        max_held_headers: 64,
        body_window: 24,
        bodies_per_request: 6,
        max_requests_per_peer: 2,
        ..SyncConfig::default()
    }
}

impl Sim {
    fn new(honest: &[Block], behaviours: &[Behaviour], nodes: usize, seed: u64) -> Self {
        let servers = behaviours
            .iter()
            .enumerate()
            .map(|(i, behaviour)| Server {
                id: peer(100 + i as u32),
                behaviour: *behaviour,
                chain: MemChain::new(honest.to_vec()),
            })
            .collect();
        let genesis_only = honest.iter().take(1).cloned().collect::<Vec<_>>();
        let config = config();
        let nodes = (0..nodes)
            .map(|_| Node {
                sync: SyncScheduler::new(config.clone()),
                chain: MemChain::new(genesis_only.clone()),
            })
            .collect();
        Self {
            servers,
            nodes,
            queue: BTreeMap::new(),
            seq: 0,
            rng: seed | 1,
            penalties: Vec::new(),
            max_held: 0,
            cap: config.max_held_headers,
            window: config.body_window,
            per_peer: config.max_requests_per_peer,
        }
    }

    fn latency(&mut self) -> u64 {
        // xorshift64: a seeded, reproducible 20..100 ms.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        20 + self.rng % 80
    }

    /// Every node learns every server's status.
    fn announce_servers(&mut self, t: u64) {
        for n in 0..self.nodes.len() {
            for s in 0..self.servers.len() {
                let (id, status) = (self.servers[s].id, self.servers[s].chain.status());
                let node = &mut self.nodes[n];
                let actions = node.sync.on_status(now(t), &node.chain, id, &status);
                self.handle(n, t, actions);
            }
        }
    }

    fn handle(&mut self, n: usize, t: u64, actions: Vec<SyncAction>) {
        for action in actions {
            match action {
                SyncAction::RequestHeaders {
                    peer,
                    request,
                    locator,
                    max,
                } => {
                    let Some(server) = self.servers.iter().find(|s| s.id == peer) else {
                        continue;
                    };
                    let mut headers = serve_headers(&server.chain, &locator, max).into_inner();
                    match server.behaviour {
                        Behaviour::Silent => continue,
                        Behaviour::BadHeaders => {
                            for h in headers.iter_mut().skip(1) {
                                h.signature = Signature::from_bytes([1; 64]);
                            }
                        }
                        _ => {}
                    }
                    self.send(t, n, peer, request, Reply::Headers(headers));
                }
                SyncAction::RequestBodies {
                    peer,
                    request,
                    hashes,
                } => {
                    let Some(server) = self.servers.iter().find(|s| s.id == peer) else {
                        continue;
                    };
                    let mut bodies = serve_bodies(&server.chain, &hashes, 1 << 20).into_inner();
                    match server.behaviour {
                        Behaviour::Silent => continue,
                        Behaviour::BadBodies => {
                            for body in &mut bodies {
                                let mut txs = body.txs.to_vec();
                                txs.push(transfer(&KeyPair::from_seed(&[77; 32]), 0));
                                if let Ok(txs) = BoundedVec::try_new(txs, "txs") {
                                    body.txs = txs;
                                }
                            }
                        }
                        Behaviour::ForgedSignatures => {
                            for body in &mut bodies {
                                let mut txs = body.txs.to_vec();
                                for tx in &mut txs {
                                    tx.signature = Signature::from_bytes([3; 64]);
                                }
                                if let Ok(txs) = BoundedVec::try_new(txs, "txs") {
                                    body.txs = txs;
                                }
                            }
                        }
                        _ => {}
                    }
                    self.send(t, n, peer, request, Reply::Bodies(bodies));
                }
                SyncAction::Import { blocks } => {
                    for block in blocks {
                        let node = &mut self.nodes[n];
                        assert_eq!(block.height(), node.chain.height() + 1, "imports in order");
                        if let Some(more) = node.chain.import_synced(&mut node.sync, now(t), block)
                        {
                            self.handle(n, t, more);
                            break;
                        }
                    }
                }
                SyncAction::Penalize { peer, fault } => self.penalties.push((peer, fault)),
            }
        }
        self.check_bounds(n);
    }

    fn send(&mut self, t: u64, node: usize, peer: PeerId, request: RequestId, reply: Reply) {
        let at = t + self.latency();
        self.seq += 1;
        self.queue.insert(
            (at, self.seq),
            Pending {
                node,
                peer,
                request,
                reply,
            },
        );
    }

    fn check_bounds(&mut self, n: usize) {
        let sync = &self.nodes[n].sync;
        assert!(sync.held_headers() <= self.cap);
        self.max_held = self.max_held.max(sync.held_headers());
        let mut hashes = HashSet::new();
        let mut per_peer: BTreeMap<PeerId, usize> = BTreeMap::new();
        let mut bodies = 0;
        for (_, peer, requested) in sync.in_flight() {
            *per_peer.entry(peer).or_default() += 1;
            for hash in requested {
                bodies += 1;
                assert!(hashes.insert(*hash), "a body is never in two requests");
            }
        }
        assert!(bodies <= self.window, "bodies in flight stay in the window");
        assert!(per_peer.values().all(|c| *c <= self.per_peer));
    }

    /// Runs until every node has `height` or `limit_ms` of simulated time passed.
    fn run(&mut self, mut t: u64, height: u64, limit_ms: u64) -> u64 {
        const TICK_MS: u64 = 250;
        let mut next_tick = t + TICK_MS;
        while t < limit_ms && self.nodes.iter().any(|n| n.chain.height() < height) {
            let next_event = self.queue.keys().next().map(|(at, _)| *at);
            if next_event.is_some_and(|at| at <= next_tick) {
                let Some(((at, _), pending)) = self.queue.pop_first() else {
                    break;
                };
                t = at;
                let node = &mut self.nodes[pending.node];
                let actions = match pending.reply {
                    Reply::Headers(h) => {
                        node.sync
                            .on_headers(now(t), &node.chain, pending.peer, pending.request, h)
                    }
                    Reply::Bodies(b) => {
                        node.sync
                            .on_bodies(now(t), &node.chain, pending.peer, pending.request, b)
                    }
                };
                self.handle(pending.node, t, actions);
            } else {
                t = next_tick;
                next_tick += TICK_MS;
                for n in 0..self.nodes.len() {
                    let node = &mut self.nodes[n];
                    let actions = node.sync.poll(now(t), &node.chain);
                    self.handle(n, t, actions);
                }
            }
        }
        t
    }

    fn faults_of(&self, id: PeerId) -> Vec<SyncFault> {
        self.penalties
            .iter()
            .filter(|(p, _)| *p == id)
            .map(|(_, f)| *f)
            .collect()
    }
}

#[test]
fn nodes_sync_the_honest_chain_despite_liars_and_silent_peers() {
    let honest = build_chain(160, 0);
    let behaviours = [
        Behaviour::Honest,
        Behaviour::BadHeaders,
        Behaviour::Honest,
        Behaviour::BadBodies,
        Behaviour::Silent,
        Behaviour::ForgedSignatures,
        Behaviour::Honest,
    ];
    let mut sim = Sim::new(&honest, &behaviours, 2, 42);
    sim.announce_servers(0);
    let t = sim.run(0, 160, 600_000);
    for node in &sim.nodes {
        assert_eq!(
            node.chain.blocks(),
            &honest[..],
            "the honest chain, in order"
        );
        let progress = node.sync.progress(&node.chain);
        assert_eq!(progress.current_height, 160);
        assert_eq!(progress.ratio, 1.0);
        assert!(progress.peers_used >= 2, "bodies came from several peers");
    }
    assert!(sim.max_held <= 64);
    for server in &sim.servers {
        let faults = sim.faults_of(server.id);
        match server.behaviour {
            Behaviour::Honest => assert!(faults.is_empty(), "honest peers are not blamed"),
            Behaviour::BadHeaders => assert!(faults.contains(&SyncFault::InvalidHeader)),
            Behaviour::BadBodies | Behaviour::ForgedSignatures => {
                assert!(faults.contains(&SyncFault::InvalidBody));
                assert!(!faults.contains(&SyncFault::InvalidChain), "{faults:?}");
            }
            Behaviour::Silent => assert!(faults.contains(&SyncFault::Timeout)),
        }
    }
    assert!(t < 600_000, "synced in {t} ms of simulated time");
    eprintln!(
        "sync of 160 blocks by 2 nodes from 7 servers (bad headers, bad bodies, forged signatures, silent): \
         {t} ms simulated, {} penalties",
        sim.penalties.len()
    );
}

#[test]
fn a_node_that_fell_behind_catches_up_by_itself() {
    let honest = build_chain(120, 0);
    let mut sim = Sim::new(
        &honest[..=50],
        &[Behaviour::Honest, Behaviour::Honest],
        1,
        7,
    );
    sim.announce_servers(0);
    let t = sim.run(0, 50, 100_000);
    assert_eq!(sim.nodes[0].chain.height(), 50);

    // The partition heals: the servers have moved on and say so in their status.
    for server in &mut sim.servers {
        for block in &honest[51..] {
            assert!(server.chain.import(block.clone()));
        }
    }
    let progress = sim.nodes[0].sync.progress(&sim.nodes[0].chain);
    assert_eq!(progress.target_height, 50);
    sim.announce_servers(t);
    let node = &sim.nodes[0];
    assert_eq!(node.sync.progress(&node.chain).target_height, 120);
    sim.run(t, 120, t + 100_000);
    assert_eq!(sim.nodes[0].chain.blocks(), &honest[..]);
    assert!(sim.penalties.is_empty());
}

#[test]
fn an_answer_longer_than_asked_is_refused_whole() {
    let honest = build_chain(30, 0);
    let server = MemChain::new(honest.clone());
    let chain = MemChain::new(honest[..1].to_vec());
    let mut sync = SyncScheduler::new(SyncConfig {
        header_batch: 10,
        ..config()
    });
    let actions = sync.on_status(now(0), &chain, peer(1), &server.status());
    let Some(SyncAction::RequestHeaders { request, max, .. }) = actions.first().cloned() else {
        panic!("expected a headers request, got {actions:?}");
    };
    assert_eq!(max, 10);
    let too_many: Vec<_> = honest[1..=11].iter().map(SignedHeader::of).collect();
    let actions = sync.on_headers(now(10), &chain, peer(1), request, too_many);
    assert!(actions.contains(&SyncAction::Penalize {
        peer: peer(1),
        fault: SyncFault::Oversized
    }));
    assert_eq!(sync.held_headers(), 0);
}

#[test]
fn an_unsolicited_answer_changes_nothing() {
    let honest = build_chain(5, 0);
    let chain = MemChain::new(honest[..1].to_vec());
    let mut sync = SyncScheduler::new(config());
    let headers: Vec<_> = honest[1..].iter().map(SignedHeader::of).collect();
    let actions = sync.on_headers(now(0), &chain, peer(1), RequestId(99), headers);
    assert!(actions.is_empty());
    assert_eq!(sync.held_headers(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// Whatever mix of servers (with at least one honest one) and latencies: the node
    /// ends with the honest chain, and the bounds hold at every step.
    #[test]
    fn any_mix_of_peers_with_one_honest_syncs(
        seed in any::<u64>(),
        liars in proptest::collection::vec(0u8..4, 0..4),
    ) {
        let honest = build_chain(45, 0);
        let mut behaviours = vec![Behaviour::Honest];
        behaviours.extend(liars.iter().map(|b| match b {
            0 => Behaviour::Honest,
            1 => Behaviour::BadHeaders,
            2 => Behaviour::BadBodies,
            _ => Behaviour::Silent,
        }));
        let mut sim = Sim::new(&honest, &behaviours, 1, seed);
        sim.announce_servers(0);
        sim.run(0, 45, 3_600_000);
        prop_assert_eq!(sim.nodes[0].chain.blocks(), &honest[..]);
        prop_assert!(sim.max_held <= 64);
    }
}

/// One node synced to height 20 from two honest servers, which then import the rest of
/// `honest` without telling it. Returns the simulation and the time.
fn synced_to_20_then_servers_move_on(honest: &[Block], seed: u64) -> (Sim, u64) {
    let mut sim = Sim::new(
        &honest[..=20],
        &[Behaviour::Honest, Behaviour::Honest],
        1,
        seed,
    );
    sim.announce_servers(0);
    let t = sim.run(0, 20, 100_000);
    for server in &mut sim.servers {
        for block in &honest[21..] {
            assert!(server.chain.import(block.clone()));
        }
    }
    (sim, t)
}

#[test]
fn a_gossiped_height_starts_sync_without_a_status_refresh() {
    let honest = build_chain(80, 0);
    let (mut sim, t) = synced_to_20_then_servers_move_on(&honest, 3);
    // Only server 0's block announcement reaches the node.
    let id = sim.servers[0].id;
    let node = &mut sim.nodes[0];
    let actions = node.sync.note_height(now(t), &node.chain, &id, 80);
    assert!(matches!(
        actions.as_slice(),
        [SyncAction::RequestHeaders { peer, .. }] if *peer == id
    ));
    sim.handle(0, t, actions);
    sim.run(t, 80, t + 100_000);
    assert_eq!(sim.nodes[0].chain.blocks(), &honest[..]);
}

#[test]
fn the_next_block_is_left_to_gossip_for_the_grace_period() {
    let honest = build_chain(22, 0);
    let (mut sim, t) = synced_to_20_then_servers_move_on(&honest, 5);
    let grace = config().gossip_grace.as_millis() as u64;
    let (a, b) = (sim.servers[0].id, sim.servers[1].id);
    let node = &mut sim.nodes[0];

    // Block 21 is announced: gossip is bringing it, sync waits.
    assert!(
        node.sync
            .note_height(now(t), &node.chain, &a, 21)
            .is_empty()
    );
    assert!(node.sync.poll(now(t + grace / 2), &node.chain).is_empty());
    // Gossip delivers it before the grace is over: sync never fetches it.
    assert!(node.chain.import(honest[21].clone()));
    assert!(node.sync.poll(now(t + grace), &node.chain).is_empty());
    assert_eq!(node.sync.progress(&node.chain).target_height, 21);

    // Block 22 is announced, and a's status refresh shows it too, but gossip fails to
    // deliver it: sync fetches it after the grace, from a peer that has it.
    let t = t + grace;
    assert!(
        node.sync
            .note_height(now(t), &node.chain, &b, 22)
            .is_empty()
    );
    let status = sim.servers[0].chain.status();
    assert_eq!(status.best_height, 22);
    let node = &mut sim.nodes[0];
    assert!(
        node.sync
            .on_status(now(t), &node.chain, a, &status)
            .is_empty()
    );
    assert!(node.sync.poll(now(t + grace - 1), &node.chain).is_empty());
    let actions = node.sync.poll(now(t + grace), &node.chain);
    assert!(
        matches!(actions.as_slice(), [SyncAction::RequestHeaders { peer, .. }] if *peer == a || *peer == b),
        "{actions:?}"
    );
    sim.handle(0, t + grace, actions);
    sim.run(t + grace, 22, t + 100_000);
    assert_eq!(sim.nodes[0].chain.blocks(), &honest[..]);
}

#[test]
fn a_slow_importer_holds_fetching_to_the_body_window() {
    let honest = build_chain(200, 0);
    let server = MemChain::new(honest.clone());
    let importing = MemChain::new(honest[..1].to_vec());
    let config = config();
    let mut sync = SyncScheduler::new(config.clone());
    let id = peer(1);
    let mut actions = sync.on_status(now(0), &importing, id, &server.status());
    let mut handed_out = 0usize;
    // Answer every request at once, but never import: the chain stays at genesis.
    for round in 0..200u64 {
        let t = now(round);
        let mut next = Vec::new();
        for action in actions {
            match action {
                SyncAction::RequestHeaders {
                    request,
                    locator,
                    max,
                    ..
                } => {
                    let headers = serve_headers(&server, &locator, max).into_inner();
                    next.extend(sync.on_headers(t, &importing, id, request, headers));
                }
                SyncAction::RequestBodies {
                    request, hashes, ..
                } => {
                    let bodies = serve_bodies(&server, &hashes, usize::MAX).into_inner();
                    next.extend(sync.on_bodies(t, &importing, id, request, bodies));
                }
                SyncAction::Import { blocks } => handed_out += blocks.len(),
                SyncAction::Penalize { fault, .. } => panic!("honest server penalized: {fault:?}"),
            }
        }
        next.extend(sync.poll(t, &importing));
        actions = next;
    }
    // Fetching stopped once a window's worth waited for the chain, plus what was in
    // flight when it filled (at most one request per peer slot).
    let bound = config.body_window + config.bodies_per_request * config.max_requests_per_peer;
    assert!(handed_out >= config.body_window, "{handed_out}");
    assert!(
        handed_out <= bound,
        "{handed_out} blocks handed out, bound {bound}"
    );
    assert!(sync.held_headers() + handed_out <= config.max_held_headers + bound);
}
