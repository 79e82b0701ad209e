//! The inbound side of a connection: a task per connection accepts streams, a task per
//! stream reads one protocol byte and one frame under a deadline and a byte budget, and
//! complete requests and messages queue for [`Connection::accept_inbound`](crate::Connection::accept_inbound).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};

use crate::transport::error::{ReadFailure, ResetCode, SendError};
use crate::transport::metrics::{self, Direction, Timeout, TransportMetrics};
use crate::transport::protocol::Protocol;
use crate::transport::stream::{
    acknowledged, frame_header, read_body, read_request_head, write_stream,
};
use crate::{Codec, CodecError};

/// Something a peer sent on a connection.
#[derive(Debug)]
pub enum Inbound {
    /// A request on a bidirectional stream: answer it once with
    /// [`InboundRequest::respond`], or drop it (the peer sees [`ResetCode::Refused`]).
    Request(InboundRequest),
    /// A one-way message on a unidirectional stream.
    Message(InboundMessage),
}

/// One inbound request: its protocol, its message (flags byte + payload) and the stream to
/// answer on. Holds part of the connection's inbound byte budget until answered or dropped.
#[derive(Debug)]
pub struct InboundRequest {
    protocol: Protocol,
    message: Bytes,
    send: Option<quinn::SendStream>,
    codec: Codec,
    send_timeout: Duration,
    metrics: TransportMetrics,
    _budget: OwnedSemaphorePermit,
}

impl InboundRequest {
    /// The protocol byte the stream opened with.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The request as a codec message: flags byte + payload.
    pub fn message(&self) -> &Bytes {
        &self.message
    }

    /// Decodes the request under the endpoint's limits. On an error, answer with
    /// [`InboundRequest::reject`] (or drop the request).
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.codec.deserialize(&self.message)
    }

    /// Sends `response` as the one response frame, finishes the stream and waits until the
    /// peer has acknowledged it (so the connection may be dropped right after), bounded by
    /// the request timeout.
    pub async fn respond<T: Serialize + ?Sized>(self, response: &T) -> Result<(), SendError> {
        let frame = self.codec.frame(response).map_err(SendError::Encode)?;
        self.send_frame(&[], &frame).await
    }

    /// Sends `message` (flags byte + payload, e.g. from [`Codec::serialize`]) as the one
    /// response frame and finishes the stream.
    pub async fn respond_bytes(self, message: &[u8]) -> Result<(), SendError> {
        let head = frame_header(message.len(), self.codec.limits()).map_err(SendError::Encode)?;
        self.send_frame(&head, message).await
    }

    /// Refuses the request: the peer's `request` fails with [`RequestError::Reset`]
    /// carrying `code`.
    ///
    /// [`RequestError::Reset`]: crate::RequestError::Reset
    pub fn reject(mut self, code: ResetCode) {
        if let Some(mut send) = self.send.take() {
            metrics::stream_reset(code);
            // Fails only if the stream is already gone, which is what we want anyway.
            let _ = send.reset(code.var_int());
        }
    }

    async fn send_frame(mut self, head: &[u8], body: &[u8]) -> Result<(), SendError> {
        // The request is handled: release its bytes before the response is written.
        self.message = Bytes::new();
        let Some(mut send) = self.send.take() else {
            return Err(SendError::Stopped {
                code: ResetCode::Refused,
            });
        };
        let after = self.send_timeout;
        let delivered = async {
            write_stream(&mut send, head, body, &self.metrics).await?;
            acknowledged(&mut send).await
        };
        match tokio::time::timeout(after, delivered).await {
            Ok(result) => result,
            Err(_) => {
                metrics::timed_out(Timeout::Response);
                metrics::stream_reset(ResetCode::Timeout);
                let _ = send.reset(ResetCode::Timeout.var_int());
                Err(SendError::Timeout { after })
            }
        }
    }
}

impl Drop for InboundRequest {
    fn drop(&mut self) {
        // Dropping a quinn send stream would finish it, which the peer would read as an
        // empty (truncated) response; say "refused" instead.
        if let Some(mut send) = self.send.take() {
            metrics::stream_reset(ResetCode::Refused);
            let _ = send.reset(ResetCode::Refused.var_int());
        }
    }
}

/// One inbound one-way message: its protocol and its message (flags byte + payload).
#[derive(Debug)]
pub struct InboundMessage {
    protocol: Protocol,
    message: Bytes,
    codec: Codec,
    _budget: OwnedSemaphorePermit,
}

impl InboundMessage {
    /// The protocol byte the stream opened with.
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// The message: flags byte + payload.
    pub fn message(&self) -> &Bytes {
        &self.message
    }

    /// Decodes the message under the endpoint's limits.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, CodecError> {
        self.codec.deserialize(&self.message)
    }
}

/// What a connection's inbound readers share.
#[derive(Clone, Debug)]
pub(crate) struct InboundContext {
    pub(crate) codec: Codec,
    pub(crate) read_timeout: Duration,
    pub(crate) send_timeout: Duration,
    /// Bytes of read-but-unhandled requests and messages (see `TransportConfig`).
    pub(crate) budget: Arc<Semaphore>,
    pub(crate) metrics: TransportMetrics,
    pub(crate) queue: mpsc::Sender<Inbound>,
}

/// Accepts the peer's streams until the connection ends, then records how it ended.
/// Stream concurrency is bounded by the QUIC stream limits, so the reader tasks are too.
pub(crate) async fn run_inbound(
    connection: quinn::Connection,
    direction: Direction,
    context: InboundContext,
) {
    let ended = loop {
        tokio::select! {
            bi = connection.accept_bi() => match bi {
                Ok((send, recv)) => {
                    tokio::spawn(read_request(send, recv, context.clone()));
                }
                Err(err) => break err,
            },
            uni = connection.accept_uni() => match uni {
                Ok(recv) => {
                    tokio::spawn(read_message(recv, context.clone()));
                }
                Err(err) => break err,
            },
        }
    };
    metrics::connection_closed(direction, &ended);
}

/// Reads the head and the body of one stream, waiting for budget in between.
async fn read_stream(
    recv: &mut quinn::RecvStream,
    context: &InboundContext,
) -> Result<(Protocol, Bytes, OwnedSemaphorePermit), ReadFailure> {
    let (protocol, len) = read_request_head(recv, context.codec.limits(), &context.metrics).await?;
    // `len` ≤ max_frame_len ≤ the budget (raised to one frame at least), so this can wait
    // but never deadlock; `len` fits u32 because the length field is a u32.
    let permits = u32::try_from(len).unwrap_or(u32::MAX);
    let permit = Arc::clone(&context.budget)
        .acquire_many_owned(permits)
        .await
        .map_err(|_| ReadFailure::Reset(ResetCode::Refused))?;
    let message = read_body(recv, len, &context.metrics).await?;
    Ok((protocol, message, permit))
}

/// The code to reset a stream with after a failed read; `None` when the peer already did.
fn reset_code(failure: &ReadFailure) -> Option<ResetCode> {
    match failure {
        ReadFailure::Codec(err) => Some(ResetCode::for_codec_error(err)),
        ReadFailure::Reset(_) | ReadFailure::Lost(_) => None,
    }
}

/// Reads one stream under the inbound read deadline; on failure, the code to reset it with
/// (`None` when the peer already reset it or the connection is gone).
async fn read_within_deadline(
    recv: &mut quinn::RecvStream,
    context: &InboundContext,
) -> Result<(Protocol, Bytes, OwnedSemaphorePermit), Option<ResetCode>> {
    match tokio::time::timeout(context.read_timeout, read_stream(recv, context)).await {
        Ok(Ok(read)) => Ok(read),
        Ok(Err(failure)) => {
            tracing::debug!(?failure, "inbound stream failed");
            Err(reset_code(&failure))
        }
        Err(_) => {
            metrics::timed_out(Timeout::InboundRead);
            Err(Some(ResetCode::Timeout))
        }
    }
}

async fn read_request(
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
    context: InboundContext,
) {
    match read_within_deadline(&mut recv, &context).await {
        Ok((protocol, message, budget)) => {
            let request = InboundRequest {
                protocol,
                message,
                send: Some(send),
                codec: context.codec,
                send_timeout: context.send_timeout,
                metrics: context.metrics.clone(),
                _budget: budget,
            };
            // A closed queue means the connection is gone; dropping the request resets it.
            let _ = context.queue.send(Inbound::Request(request)).await;
        }
        Err(Some(code)) => {
            metrics::stream_reset(code);
            let _ = recv.stop(code.var_int());
            let _ = send.reset(code.var_int());
        }
        Err(None) => {}
    }
}

async fn read_message(mut recv: quinn::RecvStream, context: InboundContext) {
    match read_within_deadline(&mut recv, &context).await {
        Ok((protocol, message, budget)) => {
            let message = InboundMessage {
                protocol,
                message,
                codec: context.codec,
                _budget: budget,
            };
            let _ = context.queue.send(Inbound::Message(message)).await;
        }
        Err(Some(code)) => {
            metrics::stream_reset(code);
            let _ = recv.stop(code.var_int());
        }
        Err(None) => {}
    }
}
