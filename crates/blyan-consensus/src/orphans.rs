//! The orphan buffer: blocks whose parent is not known yet, waiting for it.
//!
//! Gossip delivers blocks out of order; a block that arrives a moment before its parent
//! should not be dropped and re-requested. But a remote chooses what it sends, so the buffer
//! is bounded three ways: by total count, by count per producer, and by height (an orphan
//! too far above the tip is for the sync protocol, not for this buffer).
//!
//! **Eviction rule.** When a cap is reached, the candidate set (all orphans for the total cap,
//! the producer's orphans for the per-producer cap) plus the newcomer is ranked by height; the
//! highest one (the newest on a tie) is dropped, which may be the newcomer itself. Blocks
//! closest to the tip are the likeliest to connect soon; blocks far above it are the cheapest
//! junk for an attacker to make and the first that sync would fetch again anyway.

use std::collections::{BTreeSet, HashMap};

use blyan_crypto::Hash;

use crate::block_tree::BlockMeta;

/// Bounds of the orphan buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrphanConfig {
    /// Most orphans held in total. Default 256: a few seconds of gossip out of order on a busy
    /// network, a few MiB at most with bodies.
    pub max_orphans: usize,
    /// Most orphans held per producer. Default 32: one validator cannot fill the buffer.
    pub max_per_producer: usize,
    /// Highest an orphan may be above the canonical tip. Default 64: a larger gap is sync's
    /// job (it fetches parents first), not the buffer's.
    pub max_height_ahead: u64,
}

impl Default for OrphanConfig {
    fn default() -> Self {
        Self {
            max_orphans: 256,
            max_per_producer: 32,
            max_height_ahead: 64,
        }
    }
}

/// Why the buffer refused an orphan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrphanRefusal {
    /// The pool is full of orphans no higher than this one.
    PoolFull,
    /// The producer already has `max_per_producer` orphans no higher than this one.
    ProducerLimit,
}

/// Ranking key: height, then arrival; the greatest is evicted first.
type RankKey = (u64, u64, Hash);

#[derive(Debug, Clone)]
struct Orphan<B> {
    meta: BlockMeta,
    body: B,
    seq: u64,
}

impl<B> Orphan<B> {
    fn rank(&self) -> RankKey {
        (self.meta.height, self.seq, self.meta.hash)
    }
}

/// Orphan blocks by hash, by missing parent, by rank and by producer.
#[derive(Debug, Clone)]
pub(crate) struct OrphanPool<B> {
    config: OrphanConfig,
    by_hash: HashMap<Hash, Orphan<B>>,
    /// Missing parent -> waiting children, in arrival order.
    by_parent: HashMap<Hash, Vec<Hash>>,
    ranked: BTreeSet<RankKey>,
    by_producer: HashMap<[u8; 32], BTreeSet<RankKey>>,
    next_seq: u64,
}

impl<B> OrphanPool<B> {
    pub(crate) fn new(config: OrphanConfig) -> Self {
        Self {
            config,
            by_hash: HashMap::new(),
            by_parent: HashMap::new(),
            ranked: BTreeSet::new(),
            by_producer: HashMap::new(),
            next_seq: 0,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub(crate) fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Buffers an orphan (the caller has checked its height window and that it is new).
    /// Returns the hashes evicted to make room, or why the newcomer itself was refused.
    pub(crate) fn insert(&mut self, meta: BlockMeta, body: B) -> Result<Vec<Hash>, OrphanRefusal> {
        let rank = (meta.height, self.next_seq, meta.hash);
        let mut evicted = Vec::new();
        let producer_full = self
            .by_producer
            .get(&meta.producer)
            .filter(|ranks| ranks.len() >= self.config.max_per_producer)
            .and_then(|ranks| ranks.last().copied());
        if let Some(highest) = producer_full {
            // The newcomer's rank is the greatest on equal height (newest), so it loses ties.
            if rank > highest {
                return Err(OrphanRefusal::ProducerLimit);
            }
            evicted.extend(self.remove(&highest.2).map(|orphan| orphan.meta.hash));
        }
        if self.by_hash.len() >= self.config.max_orphans {
            match self.ranked.last().copied() {
                Some(highest) if rank < highest => {
                    evicted.extend(self.remove(&highest.2).map(|orphan| orphan.meta.hash));
                }
                _ => return Err(OrphanRefusal::PoolFull),
            }
        }
        self.next_seq += 1;
        self.ranked.insert(rank);
        self.by_producer
            .entry(meta.producer)
            .or_default()
            .insert(rank);
        self.by_parent
            .entry(meta.parent)
            .or_default()
            .push(meta.hash);
        self.by_hash.insert(
            meta.hash,
            Orphan {
                meta,
                body,
                seq: rank.1,
            },
        );
        Ok(evicted)
    }

    /// Takes the orphans waiting for `parent`, in arrival order.
    pub(crate) fn take_children(&mut self, parent: &Hash) -> Vec<(BlockMeta, B)> {
        let Some(children) = self.by_parent.remove(parent) else {
            return Vec::new();
        };
        children
            .iter()
            .filter_map(|hash| self.remove(hash))
            .map(|orphan| (orphan.meta, orphan.body))
            .collect()
    }

    /// Removes the orphans descending from `ancestor` (children, grandchildren, ...).
    pub(crate) fn remove_descendants(&mut self, ancestor: &Hash) -> Vec<Hash> {
        let mut removed = Vec::new();
        let mut stack = vec![*ancestor];
        while let Some(parent) = stack.pop() {
            for (meta, _) in self.take_children(&parent) {
                removed.push(meta.hash);
                stack.push(meta.hash);
            }
        }
        removed
    }

    /// Drops every orphan at or below `height` (they can no longer connect to a block that may
    /// still become canonical).
    pub(crate) fn expire_at_or_below(&mut self, height: u64) -> Vec<Hash> {
        let mut expired = Vec::new();
        while let Some(&(h, _, hash)) = self.ranked.first() {
            if h > height {
                break;
            }
            self.remove(&hash);
            expired.push(hash);
        }
        expired
    }

    /// Drops one orphan; returns whether it was buffered.
    pub(crate) fn discard(&mut self, hash: &Hash) -> bool {
        self.remove(hash).is_some()
    }

    fn remove(&mut self, hash: &Hash) -> Option<Orphan<B>> {
        let orphan = self.by_hash.remove(hash)?;
        let rank = orphan.rank();
        self.ranked.remove(&rank);
        if let Some(ranks) = self.by_producer.get_mut(&orphan.meta.producer) {
            ranks.remove(&rank);
            if ranks.is_empty() {
                self.by_producer.remove(&orphan.meta.producer);
            }
        }
        if let Some(siblings) = self.by_parent.get_mut(&orphan.meta.parent) {
            siblings.retain(|sibling| sibling != hash);
            if siblings.is_empty() {
                self.by_parent.remove(&orphan.meta.parent);
            }
        }
        Some(orphan)
    }
}

#[cfg(test)]
mod tests {
    use blyan_crypto::{KeyPair, sha256};

    use super::*;

    fn key(n: u8) -> [u8; 32] {
        KeyPair::from_seed(&[n; 32]).public_key().to_bytes()
    }

    fn orphan(id: u64, parent: u64, height: u64, producer: u8) -> BlockMeta {
        BlockMeta {
            hash: sha256(&id.to_be_bytes()),
            parent: sha256(&parent.to_be_bytes()),
            height,
            slot: height,
            producer: key(producer),
        }
    }

    fn pool(max_orphans: usize, max_per_producer: usize) -> OrphanPool<u64> {
        OrphanPool::new(OrphanConfig {
            max_orphans,
            max_per_producer,
            max_height_ahead: 100,
        })
    }

    #[test]
    fn full_pool_evicts_the_highest_or_refuses_the_newcomer() {
        let mut pool = pool(2, 10);
        pool.insert(orphan(1, 100, 10, 1), 1).unwrap();
        pool.insert(orphan(2, 100, 20, 2), 2).unwrap();
        assert_eq!(
            pool.insert(orphan(3, 100, 30, 3), 3),
            Err(OrphanRefusal::PoolFull)
        );
        assert_eq!(
            pool.insert(orphan(4, 100, 20, 3), 4),
            Err(OrphanRefusal::PoolFull),
            "tie: newest loses"
        );
        let evicted = pool.insert(orphan(5, 100, 15, 3), 5).unwrap();
        assert_eq!(evicted, vec![orphan(2, 0, 0, 0).hash]);
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn producer_cap_evicts_only_that_producers_orphans() {
        let mut pool = pool(10, 2);
        pool.insert(orphan(1, 100, 10, 1), 1).unwrap();
        pool.insert(orphan(2, 100, 12, 1), 2).unwrap();
        pool.insert(orphan(3, 100, 50, 2), 3).unwrap();
        assert_eq!(
            pool.insert(orphan(4, 100, 13, 1), 4),
            Err(OrphanRefusal::ProducerLimit)
        );
        let evicted = pool.insert(orphan(5, 100, 11, 1), 5).unwrap();
        assert_eq!(evicted, vec![orphan(2, 0, 0, 0).hash]);
        assert!(
            pool.contains(&orphan(3, 0, 0, 0).hash),
            "other producer untouched"
        );
    }

    #[test]
    fn children_and_descendants_come_out_in_order() {
        let mut pool = pool(10, 10);
        pool.insert(orphan(2, 1, 2, 1), 2).unwrap();
        pool.insert(orphan(3, 1, 2, 2), 3).unwrap();
        pool.insert(orphan(4, 2, 3, 1), 4).unwrap();
        let released: Vec<u64> = pool
            .take_children(&orphan(1, 0, 0, 0).hash)
            .into_iter()
            .map(|(_, b)| b)
            .collect();
        assert_eq!(released, vec![2, 3]);
        assert_eq!(
            pool.remove_descendants(&orphan(2, 0, 0, 0).hash),
            vec![orphan(4, 0, 0, 0).hash]
        );
        assert_eq!(pool.len(), 0);
        assert!(pool.by_parent.is_empty() && pool.by_producer.is_empty() && pool.ranked.is_empty());
    }

    #[test]
    fn expiry_drops_low_orphans() {
        let mut pool = pool(10, 10);
        for id in 1..=5 {
            pool.insert(orphan(id, 1000 + id, id * 10, 1), id).unwrap();
        }
        let expired = pool.expire_at_or_below(30);
        assert_eq!(expired.len(), 3);
        assert_eq!(pool.len(), 2);
    }
}
