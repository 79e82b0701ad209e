//! The task that owns the [`DhtCore`]: it feeds the core commands, inbound requests, RPC
//! outcomes and the time, and carries out the actions the core returns.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use blyan_crypto::PeerId;
use blyan_wire::{Protocol, RequestError};
use bytes::Bytes;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

use crate::dht_core::{
    Action, Contact, DhtCore, DhtError, QueryId, QueryResult, QueryStats, RpcId,
};
use crate::driver::connections::{ConnectError, Connected};
use crate::driver::shared::{InboundJob, Shared};
use crate::driver::{DhtStatus, StoreSummary};
use crate::node::NodeInfo;
use crate::persist::{PersistError, save_table};
use crate::record_cache::RecordCache;
use crate::rpc::{DhtRequest, FoundValue, PROTOCOL_ID, Response};
use crate::time::Timestamp;

/// Metric names from the `blyan-ops` catalog (this crate sits below it, so they are
/// repeated here as strings).
const METRIC_DHT_NODES: &str = "blyan_dht_nodes";
const METRIC_DHT_LOOKUP_SECONDS: &str = "blyan_dht_lookup_seconds";

/// Far enough ahead to mean "not soon" for a timer, near enough for `Instant` arithmetic.
const FAR_FUTURE: Duration = Duration::from_secs(24 * 3600);

type Answer<T> = oneshot::Sender<Result<T, DhtError>>;

/// What a handle asks of the task.
#[derive(Debug)]
pub(crate) enum Command {
    Bootstrap {
        seeds: Vec<crate::dht_core::Seed>,
        reply: Answer<usize>,
    },
    FindNode {
        target: crate::distance::Key,
        reply: Answer<Vec<NodeInfo>>,
    },
    Get {
        key: crate::distance::Key,
        reply: Answer<Vec<FoundValue>>,
    },
    Store {
        key: crate::distance::Key,
        value: Vec<u8>,
        ttl: Duration,
        reply: Answer<StoreSummary>,
    },
    Status {
        reply: oneshot::Sender<DhtStatus>,
    },
    TableNodes {
        reply: oneshot::Sender<Vec<NodeInfo>>,
    },
    Shutdown {
        reply: oneshot::Sender<Result<(), PersistError>>,
    },
}

/// Who waits for a query's result.
#[derive(Debug)]
enum Waiter {
    Bootstrap(Answer<usize>),
    FindNode(Answer<Vec<NodeInfo>>),
    Get(Answer<Vec<FoundValue>>),
    Store(Answer<StoreSummary>),
}

/// How an outbound RPC ended.
#[derive(Debug)]
struct RpcDone {
    rpc: RpcId,
    /// The peer asked, if known before dialling.
    expected: Option<PeerId>,
    outcome: Result<Answered, RpcFailure>,
}

#[derive(Debug)]
struct Answered {
    message: Bytes,
    from_addr: SocketAddr,
    /// The peer the connection authenticated: the answer's record must name it.
    peer: PeerId,
}

#[derive(Debug, thiserror::Error)]
enum RpcFailure {
    #[error(transparent)]
    Connect(#[from] ConnectError),
    #[error("request failed: {0}")]
    Request(#[from] RequestError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

pub(crate) struct Task {
    core: DhtCore,
    shared: Arc<Shared>,
    start: Instant,
    table_path: Option<PathBuf>,
    save_interval: Duration,
    records: RecordCache,
    commands: mpsc::Receiver<Command>,
    inbound: mpsc::Receiver<InboundJob>,
    done_tx: mpsc::Sender<RpcDone>,
    done_rx: mpsc::Receiver<RpcDone>,
    rpcs: JoinSet<()>,
    waiters: HashMap<QueryId, Waiter>,
    stopped: watch::Sender<bool>,
    table_len: Option<usize>,
}

/// What the task is built from (see `Dht::spawn`).
pub(crate) struct TaskParts {
    pub(crate) core: DhtCore,
    pub(crate) shared: Arc<Shared>,
    pub(crate) table_path: Option<PathBuf>,
    pub(crate) save_interval: Duration,
    pub(crate) records: RecordCache,
    pub(crate) commands: mpsc::Receiver<Command>,
    pub(crate) inbound: mpsc::Receiver<InboundJob>,
    pub(crate) stopped: watch::Sender<bool>,
}

impl Task {
    pub(crate) fn new(parts: TaskParts) -> Self {
        // Every RPC task sends exactly one outcome; the core keeps at most
        // `max_outstanding_rpcs` in flight, and ones it timed out end within the same
        // timeout, so twice that never blocks them for long.
        let (done_tx, done_rx) = mpsc::channel(parts.core.config().max_outstanding_rpcs.max(1) * 2);
        Self {
            core: parts.core,
            shared: parts.shared,
            start: Instant::now(),
            table_path: parts.table_path,
            save_interval: parts.save_interval,
            records: parts.records,
            commands: parts.commands,
            inbound: parts.inbound,
            done_tx,
            done_rx,
            rpcs: JoinSet::new(),
            waiters: HashMap::new(),
            stopped: parts.stopped,
            table_len: None,
        }
    }

    fn now(&self) -> Timestamp {
        Timestamp::from(self.start.elapsed())
    }

    /// The instant of `at`; a timestamp past what `Instant` can hold (a setting of
    /// `Duration::MAX`, say) is a day from now, and is looked at again then.
    fn instant(&self, at: Timestamp) -> Instant {
        self.start
            .checked_add(Duration::from_millis(at.as_millis()))
            .unwrap_or_else(|| Instant::now() + FAR_FUTURE)
    }

    /// Runs until a shutdown command or until every handle is dropped.
    pub(crate) async fn run(mut self) {
        let period = self.save_interval.clamp(Duration::from_secs(1), FAR_FUTURE);
        let mut save = tokio::time::interval_at(self.start + period, period);
        save.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let now = self.now();
            self.core.handle_timeout(now);
            while let Some(action) = self.core.poll(now) {
                self.dispatch(now, action);
            }
            while self.rpcs.try_join_next().is_some() {}
            self.record_table_len();
            // A deadline already past would spin; the core has handled `now`, so the next
            // millisecond is early enough.
            let floor = self.instant(now) + Duration::from_millis(1);
            let wake = self
                .core
                .poll_timeout()
                .map_or(floor + FAR_FUTURE, |t| self.instant(t).max(floor));
            // Local work first: answers to our requests and our own commands before
            // requests from remotes.
            tokio::select! {
                biased;
                Some(done) = self.done_rx.recv() => self.on_done(done),
                command = self.commands.recv() => match command {
                    Some(Command::Shutdown { reply }) => {
                        let saved = self.stop().await;
                        let _ = reply.send(saved);
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => {
                        if let Err(err) = self.stop().await {
                            tracing::warn!(%err, "saving the DHT routing table failed");
                        }
                        return;
                    }
                },
                _ = tokio::time::sleep_until(wake) => {}
                _ = save.tick() => {
                    if let Err(err) = self.save().await {
                        tracing::warn!(%err, "saving the DHT routing table failed");
                    }
                }
                Some(job) = self.inbound.recv() => self.on_inbound(job),
            }
        }
    }

    fn record_table_len(&mut self) {
        let len = self.core.table().len();
        if self.table_len != Some(len) {
            self.table_len = Some(len);
            metrics::gauge!(METRIC_DHT_NODES).set(len as f64);
        }
    }

    fn dispatch(&mut self, now: Timestamp, action: Action) {
        match action {
            Action::SendRequest {
                rpc, to, request, ..
            } => self.send(now, rpc, to, &request),
            Action::QueryFinished { id, result, stats } => self.finished(id, result, stats),
        }
    }

    fn send(&mut self, now: Timestamp, rpc: RpcId, to: Contact, request: &DhtRequest) {
        let message = match request.encode() {
            Ok(message) => message,
            Err(err) => {
                tracing::warn!(%err, "encoding a DHT request failed");
                self.core.on_failure(now, rpc);
                return;
            }
        };
        let shared = Arc::clone(&self.shared);
        let done = self.done_tx.clone();
        let limit = self.core.config().rpc_timeout;
        self.rpcs.spawn(async move {
            let outcome = match tokio::time::timeout(limit, exchange(&shared, &to, &message)).await
            {
                Ok(outcome) => outcome,
                Err(_) => Err(RpcFailure::Timeout(limit)),
            };
            if outcome.is_err()
                && let Some(peer) = to.peer
            {
                // A dead or misbehaving connection is not reused: the next request dials.
                shared.connections.remove(&peer);
            }
            let _ = done
                .send(RpcDone {
                    rpc,
                    expected: to.peer,
                    outcome,
                })
                .await;
        });
    }

    fn on_done(&mut self, done: RpcDone) {
        let now = self.now();
        let answered = match done.outcome {
            Ok(answered) => answered,
            Err(err) => {
                tracing::debug!(peer = ?done.expected, %err, "DHT request failed");
                self.core.on_failure(now, done.rpc);
                return;
            }
        };
        let expected = Some(done.expected.unwrap_or(answered.peer));
        match Response::decode(
            &answered.message,
            expected,
            answered.from_addr,
            &mut self.records,
        ) {
            Ok(response) => self.core.on_response(now, done.rpc, response),
            Err(err) => {
                tracing::debug!(peer = %answered.peer, %err, "bad DHT answer");
                self.shared.connections.remove(&answered.peer);
                self.core.on_failure(now, done.rpc);
            }
        }
    }

    fn on_inbound(&mut self, job: InboundJob) {
        let reply = self
            .core
            .handle_request(self.now(), job.from, job.from_addr, job.request);
        let _ = job.reply.send(reply);
    }

    fn on_command(&mut self, command: Command) {
        let now = self.now();
        let (started, waiter) = match command {
            Command::Bootstrap { seeds, reply } => {
                (self.core.bootstrap(now, seeds), Waiter::Bootstrap(reply))
            }
            Command::FindNode { target, reply } => {
                (self.core.find_node(now, target), Waiter::FindNode(reply))
            }
            Command::Get { key, reply } => (self.core.get(now, key), Waiter::Get(reply)),
            Command::Store {
                key,
                value,
                ttl,
                reply,
            } => (self.core.put(now, key, value, ttl), Waiter::Store(reply)),
            Command::Status { reply } => {
                let _ = reply.send(self.status());
                return;
            }
            Command::TableNodes { reply } => {
                let _ = reply.send(self.core.table_nodes().cloned().collect());
                return;
            }
            // Handled by `run`.
            Command::Shutdown { reply } => {
                let _ = reply.send(Ok(()));
                return;
            }
        };
        match started {
            Ok(id) => {
                self.waiters.insert(id, waiter);
            }
            Err(err) => waiter.fail(err),
        }
    }

    fn status(&self) -> DhtStatus {
        DhtStatus {
            table_len: self.core.table().len(),
            candidates: self.core.candidate_count(),
            queries: self.core.query_count(),
            outstanding_rpcs: self.core.outstanding_rpcs(),
            stored_values: self.core.store().len(),
            connections: self.shared.connections.len(),
        }
    }

    fn finished(&mut self, id: QueryId, result: QueryResult, stats: QueryStats) {
        let Some(waiter) = self.waiters.remove(&id) else {
            return;
        };
        match (waiter, result) {
            (Waiter::Bootstrap(reply), QueryResult::Bootstrap { table_len }) => {
                let _ = reply.send(Ok(table_len));
            }
            (Waiter::FindNode(reply), QueryResult::FindNode { closest }) => {
                metrics::histogram!(METRIC_DHT_LOOKUP_SECONDS).record(stats.elapsed.as_secs_f64());
                let _ = reply.send(Ok(closest));
            }
            (Waiter::Get(reply), QueryResult::GetValue { values, .. }) => {
                metrics::histogram!(METRIC_DHT_LOOKUP_SECONDS).record(stats.elapsed.as_secs_f64());
                let _ = reply.send(Ok(values));
            }
            (
                Waiter::Store(reply),
                QueryResult::PutValue {
                    stored,
                    refused,
                    failed,
                },
            ) => {
                let _ = reply.send(Ok(StoreSummary {
                    stored,
                    refused,
                    failed,
                }));
            }
            // The core answers each command with its own kind of result; a mismatch drops
            // the reply, and the caller sees the driver as stopped.
            (waiter, result) => {
                tracing::error!(
                    ?waiter,
                    ?result,
                    "DHT query finished with another kind of result"
                );
            }
        }
    }

    /// Saves the table (if a data directory is set) off the task's thread.
    async fn save(&mut self) -> Result<(), PersistError> {
        let Some(path) = self.table_path.clone() else {
            return Ok(());
        };
        let nodes: Vec<NodeInfo> = self.core.table_nodes().cloned().collect();
        let written = tokio::task::spawn_blocking(move || save_table(&path, &nodes)).await;
        match written {
            Ok(result) => result.map(drop),
            Err(join) => Err(PersistError::Io {
                op: "save",
                path: self.table_path.clone().unwrap_or_default(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }

    /// Stops: the accept loop and connection tasks end, RPCs are abandoned, connections
    /// closed, the table saved. Queries still running end without an answer.
    async fn stop(&mut self) -> Result<(), PersistError> {
        let _ = self.stopped.send(true);
        self.rpcs.abort_all();
        self.waiters.clear();
        self.shared.connections.close_all();
        self.save().await
    }
}

impl Waiter {
    fn fail(self, err: DhtError) {
        // A caller that went away does not need the error.
        match self {
            Waiter::Bootstrap(reply) => drop(reply.send(Err(err))),
            Waiter::FindNode(reply) => drop(reply.send(Err(err))),
            Waiter::Get(reply) => drop(reply.send(Err(err))),
            Waiter::Store(reply) => drop(reply.send(Err(err))),
        }
    }
}

/// Dials (or reuses a connection to) `to` and exchanges one request on the DHT protocol.
async fn exchange(
    shared: &Arc<Shared>,
    to: &Contact,
    message: &[u8],
) -> Result<Answered, RpcFailure> {
    match exchange_once(shared, to, message).await {
        // The peer closed the connection under the request (it evicted or dropped it,
        // perhaps after one of its own requests on it failed): not the peer's silence, so
        // forget the connection and dial once more before the request counts as failed.
        Err(RpcFailure::Request(RequestError::ConnectionLost(_))) => {
            if let Some(peer) = to.peer {
                shared.connections.remove(&peer);
            }
            exchange_once(shared, to, message).await
        }
        outcome => outcome,
    }
}

/// One attempt over the cached connection, or a new one.
async fn exchange_once(
    shared: &Arc<Shared>,
    to: &Contact,
    message: &[u8],
) -> Result<Answered, RpcFailure> {
    let Connected {
        connection,
        fresh,
        _lease: lease,
    } = match shared
        .connections
        .connect(&shared.endpoint, to.peer, &to.addrs)
        .await
    {
        Ok(connected) => connected,
        Err(err) => return Err(err.into()),
    };
    if fresh {
        shared.serve_dialled(&connection);
    }
    let answered = connection
        .request_bytes(Protocol(PROTOCOL_ID), message)
        .await;
    drop(lease);
    shared.connections.trim();
    answered.map_err(RpcFailure::from).map(|message| Answered {
        message,
        from_addr: connection.remote_addr(),
        peer: connection.remote_peer_id(),
    })
}
