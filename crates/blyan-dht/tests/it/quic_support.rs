//! Shared helpers of the QUIC driver tests: nodes on 127.0.0.1, brute-force truth, and
//! waiting on a condition read through the API (never a bare sleep).

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use blyan_crypto::{KeyPair, PeerId};
use blyan_dht::{Dht, DriverConfig, Key, Seed};
use blyan_wire::{Endpoint, TransportConfig};

pub(crate) const CHAIN: u32 = 7;

/// Generous: a debug build on 2 busy cores.
pub(crate) const PATIENCE: Duration = Duration::from_secs(45);

pub(crate) fn key(index: u32, salt: u8) -> KeyPair {
    let mut seed = [salt; 32];
    seed[..4].copy_from_slice(&index.to_le_bytes());
    KeyPair::from_seed(&seed)
}

pub(crate) fn config(data_dir: Option<PathBuf>) -> DriverConfig {
    DriverConfig {
        chain_id: CHAIN,
        data_dir,
        ..DriverConfig::default()
    }
    .allow_one_subnet()
}

pub(crate) struct Node {
    pub(crate) key: KeyPair,
    pub(crate) endpoint: Endpoint,
    pub(crate) dht: Dht,
    pub(crate) addr: SocketAddr,
}

impl Node {
    /// A node on `addr` (port 0: any) serving its own endpoint.
    pub(crate) async fn start(key: KeyPair, addr: SocketAddr, config: DriverConfig) -> Node {
        let endpoint = Endpoint::bind(addr, &key, TransportConfig::default()).unwrap();
        let addr = endpoint.local_addr().unwrap();
        let dht = Dht::spawn(endpoint.clone(), &key, config).await.unwrap();
        dht.serve(endpoint.clone());
        Node {
            key,
            endpoint,
            dht,
            addr,
        }
    }

    pub(crate) async fn any_port(key: KeyPair, config: DriverConfig) -> Node {
        Node::start(key, SocketAddr::from(([127, 0, 0, 1], 0)), config).await
    }

    pub(crate) fn id(&self) -> PeerId {
        self.key.peer_id()
    }

    pub(crate) fn seed(&self) -> Seed {
        Seed {
            addr: self.addr,
            peer: Some(self.id()),
        }
    }

    /// Bootstraps through `seed`, again if the seed was too busy to answer in time (a
    /// loaded debug build on 2 cores can take longer than the 5 s request timeout), until
    /// the table holds a node.
    pub(crate) async fn join(&self, seed: Seed) {
        for _ in 0..5 {
            if matches!(self.dht.bootstrap([seed]).await, Ok(len) if len > 0) {
                return;
            }
        }
        panic!("{} could not join through {}", self.id(), seed.addr);
    }

    pub(crate) async fn stop(self) {
        self.dht.shutdown().await.unwrap();
        self.endpoint.close().await;
    }
}

/// The `k` ids of `ids` closest to `target`, closest first.
pub(crate) fn closest(ids: &[PeerId], target: &Key, k: usize) -> Vec<PeerId> {
    let mut sorted = ids.to_vec();
    sorted.sort_by_key(|id| target.distance(&Key::from(*id)));
    sorted.truncate(k);
    sorted
}

/// Polls `check` until it holds; fails the test after [`PATIENCE`].
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
