//! A bounded cache of node records already verified, so a record relayed by many peers costs
//! one signature check.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use blyan_crypto::{Hash, sha256};

use crate::node::NodeInfo;
use crate::node_record::{NodeRecord, RecordError};

/// Records verified for one chain id, keyed by the SHA-256 of their encoding, at most
/// `capacity` of them; the oldest insertion is forgotten first.
///
/// A lookup sees the same popular records (nodes close to many keys, bootstrap nodes) in
/// many answers; the cache turns their repeat ed25519 checks into one hash. Keyed by the
/// exact bytes, so a record the cache vouches for is the record that was verified: any other
/// encoding or a newer `seq` is a different key and is verified on its own.
#[derive(Clone, Debug)]
pub struct RecordCache {
    chain_id: u32,
    capacity: usize,
    verified: HashMap<Hash, NodeInfo>,
    order: VecDeque<Hash>,
}

impl RecordCache {
    /// 4,096 records of at most 512 bytes: 2 MiB at worst, several lookups' worth of answers.
    pub const DEFAULT_CAPACITY: usize = 4096;

    /// An empty cache for records of chain `chain_id` holding at most `capacity` records.
    pub fn new(chain_id: u32, capacity: usize) -> Self {
        Self {
            chain_id,
            capacity,
            verified: HashMap::new(),
            order: VecDeque::new(),
        }
    }

    /// The chain id records are verified for.
    pub fn chain_id(&self) -> u32 {
        self.chain_id
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.verified.len()
    }

    /// Whether no record is held.
    pub fn is_empty(&self) -> bool {
        self.verified.is_empty()
    }

    /// Decodes and verifies `bytes` as a [`NodeRecord`] (or finds it verified already) and
    /// returns the node it vouches for, with the record attached for relaying.
    pub fn verify(&mut self, bytes: &[u8]) -> Result<NodeInfo, RecordError> {
        let hash = sha256(bytes);
        if let Some(info) = self.verified.get(&hash) {
            return Ok(info.clone());
        }
        let record = NodeRecord::decode(bytes, self.chain_id)?;
        let info = record.node_info()?.with_record(Arc::from(bytes));
        if self.capacity == 0 {
            return Ok(info);
        }
        while self.verified.len() >= self.capacity {
            match self.order.pop_front() {
                Some(old) => {
                    self.verified.remove(&old);
                }
                None => break,
            }
        }
        self.verified.insert(hash, info.clone());
        self.order.push_back(hash);
        Ok(info)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::KeyPair;
    use std::net::SocketAddr;

    fn record(seed: u8, port: u16) -> Vec<u8> {
        let key = KeyPair::from_seed(&[seed; 32]);
        NodeRecord::new(&key, 1, &[SocketAddr::from(([10, 0, seed, 1], port))], 1)
            .and_then(|r| r.encode())
            .unwrap()
    }

    #[test]
    fn caches_up_to_capacity_and_forgets_the_oldest() {
        let mut cache = RecordCache::new(1, 2);
        let a = record(1, 1);
        let info = cache.verify(&a).unwrap();
        assert_eq!(info.record().map(|r| r.to_vec()), Some(a.clone()));
        assert_eq!(cache.verify(&a).unwrap(), info);
        assert_eq!(cache.len(), 1);
        cache.verify(&record(2, 1)).unwrap();
        cache.verify(&record(3, 1)).unwrap();
        assert_eq!(cache.len(), 2);
        assert!(!cache.verified.contains_key(&sha256(&a)));
    }

    #[test]
    fn bad_records_are_not_cached() {
        let mut cache = RecordCache::new(2, 8);
        assert!(matches!(
            cache.verify(&record(1, 1)),
            Err(RecordError::BadSignature(_))
        ));
        assert!(cache.verify(b"junk").is_err());
        assert!(cache.is_empty());
        assert_eq!(cache.chain_id(), 2);
    }
}
