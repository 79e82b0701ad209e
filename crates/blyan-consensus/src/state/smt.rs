//! The sparse Merkle tree behind the state root: 256-bit keys, compact leaves.
//!
//! # Layout and hashing
//!
//! A key is 256 bits (for accounts: SHA-256 of the 20-byte address), read most significant
//! bit first; bit `d` chooses the child at depth `d` (0 = left, 1 = right). The tree is the
//! unique binary trie over the keys in which every subtree holding exactly one leaf is
//! replaced by that leaf ("compact leaves"), so a leaf sits at the depth where its key
//! first differs from every other key: about `log2(n)` for `n` random keys, never 256.
//!
//! - empty subtree: 32 zero bytes ([`EMPTY_ROOT`]; no SHA-256 output is known to be zero);
//! - leaf: `SHA-256(0x02 ‖ key ‖ value_hash)`;
//! - internal node: `SHA-256(0x03 ‖ left ‖ right)`.
//!
//! The prefixes 0x02 / 0x03 differ from the transaction Merkle tree's 0x00 / 0x01, so no
//! node of one tree can be read as a node of the other. Because the shape is a function of
//! the key set alone, the root is a function of the `(key, value)` set alone: applying a
//! change and its inverse returns the same root and the same set of nodes.
//!
//! Nodes are stored by their hash (content addressed). An update reads and rewrites only
//! the nodes on the paths of the changed keys, O(changes × log n), and reports every node
//! it created or made unreachable, so a database stores exactly the reachable nodes.

use std::collections::BTreeMap;

use blyan_crypto::{Hash, Sha256Hasher};
use serde::{Deserialize, Serialize};

use crate::state::store::{StateError, StoreError};

/// Root of a tree without keys: 32 zero bytes.
pub const EMPTY_ROOT: Hash = Hash::ZERO;

/// Depth of the key space: a proof never has more siblings than this.
pub const MAX_DEPTH: usize = 256;

/// Prefix of a leaf hash (distinct from the transaction Merkle tree's 0x00 / 0x01).
const LEAF_PREFIX: u8 = 0x02;
/// Prefix of an internal node hash.
const INTERNAL_PREFIX: u8 = 0x03;

/// A stored tree node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SmtNode {
    /// Two children (either may be [`EMPTY_ROOT`], never both; never an empty sibling next to
    /// a lone leaf, which is lifted instead).
    Internal {
        /// Hash of the subtree whose keys have bit `depth` = 0.
        left: Hash,
        /// Hash of the subtree whose keys have bit `depth` = 1.
        right: Hash,
    },
    /// One key and the hash of its value.
    Leaf {
        /// The 256-bit key.
        key: Hash,
        /// Hash of the value stored under the key.
        value: Hash,
    },
}

impl SmtNode {
    /// The node's hash (its storage key).
    pub fn hash(&self) -> Hash {
        match self {
            SmtNode::Internal { left, right } => internal_hash(left, right),
            SmtNode::Leaf { key, value } => leaf_hash(key, value),
        }
    }
}

/// `SHA-256(0x02 ‖ key ‖ value_hash)`.
pub fn leaf_hash(key: &Hash, value: &Hash) -> Hash {
    let mut h = Sha256Hasher::new();
    h.update(&[LEAF_PREFIX])
        .update(key.as_bytes())
        .update(value.as_bytes());
    h.finalize()
}

/// `SHA-256(0x03 ‖ left ‖ right)`.
pub fn internal_hash(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256Hasher::new();
    h.update(&[INTERNAL_PREFIX])
        .update(left.as_bytes())
        .update(right.as_bytes());
    h.finalize()
}

/// Bit `depth` of `key`, most significant bit of byte 0 first; `true` = right.
pub(crate) fn bit(key: &Hash, depth: usize) -> bool {
    key.as_bytes()
        .get(depth / 8)
        .is_some_and(|byte| (byte >> (7 - depth % 8)) & 1 == 1)
}

/// Read access to stored tree nodes.
pub trait NodeStore {
    /// The node with this hash, if stored.
    fn node(&self, hash: &Hash) -> Result<Option<SmtNode>, StoreError>;
}

/// Node writes (`Some`) and deletions (`None`) by node hash.
pub type NodeChanges = BTreeMap<Hash, Option<SmtNode>>;

/// The result of an update: the new root and the node changes that produce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtUpdate {
    /// Root after the update.
    pub root: Hash,
    /// Nodes to write and to delete.
    pub nodes: NodeChanges,
}

/// Applies `changes` (key → new value hash, `None` = remove the key) to the tree with root
/// `root`, reading nodes from `store`. Nothing is written: the result says what to write.
pub fn update<S: NodeStore + ?Sized>(
    store: &S,
    root: Hash,
    changes: &BTreeMap<Hash, Option<Hash>>,
) -> Result<SmtUpdate, StateError> {
    let updates: Vec<(Hash, Option<Hash>)> = changes.iter().map(|(k, v)| (*k, *v)).collect();
    let mut updater = Updater {
        store,
        nodes: NodeChanges::new(),
    };
    let sub = updater.update(root, 0, &updates)?;
    let root = updater.resolve_hash(sub);
    Ok(SmtUpdate {
        root,
        nodes: updater.nodes,
    })
}

/// The value hash stored under `key`, if any.
pub fn get<S: NodeStore + ?Sized>(
    store: &S,
    root: Hash,
    key: &Hash,
) -> Result<Option<Hash>, StateError> {
    let proof = prove(store, root, key)?;
    Ok(proof.leaf.filter(|(k, _)| k == key).map(|(_, v)| v))
}

/// A proof that a key holds a value, or holds nothing, under a root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtProof {
    /// Sibling hashes from the root down to the end of the key's path.
    pub siblings: Vec<Hash>,
    /// The leaf where the path ends (`None`: an empty subtree). For an absent key it is a
    /// leaf with another key that shares the path.
    pub leaf: Option<(Hash, Hash)>,
}

/// Why a proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// More siblings than the key has bits.
    #[error("proof has {len} siblings, at most {max} possible")]
    TooDeep {
        /// Siblings in the proof.
        len: usize,
        /// [`MAX_DEPTH`].
        max: usize,
    },
    /// The proof ends at a leaf whose key leaves the proven key's path.
    #[error("the proof's leaf is not on the key's path")]
    LeafOffPath,
    /// The proof shows a value where none was claimed, or another value than claimed.
    #[error("the proof does not show the claimed value")]
    ValueMismatch,
    /// The proof leads to another root.
    #[error("proof leads to root {computed}, expected {expected}")]
    RootMismatch {
        /// The trusted root.
        expected: Hash,
        /// The root the proof leads to.
        computed: Hash,
    },
}

impl SmtProof {
    /// Checks that under `root`, `key` holds `value` (`None`: holds nothing).
    pub fn verify(&self, root: &Hash, key: &Hash, value: Option<&Hash>) -> Result<(), ProofError> {
        let depth = self.siblings.len();
        if depth > MAX_DEPTH {
            return Err(ProofError::TooDeep {
                len: depth,
                max: MAX_DEPTH,
            });
        }
        match (&self.leaf, value) {
            (Some((leaf_key, leaf_value)), Some(value)) => {
                if leaf_key != key || leaf_value != value {
                    return Err(ProofError::ValueMismatch);
                }
            }
            (Some((leaf_key, _)), None) => {
                if leaf_key == key {
                    return Err(ProofError::ValueMismatch);
                }
                if (0..depth).any(|d| bit(leaf_key, d) != bit(key, d)) {
                    return Err(ProofError::LeafOffPath);
                }
            }
            (None, Some(_)) => return Err(ProofError::ValueMismatch),
            (None, None) => {}
        }
        let mut hash = match &self.leaf {
            Some((k, v)) => leaf_hash(k, v),
            None => EMPTY_ROOT,
        };
        for (d, sibling) in self.siblings.iter().enumerate().rev() {
            hash = if bit(key, d) {
                internal_hash(sibling, &hash)
            } else {
                internal_hash(&hash, sibling)
            };
        }
        if hash == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch {
                expected: *root,
                computed: hash,
            })
        }
    }
}

/// Builds the proof for `key` under `root`.
pub fn prove<S: NodeStore + ?Sized>(
    store: &S,
    root: Hash,
    key: &Hash,
) -> Result<SmtProof, StateError> {
    let mut siblings = Vec::new();
    let mut current = root;
    loop {
        if current == EMPTY_ROOT {
            return Ok(SmtProof {
                siblings,
                leaf: None,
            });
        }
        match load(store, &current)? {
            SmtNode::Leaf { key: k, value } => {
                return Ok(SmtProof {
                    siblings,
                    leaf: Some((k, value)),
                });
            }
            SmtNode::Internal { left, right } => {
                if siblings.len() >= MAX_DEPTH {
                    return Err(StateError::CorruptTree(current));
                }
                if bit(key, siblings.len()) {
                    siblings.push(left);
                    current = right;
                } else {
                    siblings.push(right);
                    current = left;
                }
            }
        }
    }
}

fn load<S: NodeStore + ?Sized>(store: &S, hash: &Hash) -> Result<SmtNode, StateError> {
    store
        .node(hash)
        .map_err(StateError::Store)?
        .ok_or(StateError::MissingNode(*hash))
}

/// A rebuilt subtree, as far as the parent needs to know it.
#[derive(Debug, Clone, Copy)]
enum Sub {
    /// No keys.
    Empty,
    /// Exactly one key: the parent may lift it.
    Leaf { key: Hash, value: Hash },
    /// At least two keys, rooted at an internal node with this hash.
    Internal(Hash),
    /// A non-empty subtree the update did not touch: its kind is read only if needed.
    Untouched(Hash),
}

struct Updater<'a, S: ?Sized> {
    store: &'a S,
    nodes: NodeChanges,
}

impl<S: NodeStore + ?Sized> Updater<'_, S> {
    fn put(&mut self, node: SmtNode) -> Hash {
        let hash = node.hash();
        self.nodes.insert(hash, Some(node));
        hash
    }

    fn delete(&mut self, hash: Hash) {
        self.nodes.insert(hash, None);
    }

    fn resolve_hash(&self, sub: Sub) -> Hash {
        match sub {
            Sub::Empty => EMPTY_ROOT,
            Sub::Leaf { key, value } => leaf_hash(&key, &value),
            Sub::Internal(hash) | Sub::Untouched(hash) => hash,
        }
    }

    /// Rewrites the subtree `node` at `depth` with `updates` (sorted, distinct keys, all on
    /// this subtree's path).
    fn update(
        &mut self,
        node: Hash,
        depth: usize,
        updates: &[(Hash, Option<Hash>)],
    ) -> Result<Sub, StateError> {
        if node == EMPTY_ROOT {
            if updates.is_empty() {
                return Ok(Sub::Empty);
            }
            return self.build(depth, updates, None);
        }
        if updates.is_empty() {
            return Ok(Sub::Untouched(node));
        }
        match load(self.store, &node)? {
            SmtNode::Leaf { key, value } => {
                if updates.iter().any(|(k, _)| *k == key) {
                    // Replaced or removed: the old leaf goes.
                    self.delete(node);
                    self.build(depth, updates, None)
                } else {
                    // Kept as is (a leaf's node does not depend on its depth).
                    self.build(depth, updates, Some((key, value)))
                }
            }
            SmtNode::Internal { left, right } => {
                // Leaves may sit at depth 256 (keys differing only in the last bit); an
                // internal node there would have no bit left to branch on.
                if depth >= MAX_DEPTH {
                    return Err(StateError::CorruptTree(node));
                }
                self.delete(node);
                let split = updates.partition_point(|(k, _)| !bit(k, depth));
                let (lo, hi) = updates.split_at(split);
                let l = self.update(left, depth + 1, lo)?;
                let r = self.update(right, depth + 1, hi)?;
                self.combine(l, r)
            }
        }
    }

    /// Builds a subtree from nothing: the new leaves of `updates` plus an existing leaf.
    fn build(
        &mut self,
        depth: usize,
        updates: &[(Hash, Option<Hash>)],
        existing: Option<(Hash, Hash)>,
    ) -> Result<Sub, StateError> {
        // (key, value, newly created)
        let mut leaves: Vec<(Hash, Hash, bool)> = updates
            .iter()
            .filter_map(|(k, v)| v.map(|v| (*k, v, true)))
            .collect();
        if let Some((k, v)) = existing {
            let at = leaves.partition_point(|(key, _, _)| *key < k);
            leaves.insert(at, (k, v, false));
        }
        self.place(depth, &leaves)
    }

    fn place(&mut self, depth: usize, leaves: &[(Hash, Hash, bool)]) -> Result<Sub, StateError> {
        match leaves {
            [] => Ok(Sub::Empty),
            [(key, value, created)] => {
                if *created {
                    self.put(SmtNode::Leaf {
                        key: *key,
                        value: *value,
                    });
                }
                Ok(Sub::Leaf {
                    key: *key,
                    value: *value,
                })
            }
            _ => {
                if depth >= MAX_DEPTH {
                    // Only equal keys share all 256 bits; callers pass distinct keys.
                    return Err(StateError::CorruptTree(EMPTY_ROOT));
                }
                let split = leaves.partition_point(|(k, _, _)| !bit(k, depth));
                let (lo, hi) = leaves.split_at(split);
                let l = self.place(depth + 1, lo)?;
                let r = self.place(depth + 1, hi)?;
                self.combine(l, r)
            }
        }
    }

    /// Joins two rebuilt children: lifts a lone leaf past an empty sibling, otherwise writes
    /// an internal node.
    fn combine(&mut self, left: Sub, right: Sub) -> Result<Sub, StateError> {
        match (left, right) {
            (Sub::Empty, Sub::Empty) => Ok(Sub::Empty),
            (leaf @ Sub::Leaf { .. }, Sub::Empty) | (Sub::Empty, leaf @ Sub::Leaf { .. }) => {
                Ok(leaf)
            }
            (Sub::Untouched(hash), Sub::Empty) | (Sub::Empty, Sub::Untouched(hash)) => {
                // The sibling of a subtree that became empty: a lone leaf moves up.
                match load(self.store, &hash)? {
                    SmtNode::Leaf { key, value } => Ok(Sub::Leaf { key, value }),
                    SmtNode::Internal { .. } => {
                        let (l, r) = match left {
                            Sub::Empty => (EMPTY_ROOT, hash),
                            _ => (hash, EMPTY_ROOT),
                        };
                        Ok(Sub::Internal(
                            self.put(SmtNode::Internal { left: l, right: r }),
                        ))
                    }
                }
            }
            (l, r) => {
                let left = self.resolve_hash(l);
                let right = self.resolve_hash(r);
                Ok(Sub::Internal(self.put(SmtNode::Internal { left, right })))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::sha256;
    use std::collections::HashMap;

    #[derive(Default)]
    struct Nodes(HashMap<Hash, SmtNode>);

    impl NodeStore for Nodes {
        fn node(&self, hash: &Hash) -> Result<Option<SmtNode>, StoreError> {
            Ok(self.0.get(hash).copied())
        }
    }

    impl Nodes {
        fn apply(&mut self, update: &SmtUpdate) {
            for (hash, node) in &update.nodes {
                match node {
                    Some(node) => self.0.insert(*hash, *node),
                    None => self.0.remove(hash),
                };
            }
        }
    }

    fn k(n: u32) -> Hash {
        sha256(&n.to_be_bytes())
    }

    #[test]
    fn single_leaf_root_is_the_leaf_hash() {
        let mut nodes = Nodes::default();
        let changes = BTreeMap::from([(k(1), Some(k(100)))]);
        let up = update(&nodes, EMPTY_ROOT, &changes).unwrap();
        assert_eq!(up.root, leaf_hash(&k(1), &k(100)));
        nodes.apply(&up);
        assert_eq!(get(&nodes, up.root, &k(1)).unwrap(), Some(k(100)));
        assert_eq!(get(&nodes, up.root, &k(2)).unwrap(), None);
    }

    #[test]
    fn two_leaves_split_at_first_differing_bit() {
        // Keys 0b00.. and 0b01..: first differ at bit 1, so one internal node with an empty
        // right child at depth 0, then the two leaves.
        let a = Hash::from_bytes([0x00; 32]);
        let b = Hash::from_bytes([0x40; 32]);
        let va = k(1);
        let vb = k(2);
        let nodes = Nodes::default();
        let changes = BTreeMap::from([(a, Some(va)), (b, Some(vb))]);
        let up = update(&nodes, EMPTY_ROOT, &changes).unwrap();
        let inner = internal_hash(&leaf_hash(&a, &va), &leaf_hash(&b, &vb));
        assert_eq!(up.root, internal_hash(&inner, &EMPTY_ROOT));
        // Two leaves + two internal nodes written, nothing deleted.
        assert_eq!(up.nodes.values().filter(|n| n.is_some()).count(), 4);
    }

    #[test]
    fn removing_a_key_lifts_its_sibling_and_restores_nodes() {
        let a = Hash::from_bytes([0x00; 32]);
        let b = Hash::from_bytes([0x40; 32]);
        let mut nodes = Nodes::default();
        let up = update(&nodes, EMPTY_ROOT, &BTreeMap::from([(a, Some(k(1)))])).unwrap();
        nodes.apply(&up);
        let before = nodes.0.clone();
        let one = up.root;
        let up = update(&nodes, one, &BTreeMap::from([(b, Some(k(2)))])).unwrap();
        nodes.apply(&up);
        let up = update(&nodes, up.root, &BTreeMap::from([(b, None)])).unwrap();
        nodes.apply(&up);
        assert_eq!(up.root, one);
        assert_eq!(nodes.0, before);
    }

    #[test]
    fn proofs_for_present_and_absent_keys() {
        let mut nodes = Nodes::default();
        let changes: BTreeMap<Hash, Option<Hash>> =
            (0..50).map(|i| (k(i), Some(k(1000 + i)))).collect();
        let up = update(&nodes, EMPTY_ROOT, &changes).unwrap();
        nodes.apply(&up);
        for i in 0..60 {
            let proof = prove(&nodes, up.root, &k(i)).unwrap();
            if i < 50 {
                proof.verify(&up.root, &k(i), Some(&k(1000 + i))).unwrap();
                assert!(proof.verify(&up.root, &k(i), None).is_err());
                assert!(proof.verify(&up.root, &k(i), Some(&k(7))).is_err());
            } else {
                proof.verify(&up.root, &k(i), None).unwrap();
                assert!(proof.verify(&up.root, &k(i), Some(&k(7))).is_err());
            }
            // Depth is logarithmic, not 256.
            assert!(proof.siblings.len() < 20, "{}", proof.siblings.len());
        }
    }

    #[test]
    fn corrupt_store_is_an_error_not_a_panic() {
        let nodes = Nodes::default();
        let err = update(&nodes, k(9), &BTreeMap::from([(k(1), Some(k(2)))])).unwrap_err();
        assert_eq!(err, StateError::MissingNode(k(9)));
        assert_eq!(
            prove(&nodes, k(9), &k(1)).unwrap_err(),
            StateError::MissingNode(k(9))
        );
    }
    /// The root by the definition: no storage, no incremental update. Returns the root and
    /// the number of nodes of the tree (leaves and internal nodes).
    fn reference(leaves: &[(Hash, Hash)], depth: usize) -> (Hash, usize) {
        match leaves {
            [] => (EMPTY_ROOT, 0),
            [(k, v)] => (leaf_hash(k, v), 1),
            _ => {
                let split = leaves.partition_point(|(k, _)| !bit(k, depth));
                let (l, ln) = reference(&leaves[..split], depth + 1);
                let (r, rn) = reference(&leaves[split..], depth + 1);
                (internal_hash(&l, &r), ln + rn + 1)
            }
        }
    }

    /// Keys that share long prefixes: only a few low bits of the last byte and a few high
    /// bits of the first differ, so splits happen both near the root and near depth 256.
    fn clustered_key(n: u8) -> Hash {
        let mut bytes = [0x5Au8; 32];
        bytes[0] = (n & 0xF0) | 0x05;
        bytes[31] = n & 0x0F;
        Hash::from_bytes(bytes)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(96))]

        #[test]
        fn incremental_updates_match_the_definition(
            batches in proptest::collection::vec(
                proptest::collection::vec((proptest::prelude::any::<u8>(), proptest::option::of(0u8..4)), 0..12),
                1..12,
            )
        ) {
            let mut nodes = Nodes::default();
            let mut root = EMPTY_ROOT;
            let mut model: BTreeMap<Hash, Hash> = BTreeMap::new();
            for batch in batches {
                let changes: BTreeMap<Hash, Option<Hash>> = batch
                    .iter()
                    .map(|(n, v)| (clustered_key(*n), v.map(|v| k(u32::from(v)))))
                    .collect();
                for (key, value) in &changes {
                    match value {
                        Some(v) => model.insert(*key, *v),
                        None => model.remove(key),
                    };
                }
                let up = update(&nodes, root, &changes).unwrap();
                nodes.apply(&up);
                root = up.root;
                let leaves: Vec<(Hash, Hash)> = model.iter().map(|(k, v)| (*k, *v)).collect();
                let (expected, count) = reference(&leaves, 0);
                proptest::prop_assert_eq!(root, expected);
                // Exactly the reachable nodes are stored: nothing leaks, nothing is missing.
                proptest::prop_assert_eq!(nodes.0.len(), count);
                // Proofs hold for present and absent keys, down to depth 256.
                for n in [0u8, 1, 0x0F, 0x10, 0xF3, 0xFF] {
                    let key = clustered_key(n);
                    let proof = prove(&nodes, root, &key).unwrap();
                    proptest::prop_assert!(proof.verify(&root, &key, model.get(&key)).is_ok());
                }
            }
        }
    }
}
