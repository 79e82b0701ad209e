//! Shared fixtures of the network examples: a chain with one validator and a set of funded
//! senders, node configurations on loopback with their own data directories and keys,
//! histories built on a manual clock, and small statistics.
//!
//! Every node here is a real one: its own redb database, its own QUIC endpoint on
//! 127.0.0.1, its own HTTP API.

#![allow(dead_code)]

pub(crate) mod counting;
#[path = "../../tests/it/loopback.rs"]
mod loopback;

use loopback::loopback_config;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use blyan_consensus::{
    Block, Clock, ConsensusParams, Genesis, ManualClock, SignedTransaction, SystemClock,
    Transaction,
};
use blyan_crypto::KeyPair;
use blyan_node::{
    DATABASE_FILE, Node, NodeConfig, NodeEvent, NodeHandle, NodeOptions, Role, RunningNode,
    write_genesis,
};

/// Chain id of the example chains.
pub(crate) const CHAIN_ID: u32 = 6060;
/// The node key passphrase, from the injected environment.
pub(crate) const PASSPHRASE: &str = "bench passphrase";

/// A chain on disk: a genesis naming one validator and funding `senders`.
pub(crate) struct BenchChain {
    /// Holds the genesis and every node's data directory.
    pub(crate) dir: PathBuf,
    /// The only validator.
    pub(crate) validator: KeyPair,
    /// Funded accounts, one transfer each per block.
    pub(crate) senders: Vec<KeyPair>,
    /// The genesis document.
    pub(crate) genesis: Genesis,
}

impl BenchChain {
    /// A chain in `dir` whose slot 0 starts at `genesis_time_ms`.
    pub(crate) fn new(dir: &Path, senders: usize, genesis_time_ms: u64, slot_ms: u64) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let validator = KeyPair::from_seed(&[1; 32]);
        let senders: Vec<KeyPair> = (0..senders).map(|i| sender_key(i as u32)).collect();
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            genesis_time_ms,
            slot_duration_ms: slot_ms,
            validators: vec![validator.public_key()],
            balances: senders
                .iter()
                .map(|k| (k.address(), 1_000_000_000_000))
                .collect::<BTreeMap<_, _>>(),
            params: ConsensusParams::default(),
        };
        let path = dir.join("genesis.json");
        if !path.exists() {
            write_genesis(&path, &genesis, false).unwrap();
        }
        let genesis = blyan_node::read_genesis(&path).unwrap();
        Self {
            dir: dir.to_owned(),
            validator,
            senders,
            genesis,
        }
    }

    /// Node `name`'s data directory.
    pub(crate) fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Node `name`'s configuration: its own data dir and key file, loopback ports,
    /// `bootstrap` entries, no metrics exporter, a cheap key derivation.
    pub(crate) fn config(
        &self,
        name: &str,
        key: &KeyPair,
        role: Role,
        bootstrap: &[String],
    ) -> NodeConfig {
        loopback_config(
            &self.data_dir(name),
            &self.dir.join("genesis.json"),
            name,
            key,
            role,
            bootstrap,
            PASSPHRASE,
        )
    }

    /// The `block`-th set of transfers: one from every sender, nonce `block`.
    pub(crate) fn transfers(&self, block: u64) -> Vec<SignedTransaction> {
        let to = self.validator.address();
        self.senders
            .iter()
            .map(|sender| {
                Transaction {
                    chain_id: CHAIN_ID,
                    from: sender.public_key(),
                    to,
                    amount: 1,
                    fee: 1,
                    nonce: block,
                    data: vec![],
                }
                .sign(sender)
            })
            .collect()
    }

    /// Builds `blocks` blocks of `txs` transfers each (at most the number of senders)
    /// into the validator's data directory `name`, on a manual clock from slot 1: every
    /// transfer goes through `submit_tx` and every block through `produce_block`, as on a
    /// live validator. Returns the time it took.
    pub(crate) async fn build_history(&self, name: &str, blocks: u64, txs: usize) -> Duration {
        let started = Instant::now();
        let slot_ms = self.genesis.slot_duration_ms;
        let clock = Arc::new(ManualClock::new(self.genesis.genesis_time_ms));
        let config = self.config(name, &self.validator, Role::Validator, &[]);
        let node = Node::open(config, options(clock.clone(), false)).unwrap();
        let handle = node.handle();
        let from = handle.chain_status().await.unwrap().height;
        let mut report = Instant::now();
        for height in from + 1..=blocks {
            clock.set(self.genesis.genesis_time_ms + height * slot_ms + slot_ms / 2);
            if txs > 0 {
                let transfers = self.transfers(height - 1);
                for tx in transfers.into_iter().take(txs) {
                    handle.submit_tx(tx).await.unwrap();
                }
            }
            let block = handle.produce_block().await.unwrap().unwrap();
            assert_eq!(block.txs.len(), txs, "block {height} is short");
            if report.elapsed() > Duration::from_secs(10) {
                eprintln!("  built {height} / {blocks} blocks");
                report = Instant::now();
            }
        }
        let running = node.start().await.unwrap();
        running.shutdown().await.unwrap();
        started.elapsed()
    }
}

/// The `i`-th sender's key.
pub(crate) fn sender_key(i: u32) -> KeyPair {
    let mut seed = [0u8; 32];
    seed[0] = 2;
    seed[1..5].copy_from_slice(&i.to_le_bytes());
    KeyPair::from_seed(&seed)
}

/// A node key other than the validator's and the senders'.
pub(crate) fn node_key(i: u32) -> KeyPair {
    let mut seed = [0u8; 32];
    seed[0] = 3;
    seed[1..5].copy_from_slice(&i.to_le_bytes());
    KeyPair::from_seed(&seed)
}

/// Options with `clock`, the passphrase in the environment, and the production loop on
/// or off.
pub(crate) fn options(clock: Arc<dyn Clock>, produce_blocks: bool) -> NodeOptions {
    NodeOptions {
        clock,
        env: Box::new(|name| (name == "BLYAN_KEY_PASSPHRASE").then(|| PASSPHRASE.to_owned())),
        endpoint: None,
        produce_blocks,
    }
}

/// Options on the system clock without the production loop.
pub(crate) fn system_options() -> NodeOptions {
    options(Arc::new(SystemClock), false)
}

/// Starts node `name` on the system clock without the production loop.
pub(crate) async fn start(
    chain: &BenchChain,
    name: &str,
    key: &KeyPair,
    role: Role,
    bootstrap: &[String],
) -> RunningNode {
    let config = chain.config(name, key, role, bootstrap);
    Node::open(config, system_options())
        .unwrap()
        .start()
        .await
        .unwrap()
}

/// Copies the chain database of `from` into the data directory `to`.
pub(crate) fn copy_database(chain: &BenchChain, from: &str, to: &str) {
    let target = chain.data_dir(to);
    std::fs::create_dir_all(&target).unwrap();
    std::fs::copy(
        chain.data_dir(from).join(DATABASE_FILE),
        target.join(DATABASE_FILE),
    )
    .unwrap();
}

/// `<peer id>@127.0.0.1:<port>` of a running node.
pub(crate) fn bootstrap_entry(node: &RunningNode) -> String {
    format!("{}@{}", node.handle().info().peer_id, node.p2p_addr())
}

/// Every canonical block of `handle` from height 1 to `to`.
pub(crate) async fn read_blocks(handle: &NodeHandle, to: u64) -> Vec<Block> {
    let mut blocks = Vec::with_capacity(usize::try_from(to).unwrap());
    for height in 1..=to {
        blocks.push(handle.block_by_height(height).await.unwrap().unwrap());
    }
    blocks
}

/// Waits until `events` reports a canonical block at `height` or above, or `deadline`
/// passes; also checks the chain every second in case events were lost to lag.
pub(crate) async fn wait_for_height(
    handle: &NodeHandle,
    events: &mut tokio::sync::broadcast::Receiver<NodeEvent>,
    height: u64,
    deadline: Duration,
) -> bool {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if handle.chain_status().await.unwrap().height >= height {
            return true;
        }
        let tick = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(tick);
        loop {
            tokio::select! {
                event = events.recv() => match event {
                    Ok(NodeEvent::BlockImported { block, .. }) if block.height() >= height => {
                        return true;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return false,
                },
                () = &mut tick => break,
            }
        }
        if tokio::time::Instant::now() > until {
            return false;
        }
        if std::env::var_os("BLYAN_BENCH_PROGRESS").is_some() {
            let ours = handle.chain_status().await.unwrap().height;
            if let Ok(Some(status)) = handle.network_status().await {
                eprintln!(
                    "  height {ours}: {} peers, sync {:?}",
                    status.peers, status.sync
                );
            }
        }
    }
}

/// Milliseconds since the Unix epoch now.
pub(crate) fn unix_ms() -> u64 {
    SystemClock.now_ms()
}

/// The median of `values` (the mean of the middle two for an even count).
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The nearest-rank `p`-quantile (0 < p ≤ 1) of `values`.
pub(crate) fn quantile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `VmRSS` of process `pid` (`None`: this process) in KiB.
pub(crate) fn vm_rss_kib(pid: Option<u32>) -> u64 {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(path).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// An environment variable parsed, or `default`.
pub(crate) fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The load average over the last minute, for the report.
pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}
