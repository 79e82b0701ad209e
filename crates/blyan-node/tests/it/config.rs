//! Configuration: the example file, file + environment merging, and errors that name the
//! key and its source.

use std::path::{Path, PathBuf};

use blyan_node::{ConfigError, NodeConfig, Role};

fn example_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/node.yaml")
}

fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
    vars.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("node.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn invalid(error: ConfigError) -> (String, String, String) {
    match error {
        ConfigError::Invalid {
            key,
            source_name,
            reason,
        } => (key, source_name, reason),
        other => panic!("expected an invalid key, got {other:?}"),
    }
}

#[test]
fn the_example_file_lists_exactly_the_defaults() {
    let loaded = NodeConfig::load(Some(&example_path()), []).unwrap();
    assert_eq!(loaded, NodeConfig::default());
}

#[test]
fn the_example_file_names_every_key() {
    // Every key of the defaults appears in the example, so operators see them all.
    let text = std::fs::read_to_string(example_path()).unwrap();
    let defaults = serde_json::to_value(NodeConfig::default()).unwrap();
    let sections = defaults.as_object().unwrap();
    for (section, keys) in sections {
        assert!(
            text.contains(&format!("\n{section}:\n")),
            "section {section}"
        );
        for key in keys.as_object().unwrap().keys() {
            assert!(text.contains(&format!("  {key}:")), "key {section}.{key}");
        }
    }
}

#[test]
fn no_file_and_no_environment_is_the_dev_default() {
    let config = NodeConfig::load(None, env(&[("HOME", "/root")])).unwrap();
    assert_eq!(config, NodeConfig::default());
    assert_eq!(config.node.role, Role::Validator);
    assert_eq!(config.api.listen_addr.to_string(), "127.0.0.1:8080");
    assert_eq!(config.metrics.listen_addr.to_string(), "127.0.0.1:9090");
    assert_eq!(config.key_file(), Path::new("data/node.key"));
}

#[test]
fn environment_overrides_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "network:\n  max_peers: 10\n  max_peers_per_ip: 2\napi:\n  listen_addr: 0.0.0.0:9000\nnode:\n  role: FULL\n",
    );
    let config = NodeConfig::load(
        Some(&file),
        env(&[
            ("BLYAN_NETWORK__MAX_PEERS", "20"),
            ("NODE_ID", "alice"),
            ("LOG_LEVEL", "debug,blyan_node=trace"),
            ("LOG_FORMAT", "pretty"),
            ("BLYAN_NODE__ROLE", "validator"),
            (
                "BLYAN_BOOTSTRAP__NODES",
                &format!("[{}@seed:1]", "ab".repeat(32)),
            ),
            // Not configuration keys: ignored.
            ("BLYAN_KEY_PASSPHRASE", "secret"),
            ("BLYAN_STORAGE__PATH", ""),
        ]),
    )
    .unwrap();
    assert_eq!(config.network.max_peers, 20);
    assert_eq!(config.network.max_peers_per_ip, 2);
    assert_eq!(config.api.listen_addr.to_string(), "0.0.0.0:9000");
    assert_eq!(config.node.name.as_deref(), Some("alice"));
    assert_eq!(config.node.role, Role::Validator);
    assert_eq!(config.logging.level, "debug,blyan_node=trace");
    assert_eq!(config.logging.format, "pretty");
    assert_eq!(config.bootstrap_nodes().unwrap()[0].host, "seed");
    assert_eq!(config.storage.path, Path::new("data"));
}

#[test]
fn unknown_key_in_the_file_names_key_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "network:\n  max_peers: 10\n  bogus: 1\n");
    let (key, source, reason) = invalid(NodeConfig::load(Some(&file), []).unwrap_err());
    assert_eq!(key, "network.bogus");
    assert_eq!(source, file.display().to_string());
    assert!(reason.contains("unknown key"), "{reason}");

    let file = write(dir.path(), "networks:\n  max_peers: 10\n");
    let (key, source, _) = invalid(NodeConfig::load(Some(&file), []).unwrap_err());
    assert_eq!(key, "networks");
    assert_eq!(source, file.display().to_string());
}

#[test]
fn unknown_key_in_the_environment_names_the_variable() {
    let dir = tempfile::tempdir().unwrap();
    // The section exists in the file; the unknown key still belongs to the variable.
    let file = write(dir.path(), "api:\n  max_body_bytes: 100\n");
    let error = NodeConfig::load(Some(&file), env(&[("BLYAN_API__BOGUS", "1")])).unwrap_err();
    let (key, source, _) = invalid(error.clone());
    assert_eq!(key, "api.bogus");
    assert_eq!(source, "environment variable BLYAN_API__BOGUS");
    let text = error.to_string();
    assert!(
        text.contains("api.bogus") && text.contains("BLYAN_API__BOGUS"),
        "{text}"
    );
}

#[test]
fn bad_values_name_key_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let error = NodeConfig::load(None, env(&[("BLYAN_NETWORK__MAX_PEERS", "lots")])).unwrap_err();
    let (key, source, _) = invalid(error);
    assert_eq!(key, "network.max_peers");
    assert_eq!(source, "environment variable BLYAN_NETWORK__MAX_PEERS");

    let file = write(dir.path(), "api:\n  listen_addr: not-an-address\n");
    let (key, source, _) = invalid(NodeConfig::load(Some(&file), []).unwrap_err());
    assert_eq!(key, "api.listen_addr");
    assert_eq!(source, file.display().to_string());

    let file = write(dir.path(), "node:\n  role: MINER\n");
    let (key, _, reason) = invalid(NodeConfig::load(Some(&file), []).unwrap_err());
    assert_eq!(key, "node.role");
    assert!(reason.contains("MINER"), "{reason}");

    let (key, _, _) = invalid(NodeConfig::load(None, env(&[("LOG_FORMAT", "xml")])).unwrap_err());
    assert_eq!(key, "logging.format");
}

#[test]
fn problems_across_keys_name_the_source_of_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "consensus:\n  max_reorg_depth: 5\n");
    let error = NodeConfig::load(
        Some(&file),
        env(&[("BLYAN_CONSENSUS__FINALITY_DEPTH", "6")]),
    )
    .unwrap_err();
    let (key, source, reason) = invalid(error);
    assert_eq!(key, "consensus.finality_depth");
    assert_eq!(
        source,
        "environment variable BLYAN_CONSENSUS__FINALITY_DEPTH"
    );
    assert!(reason.contains("max_reorg_depth"), "{reason}");

    let file = write(dir.path(), "bootstrap:\n  nodes: [\"nobody\"]\n");
    let (key, source, _) = invalid(NodeConfig::load(Some(&file), []).unwrap_err());
    assert_eq!(key, "bootstrap.nodes");
    assert_eq!(source, file.display().to_string());
}

#[test]
fn a_missing_file_is_a_read_error() {
    let error = NodeConfig::load(Some(Path::new("/nonexistent/node.yaml")), []).unwrap_err();
    assert!(matches!(error, ConfigError::Read { .. }), "{error:?}");
}
