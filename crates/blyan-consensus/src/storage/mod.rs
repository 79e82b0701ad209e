//! Crash-safe storage of the chain in an embedded `redb` database: blocks, the block tree's
//! metadata, the canonical index, the account state with its Merkle tree, undo data and the
//! tip, all written by one transaction per block import.
//!
//! The layout is described table by table in [`schema`] and in `docs/architecture.md`
//! ("Storage"). Writers go through [`ChainStore::write`], which opens every table of one
//! redb write transaction, hands them to a closure and commits only if the closure
//! succeeds: an error (an invalid block found half-way through a reorg, a full disk)
//! leaves the database exactly as it was.

mod node_cache;
mod redb_store;
pub mod schema;

use blyan_crypto::Hash;

use crate::state::StateError;

pub use redb_store::{ChainStore, StateTables, StateView, StoreStats, WriteTables};
pub use schema::{BlockRecord, SCHEMA_VERSION};

/// Why the chain database could not be read or written.
///
/// Every variant is a local problem (disk, corruption, a database of another chain); none is
/// a verdict on a block.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database file could not be opened or created (I/O, lock held by another process,
    /// a file that is not a redb database, an aborted repair).
    #[error("cannot open the chain database: {0}")]
    Open(#[from] redb::DatabaseError),
    /// A transaction could not start.
    #[error("cannot start a database transaction: {0}")]
    Transaction(#[from] redb::TransactionError),
    /// A table could not be opened.
    #[error("cannot open a database table: {0}")]
    Table(#[from] redb::TableError),
    /// A read or write failed (I/O, corruption detected by redb).
    #[error("database read or write failed: {0}")]
    Io(#[from] redb::StorageError),
    /// The commit failed; the transaction's writes are not in the database.
    #[error("database commit failed: {0}")]
    Commit(#[from] redb::CommitError),
    /// The durability of a transaction could not be set.
    #[error("cannot set commit durability: {0}")]
    Durability(#[from] redb::SetDurabilityError),
    /// A stored value does not decode: the file is damaged or was written by other code.
    #[error("corrupt value in table `{table}`")]
    Corrupt {
        /// The table holding the value.
        table: &'static str,
    },
    /// A value a consistent database always holds is missing.
    #[error("`{what}` missing for {hash} in the chain database")]
    Missing {
        /// What is missing (block, block meta, undo data, canonical entry).
        what: &'static str,
        /// The block it belongs to.
        hash: Hash,
    },
    /// A meta entry is missing from an initialised database.
    #[error("meta entry `{0}` is missing")]
    MissingMeta(&'static str),
    /// The database belongs to another chain (another genesis).
    #[error("database is for genesis {stored}, this node runs genesis {expected}")]
    GenesisMismatch {
        /// The genesis hash recorded in the database.
        stored: Hash,
        /// The genesis hash of the configured chain.
        expected: Hash,
    },
    /// The database was written by a newer version of this software.
    #[error("database schema version {found} is newer than the supported {supported}")]
    SchemaTooNew {
        /// The stored version.
        found: u32,
        /// [`SCHEMA_VERSION`].
        supported: u32,
    },
    /// A value could not be encoded (never for well-formed blocks).
    #[error("cannot encode a value for table `{table}`")]
    Encode {
        /// The table the value was for.
        table: &'static str,
    },
    /// The genesis document is unusable.
    #[error("cannot build the genesis block: {0}")]
    Genesis(#[from] crate::genesis::GenesisError),
    /// The state stored in the database could not be read or changed.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// A read-only state view was asked to write.
    #[error("the state view is read-only")]
    ReadOnly,
}
