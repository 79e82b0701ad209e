//! One shard of a simulation: the cores of its nodes, their scheduled events, and the
//! traces of the lookups they started. A shard handles its nodes' events on its own; what
//! one of its nodes sends to a node of another shard leaves through its outbox.

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
}

impl Event {
    /// The node that handles the event.
    fn node(&self) -> usize {
        match self {
            Event::Request { to, .. } | Event::Answer { to, .. } => *to,
            Event::Wake(i) => *i,
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
    /// [`take_outbox`](Self::take_outbox).
    outbox: Vec<(u64, Event)>,
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

    /// Sets the present (between windows, for serial work).
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

    /// Events for other shards since the last call, with their due times.
    pub(super) fn take_outbox(&mut self) -> Vec<(u64, Event)> {
        std::mem::take(&mut self.outbox)
    }

    /// Moves events from another shard's outbox onto this shard's agenda, in their order.
    pub(super) fn deliver(&mut self, events: impl IntoIterator<Item = (u64, Event)>) {
        for (at, event) in events {
            self.schedule(at, event);
        }
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
