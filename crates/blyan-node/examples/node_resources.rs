//! Resident memory and start-up time of a node (issue 6).
//!
//! The measured node always runs in a child process (this example started again with
//! `child`), so its `VmRSS` (`/proc/<pid>/status`) is its own:
//!
//! 1. **idle**: a full node with an empty chain and no peers, 5 s after its API answered;
//! 2. **64 peers**: the same node once 64 other nodes (in this process, each with its own
//!    database and QUIC endpoint on 127.0.0.1) have connected to it, 5 s after the 64th;
//! 3. **start-up with a long chain**: `BLYAN_BENCH_STARTUP_BLOCKS` empty blocks (default
//!    100,000) are built once on a manual clock, then a child is started
//!    `BLYAN_BENCH_ROUNDS` times (default 3) on that data directory; it reports the time of
//!    `Node::open`, of `Node::start`, and until its API answers `/api/status`.
//!
//! `BLYAN_BENCH_DIR` keeps the long chain across runs (default: a temporary directory).
//!
//! `cargo run --release -p blyan-node --example node_resources`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use blyan_node::{ApiClient, Node, Role, RunningNode};

use common::{BenchChain, median, node_key};

const SLOT_MS: u64 = 1_000;
const PEERS: usize = 64;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        child(&args[2..]).await;
        return;
    }
    let blocks: u64 = common::env_or("BLYAN_BENCH_STARTUP_BLOCKS", 100_000);
    let rounds: usize = common::env_or("BLYAN_BENCH_ROUNDS", 3);
    let temp = tempfile::tempdir().unwrap();
    let dir = std::env::var("BLYAN_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| temp.path().to_owned());
    println!(
        "node_resources: {PEERS} peers, start-up with {blocks} blocks, load {}",
        common::load_average()
    );

    // 1 and 2: an idle node, then with 64 peers.
    let chain = BenchChain::new(&temp.path().join("idle"), 0, common::unix_ms(), SLOT_MS);
    let _ = chain.config("hub", &node_key(0), Role::Full, &[]);
    let (mut hub, ready) = spawn_child(&chain.dir, "hub", PEERS + 16);
    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle = common::vm_rss_kib(Some(hub.child.id()));
    println!("idle node: VmRSS {:.1} MiB", idle as f64 / 1024.0);

    let rss_before = common::vm_rss_kib(None);
    let entry = format!("{}@{}", ready.peer_id, ready.p2p);
    let mut peers: Vec<RunningNode> = Vec::new();
    for i in 1..=PEERS {
        peers.push(
            common::start(
                &chain,
                &format!("p{i}"),
                &node_key(i as u32),
                Role::Full,
                std::slice::from_ref(&entry),
            )
            .await,
        );
    }
    let api = ApiClient::new(ready.api);
    let waited = Instant::now();
    let mut connected = 0;
    while waited.elapsed() < Duration::from_secs(120) {
        connected = api.status().await.unwrap().peers;
        if connected >= PEERS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let connected_after = api.status().await.unwrap().peers;
    let busy = common::vm_rss_kib(Some(hub.child.id()));
    let rss_peers = common::vm_rss_kib(None);
    println!(
        "node with {connected_after} peers ({connected} after {:.1} s): VmRSS {:.1} MiB, \
         {:.1} MiB more than idle ({:.0} KiB per peer)",
        waited.elapsed().as_secs_f64() - 5.0,
        busy as f64 / 1024.0,
        (busy as f64 - idle as f64) / 1024.0,
        (busy as f64 - idle as f64) / connected_after.max(1) as f64,
    );
    println!(
        "the {PEERS} peer nodes in one process: {:.1} MiB, {:.1} MiB per node",
        (rss_peers as f64 - rss_before as f64) / 1024.0,
        (rss_peers as f64 - rss_before as f64) / 1024.0 / PEERS as f64
    );
    hub.stop();
    // The 64 shut down together in the background: with the hub gone, each one's shutdown
    // waits on its requests to the hub timing out.
    let stopping = Instant::now();
    let shutdowns: Vec<_> = peers
        .into_iter()
        .map(|peer| tokio::spawn(peer.shutdown()))
        .collect();
    tokio::spawn(async move {
        for shutdown in shutdowns {
            let _ = shutdown.await;
        }
        println!(
            "the {PEERS} peer nodes shut down in {:.1} s",
            stopping.elapsed().as_secs_f64()
        );
    });

    // 3: start-up with a long chain on disk.
    let genesis_ms = common::unix_ms() - (blocks + 1_000) * SLOT_MS;
    let long = BenchChain::new(&dir.join(format!("long-{blocks}")), 0, genesis_ms, SLOT_MS);
    let built = long.build_history("node", blocks, 0).await;
    let size = std::fs::metadata(long.data_dir("node").join(blyan_node::DATABASE_FILE))
        .unwrap()
        .len();
    println!(
        "{blocks} empty blocks built in {:.1} s, database {:.1} MiB",
        built.as_secs_f64(),
        size as f64 / (1024.0 * 1024.0)
    );
    let (mut opens, mut starts, mut answers, mut spawns) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let spawned = Instant::now();
        let (mut node, ready) = spawn_child(&long.dir, "node", 50);
        let to_ready = spawned.elapsed();
        let rss = common::vm_rss_kib(Some(node.child.id()));
        println!(
            "round {round}: height {}, open {:.1} ms, start {:.1} ms, API answered after {:.1} ms \
             (process spawn to ready {:.1} ms), VmRSS {:.1} MiB",
            ready.height,
            ready.open_ms,
            ready.start_ms,
            ready.answer_ms,
            to_ready.as_secs_f64() * 1e3,
            rss as f64 / 1024.0
        );
        opens.push(ready.open_ms);
        starts.push(ready.start_ms);
        answers.push(ready.answer_ms);
        spawns.push(to_ready.as_secs_f64() * 1e3);
        node.stop();
    }
    println!(
        "median over {rounds} rounds with {blocks} blocks: open {:.1} ms, start {:.1} ms, \
         API answering after {:.1} ms; process spawn to ready {:.1} ms",
        median(&opens),
        median(&starts),
        median(&answers),
        median(&spawns)
    );
}

/// A node in a child process; dropping stdin stops it.
struct ChildNode {
    child: Child,
}

impl ChildNode {
    fn stop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// What a child printed when its API answered.
struct Ready {
    peer_id: String,
    p2p: String,
    api: std::net::SocketAddr,
    height: u64,
    open_ms: f64,
    start_ms: f64,
    answer_ms: f64,
}

fn spawn_child(chain_dir: &Path, name: &str, max_peers: usize) -> (ChildNode, Ready) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("child")
        .arg(chain_dir)
        .arg(name)
        .arg(max_peers.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout: ChildStdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let line = lines.next().unwrap().unwrap();
    let fields: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(fields[0], "READY", "{line}");
    let ready = Ready {
        peer_id: fields[1].to_owned(),
        p2p: fields[2].to_owned(),
        api: fields[3].parse().unwrap(),
        height: fields[4].parse().unwrap(),
        open_ms: fields[5].parse().unwrap(),
        start_ms: fields[6].parse().unwrap(),
        answer_ms: fields[7].parse().unwrap(),
    };
    (ChildNode { child }, ready)
}

/// The child: opens and starts node `name` of the chain in `args[0]`, reports when its API
/// answers, runs until stdin closes.
async fn child(args: &[String]) {
    let chain = BenchChain::new(Path::new(&args[0]), 0, 0, SLOT_MS);
    let name = &args[1];
    let mut config = chain.config(name, &node_key(0), Role::Full, &[]);
    config.network.max_peers = args[2].parse().unwrap();
    let started = Instant::now();
    let node = Node::open(config, common::system_options()).unwrap();
    let opened = started.elapsed();
    let running = node.start().await.unwrap();
    let ran = started.elapsed();
    let status = ApiClient::new(running.api_addr()).status().await.unwrap();
    let answered = started.elapsed();
    println!(
        "READY {} {} {} {} {:.3} {:.3} {:.3}",
        running.handle().info().peer_id,
        running.p2p_addr(),
        running.api_addr(),
        status.height,
        opened.as_secs_f64() * 1e3,
        (ran - opened).as_secs_f64() * 1e3,
        answered.as_secs_f64() * 1e3,
    );
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await
    .unwrap();
    running.shutdown().await.unwrap();
}
