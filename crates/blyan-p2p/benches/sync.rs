#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The sync scheduler's own cost: a full headers-first sync of 2,000 blocks from 4 peers
//! whose answers arrive at once, with checks reduced to the parent link (no signatures,
//! no state), against a baseline that only hashes every header once — the least any
//! headers-first sync does.

use std::collections::{HashMap, VecDeque};
use std::hint::black_box;
use std::time::Duration;

use blyan_consensus::{BLOCK_VERSION, Block, BlockError, Header};
use blyan_crypto::{Hash, KeyPair, PeerId, Signature};
use blyan_p2p::{
    BlockBody, BoundedVec, PROTOCOL_VERSION, SignedHeader, Status, SyncAction, SyncChain,
    SyncConfig, SyncScheduler,
};
use blyan_security::Now;
use criterion::{Criterion, criterion_group, criterion_main};

const BLOCKS: u64 = 2_000;

fn headers() -> Vec<SignedHeader> {
    let producer = KeyPair::from_seed(&[1; 32]).public_key();
    let mut out: Vec<SignedHeader> = Vec::new();
    let mut parent = Hash::ZERO;
    for height in 0..=BLOCKS {
        let header = Header {
            version: BLOCK_VERSION,
            chain_id: 1,
            height,
            slot: height,
            timestamp_ms: height * 1_000,
            parent_hash: parent,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            producer,
        };
        parent = header.hash();
        out.push(SignedHeader {
            header,
            signature: Signature::from_bytes([0; 64]),
        });
    }
    out
}

/// A chain that checks only parent links and keeps headers.
struct LinkChain {
    headers: Vec<(Hash, Header)>,
    by_hash: HashMap<Hash, usize>,
}

impl LinkChain {
    fn new(genesis: &SignedHeader) -> Self {
        let hash = genesis.hash();
        Self {
            headers: vec![(hash, genesis.header.clone())],
            by_hash: HashMap::from([(hash, 0)]),
        }
    }

    fn import(&mut self, block: Block) {
        assert_eq!(
            Some(&block.header.parent_hash),
            self.headers.last().map(|(h, _)| h)
        );
        let hash = block.hash();
        self.by_hash.insert(hash, self.headers.len());
        self.headers.push((hash, block.header));
    }
}

impl SyncChain for LinkChain {
    fn best(&self) -> (u64, Hash) {
        let (hash, header) = self.headers.last().unwrap();
        (header.height, *hash)
    }
    fn canonical_hash(&self, height: u64) -> Option<Hash> {
        self.headers.get(height as usize).map(|(h, _)| *h)
    }
    fn header(&self, hash: &Hash) -> Option<Header> {
        self.by_hash.get(hash).map(|i| self.headers[*i].1.clone())
    }
    fn block(&self, _: &Hash) -> Option<Block> {
        None
    }
    fn verify_header(&self, h: &SignedHeader, parent: &Header, _: u64) -> Result<(), BlockError> {
        if h.header.height == parent.height + 1 {
            Ok(())
        } else {
            Err(BlockError::WrongHeight {
                expected: parent.height + 1,
                got: h.header.height,
            })
        }
    }
    fn check_body(&self, _: &Block) -> Result<(), BlockError> {
        Ok(())
    }
}

fn full_sync(all: &[SignedHeader], index: &HashMap<Hash, u64>) -> u64 {
    let now = Now::new(Duration::ZERO, 0);
    let mut chain = LinkChain::new(&all[0]);
    let mut sync = SyncScheduler::new(SyncConfig::default());
    let status = Status {
        protocol_version: PROTOCOL_VERSION,
        chain_id: 1,
        genesis_hash: all[0].hash(),
        best_height: BLOCKS,
        best_hash: Hash::ZERO,
        finalized_height: 0,
    };
    // In order: imports must reach the chain in the order they were handed out.
    let mut queue = VecDeque::new();
    for p in 1..=4u8 {
        queue.extend(sync.on_status(now, &chain, PeerId::from_bytes([p; 32]), &status));
    }
    while let Some(action) = queue.pop_front() {
        let more = match action {
            SyncAction::RequestHeaders {
                peer,
                request,
                locator,
                max,
            } => {
                let start = locator
                    .iter()
                    .find_map(|h| index.get(h))
                    .map_or(1, |h| h + 1) as usize;
                let end = (start + max as usize).min(all.len());
                let batch = all[start.min(end)..end].to_vec();
                sync.on_headers(now, &chain, peer, request, batch)
            }
            SyncAction::RequestBodies {
                peer,
                request,
                hashes,
            } => {
                let bodies = hashes
                    .iter()
                    .map(|_| BlockBody {
                        txs: BoundedVec::new(),
                    })
                    .collect();
                sync.on_bodies(now, &chain, peer, request, bodies)
            }
            SyncAction::Import { blocks } => {
                for block in blocks {
                    chain.import(block);
                }
                sync.poll(now, &chain)
            }
            SyncAction::Penalize { .. } => panic!("honest peers"),
        };
        queue.extend(more);
    }
    chain.best().0
}

fn sync(c: &mut Criterion) {
    let all = headers();
    let index: HashMap<Hash, u64> = all.iter().map(|h| (h.hash(), h.header.height)).collect();
    assert_eq!(full_sync(&all, &index), BLOCKS);
    let mut group = c.benchmark_group("sync/2000_blocks");
    group.bench_function("scheduler_full_sync", |b| {
        b.iter(|| black_box(full_sync(&all, &index)))
    });
    group.bench_function("hash_headers_baseline", |b| {
        b.iter(|| {
            for h in &all {
                black_box(h.hash());
            }
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(10);
    targets = sync
}
criterion_main!(benches);
