//! The startup banner: what an operator needs to see once, in plain text, whatever the log
//! format.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use crate::node::{ChainStatus, NodeInfo};

/// Everything the banner shows.
#[derive(Debug, Clone)]
pub struct Banner {
    /// The node's facts.
    pub info: NodeInfo,
    /// The tip at start.
    pub chain: ChainStatus,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Genesis file in use.
    pub genesis_file: PathBuf,
    /// Where the API is served.
    pub api_addr: SocketAddr,
    /// Where the peer-to-peer endpoint listens.
    pub p2p_addr: SocketAddr,
    /// The address other nodes dial.
    pub p2p_advertised: SocketAddr,
    /// Where metrics are served, if enabled.
    pub metrics_addr: Option<SocketAddr>,
}

impl Banner {
    /// The banner text, one `key  value` line per fact.
    pub fn render(&self) -> String {
        let info = &self.info;
        let mut out = String::new();
        let chain_kind = if info.dev_chain {
            "dev chain (this node is the only validator)"
        } else {
            "from genesis file"
        };
        let role = if info.producing {
            format!("{} (producing every own slot)", info.role)
        } else {
            info.role.to_string()
        };
        let lines: [(&str, String); 15] = [
            ("version", info.version.to_owned()),
            ("name", info.name.clone()),
            ("role", role),
            ("chain id", format!("{} — {chain_kind}", info.chain_id)),
            ("genesis", info.genesis_hash.to_string()),
            ("genesis file", self.genesis_file.display().to_string()),
            ("peer id", info.peer_id.to_string()),
            ("address", info.address.to_string()),
            ("data dir", self.data_dir.display().to_string()),
            (
                "height",
                format!("{} (tip {})", self.chain.height, self.chain.tip_hash),
            ),
            ("slot", format!("{} ms", info.slot_duration_ms)),
            // `<peer id>@<addr>`: the bootstrap entry other nodes use to reach this one.
            ("p2p", format!("{}@{}", info.peer_id, self.p2p_advertised)),
            ("p2p listen", format!("udp {}", self.p2p_addr)),
            ("api", format!("http://{}", self.api_addr)),
            (
                "metrics",
                self.metrics_addr.map_or_else(
                    || "disabled".to_owned(),
                    |addr| format!("http://{addr}/metrics"),
                ),
            ),
        ];
        let _ = writeln!(out, "Blyan node started");
        for (key, value) in lines {
            let _ = writeln!(out, "  {key:<13}{value}");
        }
        out
    }
}
