//! `blyan-node devnet --nodes N`: N validators in one process, each a full node with its
//! own database, key and QUIC endpoint on 127.0.0.1, finding each other through the first
//! node (the bootstrap) and the DHT.
//!
//! The devnet lives in one directory (default `./data/devnet`): `genesis.json` and one
//! `node-<i>/` per validator. Keys are derived from the node index (`[i + 1; 32]` seeds),
//! so they are public knowledge: a devnet is for development only. They are stored
//! encrypted under the passphrase [`DEVNET_PASSPHRASE`] like any node key, with a cheap
//! KDF (1 MiB, one pass), since the secret is not one. A second start
//! with the same directory and node count resumes the same chain.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use blyan_consensus::{Genesis, SystemClock};
use blyan_crypto::{KeyPair, KeyStore};

use crate::config::{NodeConfig, Role};
use crate::error::NodeError;
use crate::genesis_file::{DEV_VALIDATOR_BALANCE, read_genesis, write_genesis};
use crate::node::{Node, NodeOptions, RunningNode};

/// Passphrase of the devnet's key files (development only).
pub const DEVNET_PASSPHRASE: &str = "blyan-devnet";

/// Most validators in one devnet.
pub const MAX_DEVNET_NODES: usize = 64;

/// What `devnet` starts.
#[derive(Debug, Clone)]
pub struct DevnetSpec {
    /// Number of validators (1 to [`MAX_DEVNET_NODES`]).
    pub nodes: usize,
    /// Where the genesis and the nodes' data live.
    pub dir: PathBuf,
    /// Node 0's API address; node `i` listens on the next ports (port `+ i`). Port 0
    /// gives every node a free port.
    pub api_addr: SocketAddr,
    /// The base configuration (consensus parameters, limits, KDF cost, logging).
    pub base: NodeConfig,
}

/// A running devnet.
#[derive(Debug)]
pub struct Devnet {
    nodes: Vec<RunningNode>,
}

/// One node's view, for the devnet's status line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DevnetNodeStatus {
    /// Tip height.
    pub height: u64,
    /// Ready peers.
    pub peers: usize,
}

impl Devnet {
    /// Creates (or resumes) the devnet in `spec.dir` and starts every node.
    pub async fn start(spec: DevnetSpec) -> Result<Self, NodeError> {
        if spec.nodes == 0 || spec.nodes > MAX_DEVNET_NODES {
            return Err(NodeError::Devnet(format!(
                "--nodes must be between 1 and {MAX_DEVNET_NODES}"
            )));
        }
        let io = |path: &PathBuf| {
            let path = path.clone();
            move |source| NodeError::DataDir { path, source }
        };
        std::fs::create_dir_all(&spec.dir).map_err(io(&spec.dir))?;
        let keys: Vec<KeyPair> = (0..spec.nodes)
            .map(|i| KeyPair::from_seed(&[u8::try_from(i + 1).unwrap_or(u8::MAX); 32]))
            .collect();
        let genesis_path = spec.dir.join("genesis.json");
        let genesis = if genesis_path.exists() {
            read_genesis(&genesis_path)?
        } else {
            let consensus = &spec.base.consensus;
            let genesis = Genesis {
                chain_id: consensus.chain_id,
                genesis_time_ms: blyan_consensus::Clock::now_ms(&SystemClock),
                slot_duration_ms: consensus.slot_duration_ms,
                validators: keys.iter().map(KeyPair::public_key).collect(),
                balances: keys
                    .iter()
                    .map(|k| (k.address(), DEV_VALIDATOR_BALANCE))
                    .collect::<BTreeMap<_, _>>(),
                params: consensus.params(),
            };
            write_genesis(&genesis_path, &genesis, false)?;
            genesis
        };
        if genesis.validators.len() != spec.nodes {
            return Err(NodeError::Devnet(format!(
                "{} holds a devnet of {} validators; use --nodes {} or another --dir",
                spec.dir.display(),
                genesis.validators.len(),
                genesis.validators.len()
            )));
        }
        let mut nodes: Vec<RunningNode> = Vec::with_capacity(spec.nodes);
        let mut bootstrap = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let data = spec.dir.join(format!("node-{i}"));
            std::fs::create_dir_all(&data).map_err(io(&data))?;
            let mut config = spec.base.clone();
            config.node.role = Role::Validator;
            config.node.name = Some(format!("node-{i}"));
            config.storage.path = data.clone();
            config.consensus.genesis_file = Some(genesis_path.clone());
            config.security.key_file = None;
            config.security.passphrase_file = None;
            config.security.passphrase_env = "BLYAN_DEVNET_PASSPHRASE".to_owned();
            // The keys are public (derived from the index): a costly KDF protects nothing.
            config.security.kdf_memory_kib = 1024;
            config.security.kdf_passes = 1;
            config.api.listen_addr = SocketAddr::new(
                spec.api_addr.ip(),
                if spec.api_addr.port() == 0 {
                    0
                } else {
                    spec.api_addr
                        .port()
                        .saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
                },
            );
            config.metrics.enabled = false;
            config.network.listen_addr = SocketAddr::from(([127, 0, 0, 1], 0));
            config.network.advertise_addr = None;
            config.network.target_outbound = config
                .network
                .target_outbound
                .min(spec.nodes.saturating_sub(1).max(1))
                .min(config.network.max_peers.saturating_sub(1).max(1));
            config.bootstrap.nodes = bootstrap.clone();
            let key_file = config.key_file();
            if !key_file.exists() {
                KeyStore::new(config.security.kdf_params())
                    .import(&key_file, key, DEVNET_PASSPHRASE.as_bytes())
                    .map_err(|e| {
                        NodeError::Devnet(format!("writing {}: {e}", key_file.display()))
                    })?;
            }
            let options = NodeOptions {
                env: Box::new(|name| {
                    (name == "BLYAN_DEVNET_PASSPHRASE").then(|| DEVNET_PASSPHRASE.to_owned())
                }),
                ..NodeOptions::default()
            };
            let node = tokio::task::spawn_blocking(move || Node::open(config, options))
                .await
                .map_err(|e| NodeError::Task(e.to_string()))??;
            let running = match node.start().await {
                Ok(running) => running,
                Err(error) => {
                    for node in nodes {
                        let _ = node.shutdown().await;
                    }
                    return Err(error);
                }
            };
            if i == 0 {
                bootstrap.push(format!(
                    "{}@{}",
                    running.handle().info().peer_id,
                    running.p2p_addr()
                ));
            }
            nodes.push(running);
        }
        Ok(Self { nodes })
    }

    /// The running nodes, in index order.
    pub fn nodes(&self) -> &[RunningNode] {
        &self.nodes
    }

    /// Height and ready peers of every node.
    pub async fn status(&self) -> Result<Vec<DevnetNodeStatus>, NodeError> {
        let mut out = Vec::with_capacity(self.nodes.len());
        for node in &self.nodes {
            let handle = node.handle();
            let height = handle.chain_status().await?.height;
            let peers = handle.network_status().await?.map_or(0, |n| n.peers);
            out.push(DevnetNodeStatus { height, peers });
        }
        Ok(out)
    }

    /// Shuts every node down (each finishes its import and flushes its database).
    pub async fn shutdown(self) -> Result<(), NodeError> {
        let mut first_error = None;
        for node in self.nodes {
            if let Err(error) = node.shutdown().await {
                first_error.get_or_insert(error);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}
