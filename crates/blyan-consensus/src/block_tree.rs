//! The block tree: every live block by hash, children by parent, the canonical chain by
//! height, and the leaves ordered for fork choice.
//!
//! The tree only stores [`BlockMeta`] (no bodies, no state). It never decides anything: the
//! fork choice ([`crate::ForkChoice`]) asks it for paths and tells it which path is canonical.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap, VecDeque};

use blyan_crypto::Hash;

use crate::fork_choice::{ForkChain, TipUpdate};

/// What fork choice needs to know about a block: its identity, its place in the tree and who
/// produced it in which slot.
///
/// The chain manager builds it from a validated header (`hash` = header hash,
/// `parent` = `parent_hash`). Genesis has `parent` = [`Hash::ZERO`] and height 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMeta {
    /// The block hash (SHA-256 of the canonical header encoding).
    pub hash: Hash,
    /// The parent block's hash.
    pub parent: Hash,
    /// Distance from genesis (genesis is 0).
    pub height: u64,
    /// The Aura slot the block was produced in.
    pub slot: u64,
    /// The validator that signed the block: its Ed25519 public key bytes
    /// (`PublicKey::to_bytes()`). Raw bytes keep the tree small: a parsed `PublicKey` is
    /// six times larger and fork choice only compares producers.
    pub producer: [u8; 32],
}

/// One block in the tree.
#[derive(Debug, Clone)]
struct Node {
    meta: BlockMeta,
    /// In insertion order, so every walk over the tree is deterministic.
    children: Vec<Hash>,
    canonical: bool,
    /// Arrival order: the first-seen rule compares it.
    seq: u64,
}

/// Ordering key of a leaf: the greatest key is the best leaf (greatest height, and among
/// equal heights the earliest seen).
type LeafKey = (u64, Reverse<u64>);

/// Blocks by hash, children by parent, canonical index by height, leaves by fork-choice rank.
#[derive(Debug, Clone)]
pub(crate) struct BlockTree {
    nodes: HashMap<Hash, Node>,
    /// `canonical[i]` is the canonical block at height `base_height + i`; the last is the tip.
    /// Never empty: the root is always canonical.
    canonical: VecDeque<Hash>,
    base_height: u64,
    /// A copy of the canonical tip's metadata, so reading it needs no lookup.
    tip: BlockMeta,
    leaves: BTreeMap<LeafKey, Hash>,
    next_seq: u64,
    /// Side branches forking below this height have been pruned already.
    pruned_below: u64,
}

impl BlockTree {
    /// A tree holding only `root`, which is canonical and the tip.
    pub(crate) fn new(root: BlockMeta) -> Self {
        let mut nodes = HashMap::new();
        nodes.insert(
            root.hash,
            Node {
                meta: root,
                children: Vec::new(),
                canonical: true,
                seq: 0,
            },
        );
        let mut leaves = BTreeMap::new();
        leaves.insert((root.height, Reverse(0)), root.hash);
        Self {
            nodes,
            canonical: VecDeque::from([root.hash]),
            base_height: root.height,
            tip: root,
            leaves,
            next_seq: 1,
            pruned_below: root.height,
        }
    }

    pub(crate) fn get(&self, hash: &Hash) -> Option<&BlockMeta> {
        self.nodes.get(hash).map(|node| &node.meta)
    }

    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.nodes.contains_key(hash)
    }

    pub(crate) fn is_canonical(&self, hash: &Hash) -> bool {
        self.nodes.get(hash).is_some_and(|node| node.canonical)
    }

    pub(crate) fn len(&self) -> usize {
        self.nodes.len()
    }

    pub(crate) fn side_len(&self) -> usize {
        self.nodes.len() - self.canonical.len()
    }

    pub(crate) fn base_height(&self) -> u64 {
        self.base_height
    }

    pub(crate) fn tip_hash(&self) -> Hash {
        self.tip.hash
    }

    pub(crate) fn tip(&self) -> &BlockMeta {
        &self.tip
    }

    pub(crate) fn tip_height(&self) -> u64 {
        self.base_height + self.canonical.len() as u64 - 1
    }

    /// The canonical block at `height`, if it is inside the retained window.
    pub(crate) fn canonical_at(&self, height: u64) -> Option<Hash> {
        let index = usize::try_from(height.checked_sub(self.base_height)?).ok()?;
        self.canonical.get(index).copied()
    }

    /// Adds a non-canonical block under its parent, which the caller has checked exists and
    /// is one lower.
    pub(crate) fn insert(&mut self, meta: BlockMeta) {
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(parent) = self.nodes.get_mut(&meta.parent) {
            if parent.children.is_empty() {
                self.leaves
                    .remove(&(parent.meta.height, Reverse(parent.seq)));
            }
            parent.children.push(meta.hash);
        }
        self.leaves.insert((meta.height, Reverse(seq)), meta.hash);
        self.nodes.insert(
            meta.hash,
            Node {
                meta,
                children: Vec::new(),
                canonical: false,
                seq,
            },
        );
    }

    /// The canonical ancestor of `hash` (itself when canonical) and its height. `None` when
    /// the walk leaves the tree, which the tree's invariants rule out for a stored block.
    pub(crate) fn fork_point(&self, hash: &Hash) -> Option<(Hash, u64)> {
        let mut node = self.nodes.get(hash)?;
        while !node.canonical {
            node = self.nodes.get(&node.meta.parent)?;
        }
        Some((node.meta.hash, node.meta.height))
    }

    /// The moves that make `target` the tip: revert the canonical blocks above the fork point
    /// (tip first), then apply the path down to `target` (fork point + 1 first).
    pub(crate) fn update_to(&self, target: &Hash) -> Option<TipUpdate> {
        let mut apply = Vec::new();
        let mut node = self.nodes.get(target)?;
        while !node.canonical {
            apply.push(node.meta.hash);
            node = self.nodes.get(&node.meta.parent)?;
        }
        apply.reverse();
        let fork_point = node.meta.hash;
        let fork_height = node.meta.height;
        let tip_height = self.tip_height();
        let revert = ((fork_height + 1)..=tip_height)
            .rev()
            .filter_map(|height| self.canonical_at(height))
            .collect();
        Some(TipUpdate {
            old_tip: self.tip_hash(),
            new_tip: *target,
            fork_point,
            fork_height,
            revert,
            apply,
        })
    }

    /// The best leaf by the fork-choice order (greatest height, earliest seen).
    pub(crate) fn best_leaf(&self) -> Option<&BlockMeta> {
        let (_, hash) = self.leaves.last_key_value()?;
        self.get(hash)
    }

    /// Makes the update's path canonical. The caller has checked that `update` equals
    /// [`Self::update_to`] for its target.
    pub(crate) fn apply_update(&mut self, update: &TipUpdate) {
        for hash in &update.revert {
            if let Some(node) = self.nodes.get_mut(hash) {
                node.canonical = false;
            }
        }
        let keep = usize::try_from(update.fork_height - self.base_height + 1).unwrap_or(usize::MAX);
        self.canonical.truncate(keep);
        for hash in &update.apply {
            if let Some(node) = self.nodes.get_mut(hash) {
                node.canonical = true;
            }
            self.canonical.push_back(*hash);
        }
        if let Some(node) = self.nodes.get(&update.new_tip) {
            self.tip = node.meta;
        }
    }

    /// Removes every side branch whose fork point is below `height` and returns the removed
    /// hashes (parents before children, deterministic order).
    pub(crate) fn prune_side_branches_below(&mut self, height: u64) -> Vec<Hash> {
        let mut pruned = Vec::new();
        let start = self.pruned_below.max(self.base_height);
        for h in start..height {
            let Some(hash) = self.canonical_at(h) else {
                continue;
            };
            let side: Vec<Hash> = match self.nodes.get(&hash) {
                Some(node) => node
                    .children
                    .iter()
                    .copied()
                    .filter(|child| !self.is_canonical(child))
                    .collect(),
                None => continue,
            };
            for child in side {
                pruned.extend(self.remove_subtree(&child));
            }
        }
        self.pruned_below = self.pruned_below.max(height);
        pruned
    }

    /// Forgets canonical blocks below `height` (their side branches must be pruned already),
    /// keeping at least the tip. The canonical block at `height` becomes the root.
    pub(crate) fn forget_canonical_below(&mut self, height: u64) {
        while self.base_height < height && self.canonical.len() > 1 {
            if let Some(hash) = self.canonical.pop_front()
                && let Some(node) = self.nodes.remove(&hash)
            {
                self.leaves.remove(&(node.meta.height, Reverse(node.seq)));
            }
            self.base_height += 1;
        }
    }

    /// Removes `hash` and all its descendants; returns them, `hash` first. Never call it on a
    /// canonical block.
    pub(crate) fn remove_subtree(&mut self, hash: &Hash) -> Vec<Hash> {
        let Some(root) = self.nodes.get(hash) else {
            return Vec::new();
        };
        let parent_hash = root.meta.parent;
        let mut removed = Vec::new();
        let mut stack = vec![*hash];
        while let Some(current) = stack.pop() {
            if let Some(node) = self.nodes.remove(&current) {
                if node.children.is_empty() {
                    self.leaves.remove(&(node.meta.height, Reverse(node.seq)));
                }
                // Reversed so the walk visits children in insertion order.
                stack.extend(node.children.iter().rev());
                removed.push(current);
            }
        }
        if let Some(parent) = self.nodes.get_mut(&parent_hash) {
            parent.children.retain(|child| child != hash);
            if parent.children.is_empty() {
                self.leaves
                    .insert((parent.meta.height, Reverse(parent.seq)), parent.meta.hash);
            }
        }
        removed
    }

    /// Live side branches: one entry per non-canonical leaf, best first.
    pub(crate) fn fork_chains(&self) -> Vec<ForkChain> {
        self.leaves
            .values()
            .rev()
            .filter(|hash| !self.is_canonical(hash))
            .filter_map(|hash| {
                let tip = self.get(hash)?;
                let (fork_point, fork_height) = self.fork_point(hash)?;
                Some(ForkChain {
                    fork_point,
                    fork_height,
                    tip: tip.hash,
                    tip_height: tip.height,
                    length: tip.height - fork_height,
                })
            })
            .collect()
    }

    /// Checks every structural invariant; a test helper that panics with the broken one.
    #[cfg(test)]
    pub(crate) fn check_invariants(&self, max_reorg_depth: u64) {
        let tip_height = self.tip_height();
        // The canonical index is a parent-linked path with consecutive heights.
        for (i, hash) in self.canonical.iter().enumerate() {
            let node = &self.nodes[hash];
            assert!(
                node.canonical,
                "canonical index holds a non-canonical block"
            );
            assert_eq!(node.meta.height, self.base_height + i as u64);
            if i > 0 {
                assert_eq!(node.meta.parent, self.canonical[i - 1]);
            }
        }
        let canonical_flags = self.nodes.values().filter(|n| n.canonical).count();
        assert_eq!(canonical_flags, self.canonical.len());
        assert_eq!(self.canonical.back(), Some(&self.tip.hash));
        let irreversible = tip_height.saturating_sub(max_reorg_depth);
        for node in self.nodes.values() {
            for child in &node.children {
                assert_eq!(self.nodes[child].meta.parent, node.meta.hash);
                assert_eq!(self.nodes[child].meta.height, node.meta.height + 1);
            }
            let is_leaf = self.leaves.get(&(node.meta.height, Reverse(node.seq)));
            assert_eq!(is_leaf.is_some(), node.children.is_empty(), "leaf index");
            if !node.canonical {
                let (_, fork_height) = self.fork_point(&node.meta.hash).expect("fork point");
                assert!(
                    fork_height >= irreversible,
                    "side branch below irreversible"
                );
                assert!(self.nodes.contains_key(&node.meta.parent), "dangling block");
            }
        }
        assert_eq!(
            self.leaves.len(),
            self.nodes
                .values()
                .filter(|n| n.children.is_empty())
                .count()
        );
    }
}
