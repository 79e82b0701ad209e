//! Shared fixtures: a chain with a known validator key and a funded user key, a node on a
//! temporary directory driven by a manual clock, and polling with deadlines.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blyan_consensus::{ConsensusParams, Genesis, ManualClock, SignedTransaction, Transaction};
use blyan_crypto::{KeyPair, KeyStore, KeyStoreParams};
use blyan_node::{Node, NodeConfig, NodeOptions, write_genesis};

/// Start of slot 0 on the manual clock.
pub(crate) const GENESIS_MS: u64 = 1_000_000;
/// Slot length of the test chain.
pub(crate) const SLOT_MS: u64 = 1_000;
/// Chain id of the test chain.
pub(crate) const CHAIN_ID: u32 = 77;
/// Initial balance of the user account.
pub(crate) const USER_BALANCE: u64 = 1_000_000;
/// The node key passphrase, from the injected environment.
pub(crate) const PASSPHRASE: &str = "test passphrase";

/// A chain on disk: a genesis file naming `validator`, funding `user`, and the validator's
/// key file, in `dir`.
pub(crate) struct TestChain {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) validator: KeyPair,
    pub(crate) user: KeyPair,
    pub(crate) genesis: Genesis,
}

impl TestChain {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let validator = KeyPair::from_seed(&[11; 32]);
        let user = KeyPair::from_seed(&[22; 32]);
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            genesis_time_ms: GENESIS_MS,
            slot_duration_ms: SLOT_MS,
            validators: vec![validator.public_key()],
            balances: BTreeMap::from([(user.address(), USER_BALANCE)]),
            params: ConsensusParams::default(),
        };
        write_genesis(&dir.path().join("genesis.json"), &genesis, false).unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        KeyStore::new(KeyStoreParams::fast_insecure_for_tests())
            .import(
                &dir.path().join("data/node.key"),
                &validator,
                PASSPHRASE.as_bytes(),
            )
            .unwrap();
        Self {
            dir,
            validator,
            user,
            genesis,
        }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A configuration for this chain: API on a free port, no metrics, cheap KDF.
    pub(crate) fn config(&self) -> NodeConfig {
        let mut config = NodeConfig::default();
        config.storage.path = self.path().join("data");
        config.consensus.genesis_file = Some(self.path().join("genesis.json"));
        config.api.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.network.listen_addr = "127.0.0.1:0".parse().unwrap();
        config.api.max_body_bytes = 4096;
        config.metrics.enabled = false;
        config.security.kdf_memory_kib = 64;
        config.security.kdf_passes = 1;
        config
    }

    /// Opens a node on a manual clock in slot 1, without the production loop.
    pub(crate) fn open(&self, clock: Arc<ManualClock>) -> Node {
        Node::open(self.config(), manual_options(clock)).unwrap()
    }

    /// A transfer from the user, signed.
    pub(crate) fn transfer(&self, nonce: u64, amount: u64, fee: u64) -> SignedTransaction {
        Transaction {
            chain_id: CHAIN_ID,
            from: self.user.public_key(),
            to: self.validator.address(),
            amount,
            fee,
            nonce,
            data: vec![1, 2, 3],
        }
        .sign(&self.user)
    }
}

/// Options with `clock`, no production loop, and the test passphrase in the environment.
pub(crate) fn manual_options(clock: Arc<ManualClock>) -> NodeOptions {
    NodeOptions {
        clock,
        env: Box::new(|name| (name == "BLYAN_KEY_PASSPHRASE").then(|| PASSPHRASE.to_owned())),
        endpoint: None,
        produce_blocks: false,
    }
}

/// A manual clock in the middle of slot `slot`.
pub(crate) fn clock_at_slot(slot: u64) -> Arc<ManualClock> {
    Arc::new(ManualClock::new(GENESIS_MS + slot * SLOT_MS + SLOT_MS / 2))
}

/// Polls `check` until it returns `Some`, or panics after `deadline`.
pub(crate) async fn poll<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            start.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
