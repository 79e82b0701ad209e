//! The errors of installing metrics and logging.

use std::net::SocketAddr;

use metrics_exporter_prometheus::BuildError;
use tracing_subscriber::filter::ParseError;

/// Why metrics or logging could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpsError {
    /// `LOG_FORMAT` (or the format given) is neither `json` nor `pretty`.
    #[error("invalid log format {value:?}: expected \"json\" or \"pretty\"")]
    InvalidLogFormat {
        /// The rejected value (at most 64 characters of it).
        value: String,
    },

    /// `LOG_LEVEL` (or the level given) is not valid `EnvFilter` syntax.
    #[error("invalid log level {directives:?}: {source}")]
    InvalidLogLevel {
        /// The rejected directives (at most 256 characters of them).
        directives: String,
        /// What the parser found wrong.
        #[source]
        source: ParseError,
    },

    /// An environment variable holds bytes that are not UTF-8.
    #[error("environment variable {var} is not valid UTF-8")]
    EnvNotUnicode {
        /// The variable's name.
        var: &'static str,
    },

    /// A global `tracing` subscriber was already installed in this process.
    #[error("a global tracing subscriber is already installed")]
    LoggerAlreadyInstalled,

    /// A global `metrics` recorder was already installed in this process.
    #[error("a global metrics recorder is already installed")]
    RecorderAlreadyInstalled,

    /// The metrics address has port 0, which would serve on a port nobody knows.
    #[error("metrics listen address {addr} has port 0: give the port Prometheus scrapes")]
    EphemeralMetricsPort {
        /// The rejected address.
        addr: SocketAddr,
    },

    /// The metrics HTTP listener could not bind its address.
    #[error("cannot serve metrics on {addr}: {reason}")]
    MetricsListener {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The operating system's reason (for example "Address already in use").
        reason: String,
    },

    /// The Prometheus exporter refused its configuration.
    #[error("Prometheus exporter: {source}")]
    Exporter {
        /// The exporter's error.
        #[source]
        source: BuildError,
    },

    /// The exporter's runtime or thread could not be created.
    #[error("cannot start the metrics exporter thread: {source}")]
    Runtime {
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

/// At most `max` characters of `value`, so an error never carries an
/// unbounded copy of its input.
pub(crate) fn truncated(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}
