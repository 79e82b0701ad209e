//! Where configuration values come from: the YAML file (parsed by `serde-saphyr` through
//! its figment provider) and the environment, merged by `figment` with the environment on
//! top.
//!
//! Every source is first extracted on its own (all keys have defaults, so one source is a
//! whole configuration): an unknown key or a value of the wrong type is then reported with
//! the exact source that holds it, a file path or one environment variable. The merged
//! configuration is checked once more for problems spanning keys, and a problem names the
//! source of the offending key's value.

use std::path::{Path, PathBuf};

use figment::providers::Format as _;
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider, Source};
use serde_saphyr::figment::Yaml;

use crate::config::NodeConfig;

/// Prefix of the `BLYAN_<SECTION>__<KEY>` variables.
pub const ENV_PREFIX: &str = "BLYAN_";

/// Why the configuration could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file given could not be read.
    #[error("cannot read configuration file {path}: {reason}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// A key is unknown, or its value has the wrong type or is not acceptable.
    #[error("configuration key `{key}` from {source_name}: {reason}")]
    Invalid {
        /// The dotted key, e.g. `network.max_peers`.
        key: String,
        /// Where its value came from: a file path, `environment variable NAME`, or
        /// `default`.
        source_name: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// One environment variable as a figment provider, so errors can name the variable.
struct EnvVar {
    name: String,
    key: String,
    value: Value,
}

impl Provider for EnvVar {
    fn metadata(&self) -> Metadata {
        Metadata::named(format!("environment variable {}", self.name))
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let dict = figment::util::nest(&self.key, self.value.clone())
            .into_dict()
            .ok_or_else(|| figment::Error::from(format!("{} names no key", self.name)))?;
        Ok(Profile::Default.collect(dict))
    }
}

/// The configuration key an environment variable sets, if any: `NODE_ID` → `node.name`,
/// `LOG_LEVEL` → `logging.level`, `LOG_FORMAT` → `logging.format`,
/// `BLYAN_<SECTION>__<KEY>` → `section.key`. Other `BLYAN_` variables without `__` (such as
/// `BLYAN_KEY_PASSPHRASE`) are not configuration keys.
pub fn env_key(name: &str) -> Option<String> {
    match name {
        "NODE_ID" => return Some("node.name".to_owned()),
        "LOG_LEVEL" => return Some("logging.level".to_owned()),
        "LOG_FORMAT" => return Some("logging.format".to_owned()),
        _ => {}
    }
    let rest = name.strip_prefix(ENV_PREFIX)?;
    if !rest.contains("__") || rest.split("__").any(str::is_empty) {
        return None;
    }
    Some(
        rest.split("__")
            .collect::<Vec<_>>()
            .join(".")
            .to_ascii_lowercase(),
    )
}

fn source_name(metadata: Option<&Metadata>) -> String {
    match metadata {
        Some(Metadata {
            source: Some(Source::File(path)),
            ..
        }) => path.display().to_string(),
        Some(metadata) => metadata.name.to_string(),
        None => "default".to_owned(),
    }
}

fn invalid(error: figment::Error) -> ConfigError {
    let mut key = error.path.clone();
    // figment usually puts the unknown field at the end of the path already.
    if let figment::error::Kind::UnknownField(field, _) = &error.kind
        && key.last() != Some(field)
    {
        key.push(field.clone());
    }
    let reason = match &error.kind {
        figment::error::Kind::UnknownField(field, _) => format!("unknown key `{field}`"),
        kind => kind.to_string(),
    };
    ConfigError::Invalid {
        key: key.join("."),
        source_name: source_name(error.metadata.as_ref()),
        reason,
    }
}

impl NodeConfig {
    /// Loads the configuration: defaults, then the YAML file at `file` (if given; it must
    /// exist), then the environment variables of `env` (see [`env_key`]). Empty variables
    /// count as unset.
    ///
    /// The process environment is passed in (`std::env::vars()`) rather than read here,
    /// so tests and embedders control it.
    pub fn load(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let mut sources: Vec<Figment> = Vec::new();
        if let Some(path) = file {
            std::fs::metadata(path).map_err(|e| ConfigError::Read {
                path: path.to_path_buf(),
                reason: e.to_string(),
            })?;
            sources.push(Figment::from(Yaml::file_exact(path)));
        }
        let mut env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(name, value)| !value.trim().is_empty() && env_key(name).is_some())
            .collect();
        // A stable order, so the same environment always reports the same first error.
        env.sort();
        for (name, value) in env {
            let Some(key) = env_key(&name) else { continue };
            let value = value.parse::<Value>().unwrap_or_else(|e| match e {});
            sources.push(Figment::from(EnvVar { name, key, value }));
        }

        // Each source alone: unknown keys and bad types, named with their source.
        for source in &sources {
            source.extract::<NodeConfig>().map_err(invalid)?;
        }
        let merged = sources
            .into_iter()
            .fold(Figment::new(), |all, source| all.merge(source));
        let config: NodeConfig = merged.extract().map_err(invalid)?;
        config.check().map_err(|problem| ConfigError::Invalid {
            key: problem.key.to_owned(),
            source_name: source_name(merged.find_metadata(problem.key)),
            reason: problem.reason,
        })?;
        Ok(config)
    }

    /// [`NodeConfig::load`] with the process environment.
    pub fn load_from_env(file: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load(file, std::env::vars())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_keys() {
        assert_eq!(
            env_key("BLYAN_NETWORK__MAX_PEERS").as_deref(),
            Some("network.max_peers")
        );
        assert_eq!(env_key("NODE_ID").as_deref(), Some("node.name"));
        assert_eq!(env_key("LOG_LEVEL").as_deref(), Some("logging.level"));
        assert_eq!(env_key("BLYAN_KEY_PASSPHRASE"), None);
        assert_eq!(env_key("BLYAN___X"), None);
        assert_eq!(env_key("HOME"), None);
    }
}
