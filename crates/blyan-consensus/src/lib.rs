//! # blyan-consensus: the chain, without networking
//!
//! Blocks, transactions and their validity rules; the account state with an authenticated
//! root; the block tree with fork choice; a mempool; and crash-safe storage, all behind
//! [`ChainManager`]. Networking lives above this crate. It uses `blyan-wire` only for the
//! canonical encoding, which is what gets hashed.
//!
//! ## Main types and data flow
//!
//! - [`Header`], [`Block`], [`Transaction`], [`SignedTransaction`], [`Genesis`] with
//!   [`ConsensusParams`]. Block and tx hashes are SHA-256 of the canonical MsgPack
//!   encoding without signatures; signatures use the `block`/`tx` domains.
//! - [`BlockValidator`]: [`BlockValidator::verify_block`] checks what a block proves about
//!   itself (one batch signature check), `verify_header` checks a header against its
//!   parent (headers-first sync), `validate_block` adds the state transition. Every rule
//!   has its own [`BlockError`] variant.
//! - [`StateMachine`] is the pluggable rule; [`AccountState`] is the default account
//!   model on a sparse Merkle tree keyed by SHA-256(address), with inclusion and absence
//!   proofs ([`AccountProof`]). Applying a block yields a [`StateDiff`] and [`UndoData`].
//! - [`ForkChoice`] is a deterministic core over [`BlockMeta`]: longest chain, first seen
//!   wins at equal height, reorgs bounded by `max_reorg_depth`, finality at
//!   `finality_depth`, bounded orphan and invalid-block caches, equivocation evidence.
//! - [`ChainStore`] keeps everything in one `redb` file; [`ChainManager`] drives the
//!   validator, the fork-choice core and the store, one write transaction per import.
//! - [`Mempool`] and [`build_block`] assemble blocks for validators.
//!
//! ## Guarantees
//!
//! - A block import (block, state changes, undo data, canonical index, tip) is one
//!   database transaction: a crash at any instant leaves the last committed tip, and
//!   reopening restores it with its state root (a SIGKILL test checks this).
//! - A reorg deeper than `max_reorg_depth` is refused; blocks deeper than that are
//!   irreversible and side branches below them are pruned from memory and disk.
//! - The logic never reads a clock: time comes from a [`Clock`] the caller injects.
//!
//! ## Example
//!
//! ```
//! use std::{collections::BTreeMap, sync::Arc};
//! use blyan_consensus::*;
//! use blyan_crypto::KeyPair;
//!
//! let validator = KeyPair::from_seed(&[1; 32]);
//! let genesis = Genesis {
//!     chain_id: 7,
//!     genesis_time_ms: 0,
//!     slot_duration_ms: 1_000,
//!     validators: vec![validator.public_key()],
//!     balances: BTreeMap::new(),
//!     params: ConsensusParams::default(),
//! };
//! let clock = Arc::new(ManualClock::new(1_500));
//! let mut chain = ChainManager::in_memory(genesis.clone(), ChainConfig::default(), clock)?;
//!
//! // Produce the block of slot 1 from an empty mempool and import it.
//! let mempool = Mempool::new(MempoolConfig::default(), &genesis);
//! let state = chain.store().state_view()?;
//! let parent = chain.tip_header().clone();
//! let built = build_block(chain.validator(), &mempool, 1, &validator, &parent, &state, 1_500)?;
//! let outcome = chain.add_block(built.block)?;
//! assert!(matches!(outcome, ImportOutcome::Imported { height: 1, .. }));
//! assert_eq!(chain.tip().height, 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
pub use validator::{BlockValidator, VerifiedBlock};

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
