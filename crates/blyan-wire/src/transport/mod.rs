//! The authenticated QUIC transport (feature `transport`).

mod config;
mod connection;
mod endpoint;
mod error;
mod inbound;
mod metrics;
mod protocol;
#[cfg(feature = "sim")]
mod sim;
mod stream;
mod tls;
mod verified_certificates;

pub use config::{
    ConfigError, DEFAULT_ACCEPT_QUEUE, DEFAULT_CLOSE_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_IDLE_TIMEOUT, DEFAULT_INBOUND_READ_TIMEOUT, DEFAULT_KEEP_ALIVE_INTERVAL,
    DEFAULT_MAX_CONCURRENT_BIDI_STREAMS, DEFAULT_MAX_CONCURRENT_UNI_STREAMS,
    DEFAULT_MAX_INBOUND_BYTES_PER_CONNECTION, DEFAULT_MAX_PENDING_HANDSHAKES,
    DEFAULT_REQUEST_TIMEOUT, DEFAULT_VALIDATE_ADDRESSES_ABOVE, TransportConfig,
};
pub use connection::Connection;
pub use endpoint::Endpoint;
pub use error::{
    BindError, ConnectFailure, ConnectionLost, DialError, RequestError, ResetCode, SendError,
    close_code,
};
pub use inbound::{Inbound, InboundMessage, InboundRequest};
pub use metrics::metric_names;
pub use protocol::{ALPN, Protocol};
#[cfg(feature = "sim")]
pub use sim::{LinkConditions, SimNetwork};
