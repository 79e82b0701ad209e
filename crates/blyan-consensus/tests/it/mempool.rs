//! Mempool policy, one behaviour per test: admission checks, fee/arrival order with
//! per-sender nonces, gaps, per-sender bounds, replacement, eviction, and the updates after a
//! canonical change.

use blyan_consensus::{
    Mempool, MempoolConfig, MempoolError, Selection, SignedTransaction, StateMachine, TxError,
};
use blyan_crypto::{Address, Hash, Signature};

use crate::chain_fixture::{Chain, USER_BALANCE, chain};

fn pool(c: &Chain, config: MempoolConfig) -> Mempool {
    Mempool::new(config, &c.genesis)
}

fn sink() -> Address {
    Address::from_bytes([0xEE; 20])
}

/// The order in which a block builder would be offered the pool's transactions, when it
/// includes everything.
fn order(pool: &Mempool) -> Vec<Hash> {
    let mut out = Vec::new();
    pool.select(|entry| {
        out.push(entry.hash);
        Selection::Included
    });
    out
}

#[test]
fn admission_rejects_invalid_transactions() {
    let c = chain();
    let mut p = pool(&c, MempoolConfig::default());
    let u = &c.users;

    let mut bad_sig = c.tx(&u[0], sink(), 1, 1, 0);
    bad_sig.signature = Signature::from_bytes([3; 64]);
    assert!(matches!(
        p.insert(bad_sig, &c.state),
        Err(MempoolError::Invalid(TxError::BadSignature(_)))
    ));

    let mut wrong_chain = c.tx(&u[0], sink(), 1, 1, 0).tx;
    wrong_chain.chain_id += 1;
    assert!(matches!(
        p.insert(wrong_chain.sign(&u[0]), &c.state),
        Err(MempoolError::Invalid(TxError::WrongChain { .. }))
    ));

    let mut big = c.tx(&u[0], sink(), 1, 1, 0).tx;
    big.data = vec![0; 65];
    assert!(matches!(
        p.insert(big.sign(&u[0]), &c.state),
        Err(MempoolError::Invalid(TxError::DataTooLarge { .. }))
    ));

    assert!(matches!(
        p.insert(c.tx(&u[0], sink(), USER_BALANCE, 1, 0), &c.state),
        Err(MempoolError::Invalid(TxError::InsufficientBalance { .. }))
    ));

    let ok = c.tx(&u[0], sink(), 1, 1, 0);
    let hash = p.insert(ok.clone(), &c.state).unwrap();
    assert_eq!(
        p.insert(ok, &c.state),
        Err(MempoolError::AlreadyKnown(hash))
    );
    assert_eq!(p.len(), 1);
}

#[test]
fn order_is_fee_then_arrival_with_nonces_in_sequence() {
    let c = chain();
    let mut p = pool(&c, MempoolConfig::default());
    let u = &c.users;
    // u0: nonce 0 fee 1, nonce 1 fee 50 (must still come after its nonce 0).
    let a0 = p.insert(c.tx(&u[0], sink(), 1, 1, 0), &c.state).unwrap();
    let a1 = p.insert(c.tx(&u[0], sink(), 1, 50, 1), &c.state).unwrap();
    // u1 and u2 pay the same fee; u1 arrived first.
    let b0 = p.insert(c.tx(&u[1], sink(), 1, 5, 0), &c.state).unwrap();
    let c0 = p.insert(c.tx(&u[2], sink(), 1, 5, 0), &c.state).unwrap();
    let d0 = p.insert(c.tx(&u[3], sink(), 1, 9, 0), &c.state).unwrap();
    assert_eq!(order(&p), vec![d0, b0, c0, a0, a1]);
}

#[test]
fn a_nonce_gap_waits_until_filled() {
    let c = chain();
    let mut p = pool(&c, MempoolConfig::default());
    let u = &c.users;
    let later = p.insert(c.tx(&u[0], sink(), 1, 9, 1), &c.state).unwrap();
    // Nonce 1 without nonce 0: pooled, but a builder skips the sender (gap).
    let mut offered = Vec::new();
    p.select(|entry| {
        offered.push(entry.hash);
        let next_nonce = c
            .state
            .account(&entry.sender)
            .unwrap()
            .unwrap_or_default()
            .nonce;
        if entry.tx.tx.nonce == next_nonce {
            Selection::Included
        } else {
            Selection::SkipSender
        }
    });
    assert_eq!(offered, vec![later]);
    let first = p.insert(c.tx(&u[0], sink(), 1, 1, 0), &c.state).unwrap();
    assert_eq!(order(&p), vec![first, later]);
}

#[test]
fn per_sender_bounds() {
    let c = chain();
    let config = MempoolConfig {
        max_per_sender: 2,
        ..MempoolConfig::default()
    };
    let mut p = pool(&c, config);
    let u = &c.users;
    assert!(matches!(
        p.insert(c.tx(&u[0], sink(), 1, 1, 2), &c.state),
        Err(MempoolError::NonceTooFarAhead {
            nonce: 2,
            account_nonce: 0,
            max_gap: 2
        })
    ));
    p.insert(c.tx(&u[0], sink(), 1, 1, 0), &c.state).unwrap();
    p.insert(c.tx(&u[0], sink(), 1, 1, 1), &c.state).unwrap();
    assert_eq!(p.len(), 2);
    // A used nonce is refused as such: u1 has sent 3 transactions in this state.
    let mut c2 = chain();
    let used = blyan_consensus::Account {
        balance: 50,
        nonce: 3,
    };
    let t = c2.state.set_accounts([(u[1].address(), used)]).unwrap();
    c2.state.apply(&t.diff).unwrap();
    assert!(matches!(
        p.insert(c.tx(&u[1], sink(), 1, 1, 2), &c2.state),
        Err(MempoolError::Invalid(TxError::BadNonce {
            expected: 3,
            got: 2,
            ..
        }))
    ));
}

#[test]
fn sender_limit_caps_pooled_transactions() {
    let c = chain();
    let config = MempoolConfig {
        max_per_sender: 3,
        ..MempoolConfig::default()
    };
    let mut p = pool(&c, config);
    let u = &c.users;
    for nonce in 0..3 {
        p.insert(c.tx(&u[0], sink(), 1, 1, nonce), &c.state)
            .unwrap();
    }
    // The gap rule already stops nonce 3; replacing stays possible.
    assert!(p.insert(c.tx(&u[0], sink(), 1, 1, 3), &c.state).is_err());
    p.insert(c.tx(&u[0], sink(), 1, 2, 2), &c.state).unwrap();
    assert_eq!(p.len(), 3);
}

#[test]
fn replacement_needs_the_minimum_bump() {
    let c = chain();
    let mut p = pool(&c, MempoolConfig::default());
    let u = &c.users;
    let old = p.insert(c.tx(&u[0], sink(), 1, 100, 0), &c.state).unwrap();
    assert_eq!(
        p.insert(c.tx(&u[0], sink(), 2, 109, 0), &c.state),
        Err(MempoolError::ReplacementUnderpriced {
            fee: 109,
            min_fee: 110
        })
    );
    let new = p.insert(c.tx(&u[0], sink(), 2, 110, 0), &c.state).unwrap();
    assert!(!p.contains(&old));
    assert!(p.contains(&new));
    assert_eq!(p.len(), 1);
    // A zero fee still needs a bump of at least 1.
    let zero = p.insert(c.tx(&u[1], sink(), 1, 0, 0), &c.state).unwrap();
    assert_eq!(
        p.insert(c.tx(&u[1], sink(), 2, 0, 0), &c.state),
        Err(MempoolError::ReplacementUnderpriced { fee: 0, min_fee: 1 })
    );
    assert!(p.contains(&zero));
}

#[test]
fn full_pool_evicts_the_lowest_fee_only_for_a_higher_one() {
    let c = chain();
    let config = MempoolConfig {
        max_txs: 2,
        ..MempoolConfig::default()
    };
    let mut p = pool(&c, config);
    let u = &c.users;
    let low = p.insert(c.tx(&u[0], sink(), 1, 5, 0), &c.state).unwrap();
    let high = p.insert(c.tx(&u[1], sink(), 1, 10, 0), &c.state).unwrap();
    assert_eq!(
        p.insert(c.tx(&u[2], sink(), 1, 5, 0), &c.state),
        Err(MempoolError::PoolFull {
            fee: 5,
            lowest_fee: 5
        })
    );
    assert!(matches!(
        p.insert(c.tx(&u[2], sink(), 1, 3, 0), &c.state),
        Err(MempoolError::PoolFull { .. })
    ));
    let mid = p.insert(c.tx(&u[2], sink(), 1, 7, 0), &c.state).unwrap();
    assert!(!p.contains(&low));
    assert!(p.contains(&high) && p.contains(&mid));
    assert_eq!(p.len(), 2);
}

#[test]
fn byte_limit_is_enforced_by_eviction() {
    let c = chain();
    let one = c.tx(&c.users[0], sink(), 1, 1, 0);
    let size = one.encoded_len().unwrap();
    let config = MempoolConfig {
        max_bytes: size * 2 + size / 2,
        ..MempoolConfig::default()
    };
    let mut p = pool(&c, config.clone());
    p.insert(one, &c.state).unwrap();
    p.insert(c.tx(&c.users[1], sink(), 1, 2, 0), &c.state)
        .unwrap();
    assert!(p.bytes() <= config.max_bytes);
    p.insert(c.tx(&c.users[2], sink(), 1, 3, 0), &c.state)
        .unwrap();
    assert_eq!(p.len(), 2);
    assert!(p.bytes() <= config.max_bytes);
}

#[test]
fn canonical_changes_update_the_pool() {
    let mut c = chain();
    let mut p = pool(&c, MempoolConfig::default());
    let u = c.users.clone();
    let t0 = c.tx(&u[0], sink(), 10, 1, 0);
    let t1 = c.tx(&u[0], sink(), 10, 1, 1);
    let other = c.tx(&u[1], sink(), 10, 1, 0);
    for t in [&t0, &t1, &other] {
        p.insert(t.clone(), &c.state).unwrap();
    }
    // u1's nonce 0 gets included as a different transaction (a conflicting spend).
    let conflicting = c.tx(&u[1], sink(), 20, 1, 0);
    let g = c.genesis_block.header.clone();
    let block = c.block(&g, 1, vec![t0.clone(), conflicting]);
    let transition = c.state.execute_block(&block).unwrap();
    c.state.apply(&transition.diff).unwrap();
    assert_eq!(p.remove_included(&block), 2);
    assert_eq!(p.len(), 1);
    assert!(p.contains(&t1.hash()));

    // The block is reverted: its transactions come back; the conflicting one too.
    c.state.revert(&transition.undo).unwrap();
    let back: Vec<SignedTransaction> = block.txs.clone();
    assert_eq!(p.reinsert_reverted(back, &c.state).unwrap(), 2);
    assert_eq!(p.len(), 3);

    // Another branch spends u0's nonces 0 and 1: revalidation drops what is stale.
    let b = c.block(
        &g,
        1,
        vec![c.tx(&u[0], sink(), 1, 1, 0), c.tx(&u[0], sink(), 1, 1, 1)],
    );
    c.state.apply_block(&b).unwrap();
    assert_eq!(p.revalidate(&c.state).unwrap(), 2);
    assert_eq!(p.len(), 1);
}

mod bounds {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever arrives, the pool stays within its count, byte and per-sender bounds, and
        /// a full pool only ever trades a transaction for a strictly higher fee.
        #[test]
        fn bounds_hold_under_any_arrivals(
            arrivals in proptest::collection::vec((0usize..6, 0u64..4, 0u64..20), 1..40)
        ) {
            let c = chain();
            let config = MempoolConfig {
                max_txs: 5,
                max_bytes: 5 * 140,
                max_per_sender: 3,
                replacement_bump_percent: 10,
            };
            let mut p = pool(&c, config.clone());
            for (user, nonce, fee) in arrivals {
                let before = pooled(&p);
                let tx = c.tx(&c.users[user], sink(), 1, fee, nonce);
                let sender = tx.tx.sender();
                let result = p.insert(tx, &c.state);
                prop_assert!(p.len() <= config.max_txs);
                prop_assert!(p.bytes() <= config.max_bytes);
                let after = pooled(&p);
                match result {
                    // Anything that left was replaced (same sender and nonce) or evicted for
                    // a strictly higher fee.
                    Ok(_) => {
                        for (hash, (s, n, f)) in &before {
                            if !after.contains_key(hash) {
                                prop_assert!((*s == sender && *n == nonce) || *f < fee);
                            }
                        }
                    }
                    // A rejection changes nothing.
                    Err(_) => prop_assert_eq!(&before, &after),
                }
                let mut per_sender = std::collections::HashMap::new();
                p.select(|entry| {
                    *per_sender.entry(entry.sender).or_insert(0usize) += 1;
                    Selection::Included
                });
                prop_assert!(per_sender.values().all(|n| *n <= config.max_per_sender));
                prop_assert_eq!(per_sender.values().sum::<usize>(), p.len());
            }
        }
    }

    /// Every pooled transaction: hash -> (sender, nonce, fee).
    fn pooled(p: &Mempool) -> std::collections::HashMap<Hash, (Address, u64, u64)> {
        let mut out = std::collections::HashMap::new();
        p.select(|entry| {
            out.insert(
                entry.hash,
                (entry.sender, entry.tx.tx.nonce, entry.tx.tx.fee),
            );
            Selection::Included
        });
        out
    }
}
