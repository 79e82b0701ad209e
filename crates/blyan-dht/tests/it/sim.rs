//! A seeded in-memory network: every node runs the real `RoutingTable`, lookups run the real
//! `Lookup`, and FIND_NODE is a function call with a simulated latency.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::net::SocketAddr;

use blyan_crypto::PeerId;
use blyan_dht::{
    InsertOutcome, Key, Lookup, LookupAction, LookupConfig, LookupResult, NodeInfo, RoutingConfig,
    RoutingTable, Timestamp,
};

/// SplitMix64: small, seeded, reproducible.
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub(crate) fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

pub(crate) struct SimNode {
    pub(crate) info: NodeInfo,
    pub(crate) table: RoutingTable,
    pub(crate) alive: bool,
}

pub(crate) struct Network {
    pub(crate) nodes: Vec<SimNode>,
    pub(crate) index: HashMap<PeerId, usize>,
}

/// Figures of one simulated lookup.
pub(crate) struct Run {
    pub(crate) result: LookupResult,
    /// FIND_NODE requests sent.
    pub(crate) rpcs: u32,
    /// Sequential request depth at which the closest result was first learned.
    pub(crate) hops: u32,
    /// Simulated milliseconds from start to done.
    pub(crate) elapsed_ms: u64,
}

impl Network {
    /// `n` nodes with random ids, each in its own /24, joined one after the other through a
    /// random earlier node (a lookup of its own id), then one lookup of a random key each.
    pub(crate) fn bootstrap(n: usize, seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let mut nodes = Vec::with_capacity(n);
        let mut index = HashMap::new();
        for i in 0..n {
            let id = PeerId::from_bytes(rng.bytes32());
            let ip = [10, (i >> 8) as u8, (i & 0xff) as u8, 1];
            let info = NodeInfo::new(id, [SocketAddr::from((ip, 4000))]).unwrap();
            index.insert(id, i);
            nodes.push(SimNode {
                info,
                table: RoutingTable::new(id, RoutingConfig::default()),
                alive: true,
            });
        }
        let mut net = Network { nodes, index };
        for i in 1..n {
            let seed_node = rng.below(i);
            let target = net.nodes[i].info.key();
            let seeds = vec![net.nodes[seed_node].info.clone()];
            net.lookup_instant(i, target, seeds);
        }
        for i in 0..n {
            let target = Key::from_bytes(rng.bytes32());
            let seeds = net.nodes[i].table.closest_peers(&target, 20);
            net.lookup_instant(i, target, seeds);
        }
        net
    }

    fn lookup_instant(&mut self, from: usize, target: Key, seeds: Vec<NodeInfo>) {
        let local = self.nodes[from].info.peer_id();
        let mut lookup = Lookup::new(target, local, seeds, LookupConfig::default());
        let now = Timestamp::ZERO;
        for _ in 0..100_000 {
            match lookup.poll(now) {
                LookupAction::SendFindNode { peer, .. } => {
                    match self.answer(from, &peer, &target, true) {
                        Some(closer) => {
                            let info = self.nodes[self.index[&peer]].info.clone();
                            self.learn(from, info);
                            lookup.on_response(now, &peer, closer);
                        }
                        None => lookup.on_failure(&peer),
                    }
                }
                LookupAction::Wait { .. } => panic!("an instant lookup never waits"),
                LookupAction::Done(_) => return,
            }
        }
        panic!("bootstrap lookup did not terminate");
    }

    /// `to` answers FIND_NODE(target) from `from`; `None` if dead. With `learn`, `to` pings
    /// the querier back and so may add it.
    fn answer(
        &mut self,
        from: usize,
        to: &PeerId,
        target: &Key,
        learn: bool,
    ) -> Option<Vec<NodeInfo>> {
        let j = *self.index.get(to)?;
        if !self.nodes[j].alive {
            return None;
        }
        if learn {
            let querier = self.nodes[from].info.clone();
            self.learn(j, querier);
        }
        Some(self.nodes[j].table.closest_peers_diverse(target, 20))
    }

    /// Node `at` heard `node` answer; a full bucket pings its oldest entry at once.
    fn learn(&mut self, at: usize, node: NodeInfo) {
        let now = Timestamp::ZERO;
        if let InsertOutcome::PingLeastRecentlySeen { peer, .. } =
            self.nodes[at].table.on_response(now, node)
        {
            let alive = self
                .index
                .get(&peer.peer_id())
                .is_some_and(|i| self.nodes[*i].alive);
            self.nodes[at]
                .table
                .on_ping_result(now, &peer.peer_id(), alive);
        }
    }

    /// A lookup from node `from` with latencies of 10-99 ms per answer; dead nodes never
    /// answer. Tables do not change. Panics if the lookup stalls or never ends.
    pub(crate) fn lookup(&mut self, from: usize, target: Key, rng: &mut Rng) -> Run {
        let local = self.nodes[from].info.peer_id();
        let seeds = self.nodes[from].table.closest_peers_diverse(&target, 20);
        let mut hop: HashMap<PeerId, u32> = seeds.iter().map(|s| (s.peer_id(), 1)).collect();
        let mut lookup = Lookup::new(target, local, seeds, LookupConfig::default());
        let mut now = Timestamp::ZERO;
        let mut queue: BinaryHeap<Reverse<(u64, u64, PeerId)>> = BinaryHeap::new();
        let mut answers: HashMap<PeerId, Vec<NodeInfo>> = HashMap::new();
        let mut seq = 0;
        let mut rpcs = 0;
        for _ in 0..100_000 {
            match lookup.poll(now) {
                LookupAction::SendFindNode { peer, .. } => {
                    rpcs += 1;
                    if let Some(closer) = self.answer(from, &peer, &target, false) {
                        let at = now.as_millis() + 10 + rng.below(90) as u64;
                        seq += 1;
                        queue.push(Reverse((at, seq, peer)));
                        answers.insert(peer, closer);
                    }
                }
                LookupAction::Wait { until } => {
                    let next_answer = queue.peek().map(|Reverse((t, _, _))| *t);
                    let next = match (next_answer, until.map(Timestamp::as_millis)) {
                        (Some(a), Some(u)) => a.min(u),
                        (a, u) => a
                            .or(u)
                            .expect("a waiting lookup has a deadline or an answer due"),
                    };
                    now = Timestamp::from_millis(next.max(now.as_millis()));
                    while let Some(Reverse((t, _, peer))) = queue.peek().copied() {
                        if t > now.as_millis() {
                            break;
                        }
                        queue.pop();
                        let closer = answers.remove(&peer).unwrap_or_default();
                        let h = hop.get(&peer).copied().unwrap_or(1);
                        for node in &closer {
                            hop.entry(node.peer_id()).or_insert(h + 1);
                        }
                        lookup.on_response(now, &peer, closer);
                    }
                }
                LookupAction::Done(result) => {
                    let hops = result
                        .closest
                        .first()
                        .and_then(|n| hop.get(&n.peer_id()).copied())
                        .unwrap_or(0);
                    return Run {
                        result,
                        rpcs,
                        hops,
                        elapsed_ms: now.as_millis(),
                    };
                }
            }
        }
        panic!("lookup did not terminate");
    }

    /// The true `n` closest live nodes to `target`, other than `from`.
    pub(crate) fn truth(&self, from: usize, target: &Key, n: usize) -> Vec<PeerId> {
        let mut live: Vec<_> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, node)| *i != from && node.alive)
            .map(|(_, node)| node.info.peer_id())
            .collect();
        live.sort_by_key(|id| target.distance(&Key::from(id)));
        live.truncate(n);
        live
    }
}
