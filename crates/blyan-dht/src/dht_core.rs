//! The DHT node core: routing table, record store, running queries and outstanding requests
//! behind one sans-IO state machine.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use blyan_crypto::PeerId;

use crate::distance::{Distance, KEY_BITS, Key};
use crate::lookup::{Lookup, LookupAction, LookupConfig, LookupResult};
use crate::node::{NodeInfo, take_diverse};
use crate::record_store::{RecordStore, RecordStoreConfig, StoreError};
use crate::rng::SplitMix64;
use crate::routing_table::{InsertOutcome, RoutingConfig, RoutingTable};
use crate::rpc::{DhtRequest, FoundValue, MAX_VALUES_PER_RESPONSE, Refusal, Reply, Response};
use crate::time::Timestamp;

/// Settings of a [`DhtCore`]; `Default` gives the documented values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtConfig {
    /// The routing table's settings.
    pub routing: RoutingConfig,
    /// Every lookup's settings (alpha, k, soft request timeout, bounds).
    pub lookup: LookupConfig,
    /// The settings of the store of values held for others.
    pub store: RecordStoreConfig,
    /// When a request with no answer counts as failed: 5 s, well past the lookup's 2 s soft
    /// timeout, so a slow peer's late answer is still used.
    pub rpc_timeout: Duration,
    /// Requests in flight at once, all queries and maintenance together. 64: alpha = 3 for
    /// a dozen concurrent lookups plus pings; beyond it, work waits its turn.
    pub max_outstanding_rpcs: usize,
    /// Queries running at once. 32; a command past it is refused with
    /// [`DhtError::TooManyQueries`], and maintenance waits.
    pub max_queries: usize,
    /// Disjoint lookup paths (S/Kademlia): 1 is off. With `d > 1` the seeds are dealt out
    /// over `d` lookups that never ask the same node, and their results are merged; a
    /// lookup then succeeds if any one path avoids the adversary's nodes.
    pub disjoint_paths: usize,
    /// A bucket no lookup touched for this long is refreshed with a lookup of a random key
    /// in it. 1 h, as Kademlia.
    pub refresh_interval: Duration,
    /// How often maintenance (refresh, republish, expiry, candidate pings) looks for work.
    /// 10 s.
    pub maintenance_interval: Duration,
    /// Bucket refreshes started per maintenance pass, so a stale table does not start
    /// dozens of lookups at once. 2.
    pub max_refreshes_per_pass: usize,
    /// Our own values are stored again this often, and at least twice per TTL. 1 h, as
    /// Kademlia; holders drop values when their TTL ends.
    pub republish_interval: Duration,
    /// Own values kept for republishing. 64.
    pub max_own_values: usize,
    /// Nodes waiting to be pinged before they may enter the table (loaded from disk, or
    /// that sent us a request while their bucket had room). 64.
    pub max_candidates: usize,
    /// A GET ends as soon as this many nodes answered with values. 1: the first holder's
    /// values (one per publisher) answer the query.
    pub get_quorum: usize,
    /// While the table holds fewer than k nodes, the bootstrap seeds are asked again this
    /// often (a join whose messages were lost, or a node that lost its neighbours). 60 s.
    pub rebootstrap_interval: Duration,
    /// Nodes we answer a FIND_NODE or FIND_VALUE with. 30: k = 20 plus room for entries we
    /// do not know are dead yet, so that the asker still learns the 20 closest live nodes
    /// (with 10% dead entries and 20, lookups in a 10,000-node simulation missed one of
    /// the true 20 closest a third of the time; with 30, see docs/performance.md).
    pub answer_nodes: usize,
}

impl Default for DhtConfig {
    fn default() -> Self {
        Self {
            routing: RoutingConfig::default(),
            lookup: LookupConfig::default(),
            store: RecordStoreConfig::default(),
            rpc_timeout: Duration::from_secs(5),
            max_outstanding_rpcs: 64,
            max_queries: 32,
            disjoint_paths: 1,
            refresh_interval: Duration::from_secs(3600),
            maintenance_interval: Duration::from_secs(10),
            max_refreshes_per_pass: 2,
            republish_interval: Duration::from_secs(3600),
            max_own_values: 64,
            max_candidates: 64,
            get_quorum: 1,
            answer_nodes: 30,
            rebootstrap_interval: Duration::from_secs(60),
        }
    }
}

/// Identifies a query started by a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// Identifies one request the core asked the driver to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RpcId(pub u64);

/// Where to send a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Contact {
    /// The peer expected to answer; `None` for a seed given only by address (the answer's
    /// signed record then tells who it is).
    pub peer: Option<PeerId>,
    /// Addresses to try, primary first.
    pub addrs: Vec<SocketAddr>,
}

/// A bootstrap seed: an address, and the peer id if configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its id, if known.
    pub peer: Option<PeerId>,
}

/// What the driver should do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `request` to `to`; report the answer with [`DhtCore::on_response`] or the
    /// failure with [`DhtCore::on_failure`] (or let [`DhtCore::handle_timeout`] expire it).
    SendRequest {
        /// Names the request in the report.
        rpc: RpcId,
        /// The query it serves, if any (maintenance pings serve none).
        query: Option<QueryId>,
        /// The recipient.
        to: Contact,
        /// What to send.
        request: DhtRequest,
    },
    /// A query started by a command has ended.
    QueryFinished {
        /// The query.
        id: QueryId,
        /// Its result.
        result: QueryResult,
        /// Its cost.
        stats: QueryStats,
    },
}

/// The result of a finished query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueryResult {
    /// [`DhtCore::find_node`]: the k closest nodes that answered (at most 2 per /24).
    FindNode {
        /// Closest first.
        closest: Vec<NodeInfo>,
    },
    /// [`DhtCore::get`]: values found, one per publisher (the longest-lived copy), and the
    /// closest nodes if the lookup ran to its end.
    GetValue {
        /// Values by publisher.
        values: Vec<FoundValue>,
        /// Closest nodes (empty when the query stopped early on values).
        closest: Vec<NodeInfo>,
    },
    /// [`DhtCore::put`]: how the k closest nodes answered the STORE.
    PutValue {
        /// Nodes that stored the value.
        stored: usize,
        /// Nodes that refused it.
        refused: usize,
        /// Nodes that did not answer.
        failed: usize,
    },
    /// [`DhtCore::bootstrap`]: the table size when the lookup of our own id ended (bucket
    /// refreshes keep filling it afterwards).
    Bootstrap {
        /// Entries in the routing table.
        table_len: usize,
    },
}

/// The cost of a query.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryStats {
    /// Requests sent for it.
    pub requests: u32,
    /// Answers used.
    pub responses: u32,
    /// Requests that failed or timed out.
    pub failures: u32,
    /// From the command to the end.
    pub elapsed: Duration,
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DhtError {
    /// `max_queries` queries are running.
    #[error("{max} queries are already running")]
    TooManyQueries {
        /// The limit.
        max: usize,
    },
    /// `max_own_values` values are being published already.
    #[error("{max} own values are already published")]
    TooManyOwnValues {
        /// The limit.
        max: usize,
    },
    /// The value is larger than holders accept.
    #[error("value of {len} bytes exceeds the limit of {max} bytes")]
    ValueTooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A zero lifetime.
    #[error("a value needs a lifetime above zero")]
    ZeroTtl,
    /// Bootstrap without a single seed.
    #[error("bootstrap needs at least one seed")]
    NoSeeds,
}

#[derive(Clone, Debug)]
enum Kind {
    FindNode,
    GetValue,
    PutValue { value: Vec<u8>, ttl: Duration },
    Bootstrap,
    Refresh,
}

#[derive(Clone, Debug)]
enum Phase {
    /// Bootstrap only: FIND_NODE(own id) sent straight to the seeds; their answers seed the
    /// lookup.
    Seeding {
        to_send: VecDeque<Seed>,
        pending: usize,
        learned: Vec<NodeInfo>,
    },
    Lookup {
        paths: Vec<Lookup>,
        results: Vec<Option<LookupResult>>,
        /// Which path asked a node (disjoint paths only).
        claimed: HashMap<PeerId, usize>,
    },
    Storing {
        to_send: VecDeque<NodeInfo>,
        pending: usize,
        stored: usize,
        refused: usize,
        failed: usize,
    },
}

#[derive(Clone, Debug)]
struct Query {
    kind: Kind,
    target: Key,
    phase: Phase,
    /// Started by a command (reported with `QueryFinished`) or by maintenance (silent).
    reported: bool,
    started: Timestamp,
    stats: QueryStats,
    values: BTreeMap<PeerId, FoundValue>,
    value_answers: usize,
    wake: Option<Timestamp>,
    /// Something happened (an answer, a failure, a phase change) since it was last driven.
    dirty: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Purpose {
    Lookup {
        query: QueryId,
        path: usize,
    },
    Seed {
        query: QueryId,
    },
    Store {
        query: QueryId,
    },
    /// Liveness ping the routing table asked for.
    TablePing,
    /// Ping of a candidate before it may enter the table.
    Validate,
}

#[derive(Clone, Debug)]
struct Outstanding {
    peer: Option<PeerId>,
    deadline: Timestamp,
    purpose: Purpose,
}

#[derive(Clone, Debug)]
struct OwnValue {
    value: Vec<u8>,
    ttl: Duration,
    next_publish: Timestamp,
}

/// A Kademlia node as a sans-IO state machine.
///
/// Feed it inbound requests ([`handle_request`](Self::handle_request)), the answers and
/// failures of its own requests ([`on_response`](Self::on_response),
/// [`on_failure`](Self::on_failure)), commands ([`bootstrap`](Self::bootstrap),
/// [`find_node`](Self::find_node), [`get`](Self::get), [`put`](Self::put)) and the time;
/// drain [`poll`](Self::poll) for [`Action`]s and wake it at
/// [`poll_timeout`](Self::poll_timeout). Maintenance (liveness pings, bucket refresh,
/// republishing, expiry) runs on its own schedule inside `poll`.
///
/// Only a node that answered one of our requests enters the table. A node that sends us a
/// request while its bucket has room becomes a candidate and is pinged first. Every
/// collection is bounded by [`DhtConfig`].
#[derive(Clone, Debug)]
pub struct DhtCore {
    local: PeerId,
    config: DhtConfig,
    table: RoutingTable,
    store: RecordStore,
    rng: SplitMix64,
    queries: BTreeMap<QueryId, Query>,
    next_query: u64,
    rpcs: BTreeMap<RpcId, Outstanding>,
    next_rpc: u64,
    actions: VecDeque<Action>,
    pings: VecDeque<NodeInfo>,
    candidates: VecDeque<NodeInfo>,
    own_values: BTreeMap<Key, OwnValue>,
    last_refresh: Vec<Timestamp>,
    /// From the last refresh scan: its nearest bucket, and the earliest time one of the
    /// buckets from there out becomes stale (a lower bound: refreshes push times later).
    refresh_check: Option<(usize, Timestamp)>,
    /// The next tick of the maintenance schedule: passes run on the ticks
    /// `next_maintenance + n × maintenance_interval`, but only on those where something may
    /// be due (see [`maintenance_due`](Self::maintenance_due)); the others would change
    /// nothing and are skipped, so an idle node is not woken every interval.
    next_maintenance: Timestamp,
    /// Whether the first pass ran (it fixes the schedule's phase: the first poll's time).
    maintained: bool,
    /// No stored value expires before this (a lower bound, so no scan of the store is
    /// needed to know when to expire it): set by each pass, lowered by each store.
    store_due: Option<Timestamp>,
    /// The last bootstrap's seeds (at most [`MAX_SEEDS`]), asked again while the table is
    /// short.
    seeds: Vec<Seed>,
    next_rebootstrap: Timestamp,
}

/// Seeds remembered for re-bootstrapping.
const MAX_SEEDS: usize = 16;

impl DhtCore {
    /// A node with id `local` and an empty table. `seed` seeds its random choices (refresh
    /// targets): the driver passes OS randomness, a simulator its own seed.
    pub fn new(local: PeerId, config: DhtConfig, seed: u64) -> Self {
        let table = RoutingTable::new(local, config.routing.clone());
        let store = RecordStore::new(config.store.clone());
        Self {
            local,
            table,
            store,
            rng: SplitMix64::new(seed),
            queries: BTreeMap::new(),
            next_query: 0,
            rpcs: BTreeMap::new(),
            next_rpc: 0,
            actions: VecDeque::new(),
            pings: VecDeque::new(),
            candidates: VecDeque::new(),
            own_values: BTreeMap::new(),
            last_refresh: vec![Timestamp::ZERO; KEY_BITS],
            refresh_check: None,
            next_maintenance: Timestamp::ZERO,
            maintained: false,
            store_due: None,
            seeds: Vec::new(),
            next_rebootstrap: Timestamp::ZERO,
            config,
        }
    }

    /// Our id.
    pub fn local_id(&self) -> PeerId {
        self.local
    }

    /// The settings.
    pub fn config(&self) -> &DhtConfig {
        &self.config
    }

    /// The routing table.
    pub fn table(&self) -> &RoutingTable {
        &self.table
    }

    /// The values held for others.
    pub fn store(&self) -> &RecordStore {
        &self.store
    }

    /// Queries running.
    pub fn query_count(&self) -> usize {
        self.queries.len()
    }

    /// Requests in flight.
    pub fn outstanding_rpcs(&self) -> usize {
        self.rpcs.len()
    }

    /// Nodes waiting for a validation ping.
    pub fn candidate_count(&self) -> usize {
        self.candidates.len()
    }

    /// Answers an inbound request from the authenticated peer `from` at `from_addr`.
    ///
    /// Never inserts `from` into the table. If its bucket has room, `from` becomes a
    /// candidate that is pinged (and enters only if it answers).
    pub fn handle_request(
        &mut self,
        now: Timestamp,
        from: PeerId,
        from_addr: SocketAddr,
        request: DhtRequest,
    ) -> Reply {
        self.consider_candidate(from, from_addr);
        let k = self
            .config
            .answer_nodes
            .min(crate::rpc::MAX_NODES_PER_RESPONSE);
        match request {
            DhtRequest::Ping => Reply::Pong,
            DhtRequest::FindNode { target } => {
                Reply::Nodes(self.table.closest_peers_diverse(&target, k))
            }
            DhtRequest::FindValue { key } => {
                let values = self
                    .store
                    .get(now, &key)
                    .into_iter()
                    .take(MAX_VALUES_PER_RESPONSE)
                    .map(|v| FoundValue {
                        publisher: v.publisher(),
                        value: v.value().to_vec(),
                        ttl: v.expires().saturating_duration_since(now),
                    })
                    .collect();
                Reply::Value {
                    values,
                    closer: self.table.closest_peers_diverse(&key, k),
                }
            }
            DhtRequest::Store { key, value, ttl } => {
                let expires = now.saturating_add(ttl.min(self.store.config().max_ttl));
                match self.store.put(now, key, from, value, ttl) {
                    Ok(_) => {
                        self.store_due = Some(self.store_due.map_or(expires, |d| d.min(expires)));
                        Reply::Stored
                    }
                    Err(StoreError::ValueTooLarge { .. }) => Reply::Refused(Refusal::ValueTooLarge),
                    Err(StoreError::KeyFull { .. }) => Reply::Refused(Refusal::KeyFull),
                    Err(StoreError::StoreFull { .. }) => Reply::Refused(Refusal::StoreFull),
                    Err(StoreError::ZeroTtl) => Reply::Refused(Refusal::ZeroTtl),
                }
            }
        }
    }

    /// Adds nodes that must answer a ping before they enter the table: entries loaded from
    /// a saved table, say. Beyond `max_candidates` the rest is ignored; returns how many
    /// were taken.
    pub fn add_candidates(&mut self, nodes: impl IntoIterator<Item = NodeInfo>) -> usize {
        let mut taken = 0;
        for node in nodes {
            if self.push_candidate(node) {
                taken += 1;
            }
        }
        taken
    }

    /// Joins the network through `seeds`: FIND_NODE(own id) to each seed, a lookup of our
    /// own id from what they answer, then a refresh of every bucket farther than our
    /// closest neighbour (Kademlia's join).
    pub fn bootstrap(
        &mut self,
        now: Timestamp,
        seeds: impl IntoIterator<Item = Seed>,
    ) -> Result<QueryId, DhtError> {
        let seeds: VecDeque<Seed> = seeds
            .into_iter()
            .take(self.config.max_outstanding_rpcs)
            .collect();
        if seeds.is_empty() {
            return Err(DhtError::NoSeeds);
        }
        self.seeds = seeds.iter().take(MAX_SEEDS).copied().collect();
        self.next_rebootstrap = now.saturating_add(self.config.rebootstrap_interval);
        let phase = Phase::Seeding {
            to_send: seeds,
            pending: 0,
            learned: Vec::new(),
        };
        self.start(
            now,
            Kind::Bootstrap,
            Key::from(self.local),
            Some(phase),
            true,
        )
    }

    /// Starts a lookup of the k nodes closest to `target`.
    pub fn find_node(&mut self, now: Timestamp, target: Key) -> Result<QueryId, DhtError> {
        self.start(now, Kind::FindNode, target, None, true)
    }

    /// Starts a FIND_VALUE lookup of `key`; it ends early once `get_quorum` nodes answered
    /// with values.
    pub fn get(&mut self, now: Timestamp, key: Key) -> Result<QueryId, DhtError> {
        self.start(now, Kind::GetValue, key, None, true)
    }

    /// Publishes `value` under `key`: a lookup, then STORE to the k closest nodes. The value
    /// is republished every `republish_interval` (at least twice per `ttl`) until
    /// [`unpublish`](Self::unpublish).
    pub fn put(
        &mut self,
        now: Timestamp,
        key: Key,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<QueryId, DhtError> {
        let max = self.config.store.max_value_len;
        if value.len() > max {
            return Err(DhtError::ValueTooLarge {
                len: value.len(),
                max,
            });
        }
        if ttl.is_zero() {
            return Err(DhtError::ZeroTtl);
        }
        if !self.own_values.contains_key(&key)
            && self.own_values.len() >= self.config.max_own_values
        {
            return Err(DhtError::TooManyOwnValues {
                max: self.config.max_own_values,
            });
        }
        let kind = Kind::PutValue {
            value: value.clone(),
            ttl,
        };
        let id = self.start(now, kind, key, None, true)?;
        let next_publish = now.saturating_add(self.republish_period(ttl));
        self.own_values.insert(
            key,
            OwnValue {
                value,
                ttl,
                next_publish,
            },
        );
        Ok(id)
    }

    /// Stops republishing our value under `key` (holders keep it until its TTL ends).
    /// Returns whether it was published.
    pub fn unpublish(&mut self, key: &Key) -> bool {
        self.own_values.remove(key).is_some()
    }

    /// The answer to request `rpc` arrived, its records verified.
    pub fn on_response(&mut self, now: Timestamp, rpc: RpcId, response: Response) {
        let Some(out) = self.rpcs.remove(&rpc) else {
            return;
        };
        let responder = response.responder;
        if out.peer.is_some_and(|p| p != responder.peer_id()) {
            // Not who we asked: the driver should have refused it; count it as a failure.
            self.fail(now, out);
            return;
        }
        let peer = responder.peer_id();
        self.learn(now, responder);
        match out.purpose {
            Purpose::TablePing | Purpose::Validate => {}
            Purpose::Seed { query } => {
                let Some(q) = self.queries.get_mut(&query) else {
                    return;
                };
                q.dirty = true;
                q.stats.responses += 1;
                if let Phase::Seeding {
                    pending, learned, ..
                } = &mut q.phase
                {
                    *pending = pending.saturating_sub(1);
                    if let Reply::Nodes(nodes) | Reply::Value { closer: nodes, .. } = response.reply
                    {
                        let room = self
                            .config
                            .lookup
                            .max_candidates
                            .saturating_sub(learned.len());
                        learned.extend(nodes.into_iter().take(room));
                    }
                }
            }
            Purpose::Lookup { query, path } => {
                let quorum = self.config.get_quorum.max(1);
                let Some(q) = self.queries.get_mut(&query) else {
                    return;
                };
                q.dirty = true;
                let nodes = match response.reply {
                    Reply::Nodes(nodes) => nodes,
                    Reply::Value { values, closer } => {
                        if !values.is_empty() && matches!(q.kind, Kind::GetValue) {
                            q.value_answers += 1;
                            for value in values.into_iter().take(MAX_VALUES_PER_RESPONSE) {
                                let keep = q
                                    .values
                                    .get(&value.publisher)
                                    .is_none_or(|held| held.ttl < value.ttl);
                                if keep
                                    && (q.values.len() < MAX_VALUES_PER_RESPONSE
                                        || q.values.contains_key(&value.publisher))
                                {
                                    q.values.insert(value.publisher, value);
                                }
                            }
                        }
                        closer
                    }
                    Reply::Pong | Reply::Stored | Reply::Refused(_) => {
                        if let Phase::Lookup { paths, .. } = &mut q.phase
                            && let Some(lookup) = paths.get_mut(path)
                        {
                            lookup.on_failure(&peer);
                        }
                        q.stats.failures += 1;
                        return;
                    }
                };
                q.stats.responses += 1;
                if let Phase::Lookup { paths, .. } = &mut q.phase
                    && let Some(lookup) = paths.get_mut(path)
                {
                    lookup.on_response(now, &peer, nodes);
                }
                if matches!(q.kind, Kind::GetValue) && q.value_answers >= quorum {
                    self.finish(now, query, Vec::new());
                }
            }
            Purpose::Store { query } => {
                let Some(q) = self.queries.get_mut(&query) else {
                    return;
                };
                q.dirty = true;
                if let Phase::Storing {
                    pending,
                    stored,
                    refused,
                    failed,
                    ..
                } = &mut q.phase
                {
                    *pending = pending.saturating_sub(1);
                    match response.reply {
                        Reply::Stored => *stored += 1,
                        Reply::Refused(_) => *refused += 1,
                        _ => *failed += 1,
                    }
                }
                q.stats.responses += 1;
            }
        }
    }

    /// Request `rpc` failed (no connection, a bad answer, the driver's own timeout).
    pub fn on_failure(&mut self, now: Timestamp, rpc: RpcId) {
        if let Some(out) = self.rpcs.remove(&rpc) {
            self.fail(now, out);
        }
    }

    /// Expires requests past `rpc_timeout` and table pings past theirs. Call at
    /// [`poll_timeout`](Self::poll_timeout) (calling more often is harmless), then poll.
    pub fn handle_timeout(&mut self, now: Timestamp) {
        let expired: Vec<RpcId> = self
            .rpcs
            .iter()
            .filter(|(_, out)| out.deadline <= now)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.on_failure(now, id);
        }
        self.table.handle_timeout(now);
    }

    /// When the driver should call [`handle_timeout`](Self::handle_timeout) and poll again.
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let rpc = self.rpcs.values().map(|o| o.deadline).min();
        let wake = self.queries.values().filter_map(|q| q.wake).min();
        [
            self.maintenance_tick(),
            rpc,
            wake,
            self.table.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// The next thing to do at `now`; `None` when there is nothing until new input or
    /// [`poll_timeout`](Self::poll_timeout).
    pub fn poll(&mut self, now: Timestamp) -> Option<Action> {
        if let Some(action) = self.actions.pop_front() {
            return Some(action);
        }
        if now >= self.next_maintenance {
            match self.maintenance_tick() {
                Some(tick) if now >= tick => {
                    self.maintain(now);
                    if let Some(action) = self.actions.pop_front() {
                        return Some(action);
                    }
                }
                // The ticks up to `now` had nothing due: skip them, keeping the phase.
                _ => self.next_maintenance = self.tick_after(now),
            }
        }
        if self.rpcs.len() >= self.config.max_outstanding_rpcs {
            return None;
        }
        // Local work first: liveness pings the table asked for, then queries, and only
        // then pings of candidates that reached us from outside.
        if let Some(node) = self.pings.pop_front() {
            return Some(self.send(now, Some(&node), None, Purpose::TablePing, DhtRequest::Ping));
        }
        // Each query due, in id order; found one at a time (no list to allocate on every
        // poll), since driving one may end it or start another.
        let mut after = None;
        loop {
            let due = self
                .queries
                .range((
                    after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded),
                    std::ops::Bound::Unbounded,
                ))
                .find(|(_, q)| q.dirty || q.wake.is_some_and(|w| w <= now))
                .map(|(id, _)| *id);
            let Some(id) = due else {
                break;
            };
            after = Some(id);
            if let Some(action) = self.drive(now, id) {
                return Some(action);
            }
            if let Some(action) = self.actions.pop_front() {
                return Some(action);
            }
        }
        while let Some(node) = self.candidates.pop_front() {
            if self.table.get(&node.peer_id()).is_none() {
                let purpose = Purpose::Validate;
                return Some(self.send(now, Some(&node), None, purpose, DhtRequest::Ping));
            }
        }
        None
    }

    /// Every node in the table (to save with [`save_table`](crate::save_table)).
    pub fn table_nodes(&self) -> impl Iterator<Item = &NodeInfo> {
        self.table.iter().map(|e| e.node())
    }

    fn consider_candidate(&mut self, from: PeerId, from_addr: SocketAddr) {
        let Some(bucket) = self.table.bucket_index(&from) else {
            return;
        };
        // A full bucket first: then whether `from` is in it does not matter, and most
        // requests come from a full (far) bucket, so the search is mostly skipped.
        if self.table.bucket(bucket).len() >= self.config.routing.k
            || self.table.get(&from).is_some()
        {
            return;
        }
        if let Ok(node) = NodeInfo::new(from, [from_addr]) {
            self.push_candidate(node);
        }
    }

    fn push_candidate(&mut self, node: NodeInfo) -> bool {
        if node.peer_id() == self.local
            || self.candidates.len() >= self.config.max_candidates
            || self
                .candidates
                .iter()
                .any(|c| c.peer_id() == node.peer_id())
        {
            return false;
        }
        self.candidates.push_back(node);
        true
    }

    /// `node` answered one of our requests.
    fn learn(&mut self, now: Timestamp, node: NodeInfo) {
        if let InsertOutcome::PingLeastRecentlySeen { peer, .. } = self.table.on_response(now, node)
            && !self.pings.iter().any(|p| p.peer_id() == peer.peer_id())
        {
            self.pings.push_back(peer);
        }
    }

    fn fail(&mut self, now: Timestamp, out: Outstanding) {
        if let Some(peer) = out.peer {
            match out.purpose {
                Purpose::TablePing => self.table.on_ping_result(now, &peer, false),
                _ => {
                    self.table.on_failure(&peer);
                }
            }
        }
        let Some(query) = (match out.purpose {
            Purpose::Lookup { query, .. } | Purpose::Seed { query } | Purpose::Store { query } => {
                Some(query)
            }
            Purpose::TablePing | Purpose::Validate => None,
        }) else {
            return;
        };
        let Some(q) = self.queries.get_mut(&query) else {
            return;
        };
        q.dirty = true;
        q.stats.failures += 1;
        match (&mut q.phase, out.purpose) {
            (Phase::Lookup { paths, .. }, Purpose::Lookup { path, .. }) => {
                if let (Some(lookup), Some(peer)) = (paths.get_mut(path), out.peer) {
                    lookup.on_failure(&peer);
                }
            }
            (Phase::Seeding { pending, .. }, Purpose::Seed { .. }) => {
                *pending = pending.saturating_sub(1);
            }
            (
                Phase::Storing {
                    pending, failed, ..
                },
                Purpose::Store { .. },
            ) => {
                *pending = pending.saturating_sub(1);
                *failed += 1;
            }
            _ => {}
        }
    }

    fn start(
        &mut self,
        now: Timestamp,
        kind: Kind,
        target: Key,
        phase: Option<Phase>,
        reported: bool,
    ) -> Result<QueryId, DhtError> {
        if self.queries.len() >= self.config.max_queries {
            return Err(DhtError::TooManyQueries {
                max: self.config.max_queries,
            });
        }
        let phase = phase.unwrap_or_else(|| self.lookup_phase(target, Vec::new()));
        if let Some(bucket) = self.local_key().distance(&target).bucket_index()
            && let Some(at) = self.last_refresh.get_mut(bucket)
        {
            *at = now;
        }
        let id = QueryId(self.next_query);
        self.next_query += 1;
        self.queries.insert(
            id,
            Query {
                kind,
                target,
                phase,
                reported,
                started: now,
                stats: QueryStats::default(),
                values: BTreeMap::new(),
                value_answers: 0,
                wake: None,
                dirty: true,
            },
        );
        Ok(id)
    }

    fn local_key(&self) -> Key {
        Key::from(self.local)
    }

    /// Lookups of `target` seeded from the table (and `extra` nodes), one per disjoint path.
    fn lookup_phase(&self, target: Key, extra: Vec<NodeInfo>) -> Phase {
        let k = self.config.lookup.k;
        let mut seeds = self.table.closest_peers_diverse(&target, k);
        for node in extra {
            if !seeds.iter().any(|s| s.peer_id() == node.peer_id()) {
                seeds.push(node);
            }
        }
        seeds.sort_by_key(|n| target.distance(&n.key()));
        let d = self.config.disjoint_paths.max(1);
        let mut shares: Vec<Vec<NodeInfo>> = vec![Vec::new(); d];
        for (i, seed) in seeds.into_iter().enumerate() {
            if let Some(share) = shares.get_mut(i % d) {
                share.push(seed);
            }
        }
        let paths: Vec<Lookup> = shares
            .into_iter()
            .map(|share| Lookup::new(target, self.local, share, self.config.lookup.clone()))
            .collect();
        Phase::Lookup {
            results: vec![None; paths.len()],
            paths,
            claimed: HashMap::new(),
        }
    }

    fn send(
        &mut self,
        now: Timestamp,
        node: Option<&NodeInfo>,
        seed: Option<Seed>,
        purpose: Purpose,
        request: DhtRequest,
    ) -> Action {
        let rpc = RpcId(self.next_rpc);
        self.next_rpc += 1;
        let to = match (node, seed) {
            (Some(node), _) => Contact {
                peer: Some(node.peer_id()),
                addrs: node.addrs().to_vec(),
            },
            (None, Some(seed)) => Contact {
                peer: seed.peer,
                addrs: vec![seed.addr],
            },
            (None, None) => Contact {
                peer: None,
                addrs: Vec::new(),
            },
        };
        self.rpcs.insert(
            rpc,
            Outstanding {
                peer: to.peer,
                deadline: now.saturating_add(self.config.rpc_timeout),
                purpose,
            },
        );
        let query = match purpose {
            Purpose::Lookup { query, .. } | Purpose::Seed { query } | Purpose::Store { query } => {
                if let Some(q) = self.queries.get_mut(&query) {
                    q.stats.requests += 1;
                    // It may have more to send.
                    q.dirty = true;
                }
                Some(query)
            }
            Purpose::TablePing | Purpose::Validate => None,
        };
        Action::SendRequest {
            rpc,
            query,
            to,
            request,
        }
    }

    /// Advances query `id`: returns a request to send, or moves it to its next phase (and
    /// queues `QueryFinished` when it ends).
    fn drive(&mut self, now: Timestamp, id: QueryId) -> Option<Action> {
        let q = self.queries.get_mut(&id)?;
        if !q.dirty && q.wake.is_none_or(|w| now < w) {
            return None;
        }
        q.dirty = false;
        let target = q.target;
        q.wake = None;
        match &mut q.phase {
            Phase::Seeding {
                to_send,
                pending,
                learned,
            } => {
                if let Some(seed) = to_send.pop_front() {
                    *pending += 1;
                    let request = DhtRequest::FindNode { target };
                    return Some(self.send(
                        now,
                        None,
                        Some(seed),
                        Purpose::Seed { query: id },
                        request,
                    ));
                }
                if *pending == 0 {
                    let learned = std::mem::take(learned);
                    let phase = self.lookup_phase(target, learned);
                    if let Some(q) = self.queries.get_mut(&id) {
                        q.phase = phase;
                        q.dirty = true;
                    }
                    return self.drive(now, id);
                }
                None
            }
            Phase::Lookup {
                paths,
                results,
                claimed,
            } => {
                let disjoint = paths.len() > 1;
                let mut wake: Option<Timestamp> = None;
                let mut send = None;
                for (i, lookup) in paths.iter_mut().enumerate() {
                    if results.get(i).is_some_and(Option::is_some) {
                        continue;
                    }
                    loop {
                        match lookup.poll(now) {
                            LookupAction::SendFindNode { node } => {
                                let peer = node.peer_id();
                                if disjoint {
                                    match claimed.get(&peer) {
                                        Some(owner) if *owner != i => {
                                            lookup.withdraw(&peer);
                                            continue;
                                        }
                                        _ => {
                                            claimed.insert(peer, i);
                                        }
                                    }
                                }
                                send = Some((i, node));
                                break;
                            }
                            LookupAction::Wait { until } => {
                                wake = match (wake, until) {
                                    (Some(a), Some(b)) => Some(a.min(b)),
                                    (a, b) => a.or(b),
                                };
                                break;
                            }
                            LookupAction::Done(result) => {
                                if let Some(slot) = results.get_mut(i) {
                                    *slot = Some(result);
                                }
                                break;
                            }
                        }
                    }
                    if send.is_some() {
                        break;
                    }
                }
                let all_done = results.iter().all(Option::is_some);
                q.wake = wake;
                if let Some((path, node)) = send {
                    let request = match q.kind {
                        Kind::GetValue => DhtRequest::FindValue { key: target },
                        _ => DhtRequest::FindNode { target },
                    };
                    let purpose = Purpose::Lookup { query: id, path };
                    return Some(self.send(now, Some(&node), None, purpose, request));
                }
                if all_done {
                    let merged = self.merge(id);
                    self.lookup_done(now, id, merged);
                    return self.drive_again(now, id);
                }
                None
            }
            Phase::Storing {
                to_send, pending, ..
            } => {
                if let Some(node) = to_send.pop_front() {
                    *pending += 1;
                    let Kind::PutValue { value, ttl } = &q.kind else {
                        return None;
                    };
                    let request = DhtRequest::Store {
                        key: target,
                        value: value.clone(),
                        ttl: *ttl,
                    };
                    let purpose = Purpose::Store { query: id };
                    return Some(self.send(now, Some(&node), None, purpose, request));
                }
                if *pending == 0 {
                    self.finish(now, id, Vec::new());
                }
                None
            }
        }
    }

    /// After a phase change: drive the query once more if it is still running.
    fn drive_again(&mut self, now: Timestamp, id: QueryId) -> Option<Action> {
        if self.queries.contains_key(&id) {
            self.drive(now, id)
        } else {
            None
        }
    }

    /// The k closest nodes over all paths of query `id`, at most 2 per subnet.
    fn merge(&mut self, id: QueryId) -> Vec<NodeInfo> {
        let Some(q) = self.queries.get_mut(&id) else {
            return Vec::new();
        };
        let Phase::Lookup { results, .. } = &mut q.phase else {
            return Vec::new();
        };
        let mut all: Vec<NodeInfo> = Vec::new();
        for result in results.iter_mut().flatten() {
            for node in result.closest.drain(..) {
                if !all.iter().any(|n| n.peer_id() == node.peer_id()) {
                    all.push(node);
                }
            }
        }
        let target = q.target;
        all.sort_by_key(|n| target.distance(&n.key()));
        take_diverse(
            &all,
            self.config.lookup.k,
            self.config.lookup.max_per_subnet_result,
        )
    }

    fn lookup_done(&mut self, now: Timestamp, id: QueryId, closest: Vec<NodeInfo>) {
        let Some(q) = self.queries.get_mut(&id) else {
            return;
        };
        match q.kind {
            Kind::PutValue { .. } => {
                q.phase = Phase::Storing {
                    to_send: closest.into(),
                    pending: 0,
                    stored: 0,
                    refused: 0,
                    failed: 0,
                };
                q.dirty = true;
            }
            Kind::Bootstrap => {
                self.finish(now, id, closest);
                self.refresh_far_buckets(now);
            }
            Kind::FindNode | Kind::GetValue | Kind::Refresh => self.finish(now, id, closest),
        }
    }

    /// Ends query `id`, queueing its result if a command started it.
    fn finish(&mut self, now: Timestamp, id: QueryId, closest: Vec<NodeInfo>) {
        let Some(q) = self.queries.remove(&id) else {
            return;
        };
        if !q.reported {
            return;
        }
        let result = match (&q.kind, q.phase) {
            (Kind::FindNode | Kind::Refresh, _) => QueryResult::FindNode { closest },
            (Kind::GetValue, _) => QueryResult::GetValue {
                values: q.values.into_values().collect(),
                closest,
            },
            (
                Kind::PutValue { .. },
                Phase::Storing {
                    stored,
                    refused,
                    failed,
                    ..
                },
            ) => QueryResult::PutValue {
                stored,
                refused,
                failed,
            },
            (Kind::PutValue { .. }, _) => QueryResult::PutValue {
                stored: 0,
                refused: 0,
                failed: 0,
            },
            (Kind::Bootstrap, _) => QueryResult::Bootstrap {
                table_len: self.table.len(),
            },
        };
        let stats = QueryStats {
            elapsed: now.saturating_duration_since(q.started),
            ..q.stats
        };
        self.actions
            .push_back(Action::QueryFinished { id, result, stats });
    }

    /// Kademlia's join: refresh every bucket from our closest neighbour's outwards.
    fn refresh_far_buckets(&mut self, now: Timestamp) {
        let Some(nearest) = self.table.occupied_buckets().next() else {
            return;
        };
        for bucket in (nearest + 1)..KEY_BITS {
            if !self.start_refresh(now, bucket) {
                break;
            }
        }
    }

    /// Starts a silent lookup of a random key in `bucket`, leaving half the query slots to
    /// commands. Returns false when no slot is free.
    fn start_refresh(&mut self, now: Timestamp, bucket: usize) -> bool {
        if self.queries.len() >= self.config.max_queries / 2 {
            return false;
        }
        let target = self.random_key_in_bucket(bucket);
        self.start(now, Kind::Refresh, target, None, false).is_ok()
    }

    /// A random key whose distance from ours has its highest set bit at `bucket`.
    fn random_key_in_bucket(&mut self, bucket: usize) -> Key {
        let mut d = self.rng.bytes32();
        let byte = (KEY_BITS - 1 - bucket) / 8;
        let bit = bucket % 8;
        for b in d.iter_mut().take(byte) {
            *b = 0;
        }
        if let Some(b) = d.get_mut(byte) {
            let low = u8::try_from((1u16 << bit) - 1).unwrap_or(u8::MAX);
            *b = (*b & low) | (1u8 << bit);
        }
        self.local_key().at_distance(&Distance::from_bytes(d))
    }

    fn republish_period(&self, ttl: Duration) -> Duration {
        self.config
            .republish_interval
            .min(ttl / 2)
            .max(Duration::from_secs(1))
    }

    /// The first tick of the maintenance schedule after `now` (at least the next one).
    fn tick_after(&self, now: Timestamp) -> Timestamp {
        let interval = self.config.maintenance_interval.as_millis().max(1);
        let interval = u64::try_from(interval).unwrap_or(u64::MAX);
        let from = self.next_maintenance.as_millis();
        let passed = now.as_millis().saturating_sub(from) / interval;
        Timestamp::from_millis(
            from.saturating_add(passed.saturating_add(1).saturating_mul(interval)),
        )
    }

    /// The first tick of the maintenance schedule at which a pass may have work, or `None`
    /// if none can until new input: the first pass, or the first tick at or after
    /// [`maintenance_due`](Self::maintenance_due).
    fn maintenance_tick(&self) -> Option<Timestamp> {
        if !self.maintained {
            return Some(self.next_maintenance);
        }
        let due = self.maintenance_due()?;
        if due <= self.next_maintenance {
            return Some(self.next_maintenance);
        }
        let last_idle = Timestamp::from_millis(due.as_millis().saturating_sub(1));
        Some(self.tick_after(last_idle))
    }

    /// A time at or before which a maintenance pass first has work ([`maintain`]'s every
    /// step, in order): a table ping to expire, a stored value to expire, an own value to
    /// republish, a re-bootstrap, a bucket refresh. `None`: none until new input (which
    /// the driver follows with `poll_timeout`). A lower bound is enough: a pass with
    /// nothing to do changes nothing.
    ///
    /// [`maintain`]: Self::maintain
    fn maintenance_due(&self) -> Option<Timestamp> {
        let publish = self.own_values.values().map(|v| v.next_publish).min();
        let rebootstrap = (self.table.len() < self.config.lookup.k
            && !self.seeds.is_empty()
            && self.queries.len() < self.config.max_queries / 2
            && !self
                .queries
                .values()
                .any(|q| matches!(q.kind, Kind::Bootstrap)))
        .then_some(self.next_rebootstrap);
        let refresh = self.table.occupied_buckets().next().map(|nearest| {
            match self.refresh_check {
                Some((from, due)) if nearest >= from => due,
                // A nearer bucket since the last scan: scan on the next tick.
                _ => Timestamp::ZERO,
            }
        });
        [
            self.table.poll_timeout(),
            self.store_due,
            publish,
            rebootstrap,
            refresh,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn maintain(&mut self, now: Timestamp) {
        self.next_maintenance = now.saturating_add(self.config.maintenance_interval);
        self.maintained = true;
        self.table.handle_timeout(now);
        if self.store.next_expiry().is_some_and(|t| t <= now) {
            self.store.expire(now);
        }
        self.store_due = self.store.next_expiry();
        let due: Vec<Key> = self
            .own_values
            .iter()
            .filter(|(_, v)| v.next_publish <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            if self.queries.len() >= self.config.max_queries / 2 {
                break;
            }
            let Some(own) = self.own_values.get(&key) else {
                continue;
            };
            let (value, ttl) = (own.value.clone(), own.ttl);
            let period = self.republish_period(ttl);
            let kind = Kind::PutValue { value, ttl };
            if self.start(now, kind, key, None, false).is_ok()
                && let Some(own) = self.own_values.get_mut(&key)
            {
                own.next_publish = now.saturating_add(period);
            }
        }
        if self.table.len() < self.config.lookup.k
            && !self.seeds.is_empty()
            && now >= self.next_rebootstrap
            && !self
                .queries
                .values()
                .any(|q| matches!(q.kind, Kind::Bootstrap))
            && self.queries.len() < self.config.max_queries / 2
        {
            self.next_rebootstrap = now.saturating_add(self.config.rebootstrap_interval);
            let phase = Phase::Seeding {
                to_send: self.seeds.iter().copied().collect(),
                pending: 0,
                learned: Vec::new(),
            };
            let own = Key::from(self.local);
            let _ = self.start(now, Kind::Bootstrap, own, Some(phase), false);
        }
        if self.table.is_empty() {
            return;
        }
        let Some(nearest) = self.table.occupied_buckets().next() else {
            return;
        };
        // Nothing can be stale before the time found by the last scan, as long as no
        // nearer bucket joined the scan since (refreshes only move times forward).
        if self
            .refresh_check
            .is_some_and(|(from, due)| nearest >= from && now < due)
        {
            return;
        }
        let mut started = 0;
        for bucket in nearest..KEY_BITS {
            if started >= self.config.max_refreshes_per_pass {
                break;
            }
            let stale = self
                .last_refresh
                .get(bucket)
                .is_some_and(|t| now.saturating_duration_since(*t) >= self.config.refresh_interval);
            if stale {
                if !self.start_refresh(now, bucket) {
                    break;
                }
                started += 1;
            }
        }
        let due = self
            .last_refresh
            .get(nearest..)
            .unwrap_or(&[])
            .iter()
            .map(|t| t.saturating_add(self.config.refresh_interval))
            .min();
        self.refresh_check = due.map(|due| (nearest, due));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_keys_land_in_their_bucket() {
        let mut core = DhtCore::new(PeerId::from_bytes([0x5a; 32]), DhtConfig::default(), 3);
        for bucket in [0, 1, 7, 8, 9, 100, 254, 255] {
            for _ in 0..20 {
                let key = core.random_key_in_bucket(bucket);
                assert_eq!(core.local_key().distance(&key).bucket_index(), Some(bucket));
            }
        }
    }

    #[test]
    fn an_idle_core_sleeps_and_wakes_on_the_maintenance_tick_its_work_is_due() {
        let mut core = DhtCore::new(PeerId::from_bytes([0x5a; 32]), DhtConfig::default(), 3);
        let at = |ms| Timestamp::from_millis(ms);
        // The first pass runs at once and fixes the schedule: ticks at 1 s + n × 10 s.
        assert_eq!(core.poll_timeout(), Some(at(0)));
        assert!(core.poll(at(1_000)).is_none());
        // Nothing can become due without new input: no wake every interval.
        assert_eq!(core.poll_timeout(), None);
        assert!(core.poll(at(35_000)).is_none());
        assert_eq!(core.poll_timeout(), None);
        // A value stored at 40 s for 25 s expires at 65 s: the pass of the 71 s tick drops
        // it, as a pass every 10 s would have.
        let request = DhtRequest::Store {
            key: Key::from_bytes([7; 32]),
            value: vec![1, 2, 3],
            ttl: Duration::from_secs(25),
        };
        let from = PeerId::from_bytes([0x11; 32]);
        let addr = SocketAddr::from(([10, 0, 0, 1], 4000));
        assert_eq!(
            core.handle_request(at(40_000), from, addr, request),
            Reply::Stored
        );
        // (The storer became a candidate: its validation ping goes unanswered.)
        assert!(matches!(
            core.poll(at(40_000)),
            Some(Action::SendRequest { .. })
        ));
        assert!(core.poll(at(40_000)).is_none());
        assert_eq!(core.poll_timeout(), Some(at(45_000)));
        core.handle_timeout(at(45_000));
        assert!(core.poll(at(45_000)).is_none());
        assert_eq!(core.poll_timeout(), Some(at(71_000)));
        assert!(core.poll(at(70_999)).is_none());
        assert_eq!(core.store().len(), 1);
        assert!(core.poll(at(71_000)).is_none());
        assert_eq!(core.store().len(), 0);
        assert_eq!(core.poll_timeout(), None);
    }
}
