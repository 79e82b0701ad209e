#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Durable import throughput of 100-transaction blocks through the chain manager
//! (validation with batch signature verification + state transition + redb commit), with
//! one fsync per block and with group commit of 16 blocks, each against the raw batch
//! verification of the same 101 signatures per block (`ed25519_dalek::verify_batch`) and a
//! raw `write + fdatasync` of the block's bytes, all in the same run. Then the time of a
//! reorg of depth 10 and 100 with state (printed, median of 3 runs).
//!
//! Run: `cargo bench -p blyan-consensus --bench import -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::hint::black_box;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blyan_consensus::{
    AccountState, BLOCK_VERSION, Block, ChainConfig, ChainManager, ConsensusParams, Genesis,
    Header, ManualClock, MemoryStore, SignedTransaction, StateMachine, Transaction, tx_root,
};
use blyan_crypto::{Address, Hash, KeyPair};
use criterion::{Criterion, Throughput};

const TXS: usize = 100;
const BLOCKS: usize = 48;
const SLOT_MS: u64 = 1_000;
const CHAIN_ID: u32 = 5;

struct Setup {
    genesis: Genesis,
    validators: Vec<KeyPair>,
    users: Vec<KeyPair>,
}

impl Setup {
    fn new(users: usize) -> Self {
        let validators: Vec<KeyPair> = (1..=2u8).map(|i| KeyPair::from_seed(&[i; 32])).collect();
        let users: Vec<KeyPair> = (0..users)
            .map(|i| {
                let mut seed = [7u8; 32];
                seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
                KeyPair::from_seed(&seed)
            })
            .collect();
        let balances: BTreeMap<Address, u64> =
            users.iter().map(|u| (u.address(), 1_000_000_000)).collect();
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            genesis_time_ms: 0,
            slot_duration_ms: SLOT_MS,
            validators: validators.iter().map(KeyPair::public_key).collect(),
            balances,
            params: ConsensusParams::default(),
        };
        Self {
            genesis,
            validators,
            users,
        }
    }

    fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(10_000_000 * SLOT_MS))
    }

    fn genesis_state(&self) -> AccountState<MemoryStore> {
        let mut state = AccountState::open(MemoryStore::new()).unwrap();
        state
            .apply(&self.genesis.state_transition().unwrap().diff)
            .unwrap();
        state
    }

    /// `len` blocks of `txs` transfers on `parent` (post-state `state`), slots `gap` apart;
    /// `salt` varies recipients so branches differ.
    fn chain(
        &self,
        parent: &Header,
        state: &mut AccountState<MemoryStore>,
        len: usize,
        txs: usize,
        gap: u64,
        salt: u8,
    ) -> Vec<Block> {
        let mut parent = parent.clone();
        let mut out = Vec::with_capacity(len);
        for _ in 0..len {
            let slot = parent.slot + gap;
            let producer = &self.validators[(slot % 2) as usize];
            let signed: Vec<SignedTransaction> = self
                .users
                .iter()
                .take(txs)
                .map(|from| {
                    let nonce = state
                        .account(&from.address())
                        .unwrap()
                        .unwrap_or_default()
                        .nonce;
                    Transaction {
                        chain_id: CHAIN_ID,
                        from: from.public_key(),
                        to: Address::from_bytes([salt; 20]),
                        amount: 5,
                        fee: 1,
                        nonce,
                        data: Vec::new(),
                    }
                    .sign(from)
                })
                .collect();
            let mut header = Header {
                version: BLOCK_VERSION,
                chain_id: CHAIN_ID,
                height: parent.height + 1,
                slot,
                timestamp_ms: slot * SLOT_MS,
                parent_hash: parent.hash(),
                tx_root: tx_root(
                    &signed
                        .iter()
                        .map(SignedTransaction::hash)
                        .collect::<Vec<_>>(),
                ),
                state_root: Hash::ZERO,
                producer: producer.public_key(),
            };
            let probe = Block::sign(header.clone(), signed.clone(), producer);
            let transition = state.execute_block(&probe).unwrap();
            header.state_root = transition.root();
            state.apply(&transition.diff).unwrap();
            let block = Block::sign(header, signed, producer);
            parent = block.header.clone();
            out.push(block);
        }
        out
    }
}

/// The exact bytes a blyan signature covers: `"blyan/v1/" || domain || 0 || chain_id || hash`.
fn signed_message(domain: &str, chain_id: u32, hash: &Hash) -> Vec<u8> {
    let mut m = b"blyan/v1/".to_vec();
    m.extend_from_slice(domain.as_bytes());
    m.push(0);
    m.extend_from_slice(&chain_id.to_be_bytes());
    m.extend_from_slice(hash.as_bytes());
    m
}

struct RawBatch {
    messages: Vec<Vec<u8>>,
    signatures: Vec<ed25519_dalek::Signature>,
    keys: Vec<ed25519_dalek::VerifyingKey>,
}

fn raw_batch(block: &Block) -> RawBatch {
    let mut batch = RawBatch {
        messages: vec![signed_message("block", CHAIN_ID, &block.hash())],
        signatures: vec![ed25519_dalek::Signature::from_bytes(
            block.signature.as_bytes(),
        )],
        keys: vec![
            ed25519_dalek::VerifyingKey::from_bytes(block.header.producer.as_bytes()).unwrap(),
        ],
    };
    for tx in &block.txs {
        batch
            .messages
            .push(signed_message("tx", CHAIN_ID, &tx.hash()));
        batch.signatures.push(ed25519_dalek::Signature::from_bytes(
            tx.signature.as_bytes(),
        ));
        batch
            .keys
            .push(ed25519_dalek::VerifyingKey::from_bytes(tx.tx.from.as_bytes()).unwrap());
    }
    batch
}

fn open_fresh(setup: &Setup, dir: &tempfile::TempDir, n: usize) -> ChainManager {
    ChainManager::open(
        dir.path().join(format!("bench-{n}.redb")),
        setup.genesis.clone(),
        ChainConfig::default(),
        Setup::clock(),
    )
    .unwrap()
}

fn import(c: &mut Criterion) {
    let setup = Setup::new(TXS);
    let genesis_block = setup.genesis.block().unwrap();
    let mut state = setup.genesis_state();
    let blocks = setup.chain(&genesis_block.header, &mut state, BLOCKS, TXS, 1, 1);
    let raw: Vec<RawBatch> = blocks.iter().map(raw_batch).collect();
    for r in &raw {
        let msgs: Vec<&[u8]> = r.messages.iter().map(Vec::as_slice).collect();
        ed25519_dalek::verify_batch(&msgs, &r.signatures, &r.keys).unwrap();
    }
    let block_bytes = blyan_wire::to_canonical_bytes(&blocks[0]).unwrap();
    let dir = tempfile::tempdir().unwrap();

    let mut group = c.benchmark_group("import_100tx_block");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);

    group.bench_function("raw_verify_batch_101_sigs", |b| {
        let mut i = 0;
        b.iter(|| {
            let r = &raw[i % raw.len()];
            i += 1;
            let msgs: Vec<&[u8]> = r.messages.iter().map(Vec::as_slice).collect();
            ed25519_dalek::verify_batch(black_box(&msgs), &r.signatures, &r.keys).unwrap();
        });
    });

    group.bench_function("raw_write_fdatasync_block_bytes", |b| {
        let mut file = std::fs::File::create(dir.path().join("raw.bin")).unwrap();
        b.iter(|| {
            file.write_all(black_box(&block_bytes)).unwrap();
            file.sync_data().unwrap();
        });
    });

    let mut db_counter = 0;
    group.bench_function("durable_per_block_commit", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                db_counter += 1;
                let mut chain = open_fresh(&setup, &dir, db_counter);
                let n = left.min(BLOCKS);
                let start = Instant::now();
                for block in &blocks[..n] {
                    chain.add_block(block.clone()).unwrap();
                }
                total += start.elapsed();
                left -= n;
            }
            total
        });
    });

    group.bench_function("durable_batched_commit_16", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters as usize;
            while left > 0 {
                db_counter += 1;
                let mut chain = open_fresh(&setup, &dir, db_counter);
                let n = left.min(BLOCKS);
                let start = Instant::now();
                for chunk in blocks[..n].chunks(16) {
                    for result in chain.import_batch(chunk.to_vec()) {
                        result.unwrap();
                    }
                }
                total += start.elapsed();
                left -= n;
            }
            total
        });
    });
    group.finish();
}

/// Time of the import that triggers a reorg of `depth` (revert `depth` blocks with their
/// undo data, apply `depth + 1`, one transaction), median of 3 fresh setups.
fn reorg_timings() {
    let setup = Setup::new(20);
    let genesis_block = setup.genesis.block().unwrap();
    for depth in [10usize, 100] {
        let mut times = Vec::new();
        for run in 0..3 {
            let mut main_state = setup.genesis_state();
            let main = setup.chain(&genesis_block.header, &mut main_state, depth, 20, 2, 1);
            let mut side_state = setup.genesis_state();
            // The main chain takes even slots, the branch odd ones: no shared slot.
            let branch_first = setup.chain(&genesis_block.header, &mut side_state, 1, 20, 1, 2);
            let rest = setup.chain(&branch_first[0].header, &mut side_state, depth, 20, 2, 2);
            let dir = tempfile::tempdir().unwrap();
            let mut chain = open_fresh(&setup, &dir, run);
            for block in &main {
                chain.add_block(block.clone()).unwrap();
            }
            chain.add_block(branch_first[0].clone()).unwrap();
            let (last, side) = rest.split_last().unwrap();
            for block in side {
                chain.add_block(block.clone()).unwrap();
            }
            let started = Instant::now();
            let outcome = chain.add_block(last.clone()).unwrap();
            times.push(started.elapsed());
            match outcome {
                blyan_consensus::ImportOutcome::Imported {
                    reorg: Some(reorg), ..
                } => assert_eq!(reorg.depth(), depth as u64),
                other => panic!("expected a reorg of depth {depth}, got {other:?}"),
            }
        }
        times.sort();
        println!(
            "reorg_with_state/depth_{depth} (20-tx blocks): median {:.2} ms (runs: {:?})",
            times[1].as_secs_f64() * 1e3,
            times
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    import(&mut c);
    reorg_timings();
    c.final_summary();
}
