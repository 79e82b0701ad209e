//! `TransportConfig`: every cap and timeout of the transport, with documented defaults.

use std::time::Duration;

use crate::{Codec, Compression, Limits};

/// 64 concurrent request streams per connection and direction: a DHT lookup keeps 3
/// requests per peer in flight and block sync a handful, so 64 is generous for honest
/// peers while bounding the reader tasks a peer can start on us.
pub const DEFAULT_MAX_CONCURRENT_BIDI_STREAMS: u32 = 64;

/// 64 concurrent one-way message streams per connection (gossip bursts).
pub const DEFAULT_MAX_CONCURRENT_UNI_STREAMS: u32 = 64;

/// 32 MiB of received-but-unhandled request and message bytes per connection: two
/// maximum frames. With stream caps alone a peer could park (64 + 64) × 16 MiB on us.
pub const DEFAULT_MAX_INBOUND_BYTES_PER_CONNECTION: usize = 32 * 1024 * 1024;

/// 30 s for a whole outbound request (open the stream, send, receive the response): a
/// 16 MiB response at 5 Mbit/s takes ~27 s.
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// 30 s for a peer to deliver one inbound request or message (protocol byte to FIN), for the
/// same reason; a stream that trickles or stalls longer is reset without blocking others.
pub const DEFAULT_INBOUND_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// 10 s for a QUIC + TLS handshake: a few round trips even on a 1 s RTT link with loss.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// 30 s without any packet closes a connection (QUIC `max_idle_timeout`).
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// A keep-alive PING every 10 s: a third of the idle timeout, so two may be lost, and below
/// the ~30 s UDP mapping timeout of common NATs.
pub const DEFAULT_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(10);

/// 64 inbound handshakes at once; further connection attempts are refused until one ends.
pub const DEFAULT_MAX_PENDING_HANDSHAKES: usize = 64;

/// Past 16 inbound handshakes in progress (a quarter of the cap), new connection attempts
/// from unvalidated addresses get a QUIC Retry first.
pub const DEFAULT_VALIDATE_ADDRESSES_ABOVE: usize = 16;

/// 16 established inbound connections waiting for [`Endpoint::accept`](crate::Endpoint::accept).
pub const DEFAULT_ACCEPT_QUEUE: usize = 16;

/// 3 s for [`Endpoint::close`](crate::Endpoint::close) to see peers acknowledge the close.
pub const DEFAULT_CLOSE_TIMEOUT: Duration = Duration::from_secs(3);

/// The caps and timeouts of an [`Endpoint`](crate::Endpoint) and its connections.
///
/// `Default` gives the documented defaults (see the `DEFAULT_*` constants for each value's
/// reason). Both sides enforce their own limits; nothing here is negotiated except the QUIC
/// stream limits and idle timeout, which QUIC transport parameters announce to the peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportConfig {
    /// Frame limits for every request, response and message (the codec's [`Limits`]).
    pub limits: Limits,
    /// How this side compresses what it sends.
    pub compression: Compression,
    /// Concurrent inbound request streams a peer may open (QUIC `initial_max_streams_bidi`).
    pub max_concurrent_bidi_streams: u32,
    /// Concurrent inbound message streams a peer may open (QUIC `initial_max_streams_uni`).
    pub max_concurrent_uni_streams: u32,
    /// Bytes of inbound requests and messages that are read but not yet handled, per
    /// connection. A reader waits for budget before reading a payload; raised to at least
    /// `limits.max_frame_len` so that every allowed frame can be read.
    pub max_inbound_bytes_per_connection: usize,
    /// Whole outbound request (and respond / send message) deadline.
    pub request_timeout: Duration,
    /// Deadline for a peer to deliver one inbound request or message, from stream accept
    /// to its end; past it the stream is reset with [`ResetCode::Timeout`](crate::ResetCode).
    pub inbound_read_timeout: Duration,
    /// Deadline for the QUIC + TLS handshake, for dials and inbound connections.
    pub handshake_timeout: Duration,
    /// Close a connection after this long without a packet.
    pub idle_timeout: Duration,
    /// Send a keep-alive this often on an otherwise quiet connection (`None`: never).
    pub keep_alive_interval: Option<Duration>,
    /// Inbound handshakes in progress at once; more connection attempts are refused.
    pub max_pending_handshakes: usize,
    /// With this many inbound handshakes (or more) in progress, a connection attempt from
    /// an address that has not proven it receives our packets gets a QUIC Retry (address
    /// validation, RFC 9000 §8.1) before any handshake work: one extra round trip for the
    /// client, and a flood of spoofed source addresses costs this side no TLS work and
    /// no handshake slot. 0 validates every address; `usize::MAX` never asks.
    pub validate_addresses_above: usize,
    /// Established inbound connections waiting to be accepted.
    pub accept_queue: usize,
    /// How long [`Endpoint::close`](crate::Endpoint::close) waits for peers to acknowledge.
    pub close_timeout: Duration,
}

impl Default for TransportConfig {
    fn default() -> Self {
        Self {
            limits: Limits::DEFAULT,
            compression: Compression::DEFAULT,
            max_concurrent_bidi_streams: DEFAULT_MAX_CONCURRENT_BIDI_STREAMS,
            max_concurrent_uni_streams: DEFAULT_MAX_CONCURRENT_UNI_STREAMS,
            max_inbound_bytes_per_connection: DEFAULT_MAX_INBOUND_BYTES_PER_CONNECTION,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            inbound_read_timeout: DEFAULT_INBOUND_READ_TIMEOUT,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            keep_alive_interval: Some(DEFAULT_KEEP_ALIVE_INTERVAL),
            max_pending_handshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
            validate_addresses_above: DEFAULT_VALIDATE_ADDRESSES_ABOVE,
            accept_queue: DEFAULT_ACCEPT_QUEUE,
            close_timeout: DEFAULT_CLOSE_TIMEOUT,
        }
    }
}

impl TransportConfig {
    /// The codec this configuration implies.
    pub(crate) fn codec(&self) -> Codec {
        Codec::new(self.limits, self.compression)
    }

    /// The per-connection inbound byte budget, never below one maximum frame.
    pub(crate) fn inbound_budget(&self) -> usize {
        self.max_inbound_bytes_per_connection
            .max(self.limits.frame_len_cap())
            .min(tokio::sync::Semaphore::MAX_PERMITS)
    }

    /// The quinn transport parameters for these caps and timeouts.
    pub(crate) fn quinn_transport(&self) -> Result<quinn::TransportConfig, ConfigError> {
        let mut transport = quinn::TransportConfig::default();
        transport
            .max_concurrent_bidi_streams(self.max_concurrent_bidi_streams.into())
            .max_concurrent_uni_streams(self.max_concurrent_uni_streams.into())
            .max_idle_timeout(Some(
                quinn::IdleTimeout::try_from(self.idle_timeout)
                    .map_err(|_| ConfigError::IdleTimeoutTooLarge)?,
            ))
            .keep_alive_interval(self.keep_alive_interval)
            // Datagrams are not part of the protocol.
            .datagram_receive_buffer_size(None);
        Ok(transport)
    }
}

/// A [`TransportConfig`] that quinn cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `idle_timeout` above QUIC's maximum (2^62 ms).
    #[error("idle timeout too large for QUIC")]
    IdleTimeoutTooLarge,
}
