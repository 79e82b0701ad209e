//! Fork choice: the deterministic core that decides which chain is canonical.
//!
//! [`ForkChoice`] owns the block tree, the orphan buffer, the invalid-block cache and the
//! equivocation detector. It never reads a clock, a disk or the state: the chain manager
//! hands it [`BlockMeta`]s and receives decisions, and tells it what the state transition
//! said. The canonical chain of the tree is always the chain the state has committed.
//!
//! The import protocol, per block:
//!
//! 1. [`ForkChoice::insert`] classifies the block and stores it (not canonical yet):
//!    [`Decision::AlreadyKnown`], [`Decision::Orphaned`], [`Decision::SideChain`], or a
//!    [`TipUpdate`] to execute: [`Decision::Extended`] or [`Decision::Reorg`].
//! 2. The chain manager executes the update against the state (revert `revert` tip first,
//!    apply `apply` fork point + 1 first), in one storage transaction.
//! 3. On success it calls [`ForkChoice::commit`]; when applying block `b` fails it aborts the
//!    transaction and calls [`ForkChoice::mark_invalid`]`(b)`. The tree never moved, so the
//!    old canonical chain is still canonical; `b`, its descendants and their orphans are
//!    dropped and remembered as invalid, and the returned `next` update (if a remaining
//!    branch still beats the tip) is executed the same way.
//! 4. Orphans released by the insert ([`Insertion::released`]) are inserted next, parents
//!    before children.

use blyan_crypto::Hash;

use crate::block_tree::{BlockMeta, BlockTree};
use crate::equivocation::{DEFAULT_MAX_TRACKED_SLOTS, Equivocation, EquivocationDetector};
use crate::invalid_cache::{DEFAULT_INVALID_CACHE_CAPACITY, InvalidBlockCache};
use crate::orphans::{OrphanConfig, OrphanPool, OrphanRefusal};

/// Parameters of fork choice. `Default` matches the documented defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkChoiceConfig {
    /// Most canonical blocks a reorg may revert. Default 100: with round-robin slots a
    /// competing branch 100 blocks long means a long partition or a majority attack; either
    /// needs an operator, not a silent rewrite of history. Canonical blocks at or below
    /// `tip - max_reorg_depth` are irreversible.
    pub max_reorg_depth: u64,
    /// Depth at which a canonical block counts as finalized (for users and the API).
    /// Default 10; at most `max_reorg_depth`.
    pub finality_depth: u64,
    /// Canonical blocks kept in memory below the tip (older ones stay in storage only).
    /// Default 1024; at least `max_reorg_depth + 1` so the irreversible block is in memory.
    pub canonical_retention: u64,
    /// Most non-canonical blocks in the tree. Default 1024. A side block that would not
    /// become the best chain is refused when the tree holds this many.
    pub max_side_blocks: usize,
    /// Bounds of the orphan buffer.
    pub orphans: OrphanConfig,
    /// Capacity of the invalid-block cache.
    pub invalid_cache_capacity: usize,
    /// Most `(producer, slot)` pairs tracked for equivocation.
    pub max_tracked_slots: usize,
}

impl Default for ForkChoiceConfig {
    fn default() -> Self {
        Self {
            max_reorg_depth: 100,
            finality_depth: 10,
            canonical_retention: 1024,
            max_side_blocks: 1024,
            orphans: OrphanConfig::default(),
            invalid_cache_capacity: DEFAULT_INVALID_CACHE_CAPACITY,
            max_tracked_slots: DEFAULT_MAX_TRACKED_SLOTS,
        }
    }
}

impl ForkChoiceConfig {
    /// Checks the relations between the parameters.
    pub fn validate(&self) -> Result<(), ForkChoiceError> {
        let bad = |reason: &'static str| Err(ForkChoiceError::InvalidConfig(reason));
        if self.max_reorg_depth == 0 {
            return bad("max_reorg_depth must be at least 1");
        }
        if self.finality_depth > self.max_reorg_depth {
            return bad("finality_depth must not exceed max_reorg_depth");
        }
        if self.canonical_retention <= self.max_reorg_depth {
            return bad("canonical_retention must exceed max_reorg_depth");
        }
        if self.orphans.max_orphans == 0 || self.orphans.max_per_producer == 0 {
            return bad("orphan limits must be at least 1");
        }
        if self.invalid_cache_capacity == 0 || self.max_tracked_slots == 0 {
            return bad("cache capacities must be at least 1");
        }
        Ok(())
    }
}

/// How to move the canonical tip from `old_tip` to `new_tip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TipUpdate {
    /// The canonical tip when the update was planned; [`ForkChoice::commit`] refuses the
    /// update if the tip has moved since.
    pub old_tip: Hash,
    /// The tip after the update.
    pub new_tip: Hash,
    /// The last block both chains share (`old_tip` for an extension).
    pub fork_point: Hash,
    /// Height of `fork_point`.
    pub fork_height: u64,
    /// Canonical blocks to revert, tip first (empty for an extension).
    pub revert: Vec<Hash>,
    /// Blocks to apply, fork point + 1 first; the last is `new_tip`.
    pub apply: Vec<Hash>,
}

impl TipUpdate {
    /// Number of canonical blocks reverted.
    pub fn depth(&self) -> u64 {
        self.revert.len() as u64
    }

    /// Whether canonical blocks are reverted.
    pub fn is_reorg(&self) -> bool {
        !self.revert.is_empty()
    }
}

/// What [`ForkChoice::insert`] decided about a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The block is in the tree or the orphan buffer already; nothing changed.
    AlreadyKnown,
    /// The parent is unknown: the block waits in the orphan buffer. `evicted` lists the
    /// orphans dropped to make room.
    Orphaned {
        /// Orphans evicted to make room.
        evicted: Vec<Hash>,
    },
    /// Stored on a branch that does not beat the canonical tip. No state change.
    SideChain,
    /// The best chain extends the canonical tip: apply `apply` (usually the new block).
    Extended(TipUpdate),
    /// The best chain forks below the tip: revert then apply. `depth()` is at most
    /// `max_reorg_depth`.
    Reorg(TipUpdate),
}

/// The result of a successful [`ForkChoice::insert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion<B> {
    /// What to do with the block.
    pub decision: Decision,
    /// Set when this block is the second one its producer signed for its slot.
    pub equivocation: Option<Equivocation>,
    /// Orphans whose parent was this block, in arrival order, with their bodies. Insert them
    /// after resolving `decision`.
    pub released: Vec<(BlockMeta, B)>,
}

/// The result of [`ForkChoice::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitOutcome {
    /// Side blocks pruned because they fork below the irreversible height (delete them from
    /// storage). Parents come before their children.
    pub pruned: Vec<Hash>,
    /// Orphans dropped because they sit at or just above the irreversible height and so can
    /// never connect.
    pub expired_orphans: Vec<Hash>,
    /// Height of the highest irreversible block after the commit.
    pub irreversible_height: u64,
    /// Height of the highest finalized block after the commit (none while the chain is
    /// shorter than `finality_depth`).
    pub finalized_height: Option<u64>,
}

/// The result of [`ForkChoice::mark_invalid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// Blocks removed from the tree: the invalid block first, then its descendants (delete
    /// them from storage). All are now in the invalid cache.
    pub removed: Vec<Hash>,
    /// Buffered orphans descending from them, dropped and remembered as invalid.
    pub dropped_orphans: Vec<Hash>,
    /// The update to execute next if a remaining branch beats the canonical tip (for
    /// example the valid prefix of a branch whose later block failed).
    pub next: Option<TipUpdate>,
}

/// A live side branch, as listed by [`ForkChoice::get_fork_chains`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ForkChain {
    /// The canonical block the branch grows from.
    pub fork_point: Hash,
    /// Height of the fork point.
    pub fork_height: u64,
    /// The branch's last block (a leaf of the tree).
    pub tip: Hash,
    /// Height of the branch's tip.
    pub tip_height: u64,
    /// Blocks on the branch (`tip_height - fork_height`).
    pub length: u64,
}

/// Why a block was not accepted. Each is the block's (or its sender's) fault, never the
/// node's; none changed the tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InsertError {
    /// The block is in the invalid-block cache.
    #[error("block {0} is known to be invalid")]
    KnownInvalid(Hash),
    /// The block's parent is in the invalid-block cache; the block is now cached too.
    #[error("block {block} descends from invalid block {ancestor}")]
    InvalidAncestor {
        /// The refused block.
        block: Hash,
        /// Its invalid parent.
        ancestor: Hash,
    },
    /// The block's height is not its parent's plus one.
    #[error("block {block} has height {height}, its parent has height {parent_height}")]
    HeightMismatch {
        /// The refused block.
        block: Hash,
        /// The block's claimed height.
        height: u64,
        /// The parent's height.
        parent_height: u64,
    },
    /// The block's slot is not after its parent's.
    #[error("block {block} has slot {slot}, not after its parent's slot {parent_slot}")]
    SlotNotAfterParent {
        /// The refused block.
        block: Hash,
        /// The block's slot.
        slot: u64,
        /// The parent's slot.
        parent_slot: u64,
    },
    /// The block's branch forks more than `max_reorg_depth` below the tip: making it
    /// canonical would revert irreversible blocks. The block is dropped, not stored.
    #[error("reorg of depth {depth} exceeds the maximum {max}")]
    ReorgTooDeep {
        /// Canonical blocks the branch would revert.
        depth: u64,
        /// The configured `max_reorg_depth`.
        max: u64,
    },
    /// An orphan whose parent would be at or below the irreversible height: it can never
    /// connect to a block that may still become canonical.
    #[error(
        "orphan at height {height} is at or below irreversible height {irreversible_height} + 1"
    )]
    BelowIrreversible {
        /// The orphan's height.
        height: u64,
        /// The current irreversible height.
        irreversible_height: u64,
    },
    /// An orphan too far above the tip for the buffer.
    #[error("orphan at height {height} is above the orphan limit {max_height}")]
    OrphanTooFarAhead {
        /// The orphan's height.
        height: u64,
        /// The highest height the buffer accepts now.
        max_height: u64,
    },
    /// The orphan buffer is full of orphans no higher than this one.
    #[error("orphan buffer full")]
    OrphanPoolFull,
    /// The producer has its share of the orphan buffer, all no higher than this one.
    #[error("the producer already has {max} orphans buffered")]
    ProducerOrphanLimit {
        /// The configured `max_per_producer`.
        max: usize,
    },
    /// The tree holds `max_side_blocks` side blocks and this one would not become the best
    /// chain.
    #[error("side-block limit {max} reached")]
    SideBlocksFull {
        /// The configured `max_side_blocks`.
        max: usize,
    },
}

/// Misuse of the fork-choice protocol by its driver, or bad configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForkChoiceError {
    /// The configuration breaks a rule between parameters.
    #[error("invalid fork-choice configuration: {0}")]
    InvalidConfig(&'static str),
    /// The update was planned against another tip or tree (stale or forged).
    #[error("tip update to {new_tip} is stale: the tree plans another path")]
    StaleUpdate {
        /// The update's target.
        new_tip: Hash,
    },
    /// The hash is not in the tree.
    #[error("block {0} is not in the block tree")]
    UnknownBlock(Hash),
    /// Canonical blocks were committed as valid; they cannot be invalidated.
    #[error("block {0} is canonical and cannot be marked invalid")]
    CanonicalBlock(Hash),
    /// A restored chain is not a parent-linked sequence of consecutive heights.
    #[error("restored chain breaks at block {0}")]
    BrokenChain(Hash),
    /// A restored chain was empty.
    #[error("restored chain is empty")]
    EmptyChain,
}

/// The fork-choice core: block tree, orphan buffer, invalid cache and equivocation detector.
///
/// `B` is whatever the driver wants back with a released orphan (the block body, usually);
/// the core never looks inside it.
///
/// ```
/// use blyan_consensus::{BlockMeta, Decision, ForkChoice, ForkChoiceConfig};
/// use blyan_crypto::{Hash, sha256};
///
/// let genesis = BlockMeta { hash: sha256(b"g"), parent: Hash::ZERO, height: 0, slot: 0, producer: [1; 32] };
/// let block = BlockMeta { hash: sha256(b"b1"), parent: genesis.hash, height: 1, slot: 1, producer: [2; 32] };
/// let mut core: ForkChoice = ForkChoice::new(genesis, ForkChoiceConfig::default())?;
///
/// let insertion = core.insert(block, ())?;
/// let Decision::Extended(update) = insertion.decision else { unreachable!() };
/// assert_eq!(update.apply, vec![block.hash]);
/// // ... the chain manager applies `block` to the state, then:
/// core.commit(&update)?;
/// assert_eq!(core.tip().hash, block.hash);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct ForkChoice<B = ()> {
    config: ForkChoiceConfig,
    tree: BlockTree,
    orphans: OrphanPool<B>,
    invalid: InvalidBlockCache,
    equivocations: EquivocationDetector,
}

impl<B> ForkChoice<B> {
    /// A core whose only block is `genesis` (canonical, the tip).
    pub fn new(genesis: BlockMeta, config: ForkChoiceConfig) -> Result<Self, ForkChoiceError> {
        Self::restore([genesis], config)
    }

    /// A core whose canonical chain is `chain` (lowest first, e.g. the last
    /// `canonical_retention` blocks read from storage at start-up). Side blocks from storage
    /// can then be re-inserted with [`ForkChoice::insert`].
    pub fn restore(
        chain: impl IntoIterator<Item = BlockMeta>,
        config: ForkChoiceConfig,
    ) -> Result<Self, ForkChoiceError> {
        config.validate()?;
        let mut chain = chain.into_iter();
        let root = chain.next().ok_or(ForkChoiceError::EmptyChain)?;
        let mut tree = BlockTree::new(root);
        for meta in chain {
            let tip = tree.tip();
            if meta.parent != tip.hash
                || tip.height.checked_add(1) != Some(meta.height)
                || tree.contains(&meta.hash)
            {
                return Err(ForkChoiceError::BrokenChain(meta.hash));
            }
            tree.insert(meta);
            let update = tree
                .update_to(&meta.hash)
                .ok_or(ForkChoiceError::UnknownBlock(meta.hash))?;
            tree.apply_update(&update);
        }
        let mut core = Self {
            config,
            tree,
            orphans: OrphanPool::new(config.orphans),
            invalid: InvalidBlockCache::new(config.invalid_cache_capacity),
            equivocations: EquivocationDetector::new(config.max_tracked_slots),
        };
        core.settle();
        Ok(core)
    }

    /// The configuration in force.
    pub fn config(&self) -> &ForkChoiceConfig {
        &self.config
    }

    /// Classifies a block and stores it (not canonical). See the module docs for the
    /// protocol. The block must already have passed the stateless checks, its signature
    /// included: equivocation evidence and the orphan per-producer cap trust `producer`.
    pub fn insert(&mut self, meta: BlockMeta, body: B) -> Result<Insertion<B>, InsertError> {
        let hash = meta.hash;
        if self.tree.contains(&hash) || self.orphans.contains(&hash) {
            return Ok(self.plain(Decision::AlreadyKnown));
        }
        if self.invalid.touch(&hash) {
            return Err(InsertError::KnownInvalid(hash));
        }
        if self.invalid.touch(&meta.parent) {
            self.invalid.insert(hash);
            return Err(InsertError::InvalidAncestor {
                block: hash,
                ancestor: meta.parent,
            });
        }
        let Some(parent) = self.tree.get(&meta.parent).copied() else {
            return self.buffer_orphan(meta, body);
        };
        if parent.height.checked_add(1) != Some(meta.height) {
            return Err(InsertError::HeightMismatch {
                block: hash,
                height: meta.height,
                parent_height: parent.height,
            });
        }
        if meta.slot <= parent.slot {
            return Err(InsertError::SlotNotAfterParent {
                block: hash,
                slot: meta.slot,
                parent_slot: parent.slot,
            });
        }
        let tip_height = self.tree.tip_height();
        let fork_height = match self.tree.fork_point(&meta.parent) {
            Some((_, height)) => height,
            None => {
                return Err(InsertError::ReorgTooDeep {
                    depth: tip_height.saturating_sub(self.tree.base_height()) + 1,
                    max: self.config.max_reorg_depth,
                });
            }
        };
        let depth = tip_height.saturating_sub(fork_height);
        if depth > self.config.max_reorg_depth {
            return Err(InsertError::ReorgTooDeep {
                depth,
                max: self.config.max_reorg_depth,
            });
        }
        let beats_best = self
            .tree
            .best_leaf()
            .is_none_or(|best| meta.height > best.height.max(tip_height));
        if !beats_best && self.tree.side_len() >= self.config.max_side_blocks {
            return Err(InsertError::SideBlocksFull {
                max: self.config.max_side_blocks,
            });
        }

        self.tree.insert(meta);
        let equivocation = self.equivocations.observe(meta.producer, meta.slot, hash);
        let decision = match self.best_update() {
            Some(update) if update.is_reorg() => Decision::Reorg(update),
            Some(update) => Decision::Extended(update),
            None => Decision::SideChain,
        };
        Ok(Insertion {
            decision,
            equivocation,
            released: self.orphans.take_children(&hash),
        })
    }

    /// Makes `update` canonical after the state executed it, then prunes what became
    /// irreversible.
    pub fn commit(&mut self, update: &TipUpdate) -> Result<CommitOutcome, ForkChoiceError> {
        let planned = self
            .tree
            .update_to(&update.new_tip)
            .ok_or(ForkChoiceError::UnknownBlock(update.new_tip))?;
        if planned != *update {
            return Err(ForkChoiceError::StaleUpdate {
                new_tip: update.new_tip,
            });
        }
        self.tree.apply_update(update);
        let (pruned, expired_orphans) = self.settle();
        Ok(CommitOutcome {
            pruned,
            expired_orphans,
            irreversible_height: self.irreversible_height(),
            finalized_height: self.finalized_height(),
        })
    }

    /// Records that `hash` failed validation (its state transition, usually while executing
    /// an update). Removes it and its descendants from the tree and the orphan buffer,
    /// remembers them all as invalid, and returns the next update if a remaining branch beats
    /// the tip. A hash the tree does not hold is just remembered.
    ///
    /// Only for failures that follow from what the hash commits to (the header, and a body
    /// that matches its `tx_root`). The hash excludes the signature, so a bad signature or a
    /// body that does not match the header must be rejected *before* `insert` and never
    /// marked: otherwise anyone could poison an honest block's hash.
    pub fn mark_invalid(&mut self, hash: Hash) -> Result<Invalidation, ForkChoiceError> {
        if self.tree.is_canonical(&hash) {
            return Err(ForkChoiceError::CanonicalBlock(hash));
        }
        let removed = self.tree.remove_subtree(&hash);
        let mut dropped_orphans = Vec::new();
        if removed.is_empty() && self.orphans.discard(&hash) {
            dropped_orphans.push(hash);
        }
        let roots = if removed.is_empty() {
            std::slice::from_ref(&hash)
        } else {
            &removed[..]
        };
        for block in roots {
            dropped_orphans.extend(self.orphans.remove_descendants(block));
        }
        self.invalid.insert(hash);
        for block in removed.iter().chain(&dropped_orphans) {
            self.invalid.insert(*block);
        }
        Ok(Invalidation {
            removed,
            dropped_orphans,
            next: self.best_update(),
        })
    }

    /// The update to the best known block, if it beats the canonical tip: the leaf with the
    /// greatest height, the first seen among equals, strictly higher than the tip (an
    /// equal-height rival never replaces the tip).
    pub fn best_update(&self) -> Option<TipUpdate> {
        let best = self.tree.best_leaf()?;
        if best.height <= self.tree.tip_height() {
            return None;
        }
        self.tree.update_to(&best.hash)
    }

    /// The canonical tip.
    pub fn tip(&self) -> &BlockMeta {
        self.tree.tip()
    }

    /// Height of the canonical tip.
    pub fn tip_height(&self) -> u64 {
        self.tree.tip_height()
    }

    /// A block in the tree (canonical or not).
    pub fn get(&self, hash: &Hash) -> Option<&BlockMeta> {
        self.tree.get(hash)
    }

    /// Whether the tree holds `hash` (orphans excluded).
    pub fn contains(&self, hash: &Hash) -> bool {
        self.tree.contains(hash)
    }

    /// Whether `hash` is on the canonical chain (within the retained window).
    pub fn is_canonical(&self, hash: &Hash) -> bool {
        self.tree.is_canonical(hash)
    }

    /// The canonical block at `height`, within the retained window
    /// (`lowest_height()..=tip_height()`); storage answers for older heights.
    pub fn canonical_hash(&self, height: u64) -> Option<Hash> {
        self.tree.canonical_at(height)
    }

    /// Lowest height still held in memory.
    pub fn lowest_height(&self) -> u64 {
        self.tree.base_height()
    }

    /// Whether `hash` is canonical and at least `finality_depth` blocks below the tip.
    /// Blocks below [`ForkChoice::lowest_height`] are not in memory: ask storage.
    pub fn is_finalized(&self, hash: &Hash) -> bool {
        self.tree.is_canonical(hash)
            && self.tree.get(hash).is_some_and(|meta| {
                self.tree.tip_height() - meta.height >= self.config.finality_depth
            })
    }

    /// Height of the highest finalized block, if the chain is deep enough to have one.
    pub fn finalized_height(&self) -> Option<u64> {
        self.tree
            .tip_height()
            .checked_sub(self.config.finality_depth)
    }

    /// Height of the highest irreversible block: `tip - max_reorg_depth`, floored at the root.
    pub fn irreversible_height(&self) -> u64 {
        self.tree
            .tip_height()
            .saturating_sub(self.config.max_reorg_depth)
            .max(self.tree.base_height())
    }

    /// The live side branches, one per non-canonical leaf, best (highest) first.
    pub fn get_fork_chains(&self) -> Vec<ForkChain> {
        self.tree.fork_chains()
    }

    /// Whether `hash` is in the invalid-block cache.
    pub fn is_known_invalid(&self, hash: &Hash) -> bool {
        self.invalid.contains(hash)
    }

    /// Blocks in the tree (canonical window plus side blocks).
    pub fn block_count(&self) -> usize {
        self.tree.len()
    }

    /// Non-canonical blocks in the tree.
    pub fn side_block_count(&self) -> usize {
        self.tree.side_len()
    }

    /// Blocks waiting in the orphan buffer.
    pub fn orphan_count(&self) -> usize {
        self.orphans.len()
    }

    /// Hashes in the invalid-block cache.
    pub fn invalid_count(&self) -> usize {
        self.invalid.len()
    }

    fn plain(&self, decision: Decision) -> Insertion<B> {
        Insertion {
            decision,
            equivocation: None,
            released: Vec::new(),
        }
    }

    fn buffer_orphan(&mut self, meta: BlockMeta, body: B) -> Result<Insertion<B>, InsertError> {
        let irreversible_height = self.irreversible_height();
        if meta.height <= irreversible_height.saturating_add(1) {
            return Err(InsertError::BelowIrreversible {
                height: meta.height,
                irreversible_height,
            });
        }
        let max_height = self
            .tree
            .tip_height()
            .saturating_add(self.config.orphans.max_height_ahead);
        if meta.height > max_height {
            return Err(InsertError::OrphanTooFarAhead {
                height: meta.height,
                max_height,
            });
        }
        match self.orphans.insert(meta, body) {
            Ok(evicted) => Ok(self.plain(Decision::Orphaned { evicted })),
            Err(OrphanRefusal::PoolFull) => Err(InsertError::OrphanPoolFull),
            Err(OrphanRefusal::ProducerLimit) => Err(InsertError::ProducerOrphanLimit {
                max: self.config.orphans.max_per_producer,
            }),
        }
    }

    /// Prunes side branches forking below the irreversible height, forgets canonical blocks
    /// beyond the retention window, expires hopeless orphans and old equivocation slots.
    fn settle(&mut self) -> (Vec<Hash>, Vec<Hash>) {
        let irreversible = self.irreversible_height();
        let pruned = self.tree.prune_side_branches_below(irreversible);
        let keep_from = self
            .tree
            .tip_height()
            .saturating_sub(self.config.canonical_retention);
        self.tree.forget_canonical_below(keep_from);
        let expired = self
            .orphans
            .expire_at_or_below(irreversible.saturating_add(1));
        if let Some(slot) = self
            .tree
            .canonical_at(irreversible)
            .and_then(|hash| self.tree.get(&hash))
            .map(|meta| meta.slot)
        {
            self.equivocations.prune_below(slot);
        }
        (pruned, expired)
    }

    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        self.tree.check_invariants(self.config.max_reorg_depth);
        // A reorg turns up to `max_reorg_depth` canonical blocks into side blocks at once.
        let max_reorg = usize::try_from(self.config.max_reorg_depth).unwrap_or(usize::MAX);
        assert!(self.tree.side_len() <= self.config.max_side_blocks + max_reorg + 1);
        assert!(self.orphans.len() <= self.config.orphans.max_orphans);
        assert!(self.invalid.len() <= self.config.invalid_cache_capacity);
        assert!(self.equivocations.len() <= self.config.max_tracked_slots);
    }
}

#[cfg(test)]
mod tests {
    use blyan_crypto::{KeyPair, sha256};
    use proptest::prelude::*;
    use proptest::sample::Index;

    use super::*;

    fn meta(id: u64, parent: &BlockMeta, gap: u64) -> BlockMeta {
        BlockMeta {
            hash: sha256(&id.to_be_bytes()),
            parent: parent.hash,
            height: parent.height + 1,
            slot: parent.slot + gap,
            producer: KeyPair::from_seed(&[(id % 3) as u8 + 1; 32])
                .public_key()
                .to_bytes(),
        }
    }

    fn root() -> BlockMeta {
        BlockMeta {
            hash: sha256(b"root"),
            parent: Hash::ZERO,
            height: 0,
            slot: 0,
            producer: KeyPair::from_seed(&[1; 32]).public_key().to_bytes(),
        }
    }

    /// Executes every update at once (every block valid except `bad`), checking the private
    /// invariants after each step.
    fn drive(core: &mut ForkChoice<()>, block: BlockMeta, bad: &[Hash]) {
        let mut queue = vec![block];
        while let Some(next) = queue.pop() {
            let Ok(insertion) = core.insert(next, ()) else {
                continue;
            };
            let mut update = match insertion.decision {
                Decision::Extended(update) | Decision::Reorg(update) => Some(update),
                _ => None,
            };
            while let Some(current) = update.take() {
                match current.apply.iter().find(|hash| bad.contains(hash)) {
                    Some(hash) => update = core.mark_invalid(*hash).unwrap().next,
                    None => {
                        core.commit(&current).unwrap();
                    }
                }
                core.check_invariants();
            }
            queue.extend(insertion.released.into_iter().map(|(meta, ())| meta));
            core.check_invariants();
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn invariants_hold_under_random_trees(
            spec in prop::collection::vec((any::<Index>(), 1..3u64, any::<bool>()), 1..80),
            bad in prop::collection::vec(any::<Index>(), 0..4),
            depth in 1..6u64,
        ) {
            let config = ForkChoiceConfig {
                max_reorg_depth: depth,
                finality_depth: 1,
                canonical_retention: depth + 2,
                max_side_blocks: 6,
                orphans: OrphanConfig { max_orphans: 5, max_per_producer: 3, max_height_ahead: 4 },
                invalid_cache_capacity: 8,
                max_tracked_slots: 16,
            };
            let mut blocks = vec![root()];
            for (i, (index, gap, _)) in spec.iter().enumerate() {
                let window = blocks.len().min(4);
                let parent = blocks[blocks.len() - window + index.index(window)];
                blocks.push(meta(i as u64 + 1, &parent, *gap));
            }
            // Never the root: it is canonical by definition.
            let bad: Vec<Hash> = bad.iter().map(|index| blocks[1 + index.index(blocks.len() - 1)].hash).collect();
            let mut core = ForkChoice::new(root(), config).unwrap();
            // Deliver mostly in order, with the flagged blocks held back to the end so
            // orphans form.
            let (late, early): (Vec<_>, Vec<_>) = blocks[1..]
                .iter()
                .zip(&spec)
                .partition(|(_, (_, _, hold))| *hold);
            for (block, _) in early.into_iter().chain(late) {
                drive(&mut core, *block, &bad);
            }
            prop_assert!(!bad.iter().any(|hash| core.is_canonical(hash)));
        }
    }
}
