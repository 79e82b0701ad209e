//! The one eviction rule shared by every table keyed by a remote's input.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash};

/// Removes the `count` entries with the lowest `priority` and returns the highest
/// priority among those removed (`None` when nothing was removed).
///
/// Tables evict a batch (typically an eighth of their capacity) at a time, so a flood of
/// new keys pays O(1) amortised instead of a full scan per insertion.
pub(crate) fn evict_lowest<K, V, S, P>(
    map: &mut HashMap<K, V, S>,
    count: usize,
    priority: impl Fn(&K, &V) -> P,
) -> Option<P>
where
    K: Hash + Eq + Clone,
    S: BuildHasher,
    P: Ord + Copy,
{
    if count == 0 || map.is_empty() {
        return None;
    }
    let mut ranked: Vec<(P, K)> = map
        .iter()
        .map(|(k, v)| (priority(k, v), k.clone()))
        .collect();
    let count = count.min(ranked.len());
    if count < ranked.len() {
        ranked.select_nth_unstable_by(count - 1, |a, b| a.0.cmp(&b.0));
        ranked.truncate(count);
    }
    let mut highest = None;
    for (p, k) in ranked {
        map.remove(&k);
        highest = Some(highest.map_or(p, |h: P| h.max(p)));
    }
    highest
}

/// The batch a full table of `capacity` evicts: an eighth, at least one.
pub(crate) fn batch(capacity: usize) -> usize {
    (capacity / 8).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removes_the_lowest_and_reports_the_highest_removed() {
        let mut map: HashMap<u32, u32> = (0..100).map(|i| (i, 1000 - i)).collect();
        let highest = evict_lowest(&mut map, 10, |_, v| *v);
        assert_eq!(map.len(), 90);
        assert_eq!(highest, Some(910));
        assert!(map.values().all(|v| *v > 910));
        assert_eq!(evict_lowest(&mut map, 0, |_, v| *v), None);
        assert_eq!(evict_lowest(&mut map, 1000, |_, v| *v), Some(1000));
        assert!(map.is_empty());
    }
}
