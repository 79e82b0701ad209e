//! The values this node holds for others: bounded in size, count and entries per key, each
//! with an expiry given by `now`.

use std::collections::BTreeMap;
use std::time::Duration;

use blyan_crypto::PeerId;

use crate::distance::Key;
use crate::time::Timestamp;

/// Settings of a [`RecordStore`]; `Default` gives the documented values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordStoreConfig {
    /// Largest value accepted. 1 KiB: room for a signed node record or a content pointer;
    /// bulk data does not belong in the DHT.
    pub max_value_len: usize,
    /// Values held in total, across all keys. 4,096 × 1 KiB bounds the store at 4 MiB.
    pub max_records: usize,
    /// Values held under one key (one per publisher). 16: enough providers to find one
    /// alive, too few for one key to take over the store.
    pub max_entries_per_key: usize,
    /// Longest lifetime a publisher may ask for; longer requests are shortened. 24 h, as
    /// Kademlia's original expiry; publishers republish before it runs out.
    pub max_ttl: Duration,
}

impl Default for RecordStoreConfig {
    fn default() -> Self {
        Self {
            max_value_len: 1024,
            max_records: 4096,
            max_entries_per_key: 16,
            max_ttl: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// One value held under a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredValue {
    publisher: PeerId,
    value: Vec<u8>,
    expires: Timestamp,
}

impl StoredValue {
    /// Who stored it (the authenticated peer of the STORE request).
    pub fn publisher(&self) -> PeerId {
        self.publisher
    }

    /// The value bytes.
    pub fn value(&self) -> &[u8] {
        &self.value
    }

    /// When it stops being served.
    pub fn expires(&self) -> Timestamp {
        self.expires
    }
}

/// What [`RecordStore::put`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// A new value is held.
    Stored,
    /// The publisher's earlier value under this key was replaced (and its expiry renewed).
    Replaced,
}

/// Why a value was not stored.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The value is larger than `max_value_len`.
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The key already holds `max_entries_per_key` values from other publishers.
    #[error("key {key:?} already holds {max} values")]
    KeyFull {
        /// The key.
        key: Key,
        /// The limit.
        max: usize,
    },
    /// The store holds `max_records` live values.
    #[error("the store is full ({max} values)")]
    StoreFull {
        /// The limit.
        max: usize,
    },
    /// A zero lifetime: the value would be expired on arrival.
    #[error("a value needs a lifetime above zero")]
    ZeroTtl,
}

/// Values stored by other nodes, keyed by [`Key`], at most one per publisher and key.
///
/// A full store or key refuses new values rather than evicting live ones: what is held was
/// accepted first, and a flood of STOREs cannot push it out. Expired values are dropped by
/// [`expire`](Self::expire), and before a put is refused for lack of room.
#[derive(Clone, Debug, Default)]
pub struct RecordStore {
    config: RecordStoreConfig,
    values: BTreeMap<Key, Vec<StoredValue>>,
    len: usize,
}

impl RecordStore {
    /// An empty store.
    pub fn new(config: RecordStoreConfig) -> Self {
        Self {
            config,
            values: BTreeMap::new(),
            len: 0,
        }
    }

    /// The settings.
    pub fn config(&self) -> &RecordStoreConfig {
        &self.config
    }

    /// Values held (expired ones included until [`expire`](Self::expire) runs).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no value is held.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Stores `value` from `publisher` under `key` at `now` for `ttl` (at most `max_ttl`).
    pub fn put(
        &mut self,
        now: Timestamp,
        key: Key,
        publisher: PeerId,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<PutOutcome, StoreError> {
        if value.len() > self.config.max_value_len {
            return Err(StoreError::ValueTooLarge {
                len: value.len(),
                max: self.config.max_value_len,
            });
        }
        if ttl.is_zero() {
            return Err(StoreError::ZeroTtl);
        }
        let expires = now.saturating_add(ttl.min(self.config.max_ttl));
        let stored = StoredValue {
            publisher,
            value,
            expires,
        };
        self.expire_key(now, &key);
        if let Some(existing) = self
            .values
            .get_mut(&key)
            .and_then(|vs| vs.iter_mut().find(|v| v.publisher == publisher))
        {
            *existing = stored;
            return Ok(PutOutcome::Replaced);
        }
        let held = self.values.get(&key).map_or(0, Vec::len);
        if held >= self.config.max_entries_per_key {
            return Err(StoreError::KeyFull {
                key,
                max: self.config.max_entries_per_key,
            });
        }
        if self.len >= self.config.max_records {
            self.expire(now);
        }
        if self.len >= self.config.max_records {
            return Err(StoreError::StoreFull {
                max: self.config.max_records,
            });
        }
        self.values.entry(key).or_default().push(stored);
        self.len += 1;
        Ok(PutOutcome::Stored)
    }

    /// The live values under `key` at `now`.
    pub fn get(&self, now: Timestamp, key: &Key) -> Vec<&StoredValue> {
        self.values
            .get(key)
            .map(|vs| vs.iter().filter(|v| v.expires > now).collect())
            .unwrap_or_default()
    }

    /// Drops `publisher`'s value under `key`. Returns whether one was held.
    pub fn remove(&mut self, key: &Key, publisher: &PeerId) -> bool {
        let Some(values) = self.values.get_mut(key) else {
            return false;
        };
        let before = values.len();
        values.retain(|v| v.publisher != *publisher);
        let removed = before - values.len();
        if values.is_empty() {
            self.values.remove(key);
        }
        self.len -= removed;
        removed > 0
    }

    /// Drops every value expired at `now`; returns how many.
    pub fn expire(&mut self, now: Timestamp) -> usize {
        let before = self.len;
        self.values.retain(|_, values| {
            values.retain(|v| v.expires > now);
            !values.is_empty()
        });
        self.len = self.values.values().map(Vec::len).sum();
        before - self.len
    }

    /// The earliest expiry of a held value, for the driver's timer.
    pub fn next_expiry(&self) -> Option<Timestamp> {
        self.values.values().flatten().map(|v| v.expires).min()
    }

    fn expire_key(&mut self, now: Timestamp, key: &Key) {
        let Some(values) = self.values.get_mut(key) else {
            return;
        };
        let before = values.len();
        values.retain(|v| v.expires > now);
        let removed = before - values.len();
        if values.is_empty() {
            self.values.remove(key);
        }
        self.len -= removed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOUR: Duration = Duration::from_secs(3600);

    fn peer(i: u8) -> PeerId {
        PeerId::from_bytes([i; 32])
    }

    fn small() -> RecordStoreConfig {
        RecordStoreConfig {
            max_value_len: 8,
            max_records: 6,
            max_entries_per_key: 3,
            max_ttl: HOUR,
        }
    }

    #[test]
    fn put_get_replace_and_expire() {
        let mut store = RecordStore::new(RecordStoreConfig::default());
        let key = Key::for_value(b"name");
        let t0 = Timestamp::ZERO;
        assert_eq!(
            store.put(t0, key, peer(1), b"a".to_vec(), HOUR),
            Ok(PutOutcome::Stored)
        );
        assert_eq!(
            store.put(t0, key, peer(1), b"b".to_vec(), 2 * HOUR),
            Ok(PutOutcome::Replaced)
        );
        let got = store.get(t0, &key);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].value(), b"b");
        assert_eq!(got[0].publisher(), peer(1));
        let expiry = got[0].expires();
        assert_eq!(store.next_expiry(), Some(expiry));
        assert!(
            store.get(expiry, &key).is_empty(),
            "expired values are not served"
        );
        assert_eq!(store.expire(expiry), 1);
        assert!(store.is_empty());
    }

    #[test]
    fn limits_are_typed_errors() {
        let mut store = RecordStore::new(small());
        let t0 = Timestamp::ZERO;
        let key = Key::for_value(b"k");
        assert_eq!(
            store.put(t0, key, peer(1), vec![0; 9], HOUR),
            Err(StoreError::ValueTooLarge { len: 9, max: 8 })
        );
        assert_eq!(
            store.put(t0, key, peer(1), vec![], Duration::ZERO),
            Err(StoreError::ZeroTtl)
        );
        for i in 0..3 {
            assert!(store.put(t0, key, peer(i), vec![i], HOUR).is_ok());
        }
        assert_eq!(
            store.put(t0, key, peer(9), vec![], HOUR),
            Err(StoreError::KeyFull { key, max: 3 })
        );
        let other = Key::for_value(b"other");
        for i in 0..3 {
            assert!(store.put(t0, other, peer(i), vec![], HOUR).is_ok());
        }
        let third = Key::for_value(b"third");
        assert_eq!(
            store.put(t0, third, peer(1), vec![], HOUR),
            Err(StoreError::StoreFull { max: 6 })
        );
        // Once values expire there is room again.
        let later = t0.saturating_add(HOUR);
        assert_eq!(
            store.put(later, third, peer(1), vec![], HOUR),
            Ok(PutOutcome::Stored)
        );
        assert_eq!(store.len(), 1);
    }

    #[test]
    fn ttl_is_capped() {
        let mut store = RecordStore::new(small());
        let key = Key::for_value(b"k");
        assert!(
            store
                .put(Timestamp::ZERO, key, peer(1), vec![], 1000 * HOUR)
                .is_ok()
        );
        assert_eq!(
            store.next_expiry(),
            Some(Timestamp::ZERO.saturating_add(HOUR))
        );
        assert!(store.remove(&key, &peer(1)));
        assert!(!store.remove(&key, &peer(1)));
        assert!(store.is_empty());
    }

    #[derive(Clone, Debug)]
    enum Op {
        Put {
            key: u8,
            publisher: u8,
            len: usize,
            ttl_s: u64,
        },
        Remove {
            key: u8,
            publisher: u8,
        },
        Advance(u64),
        Expire,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0u8..4, 0u8..6, 0usize..12, 0u64..7200)
                .prop_map(|(key, publisher, len, ttl_s)| Op::Put { key, publisher, len, ttl_s }),
            1 => (0u8..4, 0u8..6).prop_map(|(key, publisher)| Op::Remove { key, publisher }),
            2 => (0u64..2000).prop_map(Op::Advance),
            1 => Just(Op::Expire),
        ]
    }

    proptest! {
        #[test]
        fn bounds_always_hold(ops in proptest::collection::vec(op(), 1..200)) {
            let cfg = small();
            let mut store = RecordStore::new(cfg.clone());
            let mut now = Timestamp::ZERO;
            for op in ops {
                match op {
                    Op::Put { key, publisher, len, ttl_s } => {
                        let key = Key::for_value(&[key]);
                        let ttl = Duration::from_secs(ttl_s);
                        let result = store.put(now, key, peer(publisher), vec![7; len], ttl);
                        if result.is_ok() {
                            let live = store.get(now, &key);
                            prop_assert!(live.iter().any(|v| v.publisher() == peer(publisher)));
                        }
                    }
                    Op::Remove { key, publisher } => {
                        store.remove(&Key::for_value(&[key]), &peer(publisher));
                    }
                    Op::Advance(s) => now = now.saturating_add(Duration::from_secs(s)),
                    Op::Expire => { store.expire(now); }
                }
                prop_assert!(store.len() <= cfg.max_records);
                let mut counted = 0;
                for key in 0..4u8 {
                    let key = Key::for_value(&[key]);
                    let live = store.get(now, &key);
                    prop_assert!(live.len() <= cfg.max_entries_per_key);
                    for v in &live {
                        prop_assert!(v.value().len() <= cfg.max_value_len);
                        prop_assert!(v.expires() > now);
                        prop_assert!(v.expires() <= now.saturating_add(cfg.max_ttl));
                    }
                    let mut publishers: Vec<_> = live.iter().map(|v| v.publisher()).collect();
                    publishers.sort();
                    publishers.dedup();
                    prop_assert_eq!(publishers.len(), live.len());
                    counted += store.values.get(&key).map_or(0, Vec::len);
                }
                prop_assert_eq!(counted, store.len());
            }
        }
    }
}
