//! `Connection`: one authenticated QUIC connection to a peer, with request/response on
//! bidirectional streams and one-way messages on unidirectional streams.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blyan_crypto::PeerId;
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};

use crate::Codec;
use crate::transport::config::TransportConfig;
use crate::transport::error::{ConnectionLost, RequestError, ResetCode, SendError, close_code};
use crate::transport::inbound::{Inbound, InboundContext, run_inbound};
use crate::transport::metrics::{self, Direction, Timeout, TransportMetrics};
use crate::transport::protocol::Protocol;
use crate::transport::stream::{
    acknowledged, frame_header, read_body, read_response_head, write_stream,
};

/// Complete inbound requests and messages waiting for `accept_inbound`, per connection.
/// Stream limits and the byte budget bound what waits behind this queue.
const INBOUND_QUEUE: usize = 16;

/// An authenticated connection to one peer. Cheap to clone; the connection closes (code
/// [`close_code::NORMAL`]) when the last clone is dropped, or with [`Connection::close`].
#[derive(Clone, Debug)]
pub struct Connection {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    quic: quinn::Connection,
    remote: PeerId,
    codec: Codec,
    request_timeout: Duration,
    metrics: TransportMetrics,
    inbound: Mutex<mpsc::Receiver<Inbound>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.quic
            .close(close_code::NORMAL.into(), b"connection dropped");
    }
}

impl Connection {
    /// Wraps an established, verified QUIC connection and starts its inbound task (which
    /// also records the connection's end).
    pub(crate) fn new(
        quic: quinn::Connection,
        remote: PeerId,
        direction: Direction,
        config: &TransportConfig,
        metrics: TransportMetrics,
    ) -> Self {
        let (queue, inbound) = mpsc::channel(INBOUND_QUEUE);
        let context = InboundContext {
            codec: config.codec(),
            read_timeout: config.inbound_read_timeout,
            send_timeout: config.request_timeout,
            budget: Arc::new(Semaphore::new(config.inbound_budget())),
            metrics: metrics.clone(),
            queue,
        };
        tokio::spawn(run_inbound(quic.clone(), direction, context));
        Self {
            inner: Arc::new(Inner {
                quic,
                remote,
                codec: config.codec(),
                request_timeout: config.request_timeout,
                metrics,
                inbound: Mutex::new(inbound),
            }),
        }
    }

    /// The peer's id, proven by its certificate in the handshake.
    pub fn remote_peer_id(&self) -> PeerId {
        self.inner.remote
    }

    /// The peer's current address (it may change if the peer migrates).
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.quic.remote_address()
    }

    /// The current round-trip time estimate.
    pub fn rtt(&self) -> Duration {
        self.inner.quic.rtt()
    }

    /// Sends `request` on a new stream tagged `protocol` and waits for the one response.
    ///
    /// The whole exchange is bounded by the configured request timeout; on timeout the
    /// stream is reset with [`ResetCode::Timeout`].
    pub async fn request<Req, Resp>(
        &self,
        protocol: Protocol,
        request: &Req,
    ) -> Result<Resp, RequestError>
    where
        Req: Serialize + ?Sized,
        Resp: DeserializeOwned,
    {
        let frame = self
            .inner
            .codec
            .frame(request)
            .map_err(RequestError::Encode)?;
        let response = self.exchange(protocol, &[], &frame).await?;
        self.inner
            .codec
            .deserialize(&response)
            .map_err(RequestError::Response)
    }

    /// Sends `message` (flags byte + payload, as [`Codec::serialize`] makes it) as a request
    /// and returns the response message undecoded.
    pub async fn request_bytes(
        &self,
        protocol: Protocol,
        message: &[u8],
    ) -> Result<Bytes, RequestError> {
        let head =
            frame_header(message.len(), self.inner.codec.limits()).map_err(RequestError::Encode)?;
        self.exchange(protocol, &head, message).await
    }

    /// Sends `message` one way on a new unidirectional stream tagged `protocol`. Returns
    /// once the peer's QUIC stack has acknowledged every byte (not once the application
    /// handled it), bounded by the request timeout.
    pub async fn send_message<T: Serialize + ?Sized>(
        &self,
        protocol: Protocol,
        message: &T,
    ) -> Result<(), SendError> {
        let frame = self.inner.codec.frame(message).map_err(SendError::Encode)?;
        self.send_uni(protocol, &[], &frame).await
    }

    /// Sends a message (flags byte + payload) one way, undecoded.
    pub async fn send_message_bytes(
        &self,
        protocol: Protocol,
        message: &[u8],
    ) -> Result<(), SendError> {
        let head =
            frame_header(message.len(), self.inner.codec.limits()).map_err(SendError::Encode)?;
        self.send_uni(protocol, &head, message).await
    }

    /// The next request or message from the peer, in the order they completed; `None`
    /// once the connection is closed and everything received has been handed out.
    ///
    /// Cancel-safe. With several tasks calling it, each item goes to one of them.
    pub async fn accept_inbound(&self) -> Option<Inbound> {
        self.inner.inbound.lock().await.recv().await
    }

    /// Closes the connection with [`close_code::NORMAL`]; pending streams fail.
    pub fn close(&self) {
        self.inner.quic.close(close_code::NORMAL.into(), b"closed");
    }

    /// Waits until the connection is closed, by either side or by a timeout.
    pub async fn closed(&self) -> ConnectionLost {
        ConnectionLost(self.inner.quic.closed().await)
    }

    /// Why the connection closed, if it has.
    pub fn close_reason(&self) -> Option<ConnectionLost> {
        self.inner.quic.close_reason().map(ConnectionLost)
    }

    /// Opens a bidirectional stream, writes `protocol | head | body`, reads one response.
    async fn exchange(
        &self,
        protocol: Protocol,
        head: &[u8],
        body: &[u8],
    ) -> Result<Bytes, RequestError> {
        let after = self.inner.request_timeout;
        let deadline = Instant::now() + after;
        let (mut send, mut recv) = match timeout_at(deadline, self.inner.quic.open_bi()).await {
            Ok(opened) => {
                opened.map_err(|lost| RequestError::ConnectionLost(ConnectionLost(lost)))?
            }
            Err(_) => return Err(RequestError::Timeout { after }),
        };
        let mut prefixed = Vec::with_capacity(1 + head.len());
        prefixed.push(protocol.0);
        prefixed.extend_from_slice(head);
        let limits = *self.inner.codec.limits();
        let metrics = &self.inner.metrics;
        let exchange = async {
            write_stream(&mut send, &prefixed, body, metrics).await?;
            let len = read_response_head(&mut recv, &limits, metrics).await?;
            Ok::<_, RequestError>(read_body(&mut recv, len, metrics).await?)
        };
        match timeout_at(deadline, exchange).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(err)) => {
                if let RequestError::Response(codec) = &err {
                    // The response broke the framing: tell the peer why.
                    let code = ResetCode::for_codec_error(codec);
                    metrics::stream_reset(code);
                    let _ = recv.stop(code.var_int());
                }
                Err(err)
            }
            Err(_) => {
                metrics::timed_out(Timeout::Request);
                metrics::stream_reset(ResetCode::Timeout);
                let _ = send.reset(ResetCode::Timeout.var_int());
                let _ = recv.stop(ResetCode::Timeout.var_int());
                Err(RequestError::Timeout { after })
            }
        }
    }

    async fn send_uni(
        &self,
        protocol: Protocol,
        head: &[u8],
        body: &[u8],
    ) -> Result<(), SendError> {
        let after = self.inner.request_timeout;
        let deadline = Instant::now() + after;
        let mut send = match timeout_at(deadline, self.inner.quic.open_uni()).await {
            Ok(opened) => opened.map_err(|lost| SendError::ConnectionLost(ConnectionLost(lost)))?,
            Err(_) => return Err(SendError::Timeout { after }),
        };
        let mut prefixed = Vec::with_capacity(1 + head.len());
        prefixed.push(protocol.0);
        prefixed.extend_from_slice(head);
        let delivered = async {
            write_stream(&mut send, &prefixed, body, &self.inner.metrics).await?;
            acknowledged(&mut send).await
        };
        match timeout_at(deadline, delivered).await {
            Ok(result) => result,
            Err(_) => {
                metrics::timed_out(Timeout::Message);
                metrics::stream_reset(ResetCode::Timeout);
                let _ = send.reset(ResetCode::Timeout.var_int());
                Err(SendError::Timeout { after })
            }
        }
    }
}
