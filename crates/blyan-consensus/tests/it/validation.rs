//! One invalid block per validity rule, each rejected with its own `BlockError` variant,
//! with the state untouched.

use blyan_consensus::{
    Block, BlockError, Header, SignedTransaction, StateMachine, Transaction, TxError,
};
use blyan_crypto::{KeyPair, Signature, SignatureError, sha256};

use crate::chain_fixture::{CHAIN_ID, Chain, GENESIS_TIME, SLOT_MS, USER_BALANCE, chain};

/// A case: the block, the parent it is validated against, the clock, and the check.
struct Case {
    name: &'static str,
    block: Block,
    parent: Header,
    now_ms: u64,
    expect: fn(&BlockError) -> bool,
}

fn data_tx(c: &Chain, from: &KeyPair, nonce: u64, len: usize) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN_ID,
        from: from.public_key(),
        to: c.users[5].address(),
        amount: 1,
        fee: 1,
        nonce,
        data: vec![7; len],
    }
    .sign(from)
}

fn cases(c: &Chain) -> Vec<Case> {
    let g = c.genesis_block.header.clone();
    let now = c.time_in(1);
    let u = &c.users;
    let to = u[1].address();
    let ok_tx = || c.tx(&u[0], to, 10, 1, 0);
    let mut out = Vec::new();
    let mut case = |name, block, parent: &Header, now_ms, expect| {
        out.push(Case {
            name,
            block,
            parent: parent.clone(),
            now_ms,
            expect,
        })
    };

    let mut h = c.header(&g, 1);
    h.version = 2;
    case("version", c.seal(h, vec![]), &g, now, |e| {
        matches!(e, BlockError::UnsupportedVersion { got: 2, .. })
    });

    let mut h = c.header(&g, 1);
    h.chain_id = CHAIN_ID + 1;
    case(
        "chain id",
        c.seal(h, vec![]),
        &g,
        now,
        |e| matches!(e, BlockError::WrongChain { got, .. } if *got == CHAIN_ID + 1),
    );

    let mut h = c.header(&g, 1);
    h.height = 5;
    case("height", c.seal(h, vec![]), &g, now, |e| {
        matches!(
            e,
            BlockError::WrongHeight {
                expected: 1,
                got: 5
            }
        )
    });

    let mut h = c.header(&g, 1);
    h.parent_hash = sha256(b"elsewhere");
    case("parent", c.seal(h, vec![]), &g, now, |e| {
        matches!(e, BlockError::WrongParent { .. })
    });

    // Slot 0 again, with a timestamp after the genesis timestamp.
    let mut h = c.header(&g, 0);
    h.timestamp_ms = GENESIS_TIME + 1;
    case("slot after parent", c.seal(h, vec![]), &g, now, |e| {
        matches!(
            e,
            BlockError::SlotNotAfterParent {
                slot: 0,
                parent_slot: 0
            }
        )
    });

    // Slot 3 while the clock is in slot 1 (max_future_slots = 1).
    let h = c.header(&g, 3);
    case("future slot", c.seal(h, vec![]), &g, now, |e| {
        matches!(
            e,
            BlockError::SlotInFuture {
                slot: 3,
                now_slot: 1
            }
        )
    });

    // Slot 1 belongs to validator 1; validator 0 signs it.
    let mut h = c.header(&g, 1);
    h.producer = c.validators[0].public_key();
    let block = Block::sign(h, vec![], &c.validators[0]);
    case("producer", block, &g, now, |e| {
        matches!(e, BlockError::WrongProducer { slot: 1, .. })
    });

    let mut block = c.seal(c.header(&g, 1), vec![]);
    block.signature = Signature::from_bytes([0x11; 64]);
    case("producer signature", block, &g, now, |e| {
        matches!(e, BlockError::BadSignature(_))
    });
    let mut block = c.seal(c.header(&g, 1), vec![]);
    block.signature = c.validators[0].sign(
        blyan_crypto::Domain::Block,
        CHAIN_ID,
        block.hash().as_bytes(),
    );
    case("producer signature by another key", block, &g, now, |e| {
        matches!(e, BlockError::BadSignature(SignatureError::Mismatch))
    });

    let mut h = c.header(&g, 1);
    h.timestamp_ms = GENESIS_TIME + 2 * SLOT_MS;
    case("timestamp in slot", c.seal(h, vec![]), &g, now, |e| {
        matches!(e, BlockError::TimestampOutsideSlot { slot: 1, .. })
    });

    // A parent (slot 1) whose timestamp is late; the child in slot 2 is earlier.
    let mut late_parent = c.header(&g, 1);
    late_parent.timestamp_ms = c.time_in(2) + 500;
    let mut h = c.header(&late_parent, 2);
    h.state_root = c.state.root();
    case(
        "timestamp after parent",
        c.seal(h, vec![]),
        &late_parent,
        c.time_in(2),
        |e| matches!(e, BlockError::TimestampNotAfterParent { .. }),
    );

    let txs: Vec<_> = (0..5).map(|n| c.tx(&u[0], to, 1, 1, n)).collect();
    case("tx count", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(e, BlockError::TooManyTxs { count: 5, max: 4 })
    });

    let txs: Vec<_> = (0..4).map(|n| data_tx(c, &u[0], n, 64)).collect();
    case("block size", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(e, BlockError::TooLarge { max: 900, .. })
    });

    let txs = vec![data_tx(c, &u[0], 0, 65)];
    case("tx data size", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(
            e,
            BlockError::InvalidTx {
                index: 0,
                error: TxError::DataTooLarge { len: 65, max: 64 },
                ..
            }
        )
    });

    let mut other_chain = ok_tx().tx;
    other_chain.chain_id = 7;
    let txs = vec![other_chain.sign(&u[0])];
    case("tx chain id", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(
            e,
            BlockError::InvalidTx {
                index: 0,
                error: TxError::WrongChain { got: 7, .. },
                ..
            }
        )
    });

    // The second transaction is u[2]'s, signed by u[3].
    let forged = c.tx(&u[2], to, 1, 1, 0).tx.sign(&u[3]);
    let txs = vec![ok_tx(), forged];
    case("tx signature", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(e, BlockError::BadTxSignature { index: 1, .. })
    });

    let txs = vec![ok_tx(), ok_tx()];
    case("duplicate tx", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(e, BlockError::DuplicateTx { index: 1, .. })
    });

    let mut block = c.seal(c.header(&g, 1), vec![ok_tx()]);
    block.header.tx_root = sha256(b"not the root");
    let block = Block::sign(block.header, block.txs, c.producer(1));
    case("tx root", block, &g, now, |e| {
        matches!(e, BlockError::TxRootMismatch { .. })
    });

    let txs = vec![c.tx(&u[0], to, 1, 1, 3)];
    case("nonce", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(
            e,
            BlockError::InvalidTx {
                error: TxError::BadNonce {
                    expected: 0,
                    got: 3,
                    ..
                },
                ..
            }
        )
    });

    let txs = vec![c.tx(&u[0], to, USER_BALANCE, 1, 0)];
    case("balance", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(
            e,
            BlockError::InvalidTx {
                error: TxError::InsufficientBalance { .. },
                ..
            }
        )
    });

    let whale = c.whale.address();
    let txs = vec![c.tx(&u[0], whale, 10, 1, 0)];
    case("overflow", c.seal(c.header(&g, 1), txs), &g, now, |e| {
        matches!(
            e,
            BlockError::InvalidTx {
                error: TxError::Overflow { .. },
                ..
            }
        )
    });

    let mut h = c.header(&g, 1);
    h.state_root = sha256(b"not the state");
    case("state root", c.seal(h, vec![ok_tx()]), &g, now, |e| {
        matches!(e, BlockError::StateRootMismatch { .. })
    });

    out
}

#[test]
fn valid_block_passes_every_entry_point() {
    let c = chain();
    let g = &c.genesis_block.header;
    let txs = vec![
        c.tx(&c.users[0], c.users[1].address(), 10, 2, 0),
        c.tx(&c.users[0], c.users[2].address(), 5, 1, 1),
    ];
    let block = c.block(g, 1, txs);
    c.validator.verify_block(&block).unwrap();
    c.validator
        .verify_signed_header(&block.header, &block.signature, g, c.time_in(1))
        .unwrap();
    let transition = c
        .validator
        .validate_block(&block, g, &c.state, c.time_in(1))
        .unwrap();
    assert_eq!(transition.root(), block.header.state_root);
    assert_eq!(
        c.validator.verify_state(&block, &c.state).unwrap(),
        transition
    );
    // The clock may be one slot behind the block (max_future_slots = 1), not two.
    c.validator
        .verify_header(&block.header, g, c.time_in(0))
        .unwrap();
}

#[test]
fn each_rule_has_its_own_rejection_and_leaves_state_unchanged() {
    let c = chain();
    let root = c.state.root();
    let store = c.state.store().clone();
    let cases = cases(&c);
    assert!(cases.len() >= 20);
    for case in cases {
        let err = c
            .validator
            .validate_block(&case.block, &case.parent, &c.state, case.now_ms)
            .unwrap_err();
        assert!((case.expect)(&err), "{}: got {err:?}", case.name);
        let local = matches!(err, BlockError::SlotInFuture { .. });
        assert_eq!(err.is_invalid_block(), !local, "{}", case.name);
        assert_eq!(c.state.root(), root, "{}", case.name);
        assert_eq!(c.state.store(), &store, "{}", case.name);
    }
}

#[test]
fn unknown_parent_is_reported_for_the_orphan_buffer() {
    let c = chain();
    let mut h = c.header(&c.genesis_block.header, 1);
    h.parent_hash = sha256(b"never seen");
    let err = c.validator.find_parent(&h, |_| None).unwrap_err();
    assert_eq!(err, BlockError::UnknownParent(sha256(b"never seen")));
    assert!(!err.is_invalid_block());
    let g = c.genesis_block.header.clone();
    let found = c
        .validator
        .find_parent(&c.header(&g, 1), |hash| (*hash == g.hash()).then_some(&g))
        .unwrap();
    assert_eq!(found, &g);
}

#[test]
fn stateless_checks_reject_without_the_parent() {
    let c = chain();
    let block = c.seal(c.header(&c.genesis_block.header, 1), vec![]);
    let mut bad = block.clone();
    bad.header.version = 9;
    assert!(matches!(
        c.validator.verify_block(&bad),
        Err(BlockError::UnsupportedVersion { .. })
    ));
    let mut bad = block;
    bad.signature = Signature::from_bytes([0; 64]);
    assert!(matches!(
        c.validator.verify_block(&bad),
        Err(BlockError::BadSignature(_))
    ));
}
