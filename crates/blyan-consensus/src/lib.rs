//! # blyan-consensus: the chain, without networking
//!
//! **Status: being built.** (The design essay is written once the crate's parts exist.)
//!
//! Module map (each file one concept). Engineers add their own `mod`/`pub use` lines
//! below, one line at a time.

// -- types, validation, state machine, mempool --
mod builder;
mod clock;
mod error;
mod genesis;
mod mempool;
pub mod state;
mod types;
mod validator;
pub use builder::{BuildError, BuiltBlock, build_block};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{BlockError, TxError};
pub use genesis::{ConsensusParams, Genesis, GenesisError};
pub use mempool::{Mempool, MempoolConfig, MempoolError, PooledTx, Selection};
pub use state::{
    Account, AccountProof, AccountState, MemoryStore, ProofError, StateDiff, StateError,
    StateMachine, StateStore, StateTransition, StoreError, UndoData,
};
pub use types::{BLOCK_VERSION, Block, Header, SignedTransaction, Transaction, tx_root};
pub use validator::BlockValidator;

// -- block tree, fork choice --
mod block_tree;
mod equivocation;
mod fork_choice;
mod invalid_cache;
mod orphans;
pub use block_tree::BlockMeta;
pub use equivocation::{DEFAULT_MAX_TRACKED_SLOTS, Equivocation};
pub use fork_choice::{
    CommitOutcome, Decision, ForkChain, ForkChoice, ForkChoiceConfig, ForkChoiceError, InsertError,
    Insertion, Invalidation, TipUpdate,
};
pub use invalid_cache::DEFAULT_INVALID_CACHE_CAPACITY;
pub use orphans::OrphanConfig;

// -- storage, chain manager --
mod chain_manager;
pub mod storage;
pub use chain_manager::{ChainConfig, ChainError, ChainEvent, ChainManager, ImportOutcome, Reorg};
pub use storage::{ChainStore, StorageError};
