//! The node: the chain and the mempool behind one lock, block production, and the events a
//! network service subscribes to.
//!
//! [`Node::open`] loads the key, the genesis and the database. [`Node::start`] binds the
//! API and spawns the production loop; the returned [`RunningNode`] shuts everything down
//! in order. A [`NodeHandle`] (cheap to clone) is what the API and, later, the peer-to-peer
//! service use: [`NodeHandle::import_block`] and [`NodeHandle::submit_tx`] are where blocks
//! and transactions from peers enter, and [`NodeHandle::subscribe`] yields what should be
//! gossiped ([`NodeEvent`]).
//!
//! Every chain operation runs on tokio's blocking pool under one `std::sync::Mutex`:
//! imports fsync, and an async worker must never wait on a disk. Keeping it to one lock
//! and one operation at a time is the "sequential until proven slow" rule; the chain
//! manager is single-writer anyway.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use blyan_consensus::{
    Account, AccountProof, Block, BlockValidator, BuildError, ChainConfig, ChainEvent,
    ChainManager, Clock, ForkChain, Genesis, ImportOutcome, Mempool, SignedTransaction,
    SystemClock, VerifiedBlock, build_block,
};
use blyan_crypto::{Address, Hash, KeyPair, PeerId};
use blyan_ops::metrics_collector;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

use crate::config::{NodeConfig, Role};
use crate::error::{NodeError, SubmitError};
use crate::genesis_file::{dev_genesis, read_genesis, write_genesis};
use crate::node_key::{PassphraseSource, load_node_key};

/// Capacity of the [`NodeEvent`] channel. A subscriber that falls further behind loses the
/// oldest events (and is told how many): a slow network service never blocks the chain.
pub const EVENT_CAPACITY: usize = 1024;

/// Name of the chain database inside the data directory.
pub const DATABASE_FILE: &str = "chain.redb";

/// Name of the dev chain's genesis file inside the data directory.
pub const DEV_GENESIS_FILE: &str = "genesis.json";

/// What the node did that a network service should act on (gossip, announce).
#[derive(Debug, Clone)]
pub enum NodeEvent {
    /// A transaction entered the mempool (from the API or a peer).
    TxAdmitted {
        /// Its hash.
        hash: Hash,
        /// The transaction.
        tx: Arc<SignedTransaction>,
        /// Whether it came from a local client (the API) rather than from a peer: only
        /// local ones are published; the network relays peers' by itself.
        local: bool,
    },
    /// A block became canonical.
    BlockImported {
        /// The block.
        block: Arc<Block>,
        /// Whether this node produced it.
        produced: bool,
    },
}

/// Facts about the running node that do not change while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    /// Configured name (`NODE_ID`), or the peer id.
    pub name: String,
    /// The role.
    pub role: Role,
    /// The node's peer id.
    pub peer_id: PeerId,
    /// The node key's account address.
    pub address: Address,
    /// Chain id.
    pub chain_id: u32,
    /// Genesis block hash.
    pub genesis_hash: Hash,
    /// Slot length in milliseconds.
    pub slot_duration_ms: u64,
    /// Whether this node's key is in the validator set and its role is `VALIDATOR`.
    pub producing: bool,
    /// Whether this is the dev chain (genesis created by the node itself).
    pub dev_chain: bool,
    /// Node version.
    pub version: &'static str,
}

/// The chain at one instant, for `/api/status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStatus {
    /// Height of the canonical tip.
    pub height: u64,
    /// Hash of the canonical tip.
    pub tip_hash: Hash,
    /// Slot of the canonical tip.
    pub tip_slot: u64,
    /// Highest finalized height (none while the chain is shorter than the finality depth).
    pub finalized_height: Option<u64>,
    /// Transactions in the mempool.
    pub mempool_size: usize,
    /// State root at the tip.
    pub state_root: Hash,
    /// Reorgs since the node started.
    pub reorgs: u64,
    /// Branches refused since start because adopting them would revert more than
    /// `max_reorg_depth` blocks.
    pub reorgs_refused: u64,
}

/// An account at the tip, optionally with its proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountAtTip {
    /// The account (empty if none is stored).
    pub account: Account,
    /// Tip height.
    pub height: u64,
    /// The state root the proof verifies against.
    pub state_root: Hash,
    /// The inclusion or absence proof, if asked for.
    pub proof: Option<AccountProof>,
}

/// The chain and the mempool: changed together, under one lock.
pub(crate) struct ChainState {
    pub(crate) chain: ChainManager,
    pub(crate) mempool: Mempool,
}

pub(crate) struct Shared {
    pub(crate) state: Mutex<Option<ChainState>>,
    info: NodeInfo,
    genesis: Genesis,
    /// The chain's rules, for verifying blocks without the state lock.
    pub(crate) validator: BlockValidator,
    producer: Option<Arc<KeyPair>>,
    pub(crate) key: Arc<KeyPair>,
    pub(crate) network: std::sync::OnceLock<blyan_p2p::Network>,
    clock: Arc<dyn Clock>,
    events: broadcast::Sender<NodeEvent>,
    shutting_down: AtomicBool,
    /// Reorgs since start.
    pub(crate) reorgs: std::sync::atomic::AtomicU64,
    /// Branches refused since start because adopting them would revert more than
    /// `max_reorg_depth` blocks.
    pub(crate) reorgs_refused: std::sync::atomic::AtomicU64,
}

/// A cheap, cloneable handle to a node's chain: what the API and the network use.
#[derive(Clone)]
pub struct NodeHandle {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for NodeHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeHandle")
            .field("info", &self.shared.info)
            .finish_non_exhaustive()
    }
}

/// Looks up an environment variable by name.
pub type EnvLookup = Box<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Choices made by whoever starts the node rather than by the configuration file.
pub struct NodeOptions {
    /// The clock; [`SystemClock`] for a real node, a manual clock in tests.
    pub clock: Arc<dyn Clock>,
    /// Looks up environment variables (the key passphrase).
    pub env: EnvLookup,
    /// A peer-to-peer endpoint bound by the caller with the node key (a simulated network
    /// in tests); `None` binds `network.listen_addr` on UDP.
    pub endpoint: Option<blyan_wire::Endpoint>,
    /// Run the production loop (validators). Tests driving a manual clock turn it off and
    /// call [`NodeHandle::produce_block`] themselves.
    pub produce_blocks: bool,
}

impl Default for NodeOptions {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
            env: Box::new(|name| std::env::var(name).ok()),
            endpoint: None,
            produce_blocks: true,
        }
    }
}

impl std::fmt::Debug for NodeOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeOptions")
            .field("produce_blocks", &self.produce_blocks)
            .finish_non_exhaustive()
    }
}

/// An opened node: key, genesis and database loaded, nothing served yet.
#[derive(Debug)]
pub struct Node {
    handle: NodeHandle,
    config: NodeConfig,
    produce_blocks: bool,
    endpoint: Option<blyan_wire::Endpoint>,
    passphrase_source: PassphraseSource,
    genesis_path: PathBuf,
}

impl Node {
    /// Opens the node described by `config`: creates the data directory, loads (or
    /// creates) the node key, reads the genesis (or creates the dev genesis on first
    /// start), and opens the database, resuming its tip.
    pub fn open(config: NodeConfig, options: NodeOptions) -> Result<Self, NodeError> {
        if config.node.role == Role::Light {
            return Err(NodeError::RoleUnavailable(Role::Light));
        }
        let data = config.storage.path.clone();
        std::fs::create_dir_all(&data).map_err(|source| NodeError::DataDir {
            path: data.clone(),
            source,
        })?;
        let dev_chain = config.consensus.genesis_file.is_none();
        let (key, passphrase_source) = load_node_key(&config, &*options.env, dev_chain)?;
        let key = Arc::new(key);
        let genesis_path = config
            .consensus
            .genesis_file
            .clone()
            .unwrap_or_else(|| data.join(DEV_GENESIS_FILE));
        let genesis = if dev_chain && !genesis_path.exists() {
            let genesis = dev_genesis(&config.consensus, &key.public_key(), options.clock.now_ms());
            write_genesis(&genesis_path, &genesis, false)?;
            tracing::info!(path = %genesis_path.display(), "created dev chain genesis");
            genesis
        } else {
            read_genesis(&genesis_path)?
        };
        let genesis_hash = genesis.hash().map_err(|source| {
            NodeError::Genesis(crate::genesis_file::GenesisFileError::Unusable {
                path: genesis_path.clone(),
                source,
            })
        })?;

        let mut chain_config = ChainConfig::default();
        chain_config.fork_choice.canonical_retention = chain_config
            .fork_choice
            .canonical_retention
            .max(genesis.params.max_reorg_depth.saturating_add(1));
        let chain = ChainManager::open(
            data.join(DATABASE_FILE),
            genesis.clone(),
            chain_config,
            options.clock.clone(),
        )?;
        let mempool = Mempool::new(config.mempool.to_mempool_config(), &genesis);

        let in_set = genesis.validators.contains(&key.public_key());
        let producing = config.node.role == Role::Validator && in_set;
        if config.node.role == Role::Validator && !in_set {
            tracing::warn!(
                address = %key.address(),
                "role is VALIDATOR but the node key is not in the genesis validator set: \
                 this node will not produce blocks"
            );
        }
        let info = NodeInfo {
            name: config
                .node
                .name
                .clone()
                .unwrap_or_else(|| key.peer_id().to_string()),
            role: config.node.role,
            peer_id: key.peer_id(),
            address: key.address(),
            chain_id: genesis.chain_id,
            genesis_hash,
            slot_duration_ms: genesis.slot_duration_ms,
            producing,
            dev_chain,
            version: env!("CARGO_PKG_VERSION"),
        };
        metrics_collector::update_chain_height(chain.tip().height);
        if let Some(finalized) = chain.finalized_height() {
            metrics_collector::update_finalized_height(finalized);
        }
        metrics_collector::set_mempool_size(0);
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let shared = Shared {
            state: Mutex::new(Some(ChainState { chain, mempool })),
            info,
            validator: BlockValidator::new(genesis.clone()),
            genesis,
            producer: producing.then(|| Arc::clone(&key)),
            key,
            network: std::sync::OnceLock::new(),
            clock: options.clock,
            events,
            shutting_down: AtomicBool::new(false),
            reorgs: std::sync::atomic::AtomicU64::new(0),
            reorgs_refused: std::sync::atomic::AtomicU64::new(0),
        };
        Ok(Self {
            handle: NodeHandle {
                shared: Arc::new(shared),
            },
            config,
            produce_blocks: options.produce_blocks,
            endpoint: options.endpoint,
            passphrase_source,
            genesis_path,
        })
    }

    /// The handle to this node's chain.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// The configuration the node was opened with.
    pub fn config(&self) -> &NodeConfig {
        &self.config
    }

    /// Where the key passphrase came from.
    pub fn passphrase_source(&self) -> &PassphraseSource {
        &self.passphrase_source
    }

    /// The genesis file in use.
    pub fn genesis_path(&self) -> &std::path::Path {
        &self.genesis_path
    }

    /// Binds the API listener, then serves the API and (for a producing validator) runs
    /// the production loop in the background.
    ///
    /// This is where the peer-to-peer service will attach: it takes a [`NodeHandle`],
    /// feeds [`NodeHandle::import_block`] / [`NodeHandle::submit_tx`] and gossips what
    /// [`NodeHandle::subscribe`] yields.
    pub async fn start(self) -> Result<RunningNode, NodeError> {
        let addr = self.config.api.listen_addr;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| NodeError::ApiBind { addr, source })?;
        let api_addr = listener
            .local_addr()
            .map_err(|source| NodeError::ApiBind { addr, source })?;
        let (stop_tx, stop_rx) = watch::channel(false);
        let router = crate::api::router(self.handle.clone(), &self.config.api);
        let mut api_stop = stop_rx.clone();
        let api = tokio::spawn(async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = api_stop.wait_for(|stop| *stop).await;
                })
                .await
        });
        let network = match crate::network::start(&self.handle, &self.config, self.endpoint).await {
            Ok(network) => network,
            Err(error) => {
                let _ = stop_tx.send(true);
                let _ = api.await;
                return Err(error);
            }
        };
        let _ = self.handle.shared.network.set(network.network.clone());
        let publisher = tokio::spawn(crate::network::publish_loop(
            network.network.clone(),
            self.handle.subscribe(),
            stop_rx.clone(),
        ));
        let producer = (self.produce_blocks && self.handle.shared.producer.is_some())
            .then(|| tokio::spawn(production_loop(self.handle.clone(), stop_rx)));
        Ok(RunningNode {
            handle: self.handle,
            api_addr,
            stop: stop_tx,
            api,
            producer,
            network,
            publisher,
        })
    }
}

/// A node serving its API (and producing, if it is a validator).
#[derive(Debug)]
pub struct RunningNode {
    handle: NodeHandle,
    api_addr: SocketAddr,
    stop: watch::Sender<bool>,
    api: JoinHandle<std::io::Result<()>>,
    producer: Option<JoinHandle<()>>,
    network: crate::network::RunningNetwork,
    publisher: JoinHandle<()>,
}

impl RunningNode {
    /// The address the API is served on (the bound port when configured with port 0).
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// The address the peer-to-peer endpoint is bound to.
    pub fn p2p_addr(&self) -> SocketAddr {
        self.network.addr
    }

    /// The address other nodes dial (`network.advertise_addr`, or the bound address with
    /// an unspecified IP read as 127.0.0.1).
    pub fn p2p_advertised(&self) -> SocketAddr {
        self.network.advertise
    }

    /// The handle to the node's chain.
    pub fn handle(&self) -> NodeHandle {
        self.handle.clone()
    }

    /// Shuts down in order: API requests get 503 and no new connection is accepted, open
    /// requests finish; the block being produced or imported finishes; the database is
    /// flushed and closed.
    pub async fn shutdown(self) -> Result<(), NodeError> {
        self.handle
            .shared
            .shutting_down
            .store(true, Ordering::SeqCst);
        let _ = self.stop.send(true);
        let api = self.api.await;
        if let Some(producer) = self.producer {
            producer.await.map_err(|e| NodeError::Task(e.to_string()))?;
        }
        let _ = self.publisher.await;
        self.network.network.shutdown().await;
        self.network.endpoint.close().await;
        let closed = self.handle.close().await;
        match api {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "API server ended with an error"),
            Err(e) => return Err(NodeError::Task(e.to_string())),
        }
        closed
    }
}

async fn production_loop(handle: NodeHandle, mut stop: watch::Receiver<bool>) {
    let genesis = handle.shared.genesis.clone();
    loop {
        if *stop.borrow() {
            return;
        }
        match handle.produce_block().await {
            Ok(Some(block)) => tracing::info!(
                height = block.header.height,
                slot = block.header.slot,
                hash = %block.hash(),
                txs = block.txs.len(),
                "produced block"
            ),
            Ok(None) => {}
            Err(NodeError::ShuttingDown) => return,
            Err(error) => tracing::warn!(%error, "block production failed"),
        }
        let now = handle.shared.clock.now_ms();
        let next = genesis
            .slot_start_ms(genesis.slot_at(now).saturating_add(1))
            .unwrap_or(u64::MAX);
        // At least 1 ms, so a clock at a slot boundary cannot spin.
        let wait = Duration::from_millis(next.saturating_sub(now).max(1));
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

impl NodeHandle {
    /// Facts about this node.
    pub fn info(&self) -> &NodeInfo {
        &self.shared.info
    }

    /// The genesis document.
    pub fn genesis(&self) -> &Genesis {
        &self.shared.genesis
    }

    /// From now on the API answers 503.
    pub(crate) fn begin_shutdown(&self) {
        self.shared.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown has begun.
    pub fn is_shutting_down(&self) -> bool {
        self.shared.shutting_down.load(Ordering::SeqCst)
    }

    /// The peer-to-peer service, once the node is started.
    pub fn network(&self) -> Option<&blyan_p2p::Network> {
        self.shared.network.get()
    }

    /// The connected peers (none before the node is started).
    pub async fn peers(&self) -> Result<Vec<blyan_p2p::PeerInfo>, NodeError> {
        match self.network() {
            Some(network) => network.peers().await.map_err(|_| NodeError::ShuttingDown),
            None => Ok(Vec::new()),
        }
    }

    /// Peers, sync progress and bans; `None` before the node is started.
    pub async fn network_status(&self) -> Result<Option<blyan_p2p::NetworkStatus>, NodeError> {
        match self.network() {
            Some(network) => network
                .status()
                .await
                .map(Some)
                .map_err(|_| NodeError::ShuttingDown),
            None => Ok(None),
        }
    }

    /// Events to gossip: admitted transactions and new canonical blocks.
    pub fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.shared.events.subscribe()
    }

    /// Runs `f` on the chain state on the blocking pool, under the lock.
    async fn with_state<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut ChainState, &Shared) -> Result<T, NodeError> + Send + 'static,
    ) -> Result<T, NodeError> {
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let mut guard = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
            let state = guard.as_mut().ok_or(NodeError::ShuttingDown)?;
            f(state, &shared)
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))?
    }

    /// The canonical tip and the mempool size.
    pub async fn chain_status(&self) -> Result<ChainStatus, NodeError> {
        self.with_state(|state, shared| {
            let tip = state.chain.tip();
            Ok(ChainStatus {
                height: tip.height,
                tip_hash: tip.hash,
                tip_slot: tip.slot,
                finalized_height: state.chain.finalized_height(),
                mempool_size: state.mempool.len(),
                state_root: state.chain.state_root(),
                reorgs: shared.reorgs.load(Ordering::Relaxed),
                reorgs_refused: shared.reorgs_refused.load(Ordering::Relaxed),
            })
        })
        .await
    }

    /// The canonical tip block.
    pub async fn latest_block(&self) -> Result<Block, NodeError> {
        self.with_state(|state, _| Ok(state.chain.get_latest_block()?))
            .await
    }

    /// The canonical block at `height`.
    pub async fn block_by_height(&self, height: u64) -> Result<Option<Block>, NodeError> {
        self.with_state(move |state, _| Ok(state.chain.get_block_by_height(height)?))
            .await
    }

    /// A stored block (canonical or side) by hash.
    pub async fn block_by_hash(&self, hash: Hash) -> Result<Option<Block>, NodeError> {
        self.with_state(move |state, _| Ok(state.chain.get_block(&hash)?))
            .await
    }

    /// Whether `hash` is canonical and final.
    pub async fn is_finalized(&self, hash: Hash) -> Result<bool, NodeError> {
        self.with_state(move |state, _| Ok(state.chain.is_finalized(&hash)?))
            .await
    }

    /// The account under `address` at the tip, with its proof when `proof` is set.
    pub async fn account(&self, address: Address, proof: bool) -> Result<AccountAtTip, NodeError> {
        self.with_state(move |state, _| {
            let chain = &state.chain;
            Ok(AccountAtTip {
                account: chain.account(&address)?,
                height: chain.tip().height,
                state_root: chain.state_root(),
                proof: if proof {
                    Some(chain.account_proof(&address)?)
                } else {
                    None
                },
            })
        })
        .await
    }

    /// The live side branches, best first.
    pub async fn forks(&self) -> Result<Vec<ForkChain>, NodeError> {
        self.with_state(|state, _| Ok(state.chain.get_fork_chains()))
            .await
    }

    /// Validates `tx` against the tip state and admits it into the mempool; announces it
    /// as [`NodeEvent::TxAdmitted`]. Transactions from the API and from peers enter here.
    pub async fn submit_tx(&self, tx: SignedTransaction) -> Result<Hash, SubmitError> {
        let result = self
            .with_state(move |state, shared| admit_tx(state, shared, tx, true))
            .await?;
        Ok(result?)
    }

    /// Imports a block from elsewhere (a peer, a file): validates, stores, moves the tip,
    /// updates the mempool and announces new canonical blocks.
    pub async fn import_block(&self, block: Block) -> Result<ImportOutcome, NodeError> {
        self.with_state(move |state, shared| import(state, shared, block, false))
            .await
    }

    /// Produces and imports the block of the current slot if it is this node's slot and
    /// no block of it exists yet. `None` when there is nothing to do.
    pub async fn produce_block(&self) -> Result<Option<Block>, NodeError> {
        self.with_state(|state, shared| {
            let Some(key) = shared.producer.clone() else {
                return Ok(None);
            };
            let now = shared.clock.now_ms();
            let slot = shared.genesis.slot_at(now);
            if shared.genesis.producer_of(slot) != Some(&key.public_key())
                || slot <= state.chain.tip_header().slot
            {
                return Ok(None);
            }
            let view = state.chain.store().state_view()?;
            let parent = state.chain.tip_header().clone();
            let built = match build_block(
                state.chain.validator(),
                &state.mempool,
                slot,
                &key,
                &parent,
                &view,
                now,
            ) {
                Ok(built) => built,
                Err(BuildError::Header(reason)) => {
                    tracing::debug!(slot, %reason, "not producing in this slot");
                    return Ok(None);
                }
                Err(e) => return Err(e.into()),
            };
            drop(view);
            for hash in &built.invalid {
                state.mempool.remove(hash);
            }
            let block = built.block;
            import(state, shared, block.clone(), true)?;
            Ok(Some(block))
        })
        .await
    }

    /// Flushes and closes the database; every later call fails with
    /// [`NodeError::ShuttingDown`].
    async fn close(&self) -> Result<(), NodeError> {
        self.begin_shutdown();
        let shared = self.shared.clone();
        tokio::task::spawn_blocking(move || {
            let state = shared
                .state
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            match state {
                Some(state) => {
                    state.chain.store().flush()?;
                    let height = state.chain.tip().height;
                    drop(state);
                    tracing::info!(height, "chain database flushed and closed");
                    Ok(())
                }
                None => Ok(()),
            }
        })
        .await
        .map_err(|e| NodeError::Task(e.to_string()))?
    }
}

/// Admits `tx` into the mempool against the tip state and announces it.
pub(crate) fn admit_tx(
    state: &mut ChainState,
    shared: &Shared,
    tx: SignedTransaction,
    local: bool,
) -> Result<Result<Hash, blyan_consensus::MempoolError>, NodeError> {
    let view = state.chain.store().state_view()?;
    let admitted = state.mempool.insert(tx.clone(), &view);
    metrics_collector::set_mempool_size(state.mempool.len());
    if let Ok(hash) = admitted {
        let _ = shared.events.send(NodeEvent::TxAdmitted {
            hash,
            tx: Arc::new(tx),
            local,
        });
    }
    Ok(admitted)
}

/// A block to import: not checked yet, or verified off the lock
/// (`BlockValidator::pre_verify`, so its signatures are not verified again).
pub(crate) enum Incoming {
    /// Checked in full on import.
    Block(Block),
    /// Its stateless checks passed.
    Verified(VerifiedBlock),
}

impl From<Block> for Incoming {
    fn from(block: Block) -> Self {
        Self::Block(block)
    }
}

impl From<VerifiedBlock> for Incoming {
    fn from(block: VerifiedBlock) -> Self {
        Self::Verified(block)
    }
}

/// Imports `block` and brings the mempool and the metrics in line with the new tip.
pub(crate) fn import(
    state: &mut ChainState,
    shared: &Shared,
    block: impl Into<Incoming>,
    produced: bool,
) -> Result<ImportOutcome, NodeError> {
    let (block, outcome) = match block.into() {
        Incoming::Block(block) => {
            let block = Arc::new(block);
            let outcome = state.chain.add_block(Block::clone(&block))?;
            (block, outcome)
        }
        Incoming::Verified(verified) => {
            let block = Arc::new(verified.block().clone());
            (block, state.chain.add_verified_block(verified)?)
        }
    };
    let mut applied: Vec<Arc<Block>> = Vec::new();
    let mut reverted: Vec<Hash> = Vec::new();
    if let ImportOutcome::Imported { reorg, .. } = &outcome {
        match reorg {
            Some(reorg) => {
                shared.reorgs.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    depth = reorg.reverted.len(),
                    applied = reorg.applied.len(),
                    "reorg to a longer branch"
                );
                reverted.extend(reorg.reverted.iter().copied());
                for hash in &reorg.applied {
                    if let Some(b) = state.chain.get_block(hash)? {
                        applied.push(Arc::new(b));
                    }
                }
            }
            None => applied.push(block.clone()),
        }
    }
    for event in state.chain.drain_events() {
        match event {
            ChainEvent::OrphanProcessed {
                hash,
                result: Ok(ImportOutcome::Imported { .. }),
            } => {
                if let Some(b) = state.chain.get_block(&hash)? {
                    applied.push(Arc::new(b));
                }
            }
            ChainEvent::OrphanProcessed {
                hash,
                result: Err(error),
            } => tracing::warn!(%hash, %error, "released orphan refused"),
            ChainEvent::OrphanProcessed { .. } => {}
            ChainEvent::Equivocation(evidence) => {
                tracing::warn!(?evidence, "validator equivocation observed");
            }
            ChainEvent::Pruned(hashes) => {
                tracing::debug!(count = hashes.len(), "pruned side blocks");
            }
        }
    }
    if !applied.is_empty() || !reverted.is_empty() {
        let mut back = Vec::new();
        for hash in &reverted {
            if let Some(b) = state.chain.get_block(hash)? {
                back.extend(b.txs);
            }
        }
        for b in &applied {
            state.mempool.remove_included(b);
        }
        let view = state.chain.store().state_view()?;
        state
            .mempool
            .reinsert_reverted(back, &view)
            .map_err(|e| NodeError::Chain(e.into()))?;
        state
            .mempool
            .revalidate(&view)
            .map_err(|e| NodeError::Chain(e.into()))?;
    }
    metrics_collector::set_mempool_size(state.mempool.len());
    metrics_collector::set_orphan_blocks(state.chain.fork_choice().orphan_count());
    for b in applied {
        let produced = produced && Arc::ptr_eq(&b, &block);
        let _ = shared
            .events
            .send(NodeEvent::BlockImported { block: b, produced });
    }
    Ok(outcome)
}
