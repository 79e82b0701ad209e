//! Errors of the transport: binding, dialing, requests and sends; stream and close codes.

use std::fmt;
use std::io;
use std::time::Duration;

use blyan_crypto::PeerId;

use crate::CodecError;
use crate::transport::config::ConfigError;

/// QUIC application error codes a Blyan endpoint puts on `RESET_STREAM` / `STOP_SENDING`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResetCode {
    /// 0x1: the stream did not carry one protocol byte and one valid frame (or carried
    /// bytes after it), or its payload did not decode.
    Malformed,
    /// 0x2: the peer did not deliver the request or message within the inbound read timeout.
    Timeout,
    /// 0x3: the receiver dropped the request without answering (no handler, shutting down,
    /// overloaded).
    Refused,
    /// 0x4: the frame's length exceeded the receiver's `max_frame_len`.
    TooLarge,
    /// 0x5: the receiver does not serve the stream's protocol byte.
    UnknownProtocol,
    /// Any other code (from a newer or foreign implementation).
    Other(u64),
}

impl ResetCode {
    /// The code's number on the wire.
    pub const fn to_u64(self) -> u64 {
        match self {
            Self::Malformed => 1,
            Self::Timeout => 2,
            Self::Refused => 3,
            Self::TooLarge => 4,
            Self::UnknownProtocol => 5,
            Self::Other(code) => code,
        }
    }

    /// The code for a number read from the wire.
    pub const fn from_u64(code: u64) -> Self {
        match code {
            1 => Self::Malformed,
            2 => Self::Timeout,
            3 => Self::Refused,
            4 => Self::TooLarge,
            5 => Self::UnknownProtocol,
            other => Self::Other(other),
        }
    }

    /// The `code` label of `blyan_transport_streams_reset_total`.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Timeout => "timeout",
            Self::Refused => "refused",
            Self::TooLarge => "too_large",
            Self::UnknownProtocol => "unknown_protocol",
            Self::Other(_) => "other",
        }
    }

    pub(crate) fn var_int(self) -> quinn::VarInt {
        // Codes from the wire fit a VarInt; out-of-range local values are saturated.
        quinn::VarInt::from_u64(self.to_u64()).unwrap_or(quinn::VarInt::MAX)
    }

    /// The code that fits a failure to read or decode a received frame: `TooLarge` for
    /// size limits (frame or decompressed), `Malformed` for everything else.
    pub fn for_codec_error(err: &CodecError) -> Self {
        match err {
            CodecError::FrameTooLarge { .. } | CodecError::DecompressedTooLarge { .. } => {
                Self::TooLarge
            }
            _ => Self::Malformed,
        }
    }
}

impl fmt::Display for ResetCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed"),
            Self::Timeout => f.write_str("timeout"),
            Self::Refused => f.write_str("refused"),
            Self::TooLarge => f.write_str("too large"),
            Self::UnknownProtocol => f.write_str("unknown protocol"),
            Self::Other(code) => write!(f, "code {code:#x}"),
        }
    }
}

/// QUIC application close codes of a Blyan connection (`CONNECTION_CLOSE`).
pub mod close_code {
    /// The connection (or its last handle) was closed normally.
    pub const NORMAL: u32 = 0;
    /// The endpoint is shutting down.
    pub const SHUTDOWN: u32 = 1;
    /// The handshake did not negotiate ALPN `blyan/1`.
    pub const WRONG_PROTOCOL: u32 = 2;
}

/// Why a connection ended or could not be used: an opaque QUIC error, so that quinn's
/// error types are not part of this crate's API.
#[derive(Debug, Clone)]
pub struct ConnectionLost(pub(crate) quinn::ConnectionError);

impl ConnectionLost {
    /// The application close code, when the peer (or this side) closed the connection
    /// through the application (see [`close_code`]).
    pub fn application_close_code(&self) -> Option<u64> {
        match &self.0 {
            quinn::ConnectionError::ApplicationClosed(close) => Some(close.error_code.into_inner()),
            _ => None,
        }
    }

    /// True when the connection was closed by this side.
    pub fn is_locally_closed(&self) -> bool {
        matches!(self.0, quinn::ConnectionError::LocallyClosed)
    }

    /// True when the connection ended because the peer went silent.
    pub fn is_timed_out(&self) -> bool {
        matches!(self.0, quinn::ConnectionError::TimedOut)
    }
}

impl fmt::Display for ConnectionLost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for ConnectionLost {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

/// Why [`Endpoint::bind`](crate::Endpoint::bind) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The socket could not be bound (address in use, permissions, no tokio runtime).
    #[error("cannot bind the endpoint: {0}")]
    Io(#[from] io::Error),
    /// The configuration cannot be expressed in QUIC.
    #[error("invalid transport configuration: {0}")]
    Config(#[from] ConfigError),
    /// The TLS configuration could not be built (a rustls or ring limitation).
    #[error("cannot build the TLS configuration: {0}")]
    Tls(String),
}

/// Why [`Endpoint::dial`](crate::Endpoint::dial) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DialError {
    /// The remote's certificate names another node than the one dialed. The handshake was
    /// aborted before this side sent its own certificate.
    #[error("dialed {expected} but the remote is {actual}")]
    PeerIdMismatch {
        /// The id the caller expected.
        expected: PeerId,
        /// The id the remote's certificate proves.
        actual: PeerId,
    },
    /// The handshake did not complete within the configured handshake timeout.
    #[error("handshake timed out after {after:?}")]
    HandshakeTimeout {
        /// The configured timeout.
        after: Duration,
    },
    /// The handshake failed (TLS refused, wrong ALPN, unreachable, closed by the peer).
    #[error("handshake failed: {0}")]
    Handshake(#[source] ConnectionLost),
    /// The connection could not even be started (closed endpoint, invalid address).
    #[error("cannot start the connection: {0}")]
    Connect(#[source] ConnectFailure),
    /// The remote completed the handshake without a usable Blyan certificate.
    #[error("the remote presented no usable certificate")]
    NoPeerCertificate,
    /// The handshake did not negotiate ALPN `blyan/1`.
    #[error("the remote does not speak blyan/1")]
    WrongProtocol,
}

/// Why a dial could not start: opaque, so that quinn's and rustls' errors are not part of
/// this crate's API.
#[derive(Debug)]
pub struct ConnectFailure(FailureKind);

#[derive(Debug)]
enum FailureKind {
    Quic(quinn::ConnectError),
    Tls(String),
}

impl ConnectFailure {
    pub(crate) fn quic(err: quinn::ConnectError) -> Self {
        Self(FailureKind::Quic(err))
    }

    pub(crate) fn tls(err: impl fmt::Display) -> Self {
        Self(FailureKind::Tls(err.to_string()))
    }

    /// True when the endpoint was closed before the dial.
    pub fn is_endpoint_closed(&self) -> bool {
        matches!(
            self.0,
            FailureKind::Quic(quinn::ConnectError::EndpointStopping)
        )
    }
}

impl fmt::Display for ConnectFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            FailureKind::Quic(err) => err.fmt(f),
            FailureKind::Tls(err) => f.write_str(err),
        }
    }
}

impl std::error::Error for ConnectFailure {}

/// Why [`Connection::request`](crate::Connection::request) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The request could not be encoded (or exceeds this side's `max_frame_len`).
    #[error("cannot encode the request: {0}")]
    Encode(#[source] CodecError),
    /// No complete response within the configured request timeout; the stream was reset.
    #[error("request timed out after {after:?}")]
    Timeout {
        /// The configured timeout.
        after: Duration,
    },
    /// The peer reset the response stream or stopped reading the request.
    #[error("the peer reset the request stream ({code})")]
    Reset {
        /// The peer's reason.
        code: ResetCode,
    },
    /// The response was not one valid frame (too large, truncated, trailing bytes, or it
    /// did not decode as the expected type).
    #[error("invalid response: {0}")]
    Response(#[source] CodecError),
    /// The connection is gone.
    #[error("connection lost: {0}")]
    ConnectionLost(#[source] ConnectionLost),
}

/// Why sending a one-way message or a response failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SendError {
    /// The value could not be encoded (or exceeds this side's `max_frame_len`).
    #[error("cannot encode the message: {0}")]
    Encode(#[source] CodecError),
    /// The peer did not take the bytes within the configured request timeout.
    #[error("send timed out after {after:?}")]
    Timeout {
        /// The configured timeout.
        after: Duration,
    },
    /// The peer stopped the stream.
    #[error("the peer stopped the stream ({code})")]
    Stopped {
        /// The peer's reason.
        code: ResetCode,
    },
    /// The connection is gone.
    #[error("connection lost: {0}")]
    ConnectionLost(#[source] ConnectionLost),
}

impl From<quinn::WriteError> for SendError {
    fn from(err: quinn::WriteError) -> Self {
        match err {
            quinn::WriteError::Stopped(code) => Self::Stopped {
                code: ResetCode::from_u64(code.into_inner()),
            },
            quinn::WriteError::ConnectionLost(lost) => Self::ConnectionLost(ConnectionLost(lost)),
            // 0-RTT is never used; a closed stream is this side's own doing.
            quinn::WriteError::ClosedStream | quinn::WriteError::ZeroRttRejected => Self::Stopped {
                code: ResetCode::Refused,
            },
        }
    }
}

impl From<SendError> for RequestError {
    fn from(err: SendError) -> Self {
        match err {
            SendError::Encode(e) => Self::Encode(e),
            SendError::Timeout { after } => Self::Timeout { after },
            SendError::Stopped { code } => Self::Reset { code },
            SendError::ConnectionLost(lost) => Self::ConnectionLost(lost),
        }
    }
}

/// A failure while reading one frame from a QUIC receive stream.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The frame is invalid (the stream should be reset with the matching code).
    Codec(CodecError),
    /// The peer reset the stream.
    Reset(ResetCode),
    /// The connection is gone.
    Lost(quinn::ConnectionError),
}

impl From<quinn::ReadError> for ReadFailure {
    fn from(err: quinn::ReadError) -> Self {
        match err {
            quinn::ReadError::Reset(code) => Self::Reset(ResetCode::from_u64(code.into_inner())),
            quinn::ReadError::ConnectionLost(lost) => Self::Lost(lost),
            quinn::ReadError::ClosedStream
            | quinn::ReadError::IllegalOrderedRead
            | quinn::ReadError::ZeroRttRejected => Self::Reset(ResetCode::Refused),
        }
    }
}

impl From<quinn::ReadExactError> for ReadFailure {
    fn from(err: quinn::ReadExactError) -> Self {
        match err {
            quinn::ReadExactError::FinishedEarly(_) => Self::Codec(CodecError::Truncated),
            quinn::ReadExactError::ReadError(e) => e.into(),
        }
    }
}

impl From<ReadFailure> for RequestError {
    fn from(failure: ReadFailure) -> Self {
        match failure {
            ReadFailure::Codec(e) => Self::Response(e),
            ReadFailure::Reset(code) => Self::Reset { code },
            ReadFailure::Lost(lost) => Self::ConnectionLost(ConnectionLost(lost)),
        }
    }
}
