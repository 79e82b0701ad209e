//! Transport metrics, recorded through the [`metrics`] facade: whatever recorder the
//! process installed receives them (the node's Prometheus exporter, a test recorder, or
//! nothing, at a cost of a few nanoseconds per event).
//!
//! The names are defined here because blyan-wire sits below blyan-ops (DESIGN §2: no crate
//! imports one beside or above it); blyan-ops' catalog lists the same names with their help
//! text, and `blyan_p2p_bytes_total` is the catalog's DESIGN §8 name. Every label takes
//! values from a closed set: nothing is labelled per peer.

use metrics::Counter;

use crate::transport::error::ResetCode;

/// The metric names and label values of the transport (the same names as blyan-ops'
/// catalog). Every counter restarts at zero with the process.
pub mod metric_names {
    /// `blyan_transport_connections_opened_total{direction}`: connections that completed the
    /// handshake and were authenticated (`direction`: `inbound` accepted, `outbound`
    /// dialled).
    pub const CONNECTIONS_OPENED_TOTAL: &str = "blyan_transport_connections_opened_total";
    /// `blyan_transport_connections_closed_total{direction,reason}`: authenticated
    /// connections that ended; `reason` is `local` (this side closed or dropped it),
    /// `remote` (the peer closed it), `idle_timeout` or `error` (a protocol error or a
    /// stateless reset).
    pub const CONNECTIONS_CLOSED_TOTAL: &str = "blyan_transport_connections_closed_total";
    /// `blyan_transport_handshake_failures_total{direction,reason}`: connection attempts
    /// that did not become an authenticated connection; `reason` is one of
    /// [`HANDSHAKE_FAILURE_REASONS`].
    pub const HANDSHAKE_FAILURES_TOTAL: &str = "blyan_transport_handshake_failures_total";
    /// `blyan_transport_streams_reset_total{code}`: streams this side reset or stopped,
    /// by reset code (`malformed`, `timeout`, `refused`, `too_large`, `unknown_protocol`,
    /// `other`); `refused` counts requests dropped unanswered.
    pub const STREAMS_RESET_TOTAL: &str = "blyan_transport_streams_reset_total";
    /// `blyan_transport_timeouts_total{operation}`: deadlines that expired; `operation` is
    /// `request` (an outbound request got no response in time), `message` (a one-way
    /// message was not acknowledged in time), `response` (a response was not acknowledged
    /// in time) or `inbound_read` (a peer did not deliver its request or message in time).
    pub const TIMEOUTS_TOTAL: &str = "blyan_transport_timeouts_total";
    /// `blyan_transport_address_validations_total`: inbound connection attempts answered
    /// with a QUIC Retry (address validation) because many handshakes were in progress.
    pub const ADDRESS_VALIDATIONS_TOTAL: &str = "blyan_transport_address_validations_total";
    /// `blyan_p2p_bytes_total{direction}`: stream bytes exchanged with peers (protocol
    /// byte and frames; QUIC and UDP overhead not included); `direction` is `inbound`
    /// (received) or `outbound` (sent).
    pub const P2P_BYTES_TOTAL: &str = "blyan_p2p_bytes_total";
    /// Every value of the `reason` label of [`HANDSHAKE_FAILURES_TOTAL`]: `timeout` (no
    /// handshake within `handshake_timeout`, or the peer went silent), `peer_id_mismatch`
    /// (the dialled peer proved another id), `certificate` (a certificate or handshake
    /// signature was refused, by either side), `tls` (another TLS failure), `wrong_protocol`
    /// (no ALPN `blyan/1`), `no_certificate`, `refused` (the remote refused the connection),
    /// `capacity` (refused here: `max_pending_handshakes` in progress), `other`.
    pub const HANDSHAKE_FAILURE_REASONS: &[&str] = &[
        "timeout",
        "peer_id_mismatch",
        "certificate",
        "tls",
        "wrong_protocol",
        "no_certificate",
        "refused",
        "capacity",
        "other",
    ];
}

use metric_names::{
    ADDRESS_VALIDATIONS_TOTAL, CONNECTIONS_CLOSED_TOTAL, CONNECTIONS_OPENED_TOTAL,
    HANDSHAKE_FAILURES_TOTAL, P2P_BYTES_TOTAL, STREAMS_RESET_TOTAL, TIMEOUTS_TOTAL,
};

/// Which side opened a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// The peer dialled us.
    Inbound,
    /// We dialled the peer.
    Outbound,
}

impl Direction {
    const fn label(self) -> &'static str {
        match self {
            Self::Inbound => "inbound",
            Self::Outbound => "outbound",
        }
    }
}

/// Why a connection attempt failed (the `reason` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum HandshakeFailure {
    Timeout,
    PeerIdMismatch,
    Certificate,
    Tls,
    WrongProtocol,
    NoCertificate,
    Refused,
    Capacity,
    Other,
}

impl HandshakeFailure {
    const fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::PeerIdMismatch => "peer_id_mismatch",
            Self::Certificate => "certificate",
            Self::Tls => "tls",
            Self::WrongProtocol => "wrong_protocol",
            Self::NoCertificate => "no_certificate",
            Self::Refused => "refused",
            Self::Capacity => "capacity",
            Self::Other => "other",
        }
    }

    /// The reason a QUIC connection error stands for, during a handshake.
    pub(crate) fn of(err: &quinn::ConnectionError) -> Self {
        match err {
            quinn::ConnectionError::TimedOut => Self::Timeout,
            quinn::ConnectionError::ConnectionClosed(close) => {
                if close.error_code == quinn::TransportErrorCode::CONNECTION_REFUSED {
                    Self::Refused
                } else {
                    Self::of_code(close.error_code)
                }
            }
            quinn::ConnectionError::TransportError(err) => Self::of_code(err.code),
            _ => Self::Other,
        }
    }

    /// TLS alerts travel as QUIC CRYPTO_ERROR codes 0x100 + alert (RFC 9001 §4.8).
    fn of_code(code: quinn::TransportErrorCode) -> Self {
        match u64::from(code).checked_sub(0x100) {
            // bad_certificate, unsupported_certificate, certificate_revoked,
            // certificate_expired, certificate_unknown, unknown_ca, access_denied,
            // decrypt_error (a bad handshake signature), certificate_required.
            Some(42..=46 | 48 | 49 | 51 | 116) => Self::Certificate,
            Some(0..=0xff) => Self::Tls,
            _ => Self::Other,
        }
    }
}

/// How an authenticated connection ended (the `reason` label of connections closed).
fn close_reason(err: &quinn::ConnectionError) -> &'static str {
    match err {
        quinn::ConnectionError::LocallyClosed => "local",
        quinn::ConnectionError::ApplicationClosed(_)
        | quinn::ConnectionError::ConnectionClosed(_) => "remote",
        quinn::ConnectionError::TimedOut => "idle_timeout",
        _ => "error",
    }
}

/// What timed out (the `operation` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timeout {
    Request,
    Message,
    Response,
    InboundRead,
}

impl Timeout {
    const fn label(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Message => "message",
            Self::Response => "response",
            Self::InboundRead => "inbound_read",
        }
    }
}

/// The transport's metric handles. The byte counters, touched on every stream, are
/// registered once per endpoint (with the recorder current when it was bound); the rare
/// events are recorded by name when they happen.
#[derive(Clone, Debug)]
pub(crate) struct TransportMetrics {
    bytes_in: Counter,
    bytes_out: Counter,
}

impl TransportMetrics {
    pub(crate) fn new() -> Self {
        Self {
            bytes_in: metrics::counter!(P2P_BYTES_TOTAL, "direction" => "inbound"),
            bytes_out: metrics::counter!(P2P_BYTES_TOTAL, "direction" => "outbound"),
        }
    }

    pub(crate) fn received(&self, bytes: usize) {
        self.bytes_in.increment(bytes as u64);
    }

    pub(crate) fn sent(&self, bytes: usize) {
        self.bytes_out.increment(bytes as u64);
    }
}

pub(crate) fn connection_opened(direction: Direction) {
    metrics::counter!(CONNECTIONS_OPENED_TOTAL, "direction" => direction.label()).increment(1);
}

pub(crate) fn connection_closed(direction: Direction, err: &quinn::ConnectionError) {
    metrics::counter!(
        CONNECTIONS_CLOSED_TOTAL,
        "direction" => direction.label(),
        "reason" => close_reason(err),
    )
    .increment(1);
}

pub(crate) fn handshake_failed(direction: Direction, reason: HandshakeFailure) {
    metrics::counter!(
        HANDSHAKE_FAILURES_TOTAL,
        "direction" => direction.label(),
        "reason" => reason.label(),
    )
    .increment(1);
}

pub(crate) fn stream_reset(code: ResetCode) {
    metrics::counter!(STREAMS_RESET_TOTAL, "code" => code.label()).increment(1);
}

pub(crate) fn timed_out(operation: Timeout) {
    metrics::counter!(TIMEOUTS_TOTAL, "operation" => operation.label()).increment(1);
}

pub(crate) fn address_validation() {
    metrics::counter!(ADDRESS_VALIDATIONS_TOTAL).increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_alerts_are_classified() {
        let crypto = quinn::TransportErrorCode::crypto;
        assert_eq!(
            HandshakeFailure::of_code(crypto(42)),
            HandshakeFailure::Certificate
        );
        assert_eq!(
            HandshakeFailure::of_code(crypto(51)),
            HandshakeFailure::Certificate
        );
        assert_eq!(
            HandshakeFailure::of_code(crypto(120)),
            HandshakeFailure::Tls
        );
        assert_eq!(
            HandshakeFailure::of_code(quinn::TransportErrorCode::PROTOCOL_VIOLATION),
            HandshakeFailure::Other
        );
        assert_eq!(
            HandshakeFailure::of(&quinn::ConnectionError::TimedOut),
            HandshakeFailure::Timeout
        );
    }

    #[test]
    fn every_reason_label_is_listed() {
        use HandshakeFailure::*;
        let all = [
            Timeout,
            PeerIdMismatch,
            Certificate,
            Tls,
            WrongProtocol,
            NoCertificate,
            Refused,
            Capacity,
            Other,
        ];
        let labels: Vec<_> = all.iter().map(|reason| reason.label()).collect();
        assert_eq!(labels, metric_names::HANDSHAKE_FAILURE_REASONS);
    }
}
