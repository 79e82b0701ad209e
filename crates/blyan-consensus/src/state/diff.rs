//! What applying a block changes: the pending account changes while executing, then the
//! [`StateDiff`] a database writes and the [`UndoData`] that takes it back.

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;

use blyan_crypto::{Address, Hash};
use serde::{Deserialize, Serialize};

use crate::state::account::Account;
use crate::state::machine::StateMachine;
use crate::state::smt::NodeChanges;
use crate::state::store::StateError;

/// Accounts changed so far by the transactions of a block being executed, on top of a
/// state that is not modified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PendingChanges {
    /// Current value of every touched account.
    current: BTreeMap<Address, Account>,
    /// Value before the block of every touched account (`None`: absent).
    original: BTreeMap<Address, Option<Account>>,
}

impl PendingChanges {
    /// No changes.
    pub fn new() -> Self {
        Self::default()
    }

    /// The account's value with the pending changes, read through to `state`.
    pub fn account<S: StateMachine + ?Sized>(
        &self,
        state: &S,
        address: &Address,
    ) -> Result<Account, StateError> {
        match self.current.get(address) {
            Some(account) => Ok(*account),
            None => Ok(state.account(address)?.unwrap_or_default()),
        }
    }

    /// Sets the account's value (the empty account means absent).
    pub fn set<S: StateMachine + ?Sized>(
        &mut self,
        state: &S,
        address: Address,
        account: Account,
    ) -> Result<(), StateError> {
        if let Entry::Vacant(entry) = self.original.entry(address) {
            entry.insert(state.account(&address)?);
        }
        self.current.insert(address, account);
        Ok(())
    }

    /// Whether nothing was touched.
    pub fn is_empty(&self) -> bool {
        self.current.is_empty()
    }

    /// The touched accounts whose value differs from before: `(address, before, after)`,
    /// with `None` for absent (empty) accounts.
    pub fn changes(&self) -> impl Iterator<Item = (Address, Option<Account>, Option<Account>)> {
        self.current.iter().filter_map(|(address, account)| {
            let before = self.original.get(address).copied().flatten();
            let after = Some(*account).filter(|a| !a.is_empty());
            (before != after).then_some((*address, before, after))
        })
    }
}

/// The writes of one state change, as a database applies them in one transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateDiff {
    /// The root the change starts from.
    pub old_root: Hash,
    /// The root after the change.
    pub new_root: Hash,
    /// Accounts to write (`Some`) or delete (`None`).
    pub accounts: BTreeMap<Address, Option<Account>>,
    /// State tree nodes to write (`Some`) or delete (`None`), by node hash.
    pub nodes: NodeChanges,
}

/// What it takes to revert one block's state change: the previous values of the touched
/// accounts. The tree nodes are recomputed from them (the tree's shape depends only on its
/// contents), so the undo data stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UndoData {
    /// Root before the block.
    pub root_before: Hash,
    /// Root after the block.
    pub root_after: Hash,
    /// Previous value of every changed account (`None`: it did not exist).
    pub accounts: BTreeMap<Address, Option<Account>>,
}

/// The effect of one block on the state: the diff to write and the undo data to keep.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTransition {
    /// The writes.
    pub diff: StateDiff,
    /// How to take them back.
    pub undo: UndoData,
}

impl StateTransition {
    /// The state root after the transition.
    pub fn root(&self) -> Hash {
        self.diff.new_root
    }
}
