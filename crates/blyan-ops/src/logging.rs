//! Structured logging: `LOG_FORMAT` / `LOG_LEVEL`, JSON lines or
//! human-readable text, and the seed's `get_logger`.

use std::fmt;
use std::io::IsTerminal;
use std::str::FromStr;

use tracing::{Dispatch, Span};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;

use crate::error::{OpsError, truncated};

/// The environment variable that selects the log format.
pub const LOG_FORMAT_ENV: &str = "LOG_FORMAT";

/// The environment variable that holds the `EnvFilter` directives.
pub const LOG_LEVEL_ENV: &str = "LOG_LEVEL";

/// The directives used when `LOG_LEVEL` is unset or empty.
pub const DEFAULT_LOG_LEVEL: &str = "info";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LogFormat {
    /// One JSON object per line: `timestamp`, `level`, `target`, `message`,
    /// every event field at the top level, and the enclosing spans' fields
    /// under `span` (innermost) and `spans` (root first). The default: a node
    /// runs under a log collector far more often than in a terminal.
    #[default]
    Json,
    /// One human-readable line per event, coloured when writing to a
    /// terminal (and `NO_COLOR` is unset).
    Pretty,
}

impl LogFormat {
    /// The name accepted by `LOG_FORMAT`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Pretty => "pretty",
        }
    }
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogFormat {
    type Err = OpsError;

    /// `json` or `pretty`, ignoring ASCII case and surrounding whitespace.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let trimmed = value.trim();
        if trimmed.eq_ignore_ascii_case("json") {
            Ok(Self::Json)
        } else if trimmed.eq_ignore_ascii_case("pretty") {
            Ok(Self::Pretty)
        } else {
            Err(OpsError::InvalidLogFormat {
                value: truncated(value, 64),
            })
        }
    }
}

/// A validated logging configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// JSON lines or human-readable text.
    pub format: LogFormat,
    /// `EnvFilter` directives, already checked to parse.
    pub level: String,
}

impl Default for LogConfig {
    /// JSON at `info`.
    fn default() -> Self {
        Self {
            format: LogFormat::Json,
            level: DEFAULT_LOG_LEVEL.to_owned(),
        }
    }
}

impl LogConfig {
    /// Reads `LOG_FORMAT` (default `json`) and `LOG_LEVEL` (default `info`);
    /// an empty variable counts as unset.
    ///
    /// # Errors
    ///
    /// A typed error for a format other than `json`/`pretty`, directives that
    /// do not parse, or a variable that is not UTF-8.
    pub fn from_env() -> Result<Self, OpsError> {
        let read = |var: &'static str| match std::env::var(var) {
            Ok(value) => Ok(Some(value)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(OpsError::EnvNotUnicode { var }),
        };
        let format = read(LOG_FORMAT_ENV)?;
        let level = read(LOG_LEVEL_ENV)?;
        Self::from_values(format.as_deref(), level.as_deref())
    }

    /// Builds a configuration from the two variables' values, with the
    /// defaults of [`LogConfig::from_env`] for `None` or empty values.
    ///
    /// # Errors
    ///
    /// As [`LogConfig::from_env`].
    pub fn from_values(format: Option<&str>, level: Option<&str>) -> Result<Self, OpsError> {
        fn non_empty(value: Option<&str>) -> Option<&str> {
            value.filter(|v| !v.trim().is_empty())
        }
        let format = match non_empty(format) {
            Some(value) => value.parse()?,
            None => LogFormat::default(),
        };
        let level = non_empty(level).unwrap_or(DEFAULT_LOG_LEVEL);
        parse_filter(level)?;
        Ok(Self {
            format,
            level: level.trim().to_owned(),
        })
    }
}

fn parse_filter(directives: &str) -> Result<EnvFilter, OpsError> {
    EnvFilter::builder()
        .parse(directives.trim())
        .map_err(|source| OpsError::InvalidLogLevel {
            directives: truncated(directives, 256),
            source,
        })
}

/// Builds a subscriber writing to `writer`, without installing it.
///
/// Use it with `tracing::dispatcher::with_default` to capture logs in a
/// test, or `tracing::dispatcher::set_global_default` to log to a file.
/// Never coloured: colour codes belong on terminals only.
///
/// # Errors
///
/// [`OpsError::InvalidLogLevel`] when `level` is not valid `EnvFilter` syntax.
pub fn build_dispatch<W>(format: LogFormat, level: &str, writer: W) -> Result<Dispatch, OpsError>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    dispatch_with(format, level, writer, false)
}

fn dispatch_with<W>(
    format: LogFormat,
    level: &str,
    writer: W,
    ansi: bool,
) -> Result<Dispatch, OpsError>
where
    W: for<'writer> MakeWriter<'writer> + Send + Sync + 'static,
{
    let filter = parse_filter(level)?;
    let registry = tracing_subscriber::registry().with(filter);
    let dispatch = match format {
        LogFormat::Json => Dispatch::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_target(true)
                    .with_writer(writer),
            ),
        ),
        LogFormat::Pretty => Dispatch::new(
            registry.with(
                tracing_subscriber::fmt::layer()
                    .with_target(true)
                    .with_ansi(ansi)
                    .with_writer(writer),
            ),
        ),
    };
    Ok(dispatch)
}

/// Installs the process-wide subscriber: `format` lines on standard output,
/// filtered by `level` (`EnvFilter` syntax, e.g. `info,blyan_p2p=debug`).
/// Pair with [`LogConfig::from_env`] to honour `LOG_FORMAT` and `LOG_LEVEL`.
///
/// # Errors
///
/// [`OpsError::InvalidLogLevel`] for bad directives,
/// [`OpsError::LoggerAlreadyInstalled`] when a global subscriber exists.
pub fn init_logging(format: LogFormat, level: &str) -> Result<(), OpsError> {
    let ansi = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let dispatch = dispatch_with(format, level, std::io::stdout, ansi)?;
    tracing::dispatcher::set_global_default(dispatch).map_err(|_| OpsError::LoggerAlreadyInstalled)
}

/// The seed's `get_logger(component)`: a span that tags every event logged
/// inside it with `component`.
///
/// Enter it for the lifetime of a component's work
/// (`let _log = get_logger("chain").entered();`, or `.instrument(..)` on a
/// future); JSON lines then carry `"span":{"component":"chain",..}`.
///
/// The span is created at `ERROR` level on purpose: a span is filtered like
/// an event, and an `INFO` span would vanish (taking its `component` field
/// with it) under `LOG_LEVEL=warn`. At `ERROR` it is enabled whenever any
/// event of its target can be.
pub fn get_logger(component: &str) -> Span {
    tracing::error_span!(target: "blyan", "blyan", component = component)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_format_string_parses_or_is_a_bounded_error(value in any::<String>()) {
            match value.parse::<LogFormat>() {
                Ok(format) => prop_assert!(value.trim().eq_ignore_ascii_case(format.as_str())),
                Err(OpsError::InvalidLogFormat { value: kept }) => {
                    prop_assert!(kept.chars().count() <= 64);
                    prop_assert!(value.starts_with(&kept));
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }

        #[test]
        fn any_level_string_parses_or_is_a_bounded_error(level in ".{0,400}") {
            match LogConfig::from_values(None, Some(&level)) {
                Ok(config) => prop_assert!(parse_filter(&config.level).is_ok()),
                Err(OpsError::InvalidLogLevel { directives, .. }) => {
                    prop_assert!(directives.chars().count() <= 256);
                }
                Err(other) => prop_assert!(false, "unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn format_names_round_trip() {
        for format in [LogFormat::Json, LogFormat::Pretty] {
            assert_eq!(format.to_string().parse::<LogFormat>().ok(), Some(format));
        }
    }
}
