//! A discrete-event simulator that runs many [`DhtCore`]s on one virtual clock.
//!
//! Events sit on agendas by due millisecond (timing wheels), equal times in the order they
//! were scheduled, so a seed replays exactly. Requests and answers are function calls
//! between cores with a sampled one-way latency each way and a chance of being lost; a
//! dead node never answers, so its requests end at the core's timeouts. Every node gets
//! its own /24 (`10.a.b.1`), so the IP-diversity limits never bind here.
//!
//! **Two shards, one or two threads.** When every message takes at least one whole
//! millisecond, the nodes are split into two shards (even and odd indices), each with its
//! own agenda and random stream. What one shard sends the other at millisecond `t` joins
//! the other's agenda just before millisecond `t + L`, `L` being the least latency, so the
//! two may run up to `L` apart; [`SimConfig::threads`] decides whether they run on one
//! thread or two. The results are the same either way (see `sim/worker.rs` for why), so a
//! seed replays exactly on any machine. Joins, departures and the caller's own calls run
//! between runs of the shards, on the caller's thread.
//!
//! **Rounds.** A lookup's rounds are the length of its longest chain of causally dependent
//! requests: a request to a node the querier knew before the lookup (its seeds) is round 1,
//! and a request to a node first learned from an answer to a round-`r` request is round
//! `r + 1`. This counts the network round trips on the lookup's critical path whatever its
//! concurrency.

mod shard;
mod worker;
mod world;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blyan_crypto::PeerId;

use crate::dht_core::{DhtConfig, DhtCore, QueryId, QueryResult, QueryStats, Seed};
use crate::distance::Key;
use crate::node::NodeInfo;
pub use crate::rng::SplitMix64;
use crate::time::Timestamp;

use shard::{Links, Shard};
use worker::Worker;
use world::World;

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
    /// Threads to run on: 2 runs the two shards side by side, 1 (or 0) one after the
    /// other. Results do not depend on it. Default: 2 where the machine has two cores.
    pub threads: usize,
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
            threads: std::thread::available_parallelism()
                .map_or(1, std::num::NonZeroUsize::get)
                .min(2),
        }
    }
}

impl Latency {
    /// The least one-way latency this can draw.
    fn least(&self) -> Duration {
        match *self {
            Latency::Fixed(d) => d,
            Latency::Uniform { min, .. } => min,
            Latency::Exponential { base, .. } => base,
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

fn quantile(mut values: Vec<u32>, q: f64) -> u32 {
    if values.is_empty() {
        return 0;
    }
    values.sort_unstable();
    let last = values.len() - 1;
    let at = ((last as f64) * q.clamp(0.0, 1.0)).round() as usize;
    values.get(at.min(last)).copied().unwrap_or(0)
}

/// A network of [`DhtCore`]s on one virtual clock. See the module docs.
pub struct Simulation {
    config: SimConfig,
    /// Draws made between runs of the shards: node ids, who looks up what, who leaves.
    rng: SplitMix64,
    now: Timestamp,
    world: Arc<World>,
    /// Node `i` lives in shard `i % shards.len()`.
    shards: Vec<Shard>,
    /// Whole milliseconds every message takes at least: how far the shards may drift apart.
    lookahead: u64,
    worker: Option<Worker>,
    churn: Option<Churn>,
    next_leave: Option<u64>,
    next_join: Option<u64>,
}

impl Simulation {
    /// An empty network.
    pub fn new(config: SimConfig) -> Self {
        let lookahead = u64::try_from(config.latency.least().as_millis()).unwrap_or(u64::MAX);
        let count = if lookahead >= 1 { 2 } else { 1 };
        let links = Links {
            latency: config.latency,
            loss: config.loss,
            k: config.dht.lookup.k,
        };
        let mut rng = SplitMix64::new(config.seed);
        let shards = (0..count)
            .map(|index| Shard::new(index, count, rng.next_u64(), links))
            .collect();
        let worker = if count == 2 && config.threads >= 2 {
            Worker::spawn()
        } else {
            None
        };
        Self {
            rng,
            config,
            now: Timestamp::ZERO,
            world: Arc::new(World::default()),
            shards,
            lookahead,
            worker,
            churn: None,
            next_leave: None,
            next_join: None,
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Nodes ever added (dead ones included).
    pub fn len(&self) -> usize {
        self.world.len()
    }

    /// Whether no node was added.
    pub fn is_empty(&self) -> bool {
        self.world.len() == 0
    }

    /// Nodes alive.
    pub fn live(&self) -> usize {
        self.world.live()
    }

    /// Whether node `i` is alive.
    pub fn is_alive(&self, i: usize) -> bool {
        self.world.is_alive(i)
    }

    /// Node `i`'s core.
    pub fn core(&self, i: usize) -> Option<&DhtCore> {
        self.shard(i)?.core(i)
    }

    /// Node `i`'s id and address.
    pub fn info(&self, i: usize) -> Option<&NodeInfo> {
        self.world.info(i)
    }

    /// Requests delivered or lost so far.
    pub fn rpcs(&self) -> u64 {
        self.shards.iter().map(|s| s.rpcs).sum()
    }

    fn shard(&self, i: usize) -> Option<&Shard> {
        self.shards.get(i % self.shards.len().max(1))
    }

    /// Node `i`'s shard, brought to the present, with the world to run it against.
    fn shard_mut(&mut self, i: usize) -> Option<(&mut Shard, &World)> {
        let count = self.shards.len().max(1);
        let shard = self.shards.get_mut(i % count)?;
        shard.set_now(self.now);
        Some((shard, &self.world))
    }

    /// The world, for a change between runs of the shards.
    fn world_mut(&mut self) -> &mut World {
        // The worker drops its handle at the end of every run, so this does not copy.
        Arc::make_mut(&mut self.world)
    }

    /// Starts (or with `None` stops) churn.
    pub fn set_churn(&mut self, churn: Option<Churn>) {
        self.churn = churn;
        self.next_leave = None;
        self.next_join = None;
        if let Some(c) = churn {
            if c.leaves_per_sec > 0.0 {
                self.next_leave = Some(self.exp_delay(c.leaves_per_sec));
            }
            if c.joins_per_sec > 0.0 {
                self.next_join = Some(self.exp_delay(c.joins_per_sec));
            }
        }
    }

    /// Adds a node with a random id. It bootstraps through a random live node (the first
    /// node has nobody to join). Returns its index.
    pub fn add_node(&mut self) -> usize {
        let i = self.world.len();
        let id = PeerId::from_bytes(self.rng.bytes32());
        let addr = Self::subnet_addr(i);
        let info = match NodeInfo::new(id, [addr]) {
            Ok(info) => info,
            Err(_) => return i,
        };
        let seed = self.rng.next_u64();
        let mut core = DhtCore::new(id, self.config.dht.clone(), seed);
        let bootstrap = self.random_live();
        if let Some(j) = bootstrap {
            let seed = Seed {
                addr: self.world.info(j).map_or(addr, NodeInfo::primary_addr),
                peer: None,
            };
            let _ = core.bootstrap(self.now, [seed]);
        }
        let i = self.world_mut().add(info);
        if let Some((shard, world)) = self.shard_mut(i) {
            shard.adopt(i, core);
            shard.process(world, i);
        }
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
        if self.world.is_alive(i) {
            self.world_mut().kill(i);
        }
    }

    /// Kills `fraction` of the live nodes, chosen at random.
    pub fn kill_fraction(&mut self, fraction: f64) {
        let target = (self.live() as f64 * fraction).round() as usize;
        let mut killed = 0;
        while killed < target && self.live() > 1 {
            if let Some(i) = self.random_live() {
                self.kill(i);
                killed += 1;
            }
        }
    }

    /// Runs every event up to `until`, then sets the clock to it.
    pub fn run_until(&mut self, until: Timestamp) {
        let until_ms = until.as_millis();
        // Departures and joins change the world, so they happen between runs: the shards
        // run up to the millisecond before each, then it happens.
        while let Some((at, leave)) = self.next_churn().filter(|(at, _)| *at <= until_ms) {
            if at > self.now.as_millis() {
                self.run_shards(at - 1);
                self.now = self.now.max(Timestamp::from_millis(at));
            }
            if leave {
                self.leave();
            } else {
                self.join();
            }
        }
        self.run_shards(until_ms);
        self.now = self.now.max(until);
    }

    /// Runs the shards from the present to `until` (ms, inclusive).
    fn run_shards(&mut self, until: u64) {
        let from = self.now.as_millis();
        if until < from {
            return;
        }
        match &mut self.worker {
            Some(worker) if self.shards.len() == 2 => {
                worker.run(&mut self.shards, &self.world, from, until, self.lookahead);
            }
            _ => worker::run_serial(&mut self.shards, &self.world, from, until, self.lookahead),
        }
    }

    /// The next departure or join, and whether it is a departure (first at equal times).
    fn next_churn(&self) -> Option<(u64, bool)> {
        match (self.next_leave, self.next_join) {
            (Some(l), Some(j)) if j < l => Some((j, false)),
            (Some(l), _) => Some((l, true)),
            (None, Some(j)) => Some((j, false)),
            (None, None) => None,
        }
    }

    fn leave(&mut self) {
        if let Some(i) = self.random_live()
            && self.live() > 1
        {
            self.kill(i);
        }
        self.next_leave = match self.churn {
            Some(c) if c.leaves_per_sec > 0.0 => Some(self.exp_delay(c.leaves_per_sec)),
            _ => None,
        };
    }

    fn join(&mut self) {
        self.add_node();
        self.next_join = match self.churn {
            Some(c) if c.joins_per_sec > 0.0 => Some(self.exp_delay(c.joins_per_sec)),
            _ => None,
        };
    }

    /// Runs for `d` of simulated time.
    pub fn run_for(&mut self, d: Duration) {
        let until = self.now.saturating_add(d);
        self.run_until(until);
    }

    /// Starts a measured FIND_NODE lookup of `target` from node `from`.
    pub fn start_lookup(&mut self, from: usize, target: Key) -> Option<QueryId> {
        if !self.is_alive(from) {
            return None;
        }
        let now = self.now;
        let (shard, world) = self.shard_mut(from)?;
        let id = shard.core_mut(from)?.find_node(now, target).ok()?;
        shard.trace(from, id, target);
        shard.process(world, from);
        Some(id)
    }

    /// Runs `count` measured lookups of random keys from random live nodes, one started
    /// every `spacing`, and waits for all of them. Returns their figures, in order of
    /// completion.
    ///
    /// The lookups are planned ahead onto the shards' agendas, as far as the next departure
    /// or join: until then the live nodes stay the same, so a lookup drawn now starts from a
    /// node that is alive when it starts. The shards then run through the whole stretch
    /// without stopping for each start.
    pub fn measure_lookups(&mut self, count: usize, spacing: Duration) -> LookupReport {
        for shard in &mut self.shards {
            shard.samples.clear();
        }
        let first = self.now;
        let due = |i: usize| {
            first.saturating_add(spacing.saturating_mul(u32::try_from(i).unwrap_or(u32::MAX)))
        };
        for i in 0..count {
            let at = due(i);
            if self
                .next_churn()
                .is_some_and(|(churn, _)| churn <= at.as_millis())
            {
                // The world changes first: run up to the start, then draw.
                self.run_until(at);
            }
            if let Some(from) = self.random_live() {
                let target = Key::from_bytes(self.rng.bytes32());
                if let Some((shard, _)) = self.shard_mut(from) {
                    shard.plan_lookup(at.as_millis(), from, target);
                }
            }
        }
        self.run_until(due(count));
        // Lookups whose node left (churn) never end; stop waiting for them.
        let deadline = self.now.saturating_add(Duration::from_secs(600));
        while self.now < deadline && self.measuring() {
            self.run_for(Duration::from_millis(100));
        }
        let mut samples = Vec::new();
        for shard in &mut self.shards {
            shard.clear_traces();
            samples.append(&mut shard.samples);
        }
        samples.sort_by_key(|(at, node, _)| (*at, *node));
        LookupReport {
            samples: samples.into_iter().map(|(_, _, s)| s).collect(),
        }
    }

    /// Whether a measured lookup of a live node is still running.
    fn measuring(&self) -> bool {
        self.shards
            .iter()
            .any(|s| s.traces.keys().any(|(node, _)| self.is_alive(*node)))
    }

    /// Starts an unmeasured FIND_NODE from node `from`; its result is kept for
    /// [`take_result`](Self::take_result).
    pub fn find_node(&mut self, from: usize, target: Key) -> Option<QueryId> {
        let now = self.now;
        let (shard, world) = self.shard_mut(from)?;
        let id = shard.core_mut(from)?.find_node(now, target).ok()?;
        shard.process(world, from);
        Some(id)
    }

    /// Starts a PUT from node `from`.
    pub fn put(&mut self, from: usize, key: Key, value: Vec<u8>, ttl: Duration) -> Option<QueryId> {
        let now = self.now;
        let (shard, world) = self.shard_mut(from)?;
        let id = shard.core_mut(from)?.put(now, key, value, ttl).ok()?;
        shard.process(world, from);
        Some(id)
    }

    /// Stops node `node` from republishing its value under `key`.
    pub fn unpublish(&mut self, node: usize, key: &Key) -> bool {
        self.shard_mut(node)
            .and_then(|(shard, _)| shard.core_mut(node))
            .is_some_and(|core| core.unpublish(key))
    }

    /// Starts a GET from node `from`.
    pub fn get(&mut self, from: usize, key: Key) -> Option<QueryId> {
        let now = self.now;
        let (shard, world) = self.shard_mut(from)?;
        let id = shard.core_mut(from)?.get(now, key).ok()?;
        shard.process(world, from);
        Some(id)
    }

    /// Takes the result of query `id` of node `node`, if it finished.
    pub fn take_result(&mut self, node: usize, id: QueryId) -> Option<QueryResult> {
        self.take_outcome(node, id).map(|(result, _)| result)
    }

    /// Takes the result and cost of query `id` of node `node`, if it finished.
    pub fn take_outcome(&mut self, node: usize, id: QueryId) -> Option<(QueryResult, QueryStats)> {
        let (shard, _) = self.shard_mut(node)?;
        let at = shard
            .finished
            .iter()
            .position(|(n, q, _, _)| *n == node && *q == id)?;
        let (_, _, result, stats) = shard.finished.swap_remove(at);
        Some((result, stats))
    }

    /// The true `k` closest live nodes to `target`, other than node `except`.
    pub fn truth(&self, target: &Key, k: usize, except: usize) -> Vec<PeerId> {
        self.world.truth(target, k, except)
    }

    fn random_live(&mut self) -> Option<usize> {
        if self.live() == 0 {
            return None;
        }
        loop {
            let i = usize::try_from(self.rng.below(self.len() as u64)).unwrap_or(0);
            if self.is_alive(i) {
                return Some(i);
            }
        }
    }

    /// The time (ms) of the next event of a Poisson process of `rate_per_sec`.
    fn exp_delay(&mut self, rate_per_sec: f64) -> u64 {
        let u = (self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let secs = -(1.0 - u).ln() / rate_per_sec;
        self.now
            .saturating_add(Duration::from_secs_f64(secs.min(1e6)))
            .as_millis()
    }
}

#[cfg(test)]
mod tests {
    use super::world::prefix_range;
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
                    sim.world.truth_by_scan(&target, k, except),
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
