//! The lookup state machine driven by hand: alpha, timeouts, late answers, filtering, bounds.

use std::net::SocketAddr;
use std::time::Duration;

use blyan_crypto::PeerId;
use blyan_dht::{Key, Lookup, LookupAction, LookupConfig, NodeInfo, Timestamp};

const TARGET: Key = Key::from_bytes([0; 32]);

/// A node at distance `d` from the target (bigger `d`, farther), in its own /24.
fn node(d: u16) -> NodeInfo {
    let mut bytes = [0u8; 32];
    bytes[..2].copy_from_slice(&d.to_be_bytes());
    let ip = [10, (d >> 8) as u8, d as u8, 1];
    NodeInfo::new(PeerId::from_bytes(bytes), [SocketAddr::from((ip, 1))]).unwrap()
}

fn local() -> PeerId {
    PeerId::from_bytes([0xff; 32])
}

fn sends(lookup: &mut Lookup, now: Timestamp) -> Vec<PeerId> {
    let mut out = Vec::new();
    while let LookupAction::SendFindNode { node } = lookup.poll(now) {
        out.push(node.peer_id());
    }
    out
}

#[test]
fn no_seeds_ends_at_once() {
    let mut lookup = Lookup::new(TARGET, local(), [], LookupConfig::default());
    match lookup.poll(Timestamp::ZERO) {
        LookupAction::Done(result) => assert!(result.closest.is_empty()),
        other => panic!("expected Done, got {other:?}"),
    }
}

#[test]
fn alpha_bounds_requests_and_timeouts_free_slots() {
    let cfg = LookupConfig::default();
    let timeout = cfg.request_timeout;
    let mut lookup = Lookup::new(TARGET, local(), (1..=5).map(node), cfg);
    let t0 = Timestamp::ZERO;
    let first = sends(&mut lookup, t0);
    assert_eq!(
        first,
        vec![node(1).peer_id(), node(2).peer_id(), node(3).peer_id()]
    );
    let deadline = t0.saturating_add(timeout);
    assert_eq!(
        lookup.poll(t0),
        LookupAction::Wait {
            until: Some(deadline)
        }
    );
    // Nobody answers: at the deadline the three stop counting and the next two are asked.
    let second = sends(&mut lookup, deadline);
    assert_eq!(second, vec![node(4).peer_id(), node(5).peer_id()]);
    assert_eq!(lookup.stats().timeouts, 3);
    // A late answer from node 1 is still used, and brings a closer node.
    let late = deadline.saturating_add(Duration::from_millis(1));
    lookup.on_response(late, &node(1).peer_id(), vec![node(0)]);
    assert_eq!(sends(&mut lookup, late), vec![node(0).peer_id()]);
    lookup.on_response(late, &node(0).peer_id(), vec![]);
    lookup.on_failure(&node(4).peer_id());
    lookup.on_response(late, &node(5).peer_id(), vec![]);
    match lookup.poll(late) {
        LookupAction::Done(result) => {
            let ids: Vec<_> = result.closest.iter().map(NodeInfo::peer_id).collect();
            assert_eq!(
                ids,
                vec![node(0).peer_id(), node(1).peer_id(), node(5).peer_id()]
            );
            assert_eq!(result.stats.requests, 6);
            assert_eq!(result.stats.failures, 1);
        }
        other => panic!("expected Done, got {other:?}"),
    }
    assert!(lookup.is_done());
}

#[test]
fn self_duplicates_and_strangers_are_ignored() {
    let mut lookup = Lookup::new(TARGET, local(), [node(1)], LookupConfig::default());
    let now = Timestamp::ZERO;
    assert_eq!(sends(&mut lookup, now), vec![node(1).peer_id()]);
    let me = NodeInfo::new(local(), [SocketAddr::from(([1, 1, 1, 1], 1))]).unwrap();
    // An answer from a peer we never asked changes nothing.
    lookup.on_response(now, &node(7).peer_id(), vec![node(8)]);
    lookup.on_response(now, &node(1).peer_id(), vec![me, node(1), node(2), node(2)]);
    assert_eq!(sends(&mut lookup, now), vec![node(2).peer_id()]);
    lookup.on_response(now, &node(2).peer_id(), vec![node(1)]);
    assert!(matches!(lookup.poll(now), LookupAction::Done(r) if r.closest.len() == 2));
}

#[test]
fn a_flood_of_nodes_stays_bounded() {
    let cfg = LookupConfig {
        max_candidates: 50,
        ..LookupConfig::default()
    };
    let mut lookup = Lookup::new(TARGET, local(), [node(1000)], cfg);
    let now = Timestamp::ZERO;
    sends(&mut lookup, now);
    // The peer owes at most k nodes; the closest 20 of its 5,000 are kept.
    lookup.on_response(now, &node(1000).peer_id(), (1..5000).map(node).collect());
    let asked = sends(&mut lookup, now);
    assert_eq!(
        asked,
        vec![node(1).peer_id(), node(2).peer_id(), node(3).peer_id()]
    );
    // Answer everything with more floods; the lookup still ends and asks a bounded number.
    let mut now = now;
    let mut pending = asked;
    let mut rounds = 0;
    while !pending.is_empty() {
        rounds += 1;
        assert!(rounds < 1000, "lookup did not end");
        now = now.saturating_add(Duration::from_millis(1));
        for peer in pending.drain(..) {
            lookup.on_response(now, &peer, (2000..2100).map(node).collect());
        }
        pending = sends(&mut lookup, now);
    }
    assert!(lookup.is_done());
    assert!(lookup.stats().requests <= 60);
}

#[test]
fn results_respect_the_subnet_limit() {
    // Ten nodes closest to the target share one /24; the result holds two of them.
    let crowded = |i: u8| {
        let mut bytes = [0u8; 32];
        bytes[1] = i;
        NodeInfo::new(
            PeerId::from_bytes(bytes),
            [SocketAddr::from(([10, 66, 66, i], 1))],
        )
        .unwrap()
    };
    let seeds: Vec<_> = (1..=10).map(crowded).chain((300..330).map(node)).collect();
    let mut lookup = Lookup::new(TARGET, local(), seeds, LookupConfig::default());
    let now = Timestamp::ZERO;
    loop {
        match lookup.poll(now) {
            LookupAction::SendFindNode { node } => {
                lookup.on_response(now, &node.peer_id(), vec![]);
            }
            LookupAction::Wait { .. } => panic!("all answers are immediate"),
            LookupAction::Done(result) => {
                assert_eq!(result.closest.len(), 20);
                let in_subnet = result
                    .closest
                    .iter()
                    .filter(|n| n.subnet() == blyan_dht::Subnet::V4([10, 66, 66]))
                    .count();
                assert_eq!(in_subnet, 2);
                break;
            }
        }
    }
}
