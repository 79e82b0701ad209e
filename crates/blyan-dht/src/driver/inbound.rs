//! The inbound side: answering DHT requests that arrive on protocol [`PROTOCOL_ID`], either
//! handed over by a protocol router ([`Dht::handle_inbound`](crate::Dht::handle_inbound)) or
//! read by the driver's own accept loop ([`Dht::serve`](crate::Dht::serve)).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use blyan_crypto::PeerId;
use blyan_wire::{Connection, Endpoint, Inbound, InboundRequest, Protocol, ResetCode, SendError};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{OwnedSemaphorePermit, oneshot};

use crate::driver::shared::{InboundJob, Shared};
use crate::rpc::{DhtRequest, PROTOCOL_ID, RpcError};

/// Why an inbound request was not answered. The request's stream has been reset (or the
/// answer failed to send); a router may count the malformed ones against the peer.
#[derive(Debug, thiserror::Error)]
pub enum InboundError {
    /// The request is not on the DHT's protocol byte: the router sent it to the wrong place.
    #[error("{0} is not the DHT protocol")]
    WrongProtocol(Protocol),
    /// `max_inbound_requests` requests are being handled, or the task's queue is full.
    #[error("too many inbound DHT requests in progress")]
    Busy,
    /// Not a well-formed DHT request.
    #[error("malformed DHT request: {0}")]
    Malformed(#[source] RpcError),
    /// The driver has shut down.
    #[error("the DHT driver has stopped")]
    Stopped,
    /// The task did not answer within `inbound_timeout`.
    #[error("the DHT task did not answer in time")]
    TimedOut,
    /// Our answer could not be encoded (a bug, logged).
    #[error("encoding the answer failed: {0}")]
    Encode(#[source] RpcError),
    /// The answer could not be sent.
    #[error("sending the answer failed: {0}")]
    Respond(#[source] SendError),
}

impl Shared {
    /// Answers one inbound request under `permit` (one of `max_inbound_requests`).
    pub(crate) async fn answer(
        &self,
        from: PeerId,
        from_addr: SocketAddr,
        request: InboundRequest,
        permit: OwnedSemaphorePermit,
    ) -> Result<(), InboundError> {
        let _permit = permit;
        if request.protocol() != Protocol(PROTOCOL_ID) {
            let protocol = request.protocol();
            request.reject(ResetCode::UnknownProtocol);
            return Err(InboundError::WrongProtocol(protocol));
        }
        let decoded = match DhtRequest::decode(request.message()) {
            Ok(decoded) => decoded,
            Err(err) => {
                request.reject(ResetCode::Malformed);
                return Err(InboundError::Malformed(err));
            }
        };
        let (reply, answer) = oneshot::channel();
        let job = InboundJob {
            from,
            from_addr,
            request: decoded,
            reply,
        };
        match self.inbound_jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                request.reject(ResetCode::Refused);
                return Err(InboundError::Busy);
            }
            Err(TrySendError::Closed(_)) => {
                request.reject(ResetCode::Refused);
                return Err(InboundError::Stopped);
            }
        }
        let reply = match tokio::time::timeout(self.inbound_timeout, answer).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(_)) => {
                request.reject(ResetCode::Refused);
                return Err(InboundError::Stopped);
            }
            Err(_) => {
                request.reject(ResetCode::Timeout);
                return Err(InboundError::TimedOut);
            }
        };
        let bytes = match reply.encode(&self.record) {
            Ok(bytes) => bytes,
            Err(err) => {
                request.reject(ResetCode::Refused);
                return Err(InboundError::Encode(err));
            }
        };
        request
            .respond_bytes(&bytes)
            .await
            .map_err(InboundError::Respond)
    }

    /// Has the peer's requests on a connection we dialled served: by the accept loop's
    /// machinery if it runs, else by the protocol router that registered a sink.
    pub(crate) fn serve_dialled(self: &Arc<Self>, connection: &Connection) {
        if !self.serving.load(Ordering::Relaxed) {
            let sink = self
                .dialled_sink
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone();
            if let Some(sink) = sink
                && sink.try_send(connection.clone()).is_err()
            {
                tracing::debug!(
                    peer = %connection.remote_peer_id(),
                    "router's connection queue full; the peer's requests on our connection go unserved"
                );
            }
            return;
        }
        if let Ok(permit) = Arc::clone(&self.serve_permits).try_acquire_owned() {
            tokio::spawn(serve_connection(
                Arc::clone(self),
                connection.clone(),
                permit,
            ));
        }
    }
}

/// Accepts connections until the endpoint closes or the driver stops; each one is filed in
/// the connection cache and served.
pub(crate) async fn accept_loop(shared: Arc<Shared>, endpoint: Endpoint) {
    shared.serving.store(true, Ordering::Relaxed);
    let mut stopped = shared.stopped.clone();
    loop {
        let accepted = tokio::select! {
            accepted = endpoint.accept() => accepted,
            _ = stopped.wait_for(|stopped| *stopped) => break,
        };
        let Some(connection) = accepted else {
            break;
        };
        let Ok(permit) = Arc::clone(&shared.serve_permits).try_acquire_owned() else {
            tracing::debug!(peer = %connection.remote_peer_id(), "connection cap reached; closed");
            connection.close();
            continue;
        };
        shared.connections.insert(connection.clone());
        tokio::spawn(serve_connection(Arc::clone(&shared), connection, permit));
    }
}

/// Reads the peer's requests on `connection` until it closes or the driver stops: DHT
/// requests are answered (at most `max_inbound_requests` at once, over all connections;
/// beyond that they are refused at once, never queued), other protocols are refused and
/// one-way messages dropped.
async fn serve_connection(
    shared: Arc<Shared>,
    connection: Connection,
    permit: OwnedSemaphorePermit,
) {
    let _permit = permit;
    let peer = connection.remote_peer_id();
    let mut stopped = shared.stopped.clone();
    loop {
        let inbound = tokio::select! {
            inbound = connection.accept_inbound() => inbound,
            _ = stopped.wait_for(|stopped| *stopped) => break,
        };
        match inbound {
            None => break,
            Some(Inbound::Request(request)) if request.protocol() == Protocol(PROTOCOL_ID) => {
                let Ok(permit) = Arc::clone(&shared.inbound_permits).try_acquire_owned() else {
                    request.reject(ResetCode::Refused);
                    continue;
                };
                let from_addr = connection.remote_addr();
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Err(err) = shared.answer(peer, from_addr, request, permit).await {
                        tracing::debug!(%peer, %err, "inbound DHT request not answered");
                    }
                });
            }
            Some(Inbound::Request(request)) => request.reject(ResetCode::UnknownProtocol),
            Some(Inbound::Message(_)) => {}
        }
    }
}
