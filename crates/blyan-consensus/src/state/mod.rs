//! The account state: the [`StateMachine`] trait, the default [`AccountState`], the sparse
//! Merkle tree that commits to it, its storage trait and the diffs, undo data and proofs
//! it produces.

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
