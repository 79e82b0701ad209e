//! A bounded memory of blocks known to be invalid, so a bad block (or any block built on one)
//! is rejected at once instead of being validated again.

use std::collections::{BTreeMap, HashMap};

use blyan_crypto::Hash;

/// Default capacity of the invalid-block cache.
///
/// A peer that keeps sending blocks from a bad branch costs one lookup per block while the
/// branch is remembered; 1024 hashes (about 100 KiB with the indexes) covers the reorg window
/// of ten bad branches at the default `max_reorg_depth`.
pub const DEFAULT_INVALID_CACHE_CAPACITY: usize = 1024;

/// Hashes of invalid blocks, least recently used evicted first.
///
/// "Used" means inserted or hit by [`InvalidBlockCache::touch`]: a branch a peer keeps
/// pushing stays remembered, a branch nobody mentions any more ages out.
#[derive(Debug, Clone)]
pub(crate) struct InvalidBlockCache {
    capacity: usize,
    /// Hash -> the stamp of its last use.
    stamps: HashMap<Hash, u64>,
    /// Stamp -> hash, oldest first (the eviction order).
    order: BTreeMap<u64, Hash>,
    next_stamp: u64,
}

impl InvalidBlockCache {
    /// An empty cache holding at most `capacity` hashes (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            stamps: HashMap::new(),
            order: BTreeMap::new(),
            next_stamp: 0,
        }
    }

    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.stamps.contains_key(hash)
    }

    pub(crate) fn len(&self) -> usize {
        self.stamps.len()
    }

    /// Remembers `hash` as invalid (or refreshes it), evicting the least recently used entry
    /// when full.
    pub(crate) fn insert(&mut self, hash: Hash) {
        let stamp = self.next_stamp;
        self.next_stamp += 1;
        if let Some(old) = self.stamps.insert(hash, stamp) {
            self.order.remove(&old);
        } else if self.stamps.len() > self.capacity
            && let Some((_, evicted)) = self.order.pop_first()
        {
            self.stamps.remove(&evicted);
        }
        self.order.insert(stamp, hash);
    }

    /// Marks a hit: returns whether `hash` is cached, and refreshes it if so.
    pub(crate) fn touch(&mut self, hash: &Hash) -> bool {
        if self.contains(hash) {
            self.insert(*hash);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(n: u8) -> Hash {
        Hash::from_bytes([n; 32])
    }

    #[test]
    fn evicts_least_recently_used_at_capacity() {
        let mut cache = InvalidBlockCache::new(3);
        cache.insert(h(1));
        cache.insert(h(2));
        cache.insert(h(3));
        assert!(cache.touch(&h(1)));
        cache.insert(h(4));
        assert_eq!(cache.len(), 3);
        assert!(!cache.contains(&h(2)), "2 was least recently used");
        assert!(cache.contains(&h(1)) && cache.contains(&h(3)) && cache.contains(&h(4)));
    }

    #[test]
    fn reinserting_does_not_grow() {
        let mut cache = InvalidBlockCache::new(2);
        for _ in 0..10 {
            cache.insert(h(7));
        }
        assert_eq!(cache.len(), 1);
        assert!(!cache.touch(&h(8)));
    }
}
