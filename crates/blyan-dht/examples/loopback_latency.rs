//! Lookup latency over real QUIC on loopback: `N` nodes (default 120) join through one seed,
//! then run lookups of random keys, first every node at once (`R` rounds, default 5), then
//! one lookup at a time (`R` per node); prints p50/p99/max of each and how many lookups
//! found exactly the true 20 closest nodes.
//!
//! ```text
//! cargo run --release -p blyan-dht --example loopback_latency -- [N] [R]
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use blyan_crypto::{KeyPair, PeerId};
use blyan_dht::{Dht, DriverConfig, Key, Seed};
use blyan_wire::{Endpoint, TransportConfig};
use tokio::task::JoinSet;

/// Nodes joining at once.
const WAVE: usize = 10;

struct Node {
    id: PeerId,
    endpoint: Endpoint,
    dht: Dht,
}

async fn start(index: u32) -> (Node, SocketAddr) {
    let mut seed = [0x42; 32];
    seed[..4].copy_from_slice(&index.to_le_bytes());
    let key = KeyPair::from_seed(&seed);
    let endpoint = Endpoint::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &key,
        TransportConfig::default(),
    )
    .unwrap();
    let addr = endpoint.local_addr().unwrap();
    let config = DriverConfig {
        chain_id: 1,
        ..DriverConfig::default()
    }
    .allow_one_subnet();
    let dht = Dht::spawn(endpoint.clone(), &key, config).await.unwrap();
    dht.serve(endpoint.clone());
    let id = key.peer_id();
    (Node { id, endpoint, dht }, addr)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(rank).copied().unwrap_or_default()
}

fn report(what: &str, latencies: &mut [Duration], exact: usize) {
    latencies.sort();
    println!(
        "{what}: {} lookups, p50 {:.2?}, p99 {:.2?}, max {:.2?}; {exact} found exactly the true 20 closest",
        latencies.len(),
        percentile(latencies, 0.50),
        percentile(latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: u32 = args.next().map_or(120, |a| a.parse().expect("node count"));
    let per_node: u32 = args
        .next()
        .map_or(5, |a| a.parse().expect("lookups per node"));

    let started = Instant::now();
    let (seed_node, seed_addr) = start(0).await;
    let via = Seed {
        addr: seed_addr,
        peer: Some(seed_node.id),
    };
    let mut nodes = vec![seed_node];
    for wave in (1..count).collect::<Vec<_>>().chunks(WAVE) {
        let mut joining = JoinSet::new();
        for &i in wave {
            joining.spawn(async move {
                let (node, _) = start(i).await;
                for _ in 0..5 {
                    if matches!(node.dht.bootstrap([via]).await, Ok(n) if n > 0) {
                        break;
                    }
                }
                (i, node)
            });
        }
        let mut joined = joining.join_all().await;
        joined.sort_by_key(|(i, _)| *i);
        nodes.extend(joined.into_iter().map(|(_, node)| node));
    }
    println!("{count} nodes joined in {:.1?}", started.elapsed());

    let ids: Vec<PeerId> = nodes.iter().map(|n| n.id).collect();
    let truth = |me: PeerId, target: &Key| {
        let mut truth: Vec<PeerId> = ids.iter().copied().filter(|id| *id != me).collect();
        truth.sort_by_key(|id| target.distance(&Key::from(*id)));
        truth.truncate(20);
        truth
    };

    // Under load: every node looks up at once, `per_node` rounds.
    let mut latencies = Vec::new();
    let mut exact = 0;
    for round in 0..per_node {
        let mut lookups = JoinSet::new();
        for (i, node) in nodes.iter().enumerate() {
            let dht = node.dht.clone();
            let target = Key::for_value(format!("busy {round}/{i}").as_bytes());
            let expected = truth(node.id, &target);
            lookups.spawn(async move {
                let t = Instant::now();
                let found = dht.find_node(target).await.unwrap();
                let found: Vec<PeerId> = found.iter().map(|n| n.peer_id()).collect();
                (t.elapsed(), found == expected)
            });
        }
        while let Some(done) = lookups.join_next().await {
            let (elapsed, ok) = done.unwrap();
            latencies.push(elapsed);
            exact += usize::from(ok);
        }
    }
    report("all nodes at once", &mut latencies, exact);

    // One lookup at a time: the latency a single lookup sees on a quiet network.
    let mut latencies = Vec::new();
    let mut exact = 0;
    for round in 0..per_node {
        for (i, node) in nodes.iter().enumerate() {
            let target = Key::for_value(format!("quiet {round}/{i}").as_bytes());
            let t = Instant::now();
            let found = node.dht.find_node(target).await.unwrap();
            latencies.push(t.elapsed());
            let found: Vec<PeerId> = found.iter().map(|n| n.peer_id()).collect();
            exact += usize::from(found == truth(node.id, &target));
        }
    }
    report("one at a time", &mut latencies, exact);

    let mut stopping = JoinSet::new();
    for node in nodes {
        stopping.spawn(async move {
            node.dht.shutdown().await.unwrap();
            node.endpoint.close().await;
        });
    }
    stopping.join_all().await;
}
