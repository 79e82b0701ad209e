//! State machine invariants: applies and reverts in any order agree with a replay from
//! scratch (same root, same stored nodes); proofs verify for present and absent accounts and
//! fail when tampered with.

use blyan_consensus::state::PendingChanges;
use blyan_consensus::{
    Account, AccountState, MemoryStore, StateError, StateMachine, Transaction, UndoData,
};
use blyan_crypto::{Address, Hash, KeyPair};
use proptest::prelude::*;

/// Accounts in play: 6 keys that can send, plus 4 addresses that only receive.
fn keys() -> Vec<KeyPair> {
    (0..6u8).map(|i| KeyPair::from_seed(&[i + 1; 32])).collect()
}

fn addresses(keys: &[KeyPair]) -> Vec<Address> {
    let mut out: Vec<Address> = keys.iter().map(KeyPair::address).collect();
    out.extend((0..4u8).map(|i| Address::from_bytes([0xA0 + i; 20])));
    out
}

fn fresh_state(keys: &[KeyPair]) -> AccountState<MemoryStore> {
    let mut state = AccountState::open(MemoryStore::new()).unwrap();
    let initial = state
        .set_accounts(keys.iter().map(|k| {
            (
                k.address(),
                Account {
                    balance: 100,
                    nonce: 0,
                },
            )
        }))
        .unwrap();
    state.apply(&initial.diff).unwrap();
    state
}

/// A transfer intent: (sender index, recipient index, amount, fee).
type Intent = (usize, usize, u64, u64);

/// Executes the intents that are valid on `state` (correct nonces filled in); returns the
/// accepted transactions and the transition's undo data after applying it.
fn apply_intents(
    state: &mut AccountState<MemoryStore>,
    keys: &[KeyPair],
    all: &[Address],
    producer: &Address,
    intents: &[Intent],
) -> (Vec<Transaction>, UndoData) {
    let mut pending = PendingChanges::new();
    let mut accepted = Vec::new();
    for &(from, to, amount, fee) in intents {
        let key = &keys[from % keys.len()];
        let nonce = pending.account(&*state, &key.address()).unwrap().nonce;
        let tx = Transaction {
            chain_id: 1,
            from: key.public_key(),
            to: all[to % all.len()],
            amount,
            fee,
            nonce,
            data: vec![],
        };
        if state.execute_tx(&mut pending, producer, &tx).is_ok() {
            accepted.push(tx);
        }
    }
    let transition = state.seal(&pending).unwrap();
    state.apply(&transition.diff).unwrap();
    (accepted, transition.undo)
}

fn replay(
    keys: &[KeyPair],
    producer: &Address,
    blocks: &[Vec<Transaction>],
) -> AccountState<MemoryStore> {
    let mut state = fresh_state(keys);
    for txs in blocks {
        let mut pending = PendingChanges::new();
        for tx in txs {
            state.execute_tx(&mut pending, producer, tx).unwrap();
        }
        let transition = state.seal(&pending).unwrap();
        state.apply(&transition.diff).unwrap();
    }
    state
}

#[derive(Debug, Clone)]
enum Op {
    Apply(Vec<Intent>),
    Revert,
}

fn op() -> impl Strategy<Value = Op> {
    // Amounts up to 120 empty some accounts (deleting them) and fail others.
    let intent = (0usize..6, 0usize..10, 0u64..120, 0u64..4);
    prop_oneof![
        3 => proptest::collection::vec(intent, 0..8).prop_map(Op::Apply),
        1 => Just(Op::Revert),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn applies_and_reverts_match_a_replay(ops in proptest::collection::vec(op(), 1..24)) {
        let keys = keys();
        let all = addresses(&keys);
        // The producer is one of the receive-only addresses.
        let producer = all[7];
        let mut state = fresh_state(&keys);
        let mut applied: Vec<(Vec<Transaction>, UndoData)> = Vec::new();
        for op in ops {
            match op {
                Op::Apply(intents) => {
                    let before = state.store().clone();
                    let entry = apply_intents(&mut state, &keys, &all, &producer, &intents);
                    // Apply then revert restores the exact store, then re-apply.
                    let mut probe = AccountState::open(state.store().clone()).unwrap();
                    probe.revert(&entry.1).unwrap();
                    prop_assert_eq!(probe.store(), &before);
                    applied.push(entry);
                }
                Op::Revert => {
                    if let Some((_, undo)) = applied.pop() {
                        state.revert(&undo).unwrap();
                    }
                }
            }
        }
        let blocks: Vec<Vec<Transaction>> = applied.iter().map(|(txs, _)| txs.clone()).collect();
        let replayed = replay(&keys, &producer, &blocks);
        prop_assert_eq!(state.root(), replayed.root());
        prop_assert_eq!(state.store(), replayed.store());

        // Every address, present or absent, has a proof that verifies against the root alone.
        for address in &all {
            let proof = state.prove(address).unwrap();
            let proven = proof.verify(&state.root(), address).unwrap();
            prop_assert_eq!(proven, state.account(address).unwrap());
        }
    }

    #[test]
    fn tampered_proofs_fail(seed in 0u8..6, tweak in 1u64..1_000, sibling in 0usize..8) {
        let keys = keys();
        let all = addresses(&keys);
        let state = fresh_state(&keys);
        let root = state.root();

        let present = keys[usize::from(seed)].address();
        let proof = state.prove(&present).unwrap();
        prop_assert!(proof.verify(&root, &present).unwrap().is_some());

        // A different balance.
        let mut forged = proof.clone();
        if let Some(account) = forged.account.as_mut() {
            account.balance = account.balance.wrapping_add(tweak);
        }
        prop_assert!(forged.verify(&root, &present).is_err());

        // Claiming absence for a present account.
        let mut forged = proof.clone();
        forged.account = None;
        prop_assert!(forged.verify(&root, &present).is_err());

        // A changed sibling.
        let mut forged = proof.clone();
        let len = forged.proof.siblings.len();
        if len > 0 {
            let s = &mut forged.proof.siblings[sibling % len];
            let mut bytes = s.to_bytes();
            bytes[0] ^= 1;
            *s = Hash::from_bytes(bytes);
            prop_assert!(forged.verify(&root, &present).is_err());
        }

        // The proof of one account is not a proof for another.
        let other = keys[(usize::from(seed) + 1) % keys.len()].address();
        prop_assert!(proof.verify(&root, &other).is_err());

        // An absent account: its proof verifies as absent, and claiming a value fails.
        let absent = all[8];
        let proof = state.prove(&absent).unwrap();
        prop_assert_eq!(proof.verify(&root, &absent).unwrap(), None);
        let mut forged = proof.clone();
        forged.account = Some(Account { balance: tweak, nonce: 0 });
        prop_assert!(forged.verify(&root, &absent).is_err());

        // Against another root, nothing verifies.
        prop_assert!(proof.verify(&Hash::from_bytes([7; 32]), &absent).is_err());
    }
}

#[test]
fn diff_and_undo_are_checked_against_the_current_root() {
    let keys = keys();
    let all = addresses(&keys);
    let mut state = fresh_state(&keys);
    let (_, undo) = apply_intents(&mut state, &keys, &all, &all[7], &[(0, 1, 10, 1)]);
    let mut other = fresh_state(&keys);
    // Undo data of a block this state never applied.
    assert!(matches!(
        other.revert(&undo),
        Err(StateError::RootMismatch { .. })
    ));
    state.revert(&undo).unwrap();
    assert_eq!(state.root(), other.root());
    // Reverting twice is refused.
    assert!(state.revert(&undo).is_err());
    let _ = &mut other;
}

#[test]
fn state_root_grows_logarithmically() {
    // 2 000 accounts: a proof's depth stays near log2(2000) ≈ 11, far from 256.
    let mut state = AccountState::open(MemoryStore::new()).unwrap();
    let accounts = (0..2_000u32).map(|i| {
        let mut bytes = [0u8; 20];
        bytes[..4].copy_from_slice(&i.to_be_bytes());
        (
            Address::from_bytes(bytes),
            Account {
                balance: u64::from(i) + 1,
                nonce: 0,
            },
        )
    });
    let transition = state.set_accounts(accounts).unwrap();
    state.apply(&transition.diff).unwrap();
    assert_eq!(state.store().account_count(), 2_000);
    // n leaves and about n / ln 2 ≈ 1.44 n internal nodes (a random binary trie with lone
    // leaves lifted): linear in n, nothing like 256 nodes per account.
    assert!(
        state.store().node_count() < 5_200,
        "{}",
        state.store().node_count()
    );
    let mut bytes = [0u8; 20];
    bytes[..4].copy_from_slice(&7u32.to_be_bytes());
    let proof = state.prove(&Address::from_bytes(bytes)).unwrap();
    assert!(
        proof.proof.siblings.len() <= 30,
        "{}",
        proof.proof.siblings.len()
    );
}
