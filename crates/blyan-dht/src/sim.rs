//! A discrete-event simulator that runs many [`DhtCore`]s on one virtual clock.
//!
//! Events sit on an agenda by due millisecond (a timing wheel), equal times in the order
//! they were scheduled, so a seed replays exactly. Requests and answers are
//! function calls between cores with a sampled one-way latency each way and a chance of
//! being lost; a dead node never answers, so its requests end at the core's timeouts. Every
//! node gets its own /24 (`10.a.b.1`), so the IP-diversity limits never bind here.
//!
//! **Rounds.** A lookup's rounds are the length of its longest chain of causally dependent
//! requests: a request to a node the querier knew before the lookup (its seeds) is round 1,
//! and a request to a node first learned from an answer to a round-`r` request is round
//! `r + 1`. This counts the network round trips on the lookup's critical path whatever its
//! concurrency.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::SocketAddr;
use std::time::Duration;

use blyan_crypto::PeerId;

use crate::agenda::Agenda;
use crate::dht_core::{Action, DhtConfig, DhtCore, QueryId, QueryResult, QueryStats, RpcId, Seed};
use crate::distance::Key;
use crate::node::NodeInfo;
pub use crate::rng::SplitMix64;
use crate::rpc::{DhtRequest, Reply, Response};
use crate::time::Timestamp;

/// One-way message latency.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Uniform between `min` and `max`.
    Uniform {
        /// Shortest.
        min: Duration,
        /// Longest.
        max: Duration,
    },
    /// `base` plus an exponential tail of mean `mean_extra` (capped at 20 × the mean): most
    /// messages are quick, a few are very slow, as on the internet.
    Exponential {
        /// The least latency.
        base: Duration,
        /// Mean of the added tail.
        mean_extra: Duration,
    },
}

/// Nodes leaving and joining over time (Poisson processes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Churn {
    /// Live nodes that leave per simulated second (silently: they just stop answering).
    pub leaves_per_sec: f64,
    /// New nodes that join per simulated second (through a random live node).
    pub joins_per_sec: f64,
}

/// Settings of a [`Simulation`].
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The RNG seed: same seed, same run.
    pub seed: u64,
    /// Every node's DHT settings.
    pub dht: DhtConfig,
    /// One-way latency of every message.
    pub latency: Latency,
    /// Probability that a message (request or answer) is lost.
    pub loss: f64,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            dht: DhtConfig::default(),
            latency: Latency::Uniform {
                min: Duration::from_millis(10),
                max: Duration::from_millis(100),
            },
            loss: 0.0,
        }
    }
}

/// The measured figures of one lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupSample {
    /// Longest chain of causally dependent requests (see the module docs).
    pub rounds: u32,
    /// Requests sent.
    pub rpcs: u32,
    /// Whether the result is exactly the true k closest live nodes (by brute force).
    pub exact: bool,
    /// How many of the true k closest live nodes the result holds.
    pub found: u32,
    /// Simulated time from start to result.
    pub latency: Duration,
}

/// Figures of a batch of lookups.
#[derive(Clone, Debug, Default)]
pub struct LookupReport {
    /// One sample per lookup, in completion order.
    pub samples: Vec<LookupSample>,
}

impl LookupReport {
    /// Share of lookups that found the true k closest, in `[0, 1]`.
    pub fn success_rate(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let exact = self.samples.iter().filter(|s| s.exact).count();
        exact as f64 / self.samples.len() as f64
    }

    /// Mean number of the true k closest found per lookup.
    pub fn mean_found(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let total: u64 = self.samples.iter().map(|s| u64::from(s.found)).sum();
        total as f64 / self.samples.len() as f64
    }

    /// The `q`-quantile (0.5 = median) of rounds.
    pub fn rounds_quantile(&self, q: f64) -> u32 {
        quantile(self.samples.iter().map(|s| s.rounds).collect(), q)
    }

    /// The `q`-quantile of requests per lookup.
    pub fn rpcs_quantile(&self, q: f64) -> u32 {
        quantile(self.samples.iter().map(|s| s.rpcs).collect(), q)
    }

    /// Mean requests per lookup.
    pub fn mean_rpcs(&self) -> f64 {
        if self.samples.is_empty() {
            return 0.0;
        }
        let total: u64 = self.samples.iter().map(|s| u64::from(s.rpcs)).sum();
        total as f64 / self.samples.len() as f64
    }

    /// The `q`-quantile of lookup latency.
    pub fn latency_quantile(&self, q: f64) -> Duration {
        let ms = self
            .samples
            .iter()
            .map(|s| u32::try_from(s.latency.as_millis()).unwrap_or(u32::MAX))
            .collect();
        Duration::from_millis(u64::from(quantile(ms, q)))
    }
}

/// The least and greatest keys that share their first `p` bits with `key`.
fn prefix_range(key: &Key, p: usize) -> (Key, Key) {
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

fn quantile(mut values: Vec<u32>, q: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let last = values.len() - 1;
    let at = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
    values.get(at.min(last)).copied().unwrap_or(0)
}

struct SimNode {
    core: DhtCore,
    info: NodeInfo,
    alive: bool,
    wake: Option<Timestamp>,
}

enum Event {
    Request {
        from: usize,
        to: usize,
        rpc: RpcId,
        request: DhtRequest,
    },
    Answer {
        to: usize,
        rpc: RpcId,
        response: Response,
    },
    Wake(usize),
    Leave,
    Join,
}

/// A multiply-rotate hash (FxHash's) for the simulator's own maps. Their keys are ids the
/// simulator drew at random, node indices and request counters: nobody chooses them to
/// collide, so SipHash's protection would only cost time here.
#[derive(Default)]
struct FastHasher(u64);

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

type FastMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;

/// What is known of a measured lookup while it runs.
struct Trace {
    target: Key,
    started: Timestamp,
    rpcs: u32,
    rounds: u32,
    depth: FastMap<PeerId, u32>,
}

/// A network of [`DhtCore`]s on one virtual clock. See the module docs.
pub struct Simulation {
    config: SimConfig,
    rng: SplitMix64,
    now: Timestamp,
    nodes: Vec<SimNode>,
    /// Every node's key and index (dead ones too), in key order: the true closest nodes
    /// to a key are found among its neighbours here instead of by a scan of all nodes.
    by_key: Vec<(Key, usize)>,
    by_peer: FastMap<PeerId, usize>,
    by_addr: FastMap<SocketAddr, usize>,
    live: usize,
    /// Scheduled events by due millisecond, as their slots in `payloads` (small, so the
    /// agenda's queues stay small).
    events: Agenda<u32>,
    /// Scheduled events by slot; `free` lists the empty slots for reuse.
    payloads: Vec<Option<Event>>,
    free: Vec<u32>,
    rpcs: u64,
    churn: Option<Churn>,
    traces: FastMap<(usize, QueryId), Trace>,
    rpc_rounds: FastMap<(usize, RpcId), (QueryId, u32)>,
    finished: Vec<(usize, QueryId, QueryResult, QueryStats)>,
    report: LookupReport,
}

impl Simulation {
    /// An empty network.
    pub fn new(config: SimConfig) -> Self {
        Self {
            rng: SplitMix64::new(config.seed),
            config,
            now: Timestamp::ZERO,
            nodes: Vec::new(),
            by_key: Vec::new(),
            by_peer: FastMap::default(),
            by_addr: FastMap::default(),
            live: 0,
            events: Agenda::new(),
            payloads: Vec::new(),
            free: Vec::new(),
            rpcs: 0,
            churn: None,
            traces: FastMap::default(),
            rpc_rounds: FastMap::default(),
            finished: Vec::new(),
            report: LookupReport::default(),
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Nodes ever added (dead ones included).
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Whether no node was added.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Nodes alive.
    pub fn live(&self) -> usize {
        self.live
    }

    /// Whether node `i` is alive.
    pub fn is_alive(&self, i: usize) -> bool {
        self.nodes.get(i).is_some_and(|n| n.alive)
    }

    /// Node `i`'s core.
    pub fn core(&self, i: usize) -> Option<&DhtCore> {
        self.nodes.get(i).map(|n| &n.core)
    }

    /// Node `i`'s id and address.
    pub fn info(&self, i: usize) -> Option<&NodeInfo> {
        self.nodes.get(i).map(|n| &n.info)
    }

    /// Requests delivered or lost so far.
    pub fn rpcs(&self) -> u64 {
        self.rpcs
    }

    /// Starts (or with `None` stops) churn.
    pub fn set_churn(&mut self, churn: Option<Churn>) {
        self.churn = churn;
        if let Some(c) = churn {
            if c.leaves_per_sec > 0.0 {
                let at = self.exp_delay(c.leaves_per_sec);
                self.schedule(at, Event::Leave);
            }
            if c.joins_per_sec > 0.0 {
                let at = self.exp_delay(c.joins_per_sec);
                self.schedule(at, Event::Join);
            }
        }
    }

    /// Adds a node with a random id. It bootstraps through a random live node (the first
    /// node has nobody to join). Returns its index.
    pub fn add_node(&mut self) -> usize {
        let i = self.nodes.len();
        let id = PeerId::from_bytes(self.rng.bytes32());
        let addr = Self::subnet_addr(i);
        let info = match NodeInfo::new(id, [addr]) {
            Ok(info) => info,
            Err(_) => return i,
        };
        let seed = self.rng.next_u64();
        let core = DhtCore::new(id, self.config.dht.clone(), seed);
        let bootstrap = self.random_live();
        self.by_peer.insert(id, i);
        self.by_addr.insert(addr, i);
        let key = Key::from(id);
        let at = self.by_key.partition_point(|(k, _)| *k < key);
        self.by_key.insert(at, (key, i));
        self.nodes.push(SimNode {
            core,
            info,
            alive: true,
            wake: None,
        });
        self.live += 1;
        if let Some(j) = bootstrap {
            let seed = Seed {
                addr: self.nodes.get(j).map_or(addr, |n| n.info.primary_addr()),
                peer: None,
            };
            let now = self.now;
            if let Some(node) = self.nodes.get_mut(i) {
                let _ = node.core.bootstrap(now, [seed]);
            }
        }
        self.process(i);
        i
    }

    /// Node `i`'s address, in a /24 of its own: `a.b.c.1` with `b.c` from the low 16 bits
    /// of the index and `a = 10 + ` the bits above (up to 4 million nodes).
    fn subnet_addr(i: usize) -> SocketAddr {
        let first = 10u8.wrapping_add(u8::try_from((i >> 16) & 0x3f).unwrap_or(0));
        let second = u8::try_from((i >> 8) & 0xff).unwrap_or(0);
        let third = u8::try_from(i & 0xff).unwrap_or(0);
        SocketAddr::from(([first, second, third, 1], 4000))
    }

    /// Adds `n` nodes, one every `gap`, running the network in between.
    pub fn grow(&mut self, n: usize, gap: Duration) {
        for _ in 0..n {
            self.add_node();
            let until = self.now.saturating_add(gap);
            self.run_until(until);
        }
    }

    /// Kills node `i`: it stays in other nodes' tables but never answers again.
    pub fn kill(&mut self, i: usize) {
        if let Some(node) = self.nodes.get_mut(i)
            && node.alive
        {
            node.alive = false;
            self.live -= 1;
        }
    }

    /// Kills `fraction` of the live nodes, chosen at random.
    pub fn kill_fraction(&mut self, fraction: f64) {
        let target = (self.live as f64 * fraction).round() as usize;
        let mut killed = 0;
        while killed < target && self.live > 1 {
            if let Some(i) = self.random_live() {
                self.kill(i);
                killed += 1;
            }
        }
    }

    /// Runs every event up to `until`, then sets the clock to it.
    pub fn run_until(&mut self, until: Timestamp) {
        while let Some((at, slot)) = self.events.pop_until(until.as_millis()) {
            self.now = self.now.max(Timestamp::from_millis(at));
            let event = self.payloads.get_mut(slot as usize).and_then(Option::take);
            self.free.push(slot);
            if let Some(event) = event {
                self.dispatch(event);
            }
        }
        self.now = self.now.max(until);
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now.saturating_add(d);
        self.run_until(until);
    }

    /// Starts a measured FIND_NODE lookup of `target` from node `from`.
    pub fn start_lookup(&mut self, from: usize, target: Key) -> Option<QueryId> {
        let now = self.now;
        let node = self.nodes.get_mut(from)?;
        if !node.alive {
            return None;
        }
        let id = node.core.find_node(now, target).ok()?;
        self.traces.insert(
            (from, id),
            Trace {
                target,
                started: now,
                rpcs: 0,
                rounds: 0,
                // A lookup hears of several hundred nodes; room for them from the start.
                depth: FastMap::with_capacity_and_hasher(1024, Default::default()),
            },
        );
        self.process(from);
        Some(id)
    }

    /// Runs `count` measured lookups of random keys from random live nodes, one started
    /// every `spacing`, and waits for all of them. Returns their figures.
    pub fn measure_lookups(&mut self, count: usize, spacing: Duration) -> LookupReport {
        self.report = LookupReport::default();
        let mut started = 0;
        for _ in 0..count {
            if let Some(from) = self.random_live() {
                let target = Key::from_bytes(self.rng.bytes32());
                if self.start_lookup(from, target).is_some() {
                    started += 1;
                }
            }
            self.run_for(spacing);
        }
        // Lookups whose node left (churn) never end; stop waiting for them.
        let deadline = self.now.saturating_add(Duration::from_secs(600));
        while self.now < deadline && self.traces.keys().any(|(node, _)| self.is_alive(*node)) {
            self.run_for(Duration::from_millis(100));
        }
        self.traces.clear();
        self.rpc_rounds.clear();
        let _ = started;
        std::mem::take(&mut self.report)
    }

    /// Starts an unmeasured FIND_NODE from node `from`; its result is kept for
    /// [`take_result`](Self::take_result).
    pub fn find_node(&mut self, from: usize, target: Key) -> Option<QueryId> {
        let now = self.now;
        let id = self.nodes.get_mut(from)?.core.find_node(now, target).ok()?;
        self.process(from);
        Some(id)
    }

    /// Starts a PUT from node `from`.
    pub fn put(&mut self, from: usize, key: Key, value: Vec<u8>, ttl: Duration) -> Option<QueryId> {
        let now = self.now;
        let id = self
            .nodes
            .get_mut(from)?
            .core
            .put(now, key, value, ttl)
            .ok()?;
        self.process(from);
        Some(id)
    }

    /// Stops node `node` from republishing its value under `key`.
    pub fn unpublish(&mut self, node: usize, key: &Key) -> bool {
        self.nodes
            .get_mut(node)
            .is_some_and(|n| n.core.unpublish(key))
    }

    /// Starts a GET from node `from`.
    pub fn get(&mut self, from: usize, key: Key) -> Option<QueryId> {
        let now = self.now;
        let id = self.nodes.get_mut(from)?.core.get(now, key).ok()?;
        self.process(from);
        Some(id)
    }

    /// Takes the result of query `id` of node `node`, if it finished.
    pub fn take_result(&mut self, node: usize, id: QueryId) -> Option<QueryResult> {
        self.take_outcome(node, id).map(|(result, _)| result)
    }

    /// Takes the result and cost of query `id` of node `node`, if it finished.
    pub fn take_outcome(&mut self, node: usize, id: QueryId) -> Option<(QueryResult, QueryStats)> {
        let at = self
            .finished
            .iter()
            .position(|(n, q, _, _)| *n == node && *q == id)?;
        let (_, _, result, stats) = self.finished.swap_remove(at);
        Some((result, stats))
    }

    /// The true `k` closest live nodes to `target`, other than node `except`.
    ///
    /// The nodes whose keys share their first `p` bits with `target` form one run of
    /// `by_key`, and each of them is closer to `target` than any node outside the run. So
    /// the answer lies in the run of the largest `p` that holds `k` live nodes other than
    /// `except` (with `p = 0`, every node).
    pub fn truth(&self, target: &Key, k: usize, except: usize) -> Vec<PeerId> {
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
        let (mut lo, mut hi) = (0usize, crate::distance::KEY_BITS);
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
        let mut live: Vec<(crate::distance::Distance, PeerId)> = range
            .iter()
            .filter(|(_, i)| *i != except && self.is_alive(*i))
            .filter_map(|(key, i)| {
                let info = &self.nodes.get(*i)?.info;
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
    fn truth_by_scan(&self, target: &Key, k: usize, except: usize) -> Vec<PeerId> {
        let mut live: Vec<(crate::distance::Distance, PeerId)> = self
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| n.alive && *i != except)
            .map(|(_, n)| (target.distance(&n.info.key()), n.info.peer_id()))
            .collect();
        live.sort_unstable_by_key(|(d, _)| *d);
        live.truncate(k);
        live.into_iter().map(|(_, p)| p).collect()
    }

    fn random_live(&mut self) -> Option<usize> {
        if self.live == 0 {
            return None;
        }
        loop {
            let i = usize::try_from(self.rng.below(self.nodes.len() as u64)).unwrap_or(0);
            if self.nodes.get(i).is_some_and(|n| n.alive) {
                return Some(i);
            }
        }
    }

    fn exp_delay(&mut self, rate_per_sec: f64) -> Timestamp {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let secs = -(1.0 - u).ln() / rate_per_sec;
        self.now
            .saturating_add(Duration::from_secs_f64(secs.min(1e6)))
    }

    fn latency(&mut self) -> Duration {
        match self.config.latency {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, max } => {
                let span = max.saturating_sub(min).as_micros() as u64;
                min + Duration::from_micros(self.rng.below(span + 1))
            }
            Latency::Exponential { base, mean_extra } => {
                let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                let extra = (-(1.0 - u).ln()).min(20.0) * mean_extra.as_secs_f64();
                base + Duration::from_secs_f64(extra)
            }
        }
    }

    fn lost(&mut self) -> bool {
        self.config.loss > 0.0
            && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < self.config.loss
    }

    fn schedule(&mut self, at: Timestamp, event: Event) {
        let slot = match self.free.pop() {
            Some(slot) => {
                if let Some(free) = self.payloads.get_mut(slot as usize) {
                    *free = Some(event);
                }
                slot
            }
            None => {
                // Over 4 billion events in flight at once cannot happen (memory runs out
                // first); saturating keeps the conversion total all the same.
                let slot = u32::try_from(self.payloads.len()).unwrap_or(u32::MAX);
                self.payloads.push(Some(event));
                slot
            }
        };
        self.events.push(at.as_millis(), slot);
    }

    fn dispatch(&mut self, event: Event) {
        let now = self.now;
        match event {
            Event::Request {
                from,
                to,
                rpc,
                request,
            } => {
                let Some((from_peer, from_addr)) = self
                    .nodes
                    .get(from)
                    .map(|n| (n.info.peer_id(), n.info.primary_addr()))
                else {
                    return;
                };
                let Some(node) = self.nodes.get_mut(to) else {
                    return;
                };
                if !node.alive {
                    return;
                }
                let candidates = node.core.candidate_count();
                let stores = matches!(request, DhtRequest::Store { .. });
                let reply = node.core.handle_request(now, from_peer, from_addr, request);
                let response = Response {
                    responder: node.info.clone(),
                    reply,
                };
                // Answering changes nothing to drive unless it made a candidate to ping,
                // or stored a value (whose expiry the next wake must then include).
                if stores || node.core.candidate_count() > candidates {
                    self.process(to);
                }
                if !self.lost() {
                    let at = now.saturating_add(self.latency());
                    self.schedule(
                        at,
                        Event::Answer {
                            to: from,
                            rpc,
                            response,
                        },
                    );
                }
            }
            Event::Answer { to, rpc, response } => {
                if !self.is_alive(to) {
                    return;
                }
                if let Some((query, round)) = self.rpc_rounds.remove(&(to, rpc))
                    && let Some(trace) = self.traces.get_mut(&(to, query))
                {
                    let learned = match &response.reply {
                        Reply::Nodes(nodes) | Reply::Value { closer: nodes, .. } => {
                            nodes.as_slice()
                        }
                        _ => &[],
                    };
                    for node in learned {
                        trace.depth.entry(node.peer_id()).or_insert(round);
                    }
                }
                if let Some(node) = self.nodes.get_mut(to) {
                    node.core.on_response(now, rpc, response);
                }
                self.process(to);
            }
            Event::Wake(i) => {
                let due = self
                    .nodes
                    .get(i)
                    .is_some_and(|n| n.alive && n.wake == Some(now));
                if due {
                    if let Some(node) = self.nodes.get_mut(i) {
                        node.wake = None;
                        node.core.handle_timeout(now);
                    }
                    self.process(i);
                }
            }
            Event::Leave => {
                if let Some(i) = self.random_live()
                    && self.live > 1
                {
                    self.kill(i);
                }
                if let Some(c) = self.churn
                    && c.leaves_per_sec > 0.0
                {
                    let at = self.exp_delay(c.leaves_per_sec);
                    self.schedule(at, Event::Leave);
                }
            }
            Event::Join => {
                self.add_node();
                if let Some(c) = self.churn
                    && c.joins_per_sec > 0.0
                {
                    let at = self.exp_delay(c.joins_per_sec);
                    self.schedule(at, Event::Join);
                }
            }
        }
    }

    /// Drains node `i`'s actions and schedules its next wake.
    fn process(&mut self, i: usize) {
        let now = self.now;
        loop {
            let Some(node) = self.nodes.get_mut(i) else {
                return;
            };
            if !node.alive {
                return;
            }
            let Some(action) = node.core.poll(now) else {
                break;
            };
            match action {
                Action::SendRequest {
                    rpc,
                    query,
                    to,
                    request,
                } => self.send(i, rpc, query, to, request),
                Action::QueryFinished { id, result, stats } => {
                    self.finished_query(i, id, result, stats);
                }
            }
        }
        let Some(node) = self.nodes.get_mut(i) else {
            return;
        };
        if let Some(at) = node.core.poll_timeout() {
            let at = at.max(now.saturating_add(Duration::from_millis(1)));
            if node.wake.is_none_or(|w| at < w || w < now) {
                node.wake = Some(at);
                self.schedule(at, Event::Wake(i));
            }
        }
    }

    fn send(
        &mut self,
        from: usize,
        rpc: RpcId,
        query: Option<QueryId>,
        to: crate::dht_core::Contact,
        request: DhtRequest,
    ) {
        self.rpcs += 1;
        let target = to
            .peer
            .and_then(|p| self.by_peer.get(&p).copied())
            .or_else(|| to.addrs.first().and_then(|a| self.by_addr.get(a).copied()));
        if let Some(query) = query
            && let Some(trace) = self.traces.get_mut(&(from, query))
        {
            let depth = to
                .peer
                .and_then(|p| trace.depth.get(&p).copied())
                .unwrap_or(0);
            let round = depth + 1;
            trace.rpcs += 1;
            trace.rounds = trace.rounds.max(round);
            self.rpc_rounds.insert((from, rpc), (query, round));
        }
        let Some(to) = target else {
            return;
        };
        if self.lost() {
            return;
        }
        let at = self.now.saturating_add(self.latency());
        self.schedule(
            at,
            Event::Request {
                from,
                to,
                rpc,
                request,
            },
        );
    }

    fn finished_query(&mut self, node: usize, id: QueryId, result: QueryResult, stats: QueryStats) {
        let Some(trace) = self.traces.remove(&(node, id)) else {
            if self.finished.len() < 4096 {
                self.finished.push((node, id, result, stats));
            }
            return;
        };
        self.rpc_rounds
            .retain(|(n, _), (q, _)| !(*n == node && *q == id));
        let QueryResult::FindNode { closest } = result else {
            return;
        };
        let target_k = self.config.dht.lookup.k;
        let found: Vec<PeerId> = closest.iter().map(NodeInfo::peer_id).collect();
        let truth = self.truth(&trace.target, target_k, node);
        let exact = found == truth;
        let overlap = truth.iter().filter(|p| found.contains(p)).count();
        self.report.samples.push(LookupSample {
            rounds: trace.rounds,
            rpcs: trace.rpcs,
            exact,
            found: u32::try_from(overlap).unwrap_or(u32::MAX),
            latency: self.now.saturating_duration_since(trace.started),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truth_from_the_key_index_matches_a_scan_of_every_node() {
        let mut sim = Simulation::new(SimConfig::default());
        sim.grow(150, Duration::from_millis(20));
        sim.kill_fraction(0.2);
        let mut rng = SplitMix64::new(7);
        for round in 0..300 {
            let target = if round % 3 == 0 {
                // A node's own key: its run is as short as a run gets.
                sim.info(round % sim.len())
                    .map_or(Key::from_bytes([0; 32]), NodeInfo::key)
            } else {
                Key::from_bytes(rng.bytes32())
            };
            let except = round % sim.len();
            for k in [0, 1, 20, 200] {
                assert_eq!(
                    sim.truth(&target, k, except),
                    sim.truth_by_scan(&target, k, except),
                    "k {k}, target {target:?}"
                );
            }
        }
    }

    #[test]
    fn prefix_ranges_bound_exactly_the_keys_sharing_the_prefix() {
        let key = Key::from_bytes([0b1011_0110; 32]);
        let (lo, hi) = prefix_range(&key, 0);
        assert_eq!(
            (lo, hi),
            (Key::from_bytes([0; 32]), Key::from_bytes([0xff; 32]))
        );
        assert_eq!(prefix_range(&key, 256), (key, key));
        let (lo, hi) = prefix_range(&key, 11);
        assert_eq!(lo.as_bytes()[..2], [0b1011_0110, 0b1010_0000]);
        assert_eq!(hi.as_bytes()[..2], [0b1011_0110, 0b1011_1111]);
        assert!(lo.as_bytes()[2..].iter().all(|b| *b == 0));
        assert!(hi.as_bytes()[2..].iter().all(|b| *b == 0xff));
    }
}
