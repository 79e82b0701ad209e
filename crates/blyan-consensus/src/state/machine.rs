//! The state transition behind a trait, and the default account state.

use std::collections::BTreeMap;

use blyan_crypto::{Address, Hash};

use crate::error::BlockError;
use crate::state::account::{Account, ExecError, account_key, apply_transfer};
use crate::state::diff::{PendingChanges, StateDiff, StateTransition, UndoData};
use crate::state::proof::AccountProof;
use crate::state::smt::{self, NodeStore};
use crate::state::store::{StateError, StateStore};
use crate::types::{Block, Transaction};

/// A state transition function over accounts: what a block's transactions do.
///
/// Execution never modifies the state: [`StateMachine::execute_block`] returns a
/// [`StateTransition`] (the diff to write, the undo data to keep), and only
/// [`StateMachine::apply`] changes the state. An embedding project plugs in its own rules
/// by implementing [`StateMachine::execute_tx`] (e.g. delegating the rest to an inner
/// [`AccountState`]).
pub trait StateMachine {
    /// The current state root.
    fn root(&self) -> Hash;

    /// The account under `address` (`None`: no account).
    fn account(&self, address: &Address) -> Result<Option<Account>, StateError>;

    /// Applies one transaction to `pending`; on error `pending` is unchanged.
    fn execute_tx(
        &self,
        pending: &mut PendingChanges,
        producer: &Address,
        tx: &Transaction,
    ) -> Result<(), ExecError>;

    /// The root, diff and undo data of `pending` on top of the current state.
    fn seal(&self, pending: &PendingChanges) -> Result<StateTransition, StateError>;

    /// Writes a diff computed on this state (its `old_root` must be the current root).
    fn apply(&mut self, diff: &StateDiff) -> Result<(), StateError>;

    /// The diff that takes the state back from `undo.root_after` to `undo.root_before`.
    fn revert_diff(&self, undo: &UndoData) -> Result<StateDiff, StateError>;

    /// A proof of the account under `address` (or of its absence) against [`Self::root`].
    fn prove(&self, address: &Address) -> Result<AccountProof, StateError>;

    /// Executes a block's transactions, in order, with the fee going to its producer.
    /// Checks only the state rules (nonce, balance, overflow); the block validator checks
    /// the rest, including that the resulting root is the header's `state_root`.
    fn execute_block(&self, block: &Block) -> Result<StateTransition, BlockError> {
        let producer = block.header.producer.address();
        let mut pending = PendingChanges::new();
        for (index, signed) in block.txs.iter().enumerate() {
            match self.execute_tx(&mut pending, &producer, &signed.tx) {
                Ok(()) => {}
                Err(ExecError::Tx(error)) => {
                    return Err(BlockError::InvalidTx {
                        index,
                        hash: signed.hash(),
                        error,
                    });
                }
                Err(ExecError::State(e)) => return Err(BlockError::Storage(e)),
            }
        }
        self.seal(&pending).map_err(BlockError::Storage)
    }

    /// Executes and applies a block (no header checks): the transition is returned so the
    /// caller can persist the diff and the undo data.
    fn apply_block(&mut self, block: &Block) -> Result<StateTransition, BlockError> {
        let transition = self.execute_block(block)?;
        self.apply(&transition.diff).map_err(BlockError::Storage)?;
        Ok(transition)
    }

    /// Reverts a block applied earlier: returns the diff written.
    fn revert(&mut self, undo: &UndoData) -> Result<StateDiff, StateError> {
        let diff = self.revert_diff(undo)?;
        self.apply(&diff)?;
        Ok(diff)
    }
}

/// The default state: accounts `{balance, nonce}` in a [`StateStore`], committed by a sparse
/// Merkle tree, with [`apply_transfer`] as the transaction rule.
#[derive(Debug, Clone)]
pub struct AccountState<S> {
    store: S,
    root: Hash,
}

impl<S: StateStore> AccountState<S> {
    /// Opens the state held by `store` (at the root it records).
    pub fn open(store: S) -> Result<Self, StateError> {
        let root = store.state_root().map_err(StateError::Store)?;
        Ok(Self { store, root })
    }

    /// The backing store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Sets accounts directly (genesis allocation, tests, benches): the transition that
    /// results, not yet applied.
    pub fn set_accounts(
        &self,
        accounts: impl IntoIterator<Item = (Address, Account)>,
    ) -> Result<StateTransition, StateError> {
        let mut pending = PendingChanges::new();
        for (address, account) in accounts {
            pending.set(self, address, account)?;
        }
        self.seal(&pending)
    }

    /// Computes the tree update for account changes `(address, new value)`.
    fn diff_for(
        &self,
        changes: &BTreeMap<Address, Option<Account>>,
    ) -> Result<StateDiff, StateError> {
        let keys: BTreeMap<Hash, Option<Hash>> = changes
            .iter()
            .map(|(address, account)| (account_key(address), account.map(|a| a.hash())))
            .collect();
        let update = smt::update(&self.store, self.root, &keys)?;
        Ok(StateDiff {
            old_root: self.root,
            new_root: update.root,
            accounts: changes.clone(),
            nodes: update.nodes,
        })
    }
}

impl<S: StateStore> StateMachine for AccountState<S> {
    fn root(&self) -> Hash {
        self.root
    }

    fn account(&self, address: &Address) -> Result<Option<Account>, StateError> {
        self.store.account(address).map_err(StateError::Store)
    }

    fn execute_tx(
        &self,
        pending: &mut PendingChanges,
        producer: &Address,
        tx: &Transaction,
    ) -> Result<(), ExecError> {
        apply_transfer(self, pending, producer, tx)
    }

    fn seal(&self, pending: &PendingChanges) -> Result<StateTransition, StateError> {
        let mut after = BTreeMap::new();
        let mut before = BTreeMap::new();
        for (address, old, new) in pending.changes() {
            after.insert(address, new);
            before.insert(address, old);
        }
        let diff = self.diff_for(&after)?;
        let undo = UndoData {
            root_before: self.root,
            root_after: diff.new_root,
            accounts: before,
        };
        Ok(StateTransition { diff, undo })
    }

    fn apply(&mut self, diff: &StateDiff) -> Result<(), StateError> {
        if diff.old_root != self.root {
            return Err(StateError::RootMismatch {
                expected: diff.old_root,
                actual: self.root,
            });
        }
        self.store.write(diff).map_err(StateError::Store)?;
        self.root = diff.new_root;
        Ok(())
    }

    fn revert_diff(&self, undo: &UndoData) -> Result<StateDiff, StateError> {
        if undo.root_after != self.root {
            return Err(StateError::RootMismatch {
                expected: undo.root_after,
                actual: self.root,
            });
        }
        let diff = self.diff_for(&undo.accounts)?;
        if diff.new_root != undo.root_before {
            return Err(StateError::UndoMismatch {
                expected: undo.root_before,
                computed: diff.new_root,
            });
        }
        Ok(diff)
    }

    fn prove(&self, address: &Address) -> Result<AccountProof, StateError> {
        let proof = smt::prove(&self.store, self.root, &account_key(address))?;
        let account = self.account(address)?;
        Ok(AccountProof { account, proof })
    }
}

impl<S: NodeStore> NodeStore for AccountState<S> {
    fn node(&self, hash: &Hash) -> Result<Option<smt::SmtNode>, crate::state::StoreError> {
        self.store.node(hash)
    }
}
