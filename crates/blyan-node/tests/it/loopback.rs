//! A node configuration on loopback for tests and benchmarks, shared by the integration
//! tests and the network examples (`examples/common` includes this file with `#[path]`).

use std::path::Path;

use blyan_crypto::{KeyPair, KeyStore, KeyStoreParams};
use blyan_node::{NodeConfig, Role};

/// Node `name`'s configuration: its data directory `data` (created) with `key` imported
/// into `node.key` under `passphrase` (a cheap key derivation), the chain of
/// `genesis_file`, API and QUIC on ephemeral 127.0.0.1 ports, no metrics exporter, and
/// `bootstrap` entries.
pub(crate) fn loopback_config(
    data: &Path,
    genesis_file: &Path,
    name: &str,
    key: &KeyPair,
    role: Role,
    bootstrap: &[String],
    passphrase: &str,
) -> NodeConfig {
    std::fs::create_dir_all(data).unwrap();
    let key_file = data.join("node.key");
    if !key_file.exists() {
        KeyStore::new(KeyStoreParams::fast_insecure_for_tests())
            .import(&key_file, key, passphrase.as_bytes())
            .unwrap();
    }
    let mut config = NodeConfig::default();
    config.node.role = role;
    config.node.name = Some(name.to_owned());
    config.storage.path = data.to_owned();
    config.consensus.genesis_file = Some(genesis_file.to_owned());
    config.api.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.network.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.metrics.enabled = false;
    config.security.kdf_memory_kib = 64;
    config.security.kdf_passes = 1;
    config.bootstrap.nodes = bootstrap.to_vec();
    config
}
