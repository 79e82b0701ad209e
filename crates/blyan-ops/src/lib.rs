//! Operations for a Blyan node: the metric catalog, the Prometheus exporter
//! and structured logging.
//!
//! # Metrics
//!
//! [`catalog`] is the one list of metric names ([`ALL_METRICS`]): each
//! [`MetricDef`] carries its name, [`MetricKind`], [`MetricUnit`], help text,
//! label keys with every value they may take, and histogram buckets. Label
//! values come only from closed enums ([`Direction`], [`BlockStatus`],
//! [`MessageType`], [`MessageStatus`], [`PenaltyReason`],
//! [`RejectionReason`]), so no peer can create series: the number of series
//! is fixed at compile time.
//!
//! Library crates record through the [`metrics`] facade, usually via the
//! typed helpers of [`metrics_collector`] (the seed's name):
//! `update_chain_height`, `record_block`, `set_peers`, `record_message`, ...
//! They never know which recorder is installed. Only the binary calls
//! [`install_prometheus`], which installs the global recorder, describes and
//! zero-initialises every catalog series, and serves the text exposition
//! over HTTP on its own thread. [`MetricsHandle::render`] returns the same
//! text (the seed's `get_metrics`). [`build_recorder`] gives a recorder that
//! is not global, for tests: record under `metrics::with_local_recorder`.
//!
//! # Logging
//!
//! [`LogConfig::from_env`] reads `LOG_FORMAT` (`json`, the default, or
//! `pretty`) and `LOG_LEVEL` (`EnvFilter` directives, default `info`); bad
//! values are typed errors, never a silent fallback. [`init_logging`]
//! installs the subscriber; [`build_dispatch`] builds one over any
//! `MakeWriter` without installing it. JSON lines carry `timestamp`,
//! `level`, `target`, `message`, every event field at the top level, and
//! span fields under `span`/`spans`. [`get_logger`] (the seed's name) returns
//! a span that tags events with their `component`.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//! use blyan_ops::{BlockStatus, Direction, build_recorder, metrics_collector};
//!
//! let (recorder, handle) = build_recorder()?;
//! metrics::with_local_recorder(&recorder, || {
//!     metrics_collector::describe_all();
//!     metrics_collector::update_chain_height(42);
//!     metrics_collector::set_peers(Direction::Outbound, 8);
//!     metrics_collector::record_block(BlockStatus::Imported, Duration::from_millis(3));
//! });
//! let text = handle.render();
//! assert!(text.contains("blyan_chain_height 42"));
//! assert!(text.contains("blyan_p2p_peers{direction=\"outbound\"} 8"));
//! assert!(text.contains("blyan_blocks_total{status=\"imported\"} 1"));
//! # Ok::<(), blyan_ops::OpsError>(())
//! ```

pub mod catalog;
mod error;
mod exporter;
mod labels;
mod logging;
pub mod metrics_collector;

pub use catalog::{ALL_METRICS, MetricDef, MetricKind, MetricUnit, metric_def};
pub use error::OpsError;
pub use exporter::{MetricsHandle, build_recorder, install_prometheus};
pub use labels::{
    BlockStatus, Direction, LabelSpec, MessageStatus, MessageType, PenaltyReason, RejectionReason,
};
pub use logging::{
    DEFAULT_LOG_LEVEL, LOG_FORMAT_ENV, LOG_LEVEL_ENV, LogConfig, LogFormat, build_dispatch,
    get_logger, init_logging,
};
pub use metrics_exporter_prometheus::PrometheusRecorder;
