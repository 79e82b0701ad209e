//! The chain manager: validation, fork choice, state and storage wired together.
//!
//! [`ChainManager::add_block`] runs a block through four stages:
//!
//! 1. **Stateless checks.** The header against its parent (when the parent is known) and the
//!    clock, then everything the block proves about itself (limits, `tx_root`, every
//!    signature in one batch). A block failing a rule on its header is remembered as
//!    invalid; a bad signature or a body not matching `tx_root` is only refused (the hash
//!    does not commit to them, so remembering it would poison the honest block).
//! 2. **Fork choice.** [`ForkChoice::insert`] classifies it: known, orphan (kept in memory
//!    until its parent arrives), side chain, or an update of the tip (extension or reorg).
//! 3. **State and storage, one transaction.** A side block is stored as is: its state
//!    transition is only run if its branch becomes canonical (the state of a side block's
//!    parent does not exist on disk, and computing it would cost a reorg for every side
//!    block). A tip update runs in one redb write transaction: revert the old branch with
//!    its undo data, execute every block of the new branch on the state inside the
//!    transaction (checking each `state_root`), write the undo data, the canonical index,
//!    the pruned side blocks' deletion and the tip, commit.
//! 4. **A block of the new branch is invalid**: the transaction is aborted (nothing it
//!    wrote exists), the block and its descendants are marked invalid in the fork choice and
//!    deleted from disk, and the next best branch, if one beats the tip, is tried the same
//!    way. The old canonical chain stays canonical until a transaction that replaces it
//!    commits.
//!
//! Orphans released by a block are imported right after it; their outcomes, and equivocation
//! evidence, are queued as [`ChainEvent`]s ([`ChainManager::drain_events`]).
//!
//! A storage failure (not a verdict on a block) may leave memory ahead of disk, so the
//! manager refuses further work with [`ChainError::NeedsReopen`]: reopening resumes from the
//! last committed transaction.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use blyan_crypto::{Address, Hash};

use crate::block_tree::BlockMeta;
use crate::clock::Clock;
use crate::equivocation::Equivocation;
use crate::error::BlockError;
use crate::fork_choice::{
    CommitOutcome, Decision, ForkChain, ForkChoice, ForkChoiceConfig, ForkChoiceError, InsertError,
    TipUpdate,
};
use crate::genesis::Genesis;
use crate::state::{Account, AccountProof, StateError, StateMachine};
use crate::storage::{ChainStore, StorageError, WriteTables};
use crate::types::{Block, Header};
use crate::validator::{BlockValidator, VerifiedBlock};

/// Settings of the chain manager that are local choices, not consensus.
///
/// `max_reorg_depth` and `finality_depth` of [`ChainConfig::fork_choice`] are replaced by the
/// genesis document's consensus parameters when the manager opens: every node must agree
/// on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainConfig {
    /// Fork-choice bounds (tree retention, side blocks, orphans, caches).
    pub fork_choice: ForkChoiceConfig,
    /// Most undrained [`ChainEvent`]s kept; the oldest are dropped first. Default 1024.
    pub max_events: usize,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            fork_choice: ForkChoiceConfig::default(),
            max_events: 1024,
        }
    }
}

/// A reorganisation of the canonical chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorg {
    /// The tip before the reorg.
    pub old_tip: Hash,
    /// The last block both chains share.
    pub fork_point: Hash,
    /// Height of `fork_point`.
    pub fork_height: u64,
    /// Blocks reverted, old tip first (their transactions may go back to the mempool).
    pub reverted: Vec<Hash>,
    /// Blocks applied, fork point + 1 first.
    pub applied: Vec<Hash>,
}

impl Reorg {
    /// Number of canonical blocks reverted.
    pub fn depth(&self) -> u64 {
        self.reverted.len() as u64
    }

    fn from_update(update: &TipUpdate) -> Option<Self> {
        update.is_reorg().then(|| Self {
            old_tip: update.old_tip,
            fork_point: update.fork_point,
            fork_height: update.fork_height,
            reverted: update.revert.clone(),
            applied: update.apply.clone(),
        })
    }
}

/// What [`ChainManager::add_block`] did with a valid (or not yet judged) block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportOutcome {
    /// The block is on the canonical chain now; `reorg` is set when reaching it reverted
    /// canonical blocks.
    Imported {
        /// The block.
        hash: Hash,
        /// Its height.
        height: u64,
        /// The reorg that made it canonical, if any.
        reorg: Option<Reorg>,
    },
    /// Stored on a side branch that does not beat the canonical chain.
    SideChain {
        /// The block.
        hash: Hash,
        /// Its height.
        height: u64,
    },
    /// The parent is unknown: the block waits in the bounded orphan buffer (memory only).
    Orphaned {
        /// The block.
        hash: Hash,
        /// The missing parent (ask peers for it).
        parent: Hash,
    },
    /// The block is already known; nothing changed.
    Known {
        /// The block.
        hash: Hash,
    },
}

/// Something that happened during an import besides the block's own outcome.
#[derive(Debug)]
pub enum ChainEvent {
    /// A producer signed two blocks for one slot (evidence for the peer layer).
    Equivocation(Equivocation),
    /// An orphan released by its parent's arrival was imported (or refused).
    OrphanProcessed {
        /// The orphan.
        hash: Hash,
        /// Its outcome.
        result: Result<ImportOutcome, ChainError>,
    },
    /// Side blocks pruned below the irreversible height and deleted from disk.
    Pruned(Vec<Hash>),
}

/// Why a block was not imported, or the chain could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// `hash` (the block, or a block of the branch it needed) breaks a rule. It and its
    /// descendants are remembered as invalid.
    #[error("block {hash} is invalid: {error}")]
    Invalid {
        /// The invalid block.
        hash: Hash,
        /// The rule it breaks (boxed: it is large and errors should be small).
        error: Box<BlockError>,
    },
    /// Fork choice refused the block (known invalid, reorg too deep, buffers full, ...).
    #[error(transparent)]
    Rejected(#[from] InsertError),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The state in the database could not be read or changed.
    #[error("state: {0}")]
    State(#[from] StateError),
    /// The fork-choice core refused the configuration or the driver's protocol.
    #[error(transparent)]
    ForkChoice(#[from] ForkChoiceError),
    /// An earlier storage failure may have left memory ahead of disk: drop the manager
    /// and open it again (the database holds the last committed state).
    #[error("an earlier storage failure requires reopening the chain")]
    NeedsReopen,
}

/// Outcome of executing one tip update.
enum ExecError {
    /// A block of the new branch is invalid; the transaction was aborted.
    Invalid { hash: Hash, error: Box<BlockError> },
    /// Storage, state or protocol failure: not a verdict on any block.
    Fail(ChainError),
}

impl From<StorageError> for ExecError {
    fn from(e: StorageError) -> Self {
        ExecError::Fail(e.into())
    }
}

impl From<StateError> for ExecError {
    fn from(e: StateError) -> Self {
        ExecError::Fail(e.into())
    }
}

/// Validates, stores and selects blocks: the chain of one node. See the module docs.
pub struct ChainManager {
    store: ChainStore,
    validator: BlockValidator,
    fork_choice: ForkChoice<Arc<Block>>,
    clock: Arc<dyn Clock>,
    tip_header: Header,
    /// Canonical blocks at or below this height have had their undo data deleted.
    undo_pruned_to: u64,
    next_arrival: u64,
    durable: bool,
    wrote_non_durable: bool,
    poisoned: bool,
    events: VecDeque<ChainEvent>,
    max_events: usize,
}

impl std::fmt::Debug for ChainManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainManager")
            .field("tip", self.fork_choice.tip())
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

fn meta_of(header: &Header) -> BlockMeta {
    BlockMeta {
        hash: header.hash(),
        parent: header.parent_hash,
        height: header.height,
        slot: header.slot,
        producer: header.producer.to_bytes(),
    }
}

impl ChainManager {
    /// Opens (or creates) the chain database at `path` for `genesis`, and rebuilds the block
    /// tree from it: the canonical window and every stored side block.
    pub fn open(
        path: impl AsRef<Path>,
        genesis: Genesis,
        config: ChainConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ChainError> {
        let store = ChainStore::open(path, &genesis)?;
        Self::with_store(store, genesis, config, clock)
    }

    /// A chain in memory (redb's in-memory backend): for tests and simulations.
    pub fn in_memory(
        genesis: Genesis,
        config: ChainConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ChainError> {
        let store = ChainStore::in_memory(&genesis)?;
        Self::with_store(store, genesis, config, clock)
    }

    fn with_store(
        store: ChainStore,
        genesis: Genesis,
        config: ChainConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ChainError> {
        let mut fc_config = config.fork_choice;
        fc_config.max_reorg_depth = genesis.params.max_reorg_depth;
        fc_config.finality_depth = genesis.params.finality_depth;
        fc_config.validate()?;

        let tip = store.tip()?;
        let tip_header = store
            .record(&tip)?
            .ok_or(StorageError::Missing {
                what: "block meta",
                hash: tip,
            })?
            .header;
        let from = tip_header
            .height
            .saturating_sub(fc_config.canonical_retention);
        let mut chain = Vec::new();
        for height in from..=tip_header.height {
            let hash = store.canonical_hash(height)?.ok_or(StorageError::Missing {
                what: "canonical entry",
                hash: tip,
            })?;
            let record = store.record(&hash)?.ok_or(StorageError::Missing {
                what: "block meta",
                hash,
            })?;
            chain.push(meta_of(&record.header));
        }
        let fork_choice = ForkChoice::restore(chain, fc_config)?;
        let next_arrival = store.write(true, |t| t.next_arrival())?;
        let mut manager = Self {
            store,
            validator: BlockValidator::new(genesis),
            fork_choice,
            clock,
            undo_pruned_to: tip_header.height.saturating_sub(fc_config.max_reorg_depth),
            tip_header,
            next_arrival,
            durable: true,
            wrote_non_durable: false,
            poisoned: false,
            events: VecDeque::new(),
            max_events: config.max_events.max(1),
        };
        manager.restore_side_blocks()?;
        Ok(manager)
    }

    /// Re-inserts the stored side blocks (arrival order keeps the first-seen rule); blocks
    /// that no longer fit the tree are deleted. If a stored branch beats the tip (it cannot
    /// after a clean run), it is executed now.
    fn restore_side_blocks(&mut self) -> Result<(), ChainError> {
        let mut stale = Vec::new();
        let mut side = self.store.side_blocks()?;
        side.sort_by_key(|(_, record)| (record.header.height, record.arrival));
        for (hash, record) in side {
            let Some(block) = self.store.block(&hash)? else {
                stale.push(hash);
                continue;
            };
            match self
                .fork_choice
                .insert(meta_of(&record.header), Arc::new(block))
            {
                Ok(insertion) if !matches!(insertion.decision, Decision::Orphaned { .. }) => {}
                _ => stale.push(hash),
            }
        }
        // Orphans formed during the restore can never connect: their parent is gone.
        if !stale.is_empty() {
            self.store.write(true, |t| {
                stale.iter().try_for_each(|hash| t.delete_block(hash))
            })?;
        }
        if let Some(update) = self.fork_choice.best_update() {
            self.run_updates(update, None)?;
        }
        Ok(())
    }

    /// Imports a block: validates it, stores it, moves the tip if its branch is now the best,
    /// and imports the orphans it releases (see [`ChainManager::drain_events`]). One
    /// durable transaction per state change.
    pub fn add_block(&mut self, block: Block) -> Result<ImportOutcome, ChainError> {
        let started = Instant::now();
        let result = self.import_with_orphans(Arc::new(block), false);
        self.record_metrics(&result, started);
        result
    }

    /// [`add_block`](Self::add_block) for a block whose stateless checks already passed
    /// ([`BlockValidator::pre_verify`]): the signatures are not verified again. The parent,
    /// clock and state rules are checked as for any block. A block verified under another
    /// chain's rules is verified again here.
    pub fn add_verified_block(
        &mut self,
        block: VerifiedBlock,
    ) -> Result<ImportOutcome, ChainError> {
        let started = Instant::now();
        let verified = block.verified_by(&self.validator);
        let result = self.import_with_orphans(Arc::new(block.into_inner()), verified);
        self.record_metrics(&result, started);
        result
    }

    /// Imports blocks in order with group commit: every import is its own atomic
    /// transaction, but only the last is flushed to disk (one `fsync` for the batch). A
    /// crash loses at most the batch's unflushed imports, never part of one. For sync.
    /// The unflushed imports' state-tree nodes stay in memory and are written, net of the
    /// nodes later blocks of the batch replaced, by the final flush (see [`ChainStore`]).
    ///
    /// One result per block, in order; if the final flush fails, its error is appended as
    /// one more result (and the manager then needs reopening).
    pub fn import_batch(
        &mut self,
        blocks: impl IntoIterator<Item = Block>,
    ) -> Vec<Result<ImportOutcome, ChainError>> {
        self.durable = false;
        let results: Vec<_> = blocks
            .into_iter()
            .map(|block| {
                let started = Instant::now();
                let result = self.import_with_orphans(Arc::new(block), false);
                self.record_metrics(&result, started);
                result
            })
            .collect();
        self.durable = true;
        let mut results = results;
        if self.wrote_non_durable {
            if let Err(e) = self.store.flush() {
                self.poisoned = true;
                results.push(Err(e.into()));
            } else {
                self.wrote_non_durable = false;
            }
        }
        results
    }

    /// Imports `block` (`verified`: its stateless checks already passed) and the orphans
    /// it releases. Orphans were verified when they entered the buffer.
    fn import_with_orphans(
        &mut self,
        block: Arc<Block>,
        verified: bool,
    ) -> Result<ImportOutcome, ChainError> {
        let mut released = VecDeque::new();
        let result = self.import_one(block, verified, &mut released);
        while let Some(orphan) = released.pop_front() {
            let hash = orphan.hash();
            let result = self.import_one(orphan, true, &mut released);
            self.push_event(ChainEvent::OrphanProcessed { hash, result });
        }
        result
    }

    fn push_event(&mut self, event: ChainEvent) {
        if self.events.len() >= self.max_events {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    /// Takes the queued events (equivocations, released orphans, pruning), oldest first.
    pub fn drain_events(&mut self) -> Vec<ChainEvent> {
        self.events.drain(..).collect()
    }

    fn parent_header(&self, parent: &Hash) -> Result<Option<Header>, ChainError> {
        if !self.fork_choice.contains(parent) {
            return Ok(None);
        }
        if *parent == self.fork_choice.tip().hash {
            return Ok(Some(self.tip_header.clone()));
        }
        Ok(self.store.record(parent)?.map(|r| r.header))
    }

    /// Rejects a block that failed a stateless check. Only failures of rules on the header
    /// itself are remembered as invalid: the hash commits to the header, but not to the
    /// signature, and to the body only through `tx_root`, so a bad signature or a body that
    /// does not match (checked before `tx_root`) says nothing about the honest block with
    /// that hash, and marking it would let anyone poison it. A slot in the future is no
    /// verdict either (it becomes valid later).
    fn reject(&mut self, hash: Hash, error: BlockError) -> ChainError {
        let committed_by_hash = matches!(
            error,
            BlockError::UnsupportedVersion { .. }
                | BlockError::WrongChain { .. }
                | BlockError::WrongProducer { .. }
                | BlockError::TimestampOutsideSlot { .. }
                | BlockError::SlotOutOfRange { .. }
                | BlockError::WrongHeight { .. }
                | BlockError::SlotNotAfterParent { .. }
                | BlockError::TimestampNotAfterParent { .. }
        );
        if committed_by_hash {
            // The block is not in the tree (checked before), so this only remembers it.
            let _ = self.fork_choice.mark_invalid(hash);
        }
        ChainError::Invalid {
            hash,
            error: Box::new(error),
        }
    }

    fn import_one(
        &mut self,
        block: Arc<Block>,
        verified: bool,
        released: &mut VecDeque<Arc<Block>>,
    ) -> Result<ImportOutcome, ChainError> {
        if self.poisoned {
            return Err(ChainError::NeedsReopen);
        }
        let meta = meta_of(&block.header);
        let hash = meta.hash;
        if self.fork_choice.contains(&hash) {
            return Ok(ImportOutcome::Known { hash });
        }
        if self.fork_choice.is_known_invalid(&hash) {
            return Err(InsertError::KnownInvalid(hash).into());
        }
        let now_ms = self.clock.now_ms();
        if let Some(parent) = self.parent_header(&meta.parent)?
            && let Err(error) = self.validator.verify_header(&block.header, &parent, now_ms)
        {
            return Err(self.reject(hash, error));
        }
        if !verified && let Err(error) = self.validator.verify_block(&block) {
            return Err(self.reject(hash, error));
        }

        let insertion = self.fork_choice.insert(meta, Arc::clone(&block))?;
        if let Some(evidence) = insertion.equivocation {
            self.push_event(ChainEvent::Equivocation(evidence));
        }
        released.extend(insertion.released.into_iter().map(|(_, body)| body));
        let outcome = match insertion.decision {
            Decision::AlreadyKnown => ImportOutcome::Known { hash },
            Decision::Orphaned { .. } => ImportOutcome::Orphaned {
                hash,
                parent: meta.parent,
            },
            Decision::SideChain => {
                self.store_side_block(&block)?;
                ImportOutcome::SideChain {
                    hash,
                    height: meta.height,
                }
            }
            Decision::Extended(update) | Decision::Reorg(update) => {
                let made_canonical = self.run_updates(update, Some(&block))?;
                if self.fork_choice.is_canonical(&hash) {
                    ImportOutcome::Imported {
                        hash,
                        height: meta.height,
                        reorg: made_canonical.and_then(|u| Reorg::from_update(&u)),
                    }
                } else {
                    ImportOutcome::SideChain {
                        hash,
                        height: meta.height,
                    }
                }
            }
        };
        Ok(outcome)
    }

    fn store_side_block(&mut self, block: &Block) -> Result<(), ChainError> {
        let arrival = self.next_arrival;
        let durable = self.durable;
        let hash = block.hash();
        let result = self.store.write(durable, |t| {
            t.put_block(block, arrival)?;
            t.set_side(&hash, true)?;
            t.set_next_arrival(arrival + 1)
        });
        self.after_write(result.map_err(ChainError::from))?;
        self.next_arrival = arrival + 1;
        Ok(())
    }

    fn after_write<T>(&mut self, result: Result<T, ChainError>) -> Result<T, ChainError> {
        match result {
            Ok(value) => {
                if !self.durable {
                    self.wrote_non_durable = true;
                }
                Ok(value)
            }
            Err(error) => {
                // Memory (the fork-choice tree) already holds the block; disk does not.
                self.poisoned = true;
                Err(error)
            }
        }
    }

    /// Executes `update` and, when a block of it is invalid, the next best update, until one
    /// commits or none is left. `incoming` is the block being imported, stored in the first
    /// transaction that commits (or on its own if it ends on a side branch). Returns the
    /// update that made `incoming` canonical, if one did.
    fn run_updates(
        &mut self,
        first: TipUpdate,
        incoming: Option<&Arc<Block>>,
    ) -> Result<Option<TipUpdate>, ChainError> {
        let incoming_hash = incoming.map(|b| b.hash());
        let mut incoming_stored = incoming.is_none();
        let mut made_canonical = None;
        let mut first_invalid = None;
        let mut next = Some(first);
        while let Some(update) = next.take() {
            let write_incoming =
                incoming.filter(|b| !incoming_stored && self.fork_choice.contains(&b.hash()));
            match self.execute_update(&update, write_incoming) {
                Ok(outcome) => {
                    if write_incoming.is_some() {
                        incoming_stored = true;
                    }
                    if incoming_hash.is_some_and(|h| update.apply.contains(&h)) {
                        made_canonical = Some(update.clone());
                    }
                    self.after_commit(&update, outcome)?;
                }
                Err(ExecError::Invalid { hash, error }) => {
                    let invalidation = self.fork_choice.mark_invalid(hash)?;
                    let removed = invalidation.removed.clone();
                    let result = self.store.write(self.durable, |t| {
                        removed.iter().try_for_each(|h| t.delete_block(h))
                    });
                    self.after_write(result.map_err(ChainError::from))?;
                    first_invalid.get_or_insert((hash, error));
                    next = invalidation.next;
                }
                Err(ExecError::Fail(error)) => {
                    self.poisoned = true;
                    return Err(error);
                }
            }
        }
        if let Some(block) = incoming {
            let hash = block.hash();
            if !incoming_stored && self.fork_choice.contains(&hash) {
                self.store_side_block(block)?;
            } else if !self.fork_choice.contains(&hash)
                && let Some((bad, error)) = first_invalid
            {
                // The block, or the branch it needed, is invalid.
                return Err(ChainError::Invalid { hash: bad, error });
            }
        }
        Ok(made_canonical)
    }

    /// One tip update as one transaction. See the module docs for the steps.
    fn execute_update(
        &mut self,
        update: &TipUpdate,
        incoming: Option<&Arc<Block>>,
    ) -> Result<CommitOutcome, ExecError> {
        let Self {
            store,
            fork_choice,
            validator,
            durable,
            next_arrival,
            undo_pruned_to,
            ..
        } = self;
        let arrival = *next_arrival;
        let result = store.write(*durable, |t: &mut WriteTables<'_>| {
            if let Some(block) = incoming {
                t.put_block(block, arrival)?;
                t.set_side(&block.hash(), true)?;
                t.set_next_arrival(arrival + 1)?;
            }
            for hash in &update.revert {
                let height = fork_choice
                    .get(hash)
                    .map(|m| m.height)
                    .ok_or(ExecError::Fail(ForkChoiceError::UnknownBlock(*hash).into()))?;
                let undo = t.undo(hash)?;
                t.state_mut().revert(&undo)?;
                t.delete_undo(hash)?;
                t.remove_canonical(height)?;
                t.set_side(hash, true)?;
            }
            for hash in &update.apply {
                let block = match incoming {
                    Some(b) if b.hash() == *hash => Arc::clone(b),
                    _ => Arc::new(t.block(hash)?),
                };
                // The header and the stateless checks ran when the block arrived; what is left
                // is the state half of validation.
                let transition = match validator.verify_state(&block, t.state()) {
                    Ok(transition) => transition,
                    Err(BlockError::Storage(e)) => return Err(e.into()),
                    Err(error) => {
                        return Err(ExecError::Invalid {
                            hash: *hash,
                            error: Box::new(error),
                        });
                    }
                };
                t.state_mut().apply(&transition.diff)?;
                t.put_undo(hash, &transition.undo)?;
                t.set_canonical(block.header.height, hash)?;
                t.set_side(hash, false)?;
            }
            // Every check passed: the tree moves with the transaction. A commit failure
            // after this point poisons the manager (memory would be ahead of disk).
            let outcome = fork_choice
                .commit(update)
                .map_err(|e| ExecError::Fail(e.into()))?;
            for hash in &outcome.pruned {
                t.delete_block(hash)?;
            }
            // Undo data is only needed above the irreversible height.
            for height in (*undo_pruned_to + 1)..=outcome.irreversible_height {
                if let Some(hash) = t.canonical(height)? {
                    t.delete_undo(&hash)?;
                }
            }
            t.set_tip(&update.new_tip)?;
            Ok(outcome)
        });
        if result.is_ok() {
            if incoming.is_some() {
                self.next_arrival = arrival + 1;
            }
            if !self.durable {
                self.wrote_non_durable = true;
            }
        }
        result
    }

    fn after_commit(
        &mut self,
        update: &TipUpdate,
        outcome: CommitOutcome,
    ) -> Result<(), ChainError> {
        self.undo_pruned_to = self.undo_pruned_to.max(outcome.irreversible_height);
        self.tip_header = match self.store.record(&update.new_tip)? {
            Some(record) => record.header,
            None => {
                self.poisoned = true;
                return Err(StorageError::Missing {
                    what: "block meta",
                    hash: update.new_tip,
                }
                .into());
            }
        };
        if update.is_reorg() {
            metrics::counter!("blyan_reorg_total").increment(1);
            metrics::histogram!("blyan_reorg_depth").record(update.depth() as f64);
            tracing::info!(
                depth = update.depth(),
                fork_height = update.fork_height,
                new_tip = %update.new_tip,
                "chain reorganised"
            );
        }
        if !outcome.pruned.is_empty() {
            self.push_event(ChainEvent::Pruned(outcome.pruned));
        }
        Ok(())
    }

    fn record_metrics(&self, result: &Result<ImportOutcome, ChainError>, started: Instant) {
        let status = match result {
            Ok(ImportOutcome::Imported { .. } | ImportOutcome::SideChain { .. }) => "imported",
            Ok(ImportOutcome::Orphaned { .. }) => "orphaned",
            Ok(ImportOutcome::Known { .. }) => "duplicate",
            Err(_) => "rejected",
        };
        metrics::counter!("blyan_blocks_total", "status" => status).increment(1);
        metrics::histogram!("blyan_block_processing_seconds")
            .record(started.elapsed().as_secs_f64());
        metrics::gauge!("blyan_chain_height").set(self.tip_header.height as f64);
        if let Some(finalized) = self.fork_choice.finalized_height() {
            metrics::gauge!("blyan_finalized_height").set(finalized as f64);
        }
    }

    /// The canonical tip block.
    pub fn get_latest_block(&self) -> Result<Block, ChainError> {
        let tip = self.fork_choice.tip().hash;
        Ok(self.store.block(&tip)?.ok_or(StorageError::Missing {
            what: "block",
            hash: tip,
        })?)
    }

    /// The canonical tip's metadata.
    pub fn tip(&self) -> BlockMeta {
        *self.fork_choice.tip()
    }

    /// The canonical tip's header.
    pub fn tip_header(&self) -> &Header {
        &self.tip_header
    }

    /// A stored block (canonical or side) by hash.
    pub fn get_block(&self, hash: &Hash) -> Result<Option<Block>, ChainError> {
        Ok(self.store.block(hash)?)
    }

    /// The canonical block at `height`.
    pub fn get_block_by_height(&self, height: u64) -> Result<Option<Block>, ChainError> {
        match self.store.canonical_hash(height)? {
            Some(hash) => self.get_block(&hash),
            None => Ok(None),
        }
    }

    /// The live side branches, best first.
    pub fn get_fork_chains(&self) -> Vec<ForkChain> {
        self.fork_choice.get_fork_chains()
    }

    /// Whether `hash` is canonical and at least `finality_depth` blocks below the tip
    /// (older blocks than the in-memory window are answered from the canonical index).
    pub fn is_finalized(&self, hash: &Hash) -> Result<bool, ChainError> {
        if self.fork_choice.contains(hash) {
            return Ok(self.fork_choice.is_finalized(hash));
        }
        let Some(record) = self.store.record(hash)? else {
            return Ok(false);
        };
        let height = record.header.height;
        Ok(self.store.canonical_hash(height)? == Some(*hash)
            && self
                .fork_choice
                .finalized_height()
                .is_some_and(|f| height <= f))
    }

    /// Height of the highest finalized block (none while the chain is too short).
    pub fn finalized_height(&self) -> Option<u64> {
        self.fork_choice.finalized_height()
    }

    /// The account under `address` at the tip (the empty account if none is stored).
    pub fn account(&self, address: &Address) -> Result<Account, ChainError> {
        Ok(self.store.account(address)?.unwrap_or_default())
    }

    /// A proof of the account under `address` (or its absence) against the tip's state root.
    pub fn account_proof(&self, address: &Address) -> Result<AccountProof, ChainError> {
        Ok(self.store.account_proof(address)?)
    }

    /// The state root at the tip.
    pub fn state_root(&self) -> Hash {
        self.tip_header.state_root
    }

    /// The validator (genesis, parameters).
    pub fn validator(&self) -> &BlockValidator {
        &self.validator
    }

    /// The fork-choice core (read only).
    pub fn fork_choice(&self) -> &ForkChoice<Arc<Block>> {
        &self.fork_choice
    }

    /// The database.
    pub fn store(&self) -> &ChainStore {
        &self.store
    }
}
