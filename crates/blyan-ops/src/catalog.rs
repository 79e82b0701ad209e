//! The one list of metric names: every metric the node exports, with its
//! type, unit, help text, label keys and histogram buckets.
//!
//! Library crates record through the [`metrics`] facade by these names
//! (`metrics::gauge!(CHAIN_HEIGHT.name)`), or through the typed helpers of
//! [`crate::metrics_collector`]; the exporter and `docs/operations.md` read the
//! same table, so a name is spelled once.
//!
//! Naming follows the Prometheus conventions that `promtool check metrics`
//! lints: counters end in `_total`, nothing else does, and a quantity with a
//! unit carries the base unit in its name (`_seconds`, `_bytes`). DESIGN §8
//! named three gauges `*_total`; they are exported as `blyan_p2p_peers`,
//! `blyan_banned_peers` and `blyan_dht_nodes`, because a `_total` gauge is
//! read as a counter by `rate()` users and fails the lint.

use crate::labels::{
    BlockStatus, Direction, LabelSpec, MessageStatus, MessageType, PenaltyReason, RejectionReason,
};

/// The Prometheus type of a metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricKind {
    /// Only goes up (restarts at zero with the process).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations counted into cumulative buckets.
    Histogram,
}

impl MetricKind {
    /// The type name in the text exposition (`# TYPE name counter`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
            Self::Histogram => "histogram",
        }
    }
}

/// What one unit of a metric's value means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetricUnit {
    /// Seconds (durations, or a Unix timestamp).
    Seconds,
    /// Bytes.
    Bytes,
    /// A number of things (peers, messages, transactions).
    Count,
    /// A block height or a number of blocks.
    Blocks,
    /// A fraction between 0 and 1.
    Ratio,
    /// Always 1: the information is in the labels.
    Info,
}

impl MetricUnit {
    /// A short name for documentation.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "seconds",
            Self::Bytes => "bytes",
            Self::Count => "count",
            Self::Blocks => "blocks",
            Self::Ratio => "ratio",
            Self::Info => "info",
        }
    }

    /// The facade's unit, where the facade has one.
    pub const fn to_metrics_unit(self) -> Option<metrics::Unit> {
        match self {
            Self::Seconds => Some(metrics::Unit::Seconds),
            Self::Bytes => Some(metrics::Unit::Bytes),
            Self::Count | Self::Blocks => Some(metrics::Unit::Count),
            Self::Ratio | Self::Info => None,
        }
    }
}

/// One exported metric.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricDef {
    /// The exported name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// What the value counts or measures.
    pub unit: MetricUnit,
    /// The `# HELP` text.
    pub help: &'static str,
    /// Label keys and the values each may take, in the order they are written.
    pub labels: &'static [LabelSpec],
    /// Upper bucket bounds for a histogram (strictly increasing); empty otherwise.
    pub buckets: &'static [f64],
}

impl MetricDef {
    /// The label keys, in order.
    pub fn label_keys(&self) -> impl Iterator<Item = &'static str> + use<> {
        self.labels.iter().map(|label| label.key)
    }
}

/// Block import takes microseconds for an empty block and may take seconds for
/// a full one on a slow disk; the buckets span 1 ms to 10 s.
pub const BLOCK_PROCESSING_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// An iterative Kademlia lookup is a few network round trips, bounded by the
/// request timeouts; the buckets span 10 ms to 30 s.
pub const DHT_LOOKUP_BUCKETS: &[f64] =
    &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Reorg depths in blocks; 100 is the default `max_reorg_depth`, beyond which
/// reorgs are refused.
pub const REORG_DEPTH_BUCKETS: &[f64] = &[1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0];

/// The label of `blyan_build_info`: one value per process, set by the binary.
pub const VERSION_LABEL: LabelSpec = LabelSpec {
    key: "version",
    values: &[],
};

const fn counter(
    name: &'static str,
    unit: MetricUnit,
    help: &'static str,
    labels: &'static [LabelSpec],
) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Counter,
        unit,
        help,
        labels,
        buckets: &[],
    }
}

const fn gauge(
    name: &'static str,
    unit: MetricUnit,
    help: &'static str,
    labels: &'static [LabelSpec],
) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Gauge,
        unit,
        help,
        labels,
        buckets: &[],
    }
}

const fn histogram(
    name: &'static str,
    unit: MetricUnit,
    help: &'static str,
    buckets: &'static [f64],
) -> MetricDef {
    MetricDef {
        name,
        kind: MetricKind::Histogram,
        unit,
        help,
        labels: &[],
        buckets,
    }
}

/// `blyan_build_info{version}`: always 1; the running version is the label.
pub const BUILD_INFO: MetricDef = gauge(
    "blyan_build_info",
    MetricUnit::Info,
    "Always 1; the version label names the running node version.",
    &[VERSION_LABEL],
);

/// `blyan_start_time_seconds`: when the process started.
pub const START_TIME_SECONDS: MetricDef = gauge(
    "blyan_start_time_seconds",
    MetricUnit::Seconds,
    "Unix time at which the node process started, in seconds.",
    &[],
);

/// `blyan_chain_height`: height of the canonical tip.
pub const CHAIN_HEIGHT: MetricDef = gauge(
    "blyan_chain_height",
    MetricUnit::Blocks,
    "Height of the canonical chain tip.",
    &[],
);

/// `blyan_finalized_height`: height of the highest finalized block.
pub const FINALIZED_HEIGHT: MetricDef = gauge(
    "blyan_finalized_height",
    MetricUnit::Blocks,
    "Height of the highest finalized canonical block.",
    &[],
);

/// `blyan_sync_progress_ratio`: local height over the best known height.
pub const SYNC_PROGRESS_RATIO: MetricDef = gauge(
    "blyan_sync_progress_ratio",
    MetricUnit::Ratio,
    "Chain sync progress: local height over best known network height, from 0 to 1.",
    &[],
);

/// `blyan_reorg_total`: reorganisations of the canonical chain.
pub const REORG_TOTAL: MetricDef = counter(
    "blyan_reorg_total",
    MetricUnit::Count,
    "Reorganisations of the canonical chain.",
    &[],
);

/// `blyan_reorg_depth`: blocks rolled back per reorganisation.
pub const REORG_DEPTH: MetricDef = histogram(
    "blyan_reorg_depth",
    MetricUnit::Blocks,
    "Canonical blocks rolled back per reorganisation.",
    REORG_DEPTH_BUCKETS,
);

/// `blyan_blocks_total{status}`: blocks processed, by outcome.
pub const BLOCKS_TOTAL: MetricDef = counter(
    "blyan_blocks_total",
    MetricUnit::Blocks,
    "Blocks processed, by import outcome.",
    &[BlockStatus::LABEL],
);

/// `blyan_block_processing_seconds`: time to validate and import a block.
pub const BLOCK_PROCESSING_SECONDS: MetricDef = histogram(
    "blyan_block_processing_seconds",
    MetricUnit::Seconds,
    "Time to validate and import one block, in seconds.",
    BLOCK_PROCESSING_BUCKETS,
);

/// `blyan_orphan_blocks`: blocks waiting for their parent.
pub const ORPHAN_BLOCKS: MetricDef = gauge(
    "blyan_orphan_blocks",
    MetricUnit::Blocks,
    "Blocks waiting in the bounded orphan buffer for an unknown parent.",
    &[],
);

/// `blyan_mempool_transactions`: transactions waiting for inclusion.
pub const MEMPOOL_TRANSACTIONS: MetricDef = gauge(
    "blyan_mempool_transactions",
    MetricUnit::Count,
    "Transactions waiting in the mempool for inclusion in a block.",
    &[],
);

/// `blyan_p2p_peers{direction}`: connected peers (DESIGN §8's `blyan_p2p_peers_total`).
pub const P2P_PEERS: MetricDef = gauge(
    "blyan_p2p_peers",
    MetricUnit::Count,
    "Connected peers, by which side opened the connection.",
    &[Direction::LABEL],
);

/// `blyan_p2p_messages_total{type,status}`: peer messages by kind and outcome.
pub const P2P_MESSAGES_TOTAL: MetricDef = counter(
    "blyan_p2p_messages_total",
    MetricUnit::Count,
    "Peer-to-peer messages, by message type and outcome.",
    &[MessageType::LABEL, MessageStatus::LABEL],
);

/// `blyan_p2p_bytes_total{direction}`: bytes exchanged with peers.
pub const P2P_BYTES_TOTAL: MetricDef = counter(
    "blyan_p2p_bytes_total",
    MetricUnit::Bytes,
    "Bytes exchanged with peers (inbound: received, outbound: sent).",
    &[Direction::LABEL],
);

/// `blyan_banned_peers`: peers currently banned (DESIGN §8's `blyan_banned_peers_total`).
pub const BANNED_PEERS: MetricDef = gauge(
    "blyan_banned_peers",
    MetricUnit::Count,
    "Peers currently banned.",
    &[],
);

/// `blyan_peer_penalties_total{reason}`: score penalties applied to peers.
pub const PEER_PENALTIES_TOTAL: MetricDef = counter(
    "blyan_peer_penalties_total",
    MetricUnit::Count,
    "Score penalties applied to peers, by reason.",
    &[PenaltyReason::LABEL],
);

/// `blyan_security_rejections_total{reason}`: connections and messages refused.
pub const SECURITY_REJECTIONS_TOTAL: MetricDef = counter(
    "blyan_security_rejections_total",
    MetricUnit::Count,
    "Connections and messages refused by the security layer, by reason.",
    &[RejectionReason::LABEL],
);

/// `blyan_dht_nodes`: entries in the Kademlia routing table (DESIGN §8's `blyan_dht_nodes_total`).
pub const DHT_NODES: MetricDef = gauge(
    "blyan_dht_nodes",
    MetricUnit::Count,
    "Nodes in the Kademlia routing table.",
    &[],
);

/// `blyan_dht_lookup_seconds`: duration of iterative Kademlia lookups.
pub const DHT_LOOKUP_SECONDS: MetricDef = histogram(
    "blyan_dht_lookup_seconds",
    MetricUnit::Seconds,
    "Duration of one iterative Kademlia lookup, in seconds.",
    DHT_LOOKUP_BUCKETS,
);

/// Every metric the node exports, in the order of `docs/operations.md`.
pub const ALL_METRICS: &[MetricDef] = &[
    BUILD_INFO,
    START_TIME_SECONDS,
    CHAIN_HEIGHT,
    FINALIZED_HEIGHT,
    SYNC_PROGRESS_RATIO,
    REORG_TOTAL,
    REORG_DEPTH,
    BLOCKS_TOTAL,
    BLOCK_PROCESSING_SECONDS,
    ORPHAN_BLOCKS,
    MEMPOOL_TRANSACTIONS,
    P2P_PEERS,
    P2P_MESSAGES_TOTAL,
    P2P_BYTES_TOTAL,
    BANNED_PEERS,
    PEER_PENALTIES_TOTAL,
    SECURITY_REJECTIONS_TOTAL,
    DHT_NODES,
    DHT_LOOKUP_SECONDS,
    TRANSPORT_CONNECTIONS_OPENED_TOTAL,
    TRANSPORT_CONNECTIONS_CLOSED_TOTAL,
    TRANSPORT_HANDSHAKE_FAILURES_TOTAL,
    TRANSPORT_STREAMS_RESET_TOTAL,
    TRANSPORT_TIMEOUTS_TOTAL,
    TRANSPORT_ADDRESS_VALIDATIONS_TOTAL,
];

/// The definition of the metric called `name`, if it is in the catalog.
pub fn metric_def(name: &str) -> Option<&'static MetricDef> {
    ALL_METRICS.iter().find(|def| def.name == name)
}

// ---------------------------------------------------------------- transport (blyan-wire)
//
// blyan-wire sits below blyan-ops (DESIGN §2), so it records these by the same names from
// its own `blyan_wire::metric_names`; they are listed here once with their help text and
// closed label values. Direction uses [`Direction::LABEL`]; `blyan_p2p_bytes_total` is
// [`P2P_BYTES_TOTAL`] above. They are part of [`ALL_METRICS`].

/// `reason` of `blyan_transport_connections_closed_total`.
pub const CONNECTION_CLOSE_REASON_LABEL: LabelSpec = LabelSpec {
    key: "reason",
    values: &["local", "remote", "idle_timeout", "error"],
};

/// `reason` of `blyan_transport_handshake_failures_total`.
pub const HANDSHAKE_FAILURE_REASON_LABEL: LabelSpec = LabelSpec {
    key: "reason",
    values: &[
        "timeout",
        "peer_id_mismatch",
        "certificate",
        "tls",
        "wrong_protocol",
        "no_certificate",
        "refused",
        "capacity",
        "other",
    ],
};

/// `code` of `blyan_transport_streams_reset_total`: the stream reset codes.
pub const STREAM_RESET_CODE_LABEL: LabelSpec = LabelSpec {
    key: "code",
    values: &[
        "malformed",
        "timeout",
        "refused",
        "too_large",
        "unknown_protocol",
        "other",
    ],
};

/// `operation` of `blyan_transport_timeouts_total`.
pub const TIMEOUT_OPERATION_LABEL: LabelSpec = LabelSpec {
    key: "operation",
    values: &["request", "message", "response", "inbound_read"],
};

/// `blyan_transport_connections_opened_total{direction}`: authenticated connections.
pub const TRANSPORT_CONNECTIONS_OPENED_TOTAL: MetricDef = counter(
    "blyan_transport_connections_opened_total",
    MetricUnit::Count,
    "QUIC connections that completed the mutually authenticated handshake, by which side dialled.",
    &[Direction::LABEL],
);

/// `blyan_transport_connections_closed_total{direction,reason}`: connections that ended.
pub const TRANSPORT_CONNECTIONS_CLOSED_TOTAL: MetricDef = counter(
    "blyan_transport_connections_closed_total",
    MetricUnit::Count,
    "Authenticated QUIC connections that ended, by which side dialled and why they ended.",
    &[Direction::LABEL, CONNECTION_CLOSE_REASON_LABEL],
);

/// `blyan_transport_handshake_failures_total{direction,reason}`: failed connection attempts.
pub const TRANSPORT_HANDSHAKE_FAILURES_TOTAL: MetricDef = counter(
    "blyan_transport_handshake_failures_total",
    MetricUnit::Count,
    "Connection attempts that did not become an authenticated connection, by direction and reason.",
    &[Direction::LABEL, HANDSHAKE_FAILURE_REASON_LABEL],
);

/// `blyan_transport_streams_reset_total{code}`: streams this side reset or stopped.
pub const TRANSPORT_STREAMS_RESET_TOTAL: MetricDef = counter(
    "blyan_transport_streams_reset_total",
    MetricUnit::Count,
    "Streams this node reset or stopped, by reset code (refused: a request dropped unanswered).",
    &[STREAM_RESET_CODE_LABEL],
);

/// `blyan_transport_timeouts_total{operation}`: transport deadlines that expired.
pub const TRANSPORT_TIMEOUTS_TOTAL: MetricDef = counter(
    "blyan_transport_timeouts_total",
    MetricUnit::Count,
    "Transport deadlines that expired, by operation.",
    &[TIMEOUT_OPERATION_LABEL],
);

/// `blyan_transport_address_validations_total`: QUIC Retry packets sent.
pub const TRANSPORT_ADDRESS_VALIDATIONS_TOTAL: MetricDef = counter(
    "blyan_transport_address_validations_total",
    MetricUnit::Count,
    "Inbound connection attempts answered with a QUIC Retry because many handshakes were in progress.",
    &[],
);

/// The transport's metrics (blyan-wire), also in [`ALL_METRICS`]; their closed label sets
/// add 2 + 8 + 18 + 6 + 4 + 1 = 39 series.
pub const TRANSPORT_METRICS: &[MetricDef] = &[
    TRANSPORT_CONNECTIONS_OPENED_TOTAL,
    TRANSPORT_CONNECTIONS_CLOSED_TOTAL,
    TRANSPORT_HANDSHAKE_FAILURES_TOTAL,
    TRANSPORT_STREAMS_RESET_TOTAL,
    TRANSPORT_TIMEOUTS_TOTAL,
    TRANSPORT_ADDRESS_VALIDATIONS_TOTAL,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn is_metric_name(name: &str) -> bool {
        name.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn names_are_unique_prefixed_snake_case() {
        for (i, def) in ALL_METRICS.iter().enumerate() {
            assert!(def.name.starts_with("blyan_"), "{}", def.name);
            assert!(is_metric_name(def.name), "{}", def.name);
            assert!(
                ALL_METRICS[..i].iter().all(|other| other.name != def.name),
                "{} listed twice",
                def.name
            );
            assert!(!def.help.is_empty(), "{} has no help", def.name);
        }
    }

    #[test]
    fn only_counters_end_in_total() {
        for def in ALL_METRICS {
            let is_counter = def.kind == MetricKind::Counter;
            assert_eq!(def.name.ends_with("_total"), is_counter, "{}", def.name);
        }
    }

    #[test]
    fn names_carry_their_base_unit() {
        for def in ALL_METRICS {
            match def.unit {
                MetricUnit::Seconds => assert!(def.name.ends_with("_seconds"), "{}", def.name),
                MetricUnit::Bytes => assert!(def.name.ends_with("_bytes_total"), "{}", def.name),
                MetricUnit::Ratio => assert!(def.name.ends_with("_ratio"), "{}", def.name),
                MetricUnit::Info => assert!(def.name.ends_with("_info"), "{}", def.name),
                MetricUnit::Count | MetricUnit::Blocks => {}
            }
        }
    }

    #[test]
    fn histograms_and_only_histograms_have_increasing_buckets() {
        for def in ALL_METRICS {
            if def.kind == MetricKind::Histogram {
                assert!(!def.buckets.is_empty(), "{}", def.name);
                assert!(def.buckets.windows(2).all(|w| w[0] < w[1]), "{}", def.name);
                assert!(def.buckets.iter().all(|b| b.is_finite() && *b > 0.0));
                // Labelled histograms multiply series by the bucket count.
                assert!(def.labels.is_empty(), "{}", def.name);
            } else {
                assert!(def.buckets.is_empty(), "{}", def.name);
            }
        }
    }

    #[test]
    fn label_keys_are_distinct_and_not_reserved() {
        for def in ALL_METRICS {
            let keys: Vec<_> = def.label_keys().collect();
            for (i, key) in keys.iter().enumerate() {
                assert!(!keys[..i].contains(key), "{}: {key} twice", def.name);
                assert!(!matches!(*key, "le" | "quantile") && !key.starts_with("__"));
            }
        }
    }

    #[test]
    fn design_names_are_present() {
        for name in [
            "blyan_p2p_peers",
            "blyan_chain_height",
            "blyan_finalized_height",
            "blyan_sync_progress_ratio",
            "blyan_reorg_total",
            "blyan_reorg_depth",
            "blyan_banned_peers",
            "blyan_blocks_total",
            "blyan_block_processing_seconds",
            "blyan_p2p_messages_total",
            "blyan_p2p_bytes_total",
            "blyan_dht_nodes",
            "blyan_dht_lookup_seconds",
            "blyan_peer_penalties_total",
        ] {
            assert!(metric_def(name).is_some(), "{name} missing");
        }
        assert_eq!(metric_def("blyan_p2p_peers_total"), None);
    }
}
