//! Block building: the built block validates, stays within the limits, and skips what
//! became invalid.

use blyan_consensus::{
    BlockError, BuildError, BuiltBlock, ConsensusParams, Mempool, MempoolConfig, StateMachine,
    build_block,
};
use blyan_crypto::Address;

use crate::chain_fixture::{Chain, chain, chain_with, params};

fn sink() -> Address {
    Address::from_bytes([0xEE; 20])
}

/// A pool with one transaction per user, user i paying fee i + 1.
fn one_tx_per_user(c: &Chain) -> Mempool {
    let mut pool = Mempool::new(MempoolConfig::default(), &c.genesis);
    for (i, user) in c.users.iter().enumerate() {
        pool.insert(c.tx(user, sink(), 1, i as u64 + 1, 0), &c.state)
            .unwrap();
    }
    pool
}

/// The block for slot 1 on genesis, built by its producer.
fn build_first(c: &Chain, pool: &Mempool) -> BuiltBlock {
    let g = c.genesis_block.header.clone();
    build_block(
        &c.validator,
        pool,
        1,
        c.producer(1),
        &g,
        &c.state,
        c.time_in(1),
    )
    .unwrap()
}

#[test]
fn built_block_is_valid_and_skips_invalid_transactions() {
    let mut c = chain();
    let mut pool = Mempool::new(MempoolConfig::default(), &c.genesis);
    let u = c.users.clone();
    pool.insert(c.tx(&u[0], sink(), 10, 3, 0), &c.state)
        .unwrap();
    pool.insert(c.tx(&u[0], sink(), 10, 3, 1), &c.state)
        .unwrap();
    // Each alone is affordable, together they are not: the second is skipped.
    pool.insert(c.tx(&u[1], sink(), 600, 2, 0), &c.state)
        .unwrap();
    let overspend = pool
        .insert(c.tx(&u[1], sink(), 600, 2, 1), &c.state)
        .unwrap();

    let g = c.genesis_block.header.clone();
    let now = c.time_in(1);
    let built = build_block(&c.validator, &pool, 1, c.producer(1), &g, &c.state, now).unwrap();
    assert_eq!(built.block.txs.len(), 3);
    assert_eq!(built.invalid, vec![overspend]);
    let transition = c
        .validator
        .validate_block(&built.block, &g, &c.state, now)
        .unwrap();
    assert_eq!(transition, built.transition);

    // Applying it and cleaning the pool: the included ones go, and the skipped one too,
    // since the sender can no longer pay for it.
    c.state.apply(&built.transition.diff).unwrap();
    assert_eq!(pool.remove_included(&built.block), 3);
    assert!(pool.contains(&overspend));
    assert_eq!(pool.revalidate(&c.state).unwrap(), 1);
    assert!(pool.is_empty());
}

#[test]
fn block_limits_are_respected() {
    // Count limit: 4 transactions per block; the highest fees are taken.
    let c = chain();
    let built = build_first(&c, &one_tx_per_user(&c));
    let fees: Vec<u64> = built.block.txs.iter().map(|t| t.tx.fee).collect();
    assert_eq!(fees, vec![6, 5, 4, 3]);

    // Byte limit: a block barely larger than an empty one holds a single transaction.
    let empty = build_first(&c, &Mempool::new(MempoolConfig::default(), &c.genesis));
    let empty_len = empty.block.encoded_len().unwrap();
    let tx_len = c.tx(&c.users[0], sink(), 1, 1, 0).encoded_len().unwrap();
    let tight = chain_with(ConsensusParams {
        max_block_bytes: empty_len + tx_len + tx_len / 2,
        max_block_txs: 100,
        ..params()
    });
    let built = build_first(&tight, &one_tx_per_user(&tight));
    assert_eq!(built.block.txs.len(), 1);
    assert!(built.block.encoded_len().unwrap() <= tight.genesis.params.max_block_bytes);
    tight.validator.verify_block(&built.block).unwrap();
}

#[test]
fn refuses_a_slot_that_is_not_ours_or_not_yet_open() {
    let c = chain();
    let pool = Mempool::new(MempoolConfig::default(), &c.genesis);
    let g = c.genesis_block.header.clone();
    let err = build_block(
        &c.validator,
        &pool,
        1,
        c.producer(0),
        &g,
        &c.state,
        c.time_in(1),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        BuildError::Header(BlockError::WrongProducer { slot: 1, .. })
    ));
    let err = build_block(
        &c.validator,
        &pool,
        5,
        c.producer(5),
        &g,
        &c.state,
        c.time_in(1),
    )
    .unwrap_err();
    assert!(matches!(
        err,
        BuildError::Header(BlockError::SlotInFuture { slot: 5, .. })
    ));
    // The state was only read.
    assert_eq!(c.state.root(), g.state_root);
}
