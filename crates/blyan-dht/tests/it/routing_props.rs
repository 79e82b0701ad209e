//! Routing-table invariants under random operation sequences.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use blyan_crypto::PeerId;
use blyan_dht::{InsertOutcome, Key, NodeInfo, RoutingConfig, RoutingTable, Subnet, Timestamp};
use proptest::prelude::*;

fn config() -> RoutingConfig {
    RoutingConfig {
        k: 4,
        replacement_cache_size: 3,
        max_per_subnet_bucket: 2,
        max_per_subnet_table: 5,
        max_failures: 2,
        ping_timeout: Duration::from_millis(50),
    }
}

#[derive(Clone, Debug)]
enum Op {
    Response { id: u8, subnet: u8 },
    Ping { id: u8, alive: bool },
    Failure { id: u8 },
    Remove { id: u8 },
    Tick,
}

fn peer(id: u8) -> PeerId {
    // Spread ids over the key space but keep several per far bucket.
    let mut bytes = [0u8; 32];
    bytes[0] = id.rotate_left(3);
    bytes[1] = id;
    PeerId::from_bytes(bytes)
}

fn node(id: u8, subnet: u8) -> NodeInfo {
    NodeInfo::new(peer(id), [SocketAddr::from(([10, 0, subnet % 8, id], 1))]).unwrap()
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (any::<u8>(), any::<u8>()).prop_map(|(id, subnet)| Op::Response { id, subnet }),
        2 => (any::<u8>(), any::<bool>()).prop_map(|(id, alive)| Op::Ping { id, alive }),
        1 => any::<u8>().prop_map(|id| Op::Failure { id }),
        1 => any::<u8>().prop_map(|id| Op::Remove { id }),
        1 => Just(Op::Tick),
    ]
}

fn check(table: &RoutingTable) -> Result<(), TestCaseError> {
    let cfg = table.config();
    let mut seen = HashSet::new();
    let mut per_table: HashMap<Subnet, usize> = HashMap::new();
    let mut total = 0;
    for index in 0..256 {
        let bucket = table.bucket(index);
        prop_assert!(bucket.len() <= cfg.k);
        prop_assert!(table.replacements_len(index) <= cfg.replacement_cache_size);
        let mut per_bucket: HashMap<Subnet, usize> = HashMap::new();
        for pair in bucket.windows(2) {
            prop_assert!(pair[0].last_seen() <= pair[1].last_seen());
        }
        for entry in bucket {
            prop_assert!(seen.insert(entry.node().peer_id()), "duplicate entry");
            prop_assert_eq!(table.bucket_index(&entry.node().peer_id()), Some(index));
            *per_bucket.entry(entry.node().subnet()).or_default() += 1;
            *per_table.entry(entry.node().subnet()).or_default() += 1;
            total += 1;
        }
        prop_assert!(per_bucket.values().all(|c| *c <= cfg.max_per_subnet_bucket));
    }
    prop_assert!(per_table.values().all(|c| *c <= cfg.max_per_subnet_table));
    prop_assert_eq!(total, table.len());
    Ok(())
}

proptest! {
    #[test]
    fn invariants_hold(ops in proptest::collection::vec(op(), 1..300), target in any::<[u8; 32]>(), n in 0usize..30) {
        let mut table = RoutingTable::new(peer(0), config());
        let mut now = Timestamp::ZERO;
        for op in ops {
            now = now.saturating_add(Duration::from_millis(7));
            match op {
                Op::Response { id, subnet } => {
                    let outcome = table.on_response(now, node(id, subnet));
                    if let InsertOutcome::PingLeastRecentlySeen { bucket, peer } = outcome {
                        prop_assert_eq!(table.bucket(bucket).first().map(|e| e.node().peer_id()), Some(peer.peer_id()));
                    }
                }
                Op::Ping { id, alive } => table.on_ping_result(now, &peer(id), alive),
                Op::Failure { id } => { table.on_failure(&peer(id)); }
                Op::Remove { id } => { table.remove(&peer(id)); }
                Op::Tick => {
                    now = now.saturating_add(Duration::from_millis(60));
                    table.handle_timeout(now);
                    prop_assert!(table.poll_timeout().is_none_or(|t| t > now));
                }
            }
            check(&table)?;
        }
        // closest_peers is sorted, deduplicated and truly the closest.
        let target = Key::from_bytes(target);
        let got: Vec<PeerId> = table.closest_peers(&target, n).iter().map(NodeInfo::peer_id).collect();
        let mut all: Vec<PeerId> = table.iter().map(|e| e.node().peer_id()).collect();
        all.sort_by_key(|id| target.distance(&Key::from(id)));
        all.truncate(n);
        prop_assert_eq!(&got, &all);
        let diverse = table.closest_peers_diverse(&target, n);
        prop_assert!(diverse.len() <= n);
        let mut everyone: Vec<NodeInfo> = table.iter().map(|e| e.node().clone()).collect();
        everyone.sort_by_key(|node| target.distance(&node.key()));
        let brute = blyan_dht::take_diverse(&everyone, n, table.config().max_per_subnet_bucket);
        prop_assert_eq!(&diverse, &brute);
        let mut counts: HashMap<Subnet, usize> = HashMap::new();
        for pair in diverse.windows(2) {
            prop_assert!(target.distance(&pair[0].key()) < target.distance(&pair[1].key()));
        }
        for node in &diverse {
            *counts.entry(node.subnet()).or_default() += 1;
        }
        prop_assert!(counts.values().all(|c| *c <= table.config().max_per_subnet_bucket));
    }
}

fn far_node(i: u8) -> NodeInfo {
    // All in bucket 255 of a table around peer id zero (top bit set).
    let mut bytes = [0u8; 32];
    bytes[0] = 0x80 | i;
    NodeInfo::new(
        PeerId::from_bytes(bytes),
        [SocketAddr::from(([10, i, 0, 1], 1))],
    )
    .unwrap()
}

#[test]
fn full_bucket_pings_oldest_then_keeps_it_when_alive() {
    let cfg = RoutingConfig {
        k: 2,
        ..RoutingConfig::default()
    };
    let mut table = RoutingTable::new(PeerId::from_bytes([0; 32]), cfg);
    let t = Timestamp::from_millis;
    assert_eq!(
        table.on_response(t(1), far_node(1)),
        InsertOutcome::Inserted
    );
    assert_eq!(
        table.on_response(t(2), far_node(2)),
        InsertOutcome::Inserted
    );
    let outcome = table.on_response(t(3), far_node(3));
    assert_eq!(
        outcome,
        InsertOutcome::PingLeastRecentlySeen {
            bucket: 255,
            peer: far_node(1)
        }
    );
    // A second newcomer does not trigger a second ping.
    assert_eq!(table.on_response(t(4), far_node(4)), InsertOutcome::Cached);
    table.on_ping_result(t(5), &far_node(1).peer_id(), true);
    let ids: Vec<_> = table.bucket(255).iter().map(|e| e.node().clone()).collect();
    assert_eq!(
        ids,
        vec![far_node(2), far_node(1)],
        "alive oldest moves to most recent"
    );
    assert_eq!(table.replacements_len(255), 2);
}

#[test]
fn dead_oldest_is_replaced_by_freshest_replacement() {
    let cfg = RoutingConfig {
        k: 2,
        ..RoutingConfig::default()
    };
    let mut table = RoutingTable::new(PeerId::from_bytes([0; 32]), cfg);
    let t = Timestamp::from_millis;
    table.on_response(t(1), far_node(1));
    table.on_response(t(2), far_node(2));
    table.on_response(t(3), far_node(3));
    table.on_response(t(4), far_node(4));
    table.on_ping_result(t(5), &far_node(1).peer_id(), false);
    let ids: Vec<_> = table.bucket(255).iter().map(|e| e.node().clone()).collect();
    assert_eq!(ids, vec![far_node(2), far_node(4)]);
    assert!(table.get(&far_node(1).peer_id()).is_none());
}

#[test]
fn unanswered_ping_times_out() {
    let cfg = RoutingConfig {
        k: 1,
        ..RoutingConfig::default()
    };
    let timeout = cfg.ping_timeout;
    let mut table = RoutingTable::new(PeerId::from_bytes([0; 32]), cfg);
    table.on_response(Timestamp::ZERO, far_node(1));
    table.on_response(Timestamp::ZERO, far_node(2));
    let deadline = table.poll_timeout().unwrap();
    assert_eq!(deadline, Timestamp::ZERO.saturating_add(timeout));
    table.handle_timeout(deadline);
    assert_eq!(table.bucket(255)[0].node(), &far_node(2));
    assert_eq!(table.poll_timeout(), None);
}

#[test]
fn repeated_failures_remove_an_entry() {
    let mut table = RoutingTable::new(PeerId::from_bytes([0; 32]), RoutingConfig::default());
    table.on_response(Timestamp::ZERO, far_node(1));
    let id = far_node(1).peer_id();
    assert!(!table.on_failure(&id));
    assert!(!table.on_failure(&id));
    assert_eq!(table.get(&id).map(|e| e.failures()), Some(2));
    assert!(table.on_failure(&id));
    assert!(table.is_empty());
}

#[test]
fn subnet_limits_reject_and_own_id_is_refused() {
    use blyan_dht::Rejection;
    let local = PeerId::from_bytes([0; 32]);
    let mut table = RoutingTable::new(local, RoutingConfig::default());
    let same_subnet = |i: u8| {
        let mut bytes = [0u8; 32];
        bytes[0] = 0x80 | i;
        NodeInfo::new(
            PeerId::from_bytes(bytes),
            [SocketAddr::from(([10, 9, 9, i], 1))],
        )
        .unwrap()
    };
    assert_eq!(
        table.on_response(Timestamp::ZERO, same_subnet(1)),
        InsertOutcome::Inserted
    );
    assert_eq!(
        table.on_response(Timestamp::ZERO, same_subnet(2)),
        InsertOutcome::Inserted
    );
    assert_eq!(
        table.on_response(Timestamp::ZERO, same_subnet(3)),
        InsertOutcome::Rejected(Rejection::SubnetFullInBucket(Subnet::V4([10, 9, 9])))
    );
    let me = NodeInfo::new(local, [SocketAddr::from(([1, 1, 1, 1], 1))]).unwrap();
    assert_eq!(
        table.on_response(Timestamp::ZERO, me),
        InsertOutcome::Rejected(Rejection::OwnId)
    );
}

#[test]
fn diverse_closest_peers_look_past_crowded_subnets() {
    // Eight subnets with ten entries each fill the 80 closest slots to our own key; the
    // diverse answer takes two of each and then the farther, unique-subnet nodes.
    let local = PeerId::from_bytes([0; 32]);
    let mut table = RoutingTable::new(local, RoutingConfig::default());
    let id_in_bucket = |bucket: usize, j: u8| {
        let mut bytes = [0u8; 32];
        bytes[31 - bucket / 8] = 1 << (bucket % 8);
        bytes[31] |= j;
        PeerId::from_bytes(bytes)
    };
    for bucket in 200..205 {
        for subnet in 0..8u8 {
            for copy in 0..2u8 {
                let id = id_in_bucket(bucket, subnet * 2 + copy + 1);
                let ip = [10, 7, subnet, copy + 1];
                let node = NodeInfo::new(id, [SocketAddr::from((ip, 1))]).unwrap();
                assert_eq!(
                    table.on_response(Timestamp::ZERO, node),
                    InsertOutcome::Inserted
                );
            }
        }
    }
    for j in 0..20u8 {
        let node = NodeInfo::new(
            id_in_bucket(255, j + 1),
            [SocketAddr::from(([11, j, 0, 1], 1))],
        )
        .unwrap();
        table.on_response(Timestamp::ZERO, node);
    }
    assert_eq!(table.len(), 100);
    let target = Key::from(local);
    let diverse = table.closest_peers_diverse(&target, 20);
    assert_eq!(diverse.len(), 20);
    let crowded = diverse
        .iter()
        .filter(|n| matches!(n.subnet(), Subnet::V4([10, 7, _])))
        .count();
    assert_eq!(crowded, 16);
    let mut everyone: Vec<NodeInfo> = table.iter().map(|e| e.node().clone()).collect();
    everyone.sort_by_key(|node| target.distance(&node.key()));
    assert_eq!(diverse, blyan_dht::take_diverse(&everyone, 20, 2));
}

#[test]
fn a_cached_node_that_finds_room_leaves_the_cache() {
    // k = 2, one node per subnet per bucket. X waits in the cache, cannot be promoted while
    // its subnet is taken, then answers from another subnet and takes the free slot. A later
    // removal must not promote X's stale cached copy as a second entry.
    let cfg = RoutingConfig {
        k: 2,
        max_per_subnet_bucket: 1,
        ..RoutingConfig::default()
    };
    let mut table = RoutingTable::new(PeerId::from_bytes([0; 32]), cfg);
    let t = Timestamp::from_millis;
    let at = |i: u8, subnet: u8| {
        NodeInfo::new(
            far_node(i).peer_id(),
            [SocketAddr::from(([10, subnet, 0, 1], 1))],
        )
        .unwrap()
    };
    let (a, b, x) = (1, 2, 3);
    table.on_response(t(1), at(a, 1));
    table.on_response(t(2), at(b, 2));
    assert!(matches!(
        table.on_response(t(3), at(x, 3)),
        InsertOutcome::PingLeastRecentlySeen { .. }
    ));
    table.on_ping_result(t(4), &far_node(a).peer_id(), true);
    assert_eq!(table.replacements_len(255), 1);
    // B moves to X's subnet, so X cannot be promoted when A leaves.
    assert_eq!(table.on_response(t(5), at(b, 3)), InsertOutcome::Refreshed);
    assert!(table.remove(&far_node(a).peer_id()));
    assert_eq!(table.len(), 1);
    // X answers from a fresh subnet and takes the free slot, leaving the cache.
    assert_eq!(table.on_response(t(6), at(x, 4)), InsertOutcome::Inserted);
    assert_eq!(table.replacements_len(255), 0);
    assert!(table.remove(&far_node(b).peer_id()));
    let left: Vec<PeerId> = table.iter().map(|e| e.node().peer_id()).collect();
    assert_eq!(left, vec![far_node(x).peer_id()]);
    assert_eq!(table.len(), 1);
}
