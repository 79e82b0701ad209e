//! # blyan-node: the node operators run
//!
//! Configuration, the command line, the HTTP API, block production, metrics and graceful
//! shutdown, wired around the chain of `blyan-consensus`. The `blyan-node` binary is a thin
//! layer over this library: it parses the command line, installs logging and the
//! Prometheus exporter, and runs a [`Node`] until SIGINT or SIGTERM.
//!
//! ## Main types and data flow
//!
//! - [`NodeConfig`] has one section per component (`node`, `network`, `bootstrap`,
//!   `security`, `metrics`, `api`, `storage`, `consensus`, `mempool`, `logging`).
//!   [`NodeConfig::load`] merges the YAML file with the environment (`NODE_ID`,
//!   `LOG_LEVEL`, `LOG_FORMAT`, `BLYAN_<SECTION>__<KEY>`); an unknown key or a bad value is
//!   a [`ConfigError`] naming the key and its source (file path or variable).
//! - [`Node::open`] loads the encrypted node key ([`load_node_key`]), the genesis (a file
//!   from `blyan-node init`, or the dev genesis it creates on first start) and the redb
//!   database, resuming at its tip. [`Node::start`] serves the API and, for a validator,
//!   produces a block in each of its slots from the mempool.
//! - A [`NodeHandle`] reaches the chain: the `ChainManager` and the `Mempool` sit behind
//!   one lock and every operation runs on the blocking pool. [`NodeHandle::submit_tx`] and
//!   [`NodeHandle::import_block`] are where transactions and blocks enter;
//!   [`NodeHandle::subscribe`] yields [`NodeEvent`]s to gossip. That is where the
//!   peer-to-peer service (`blyan-p2p`) attaches.
//! - [`api::router`] is the HTTP API; [`ApiClient`] a small client for it.
//!
//! ## Guarantees
//!
//! - Every block import is one database transaction (see `blyan-consensus`): a restart,
//!   clean or not, resumes at the last committed tip with the same key and genesis.
//! - [`RunningNode::shutdown`] answers 503 to new requests, lets open requests and the
//!   current import finish, then flushes and closes the database.
//! - Bounded: request bodies (`api.max_body_bytes`), request time, the mempool, the event
//!   channel ([`EVENT_CAPACITY`]), genesis and passphrase files read.
//!
//! ## Example
//!
//! ```no_run
//! use blyan_node::{Node, NodeConfig, NodeOptions};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config = NodeConfig::load(None, [("BLYAN_STORAGE__PATH".into(), "/tmp/blyan".into())])?;
//! let node = Node::open(config, NodeOptions::default())?;
//! let running = node.start().await?;
//! let status = running.handle().chain_status().await?;
//! println!("serving {} at height {}", running.api_addr(), status.height);
//! running.shutdown().await?;
//! # Ok(())
//! # }
//! ```

pub mod api;
mod api_client;
mod api_types;
mod banner;
mod cli;
mod config;
mod config_source;
mod devnet;
mod error;
mod genesis_file;
mod network;
mod node;
mod node_key;

pub use api_client::{ApiClient, ApiResponse, ClientError, MAX_RESPONSE_BYTES};
pub use api_types::{
    AccountView, BlockView, ErrorBody, ForkView, HeaderView, HealthView, PeerView, ProofView,
    StatusView, SyncView, TxAccepted, TxBody, TxBodyError, TxView,
};
pub use banner::Banner;
pub use cli::{Cli, Command, InitArgs, KeyCommand, parse_balance};
pub use config::{
    ApiConfig, BootstrapConfig, BootstrapNode, ConsensusConfig, LoggingConfig, MAX_API_BODY_BYTES,
    MempoolSection, MetricsConfig, NetworkConfig, NodeConfig, NodeSection, Role, SecurityConfig,
    StorageConfig, UnknownRole,
};
pub use config_source::{ConfigError, ENV_PREFIX, env_key};
pub use devnet::{DEVNET_PASSPHRASE, Devnet, DevnetNodeStatus, DevnetSpec, MAX_DEVNET_NODES};
pub use error::{NodeError, SubmitError};
pub use genesis_file::{
    DEV_VALIDATOR_BALANCE, GenesisFileError, GenesisSpec, GenesisSpecError, MAX_GENESIS_FILE_BYTES,
    dev_genesis, read_genesis, write_genesis,
};
pub use node::{
    AccountAtTip, ChainStatus, DATABASE_FILE, DEV_GENESIS_FILE, EVENT_CAPACITY, EnvLookup, Node,
    NodeEvent, NodeHandle, NodeInfo, NodeOptions, RunningNode,
};
pub use node_key::{
    KeyError, PassphraseSource, dev_passphrase_path, load_node_key, read_passphrase_file,
    resolve_passphrase,
};
