//! Equivocation detection: a validator that signs two different blocks for the same slot.
//!
//! Under round-robin proof of authority a slot has exactly one rightful producer, who must
//! sign at most one block for it. Two signed headers for one `(producer, slot)` are
//! self-contained evidence of misbehaviour that anyone can verify. The detector reports the
//! first pair it sees; it does not reject the second block: refusing it could split this node
//! from peers that saw the blocks in the other order, and fork choice already keeps the first
//! seen at equal height.

use std::collections::BTreeMap;

use blyan_crypto::Hash;

/// Default cap on tracked `(producer, slot)` pairs.
///
/// Only slots inside the reorg window are tracked (older blocks can no longer enter the
/// tree); the cap is a backstop for a window full of side blocks: four times the default
/// side-block cap.
pub const DEFAULT_MAX_TRACKED_SLOTS: usize = 4096;

/// Evidence that `producer` signed two different blocks for `slot`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Equivocation {
    /// The validator that equivocated (public key bytes).
    pub producer: [u8; 32],
    /// The slot both blocks claim.
    pub slot: u64,
    /// The block seen first.
    pub first: Hash,
    /// The different block seen second.
    pub second: Hash,
}

/// What has been seen for one `(slot, producer)`.
#[derive(Debug, Clone, Copy)]
enum SlotRecord {
    /// One block so far.
    One(Hash),
    /// Evidence already reported; further blocks add nothing.
    Reported,
}

/// Bounded map of the blocks seen per `(slot, producer)` inside the reorg window.
#[derive(Debug, Clone)]
pub(crate) struct EquivocationDetector {
    seen: BTreeMap<(u64, [u8; 32]), SlotRecord>,
    max_entries: usize,
}

impl EquivocationDetector {
    pub(crate) fn new(max_entries: usize) -> Self {
        Self {
            seen: BTreeMap::new(),
            max_entries: max_entries.max(1),
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.seen.len()
    }

    /// Records that `producer` signed `hash` for `slot`; returns evidence the first time a
    /// second, different block shows up for the same pair.
    pub(crate) fn observe(
        &mut self,
        producer: [u8; 32],
        slot: u64,
        hash: Hash,
    ) -> Option<Equivocation> {
        let key = (slot, producer);
        match self.seen.get(&key).copied() {
            Some(SlotRecord::One(first)) if first != hash => {
                self.seen.insert(key, SlotRecord::Reported);
                Some(Equivocation {
                    producer,
                    slot,
                    first,
                    second: hash,
                })
            }
            Some(_) => None,
            None => {
                self.seen.insert(key, SlotRecord::One(hash));
                // Over the cap the lowest slot goes: it is the closest to leaving the window.
                while self.seen.len() > self.max_entries {
                    self.seen.pop_first();
                }
                None
            }
        }
    }

    /// Forgets every slot below `slot` (they are below the irreversible block).
    pub(crate) fn prune_below(&mut self, slot: u64) {
        while let Some(entry) = self.seen.first_entry() {
            if entry.key().0 >= slot {
                break;
            }
            entry.remove();
        }
    }
}

#[cfg(test)]
mod tests {
    use blyan_crypto::KeyPair;

    use super::*;

    fn key(n: u8) -> [u8; 32] {
        KeyPair::from_seed(&[n; 32]).public_key().to_bytes()
    }

    fn h(n: u8) -> Hash {
        Hash::from_bytes([n; 32])
    }

    #[test]
    fn reports_the_first_pair_once() {
        let mut detector = EquivocationDetector::new(16);
        assert_eq!(detector.observe(key(1), 5, h(1)), None);
        assert_eq!(
            detector.observe(key(1), 5, h(1)),
            None,
            "same block is no evidence"
        );
        assert_eq!(detector.observe(key(2), 5, h(2)), None, "other producer");
        assert_eq!(detector.observe(key(1), 6, h(3)), None, "other slot");
        assert_eq!(
            detector.observe(key(1), 5, h(4)),
            Some(Equivocation {
                producer: key(1),
                slot: 5,
                first: h(1),
                second: h(4)
            })
        );
        assert_eq!(detector.observe(key(1), 5, h(5)), None, "reported once");
    }

    #[test]
    fn pruning_and_cap_bound_memory() {
        let mut detector = EquivocationDetector::new(8);
        for slot in 0..20 {
            detector.observe(key(1), slot, h(slot as u8));
        }
        assert_eq!(detector.len(), 8);
        detector.prune_below(16);
        assert_eq!(detector.len(), 4);
        // A pruned slot starts afresh: no stale evidence.
        assert_eq!(detector.observe(key(1), 3, h(99)), None);
    }
}
