//! The tokio driver (feature `driver`): [`Dht`], a handle to one task that owns a
//! [`DhtCore`] and does its IO over the blyan-wire QUIC transport.

mod config;
mod connections;
mod inbound;
mod shared;
mod task;

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blyan_crypto::{KeyPair, PeerId};
use blyan_wire::{Connection, Endpoint, InboundRequest};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use config::DriverConfig;
pub use inbound::InboundError;

use crate::dht_core::{DhtCore, DhtError, Seed};
use crate::distance::Key;
use crate::node::NodeInfo;
use crate::node_record::{NodeRecord, RecordError};
use crate::persist::{PersistError, load_table, quarantine};
use crate::record_cache::RecordCache;
use crate::rpc::FoundValue;
use connections::ConnectionCache;
use shared::Shared;
use task::{Command, Task, TaskParts};

/// Why a [`Dht`] call failed.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The core refused the command (too many queries, a value too large, no seeds...).
    #[error(transparent)]
    Refused(#[from] DhtError),
    /// The driver has shut down (or its task ended).
    #[error("the DHT driver has stopped")]
    Stopped,
    /// The key pair is not the endpoint's identity.
    #[error("the key pair ({key}) is not the endpoint's identity ({endpoint})")]
    KeyMismatch {
        /// The key pair's peer id.
        key: PeerId,
        /// The endpoint's peer id.
        endpoint: PeerId,
    },
    /// An address to advertise is unspecified (`0.0.0.0` or `::`): peers could not dial it.
    #[error("cannot advertise the unspecified address {0}; set DriverConfig::advertise")]
    UnspecifiedAddress(SocketAddr),
    /// The endpoint's address could not be read.
    #[error("reading the endpoint's address: {0}")]
    LocalAddr(#[source] std::io::Error),
    /// Our own node record could not be signed (bad address list).
    #[error("signing our node record: {0}")]
    Record(#[from] RecordError),
    /// The routing table could not be saved on shutdown.
    #[error("saving the routing table: {0}")]
    Save(#[from] PersistError),
}

/// A snapshot of the driver's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DhtStatus {
    /// Nodes in the routing table.
    pub table_len: usize,
    /// Nodes waiting for a validation ping (loaded from disk, or that contacted us).
    pub candidates: usize,
    /// Queries running (commands and maintenance).
    pub queries: usize,
    /// Requests in flight.
    pub outstanding_rpcs: usize,
    /// Values held for others.
    pub stored_values: usize,
    /// Live connections in the connection cache.
    pub connections: usize,
}

/// How a [`Dht::store`] went: how the k closest nodes answered the STORE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreSummary {
    /// Nodes that stored the value.
    pub stored: usize,
    /// Nodes that refused it (full, too large).
    pub refused: usize,
    /// Nodes that did not answer.
    pub failed: usize,
}

/// The DHT's public face: a cheap-to-clone handle to the task that owns the Kademlia core.
///
/// [`Dht::spawn`] starts the task on an [`Endpoint`]; [`bootstrap`](Self::bootstrap),
/// [`find_node`](Self::find_node), [`store`](Self::store) and [`get`](Self::get) send it a
/// command over a bounded queue and wait for the query's result. Inbound requests come in
/// through [`handle_inbound`](Self::handle_inbound) (from a protocol router that owns the
/// endpoint's connections) or the driver's own accept loop, [`serve`](Self::serve).
/// [`shutdown`](Self::shutdown) saves the table and closes the connections; the endpoint
/// stays the caller's.
///
/// ```no_run
/// use std::net::SocketAddr;
/// use std::time::Duration;
/// use blyan_crypto::KeyPair;
/// use blyan_dht::{Dht, DriverConfig, Key, Seed};
/// use blyan_wire::{Endpoint, TransportConfig};
///
/// # async fn run(key: KeyPair, seed: Seed) -> Result<(), Box<dyn std::error::Error>> {
/// let listen = SocketAddr::from(([192, 0, 2, 1], 7000));
/// let endpoint = Endpoint::bind(listen, &key, TransportConfig::default())?;
/// let config = DriverConfig { chain_id: 1, data_dir: Some("/var/lib/blyan".into()), ..DriverConfig::default() };
/// let dht = Dht::spawn(endpoint.clone(), &key, config).await?;
/// dht.serve(endpoint.clone());
/// dht.bootstrap([seed]).await?;
/// let closest = dht.find_node(Key::for_value(b"anything")).await?;
/// dht.store(Key::for_value(b"name"), b"value".to_vec(), Duration::from_secs(3600)).await?;
/// let values = dht.get(Key::for_value(b"name")).await?;
/// dht.shutdown().await?;
/// endpoint.close().await;
/// # let _ = (closest, values);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct Dht {
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Dht {
    /// Starts the driver on `endpoint` with `key` as our identity.
    ///
    /// `key` is the node key (keep it in a [`blyan_crypto::KeyStore`] so the node keeps its
    /// id across restarts) and must be the endpoint's. Our node record is signed over
    /// `config.advertise` (or the endpoint's address) with a sequence number above both
    /// the current Unix time in seconds and the one saved last. If `config.data_dir` holds
    /// a saved table, its nodes become candidates that enter the table only once they
    /// answer a ping; an unreadable file is logged and ignored (the table is a cache that
    /// bootstrap rebuilds).
    ///
    /// Must be called inside a Tokio runtime.
    pub async fn spawn(
        endpoint: Endpoint,
        key: &KeyPair,
        config: DriverConfig,
    ) -> Result<Self, DriverError> {
        let local = key.peer_id();
        if endpoint.peer_id() != local {
            return Err(DriverError::KeyMismatch {
                key: local,
                endpoint: endpoint.peer_id(),
            });
        }
        let advertise = if config.advertise.is_empty() {
            vec![endpoint.local_addr().map_err(DriverError::LocalAddr)?]
        } else {
            config.advertise.clone()
        };
        if let Some(addr) = advertise.iter().find(|a| a.ip().is_unspecified()) {
            return Err(DriverError::UnspecifiedAddress(*addr));
        }
        let table_path = config
            .data_dir
            .as_ref()
            .map(|dir| dir.join(TABLE_FILE_NAME));
        let loaded = match table_path.clone() {
            Some(path) => {
                let chain_id = config.chain_id;
                tokio::task::spawn_blocking(move || load_saved_table(&path, chain_id))
                    .await
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        // Milliseconds: a restart signs a higher sequence number than the last run did
        // (unless the clock went back), so peers replace the record they hold.
        let seq = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let record: Arc<[u8]> = NodeRecord::new(key, config.chain_id, &advertise, seq)?
            .encode()?
            .into();

        let records = RecordCache::new(config.chain_id, config.record_cache);
        let rng_seed = seq ^ u64::from_le_bytes(local.as_bytes()[..8].try_into().unwrap_or([0; 8]));
        let mut core = DhtCore::new(local, config.dht.clone(), rng_seed);
        let taken = core.add_candidates(loaded.into_iter().filter(|n| n.peer_id() != local));
        if taken > 0 {
            tracing::info!(taken, "saved DHT routing table entries to re-validate");
        }

        let (commands, command_rx) = mpsc::channel(config.command_queue.max(1));
        let (inbound_jobs, inbound_rx) = mpsc::channel(config.max_inbound_requests.max(1));
        let (stopped_tx, stopped) = watch::channel(false);
        let shared = Arc::new(Shared {
            local,
            record,
            endpoint,
            connections: ConnectionCache::new(config.max_connections),
            inbound_jobs,
            inbound_permits: Arc::new(Semaphore::new(config.max_inbound_requests.max(1))),
            serve_permits: Arc::new(Semaphore::new(config.max_connections.max(1) * 2)),
            serving: AtomicBool::new(false),
            dialled_sink: Mutex::new(None),
            stopped,
            inbound_timeout: config.inbound_timeout,
        });
        let task = Task::new(TaskParts {
            core,
            shared: Arc::clone(&shared),
            table_path,
            save_interval: config.save_interval,
            records,
            commands: command_rx,
            inbound: inbound_rx,
            stopped: stopped_tx,
        });
        let handle = tokio::spawn(task.run());
        Ok(Self {
            commands,
            shared,
            tasks: Arc::new(Mutex::new(vec![handle])),
        })
    }

    /// Our peer id (the Kademlia node id).
    pub fn local_id(&self) -> PeerId {
        self.shared.local
    }

    /// Our signed node record, as every answer carries it.
    pub fn local_record(&self) -> &[u8] {
        &self.shared.record
    }

    /// Joins the network through `seeds` (an address, and the peer id if known: a dial to
    /// a known id fails unless the remote proves it). Returns the table size when the
    /// lookup of our own id ended; bucket refreshes keep filling the table afterwards.
    pub async fn bootstrap(
        &self,
        seeds: impl IntoIterator<Item = Seed>,
    ) -> Result<usize, DriverError> {
        let seeds = seeds.into_iter().collect();
        self.ask(|reply| Command::Bootstrap { seeds, reply }).await
    }

    /// The k nodes closest to `target` that answered (at most `max_per_subnet_result` per
    /// /24), closest first.
    pub async fn find_node(&self, target: Key) -> Result<Vec<NodeInfo>, DriverError> {
        self.ask(|reply| Command::FindNode { target, reply }).await
    }

    /// Publishes `value` under `key` for `ttl` on the k nodes closest to it, and keeps
    /// republishing it while the driver runs.
    pub async fn store(
        &self,
        key: Key,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<StoreSummary, DriverError> {
        self.ask(|reply| Command::Store {
            key,
            value,
            ttl,
            reply,
        })
        .await
    }

    /// The values held under `key`, one per publisher (empty if none was found).
    pub async fn get(&self, key: Key) -> Result<Vec<FoundValue>, DriverError> {
        self.ask(|reply| Command::Get { key, reply }).await
    }

    /// A snapshot of the driver's state.
    pub async fn status(&self) -> Result<DhtStatus, DriverError> {
        self.call(|reply| Command::Status { reply }).await
    }

    /// The nodes in the routing table.
    pub async fn table_nodes(&self) -> Result<Vec<NodeInfo>, DriverError> {
        self.call(|reply| Command::TableNodes { reply }).await
    }

    /// Answers one DHT request that a protocol router received on protocol
    /// [`PROTOCOL_ID`](crate::PROTOCOL_ID) from the authenticated `from` at `from_addr`.
    ///
    /// At most `max_inbound_requests` are handled at once; beyond that, and when the task
    /// is slow to answer, the request is refused at once (its stream reset) rather than
    /// queued. A malformed request is refused and returned as [`InboundError::Malformed`]
    /// for the router to count against the peer.
    pub async fn handle_inbound(
        &self,
        from: PeerId,
        from_addr: SocketAddr,
        request: InboundRequest,
    ) -> Result<(), InboundError> {
        let Ok(permit) = Arc::clone(&self.shared.inbound_permits).try_acquire_owned() else {
            request.reject(blyan_wire::ResetCode::Refused);
            return Err(InboundError::Busy);
        };
        self.shared.answer(from, from_addr, request, permit).await
    }

    /// Offers a connection that a protocol router accepted or dialled, so the driver's own
    /// requests to that peer use it instead of dialling a second one (one QUIC connection
    /// per peer). The router keeps reading its inbound streams and passes protocol-1
    /// requests to [`handle_inbound`](Self::handle_inbound). Ignored if the driver already
    /// holds a live connection to the peer.
    pub fn adopt_connection(&self, connection: Connection) {
        self.shared.connections.insert(connection);
    }

    /// For a protocol router that owns the endpoint (no [`serve`](Self::serve)): the
    /// connections the driver dials are sent to `sink`, so the router serves the peer's
    /// requests on them too. A full sink drops the notice (logged): the connection still
    /// carries our requests, but the peer's requests on it go unanswered until it dials
    /// its own.
    pub fn route_dialled_connections(&self, sink: mpsc::Sender<Connection>) {
        *self
            .shared
            .dialled_sink
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(sink);
    }

    /// Accepts connections on `endpoint` and answers the DHT requests on them (and on the
    /// connections the driver dials), for a node where nothing else owns the endpoint.
    /// Requests of other protocols are refused, one-way messages dropped. Runs until
    /// [`shutdown`](Self::shutdown) or until the endpoint closes.
    pub fn serve(&self, endpoint: Endpoint) {
        let handle = tokio::spawn(inbound::accept_loop(Arc::clone(&self.shared), endpoint));
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(handle);
    }

    /// Stops the driver: queries in progress end unanswered, the routing table is saved,
    /// connections are closed and the accept loop ends. The endpoint is the caller's to
    /// close. Calling it again, or from a clone, returns [`DriverError::Stopped`].
    pub async fn shutdown(&self) -> Result<(), DriverError> {
        let saved = self.call(|reply| Command::Shutdown { reply }).await;
        let handles: Vec<JoinHandle<()>> = self
            .tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
            .collect();
        for handle in handles {
            let _ = handle.await;
        }
        Ok(saved??)
    }

    async fn call<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DriverError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(command(reply))
            .await
            .map_err(|_| DriverError::Stopped)?;
        answer.await.map_err(|_| DriverError::Stopped)
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, DhtError>>) -> Command,
    ) -> Result<T, DriverError> {
        Ok(self.call(command).await??)
    }
}

/// The routing table's file inside [`DriverConfig::data_dir`].
pub const TABLE_FILE_NAME: &str = "dht-table.bin";

/// The nodes of the table saved at `path`. A file that does not load is moved aside (see
/// [`quarantine`]) and the node starts with an empty table: the table is a cache that
/// bootstrap rebuilds, and the damaged file is kept for inspection.
fn load_saved_table(path: &std::path::Path, chain_id: u32) -> Vec<NodeInfo> {
    match load_table(path, chain_id) {
        Ok(Some(loaded)) => {
            if loaded.invalid > 0 {
                tracing::warn!(
                    invalid = loaded.invalid,
                    "skipped saved DHT records that do not verify"
                );
            }
            loaded.nodes
        }
        Ok(None) => Vec::new(),
        Err(err) => {
            match quarantine(path) {
                Ok(moved) => {
                    tracing::warn!(%err, moved = %moved.display(), "saved DHT routing table unreadable; moved aside")
                }
                Err(again) => tracing::warn!(%err, %again, "saved DHT routing table unreadable"),
            }
            Vec::new()
        }
    }
}
