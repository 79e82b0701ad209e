//! Block propagation over real QUIC on loopback (issue 6).
//!
//! Starts `BLYAN_BENCH_NODES` nodes (default 100) in this process, each with its own redb
//! database in a temporary directory, its own QUIC endpoint on 127.0.0.1 and its own API.
//! Node 0 is the only validator; the others are full nodes that bootstrap to node 0 and
//! two earlier nodes and find the rest through the DHT. In each of `BLYAN_BENCH_ROUNDS`
//! rounds (default 10), node 0's client submits `BLYAN_BENCH_TXS` transfers (default 100)
//! at `BLYAN_BENCH_TX_RATE` a second (default 10: a burst gets honest peers rate-limited
//! and banned, see docs/performance.md) and they spread by transaction gossip; then node 0
//! produces a block and gossip carries it:
//!
//! - **time to 99 %**: from node 0's `BlockImported` event to the import on the node at
//!   the 99th percentile (nearest rank) of the other nodes, from each node's
//!   `NodeHandle::subscribe` events;
//! - **full copies per node**: every endpoint is bound under its own `metrics` recorder,
//!   so its stream bytes in (`blyan_p2p_bytes_total{direction="inbound"}`) are its own.
//!   The bytes a node received in the 3 s after the block, minus those of a quiet 3 s
//!   window just before, divided by the encoded envelope, is the number of full copies it
//!   received (pushes, fetches after an announcement, and any sync of the block).
//!   Announcements (≈ 90 bytes each) are in those bytes too, so the figure is an upper
//!   bound; duplicates are copies beyond the first.
//! - **gossip envelopes alone**: the duplicates the nodes' gossip routers counted
//!   (`NetworkStatus::gossip`, `GossipStats::duplicates`) in the same window, per node:
//!   full copies of the block's envelope beyond the first, without sync;
//! - `blyan_p2p_messages_total{type="block_gossip",status="received"}` over all nodes
//!   (envelopes and announcements together) from a process-wide recorder.
//!
//! `BLYAN_BENCH_DUMP=1` prints every process-wide counter and each node's height at the end.
//!
//! `cargo run --release -p blyan-node --example propagation_bench`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use blyan_consensus::SystemClock;
use blyan_node::{Node, NodeEvent, NodeHandle, Role, RunningNode};
use blyan_p2p::{GossipEnvelope, GossipMessage, GossipPayload, WireMessage};
use blyan_wire::{Endpoint, TransportConfig};

use common::counting::CountingRecorder;
use common::{BenchChain, median, node_key, quantile};

const SLOT_MS: u64 = 1_000;
/// Length of the quiet window and of the window after a block.
const WINDOW: Duration = Duration::from_secs(3);
const BYTES_IN: &str = "blyan_p2p_bytes_total";

/// When each node saw each height become canonical.
type Arrivals = Arc<Mutex<Vec<HashMap<u64, Instant>>>>;

fn main() {
    let global = CountingRecorder::default();
    metrics::set_global_recorder(global.clone()).unwrap();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(global));
}

async fn run(global: CountingRecorder) {
    let count: usize = common::env_or("BLYAN_BENCH_NODES", 100);
    let rounds: u64 = common::env_or("BLYAN_BENCH_ROUNDS", 10);
    let txs: usize = common::env_or("BLYAN_BENCH_TXS", 100);
    let tx_rate: f64 = common::env_or("BLYAN_BENCH_TX_RATE", 10.0);
    let temp = tempfile::tempdir().unwrap();
    let chain = BenchChain::new(temp.path(), txs, common::unix_ms(), SLOT_MS);
    println!(
        "propagation_bench: {count} nodes, {rounds} rounds, {txs} txs a block, load {}",
        common::load_average()
    );

    let started = Instant::now();
    let mut nodes: Vec<RunningNode> = Vec::new();
    let mut recorders: Vec<CountingRecorder> = Vec::new();
    for i in 0..count {
        let (name, key, role) = if i == 0 {
            ("n0".to_owned(), chain.validator.clone(), Role::Validator)
        } else {
            (format!("n{i}"), node_key(i as u32), Role::Full)
        };
        let mut bootstrap: Vec<String> = Vec::new();
        for j in [0, i.saturating_sub(1), (i * 7 + 3) % i.max(1)] {
            let entry = (j < i).then(|| common::bootstrap_entry(&nodes[j]));
            if let Some(entry) = entry.filter(|e| !bootstrap.contains(e)) {
                bootstrap.push(entry);
            }
        }
        let recorder = CountingRecorder::default();
        let endpoint = metrics::with_local_recorder(&recorder, || {
            Endpoint::bind(
                "127.0.0.1:0".parse().unwrap(),
                &key,
                TransportConfig::default(),
            )
        })
        .unwrap();
        let config = chain.config(&name, &key, role, &bootstrap);
        let mut options = common::options(Arc::new(SystemClock), false);
        options.endpoint = Some(endpoint);
        nodes.push(Node::open(config, options).unwrap().start().await.unwrap());
        recorders.push(recorder);
    }
    println!(
        "{count} nodes started in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    // The mesh: wait until the peer counts stop changing (discovery every 15 s).
    let mut last = Vec::new();
    let mesh = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let peers = peer_counts(&nodes).await;
        let stable = peers == last && peers.iter().all(|&p| p >= 2);
        last = peers;
        if stable || mesh.elapsed() > Duration::from_secs(120) {
            break;
        }
    }
    let as_f64: Vec<f64> = last.iter().map(|&p| p as f64).collect();
    println!(
        "mesh after {:.0} s: peers per node min {} / median {} / max {}",
        mesh.elapsed().as_secs_f64(),
        quantile(&as_f64, 0.0),
        median(&as_f64),
        quantile(&as_f64, 1.0)
    );

    let arrivals: Arrivals = Arc::new(Mutex::new(vec![HashMap::new(); count]));
    for (i, node) in nodes.iter().enumerate() {
        tokio::spawn(record_arrivals(node.handle(), i, arrivals.clone()));
    }

    let producer = nodes[0].handle();
    let (mut p99s, mut p50s, mut dups, mut dups_receivers, mut messages) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut routed_dups = Vec::new();
    let mut reached_all = 0;
    for round in 0..rounds {
        // The transactions first, so the block is the only thing gossiped in its window.
        let nonce = producer.chain_status().await.unwrap().height;
        for tx in chain.transfers(nonce).into_iter().take(txs) {
            producer.submit_tx(tx).await.unwrap();
            tokio::time::sleep(Duration::from_secs_f64(1.0 / tx_rate)).await;
        }
        let spread = Instant::now();
        while spread.elapsed() < Duration::from_secs(20) {
            if mempools_hold(&nodes, txs).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let q0 = bytes_in(&recorders);
        tokio::time::sleep(WINDOW).await;
        let q1 = bytes_in(&recorders);

        // Into the next slot, then produce.
        let now = common::unix_ms();
        let next = chain.genesis.genesis_time_ms
            + ((now - chain.genesis.genesis_time_ms) / SLOT_MS + 1) * SLOT_MS;
        tokio::time::sleep(Duration::from_millis(next - now + 20)).await;
        let b0 = bytes_in(&recorders);
        let routed0 = gossip_duplicates(&nodes).await;
        let gossip0 = global.get(
            "blyan_p2p_messages_total",
            &[("type", "block_gossip"), ("status", "received")],
        );
        let window = Instant::now();
        let block = producer.produce_block().await.unwrap().unwrap();
        let height = block.height();
        let envelope = GossipMessage::Envelope(Box::new(
            GossipEnvelope::sign(
                &chain.validator,
                common::CHAIN_ID,
                round,
                common::unix_ms(),
                GossipPayload::Block(block),
            )
            .unwrap(),
        ))
        .encode()
        .unwrap()
        .len();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            let got = arrivals
                .lock()
                .unwrap()
                .iter()
                .filter(|a| a.contains_key(&height))
                .count();
            if got == count {
                reached_all += 1;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(WINDOW.saturating_sub(window.elapsed())).await;
        let b1 = bytes_in(&recorders);
        let routed = (gossip_duplicates(&nodes).await - routed0) as f64 / count as f64;
        let penalties = global.sum("blyan_peer_penalties_total");
        let gossip1 = global.get(
            "blyan_p2p_messages_total",
            &[("type", "block_gossip"), ("status", "received")],
        );

        let (t0, delays) = {
            let arrivals = arrivals.lock().unwrap();
            let t0 = arrivals[0][&height];
            let delays: Vec<f64> = arrivals[1..]
                .iter()
                .map(|a| {
                    a.get(&height).map_or(f64::INFINITY, |t| {
                        t.saturating_duration_since(t0).as_secs_f64() * 1e3
                    })
                })
                .collect();
            (t0, delays)
        };
        let _ = t0;
        let copies: Vec<f64> = (0..count)
            .map(|i| {
                let block = b1[i].saturating_sub(b0[i]) as f64;
                let quiet = q1[i].saturating_sub(q0[i]) as f64;
                ((block - quiet) / envelope as f64).max(0.0)
            })
            .collect();
        // The producer's copies are all duplicates; every other node's first is not.
        let dup_total: f64 =
            copies[0] + copies[1..].iter().map(|c| (c - 1.0).max(0.0)).sum::<f64>();
        let dup_receivers =
            copies[1..].iter().map(|c| (c - 1.0).max(0.0)).sum::<f64>() / (count - 1) as f64;
        let per_node_messages = (gossip1 - gossip0) as f64 / count as f64;
        let p99 = quantile(&delays, 0.99);
        let p50 = median(&delays);
        println!(
            "round {round}: height {height}, envelope {envelope} B, p50 {p50:.1} ms, p99 {p99:.1} ms, \
             max {:.1} ms, duplicates/node {:.2} (receivers only {dup_receivers:.2}; \
             gossip envelopes alone {routed:.2}), block_gossip messages received/node {per_node_messages:.2}, penalties so far {penalties}, \
             load {}",
            quantile(&delays, 1.0),
            dup_total / count as f64,
            common::load_average(),
        );
        p99s.push(p99);
        p50s.push(p50);
        dups.push(dup_total / count as f64);
        dups_receivers.push(dup_receivers);
        routed_dups.push(routed);
        messages.push(per_node_messages);
    }
    println!(
        "median over {rounds} rounds ({reached_all} reached every node): time to 99 % {:.1} ms \
         (p50 {:.1} ms); duplicates per node {:.2} (receivers only {:.2}; gossip envelopes \
         alone {:.2}; target <= 2); block_gossip messages received per node {:.2}",
        median(&p99s),
        median(&p50s),
        median(&dups),
        median(&dups_receivers),
        median(&routed_dups),
        median(&messages),
    );
    if std::env::var_os("BLYAN_BENCH_DUMP").is_some() {
        println!("process-wide counters:\n{}", global.dump());
        for node in &nodes {
            let status = node.handle().chain_status().await.unwrap();
            print!("{} ", status.height);
        }
        println!();
    }
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

/// Records when each height became canonical on node `index`.
async fn record_arrivals(handle: NodeHandle, index: usize, arrivals: Arrivals) {
    let mut events = handle.subscribe();
    loop {
        match events.recv().await {
            Ok(NodeEvent::BlockImported { block, .. }) => {
                let now = Instant::now();
                arrivals.lock().unwrap()[index]
                    .entry(block.height())
                    .or_insert(now);
            }
            Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

fn bytes_in(recorders: &[CountingRecorder]) -> Vec<u64> {
    recorders
        .iter()
        .map(|r| r.get(BYTES_IN, &[("direction", "inbound")]))
        .collect()
}

/// Duplicate envelopes the nodes' gossip routers counted (`GossipStats::duplicates`).
async fn gossip_duplicates(nodes: &[RunningNode]) -> u64 {
    let mut total = 0;
    for node in nodes {
        if let Some(status) = node.handle().network_status().await.unwrap() {
            total += status.gossip.duplicates;
        }
    }
    total
}

async fn peer_counts(nodes: &[RunningNode]) -> Vec<usize> {
    let mut counts = Vec::with_capacity(nodes.len());
    for node in nodes {
        counts.push(
            node.handle()
                .network_status()
                .await
                .unwrap()
                .map_or(0, |s| s.peers),
        );
    }
    counts
}

async fn mempools_hold(nodes: &[RunningNode], txs: usize) -> bool {
    for node in nodes {
        if node.handle().chain_status().await.unwrap().mempool_size < txs {
            return false;
        }
    }
    true
}
