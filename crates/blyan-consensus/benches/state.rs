#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! State root update cost: executing a 100-transfer block (nonce/balance rules plus the
//! sparse Merkle tree update, nothing written) on states of 1 000, 100 000 and 1 000 000
//! accounts. The tree is O(touched × log n): the cost should grow with log n, not n.
//!
//! Run: `cargo bench -p blyan-consensus --bench state -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use blyan_consensus::{
    Account, AccountState, BLOCK_VERSION, Block, Header, MemoryStore, SignedTransaction,
    StateMachine, Transaction, tx_root,
};
use blyan_crypto::{Address, Hash, KeyPair};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const TXS: usize = 100;

fn filler(i: u64) -> Address {
    let mut bytes = [0xF0u8; 20];
    bytes[..8].copy_from_slice(&i.to_be_bytes());
    Address::from_bytes(bytes)
}

/// A state with `n` accounts, 100 of which belong to the senders.
fn state_with(n: usize, senders: &[KeyPair]) -> AccountState<MemoryStore> {
    let mut store = MemoryStore::new();
    store.reserve(n);
    let mut state = AccountState::open(store).unwrap();
    let rich = Account {
        balance: 1_000_000,
        nonce: 0,
    };
    let accounts =
        senders
            .iter()
            .map(|k| (k.address(), rich))
            .chain((0..(n - senders.len()) as u64).map(|i| {
                (
                    filler(i),
                    Account {
                        balance: 1,
                        nonce: 0,
                    },
                )
            }));
    let t = state.set_accounts(accounts).unwrap();
    state.apply(&t.diff).unwrap();
    state
}

/// 100 transfers: each sender pays an existing account (half) or a new one (half).
fn block(senders: &[KeyPair], n: usize, producer: &KeyPair) -> Block {
    let txs: Vec<SignedTransaction> = senders
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let to = if i % 2 == 0 {
                filler((i * 7_919 % (n - senders.len())) as u64)
            } else {
                Address::from_bytes([i as u8; 20])
            };
            Transaction {
                chain_id: 1,
                from: k.public_key(),
                to,
                amount: 10,
                fee: 1,
                nonce: 0,
                data: vec![],
            }
            .sign(k)
        })
        .collect();
    let header = Header {
        version: BLOCK_VERSION,
        chain_id: 1,
        height: 1,
        slot: 1,
        timestamp_ms: 0,
        parent_hash: Hash::ZERO,
        tx_root: tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
        state_root: Hash::ZERO,
        producer: producer.public_key(),
    };
    Block::sign(header, txs, producer)
}

fn bench(c: &mut Criterion) {
    let senders: Vec<KeyPair> = (0..TXS as u64)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            seed[31] = 1;
            KeyPair::from_seed(&seed)
        })
        .collect();
    let producer = KeyPair::from_seed(&[200; 32]);
    let mut group = c.benchmark_group("state_apply_100_tx_block");
    group.throughput(Throughput::Elements(TXS as u64));
    for n in [1_000usize, 100_000, 1_000_000] {
        let state = state_with(n, &senders);
        let block = block(&senders, n, &producer);
        let probe = state.execute_block(&block).unwrap();
        eprintln!(
            "{n} accounts: {} nodes stored; a 100-tx block writes {} nodes, deletes {}",
            state.store().node_count(),
            probe.diff.nodes.values().filter(|v| v.is_some()).count(),
            probe.diff.nodes.values().filter(|v| v.is_none()).count()
        );
        group.bench_function(format!("{n}_accounts"), |b| {
            b.iter(|| black_box(state.execute_block(black_box(&block)).unwrap()))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
