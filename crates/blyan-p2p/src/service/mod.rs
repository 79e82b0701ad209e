//! The tokio driver (feature `service`): [`Network`], one task that owns the three cores
//! ([`PeerSet`], [`SyncScheduler`], [`GossipRouter`]) and the [`SecurityManager`], and
//! moves their messages over one `blyan-wire` [`Endpoint`] shared with the DHT.
//!
//! **Protocol router.** Every connection the endpoint accepts, and every one we or the DHT
//! dial, gets one reader task that takes its inbound streams apart by protocol byte: 1 goes
//! to the [`Dht`], 2 (sync requests) is answered from the chain, 3 (gossip messages) goes to
//! the network task. A connection is a *peer* only once a status exchange admitted it
//! through the security manager (`PeerSet::on_connected`); until then it may carry DHT
//! traffic only, and sync or gossip on it is refused.
//!
//! **Chain access.** The embedding node implements [`ChainHost`]: short reads under its
//! lock (the sync core's [`SyncChain`] calls), its [`BlockValidator`] (signatures are
//! verified on tokio's blocking pool without the lock, once per block), block import and
//! transaction admission (called on the blocking pool, in order, by one importer whose
//! verify and import stages overlap).
//!
//! **Bounds.** Events from readers and spawned requests share one bounded queue; readers
//! wait on it (QUIC flow control then slows the peer) rather than grow it. Connections
//! with a reader are capped at [`NetworkConfig::max_connections`]; imports queue at most
//! [`IMPORT_QUEUE`] batches.

mod import;
mod serve;
mod task;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use blyan_consensus::{Block, BlockValidator, SignedTransaction, VerifiedBlock};
use blyan_crypto::{KeyPair, PeerId};
use blyan_dht::{Dht, DriverConfig, DriverError, Seed};
use blyan_security::{ConfigError, Direction, SecurityConfig, SecurityManager};
use blyan_wire::Endpoint;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::chain::SyncChain;
use crate::gossip::{GossipConfig, GossipStats, Validation};
use crate::message::Status;
use crate::peer_set::PeerSetConfig;
use crate::sync::{SyncConfig, SyncProgress};

#[cfg(doc)]
use crate::{GossipRouter, PeerSet, SyncScheduler};

/// Block batches waiting for the importer. Sync counts the blocks it handed out and the
/// chain has not reached against its body window (128 blocks), so it never has more than
/// about twice that waiting: at most 256 batches. Gossip blocks, each checked against its
/// parent and its producer's signature first, share the rest and are dropped (not
/// queued) when it is full; sync fetches them later.
pub const IMPORT_QUEUE: usize = 512;

/// How the node's chain answers the network.
///
/// Every method may block (disk reads, fsync): the service calls them on tokio's blocking
/// pool or, for the short reads of [`with_chain`](Self::with_chain), briefly from its task.
pub trait ChainHost: Send + Sync + 'static {
    /// The chain as sync reads it.
    type Chain: SyncChain;

    /// Runs `f` on the chain under the host's lock; `None` once the chain is closed.
    fn with_chain<R>(&self, f: impl FnOnce(&Self::Chain) -> R) -> Option<R>;

    /// Our status for the handshake (tip, finalized height, genesis); `None` once closed.
    fn local_status(&self) -> Option<Status>;

    /// The chain's rules, used without the lock to verify blocks before import
    /// (`BlockValidator::pre_verify`).
    fn validator(&self) -> &BlockValidator;

    /// Imports one verified block (from sync, in height order, or from gossip after it
    /// checked out), e.g. with `ChainManager::add_verified_block`: parent, clock and
    /// state are checked, the signatures are not again. `Err` means the chain refused it
    /// as invalid; unavailability (shutting down) is `Ok(false)`.
    fn import_block(&self, block: VerifiedBlock) -> Result<bool, ImportRefused>;

    /// Admits a gossiped transaction into the pool: `Accept` if new and valid (relay it),
    /// `Ignore` if known or not worth relaying, `Reject` with the sender's penalty if
    /// invalid.
    fn submit_tx(&self, tx: SignedTransaction) -> Validation;
}

/// The chain refused a block as invalid.
#[derive(Debug, Clone, thiserror::Error)]
#[error("block refused: {0}")]
pub struct ImportRefused(pub String);

/// Settings of the [`Network`].
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Dialling and liveness policy.
    pub peers: PeerSetConfig,
    /// Sync scheduling.
    pub sync: SyncConfig,
    /// Gossip relay (its `chain_id` must be the chain's).
    pub gossip: GossipConfig,
    /// Admission, rate limits, scores, bans.
    pub security: SecurityConfig,
    /// The DHT driver (its `chain_id` must be the chain's).
    pub dht: DriverConfig,
    /// Peers dialled at start and kept as candidates; also the DHT's seeds.
    pub bootstrap: Vec<(PeerId, SocketAddr)>,
    /// Default 250 ms: how often the cores are polled for timers.
    pub tick: Duration,
    /// Default 15 s: how often a DHT lookup looks for candidates while we have fewer
    /// outbound peers than the target.
    pub discovery_interval: Duration,
    /// Default 4,096: events (inbound gossip, answers) waiting for the task.
    pub event_queue: usize,
    /// Default 256: connections with a reader (peers, DHT contacts, handshakes); more
    /// are closed on arrival.
    pub max_connections: usize,
    /// Default 4 MiB: the most body bytes in one `Bodies` answer we serve.
    pub max_bodies_bytes: usize,
    /// Default 16: sync requests (headers, bodies, gossip fetches) we send one peer per
    /// second. A peer's security manager charges 10 units for each against 200 units/s
    /// (20 requests/s, bursts of 40) by default; staying under that keeps an honest
    /// syncing node from being refused and penalized for its own speed.
    pub sync_requests_per_second: u32,
    /// Where bans are saved across restarts (`bans.json`); `None` keeps them in memory.
    pub data_dir: Option<PathBuf>,
}

impl NetworkConfig {
    /// Defaults for `chain_id`.
    pub fn new(chain_id: u32) -> Self {
        Self {
            peers: PeerSetConfig::default(),
            // 64 bodies a request (the sync core's default is 16): four times fewer
            // requests against the peer's rate limit; answers stay under
            // `max_bodies_bytes` whatever the block size.
            sync: SyncConfig {
                bodies_per_request: 64,
                ..SyncConfig::default()
            },
            gossip: GossipConfig::new(chain_id),
            security: SecurityConfig::default(),
            dht: DriverConfig {
                chain_id,
                ..DriverConfig::default()
            },
            bootstrap: Vec::new(),
            tick: Duration::from_millis(250),
            discovery_interval: Duration::from_secs(15),
            event_queue: 4_096,
            max_connections: 256,
            max_bodies_bytes: 4 * 1024 * 1024,
            sync_requests_per_second: 16,
            data_dir: None,
        }
    }
}

/// Why the network could not start.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The security settings are unusable.
    #[error("security settings: {0}")]
    Security(#[from] ConfigError),
    /// The DHT driver did not start.
    #[error("DHT: {0}")]
    Dht(#[from] DriverError),
    /// The network task has stopped.
    #[error("the network service has stopped")]
    Stopped,
}

/// One connected peer, for `/api/peers`.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerInfo {
    /// Its id.
    pub peer_id: PeerId,
    /// Its address.
    pub addr: SocketAddr,
    /// Who dialled.
    pub direction: Direction,
    /// Whether the status exchange completed.
    pub ready: bool,
    /// Its best height as last reported.
    pub best_height: u64,
    /// Its finalized height as last reported.
    pub finalized_height: u64,
    /// Its score (0 is neutral, negative is bad).
    pub score: f64,
    /// Seconds since it connected.
    pub connected_secs: u64,
}

/// A snapshot of the network for `/api/status` and `/api/sync`.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkStatus {
    /// Ready peers.
    pub peers: usize,
    /// Connected peers by direction (inbound, outbound).
    pub inbound: usize,
    /// Outbound peers.
    pub outbound: usize,
    /// Candidates known for dialling.
    pub candidates: usize,
    /// Sync progress.
    pub sync: SyncProgress,
    /// Peers banned right now.
    pub banned: usize,
    /// Nodes in the DHT routing table.
    pub dht_nodes: usize,
    /// Gossip counters since start (first copies, duplicates, pushes, fetches...).
    pub gossip: GossipStats,
}

enum Command {
    Publish(Box<crate::message::GossipPayload>),
    Peers(oneshot::Sender<Vec<PeerInfo>>),
    Status(oneshot::Sender<NetworkStatus>),
    Shutdown(oneshot::Sender<()>),
}

/// The running network service: a cheap-to-clone handle to its task.
///
/// ```no_run
/// # use std::sync::Arc;
/// # use blyan_crypto::KeyPair;
/// # use blyan_p2p::{ChainHost, Network, NetworkConfig};
/// # use blyan_wire::{Endpoint, TransportConfig};
/// # async fn run(host: Arc<impl ChainHost>, key: KeyPair) -> Result<(), Box<dyn std::error::Error>> {
/// let endpoint = Endpoint::bind("127.0.0.1:30333".parse()?, &key, TransportConfig::default())?;
/// let network = Network::start(endpoint.clone(), Arc::new(key), host, NetworkConfig::new(1)).await?;
/// println!("{} peers", network.status().await?.peers);
/// network.shutdown().await;
/// endpoint.close().await;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Network {
    commands: mpsc::Sender<Command>,
    dht: Dht,
    task: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Publish(_) => "Publish",
            Self::Peers(_) => "Peers",
            Self::Status(_) => "Status",
            Self::Shutdown(_) => "Shutdown",
        })
    }
}

impl Network {
    /// Starts the DHT and the network task on `endpoint` (bound with `key`), dials the
    /// bootstrap peers and begins accepting connections. The endpoint stays the caller's
    /// to close after [`shutdown`](Self::shutdown).
    pub async fn start<H: ChainHost>(
        endpoint: Endpoint,
        key: Arc<KeyPair>,
        host: Arc<H>,
        config: NetworkConfig,
    ) -> Result<Self, NetworkError> {
        let mut security = SecurityManager::new(config.security.clone())?;
        let clock = blyan_security::SystemClock::new();
        if let Some(dir) = &config.data_dir {
            match security.load_bans(&dir.join(BAN_FILE), clock.now()) {
                Ok(banned) if !banned.is_empty() => {
                    tracing::info!(count = banned.len(), "loaded peer bans");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "could not load the ban file; starting without bans")
                }
            }
        }
        let dht = Dht::spawn(endpoint.clone(), &key, config.dht.clone()).await?;
        let (commands, command_rx) = mpsc::channel(64);
        let task = task::Task::new(
            endpoint,
            key,
            host,
            config,
            security,
            clock,
            dht.clone(),
            command_rx,
        );
        let handle = tokio::spawn(task.run());
        Ok(Self {
            commands,
            dht,
            task: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// The DHT driver sharing the endpoint.
    pub fn dht(&self) -> &Dht {
        &self.dht
    }

    /// Signs and spreads a block we produced.
    pub async fn publish_block(&self, block: Block) -> Result<(), NetworkError> {
        self.send(Command::Publish(Box::new(
            crate::message::GossipPayload::Block(block),
        )))
        .await
    }

    /// Signs and spreads a transaction that entered our pool from a local client.
    pub async fn publish_tx(&self, tx: SignedTransaction) -> Result<(), NetworkError> {
        self.send(Command::Publish(Box::new(
            crate::message::GossipPayload::Tx(tx),
        )))
        .await
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Peers(reply)).await?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    /// Peers, sync progress and bans.
    pub async fn status(&self) -> Result<NetworkStatus, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Status(reply)).await?;
        let mut status = rx.await.map_err(|_| NetworkError::Stopped)?;
        status.dht_nodes = self.dht.status().await.map_or(0, |s| s.table_len);
        Ok(status)
    }

    /// Stops the task (connections closed, bans saved) and the DHT (table saved).
    pub async fn shutdown(&self) {
        let (reply, rx) = oneshot::channel();
        if self.commands.send(Command::Shutdown(reply)).await.is_ok() {
            let _ = rx.await;
        }
        let handle = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            let _ = handle.await;
        }
        if let Err(error) = self.dht.shutdown().await {
            tracing::debug!(%error, "DHT shutdown");
        }
    }

    async fn send(&self, command: Command) -> Result<(), NetworkError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetworkError::Stopped)
    }
}

/// File name of the saved bans inside [`NetworkConfig::data_dir`].
pub const BAN_FILE: &str = "bans.json";

/// The DHT seeds for the bootstrap list.
fn seeds(bootstrap: &[(PeerId, SocketAddr)]) -> Vec<Seed> {
    bootstrap
        .iter()
        .map(|(peer, addr)| Seed {
            addr: *addr,
            peer: Some(*peer),
        })
        .collect()
}
