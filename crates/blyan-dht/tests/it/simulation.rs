//! Lookups in a seeded network of 1,000 nodes: success against brute force, termination,
//! and the cost in requests and hops.

use blyan_dht::Key;

use crate::sim::{Network, Rng};

const NODES: usize = 1000;
const LOOKUPS: usize = 200;

struct Figures {
    successes: usize,
    mean_rpcs: f64,
    mean_hops: f64,
    max_elapsed_ms: u64,
}

/// Runs the lookups and prints the figures (`cargo test -- --nocapture` shows them).
fn measure(net: &mut Network, seed: u64, label: &str) -> Figures {
    let mut rng = Rng::new(seed);
    let (mut successes, mut rpcs, mut hops, mut max_elapsed_ms) = (0, 0u64, 0u64, 0);
    for _ in 0..LOOKUPS {
        let from = loop {
            let i = rng.below(net.nodes.len());
            if net.nodes[i].alive {
                break i;
            }
        };
        let target = Key::from_bytes(rng.bytes32());
        let run = net.lookup(from, target, &mut rng);
        let found: Vec<_> = run.result.closest.iter().map(|n| n.peer_id()).collect();
        if found == net.truth(from, &target, 20) {
            successes += 1;
        }
        rpcs += u64::from(run.rpcs);
        hops += u64::from(run.hops);
        max_elapsed_ms = max_elapsed_ms.max(run.elapsed_ms);
    }
    let f = Figures {
        successes,
        mean_rpcs: rpcs as f64 / LOOKUPS as f64,
        mean_hops: hops as f64 / LOOKUPS as f64,
        max_elapsed_ms,
    };
    eprintln!(
        "{label}: {}/{LOOKUPS} exact, {:.1} rpcs/lookup, {:.2} hops, max {} ms",
        f.successes, f.mean_rpcs, f.mean_hops, f.max_elapsed_ms
    );
    f
}

#[test]
fn static_network_finds_the_true_closest() {
    let mut net = Network::bootstrap(NODES, 7);
    let f = measure(&mut net, 11, "static");
    assert!(
        f.successes * 100 >= LOOKUPS * 95,
        "success {}/{LOOKUPS}",
        f.successes
    );
    // alpha = 3 and k = 20 bound the cost: a lookup that asks hundreds of nodes is broken.
    assert!(f.mean_rpcs < 100.0, "mean rpcs {}", f.mean_rpcs);
}

#[test]
fn lookups_survive_ten_percent_dead_nodes() {
    let mut net = Network::bootstrap(NODES, 8);
    let mut rng = Rng::new(99);
    let mut dead = 0;
    while dead < NODES / 10 {
        let i = rng.below(NODES);
        if net.nodes[i].alive {
            net.nodes[i].alive = false;
            dead += 1;
        }
    }
    let f = measure(&mut net, 12, "10% dead");
    assert!(
        f.successes * 100 >= LOOKUPS * 90,
        "success {}/{LOOKUPS}",
        f.successes
    );
}
