#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Validation of a 100-transaction block against raw `ed25519_dalek::verify_batch` over the
//! same 101 signatures (100 tx signatures + the producer's), built from the same
//! domain-prefixed messages. `verify_block` is the stateless validation (limits, tx_root,
//! duplicates, one batch verification); `validate_block` adds the header-vs-parent checks
//! and executing the transactions on a 1 000-account state with the state-root check.
//!
//! Run: `cargo bench -p blyan-consensus --bench validation -- --warm-up-time 1 --measurement-time 3`

use std::collections::BTreeMap;
use std::hint::black_box;

use blyan_consensus::{
    AccountState, Block, BlockValidator, ConsensusParams, Genesis, MemoryStore, Mempool,
    MempoolConfig, StateMachine, Transaction, build_block,
};
use blyan_crypto::{Address, Domain, KeyPair};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const TXS: usize = 100;
const GENESIS_TIME: u64 = 1_700_000_000_000;

fn bench(c: &mut Criterion) {
    let validator_key = KeyPair::from_seed(&[1; 32]);
    let senders: Vec<KeyPair> = (0..TXS as u64)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&i.to_le_bytes());
            seed[31] = 2;
            KeyPair::from_seed(&seed)
        })
        .collect();
    let mut balances: BTreeMap<Address, u64> =
        senders.iter().map(|k| (k.address(), 1_000_000)).collect();
    for i in 0..900u32 {
        let mut bytes = [0xABu8; 20];
        bytes[..4].copy_from_slice(&i.to_be_bytes());
        balances.insert(Address::from_bytes(bytes), 5);
    }
    let genesis = Genesis {
        chain_id: 1,
        genesis_time_ms: GENESIS_TIME,
        slot_duration_ms: 1_000,
        validators: vec![validator_key.public_key()],
        balances,
        params: ConsensusParams::default(),
    };
    let genesis_block = genesis.block().unwrap();
    let mut state = AccountState::open(MemoryStore::new()).unwrap();
    state
        .apply(&genesis.state_transition().unwrap().diff)
        .unwrap();
    let validator = BlockValidator::new(genesis.clone());

    let mut pool = Mempool::new(MempoolConfig::default(), &genesis);
    for (i, k) in senders.iter().enumerate() {
        let tx = Transaction {
            chain_id: 1,
            from: k.public_key(),
            to: Address::from_bytes([i as u8; 20]),
            amount: 10,
            fee: 1 + i as u64,
            nonce: 0,
            data: vec![],
        };
        pool.insert(tx.sign(k), &state).unwrap();
    }
    let now = GENESIS_TIME + 1_010;
    let block: Block = build_block(
        &validator,
        &pool,
        1,
        &validator_key,
        &genesis_block.header,
        &state,
        now,
    )
    .unwrap()
    .block;
    assert_eq!(block.txs.len(), TXS);
    validator
        .validate_block(&block, &genesis_block.header, &state, now)
        .unwrap();

    // The raw baseline: the same 101 (message, signature, key) triples, dalek's batch.
    let block_hash = block.hash();
    let mut messages: Vec<Vec<u8>> = vec![Domain::Block.signing_message(1, block_hash.as_bytes())];
    let mut signatures = vec![ed25519_dalek::Signature::from_bytes(
        &block.signature.to_bytes(),
    )];
    let mut keys =
        vec![ed25519_dalek::VerifyingKey::from_bytes(&block.header.producer.to_bytes()).unwrap()];
    for signed in &block.txs {
        messages.push(Domain::Tx.signing_message(1, signed.hash().as_bytes()));
        signatures.push(ed25519_dalek::Signature::from_bytes(
            &signed.signature.to_bytes(),
        ));
        keys.push(ed25519_dalek::VerifyingKey::from_bytes(&signed.tx.from.to_bytes()).unwrap());
    }
    let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    ed25519_dalek::verify_batch(&message_refs, &signatures, &keys).unwrap();

    let mut group = c.benchmark_group("validate_100_tx_block");
    group.throughput(Throughput::Elements(TXS as u64 + 1));
    group.bench_function("raw_dalek_verify_batch_101", |b| {
        b.iter(|| {
            ed25519_dalek::verify_batch(black_box(&message_refs), &signatures, &keys).unwrap()
        })
    });
    group.bench_function("verify_block", |b| {
        b.iter(|| validator.verify_block(black_box(&block)).unwrap())
    });
    group.bench_function("validate_block_with_state", |b| {
        b.iter(|| {
            black_box(
                validator
                    .validate_block(black_box(&block), &genesis_block.header, &state, now)
                    .unwrap(),
            )
        })
    });
    group.bench_function("execute_block_state_only", |b| {
        b.iter(|| black_box(state.execute_block(black_box(&block)).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
