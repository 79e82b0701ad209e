//! The Kademlia routing table: 256 buckets of at most k verified nodes each.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use blyan_crypto::PeerId;

use crate::distance::{KEY_BITS, Key};
use crate::node::{NodeInfo, Subnet, SubnetCounts};
use crate::time::Timestamp;

/// Settings of a [`RoutingTable`]; `Default` gives the documented values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutingConfig {
    /// Entries per bucket. Kademlia's k = 20: the chance that all 20 nodes of a bucket leave
    /// within an hour is negligible on measured churn (Maymounkov & Mazières).
    pub k: usize,
    /// Nodes kept per bucket as candidates for when an entry dies. 10: enough to refill half
    /// a bucket without a new lookup, small enough that a full table stays under 3,000 nodes.
    pub replacement_cache_size: usize,
    /// Entries from one /24 (IPv6 /48) per bucket. 2, as in the design: one operator cannot
    /// own a bucket, and so cannot own the path towards any key.
    pub max_per_subnet_bucket: usize,
    /// Entries from one /24 (IPv6 /48) in the whole table. 10, as in the design.
    pub max_per_subnet_table: usize,
    /// Consecutive failed requests after which an entry is removed. 3 tolerates a lost
    /// packet or two without keeping a dead node long.
    pub max_failures: u32,
    /// How long the ping of a least-recently-seen entry may take before it counts as dead.
    pub ping_timeout: Duration,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            k: 20,
            replacement_cache_size: 10,
            max_per_subnet_bucket: 2,
            max_per_subnet_table: 10,
            max_failures: 3,
            ping_timeout: Duration::from_secs(10),
        }
    }
}

/// One node in the table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    node: NodeInfo,
    last_seen: Timestamp,
    failures: u32,
}

impl Entry {
    /// The node.
    pub fn node(&self) -> &NodeInfo {
        &self.node
    }

    /// When the node last answered one of our requests.
    pub fn last_seen(&self) -> Timestamp {
        self.last_seen
    }

    /// Requests to the node that failed since it last answered.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// What [`RoutingTable::on_response`] did with a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InsertOutcome {
    /// The node was new and is now in its bucket.
    Inserted,
    /// The node was known; it is now the most recently seen of its bucket.
    Refreshed,
    /// The bucket is full: ping `peer`, its least recently seen entry, and report the result
    /// with [`RoutingTable::on_ping_result`]. The newcomer waits in the replacement cache.
    PingLeastRecentlySeen {
        /// The bucket index.
        bucket: usize,
        /// The entry to ping.
        peer: NodeInfo,
    },
    /// The bucket is full and a ping is already out; the newcomer waits in the replacement
    /// cache.
    Cached,
    /// The node was not taken.
    Rejected(Rejection),
}

/// Why a node was not taken into the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The node has our own id.
    OwnId,
    /// Its bucket already holds `max_per_subnet_bucket` nodes of its subnet.
    SubnetFullInBucket(Subnet),
    /// The table already holds `max_per_subnet_table` nodes of its subnet.
    SubnetFullInTable(Subnet),
}

#[derive(Clone, Debug)]
struct PendingPing {
    peer: PeerId,
    deadline: Timestamp,
}

#[derive(Clone, Debug, Default)]
struct Bucket {
    /// Least recently seen first.
    entries: Vec<Entry>,
    /// Each entry's [`Tag`], in the same order: finding a peer, ordering the bucket by
    /// distance and choosing an answer read these 16 bytes per entry instead of whole
    /// entries (a table mostly sits outside the cache when it is asked).
    tags: Vec<Tag>,
    /// Oldest first; bounded by `replacement_cache_size`.
    replacements: VecDeque<Entry>,
    pending: Option<PendingPing>,
}

impl Bucket {
    fn subnet_count(&self, subnet: Subnet) -> usize {
        self.tags.iter().filter(|t| t.subnet == subnet).count()
    }

    fn position(&self, peer: &PeerId) -> Option<usize> {
        let head = prefix64(peer.as_bytes());
        self.tags
            .iter()
            .enumerate()
            .filter(|(_, t)| t.head == head)
            .map(|(at, _)| at)
            .find(|at| {
                self.entries
                    .get(*at)
                    .is_some_and(|e| e.node.peer_id() == *peer)
            })
    }

    /// Appends `entry` (the most recently seen), growing the storage by at most what a
    /// bucket of `k` can still take, so a full bucket holds no spare room.
    fn push(&mut self, entry: Entry, k: usize) {
        self.insert(self.entries.len(), entry, k);
    }

    /// Inserts `entry` at `at` (clamped to the end), growing as [`push`](Self::push).
    fn insert(&mut self, at: usize, entry: Entry, k: usize) {
        let len = self.entries.len();
        if len == self.entries.capacity() {
            let more = len.max(4).min(k.saturating_sub(len)).max(1);
            self.entries.reserve_exact(more);
            self.tags.reserve_exact(more);
        }
        let at = at.min(len);
        self.tags.insert(at, Tag::of(&entry.node));
        self.entries.insert(at, entry);
    }

    /// Removes and returns entry `pos`; `None` past the end.
    fn remove(&mut self, pos: usize) -> Option<Entry> {
        if pos >= self.entries.len() {
            return None;
        }
        self.tags.remove(pos);
        Some(self.entries.remove(pos))
    }
}

/// What a bucket keeps of each entry beside it, for its scans.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tag {
    /// The first 8 bytes of the id as a big-endian number: XOR-ed with the same of a
    /// target, the first 64 bits of the distance.
    head: u64,
    /// The entry's subnet.
    subnet: Subnet,
}

impl Tag {
    fn of(node: &NodeInfo) -> Self {
        Self {
            head: prefix64(node.peer_id().as_bytes()),
            subnet: node.subnet(),
        }
    }
}

fn prefix64(bytes: &[u8; 32]) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(bytes.get(..8).unwrap_or(&[0; 8]));
    u64::from_be_bytes(word)
}

/// A Kademlia routing table: 256 buckets by shared-prefix length with the local id, each
/// holding at most k nodes that answered one of our own requests.
///
/// Sans-IO: it never sends a ping itself. A full bucket answers a newcomer with
/// [`InsertOutcome::PingLeastRecentlySeen`]; the driver pings and reports back. Old, live
/// nodes are preferred over newcomers (they are likelier to stay, and an attacker cannot
/// flush a bucket by introducing fresh ids).
#[derive(Clone, Debug)]
pub struct RoutingTable {
    local: Key,
    config: RoutingConfig,
    /// Bucket `i` at position `255 - i`, allocated up to the closest bucket ever filled:
    /// in a network of `n` nodes only the top `log2(n)` or so buckets ever hold anyone, so
    /// the other (empty) ones cost nothing.
    buckets: Vec<Bucket>,
    subnet_counts: HashMap<Subnet, usize>,
    len: usize,
    /// Buckets with a ping outstanding, so `poll_timeout` need not scan 256 buckets.
    pending_pings: usize,
    /// Bit `i` set iff bucket `i` has entries: lookups skip empty buckets without touching
    /// them (most of the 256 are empty in any network under 2^250 nodes).
    occupied: [u64; 4],
}

impl RoutingTable {
    /// An empty table around `local`.
    pub fn new(local: PeerId, config: RoutingConfig) -> Self {
        Self {
            local: Key::from(local),
            config,
            buckets: Vec::new(),
            subnet_counts: HashMap::new(),
            len: 0,
            pending_pings: 0,
            occupied: [0; 4],
        }
    }

    /// The local key.
    pub fn local_key(&self) -> Key {
        self.local
    }

    /// The settings.
    pub fn config(&self) -> &RoutingConfig {
        &self.config
    }

    /// Number of entries (replacements not counted).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bucket index `peer` belongs to; `None` for our own id.
    pub fn bucket_index(&self, peer: &PeerId) -> Option<usize> {
        self.local.distance(&Key::from(peer)).bucket_index()
    }

    /// The entries of bucket `index`, least recently seen first (empty past 255).
    pub fn bucket(&self, index: usize) -> &[Entry] {
        self.bucket_at(index)
            .map(|b| b.entries.as_slice())
            .unwrap_or(&[])
    }

    /// Number of nodes waiting in bucket `index`'s replacement cache.
    pub fn replacements_len(&self, index: usize) -> usize {
        self.bucket_at(index).map_or(0, |b| b.replacements.len())
    }

    /// Every entry, bucket by bucket.
    pub fn iter(&self) -> impl Iterator<Item = &Entry> {
        self.buckets.iter().rev().flat_map(|b| b.entries.iter())
    }

    /// The entry for `peer`, if present.
    pub fn get(&self, peer: &PeerId) -> Option<&Entry> {
        let bucket = self.bucket_at(self.bucket_index(peer)?)?;
        bucket.entries.get(bucket.position(peer)?)
    }

    /// `node` answered one of our requests at `now`: insert or refresh it.
    pub fn on_response(&mut self, now: Timestamp, node: NodeInfo) -> InsertOutcome {
        let Some(index) = self.bucket_index(&node.peer_id()) else {
            return InsertOutcome::Rejected(Rejection::OwnId);
        };
        self.expire_ping(index, now);
        let subnet = node.subnet();
        let peer = node.peer_id();
        if let Some(pos) = self.bucket_ref(index).position(&peer) {
            self.refresh(index, pos, now, node);
            return InsertOutcome::Refreshed;
        }
        if let Err(rejection) = self.admissible(index, subnet) {
            return InsertOutcome::Rejected(rejection);
        }
        let k = self.config.k;
        let cache_size = self.config.replacement_cache_size;
        let ping_timeout = self.config.ping_timeout;
        let entry = Entry {
            node,
            last_seen: now,
            failures: 0,
        };
        let Some(bucket) = self.bucket_grow(index) else {
            return InsertOutcome::Rejected(Rejection::OwnId);
        };
        // A node waiting in the replacement cache that now finds room leaves the cache, so
        // a later promotion cannot bring in a second copy of it.
        bucket.replacements.retain(|e| e.node.peer_id() != peer);
        if bucket.entries.len() < k {
            bucket.push(entry, k);
            *self.subnet_counts.entry(subnet).or_insert(0) += 1;
            self.len += 1;
            self.mark(index);
            return InsertOutcome::Inserted;
        }
        if bucket.replacements.capacity() == 0 {
            bucket
                .replacements
                .reserve_exact(cache_size.saturating_add(1));
        }
        bucket.replacements.push_back(entry);
        while bucket.replacements.len() > cache_size {
            bucket.replacements.pop_front();
        }
        if bucket.pending.is_some() {
            return InsertOutcome::Cached;
        }
        let Some(oldest) = bucket.entries.first() else {
            return InsertOutcome::Cached;
        };
        let oldest = oldest.node.clone();
        bucket.pending = Some(PendingPing {
            peer: oldest.peer_id(),
            deadline: now.saturating_add(ping_timeout),
        });
        self.pending_pings += 1;
        InsertOutcome::PingLeastRecentlySeen {
            bucket: index,
            peer: oldest,
        }
    }

    /// The outcome of a ping: an alive entry becomes the most recently seen; a dead one is
    /// removed and the freshest admissible replacement takes its place. A dead result for an
    /// entry that was not pinged for a full bucket counts as one failure.
    pub fn on_ping_result(&mut self, now: Timestamp, peer: &PeerId, alive: bool) {
        let Some(index) = self.bucket_index(peer) else {
            return;
        };
        let Some(bucket) = bucket_in(&mut self.buckets, index) else {
            return;
        };
        let was_pending = bucket.pending.as_ref().is_some_and(|p| p.peer == *peer);
        if was_pending {
            bucket.pending = None;
            self.pending_pings = self.pending_pings.saturating_sub(1);
        }
        let Some(pos) = bucket.position(peer) else {
            return;
        };
        if alive {
            let k = self.config.k;
            if let Some(mut entry) = bucket.remove(pos) {
                entry.last_seen = now;
                entry.failures = 0;
                bucket.push(entry, k);
            }
        } else if was_pending {
            self.remove_at(index, pos);
        } else {
            self.on_failure(peer);
        }
    }

    /// A request to `peer` failed. After `max_failures` consecutive failures the entry is
    /// removed (and a replacement promoted). Returns whether it was removed.
    pub fn on_failure(&mut self, peer: &PeerId) -> bool {
        let Some(index) = self.bucket_index(peer) else {
            return false;
        };
        let max = self.config.max_failures;
        let Some(bucket) = bucket_in(&mut self.buckets, index) else {
            return false;
        };
        let Some(pos) = bucket.position(peer) else {
            bucket.replacements.retain(|e| e.node.peer_id() != *peer);
            return false;
        };
        let Some(entry) = bucket.entries.get_mut(pos) else {
            return false;
        };
        entry.failures = entry.failures.saturating_add(1);
        if entry.failures >= max {
            self.remove_at(index, pos);
            return true;
        }
        false
    }

    /// Removes `peer` (entry or replacement). Returns whether an entry was removed.
    pub fn remove(&mut self, peer: &PeerId) -> bool {
        let Some(index) = self.bucket_index(peer) else {
            return false;
        };
        let Some(bucket) = bucket_in(&mut self.buckets, index) else {
            return false;
        };
        bucket.replacements.retain(|e| e.node.peer_id() != *peer);
        match bucket.position(peer) {
            Some(pos) => {
                self.remove_at(index, pos);
                true
            }
            None => false,
        }
    }

    /// The earliest deadline of an outstanding ping, for the driver's timer.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        if self.pending_pings == 0 {
            return None;
        }
        self.buckets
            .iter()
            .filter_map(|b| b.pending.as_ref().map(|p| p.deadline))
            .min()
    }

    /// Treats every ping whose deadline has passed as failed.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        if self.pending_pings == 0 {
            return;
        }
        for slot in 0..self.buckets.len() {
            self.expire_ping(KEY_BITS - 1 - slot, now);
        }
    }

    /// The `n` entries closest to `target`, closest first, without duplicates.
    pub fn closest_peers(&self, target: &Key, n: usize) -> Vec<NodeInfo> {
        self.sorted_by_distance(target, n)
            .into_iter()
            .cloned()
            .collect()
    }

    /// Like [`closest_peers`](Self::closest_peers), with at most `max_per_subnet_bucket`
    /// nodes per subnet: what we answer a FIND_NODE with, and what seeds a lookup.
    pub fn closest_peers_diverse(&self, target: &Key, n: usize) -> Vec<NodeInfo> {
        let max = self.config.max_per_subnet_bucket;
        let mut counts = SubnetCounts::new();
        // (first 64 bits of the distance, position in the bucket), and the entries chosen.
        let mut group: Vec<(u64, usize)> = Vec::with_capacity(self.config.k);
        let mut chosen: Vec<&Entry> = Vec::with_capacity(n);
        let head = prefix64(target.as_bytes());
        // The table is mostly out of the cache when a request arrives. Three passes, each
        // a loop of independent loads whose misses overlap: the tags of the buckets the
        // answer draws from; the choice, from the tags alone; the chosen entries.
        self.touch_tags(target, n);
        for index in self.buckets_by_distance(target) {
            if chosen.len() == n {
                break;
            }
            let Some(bucket) = self.bucket_at(index) else {
                continue;
            };
            group.clear();
            group.extend(bucket.tags.iter().map(|t| t.head ^ head).zip(0..));
            // By the distance's first 64 bits, and by the whole distance when those tie:
            // the order of the distances themselves.
            group.sort_unstable_by(|(a, i), (b, j)| {
                a.cmp(b).then_with(|| {
                    let d = |at: &usize| {
                        bucket
                            .entries
                            .get(*at)
                            .map(|e| target.distance(&e.node.key()))
                    };
                    d(i).cmp(&d(j))
                })
            });
            for (_, at) in &group {
                if chosen.len() == n {
                    break;
                }
                if let Some(tag) = bucket.tags.get(*at)
                    && counts.admit(tag.subnet, max)
                    && let Some(entry) = bucket.entries.get(*at)
                {
                    chosen.push(entry);
                }
            }
        }
        // An entry spans two cache lines: read a word of each before copying any.
        let touched = chosen.iter().fold(0u64, |acc, e| {
            acc ^ prefix64(e.node.peer_id().as_bytes()) ^ e.last_seen.as_millis()
        });
        std::hint::black_box(touched);
        chosen.into_iter().map(|e| e.node.clone()).collect()
    }

    /// Reads the tags of the buckets an answer of `n` nodes closest to `target` draws
    /// from, in one loop of independent loads (see
    /// [`closest_peers_diverse`](Self::closest_peers_diverse)).
    fn touch_tags(&self, target: &Key, n: usize) {
        let mut planned = 0;
        let mut touched = 0u64;
        for index in self.buckets_by_distance(target) {
            if planned >= n {
                break;
            }
            let Some(bucket) = self.bucket_at(index) else {
                continue;
            };
            touched ^= bucket.tags.iter().fold(0, |acc, t| acc ^ t.head);
            planned += bucket.tags.len();
        }
        std::hint::black_box(touched);
    }

    /// Buckets in increasing distance from `target`: every node of a bucket is closer to
    /// `target` than every node of the buckets after it, so each bucket is sorted alone.
    ///
    /// With `D = d(local, target)` and `b` its bucket: nodes of bucket `b` share the top bit
    /// of `D` and are within `2^b` of `target`; for `i < b`, a node of bucket `i` agrees
    /// with `D` above bit `i` and differs at bit `i`, so among buckets `0..=i` bucket `i`
    /// comes first if bit `i` of `D` is 1 and last if it is 0; nodes of buckets above `b`
    /// are at distances with top bit `i`. Hence: `b`; the `i < b` with bit 1, descending;
    /// the `i < b` with bit 0, ascending; then `b + 1`, `b + 2`, ... For our own key, every
    /// bucket in ascending order.
    fn buckets_by_distance(&self, target: &Key) -> impl Iterator<Item = usize> + use<> {
        let d = self.local.distance(target);
        // Bit i of the 256-bit distance is bit i % 64 of word i / 64.
        let mut dbits = [0u64; 4];
        for (w, word) in dbits.iter_mut().enumerate() {
            let end = 32 - 8 * w;
            let mut bytes = [0u8; 8];
            if let Some(src) = d.as_bytes().get(end - 8..end) {
                bytes.copy_from_slice(src);
            }
            *word = u64::from_be_bytes(bytes);
        }
        let first = d.bucket_index();
        let below = mask_below(first.unwrap_or(0));
        let above = match first {
            Some(b) => not(mask_below(b + 1)),
            None => [u64::MAX; 4],
        };
        let occupied = self.occupied;
        let ones = and(and(occupied, dbits), below);
        let zeros = and(and(occupied, not(dbits)), below);
        let tail = and(occupied, above);
        first
            .filter(|b| self.is_occupied(*b))
            .into_iter()
            .chain(BitIter::new(ones, true))
            .chain(BitIter::new(zeros, false))
            .chain(BitIter::new(tail, false))
    }

    fn sorted_by_distance(&self, target: &Key, n: usize) -> Vec<&NodeInfo> {
        let mut all: Vec<_> = self
            .iter()
            .map(|e| (target.distance(&e.node.key()), &e.node))
            .collect();
        if n == 0 {
            return Vec::new();
        }
        if all.len() > n {
            all.select_nth_unstable_by(n - 1, |a, b| a.0.cmp(&b.0));
            all.truncate(n);
        }
        all.sort_unstable_by_key(|(distance, _)| *distance);
        all.into_iter().map(|(_, node)| node).collect()
    }

    /// Bucket `index`, if it was ever allocated.
    fn bucket_at(&self, index: usize) -> Option<&Bucket> {
        self.buckets.get((KEY_BITS - 1).checked_sub(index)?)
    }

    /// Bucket `index` to change, allocating it (and the empty ones above it) if needed.
    fn bucket_grow(&mut self, index: usize) -> Option<&mut Bucket> {
        let slot = (KEY_BITS - 1).checked_sub(index)?;
        if self.buckets.len() <= slot {
            self.buckets.resize_with(slot + 1, Bucket::default);
        }
        self.buckets.get_mut(slot)
    }

    fn bucket_ref(&self, index: usize) -> &Bucket {
        static EMPTY: Bucket = Bucket {
            entries: Vec::new(),
            tags: Vec::new(),
            replacements: VecDeque::new(),
            pending: None,
        };
        self.bucket_at(index).unwrap_or(&EMPTY)
    }

    fn admissible(&self, index: usize, subnet: Subnet) -> Result<(), Rejection> {
        if self.bucket_ref(index).subnet_count(subnet) >= self.config.max_per_subnet_bucket {
            return Err(Rejection::SubnetFullInBucket(subnet));
        }
        if self.subnet_counts.get(&subnet).copied().unwrap_or(0) >= self.config.max_per_subnet_table
        {
            return Err(Rejection::SubnetFullInTable(subnet));
        }
        Ok(())
    }

    fn refresh(&mut self, index: usize, pos: usize, now: Timestamp, node: NodeInfo) {
        let Some(bucket) = bucket_in(&mut self.buckets, index) else {
            return;
        };
        if bucket
            .pending
            .as_ref()
            .is_some_and(|p| p.peer == node.peer_id())
        {
            bucket.pending = None;
            self.pending_pings = self.pending_pings.saturating_sub(1);
        }
        let Some(mut entry) = bucket.remove(pos) else {
            return;
        };
        entry.last_seen = now;
        entry.failures = 0;
        let (old, new) = (entry.node.subnet(), node.subnet());
        // Moving to another subnet must pass the limits, counted without the node itself.
        let moves = old != new && {
            bucket
                .entries
                .iter()
                .filter(|e| e.node.subnet() == new)
                .count()
                < self.config.max_per_subnet_bucket
                && self.subnet_counts.get(&new).copied().unwrap_or(0)
                    < self.config.max_per_subnet_table
        };
        if old == new {
            entry.node = node;
        } else if moves {
            self.decrement(old);
            *self.subnet_counts.entry(new).or_insert(0) += 1;
            entry.node = node;
        }
        let k = self.config.k;
        if let Some(bucket) = bucket_in(&mut self.buckets, index) {
            bucket.push(entry, k);
        }
    }

    fn expire_ping(&mut self, index: usize, now: Timestamp) {
        let Some(bucket) = self.bucket_at(index) else {
            return;
        };
        if let Some(p) = &bucket.pending
            && p.deadline <= now
        {
            let peer = p.peer;
            self.on_ping_result(now, &peer, false);
        }
    }

    fn decrement(&mut self, subnet: Subnet) {
        if let Some(count) = self.subnet_counts.get_mut(&subnet) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.subnet_counts.remove(&subnet);
            }
        }
    }

    /// Removes entry `pos` of bucket `index` and promotes the freshest admissible replacement.
    fn remove_at(&mut self, index: usize, pos: usize) {
        let Some(bucket) = bucket_in(&mut self.buckets, index) else {
            return;
        };
        let Some(removed) = bucket.remove(pos) else {
            return;
        };
        if bucket
            .pending
            .as_ref()
            .is_some_and(|p| p.peer == removed.node.peer_id())
        {
            bucket.pending = None;
            self.pending_pings = self.pending_pings.saturating_sub(1);
        }
        self.len -= 1;
        self.decrement(removed.node.subnet());
        let candidate = self
            .bucket_ref(index)
            .replacements
            .iter()
            .rposition(|e| self.admissible(index, e.node.subnet()).is_ok());
        let Some(bucket) = bucket_in(&mut self.buckets, index) else {
            return;
        };
        if let Some(entry) = candidate.and_then(|c| bucket.replacements.remove(c)) {
            let at = bucket
                .entries
                .partition_point(|e| e.last_seen <= entry.last_seen);
            *self.subnet_counts.entry(entry.node.subnet()).or_insert(0) += 1;
            bucket.insert(at, entry, self.config.k);
            self.len += 1;
        }
        self.mark(index);
    }

    /// Brings bucket `index`'s bit in `occupied` up to date.
    fn mark(&mut self, index: usize) {
        let filled = self.bucket_at(index).is_some_and(|b| !b.entries.is_empty());
        if let Some(word) = self.occupied.get_mut(index / 64) {
            let bit = 1u64 << (index % 64);
            if filled {
                *word |= bit;
            } else {
                *word &= !bit;
            }
        }
    }

    /// Indices of the buckets that hold entries, ascending.
    pub(crate) fn occupied_buckets(&self) -> impl Iterator<Item = usize> + use<> {
        BitIter::new(self.occupied, false)
    }

    fn is_occupied(&self, index: usize) -> bool {
        self.occupied
            .get(index / 64)
            .is_some_and(|w| w & (1u64 << (index % 64)) != 0)
    }
}

/// Bucket `index` of `buckets` (stored from bucket 255 down) to change, if it was ever
/// allocated. A free function so that other fields of the table stay borrowable.
fn bucket_in(buckets: &mut [Bucket], index: usize) -> Option<&mut Bucket> {
    buckets.get_mut((KEY_BITS - 1).checked_sub(index)?)
}

/// Bits `0..n` of a 256-bit set.
fn mask_below(n: usize) -> [u64; 4] {
    let mut out = [0u64; 4];
    for (w, word) in out.iter_mut().enumerate() {
        let lo = 64 * w;
        *word = if n >= lo + 64 {
            u64::MAX
        } else if n <= lo {
            0
        } else {
            (1u64 << (n - lo)) - 1
        };
    }
    out
}

fn and(a: [u64; 4], b: [u64; 4]) -> [u64; 4] {
    [a[0] & b[0], a[1] & b[1], a[2] & b[2], a[3] & b[3]]
}

fn not(a: [u64; 4]) -> [u64; 4] {
    [!a[0], !a[1], !a[2], !a[3]]
}

/// The set bits of a 256-bit set, ascending or descending.
struct BitIter {
    words: [u64; 4],
    descending: bool,
}

impl BitIter {
    fn new(words: [u64; 4], descending: bool) -> Self {
        Self { words, descending }
    }
}

impl Iterator for BitIter {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.descending {
            for w in (0..4).rev() {
                let word = self.words.get_mut(w)?;
                if *word != 0 {
                    let bit = 63 - word.leading_zeros() as usize;
                    *word &= !(1u64 << bit);
                    return Some(64 * w + bit);
                }
            }
        } else {
            for w in 0..4 {
                let word = self.words.get_mut(w)?;
                if *word != 0 {
                    let bit = word.trailing_zeros() as usize;
                    *word &= *word - 1;
                    return Some(64 * w + bit);
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::SocketAddr;

    /// An id whose first 8 bytes are one of four values: ids tie on their tags all the time.
    fn tied_peer(head: u8, tail: [u8; 24]) -> PeerId {
        let mut bytes = [0u8; 32];
        bytes[0] = 0x80 | (head & 3);
        if let Some(rest) = bytes.get_mut(8..) {
            rest.copy_from_slice(&tail);
        }
        PeerId::from_bytes(bytes)
    }

    proptest! {
        #[test]
        fn tags_follow_entries_and_ties_keep_the_distance_order(
            ids in proptest::collection::vec((0u8..4, any::<[u8; 24]>(), any::<u8>(), any::<bool>()), 1..120),
            target in any::<[u8; 32]>(),
        ) {
            let config = RoutingConfig { max_per_subnet_table: 1000, ..RoutingConfig::default() };
            let mut table = RoutingTable::new(PeerId::from_bytes([0; 32]), config);
            let mut now = Timestamp::ZERO;
            for (head, tail, subnet, fail) in ids {
                now = now.saturating_add(Duration::from_millis(3));
                let peer = tied_peer(head, tail);
                let addr = SocketAddr::from(([10, subnet, tail[0], 1], 1));
                if let Ok(node) = NodeInfo::new(peer, [addr]) {
                    table.on_response(now, node);
                }
                if fail {
                    table.on_failure(&peer);
                    table.on_failure(&peer);
                    table.on_failure(&peer);
                    prop_assert!(table.get(&peer).is_none());
                }
            }
            for bucket in &table.buckets {
                let expected: Vec<Tag> = bucket.entries.iter().map(|e| Tag::of(&e.node)).collect();
                prop_assert_eq!(&bucket.tags, &expected);
            }
            for entry in table.iter() {
                prop_assert_eq!(table.get(&entry.node.peer_id()), Some(entry));
            }
            let target = Key::from_bytes(target);
            let mut everyone: Vec<NodeInfo> = table.iter().map(|e| e.node.clone()).collect();
            everyone.sort_by_key(|node| target.distance(&node.key()));
            for n in [1, 20, 30, 200] {
                let brute = crate::node::take_diverse(&everyone, n, 2);
                prop_assert_eq!(table.closest_peers_diverse(&target, n), brute);
            }
        }
    }
}
