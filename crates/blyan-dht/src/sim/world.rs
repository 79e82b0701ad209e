//! What every shard of a simulation reads and none writes while the network runs: the
//! nodes' ids and addresses, who is alive, and the indexes from ids and addresses to nodes.
//! It changes only between runs of the shards, when the simulation is serial (a node joins,
//! leaves, or is killed).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;

use blyan_crypto::PeerId;

use crate::distance::{Distance, KEY_BITS, Key};
use crate::node::NodeInfo;

/// A multiply-rotate hash (FxHash's) for the simulator's own maps. Their keys are ids the
/// simulator drew at random, node indices and request counters: nobody chooses them to
/// collide, so SipHash's protection would only cost time here.
#[derive(Default)]
pub(super) struct FastHasher(u64);

impl FastHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl Hasher for FastHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            if let Some(dst) = word.get_mut(..rest.len()) {
                dst.copy_from_slice(rest);
            }
            self.add(u64::from_le_bytes(word));
        }
    }

    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }

    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }

    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }

    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
}

/// A hash map on [`FastHasher`].
pub(super) type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// The read-mostly state of a simulated network. See the module docs.
#[derive(Clone, Default)]
pub(super) struct World {
    /// Every node's id and address, by node index (dead ones too).
    infos: Vec<NodeInfo>,
    /// Whether each node is alive, by node index.
    alive: Vec<bool>,
    /// Every node's key and index (dead ones too), in key order: the true closest nodes
    /// to a key are found among its neighbours here instead of by a scan of all nodes.
    by_key: Vec<(Key, usize)>,
    by_peer: FastMap<PeerId, usize>,
    by_addr: FastMap<SocketAddr, usize>,
    live: usize,
}

impl World {
    /// Nodes ever added.
    pub(super) fn len(&self) -> usize {
        self.infos.len()
    }

    /// Nodes alive.
    pub(super) fn live(&self) -> usize {
        self.live
    }

    /// Node `i`'s id and address.
    pub(super) fn info(&self, i: usize) -> Option<&NodeInfo> {
        self.infos.get(i)
    }

    /// Whether node `i` exists and is alive.
    pub(super) fn is_alive(&self, i: usize) -> bool {
        self.alive.get(i).copied().unwrap_or(false)
    }

    /// The node with id `peer`, or else the one at `addr`.
    pub(super) fn find(&self, peer: Option<PeerId>, addr: Option<&SocketAddr>) -> Option<usize> {
        peer.and_then(|p| self.by_peer.get(&p).copied())
            .or_else(|| addr.and_then(|a| self.by_addr.get(a).copied()))
    }

    /// Adds a live node; it gets the next index, which is returned.
    pub(super) fn add(&mut self, info: NodeInfo) -> usize {
        let i = self.infos.len();
        let key = info.key();
        self.by_peer.insert(info.peer_id(), i);
        self.by_addr.insert(info.primary_addr(), i);
        let at = self.by_key.partition_point(|(k, _)| *k < key);
        self.by_key.insert(at, (key, i));
        self.infos.push(info);
        self.alive.push(true);
        self.live += 1;
        i
    }

    /// Marks node `i` dead; returns whether it was alive.
    pub(super) fn kill(&mut self, i: usize) -> bool {
        match self.alive.get_mut(i) {
            Some(alive) if *alive => {
                *alive = false;
                self.live -= 1;
                true
            }
            _ => false,
        }
    }

    /// The true `k` closest live nodes to `target`, other than node `except`.
    ///
    /// The nodes whose keys share their first `p` bits with `target` form one run of
    /// `by_key`, and each of them is closer to `target` than any node outside the run. So
    /// the answer lies in the run of the largest `p` that holds `k` live nodes other than
    /// `except` (with `p = 0`, every node).
    pub(super) fn truth(&self, target: &Key, k: usize, except: usize) -> Vec<PeerId> {
        if k == 0 {
            return Vec::new();
        }
        let run = |p: usize| {
            let (lo, hi) = prefix_range(target, p);
            let start = self.by_key.partition_point(|(key, _)| *key < lo);
            let end = self.by_key.partition_point(|(key, _)| *key <= hi);
            self.by_key.get(start..end).unwrap_or(&[])
        };
        let wanted = |range: &[(Key, usize)]| {
            range
                .iter()
                .filter(|(_, i)| *i != except && self.is_alive(*i))
                .count()
                >= k
        };
        // The largest p whose run holds k nodes at all (runs shrink as p grows)...
        let (mut lo, mut hi) = (0usize, KEY_BITS);
        while lo < hi {
            let mid = (lo + hi).div_ceil(2);
            if run(mid).len() >= k {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        // ... then shorter prefixes until the run holds k live ones.
        let mut p = lo;
        let mut range = run(p);
        while p > 0 && !wanted(range) {
            p -= 1;
            range = run(p);
        }
        let mut live: Vec<(Distance, PeerId)> = range
            .iter()
            .filter(|(_, i)| *i != except && self.is_alive(*i))
            .filter_map(|(key, i)| {
                let info = self.infos.get(*i)?;
                Some((target.distance(key), info.peer_id()))
            })
            .collect();
        if live.len() > k && k > 0 {
            live.select_nth_unstable_by_key(k - 1, |(d, _)| *d);
            live.truncate(k);
        }
        live.sort_unstable_by_key(|(d, _)| *d);
        live.into_iter().map(|(_, p)| p).collect()
    }

    /// [`truth`](Self::truth) by a scan of every node: the reference the fast one is
    /// tested against.
    #[cfg(test)]
    pub(super) fn truth_by_scan(&self, target: &Key, k: usize, except: usize) -> Vec<PeerId> {
        let mut live: Vec<(Distance, PeerId)> = self
            .infos
            .iter()
            .enumerate()
            .filter(|(i, _)| self.is_alive(*i) && *i != except)
            .map(|(_, n)| (target.distance(&n.key()), n.peer_id()))
            .collect();
        live.sort_unstable_by_key(|(d, _)| *d);
        live.truncate(k);
        live.into_iter().map(|(_, p)| p).collect()
    }
}

/// The least and greatest keys that share their first `p` bits with `key`.
pub(super) fn prefix_range(key: &Key, p: usize) -> (Key, Key) {
    let mut lo = *key.as_bytes();
    let mut hi = lo;
    for (byte, (l, h)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let keep = p.saturating_sub(8 * byte).min(8);
        let mask = if keep == 0 { 0 } else { 0xffu8 << (8 - keep) };
        *l &= mask;
        *h |= !mask;
    }
    (Key::from_bytes(lo), Key::from_bytes(hi))
}
