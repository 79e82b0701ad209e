//! One shard of a simulation: the cores of its nodes, their scheduled events, and the
//! traces of the lookups they started. A shard handles its nodes' events on its own; what
//! one of its nodes sends to a node of another shard leaves through its outbox.

use std::collections::VecDeque;
use std::time::Duration;

use blyan_crypto::PeerId;

use super::world::{FastMap, World};
use super::{Latency, LookupSample};
use crate::agenda::Agenda;
use crate::dht_core::{Action, Contact, DhtCore, QueryId, QueryResult, QueryStats, RpcId};
use crate::distance::Key;
use crate::node::NodeInfo;
use crate::rng::SplitMix64;
use crate::rpc::{DhtRequest, Reply, Response};
use crate::time::Timestamp;

/// What travels between nodes, and a node's own timer.
pub(super) enum Event {
    /// Node `from` asks node `to`.
    Request {
        from: usize,
        to: usize,
        rpc: RpcId,
        request: DhtRequest,
    },
    /// The answer to request `rpc` of node `to`.
    Answer {
        to: usize,
        rpc: RpcId,
        response: Response,
    },
    /// Node `i`'s timer.
    Wake(usize),
    /// Node `from` starts a measured lookup of `target`.
    Lookup { from: usize, target: Key },
}

impl Event {
    /// The node that handles the event.
    fn node(&self) -> usize {
        match self {
            Event::Request { to, .. } | Event::Answer { to, .. } => *to,
            Event::Wake(i) | Event::Lookup { from: i, .. } => *i,
        }
    }
}

/// How messages travel: the same for every shard.
#[derive(Clone, Copy, Debug)]
pub(super) struct Links {
    pub(super) latency: Latency,
    pub(super) loss: f64,
    /// The lookups' k, for the true closest nodes a lookup is checked against.
    pub(super) k: usize,
}

/// What is known of a measured lookup while it runs.
pub(super) struct Trace {
    target: Key,
    started: Timestamp,
    rpcs: u32,
    rounds: u32,
    depth: FastMap<PeerId, u32>,
}

struct ShardNode {
    core: DhtCore,
    wake: Option<Timestamp>,
}

/// A lookup that ended: when, from which node, and its figures.
pub(super) type Sample = (Timestamp, usize, LookupSample);

/// What a shard sent another in one millisecond: that millisecond, and the events with
/// their due times, in the order they were sent.
pub(super) type Batch = (u64, Vec<(u64, Event)>);

/// A finished query that nobody measured, kept for `take_outcome`.
pub(super) type Finished = (usize, QueryId, QueryResult, QueryStats);

/// Node `i` belongs to shard `i % count`, at position `i / count` of its node list.
pub(super) struct Shard {
    index: usize,
    count: usize,
    nodes: Vec<ShardNode>,
    /// The time of the event being handled.
    now: Timestamp,
    /// Scheduled events by due millisecond, as their slots in `payloads` (small, so the
    /// agenda's queues stay small).
    events: Agenda<u32>,
    /// Scheduled events by slot; `free` lists the empty slots for reuse.
    payloads: Vec<Option<Event>>,
    free: Vec<u32>,
    /// Latency and loss draws of this shard's messages.
    rng: SplitMix64,
    links: Links,
    /// Requests this shard's nodes sent.
    pub(super) rpcs: u64,
    pub(super) traces: FastMap<(usize, QueryId), Trace>,
    rpc_rounds: FastMap<(usize, RpcId), (QueryId, u32)>,
    pub(super) finished: Vec<Finished>,
    pub(super) samples: Vec<Sample>,
    /// Events for other shards' nodes, with their due time, since the last
    /// [`close_batch`](Self::close_batch).
    outbox: Vec<(u64, Event)>,
    /// Batches from the other shard not yet on the agenda, oldest first.
    inbox: VecDeque<Batch>,
}

impl Shard {
    /// Shard `index` of `count`, drawing from a generator seeded with `seed`.
    pub(super) fn new(index: usize, count: usize, seed: u64, links: Links) -> Self {
        Self {
            index,
            count: count.max(1),
            nodes: Vec::new(),
            now: Timestamp::ZERO,
            events: Agenda::new(),
            payloads: Vec::new(),
            free: Vec::new(),
            rng: SplitMix64::new(seed),
            links,
            rpcs: 0,
            traces: FastMap::default(),
            rpc_rounds: FastMap::default(),
            finished: Vec::new(),
            samples: Vec::new(),
            outbox: Vec::new(),
            inbox: VecDeque::new(),
        }
    }

    /// Whether node `i` lives in this shard.
    fn owns(&self, i: usize) -> bool {
        i % self.count == self.index
    }

    fn node(&self, i: usize) -> Option<&ShardNode> {
        if !self.owns(i) {
            return None;
        }
        self.nodes.get(i / self.count)
    }

    fn node_mut(&mut self, i: usize) -> Option<&mut ShardNode> {
        if !self.owns(i) {
            return None;
        }
        self.nodes.get_mut(i / self.count)
    }

    /// Node `i`'s core, if it lives here.
    pub(super) fn core(&self, i: usize) -> Option<&DhtCore> {
        self.node(i).map(|n| &n.core)
    }

    /// Node `i`'s core, if it lives here.
    pub(super) fn core_mut(&mut self, i: usize) -> Option<&mut DhtCore> {
        self.node_mut(i).map(|n| &mut n.core)
    }

    /// Takes in node `i`, the next of this shard's nodes.
    pub(super) fn adopt(&mut self, i: usize, core: DhtCore) {
        if self.owns(i) && i / self.count == self.nodes.len() {
            self.nodes.push(ShardNode { core, wake: None });
        }
    }

    /// Sets the present (between runs, for serial work).
    pub(super) fn set_now(&mut self, now: Timestamp) {
        self.now = self.now.max(now);
    }

    /// Starts tracing lookup `id` of node `from`, towards `target`.
    pub(super) fn trace(&mut self, from: usize, id: QueryId, target: Key) {
        self.traces.insert(
            (from, id),
            Trace {
                target,
                started: self.now,
                rpcs: 0,
                rounds: 0,
                // A lookup hears of several hundred nodes; room for them from the start.
                depth: FastMap::with_capacity_and_hasher(1024, Default::default()),
            },
        );
    }

    /// Plans a measured lookup of `target` by node `from` (one of this shard's) at `at`
    /// (ms): it starts then if the node is still alive.
    pub(super) fn plan_lookup(&mut self, at: u64, from: usize, target: Key) {
        if self.owns(from) {
            self.schedule(at, Event::Lookup { from, target });
        }
    }

    /// Forgets every trace (lookups whose node left never end).
    pub(super) fn clear_traces(&mut self) {
        self.traces.clear();
        self.rpc_rounds.clear();
    }

    /// Handles every event due at or before `until` (ms), in order.
    pub(super) fn run(&mut self, world: &World, until: u64) {
        while let Some((at, slot)) = self.events.pop_until(until) {
            self.now = self.now.max(Timestamp::from_millis(at));
            let event = self.payloads.get_mut(slot as usize).and_then(Option::take);
            self.free.push(slot);
            if let Some(event) = event {
                self.dispatch(world, event);
            }
        }
    }

    /// Handles millisecond `ms`: first the other shard's events sent at or before
    /// `ms - lookahead` join the agenda, in the order they were sent, then every event due
    /// at or before `ms` runs.
    ///
    /// An event sent at `t` is due at `t + lookahead` or later, so it is on the agenda
    /// before it is due; and the moment it joins depends only on when it was sent, never
    /// on how far the other shard has got, which keeps a run the same on one thread or two.
    pub(super) fn step(&mut self, world: &World, ms: u64, lookahead: u64) {
        if let Some(through) = ms.checked_sub(lookahead.max(1)) {
            while self.inbox.front().is_some_and(|(sent, _)| *sent <= through) {
                if let Some((_, events)) = self.inbox.pop_front() {
                    for (at, event) in events {
                        self.schedule(at, event);
                    }
                }
            }
        }
        self.run(world, ms);
    }

    /// What this shard sent the other since the last call, as sent at `ms`; `None` if
    /// nothing.
    pub(super) fn close_batch(&mut self, ms: u64) -> Option<Batch> {
        if self.outbox.is_empty() {
            return None;
        }
        Some((ms, std::mem::take(&mut self.outbox)))
    }

    /// Takes in a batch the other shard sent; it joins the agenda in
    /// [`step`](Self::step).
    pub(super) fn receive(&mut self, batch: Batch) {
        self.inbox.push_back(batch);
    }

    fn schedule(&mut self, at: u64, event: Event) {
        if !self.owns(event.node()) {
            self.outbox.push((at, event));
            return;
        }
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
        self.events.push(at, slot);
    }

    fn latency(&mut self) -> Duration {
        match self.links.latency {
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
        self.links.loss > 0.0
            && ((self.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < self.links.loss
    }

    fn dispatch(&mut self, world: &World, event: Event) {
        let now = self.now;
        match event {
            Event::Request {
                from,
                to,
                rpc,
                request,
            } => {
                let Some(sender) = world.info(from) else {
                    return;
                };
                let (from_peer, from_addr) = (sender.peer_id(), sender.primary_addr());
                let Some(responder) = world.info(to) else {
                    return;
                };
                if !world.is_alive(to) {
                    return;
                }
                let Some(node) = self.node_mut(to) else {
                    return;
                };
                let candidates = node.core.candidate_count();
                let stores = matches!(request, DhtRequest::Store { .. });
                let reply = node.core.handle_request(now, from_peer, from_addr, request);
                let grew = node.core.candidate_count() > candidates;
                let response = Response {
                    responder: responder.clone(),
                    reply,
                };
                // Answering changes nothing to drive unless it made a candidate to ping,
                // or stored a value (whose expiry the next wake must then include).
                if stores || grew {
                    self.process(world, to);
                }
                if !self.lost() {
                    let at = now.saturating_add(self.latency());
                    self.schedule(
                        at.as_millis(),
                        Event::Answer {
                            to: from,
                            rpc,
                            response,
                        },
                    );
                }
            }
            Event::Answer { to, rpc, response } => {
                if !world.is_alive(to) {
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
                if let Some(node) = self.node_mut(to) {
                    node.core.on_response(now, rpc, response);
                }
                self.process(world, to);
            }
            Event::Wake(i) => {
                if !world.is_alive(i) {
                    return;
                }
                let Some(node) = self.node_mut(i) else {
                    return;
                };
                if node.wake == Some(now) {
                    node.wake = None;
                    node.core.handle_timeout(now);
                    self.process(world, i);
                }
            }
            Event::Lookup { from, target } => {
                if !world.is_alive(from) {
                    return;
                }
                let Some(id) = self
                    .node_mut(from)
                    .and_then(|node| node.core.find_node(now, target).ok())
                else {
                    return;
                };
                self.trace(from, id, target);
                self.process(world, from);
            }
        }
    }

    /// Drains node `i`'s actions and schedules its next wake.
    pub(super) fn process(&mut self, world: &World, i: usize) {
        let now = self.now;
        if !world.is_alive(i) {
            return;
        }
        loop {
            let Some(node) = self.node_mut(i) else {
                return;
            };
            let Some(action) = node.core.poll(now) else {
                break;
            };
            match action {
                Action::SendRequest {
                    rpc,
                    query,
                    to,
                    request,
                } => self.send(world, i, rpc, query, to, request),
                Action::QueryFinished { id, result, stats } => {
                    self.finished_query(world, i, id, result, stats);
                }
            }
        }
        let Some(node) = self.node_mut(i) else {
            return;
        };
        if let Some(at) = node.core.poll_timeout() {
            let at = at.max(now.saturating_add(Duration::from_millis(1)));
            if node.wake.is_none_or(|w| at < w || w < now) {
                node.wake = Some(at);
                self.schedule(at.as_millis(), Event::Wake(i));
            }
        }
    }

    fn send(
        &mut self,
        world: &World,
        from: usize,
        rpc: RpcId,
        query: Option<QueryId>,
        to: Contact,
        request: DhtRequest,
    ) {
        self.rpcs += 1;
        let target = world.find(to.peer, to.addrs.first());
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
            at.as_millis(),
            Event::Request {
                from,
                to,
                rpc,
                request,
            },
        );
    }

    fn finished_query(
        &mut self,
        world: &World,
        node: usize,
        id: QueryId,
        result: QueryResult,
        stats: QueryStats,
    ) {
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
        let found: Vec<PeerId> = closest.iter().map(NodeInfo::peer_id).collect();
        let truth = world.truth(&trace.target, self.links.k, node);
        let exact = found == truth;
        let overlap = truth.iter().filter(|p| found.contains(p)).count();
        let sample = LookupSample {
            rounds: trace.rounds,
            rpcs: trace.rpcs,
            exact,
            found: u32::try_from(overlap).unwrap_or(u32::MAX),
            latency: self.now.saturating_duration_since(trace.started),
        };
        self.samples.push((self.now, node, sample));
    }
}
