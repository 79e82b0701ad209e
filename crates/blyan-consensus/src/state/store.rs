//! Where the state lives: the [`StateStore`] trait (accounts, tree nodes, root; written one
//! [`StateDiff`] at a time) and its in-memory implementation.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use blyan_crypto::{Address, Hash};

use crate::state::account::Account;
use crate::state::diff::StateDiff;
use crate::state::smt::{EMPTY_ROOT, NodeStore, SmtNode};

/// A storage backend failed (I/O, a corrupt table). Opaque so that any backend (`redb`, a
/// test double) can report its own error; the source is kept for logs.
#[derive(Clone)]
pub struct StoreError(Arc<dyn std::error::Error + Send + Sync>);

impl StoreError {
    /// Wraps a backend's error.
    pub fn new<E: std::error::Error + Send + Sync + 'static>(error: E) -> Self {
        Self(Arc::new(error))
    }
}

impl fmt::Debug for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreError({:?})", self.0)
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl PartialEq for StoreError {
    /// Two store errors are equal only if they are the same error value.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StoreError {}

/// The state could not be read or changed. None of these is a verdict on a block.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The backend failed.
    #[error("state store: {0}")]
    Store(#[source] StoreError),
    /// A tree node reachable from the root is not stored: the store is damaged.
    #[error("state tree node {0} is missing")]
    MissingNode(Hash),
    /// The tree is deeper than the key space: the store is damaged.
    #[error("state tree is malformed near {0}")]
    CorruptTree(Hash),
    /// A diff or undo was applied to a state with another root.
    #[error("state root is {actual}, the change expects {expected}")]
    RootMismatch {
        /// The root the diff or undo starts from.
        expected: Hash,
        /// The current root.
        actual: Hash,
    },
    /// Reverting did not lead back to the recorded root: the undo data is not this
    /// state's.
    #[error("undo leads to {computed}, expected {expected}")]
    UndoMismatch {
        /// `UndoData::root_before`.
        expected: Hash,
        /// The root reached.
        computed: Hash,
    },
}

/// Persistent state: accounts by address, tree nodes by hash, and the current root.
///
/// Reads go through the getters; the only write is [`StateStore::write`], which applies a
/// whole [`StateDiff`] at once (a database does it in one transaction, together with the
/// block and its undo data).
pub trait StateStore: NodeStore {
    /// The current state root ([`EMPTY_ROOT`] for an empty store).
    fn state_root(&self) -> Result<Hash, StoreError>;

    /// The account stored under `address`.
    fn account(&self, address: &Address) -> Result<Option<Account>, StoreError>;

    /// Writes the accounts and nodes of `diff` (`None` = delete) and sets the root to
    /// `diff.new_root`.
    fn write(&mut self, diff: &StateDiff) -> Result<(), StoreError>;
}

/// A [`StateStore`] in memory: for tests, benches, simulations and light tooling.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryStore {
    root: Hash,
    accounts: HashMap<Address, Account>,
    nodes: HashMap<Hash, SmtNode>,
}

impl MemoryStore {
    /// An empty store (root [`EMPTY_ROOT`]).
    pub fn new() -> Self {
        Self {
            root: EMPTY_ROOT,
            accounts: HashMap::new(),
            nodes: HashMap::new(),
        }
    }

    /// Number of stored accounts.
    pub fn account_count(&self) -> usize {
        self.accounts.len()
    }

    /// Number of stored tree nodes.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Reserves room for `accounts` more accounts (and their tree nodes), for bulk loads.
    pub fn reserve(&mut self, accounts: usize) {
        self.accounts.reserve(accounts);
        self.nodes.reserve(accounts.saturating_mul(2));
    }
}

impl NodeStore for MemoryStore {
    fn node(&self, hash: &Hash) -> Result<Option<SmtNode>, StoreError> {
        Ok(self.nodes.get(hash).copied())
    }
}

impl StateStore for MemoryStore {
    fn state_root(&self) -> Result<Hash, StoreError> {
        Ok(self.root)
    }

    fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        Ok(self.accounts.get(address).copied())
    }

    fn write(&mut self, diff: &StateDiff) -> Result<(), StoreError> {
        for (address, account) in &diff.accounts {
            match account {
                Some(account) => self.accounts.insert(*address, *account),
                None => self.accounts.remove(address),
            };
        }
        for (hash, node) in &diff.nodes {
            match node {
                Some(node) => self.nodes.insert(*hash, *node),
                None => self.nodes.remove(hash),
            };
        }
        self.root = diff.new_root;
        Ok(())
    }
}
