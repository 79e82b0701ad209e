//! The iterative Kademlia FIND_NODE as a sans-IO state machine.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::time::Duration;

use blyan_crypto::PeerId;

use crate::distance::{Distance, Key};
use crate::node::{NodeInfo, Subnet, SubnetCounts};
use crate::time::Timestamp;

/// Settings of a [`Lookup`]; `Default` gives the documented values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupConfig {
    /// Requests in flight at once. Kademlia's alpha = 3.
    pub alpha: usize,
    /// Size of the result: the k closest nodes that answered. 20, as the routing table.
    pub k: usize,
    /// How long a peer may take to answer before it stops counting against alpha. Its late
    /// answer is still used. 2 s: several round trips on a slow intercontinental link.
    pub request_timeout: Duration,
    /// Most candidates remembered; the farthest are forgotten first. 10 × k: room for every
    /// node of the first responses, bounded whatever the peers send.
    pub max_candidates: usize,
    /// Nodes taken from one response (the closest first): 30, what a [`DhtCore`](crate::DhtCore)
    /// answers (k plus room for entries the responder does not know are dead yet); more is
    /// ignored, not stored.
    pub max_nodes_per_response: usize,
    /// Nodes of one /24 (IPv6 /48) among the k closest the lookup waits for and returns.
    /// 2, as a routing-table bucket.
    pub max_per_subnet_result: usize,
    /// Candidates of one /24 (IPv6 /48) remembered at all, so one operator cannot crowd
    /// honest nodes out of the candidate set. 8.
    pub max_per_subnet_candidates: usize,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self {
            alpha: 3,
            k: 20,
            request_timeout: Duration::from_secs(2),
            max_candidates: 200,
            max_nodes_per_response: 30,
            max_per_subnet_result: 2,
            max_per_subnet_candidates: 8,
        }
    }
}

/// What the driver should do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LookupAction {
    /// Send FIND_NODE(target) to `node`; report with [`Lookup::on_response`] or
    /// [`Lookup::on_failure`] under its [`peer_id`](NodeInfo::peer_id).
    SendFindNode {
        /// The node to ask, with its addresses (primary first).
        node: NodeInfo,
    },
    /// Nothing to send: wait for a response, or until `until` (then poll again) if set.
    Wait {
        /// The earliest request deadline, if any request is in flight.
        until: Option<Timestamp>,
    },
    /// The lookup is over; further polls return the same result.
    Done(LookupResult),
}

/// The outcome of a lookup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupResult {
    /// Up to k nodes that answered, closest to the target first, at most
    /// `max_per_subnet_result` per subnet.
    pub closest: Vec<NodeInfo>,
    /// Counters for metrics and tests.
    pub stats: LookupStats,
}

/// Counters of one lookup.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LookupStats {
    /// FIND_NODE requests asked for.
    pub requests: u32,
    /// Responses used (late ones included).
    pub responses: u32,
    /// Requests that passed their deadline.
    pub timeouts: u32,
    /// Requests reported failed.
    pub failures: u32,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    NotContacted,
    Waiting {
        deadline: Timestamp,
    },
    /// Timed out: no longer counted against alpha or waited for; a late answer still counts.
    Unresponsive,
    Succeeded,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    /// From the target.
    distance: Distance,
    node: NodeInfo,
    state: State,
}

/// An iterative FIND_NODE towards a target key.
///
/// Poll it for actions until it is done; feed it responses, failures and the time. It keeps
/// at most alpha requests in flight, skips itself and duplicates, drops the farthest
/// candidates beyond its bound, and ends when the k closest candidates it knows (at most
/// `max_per_subnet_result` per subnet, unresponsive and failed ones left out) have all
/// answered, or when nobody is left to ask.
#[derive(Clone, Debug)]
pub struct Lookup {
    target: Key,
    local: PeerId,
    config: LookupConfig,
    /// Closest first, at most `max_candidates`, distinct distances (so distinct nodes). A
    /// sorted ring: the window is its first entries, finding a node is a binary search,
    /// an insertion moves the shorter side (newly learned nodes are mostly near the
    /// front), and dropping the farthest is O(1).
    candidates: VecDeque<Candidate>,
    /// Deadline and distance of every candidate in `State::Waiting` (at most alpha, plus
    /// any a withdrawn alpha slot let through): expiry and the next deadline look here
    /// instead of scanning every candidate on each poll.
    waiting: Vec<(Timestamp, Distance)>,
    /// Bounded by `max_candidates`, so a plain multiplicative hash is safe here (a remote
    /// choosing colliding subnets costs at most `max_candidates` probes per insert).
    subnet_counts: HashMap<Subnet, usize, BuildHasherDefault<SubnetHasher>>,
    in_flight: usize,
    stats: LookupStats,
    done: Option<LookupResult>,
}

impl Lookup {
    /// A lookup of `target` by the node `local`, seeded with `seeds` (normally the routing
    /// table's closest peers to the target).
    pub fn new(
        target: Key,
        local: PeerId,
        seeds: impl IntoIterator<Item = NodeInfo>,
        config: LookupConfig,
    ) -> Self {
        let mut lookup = Self {
            target,
            local,
            candidates: VecDeque::with_capacity(config.max_candidates.min(256)),
            waiting: Vec::new(),
            config,
            subnet_counts: HashMap::default(),
            in_flight: 0,
            stats: LookupStats::default(),
            done: None,
        };
        for seed in seeds {
            lookup.add_candidate(seed);
        }
        lookup
    }

    /// The key looked up.
    pub fn target(&self) -> Key {
        self.target
    }

    /// Requests in flight that still count against alpha.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Counters so far.
    pub fn stats(&self) -> LookupStats {
        self.stats
    }

    /// Whether the lookup has ended.
    pub fn is_done(&self) -> bool {
        self.done.is_some()
    }

    /// The next thing to do at `now`. Call until it returns `Wait` or `Done`.
    pub fn poll(&mut self, now: Timestamp) -> LookupAction {
        if let Some(result) = &self.done {
            return LookupAction::Done(result.clone());
        }
        self.expire(now);

        let mut window_subnets = SubnetCounts::new();
        let mut considered = 0;
        let mut all_succeeded = true;
        let mut to_send = None;
        for (at, candidate) in self.candidates.iter().enumerate() {
            if considered == self.config.k {
                break;
            }
            if matches!(candidate.state, State::Unresponsive | State::Failed) {
                continue;
            }
            if !window_subnets.admit(candidate.node.subnet(), self.config.max_per_subnet_result) {
                continue;
            }
            considered += 1;
            match candidate.state {
                State::Succeeded => {}
                State::Waiting { .. } => all_succeeded = false,
                State::NotContacted => {
                    all_succeeded = false;
                    if to_send.is_none() && self.in_flight < self.config.alpha {
                        to_send = Some(at);
                    }
                }
                State::Unresponsive | State::Failed => {}
            }
        }

        if let Some(at) = to_send
            && let Some(candidate) = self.candidates.get_mut(at)
        {
            let deadline = now.saturating_add(self.config.request_timeout);
            candidate.state = State::Waiting { deadline };
            self.waiting.push((deadline, candidate.distance));
            self.in_flight += 1;
            self.stats.requests += 1;
            return LookupAction::SendFindNode {
                node: candidate.node.clone(),
            };
        }
        if all_succeeded || self.in_flight == 0 {
            // Either the k closest all answered, or nothing is in flight and nothing in the
            // window can be sent (which only happens when the window holds no candidate
            // left to ask): the lookup cannot make progress.
            let result = self.finish();
            return LookupAction::Done(result);
        }
        LookupAction::Wait {
            until: self.next_deadline(),
        }
    }

    /// `peer` answered FIND_NODE with `closer` nodes. Answers from peers we did not ask are
    /// ignored; late answers (after the timeout) are used.
    pub fn on_response(&mut self, now: Timestamp, peer: &PeerId, closer: Vec<NodeInfo>) {
        let _ = now;
        if !self.settle(peer, State::Succeeded) {
            return;
        }
        self.stats.responses += 1;
        let mut closer = closer;
        // Answers come sorted from honest peers; sort only what is not.
        if !closer.is_sorted_by_key(|n| self.target.distance(&n.key())) {
            closer.sort_by_key(|n| self.target.distance(&n.key()));
        }
        for node in closer.into_iter().take(self.config.max_nodes_per_response) {
            if !self.add_candidate(node) {
                // Full, and this node is no closer than the farthest kept: nor is any
                // after it (they are sorted), so none of them would be taken.
                break;
            }
        }
    }

    /// The request to `peer` failed (connection refused, bad response, ...).
    pub fn on_failure(&mut self, peer: &PeerId) {
        if self.settle(peer, State::Failed) {
            self.stats.failures += 1;
        }
    }

    /// Takes back a request [`poll`](Self::poll) just asked for, without sending it: the
    /// peer is never asked by this lookup (a disjoint-path lookup gives each peer to one
    /// path only). It neither counts as a request nor as a failure.
    pub fn withdraw(&mut self, peer: &PeerId) {
        let distance = self.target.distance(&Key::from(peer));
        if self.done.is_some() {
            return;
        }
        if let Some(candidate) = find_in(&mut self.candidates, &distance) {
            match candidate.state {
                State::Waiting { .. } => {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.stats.requests = self.stats.requests.saturating_sub(1);
                    self.waiting.retain(|(_, d)| *d != distance);
                }
                State::NotContacted => {}
                State::Unresponsive | State::Succeeded | State::Failed => return,
            }
            candidate.state = State::Failed;
        }
    }

    /// Moves an asked peer (waiting, or timed out) to its final `state`, freeing its alpha
    /// slot if it still held one. False if the lookup is over or `peer` was not asked.
    fn settle(&mut self, peer: &PeerId, state: State) -> bool {
        if self.done.is_some() {
            return false;
        }
        let distance = self.target.distance(&Key::from(peer));
        let Some(candidate) = find_in(&mut self.candidates, &distance) else {
            return false;
        };
        match candidate.state {
            State::Waiting { .. } => {
                candidate.state = state;
                self.in_flight = self.in_flight.saturating_sub(1);
                self.waiting.retain(|(_, d)| *d != distance);
                return true;
            }
            State::Unresponsive => {}
            State::NotContacted | State::Succeeded | State::Failed => return false,
        }
        candidate.state = state;
        true
    }

    /// Takes `node` as a candidate if it is new, not ours, and fits the bounds. Returns
    /// false only when the set is full of candidates at least as close (so that a caller
    /// adding nodes closest first may stop).
    fn add_candidate(&mut self, node: NodeInfo) -> bool {
        let peer = node.peer_id();
        if peer == self.local {
            return true;
        }
        let distance = self.target.distance(&node.key());
        let full = self.candidates.len() >= self.config.max_candidates;
        if full
            && self
                .candidates
                .back()
                .is_none_or(|farthest| farthest.distance <= distance)
        {
            return false;
        }
        let Err(at) = self
            .candidates
            .binary_search_by(|c| c.distance.cmp(&distance))
        else {
            return true;
        };
        let subnet = node.subnet();
        let count = self.subnet_counts.get(&subnet).copied().unwrap_or(0);
        if count >= self.config.max_per_subnet_candidates {
            return true;
        }
        if full {
            // The farthest is farther than the newcomer (checked above), so `at` stays put.
            if let Some(dropped) = self.candidates.pop_back() {
                if matches!(dropped.state, State::Waiting { .. }) {
                    self.in_flight = self.in_flight.saturating_sub(1);
                    self.waiting.retain(|(_, d)| *d != dropped.distance);
                }
                self.forget_subnet(dropped.node.subnet());
            }
        }
        *self.subnet_counts.entry(subnet).or_insert(0) += 1;
        self.candidates.insert(
            at.min(self.candidates.len()),
            Candidate {
                distance,
                node,
                state: State::NotContacted,
            },
        );
        true
    }

    fn forget_subnet(&mut self, subnet: Subnet) {
        if let Some(count) = self.subnet_counts.get_mut(&subnet) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                self.subnet_counts.remove(&subnet);
            }
        }
    }

    fn expire(&mut self, now: Timestamp) {
        if self.waiting.iter().all(|(deadline, _)| *deadline > now) {
            return;
        }
        let mut expired = std::mem::take(&mut self.waiting);
        expired.retain(|(deadline, distance)| {
            if *deadline > now {
                return true;
            }
            if let Some(candidate) = find_in(&mut self.candidates, distance)
                && matches!(candidate.state, State::Waiting { .. })
            {
                candidate.state = State::Unresponsive;
                self.in_flight = self.in_flight.saturating_sub(1);
                self.stats.timeouts += 1;
            }
            false
        });
        self.waiting = expired;
    }

    fn next_deadline(&self) -> Option<Timestamp> {
        self.waiting.iter().map(|(deadline, _)| *deadline).min()
    }

    fn finish(&mut self) -> LookupResult {
        let succeeded = self
            .candidates
            .iter()
            .filter(|c| c.state == State::Succeeded)
            .map(|c| &c.node);
        let result = LookupResult {
            closest: crate::node::take_diverse(
                succeeded,
                self.config.k,
                self.config.max_per_subnet_result,
            ),
            stats: self.stats,
        };
        self.done = Some(result.clone());
        result
    }
}

/// The candidate at `distance` in the sorted `candidates`, if any. A free function so that
/// the lookup's other fields stay borrowable.
fn find_in<'a>(
    candidates: &'a mut VecDeque<Candidate>,
    distance: &Distance,
) -> Option<&'a mut Candidate> {
    let at = candidates
        .binary_search_by(|c| c.distance.cmp(distance))
        .ok()?;
    candidates.get_mut(at)
}

/// FNV-1a over the few bytes of a [`Subnet`]: fast, and enough for a bounded map.
#[derive(Default)]
struct SubnetHasher(u64);

impl Hasher for SubnetHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut h = if self.0 == 0 {
            0xcbf2_9ce4_8422_2325
        } else {
            self.0
        };
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = h;
    }
}
