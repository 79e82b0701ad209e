//! `DhtCore` driven by hand against a scripted network whose nodes answer from a global view
//! (an oracle): bootstrap, liveness pings, candidates, refresh, disjoint paths, persistence
//! and an eclipse attempt, all in simulated time.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use blyan_crypto::{KeyPair, PeerId};
use blyan_dht::{
    Action, DhtConfig, DhtCore, DhtRequest, Key, NodeInfo, NodeRecord, QueryId, QueryResult,
    RecordCache, Reply, Response, RpcId, Seed, Subnet, Timestamp, load_table, save_table,
};

/// A scripted network: every node answers FIND_NODE with the 30 closest live nodes of the
/// whole network (honest ones) or of the attacker's own ids (attackers); dead nodes never
/// answer.
struct Oracle {
    nodes: Vec<NodeInfo>,
    by_peer: HashMap<PeerId, usize>,
    by_addr: HashMap<SocketAddr, usize>,
    dead: HashSet<PeerId>,
    attackers: HashSet<PeerId>,
    /// Every request sent: (query, recipient, request).
    log: Vec<(Option<QueryId>, PeerId, DhtRequest)>,
}

impl Oracle {
    fn new(nodes: Vec<NodeInfo>) -> Self {
        let by_peer = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.peer_id(), i))
            .collect();
        let by_addr = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (n.primary_addr(), i))
            .collect();
        Self {
            nodes,
            by_peer,
            by_addr,
            dead: HashSet::new(),
            attackers: HashSet::new(),
            log: Vec::new(),
        }
    }

    fn closest(&self, target: &Key, honest: bool) -> Vec<NodeInfo> {
        let mut all: Vec<(blyan_dht::Distance, &NodeInfo)> = self
            .nodes
            .iter()
            .filter(|n| !self.dead.contains(&n.peer_id()))
            .filter(|n| honest != self.attackers.contains(&n.peer_id()))
            .map(|n| (target.distance(&n.key()), n))
            .collect();
        if all.len() > 30 {
            all.select_nth_unstable_by_key(29, |(d, _)| *d);
            all.truncate(30);
        }
        all.sort_unstable_by_key(|(d, _)| *d);
        all.into_iter().map(|(_, n)| n.clone()).collect()
    }

    fn answer(&self, to: &NodeInfo, request: &DhtRequest) -> Reply {
        let honest = !self.attackers.contains(&to.peer_id());
        match request {
            DhtRequest::Ping => Reply::Pong,
            DhtRequest::FindNode { target } => Reply::Nodes(self.closest(target, honest)),
            DhtRequest::FindValue { key } => Reply::Value {
                values: vec![],
                closer: self.closest(key, honest),
            },
            DhtRequest::Store { .. } => Reply::Stored,
        }
    }

    /// Drives `core` at `now` until it has nothing to send, answering at once. Returns the
    /// queries that finished.
    fn drain(&mut self, core: &mut DhtCore, now: Timestamp) -> Vec<(QueryId, QueryResult)> {
        let mut done = Vec::new();
        for _ in 0..100_000 {
            let Some(action) = core.poll(now) else {
                return done;
            };
            match action {
                Action::SendRequest {
                    rpc,
                    query,
                    to,
                    request,
                } => {
                    let index = to
                        .peer
                        .and_then(|p| self.by_peer.get(&p))
                        .or_else(|| to.addrs.first().and_then(|a| self.by_addr.get(a)))
                        .copied();
                    let Some(node) = index.and_then(|i| self.nodes.get(i)).cloned() else {
                        core.on_failure(now, rpc);
                        continue;
                    };
                    self.log.push((query, node.peer_id(), request.clone()));
                    if self.dead.contains(&node.peer_id()) {
                        core.on_failure(now, rpc);
                        continue;
                    }
                    let reply = self.answer(&node, &request);
                    respond(core, now, rpc, node, reply);
                }
                Action::QueryFinished { id, result, .. } => done.push((id, result)),
            }
        }
        panic!("the core never went idle");
    }
}

fn respond(core: &mut DhtCore, now: Timestamp, rpc: RpcId, responder: NodeInfo, reply: Reply) {
    core.on_response(now, rpc, Response { responder, reply });
}

fn id_from(i: u32, salt: u8) -> PeerId {
    let mut bytes = [salt; 32];
    let h = blyan_crypto::sha256(&[&i.to_be_bytes()[..], &[salt]].concat()).to_bytes();
    bytes.copy_from_slice(&h);
    PeerId::from_bytes(bytes)
}

/// `n` honest nodes, each in its own /24.
fn honest(n: u32) -> Vec<NodeInfo> {
    (0..n)
        .map(|i| {
            let ip = [10, (i >> 8) as u8, i as u8, 1];
            NodeInfo::new(id_from(i, 1), [SocketAddr::from((ip, 4000))]).unwrap()
        })
        .collect()
}

fn local() -> PeerId {
    id_from(999_999, 7)
}

fn seed_of(node: &NodeInfo) -> Seed {
    Seed {
        addr: node.primary_addr(),
        peer: None,
    }
}

fn finished_one(done: &[(QueryId, QueryResult)], id: QueryId) -> QueryResult {
    done.iter()
        .find(|(q, _)| *q == id)
        .map(|(_, r)| r.clone())
        .unwrap_or_else(|| panic!("query {id:?} did not finish: {done:?}"))
}

#[test]
fn bootstrap_from_one_seed_fills_the_table_and_lookups_are_exact() {
    let mut net = Oracle::new(honest(400));
    let mut core = DhtCore::new(local(), DhtConfig::default(), 1);
    let now = Timestamp::ZERO;
    let seed = seed_of(&net.nodes[0]);
    let id = core.bootstrap(now, [seed]).unwrap();
    let done = net.drain(&mut core, now);
    assert!(matches!(
        finished_one(&done, id),
        QueryResult::Bootstrap { table_len } if table_len >= 20
    ));
    // The bucket refreshes after the join fill the table further.
    assert!(core.table().len() >= 60, "table {}", core.table().len());
    let target = Key::for_value(b"somewhere");
    let id = core.find_node(now, target).unwrap();
    let done = net.drain(&mut core, now);
    let QueryResult::FindNode { closest } = finished_one(&done, id) else {
        panic!("not a FindNode result");
    };
    let truth: Vec<PeerId> = net
        .closest(&target, true)
        .iter()
        .take(20)
        .map(NodeInfo::peer_id)
        .collect();
    let found: Vec<PeerId> = closest.iter().map(NodeInfo::peer_id).collect();
    assert_eq!(found, truth);
    assert!(core.query_count() == 0 && core.outstanding_rpcs() == 0);
}

#[test]
fn inbound_requests_never_insert_but_make_candidates() {
    let net_nodes = honest(10);
    let mut net = Oracle::new(net_nodes.clone());
    let mut core = DhtCore::new(local(), DhtConfig::default(), 2);
    let now = Timestamp::ZERO;
    let stranger = &net_nodes[3];
    let reply = core.handle_request(
        now,
        stranger.peer_id(),
        stranger.primary_addr(),
        DhtRequest::FindNode {
            target: Key::from(stranger.peer_id()),
        },
    );
    assert_eq!(reply, Reply::Nodes(vec![]));
    assert!(core.table().get(&stranger.peer_id()).is_none());
    assert_eq!(core.candidate_count(), 1);
    // The candidate is pinged; only its answer puts it in the table.
    net.drain(&mut core, now);
    assert!(
        net.log
            .iter()
            .any(|(q, p, r)| q.is_none() && *p == stranger.peer_id() && *r == DhtRequest::Ping)
    );
    assert!(core.table().get(&stranger.peer_id()).is_some());

    // A candidate that never answers stays out.
    let silent = &net_nodes[4];
    net.dead.insert(silent.peer_id());
    core.handle_request(
        now,
        silent.peer_id(),
        silent.primary_addr(),
        DhtRequest::Ping,
    );
    net.drain(&mut core, now);
    assert!(core.table().get(&silent.peer_id()).is_none());
}

#[test]
fn a_full_bucket_pings_its_oldest_entry_before_replacing_it() {
    // Local id 0: every node with a top bit set lands in bucket 255.
    let me = PeerId::from_bytes([0; 32]);
    let nodes: Vec<NodeInfo> = (0..25u8)
        .map(|i| {
            let mut id = [i; 32];
            id[0] = 0x80 | i;
            NodeInfo::new(
                PeerId::from_bytes(id),
                [SocketAddr::from(([10, 1, i, 1], 1))],
            )
            .unwrap()
        })
        .collect();
    let mut core = DhtCore::new(me, DhtConfig::default(), 3);
    let now = Timestamp::ZERO;
    // Twenty nodes answer a request each and fill the bucket.
    for node in &nodes[..20] {
        core.add_candidates([node.clone()]);
    }
    let mut net = Oracle::new(nodes.clone());
    net.drain(&mut core, now);
    assert_eq!(core.table().bucket(255).len(), 20);
    let oldest = core.table().bucket(255)[0].node().peer_id();

    // A 21st answers: the oldest is pinged, the newcomer waits.
    net.dead.insert(oldest);
    let before = net.log.len();
    core.add_candidates([nodes[20].clone()]);
    net.drain(&mut core, now);
    let pings: Vec<&PeerId> = net.log[before..]
        .iter()
        .filter(|(_, _, r)| *r == DhtRequest::Ping)
        .map(|(_, p, _)| p)
        .collect();
    assert_eq!(pings, vec![&nodes[20].peer_id(), &oldest]);
    // The oldest did not answer: it is replaced by the newcomer.
    assert!(core.table().get(&oldest).is_none());
    assert!(core.table().get(&nodes[20].peer_id()).is_some());
    assert_eq!(core.table().bucket(255).len(), 20);
}

#[test]
fn stale_buckets_are_refreshed_on_schedule() {
    let mut net = Oracle::new(honest(200));
    let config = DhtConfig {
        refresh_interval: Duration::from_secs(300),
        ..DhtConfig::default()
    };
    let mut core = DhtCore::new(local(), config, 4);
    let t0 = Timestamp::ZERO;
    core.bootstrap(t0, [seed_of(&net.nodes[0])]).unwrap();
    net.drain(&mut core, t0);
    // Nothing is due before the interval.
    let before = net.log.len();
    let t1 = t0.saturating_add(Duration::from_secs(200));
    core.handle_timeout(t1);
    net.drain(&mut core, t1);
    assert_eq!(net.log.len(), before, "no refresh before the interval");
    // After it, maintenance looks up random keys in stale buckets, unasked.
    let t2 = t0.saturating_add(Duration::from_secs(310));
    assert!(core.poll_timeout().is_some_and(|t| t <= t2));
    core.handle_timeout(t2);
    let done = net.drain(&mut core, t2);
    assert!(done.is_empty(), "refreshes are not reported");
    let refreshes: HashSet<Key> = net.log[before..]
        .iter()
        .filter_map(|(q, _, r)| match (q, r) {
            (Some(_), DhtRequest::FindNode { target }) => Some(*target),
            _ => None,
        })
        .collect();
    let buckets: HashSet<usize> = refreshes
        .iter()
        .filter_map(|t| Key::from(local()).distance(t).bucket_index())
        .collect();
    assert_eq!(
        buckets.len(),
        core.config().max_refreshes_per_pass,
        "one lookup per stale bucket, {} per pass",
        core.config().max_refreshes_per_pass
    );
}

#[test]
fn disjoint_paths_never_share_a_node_and_still_find_the_closest() {
    let mut net = Oracle::new(honest(400));
    let config = DhtConfig {
        disjoint_paths: 3,
        ..DhtConfig::default()
    };
    let mut core = DhtCore::new(local(), config, 5);
    let now = Timestamp::ZERO;
    core.bootstrap(now, [seed_of(&net.nodes[0])]).unwrap();
    net.drain(&mut core, now);
    for i in 0..10u8 {
        let target = Key::for_value(&[i]);
        let id = core.find_node(now, target).unwrap();
        let start = net.log.len();
        let done = net.drain(&mut core, now);
        let asked: Vec<PeerId> = net.log[start..]
            .iter()
            .filter(|(q, _, _)| *q == Some(id))
            .map(|(_, p, _)| *p)
            .collect();
        let unique: HashSet<&PeerId> = asked.iter().collect();
        assert_eq!(unique.len(), asked.len(), "a node asked twice");
        let QueryResult::FindNode { closest } = finished_one(&done, id) else {
            panic!("not a FindNode result");
        };
        let truth: Vec<PeerId> = net
            .closest(&target, true)
            .iter()
            .take(20)
            .map(NodeInfo::peer_id)
            .collect();
        let found: Vec<PeerId> = closest.iter().map(NodeInfo::peer_id).collect();
        assert_eq!(found, truth);
    }
}

#[test]
fn saved_tables_are_revalidated_before_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dht-table.bin");
    const CHAIN: u32 = 5;
    let mut cache = RecordCache::new(CHAIN, 64);
    let nodes: Vec<NodeInfo> = (0..12u8)
        .map(|i| {
            let key = KeyPair::from_seed(&[i + 1; 32]);
            let addr = SocketAddr::from(([10, 2, i, 1], 4000));
            let bytes = NodeRecord::new(&key, CHAIN, &[addr], 1)
                .and_then(|r| r.encode())
                .unwrap();
            cache.verify(&bytes).unwrap()
        })
        .collect();
    // A node that knew them all saves its table...
    let mut net = Oracle::new(nodes.clone());
    let mut first = DhtCore::new(local(), DhtConfig::default(), 6);
    first.add_candidates(nodes.clone());
    net.drain(&mut first, Timestamp::ZERO);
    assert_eq!(first.table().len(), 12);
    assert_eq!(save_table(&path, first.table_nodes()).unwrap(), 12);

    // ...and after a restart, the loaded entries enter only once they answer.
    let loaded = load_table(&path, CHAIN).unwrap().unwrap();
    assert_eq!(loaded.nodes.len(), 12);
    let mut second = DhtCore::new(local(), DhtConfig::default(), 7);
    assert_eq!(second.add_candidates(loaded.nodes), 12);
    assert!(second.table().is_empty());
    for gone in &nodes[..4] {
        net.dead.insert(gone.peer_id());
    }
    net.drain(&mut second, Timestamp::ZERO);
    assert_eq!(second.table().len(), 8);
    assert!(
        nodes[..4]
            .iter()
            .all(|n| second.table().get(&n.peer_id()).is_none())
    );
}

/// The eclipse figure: an attacker with unlimited ids on four /24s floods a victim with
/// requests (each a candidate that answers its ping) and answers every lookup that reaches
/// it with its own ids closest to the target.
#[test]
fn an_attacker_on_four_subnets_never_exceeds_the_ip_limits() {
    let mut nodes = honest(300);
    let honest_seed = seed_of(&nodes[0]);
    let attacker_subnets = [[66, 6, 1], [66, 6, 2], [66, 6, 3], [66, 6, 4]];
    let sybils: Vec<NodeInfo> = (0..2000u32)
        .map(|i| {
            let [a, b, c] = attacker_subnets[(i % 4) as usize];
            let addr = SocketAddr::from(([a, b, c, (i / 4 % 250) as u8 + 1], 5000 + i as u16));
            NodeInfo::new(id_from(i, 9), [addr]).unwrap()
        })
        .collect();
    nodes.extend(sybils.iter().cloned());
    let mut net = Oracle::new(nodes);
    net.attackers = sybils.iter().map(NodeInfo::peer_id).collect();
    let config = DhtConfig::default();
    let per_bucket = config.routing.max_per_subnet_bucket;
    let per_table = config.routing.max_per_subnet_table;
    let mut core = DhtCore::new(local(), config, 8);
    let mut now = Timestamp::ZERO;
    // The victim bootstraps through an honest node and an attacker.
    core.bootstrap(now, [honest_seed, seed_of(&sybils[0])])
        .unwrap();
    net.drain(&mut core, now);

    let attacker_subnet_set: HashSet<Subnet> = sybils.iter().map(NodeInfo::subnet).collect();
    let check_table = |core: &DhtCore| {
        let mut per_subnet: HashMap<Subnet, usize> = HashMap::new();
        for bucket in 0..256 {
            let mut in_bucket: HashMap<Subnet, usize> = HashMap::new();
            for entry in core.table().bucket(bucket) {
                *in_bucket.entry(entry.node().subnet()).or_default() += 1;
                *per_subnet.entry(entry.node().subnet()).or_default() += 1;
            }
            assert!(in_bucket.values().all(|c| *c <= per_bucket));
        }
        assert!(per_subnet.values().all(|c| *c <= per_table));
        attacker_subnet_set
            .iter()
            .map(|s| per_subnet.get(s).copied().unwrap_or(0))
            .sum::<usize>()
    };

    let mut worst_table = 0;
    let mut worst_result = 0;
    for round in 0..20u32 {
        // 100 sybils send requests; the victim pings them as candidates, they answer.
        for sybil in sybils.iter().skip(round as usize * 100).take(100) {
            core.handle_request(now, sybil.peer_id(), sybil.primary_addr(), DhtRequest::Ping);
        }
        assert!(core.candidate_count() <= core.config().max_candidates);
        net.drain(&mut core, now);
        worst_table = worst_table.max(check_table(&core));
        // A lookup towards a random key: sybils answer with sybils.
        let target = Key::for_value(&round.to_be_bytes());
        let id = core.find_node(now, target).unwrap();
        let done = net.drain(&mut core, now);
        let QueryResult::FindNode { closest } = finished_one(&done, id) else {
            panic!("not a FindNode result");
        };
        let mut per_subnet: HashMap<Subnet, usize> = HashMap::new();
        for node in &closest {
            *per_subnet.entry(node.subnet()).or_default() += 1;
        }
        assert!(per_subnet.values().all(|c| *c <= 2), "{per_subnet:?}");
        let from_attacker = closest
            .iter()
            .filter(|n| net.attackers.contains(&n.peer_id()))
            .count();
        worst_result = worst_result.max(from_attacker);
        worst_table = worst_table.max(check_table(&core));
        now = now.saturating_add(Duration::from_secs(1));
    }
    eprintln!(
        "eclipse: attacker entries in the victim's table at most {worst_table} of {} \
         (limit {}), in a 20-node lookup result at most {worst_result} (limit 8)",
        core.table().len(),
        4 * per_table
    );
    assert!(worst_table <= 4 * per_table);
    assert!(worst_result <= 4 * 2);
    assert!(
        core.table().len() > worst_table,
        "honest nodes still fill the table"
    );
}

/// Whatever peers answer (random subsets, duplicates, our own id, crowded subnets), fail or
/// never answer, every lookup ends, on one path or several, with at most k distinct nodes,
/// at most 2 per subnet, never ourselves, and the core's own bounds hold throughout.
mod lookup_props {
    use super::*;
    use blyan_dht::sim::SplitMix64 as Rng;
    use proptest::prelude::*;

    fn nodes(seed: u64, n: usize) -> Vec<NodeInfo> {
        let mut rng = Rng::new(seed);
        (0..n)
            .map(|i| {
                // Seven /24s shared by everyone: the subnet limits bind.
                let ip = [10, 9, (i % 7) as u8, (i / 7) as u8 + 1];
                NodeInfo::new(
                    PeerId::from_bytes(rng.bytes32()),
                    [SocketAddr::from((ip, 4000))],
                )
                .unwrap()
            })
            .collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn lookups_end_with_distinct_bounded_results(
            seed in any::<u64>(),
            n in 3usize..90,
            fail_pct in 0usize..50,
            silent_pct in 0usize..30,
            paths in 1usize..4,
        ) {
            let all = nodes(seed, n);
            let config = DhtConfig { disjoint_paths: paths, ..DhtConfig::default() };
            let max_rpcs = config.max_outstanding_rpcs;
            let mut core = DhtCore::new(local(), config, seed);
            let mut rng = Rng::new(seed ^ 0x5555);
            let mut now = Timestamp::ZERO;
            core.add_candidates(all.iter().take(5).cloned());
            // The candidates answer their pings and enter the table.
            while let Some(action) = core.poll(now) {
                if let Action::SendRequest { rpc, to, .. } = action
                    && let Some(node) = all.iter().find(|n| Some(n.peer_id()) == to.peer)
                {
                    respond(&mut core, now, rpc, node.clone(), Reply::Pong);
                }
            }
            prop_assert!(!core.table().is_empty());
            let target = Key::from_bytes(rng.bytes32());
            let id = core.find_node(now, target).unwrap();
            let mut result = None;
            for _ in 0..20_000 {
                prop_assert!(core.outstanding_rpcs() <= max_rpcs);
                match core.poll(now) {
                    Some(Action::SendRequest { rpc, to, .. }) => {
                        let Some(node) = all.iter().find(|n| Some(n.peer_id()) == to.peer).cloned() else {
                            core.on_failure(now, rpc);
                            continue;
                        };
                        let roll = rng.below(100) as usize;
                        if roll < fail_pct {
                            core.on_failure(now, rpc);
                        } else if roll < fail_pct + silent_pct {
                            // Never answered: the core's timeouts must end it.
                        } else {
                            let count = rng.below(35) as usize;
                            let mut listed: Vec<NodeInfo> =
                                (0..count).map(|_| all[rng.below(all.len() as u64) as usize].clone()).collect();
                            if rng.below(4) == 0 {
                                listed.push(NodeInfo::new(local(), [SocketAddr::from(([1, 1, 1, 1], 1))]).unwrap());
                            }
                            respond(&mut core, now, rpc, node, Reply::Nodes(listed));
                        }
                    }
                    Some(Action::QueryFinished { id: done, result: r, .. }) if done == id => {
                        result = Some(r);
                        break;
                    }
                    Some(Action::QueryFinished { .. }) => {}
                    None => {
                        let next = core.poll_timeout().expect("a running query has a deadline");
                        prop_assert!(next > now || core.query_count() > 0);
                        now = next.max(now);
                        core.handle_timeout(now);
                    }
                }
            }
            let Some(QueryResult::FindNode { closest }) = result else {
                return Err(TestCaseError::fail("the lookup did not end"));
            };
            prop_assert!(closest.len() <= 20);
            if fail_pct + silent_pct == 0 {
                prop_assert!(!closest.is_empty(), "answering peers make a result");
            }
            let ids: HashSet<PeerId> = closest.iter().map(NodeInfo::peer_id).collect();
            prop_assert_eq!(ids.len(), closest.len(), "duplicates in the result");
            prop_assert!(!ids.contains(&local()));
            let mut per_subnet: HashMap<Subnet, usize> = HashMap::new();
            for node in &closest {
                *per_subnet.entry(node.subnet()).or_default() += 1;
            }
            prop_assert!(per_subnet.values().all(|c| *c <= 2));
            for pair in closest.windows(2) {
                prop_assert!(target.distance(&pair[0].key()) < target.distance(&pair[1].key()));
            }
        }
    }
}
