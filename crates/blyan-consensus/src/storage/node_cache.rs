//! [`NodeCache`]: a bounded in-memory cache of decoded state-tree nodes, keyed by hash.
//!
//! State-tree nodes are content addressed: the key of a node is the hash of its content,
//! so the node stored under a hash never changes. A cached `(hash, node)` pair is therefore
//! never stale, whatever happens to the database: an aborted transaction, a reorg that
//! deletes the node and later writes it again, a reopen. The only question the cache cannot
//! answer is whether a node is *currently stored*; the tree never asks it, because it only
//! follows hashes reachable from a root whose nodes are all stored (every transaction writes
//! the nodes of the root it records). So the cache needs no invalidation, only a bound.
//!
//! The bound is kept with two generations: new entries go into the young one; when it is
//! full it becomes the old one (dropping the previous old one), and a hit in the old one is
//! moved back to the young one. At most `2 × half` entries are held, the recently used
//! upper levels of the tree stay, and eviction costs nothing per access.

use std::collections::HashMap;
use std::hash::Hasher;
use std::sync::{Mutex, PoisonError};

use blyan_crypto::Hash;

use crate::state::SmtNode;

/// Default capacity in nodes (about 100 bytes each with the map's overhead: ~13 MiB).
pub(crate) const DEFAULT_NODE_CACHE_ENTRIES: usize = 128 * 1024;

/// Hasher for keys that are SHA-256 outputs: their bytes are already uniform, so eight of
/// them, mixed with a secret per-cache seed by one folded multiply, make the hash (SipHash
/// over all 32 would cost more than the lookup it serves). The seed keeps a peer from
/// grinding accounts whose node hashes collide in the table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DigestHasher(u64);

const MIX: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let head = match bytes.first_chunk::<8>() {
            Some(head) => u64::from_le_bytes(*head),
            None => bytes
                .iter()
                .fold(0u64, |acc, b| acc.rotate_left(8) ^ u64::from(*b)),
        };
        let product = u128::from(self.0 ^ head) * u128::from(MIX);
        self.0 = (product >> 64) as u64 ^ product as u64;
    }

    fn write_usize(&mut self, _len: usize) {
        // Only the length prefix of the 32-byte array: the same for every key.
    }
}

/// Builds [`DigestHasher`]s with a random seed per map.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeededDigest(u64);

impl Default for SeededDigest {
    fn default() -> Self {
        use std::hash::BuildHasher;
        Self(std::collections::hash_map::RandomState::new().hash_one(0u64))
    }
}

impl std::hash::BuildHasher for SeededDigest {
    type Hasher = DigestHasher;

    fn build_hasher(&self) -> DigestHasher {
        DigestHasher(self.0)
    }
}

type NodeMap = HashMap<Hash, SmtNode, SeededDigest>;

/// A map keyed by node hashes, with the cheap seeded hasher of the cache.
pub(crate) type HashKeyed<V> = HashMap<Hash, V, SeededDigest>;

#[derive(Debug, Default)]
struct Generations {
    young: NodeMap,
    old: NodeMap,
}

/// A bounded cache of state-tree nodes by hash, shared by the store's transactions and
/// read views (see the module docs for why it needs no invalidation).
#[derive(Debug)]
pub(crate) struct NodeCache {
    half: usize,
    inner: Mutex<Generations>,
}

impl NodeCache {
    /// A cache holding at most `capacity` nodes (at least 2).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            half: (capacity / 2).max(1),
            inner: Mutex::new(Generations::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        // The maps hold plain data and every update leaves them consistent: a panic
        // elsewhere while holding the lock cannot leave a wrong entry behind.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached node with this hash.
    pub(crate) fn get(&self, hash: &Hash) -> Option<SmtNode> {
        let mut g = self.lock();
        if let Some(node) = g.young.get(hash) {
            return Some(*node);
        }
        let node = g.old.remove(hash)?;
        Self::insert_young(&mut g, self.half, *hash, node);
        Some(node)
    }

    /// Remembers `node` under `hash`. The caller guarantees `hash` is the node's hash
    /// (it was written or read under that key).
    pub(crate) fn insert(&self, hash: Hash, node: SmtNode) {
        let mut g = self.lock();
        Self::insert_young(&mut g, self.half, hash, node);
    }

    /// Remembers every written node of a batch under one lock.
    pub(crate) fn insert_all<'a>(&self, nodes: impl IntoIterator<Item = (&'a Hash, &'a SmtNode)>) {
        let mut g = self.lock();
        for (hash, node) in nodes {
            Self::insert_young(&mut g, self.half, *hash, *node);
        }
    }

    fn insert_young(g: &mut Generations, half: usize, hash: Hash, node: SmtNode) {
        if g.young.len() >= half && !g.young.contains_key(&hash) {
            g.old = std::mem::take(&mut g.young);
            g.young.reserve(half);
        }
        g.young.insert(hash, node);
    }

    /// Number of cached nodes.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let g = self.lock();
        g.young.len() + g.old.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::sha256;

    fn leaf(i: u32) -> (Hash, SmtNode) {
        let node = SmtNode::Leaf {
            key: sha256(&i.to_be_bytes()),
            value: Hash::ZERO,
        };
        (node.hash(), node)
    }

    #[test]
    fn holds_at_most_its_capacity_and_keeps_recently_used_nodes() {
        let cache = NodeCache::new(8);
        let (hot_hash, hot) = leaf(0);
        cache.insert(hot_hash, hot);
        for i in 1..100 {
            let (h, n) = leaf(i);
            cache.insert(h, n);
            assert!(cache.len() <= 8, "{} entries", cache.len());
            // Touching the hot node every step keeps it cached.
            assert_eq!(cache.get(&hot_hash), Some(hot));
        }
        let (h, n) = leaf(99);
        assert_eq!(cache.get(&h), Some(n));
        // Long evicted.
        assert_eq!(cache.get(&leaf(1).0), None);
    }

    #[test]
    fn reinserting_an_entry_does_not_rotate() {
        let cache = NodeCache::new(4);
        let (a, na) = leaf(1);
        let (b, nb) = leaf(2);
        cache.insert(a, na);
        cache.insert(b, nb);
        cache.insert_all([(&a, &na), (&b, &nb)]);
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(&a), Some(na));
        assert_eq!(cache.get(&b), Some(nb));
    }
}
