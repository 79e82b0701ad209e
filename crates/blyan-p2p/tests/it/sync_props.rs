//! Property test of the sync scheduler under arbitrary input sequences: answers in any
//! order, truncated, corrupted, oversized or empty; failures; peers leaving; time jumps.
//! After every input the bounds hold, and a node that finally meets an honest peer syncs.

use std::collections::{BTreeMap, HashSet};

use blyan_consensus::Block;
use blyan_crypto::{KeyPair, PeerId, Signature};
use blyan_p2p::{
    BoundedVec, RequestId, SignedHeader, Status, SyncAction, SyncConfig, SyncScheduler,
    serve_bodies, serve_headers,
};
use proptest::prelude::*;

use crate::common::{MemChain, build_chain, now, peer, transfer};

#[derive(Clone, Debug)]
enum Op {
    Status { peer: u8, height: u64 },
    Remove { peer: u8 },
    Answer { pick: usize, how: u8 },
    Fail { pick: usize },
    Advance { ms: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0u8..4, 0u64..40).prop_map(|(peer, height)| Op::Status { peer, height }),
        (0u8..4).prop_map(|peer| Op::Remove { peer }),
        (any::<usize>(), 0u8..6).prop_map(|(pick, how)| Op::Answer { pick, how }),
        any::<usize>().prop_map(|pick| Op::Fail { pick }),
        (0u64..15_000).prop_map(|ms| Op::Advance { ms }),
    ]
}

const CAP: usize = 12;
const WINDOW: usize = 6;
const LEN: u64 = 30;
const PER_PEER: usize = 2;

fn config() -> SyncConfig {
    SyncConfig {
        header_batch: 8,
        max_held_headers: CAP,
        body_window: WINDOW,
        bodies_per_request: 3,
        max_requests_per_peer: PER_PEER,
        ..SyncConfig::default()
    }
}

struct Harness {
    server: MemChain,
    chain: MemChain,
    sync: SyncScheduler,
    pending: BTreeMap<RequestId, SyncAction>,
    t: u64,
}

impl Harness {
    fn apply(&mut self, actions: Vec<SyncAction>) {
        for action in actions {
            match action {
                SyncAction::RequestHeaders { request, .. }
                | SyncAction::RequestBodies { request, .. } => {
                    self.pending.insert(request, action);
                }
                SyncAction::Import { blocks } => {
                    for block in blocks {
                        assert_eq!(block.height(), self.chain.height() + 1, "in order");
                        if let Some(more) =
                            self.chain.import_synced(&mut self.sync, now(self.t), block)
                        {
                            self.apply(more);
                            break;
                        }
                    }
                }
                SyncAction::Penalize { .. } => {}
            }
        }
        self.check();
    }

    fn check(&self) {
        assert!(self.sync.held_headers() <= CAP);
        let mut hashes = HashSet::new();
        let mut per_peer: BTreeMap<PeerId, usize> = BTreeMap::new();
        let mut bodies = 0;
        for (_, peer, requested) in self.sync.in_flight() {
            *per_peer.entry(peer).or_default() += 1;
            for hash in requested {
                bodies += 1;
                assert!(hashes.insert(*hash), "a body is never in two requests");
            }
        }
        assert!(bodies <= WINDOW);
        assert!(per_peer.values().all(|c| *c <= PER_PEER));
    }

    fn status(&self, height: u64) -> Status {
        Status {
            best_height: height,
            ..self.server.status()
        }
    }

    fn answer(&mut self, request: RequestId, action: SyncAction, how: u8) {
        let t = now(self.t);
        let actions = match action {
            SyncAction::RequestHeaders {
                peer, locator, max, ..
            } => {
                let mut headers = serve_headers(&self.server, &locator, max).into_inner();
                match how {
                    1 => headers.truncate(headers.len() / 2),
                    2 => headers.reverse(),
                    3 => {
                        for h in headers.iter_mut().skip(2) {
                            h.signature = Signature::from_bytes([1; 64]);
                        }
                    }
                    4 => headers.extend(self.server.blocks().iter().map(SignedHeader::of)),
                    5 => headers.clear(),
                    _ => {}
                }
                self.sync.on_headers(t, &self.chain, peer, request, headers)
            }
            SyncAction::RequestBodies { peer, hashes, .. } => {
                let mut bodies = serve_bodies(&self.server, &hashes, 1 << 20).into_inner();
                match how {
                    1 => bodies.truncate(bodies.len() / 2),
                    2 => bodies.reverse(),
                    3 => {
                        for body in &mut bodies {
                            let mut txs = body.txs.to_vec();
                            txs.push(transfer(&KeyPair::from_seed(&[77; 32]), 0));
                            body.txs = BoundedVec::truncating(txs);
                        }
                    }
                    4 => bodies.extend(bodies.clone()),
                    5 => bodies.clear(),
                    _ => {}
                }
                self.sync.on_bodies(t, &self.chain, peer, request, bodies)
            }
            _ => Vec::new(),
        };
        self.apply(actions);
    }

    fn step(&mut self, op: Op) {
        let t = now(self.t);
        match op {
            Op::Status { peer: p, height } => {
                let status = self.status(height.min(self.server.height()));
                let actions = self.sync.on_status(t, &self.chain, peer(p.into()), &status);
                self.apply(actions);
            }
            Op::Remove { peer: p } => {
                let id = peer(p.into());
                self.pending.retain(|_, a| !matches!(a,
                    SyncAction::RequestHeaders { peer, .. } | SyncAction::RequestBodies { peer, .. } if *peer == id));
                let actions = self.sync.remove_peer(t, &self.chain, &id);
                self.apply(actions);
            }
            Op::Answer { pick, how } => {
                if self.pending.is_empty() {
                    return;
                }
                let Some(request) = self.pending.keys().nth(pick % self.pending.len()).copied()
                else {
                    return;
                };
                if let Some(action) = self.pending.remove(&request) {
                    self.answer(request, action, how);
                }
            }
            Op::Fail { pick } => {
                if self.pending.is_empty() {
                    return;
                }
                let Some((request, action)) = self
                    .pending
                    .iter()
                    .nth(pick % self.pending.len())
                    .map(|(r, a)| (*r, a.clone()))
                else {
                    return;
                };
                self.pending.remove(&request);
                if let SyncAction::RequestHeaders { peer, .. }
                | SyncAction::RequestBodies { peer, .. } = action
                {
                    let actions = self.sync.on_request_failed(t, &self.chain, peer, request);
                    self.apply(actions);
                }
            }
            Op::Advance { ms } => {
                self.t += ms;
                let actions = self.sync.poll(now(self.t), &self.chain);
                self.apply(actions);
            }
        }
    }
}

fn honest_server() -> Vec<Block> {
    build_chain(LEN, 0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn bounds_hold_under_any_inputs_and_an_honest_peer_finishes_the_job(
        ops in proptest::collection::vec(op(), 1..60),
    ) {
        let blocks = honest_server();
        let mut h = Harness {
            server: MemChain::new(blocks.clone()),
            chain: MemChain::new(blocks[..1].to_vec()),
            sync: SyncScheduler::new(config()),
            pending: BTreeMap::new(),
            t: 0,
        };
        for op in ops {
            h.step(op);
        }
        // Then an honest peer 9 arrives and everything is answered honestly.
        h.t += 60_000;
        let status = h.status(LEN);
        let actions = h.sync.on_status(now(h.t), &h.chain, peer(9), &status);
        h.apply(actions);
        let actions = h.sync.poll(now(h.t), &h.chain);
        h.apply(actions);
        for _ in 0..2_000 {
            if h.chain.height() == LEN {
                break;
            }
            match h.pending.keys().next().copied() {
                Some(request) => {
                    if let Some(action) = h.pending.remove(&request) {
                        h.answer(request, action, 0);
                    }
                }
                None => h.step(Op::Advance { ms: 11_000 }),
            }
        }
        prop_assert_eq!(h.chain.height(), LEN);
        prop_assert_eq!(h.chain.blocks(), &blocks[..]);
    }
}
