//! The byte layout of one stream: `protocol (u8)` (request and message streams only), then
//! exactly one frame `length (u32 BE) | flags | payload`, then the end of the stream (FIN).

use bytes::Bytes;

use crate::frame::{FRAME_HEADER_LEN, check_length};
use crate::transport::error::{ReadFailure, SendError};
use crate::transport::metrics::TransportMetrics;
use crate::transport::protocol::Protocol;
use crate::{CodecError, Limits};

/// The frame header for a message of `len` bytes, checked against this side's limits so
/// that nothing is sent that a peer with the same limits would refuse.
pub(crate) fn frame_header(len: usize, limits: &Limits) -> Result<[u8; 4], CodecError> {
    let max = limits.frame_len_cap();
    if len == 0 {
        return Err(CodecError::EmptyMessage);
    }
    match u32::try_from(len) {
        Ok(length) if len <= max => Ok(length.to_be_bytes()),
        _ => Err(CodecError::FrameTooLarge { len, max }),
    }
}

/// Writes an optional protocol byte and one frame (`head` then `body`), then finishes.
pub(crate) async fn write_stream(
    send: &mut quinn::SendStream,
    head: &[u8],
    body: &[u8],
    metrics: &TransportMetrics,
) -> Result<(), SendError> {
    send.write_all(head).await?;
    send.write_all(body).await?;
    metrics.sent(head.len() + body.len());
    // Only fails if the stream was already finished or reset, which this side never does
    // before this point.
    send.finish().map_err(|_| SendError::Stopped {
        code: crate::ResetCode::Refused,
    })?;
    Ok(())
}

/// Waits until the peer has acknowledged every byte of a finished stream, so that the
/// caller may drop the connection without losing what it sent.
pub(crate) async fn acknowledged(send: &mut quinn::SendStream) -> Result<(), SendError> {
    match send.stopped().await {
        Ok(None) => Ok(()),
        Ok(Some(code)) => Err(SendError::Stopped {
            code: crate::ResetCode::from_u64(code.into_inner()),
        }),
        Err(quinn::StoppedError::ConnectionLost(lost)) => Err(SendError::ConnectionLost(
            crate::transport::error::ConnectionLost(lost),
        )),
        Err(quinn::StoppedError::ZeroRttRejected) => Err(SendError::Stopped {
            code: crate::ResetCode::Refused,
        }),
    }
}

/// Reads the protocol byte and the frame length of a request or message stream.
pub(crate) async fn read_request_head(
    recv: &mut quinn::RecvStream,
    limits: &Limits,
    metrics: &TransportMetrics,
) -> Result<(Protocol, usize), ReadFailure> {
    let mut head = [0_u8; 1 + FRAME_HEADER_LEN];
    recv.read_exact(&mut head).await?;
    metrics.received(head.len());
    let [protocol, a, b, c, d] = head;
    let len = check_length(u32::from_be_bytes([a, b, c, d]), limits).map_err(ReadFailure::Codec)?;
    Ok((Protocol(protocol), len))
}

/// Reads the frame length of a response stream.
pub(crate) async fn read_response_head(
    recv: &mut quinn::RecvStream,
    limits: &Limits,
    metrics: &TransportMetrics,
) -> Result<usize, ReadFailure> {
    let mut head = [0_u8; FRAME_HEADER_LEN];
    recv.read_exact(&mut head).await?;
    metrics.received(head.len());
    check_length(u32::from_be_bytes(head), limits).map_err(ReadFailure::Codec)
}

/// Reads the `len` message bytes that follow a frame header and the end of the stream:
/// fewer bytes are `Truncated`, more are `TrailingBytes`.
pub(crate) async fn read_body(
    recv: &mut quinn::RecvStream,
    len: usize,
    metrics: &TransportMetrics,
) -> Result<Bytes, ReadFailure> {
    match recv.read_to_end(len).await {
        Ok(body) if body.len() == len => {
            metrics.received(len);
            Ok(Bytes::from(body))
        }
        Ok(body) => {
            metrics.received(body.len());
            Err(ReadFailure::Codec(CodecError::Truncated))
        }
        Err(quinn::ReadToEndError::TooLong) => Err(ReadFailure::Codec(CodecError::TrailingBytes {
            // At least one byte beyond the frame arrived; how many more is not read.
            remaining: 1,
        })),
        Err(quinn::ReadToEndError::Read(err)) => Err(err.into()),
    }
}
