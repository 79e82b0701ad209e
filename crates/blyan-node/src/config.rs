//! The node configuration: one [`NodeConfig`] with a section per component, every key with
//! a documented default (`config/node.yaml` lists them all).
//!
//! Loading ([`NodeConfig::load`]) and the sources a value can come from live in
//! `config_source.rs`; this file holds the types, their defaults and the checks that span
//! several keys.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use blyan_consensus::{ConsensusParams, MempoolConfig};
use blyan_crypto::{KeyStoreParams, PeerId};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What a node does in the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Role {
    /// Validates and stores every block, serves the API; produces nothing.
    Full,
    /// Follows headers only. Needs the network (it comes with `blyan-p2p`).
    Light,
    /// A full node that also produces blocks in the slots of its key. The default: with no
    /// configuration the node runs a single-validator dev chain.
    #[default]
    Validator,
}

impl Role {
    /// The name used in configuration and in the API: `FULL`, `LIGHT`, `VALIDATOR`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Full => "FULL",
            Self::Light => "LIGHT",
            Self::Validator => "VALIDATOR",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of `FULL`, `LIGHT`, `VALIDATOR`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}: expected FULL, LIGHT or VALIDATOR")]
pub struct UnknownRole(String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Case-insensitive, so `BLYAN_NODE__ROLE=validator` works too.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_uppercase().as_str() {
            "FULL" => Ok(Self::Full),
            "LIGHT" => Ok(Self::Light),
            "VALIDATOR" => Ok(Self::Validator),
            _ => Err(UnknownRole(s.chars().take(32).collect())),
        }
    }
}

impl Serialize for Role {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Role {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// The whole node configuration. Every field has a default, so an empty file (or none) is
/// a valid configuration: the zero-setup dev node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// Role and name.
    pub node: NodeSection,
    /// Peer-to-peer listener and limits.
    pub network: NetworkConfig,
    /// Peers to contact first.
    pub bootstrap: BootstrapConfig,
    /// The node key file and its passphrase.
    pub security: SecurityConfig,
    /// The Prometheus exporter.
    pub metrics: MetricsConfig,
    /// The HTTP API.
    pub api: ApiConfig,
    /// Where the database, the key and the dev genesis live.
    pub storage: StorageConfig,
    /// The chain: a genesis file, or the parameters of the dev chain.
    pub consensus: ConsensusConfig,
    /// Mempool limits.
    pub mempool: MempoolSection,
    /// Log format and filter.
    pub logging: LoggingConfig,
}

/// `node:` role and name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct NodeSection {
    /// `FULL`, `LIGHT` or `VALIDATOR` (default).
    pub role: Role,
    /// A name for logs and the API (environment `NODE_ID`); defaults to the peer id.
    pub name: Option<String>,
}

/// `network:` the peer-to-peer listener and its limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NetworkConfig {
    /// QUIC listen address. Default `0.0.0.0:30333`.
    pub listen_addr: SocketAddr,
    /// Most connected peers. Default 50.
    pub max_peers: usize,
    /// Most peers from one IP address. Default 4.
    pub max_peers_per_ip: usize,
    /// Timeout of one request to a peer, in milliseconds. Default 10 000.
    pub request_timeout_ms: u64,
    /// The address other nodes reach us at, put in our DHT record. Default none: the
    /// listen address, or `127.0.0.1:<port>` when it is unspecified (`0.0.0.0`), which
    /// only nodes on this host can use: set it on a public node.
    pub advertise_addr: Option<SocketAddr>,
    /// Most peers from one IPv4 /24 or IPv6 /48. Default 8.
    pub max_peers_per_subnet: usize,
    /// Outbound peers to keep (chosen by us, from the bootstrap list and the DHT).
    /// Default 8.
    pub target_outbound: usize,
}

impl Default for NetworkConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([0, 0, 0, 0], 30333)),
            max_peers: 50,
            max_peers_per_ip: 4,
            request_timeout_ms: 10_000,
            advertise_addr: None,
            max_peers_per_subnet: 8,
            target_outbound: 8,
        }
    }
}

/// `bootstrap:` peers contacted at start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct BootstrapConfig {
    /// Entries `<peer id hex>@<host>:<port>`. Default none.
    pub nodes: Vec<String>,
}

/// One parsed `bootstrap.nodes` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootstrapNode {
    /// The peer the connection must authenticate as.
    pub peer_id: PeerId,
    /// Host name or IP address.
    pub host: String,
    /// UDP port.
    pub port: u16,
}

impl FromStr for BootstrapNode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (peer, addr) = s
            .split_once('@')
            .ok_or("expected <peer id>@<host>:<port>")?;
        let peer_id = peer
            .parse()
            .map_err(|e| format!("bad peer id {peer:?}: {e}"))?;
        let (host, port) = addr.rsplit_once(':').ok_or("missing :<port>")?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err("empty host".to_owned());
        }
        let port = port
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| format!("bad port {port:?}"))?;
        Ok(Self {
            peer_id,
            host: host.to_owned(),
            port,
        })
    }
}

/// Where the node key passphrase comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    /// The encrypted node key file. Default `<storage.path>/node.key`.
    pub key_file: Option<PathBuf>,
    /// Environment variable holding the passphrase. Default `BLYAN_KEY_PASSPHRASE`.
    pub passphrase_env: String,
    /// A file holding the passphrase (first line), used when the variable is unset.
    pub passphrase_file: Option<PathBuf>,
    /// Argon2id memory cost for new key files, KiB. Default 65 536 (64 MiB).
    pub kdf_memory_kib: u32,
    /// Argon2id passes for new key files. Default 3.
    pub kdf_passes: u32,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        let kdf = KeyStoreParams::default();
        Self {
            key_file: None,
            passphrase_env: "BLYAN_KEY_PASSPHRASE".to_owned(),
            passphrase_file: None,
            kdf_memory_kib: kdf.m_cost_kib,
            kdf_passes: kdf.t_cost,
        }
    }
}

impl SecurityConfig {
    /// The Argon2id parameters for key files this node writes.
    pub fn kdf_params(&self) -> KeyStoreParams {
        KeyStoreParams {
            m_cost_kib: self.kdf_memory_kib,
            t_cost: self.kdf_passes,
            p_cost: 1,
        }
    }
}

/// `metrics:` the Prometheus exporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// Serve `/metrics`. Default true.
    pub enabled: bool,
    /// Exporter address. Default `127.0.0.1:9090`.
    pub listen_addr: SocketAddr,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 9090)),
        }
    }
}

/// `api:` the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    /// Listen address (port 0 picks a free port). Default `127.0.0.1:8080`.
    pub listen_addr: SocketAddr,
    /// Largest request body, bytes. Default 65 536: a transaction with the largest payload
    /// is about 3 KiB of JSON.
    pub max_body_bytes: usize,
    /// Longest time to answer one request, milliseconds. Default 10 000.
    pub request_timeout_ms: u64,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 64 * 1024,
            request_timeout_ms: 10_000,
        }
    }
}

/// `storage:` the data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Data directory: database `chain.redb`, `node.key`, the dev `genesis.json`.
    /// Default `./data`.
    pub path: PathBuf,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("data"),
        }
    }
}

/// `consensus:` which chain to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsensusConfig {
    /// A genesis file (from `blyan-node init`). Unset: the dev chain, whose genesis is
    /// created on first start in `<storage.path>/genesis.json` with this node as the only
    /// validator and the parameters below.
    pub genesis_file: Option<PathBuf>,
    /// Dev chain id. Default 1337.
    pub chain_id: u32,
    /// Dev slot length, milliseconds. Default 2 000.
    pub slot_duration_ms: u64,
    /// Dev finality depth, blocks. Default 10.
    pub finality_depth: u64,
    /// Dev deepest accepted reorg, blocks. Default 100.
    pub max_reorg_depth: u64,
}

impl Default for ConsensusConfig {
    fn default() -> Self {
        let params = ConsensusParams::default();
        Self {
            genesis_file: None,
            chain_id: 1337,
            slot_duration_ms: 2_000,
            finality_depth: params.finality_depth,
            max_reorg_depth: params.max_reorg_depth,
        }
    }
}

impl ConsensusConfig {
    /// The consensus parameters of a chain created from this section.
    pub fn params(&self) -> ConsensusParams {
        ConsensusParams {
            finality_depth: self.finality_depth,
            max_reorg_depth: self.max_reorg_depth,
            ..ConsensusParams::default()
        }
    }
}

/// `mempool:` limits of the transaction pool.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MempoolSection {
    /// Most pooled transactions. Default 10 000.
    pub max_txs: usize,
    /// Most pooled bytes. Default 8 MiB.
    pub max_bytes: usize,
    /// Most transactions per sender. Default 64.
    pub max_per_sender: usize,
}

impl Default for MempoolSection {
    fn default() -> Self {
        let pool = MempoolConfig::default();
        Self {
            max_txs: pool.max_txs,
            max_bytes: pool.max_bytes,
            max_per_sender: pool.max_per_sender,
        }
    }
}

impl MempoolSection {
    /// The mempool configuration.
    pub fn to_mempool_config(&self) -> MempoolConfig {
        MempoolConfig {
            max_txs: self.max_txs,
            max_bytes: self.max_bytes,
            max_per_sender: self.max_per_sender,
            ..MempoolConfig::default()
        }
    }
}

/// `logging:` format and filter (environment `LOG_FORMAT`, `LOG_LEVEL`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoggingConfig {
    /// `json` (default) or `pretty`.
    pub format: String,
    /// `EnvFilter` directives. Default `info`.
    pub level: String,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            format: "json".to_owned(),
            level: blyan_ops::DEFAULT_LOG_LEVEL.to_owned(),
        }
    }
}

impl LoggingConfig {
    /// The checked logging configuration.
    pub fn to_log_config(&self) -> Result<blyan_ops::LogConfig, blyan_ops::OpsError> {
        blyan_ops::LogConfig::from_values(Some(&self.format), Some(&self.level))
    }
}

/// Largest accepted `api.max_body_bytes`: the wire frame limit.
pub const MAX_API_BODY_BYTES: usize = 16 * 1024 * 1024;

/// A value that is well-typed but not acceptable (checked after all sources merged).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ValueProblem {
    pub(crate) key: &'static str,
    pub(crate) reason: String,
}

fn problem(key: &'static str, reason: impl Into<String>) -> ValueProblem {
    ValueProblem {
        key,
        reason: reason.into(),
    }
}

impl NodeConfig {
    /// The key file path: `security.key_file`, or `<storage.path>/node.key`.
    pub fn key_file(&self) -> PathBuf {
        self.security
            .key_file
            .clone()
            .unwrap_or_else(|| self.storage.path.join("node.key"))
    }

    /// The parsed `bootstrap.nodes`.
    pub fn bootstrap_nodes(&self) -> Result<Vec<BootstrapNode>, String> {
        self.bootstrap
            .nodes
            .iter()
            .map(|entry| {
                entry
                    .parse()
                    .map_err(|e| format!("{:?}: {e}", entry.chars().take(120).collect::<String>()))
            })
            .collect()
    }

    /// Checks what one key's type cannot express; the first problem found.
    pub(crate) fn check(&self) -> Result<(), ValueProblem> {
        let net = &self.network;
        if net.max_peers == 0 {
            return Err(problem("network.max_peers", "must be at least 1"));
        }
        if net.max_peers_per_ip == 0 || net.max_peers_per_ip > net.max_peers {
            return Err(problem(
                "network.max_peers_per_ip",
                "must be between 1 and network.max_peers",
            ));
        }
        if net.request_timeout_ms == 0 {
            return Err(problem("network.request_timeout_ms", "must be positive"));
        }
        if net.max_peers_per_subnet < net.max_peers_per_ip {
            return Err(problem(
                "network.max_peers_per_subnet",
                "must be at least network.max_peers_per_ip",
            ));
        }
        if net.target_outbound == 0 || net.target_outbound >= net.max_peers {
            return Err(problem(
                "network.target_outbound",
                "must be between 1 and network.max_peers - 1",
            ));
        }
        if net
            .advertise_addr
            .is_some_and(|a| a.ip().is_unspecified() || a.port() == 0)
        {
            return Err(problem(
                "network.advertise_addr",
                "must be a reachable address with a port",
            ));
        }
        if let Err(reason) = self.bootstrap_nodes() {
            return Err(problem("bootstrap.nodes", reason));
        }
        if self.security.passphrase_env.trim().is_empty() {
            return Err(problem("security.passphrase_env", "must name a variable"));
        }
        if self.security.kdf_memory_kib < 8 || self.security.kdf_memory_kib > 1 << 20 {
            return Err(problem(
                "security.kdf_memory_kib",
                "must be between 8 and 1048576",
            ));
        }
        if !(1..=64).contains(&self.security.kdf_passes) {
            return Err(problem("security.kdf_passes", "must be between 1 and 64"));
        }
        if self.metrics.enabled && self.metrics.listen_addr.port() == 0 {
            return Err(problem(
                "metrics.listen_addr",
                "needs a fixed port (scrapers must know it)",
            ));
        }
        if self.metrics.enabled && self.metrics.listen_addr == self.api.listen_addr {
            return Err(problem(
                "api.listen_addr",
                "is the same address as metrics.listen_addr",
            ));
        }
        if self.api.max_body_bytes == 0 || self.api.max_body_bytes > MAX_API_BODY_BYTES {
            return Err(problem(
                "api.max_body_bytes",
                format!("must be between 1 and {MAX_API_BODY_BYTES}"),
            ));
        }
        if self.api.request_timeout_ms == 0 {
            return Err(problem("api.request_timeout_ms", "must be positive"));
        }
        if self.storage.path.as_os_str().is_empty() {
            return Err(problem("storage.path", "must not be empty"));
        }
        let consensus = &self.consensus;
        if consensus.slot_duration_ms == 0 {
            return Err(problem("consensus.slot_duration_ms", "must be positive"));
        }
        if consensus.max_reorg_depth == 0 {
            return Err(problem("consensus.max_reorg_depth", "must be at least 1"));
        }
        if consensus.finality_depth > consensus.max_reorg_depth {
            return Err(problem(
                "consensus.finality_depth",
                "must not exceed consensus.max_reorg_depth",
            ));
        }
        let pool = &self.mempool;
        for (key, value) in [
            ("mempool.max_txs", pool.max_txs),
            ("mempool.max_bytes", pool.max_bytes),
            ("mempool.max_per_sender", pool.max_per_sender),
        ] {
            if value == 0 {
                return Err(problem(key, "must be at least 1"));
            }
        }
        if let Err(e) = blyan_ops::LogFormat::from_str(&self.logging.format) {
            return Err(problem("logging.format", e.to_string()));
        }
        if let Err(e) = self.logging.to_log_config() {
            return Err(problem("logging.level", e.to_string()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_parse_case_insensitively_and_print_uppercase() {
        assert_eq!("validator".parse::<Role>(), Ok(Role::Validator));
        assert_eq!(" FULL ".parse::<Role>(), Ok(Role::Full));
        assert_eq!(Role::Light.to_string(), "LIGHT");
        assert!("miner".parse::<Role>().is_err());
    }

    #[test]
    fn bootstrap_entries_parse_or_say_why_not() {
        let peer = PeerId::from_bytes([7; 32]);
        let node: BootstrapNode = format!("{peer}@seed.example.org:30333").parse().unwrap();
        assert_eq!(node.peer_id, peer);
        assert_eq!(node.host, "seed.example.org");
        assert_eq!(node.port, 30333);
        let v6: BootstrapNode = format!("{peer}@[::1]:7").parse().unwrap();
        assert_eq!(v6.host, "::1");
        assert!("nope".parse::<BootstrapNode>().is_err());
        assert!(format!("{peer}@host").parse::<BootstrapNode>().is_err());
        assert!(format!("{peer}@host:0").parse::<BootstrapNode>().is_err());
        assert!("abcd@host:1".parse::<BootstrapNode>().is_err());
    }

    #[test]
    fn defaults_pass_the_checks() {
        assert_eq!(NodeConfig::default().check(), Ok(()));
    }

    #[test]
    fn cross_key_problems_name_the_key() {
        let mut config = NodeConfig::default();
        config.consensus.finality_depth = 200;
        assert_eq!(config.check().unwrap_err().key, "consensus.finality_depth");
        let mut config = NodeConfig::default();
        config.api.listen_addr = config.metrics.listen_addr;
        assert_eq!(config.check().unwrap_err().key, "api.listen_addr");
        let mut config = NodeConfig::default();
        config.logging.format = "xml".to_owned();
        assert_eq!(config.check().unwrap_err().key, "logging.format");
    }
}
