//! What the driver's task, its RPC tasks and the inbound side share.

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blyan_crypto::PeerId;
use blyan_wire::{Connection, Endpoint};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::driver::connections::ConnectionCache;
use crate::rpc::{DhtRequest, Reply};

/// An inbound request for the task, with where to send the core's answer.
#[derive(Debug)]
pub(crate) struct InboundJob {
    pub(crate) from: PeerId,
    pub(crate) from_addr: SocketAddr,
    pub(crate) request: DhtRequest,
    pub(crate) reply: oneshot::Sender<Reply>,
}

/// State shared by the handles, the task and the connection tasks. It holds no command
/// sender, so the task's lifetime is the handles' business alone.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) local: PeerId,
    /// Our signed node record, as every answer carries it.
    pub(crate) record: Arc<[u8]>,
    pub(crate) endpoint: Endpoint,
    pub(crate) connections: ConnectionCache,
    pub(crate) inbound_jobs: mpsc::Sender<InboundJob>,
    /// Inbound requests being handled (`max_inbound_requests`).
    pub(crate) inbound_permits: Arc<Semaphore>,
    /// Connections being served (twice `max_connections`: cached ones and duplicates
    /// a peer opened while we held one).
    pub(crate) serve_permits: Arc<Semaphore>,
    /// Whether the accept loop runs, so dialled connections are served too.
    pub(crate) serving: AtomicBool,
    /// Where dialled connections go when a protocol router serves them instead.
    pub(crate) dialled_sink: Mutex<Option<mpsc::Sender<Connection>>>,
    /// Turns true when the task stops; the accept loop and connection tasks end with it.
    pub(crate) stopped: watch::Receiver<bool>,
    pub(crate) inbound_timeout: Duration,
}
