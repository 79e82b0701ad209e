//! Sync throughput against local import (issue 6).
//!
//! Builds a history of `BLYAN_BENCH_BLOCKS` blocks (default 10,000) of
//! `BLYAN_BENCH_TXS` transfers each (default 100) once, on a manual clock, through
//! `submit_tx` and `produce_block` as a validator would. The database is copied to four
//! serving full nodes (their own keys and QUIC endpoints on 127.0.0.1). Then, in each of
//! `BLYAN_BENCH_ROUNDS` rounds (default 1):
//!
//! - **local**: a fresh node imports the same blocks, in order, through
//!   `NodeHandle::import_block` (validation, state, one database transaction each);
//! - **sync ×1**: a fresh FULL node bootstrapped to serving node 0 (the only one running)
//!   is started and timed until its height reaches the last block;
//! - **sync ×4**: serving nodes 1 to 3 are started, and the same with all four in the
//!   bootstrap list.
//!
//! A sync that has not finished after `BLYAN_BENCH_SYNC_DEADLINE_SECS` (default 300) is
//! reported as stalled with its `NetworkStatus`; `BLYAN_BENCH_PROGRESS=1` prints the
//! syncing node's `SyncProgress` every second.
//!
//! Figures are blocks per second and the ratio sync / local within the round.
//! `BLYAN_BENCH_DIR` keeps the built history across runs (default: a temporary directory).
//!
//! `cargo run --release -p blyan-node --example sync_bench`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use blyan_consensus::Block;
use blyan_node::{Node, Role, RunningNode};

use common::{BenchChain, bootstrap_entry, median, node_key, system_options, wait_for_height};

const SERVERS: usize = 4;
const SLOT_MS: u64 = 400;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let blocks: u64 = common::env_or("BLYAN_BENCH_BLOCKS", 10_000);
    let txs: usize = common::env_or("BLYAN_BENCH_TXS", 100);
    let rounds: usize = common::env_or("BLYAN_BENCH_ROUNDS", 1);
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var("BLYAN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| temp.path().to_owned());
    // Slot 0 lies far enough back that every block's slot has passed on the system clock.
    let genesis_ms = common::unix_ms() - (blocks + 1_000) * SLOT_MS;
    let chain = BenchChain::new(
        &dir.join(format!("chain-{blocks}x{txs}")),
        txs,
        genesis_ms,
        SLOT_MS,
    );

    println!(
        "sync_bench: {blocks} blocks x {txs} txs, {rounds} round(s), load {}",
        common::load_average()
    );
    let built = chain.build_history("src", blocks, txs).await;
    println!("history built in {:.1} s", built.as_secs_f64());

    for i in 0..SERVERS {
        let name = format!("serve{i}");
        if !chain
            .data_dir(&name)
            .join(blyan_node::DATABASE_FILE)
            .exists()
        {
            common::copy_database(&chain, "src", &name);
        }
    }
    // Server 0 runs throughout; servers 1 to 3 only while a node syncs from four, so the
    // node syncing from one cannot find them through the DHT.
    let server0 = start_server(&chain, 0).await;
    let loaded = Instant::now();
    let history = common::read_blocks(&server0.handle(), blocks).await;
    let bytes: usize = history.iter().map(|b| b.encoded_len().unwrap()).sum();
    println!(
        "read {} blocks ({:.1} MiB encoded) in {:.1} s",
        history.len(),
        bytes as f64 / (1024.0 * 1024.0),
        loaded.elapsed().as_secs_f64()
    );

    let one = vec![bootstrap_entry(&server0)];
    let (mut local, mut sync1, mut sync4) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let l = import_locally(&chain, &history, round).await;
        let s1 = sync_from(
            &chain,
            &one,
            blocks,
            &format!("sync1-{round}"),
            1000 + round as u32,
        )
        .await
        .map_or(f64::INFINITY, |d| d.as_secs_f64());
        let mut others = Vec::new();
        for i in 1..SERVERS {
            others.push(start_server(&chain, i).await);
        }
        let mut all = one.clone();
        all.extend(others.iter().map(bootstrap_entry));
        let s4 = sync_from(
            &chain,
            &all,
            blocks,
            &format!("sync4-{round}"),
            2000 + round as u32,
        )
        .await
        .map_or(f64::INFINITY, |d| d.as_secs_f64());
        for other in others {
            other.shutdown().await.unwrap();
        }
        let l = l.as_secs_f64();
        let rate = |secs: f64| blocks as f64 / secs;
        println!(
            "round {round}: local {:.1} s ({:.0} blocks/s), sync x1 {:.1} s ({:.0} blocks/s, {:.2} of local), \
             sync x4 {:.1} s ({:.0} blocks/s, {:.2} of local), load {}",
            l,
            rate(l),
            s1,
            rate(s1),
            l / s1,
            s4,
            rate(s4),
            l / s4,
            common::load_average(),
        );
        local.push(l);
        sync1.push(s1);
        sync4.push(s4);
    }
    let ratios =
        |sync: &[f64]| -> Vec<f64> { local.iter().zip(sync).map(|(l, s)| l / s).collect() };
    println!(
        "median over {rounds} round(s): local {:.0} blocks/s; sync x1 {:.0} blocks/s, ratio {:.2} (target >= 0.70); \
         sync x4 {:.0} blocks/s, ratio {:.2} (target >= 0.90)",
        blocks as f64 / median(&local),
        blocks as f64 / median(&sync1),
        median(&ratios(&sync1)),
        blocks as f64 / median(&sync4),
        median(&ratios(&sync4)),
    );
    server0.shutdown().await.unwrap();
}

async fn start_server(chain: &BenchChain, i: usize) -> RunningNode {
    let name = format!("serve{i}");
    common::start(chain, &name, &node_key(i as u32), Role::Full, &[]).await
}

/// A fresh node importing `history` through `import_block`; the time of the imports.
async fn import_locally(chain: &BenchChain, history: &[Block], round: usize) -> Duration {
    let name = format!("local-{round}");
    let _ = std::fs::remove_dir_all(chain.data_dir(&name));
    let config = chain.config(&name, &node_key(3000 + round as u32), Role::Full, &[]);
    let node = Node::open(config, system_options()).unwrap();
    let handle = node.handle();
    let started = Instant::now();
    for block in history {
        handle.import_block(block.clone()).await.unwrap();
    }
    let took = started.elapsed();
    assert_eq!(
        handle.chain_status().await.unwrap().height,
        history.len() as u64
    );
    let running = node.start().await.unwrap();
    running.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(chain.data_dir(&name));
    took
}

/// A fresh FULL node started with `bootstrap`; the time from `start` to holding `height`.
async fn sync_from(
    chain: &BenchChain,
    bootstrap: &[String],
    height: u64,
    name: &str,
    key: u32,
) -> Option<Duration> {
    let _ = std::fs::remove_dir_all(chain.data_dir(name));
    let config = chain.config(name, &node_key(key), Role::Full, bootstrap);
    let node = Node::open(config, system_options()).unwrap();
    let handle = node.handle();
    let mut events = handle.subscribe();
    let started = Instant::now();
    let running = node.start().await.unwrap();
    let deadline = Duration::from_secs(common::env_or("BLYAN_BENCH_SYNC_DEADLINE_SECS", 300));
    let reached = wait_for_height(&handle, &mut events, height, deadline).await;
    let took = started.elapsed();
    if !reached {
        let ours = handle.chain_status().await.unwrap().height;
        let status = handle.network_status().await.unwrap();
        println!("  {name}: STALLED at height {ours} of {height} after {took:?}: {status:?}");
    }
    if let Some(status) = handle.network_status().await.unwrap() {
        println!(
            "  {name}: {} peers, {} used by sync",
            status.peers, status.sync.peers_used
        );
    }
    running.shutdown().await.unwrap();
    let _ = std::fs::remove_dir_all(chain.data_dir(name));
    reached.then_some(took)
}
