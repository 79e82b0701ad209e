//! The account state: the [`StateMachine`] trait, the default [`AccountState`], the sparse
//! Merkle tree that commits to it, its storage trait and the diffs, undo data and proofs
//! it produces.
//!
//! Execution never writes: it yields a [`StateTransition`] (a [`StateDiff`] to write and the
//! [`UndoData`] to keep); [`StateMachine::apply`] writes, [`StateMachine::revert`] takes it
//! back exactly (same root, same stored nodes).
//!
//! ```
//! use blyan_consensus::{Account, AccountState, MemoryStore, StateMachine};
//! use blyan_crypto::Address;
//!
//! let alice = Address::from_bytes([1; 20]);
//! let mut state = AccountState::open(MemoryStore::new())?;
//! let empty = state.store().clone();
//! let transition = state.set_accounts([(alice, Account { balance: 5, nonce: 0 })])?;
//! state.apply(&transition.diff)?;
//!
//! // A proof checks against the root alone, for present and absent accounts.
//! let root = state.root();
//! assert_eq!(state.prove(&alice)?.verify(&root, &alice)?, Some(Account { balance: 5, nonce: 0 }));
//! let bob = Address::from_bytes([2; 20]);
//! assert_eq!(state.prove(&bob)?.verify(&root, &bob)?, None);
//!
//! state.revert(&transition.undo)?;
//! assert_eq!(state.store(), &empty);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod account;
mod diff;
mod machine;
mod proof;
mod smt;
mod store;

pub use account::{Account, ExecError, account_key, apply_transfer};
pub use diff::{PendingChanges, StateDiff, StateTransition, UndoData};
pub use machine::{AccountState, StateMachine};
pub use proof::AccountProof;
pub use smt::{
    EMPTY_ROOT, MAX_DEPTH, NodeChanges, NodeStore, ProofError, SmtNode, SmtProof, SmtUpdate,
    internal_hash, leaf_hash,
};
pub use store::{MemoryStore, StateError, StateStore, StoreError};

/// Free functions over a [`NodeStore`]: the raw tree, for tools and other state layouts.
pub mod tree {
    pub use super::smt::{get, prove, update};
}
