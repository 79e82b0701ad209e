//! Errors of configuration and of the ban file.

use std::path::PathBuf;

/// A configuration value that cannot work.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A rate quota with a zero amount, burst or period, or a period below 1 ns per unit.
    #[error("rate quota `{name}` needs a non-zero amount, burst and period")]
    InvalidQuota {
        /// The setting's name.
        name: &'static str,
    },
    /// A message kind that costs nothing would never be limited.
    #[error("message kind `{kind}` must cost at least 1")]
    ZeroCost {
        /// The kind's label.
        kind: &'static str,
    },
    /// A limit or capacity that must be at least 1.
    #[error("`{name}` must be at least 1")]
    Zero {
        /// The setting's name.
        name: &'static str,
    },
    /// Score thresholds out of order: `min <= ban < disconnect < 0 < max` is required.
    #[error("score thresholds must satisfy min <= ban < disconnect < 0 < max")]
    ScoreThresholds,
    /// A duration that must be non-zero.
    #[error("duration `{name}` must be non-zero")]
    ZeroDuration {
        /// The setting's name.
        name: &'static str,
    },
}

/// Reading or writing the ban file failed.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// The file could not be read, written, synced or renamed.
    #[error("ban file {path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// What the OS said.
        source: std::io::Error,
    },
    /// The file is larger than any ban list this node would write.
    #[error("ban file {path} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The file involved.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The file is not a ban list: truncated, edited by hand, or another file.
    #[error("ban file {path} is damaged: {source}")]
    Corrupt {
        /// The file involved.
        path: PathBuf,
        /// Where decoding failed.
        source: serde_json::Error,
    },
    /// The file names an entry that does not parse (peer id or IP).
    #[error("ban file {path} has an invalid entry: {detail}")]
    InvalidEntry {
        /// The file involved.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The file was written by a newer (or unknown) format version.
    #[error("ban file {path} has format version {found}, this node reads version {expected}")]
    UnsupportedVersion {
        /// The file involved.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this code reads.
        expected: u32,
    },
}
