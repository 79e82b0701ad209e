//! Settings of the tokio driver.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::dht_core::DhtConfig;
use crate::record_cache::RecordCache;

/// Settings of a [`Dht`](crate::Dht); `Default` gives the documented values (chain id 0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// The Kademlia core's settings (its `rpc_timeout` also bounds each outbound request,
    /// dial included).
    pub dht: DhtConfig,
    /// The chain id node records are signed and verified for: nodes of another chain are
    /// never learned.
    pub chain_id: u32,
    /// Addresses written into our signed node record, primary first. Empty: the endpoint's
    /// bound address, which must then be a specific IP (not `0.0.0.0` / `::`).
    pub advertise: Vec<SocketAddr>,
    /// Where the routing table is saved (`dht-table.bin`). `None`: nothing is saved.
    pub data_dir: Option<PathBuf>,
    /// How often the table is saved while running (also on shutdown). 5 min: a crash loses
    /// at most a few minutes of learning, which a bootstrap redoes anyway.
    pub save_interval: Duration,
    /// Connections kept open to peers; the least recently used one is closed beyond it.
    /// 256: every node of a well-filled table's near buckets and the lookups in flight.
    pub max_connections: usize,
    /// Inbound requests handled at once across all connections; more are refused (the
    /// stream is reset) rather than queued, so a remote never grows a local queue. 64.
    pub max_inbound_requests: usize,
    /// Commands (from `Dht` handles) waiting for the task. 64; a full queue makes the
    /// caller wait, never drops a command.
    pub command_queue: usize,
    /// How long an inbound request may wait for the task's answer before it is refused.
    /// 2 s: the asker's lookup stops waiting for us after its 2 s soft timeout anyway.
    pub inbound_timeout: Duration,
    /// Verified node records remembered, so a record relayed by many peers is checked once.
    pub record_cache: usize,
}

impl Default for DriverConfig {
    fn default() -> Self {
        Self {
            dht: DhtConfig::default(),
            chain_id: 0,
            advertise: Vec::new(),
            data_dir: None,
            save_interval: Duration::from_secs(300),
            max_connections: 256,
            max_inbound_requests: 64,
            command_queue: 64,
            inbound_timeout: Duration::from_secs(2),
            record_cache: RecordCache::DEFAULT_CAPACITY,
        }
    }
}

impl DriverConfig {
    /// Lifts the per-subnet caps (eclipse resistance) of the table and of lookups to k, for
    /// a network whose nodes share one /24: tests and local clusters on 127.0.0.1. Never
    /// for a public network, where the caps are what keeps one operator from owning a
    /// bucket.
    pub fn allow_one_subnet(mut self) -> Self {
        let k = self.dht.routing.k.max(self.dht.lookup.k);
        self.dht.routing.max_per_subnet_bucket = k;
        self.dht.routing.max_per_subnet_table = usize::MAX;
        self.dht.lookup.max_per_subnet_result = k;
        self.dht.lookup.max_per_subnet_candidates = self.dht.lookup.max_candidates;
        self
    }
}
