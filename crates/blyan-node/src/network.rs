//! The node's side of the peer-to-peer service: the chain as `blyan-p2p` sees it
//! ([`NodeChain`]), the service's settings from the node configuration, and the task that
//! publishes what this node produces or accepts from its clients.
//!
//! One QUIC endpoint carries everything (DHT on protocol 1, sync on 2, gossip on 3), bound
//! on `network.listen_addr` with the node key, so the peer id in every certificate is the
//! node's.
//!
//! **Local networks.** When the advertised address is a loopback address, every peer
//! shares 127.0.0.1: the per-IP and per-subnet connection limits, the per-IP message
//! budget and the DHT's subnet diversity rule are lifted (they would otherwise cap a
//! devnet at a handful of nodes). A public node advertises a routable address and keeps
//! every limit.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use blyan_consensus::{
    Block, BlockValidator, ChainError, ChainManager, InsertError, MempoolError, SignedTransaction,
    TxError, VerifiedBlock,
};
use blyan_crypto::PeerId;
use blyan_p2p::{ChainHost, ImportRefused, PROTOCOL_VERSION, Status, Validation};
use blyan_security::{PeerEvent, RateQuota};
use tokio::sync::{broadcast, watch};

use crate::config::NodeConfig;
use crate::error::NodeError;
use crate::node::{NodeEvent, NodeHandle, admit_tx, import};

/// The chain behind a [`NodeHandle`], for the network service.
pub(crate) struct NodeChain {
    pub(crate) handle: NodeHandle,
}

impl ChainHost for NodeChain {
    type Chain = ChainManager;

    fn with_chain<R>(&self, f: impl FnOnce(&ChainManager) -> R) -> Option<R> {
        let shared = &self.handle.shared;
        let guard = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().map(|state| f(&state.chain))
    }

    fn local_status(&self) -> Option<Status> {
        let info = self.handle.info();
        self.with_chain(|chain| {
            let tip = chain.tip();
            Status {
                protocol_version: PROTOCOL_VERSION,
                chain_id: info.chain_id,
                genesis_hash: info.genesis_hash,
                best_height: tip.height,
                best_hash: tip.hash,
                finalized_height: chain.finalized_height().unwrap_or(0),
            }
        })
    }

    fn validator(&self) -> &BlockValidator {
        &self.handle.shared.validator
    }

    fn import_block(&self, block: VerifiedBlock) -> Result<bool, ImportRefused> {
        let shared = &self.handle.shared;
        let mut guard = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = guard.as_mut() else {
            return Ok(false);
        };
        match import(state, shared, block, false) {
            Ok(_) => Ok(true),
            Err(NodeError::Chain(ChainError::Rejected(InsertError::ReorgTooDeep {
                depth,
                max,
            }))) => {
                shared.reorgs_refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    depth,
                    max,
                    "refused a branch that would revert more than max_reorg_depth blocks"
                );
                Err(ImportRefused(format!(
                    "reorg of depth {depth} exceeds max_reorg_depth {max}"
                )))
            }
            Err(NodeError::Chain(
                error @ (ChainError::Invalid { .. } | ChainError::Rejected(_)),
            )) => Err(ImportRefused(error.to_string())),
            Err(error) => {
                tracing::warn!(%error, "block import failed");
                Ok(false)
            }
        }
    }

    fn submit_tx(&self, tx: SignedTransaction) -> Validation {
        let shared = &self.handle.shared;
        let mut guard = shared.state.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(state) = guard.as_mut() else {
            return Validation::Ignore;
        };
        match admit_tx(state, shared, tx, false) {
            Ok(Ok(_)) => Validation::Accept,
            Ok(Err(MempoolError::Invalid(
                TxError::BadSignature(_)
                | TxError::WrongChain { .. }
                | TxError::DataTooLarge { .. },
            ))) => Validation::Reject(PeerEvent::InvalidTransaction),
            Ok(Err(_)) | Err(_) => Validation::Ignore,
        }
    }
}

/// The address peers reach us at: `network.advertise_addr`, else the bound address with
/// an unspecified IP replaced by 127.0.0.1.
pub(crate) fn advertised(config: &NodeConfig, bound: SocketAddr) -> SocketAddr {
    config.network.advertise_addr.unwrap_or_else(|| {
        if bound.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], bound.port()))
        } else {
            bound
        }
    })
}

/// The service's settings from the node's.
pub(crate) fn service_config(
    config: &NodeConfig,
    chain_id: u32,
    advertise: SocketAddr,
    bootstrap: Vec<(PeerId, SocketAddr)>,
) -> blyan_p2p::NetworkConfig {
    let net = &config.network;
    let mut service = blyan_p2p::NetworkConfig::new(chain_id);
    service.peers.target_outbound = net.target_outbound;
    let limits = &mut service.security.connections;
    limits.max_outbound = net.target_outbound;
    limits.max_inbound = net.max_peers.saturating_sub(net.target_outbound).max(1);
    limits.max_per_ip = net.max_peers_per_ip;
    limits.max_per_subnet = net.max_peers_per_subnet;
    service.sync.request_timeout = Duration::from_millis(net.request_timeout_ms);
    service.dht.advertise = vec![advertise];
    service.dht.data_dir = Some(config.storage.path.clone());
    service.data_dir = Some(config.storage.path.clone());
    service.bootstrap = bootstrap;
    if advertise.ip().is_loopback() {
        limits.max_per_ip = net.max_peers;
        limits.max_per_subnet = net.max_peers;
        let rate = &mut service.security.rate;
        let peers = u32::try_from(net.max_peers).unwrap_or(u32::MAX).max(1);
        let scaled = |quota: RateQuota| RateQuota {
            amount: quota.amount.saturating_mul(peers),
            per: quota.per,
            burst: quota.burst.saturating_mul(peers),
        };
        rate.ip_messages = scaled(rate.peer_messages);
        rate.ip_bytes_kib = scaled(rate.peer_bytes_kib);
        rate.connection_attempts = RateQuota::per_second(peers, peers.saturating_mul(4));
        service.dht = service.dht.allow_one_subnet();
    }
    service
}

/// Resolves `bootstrap.nodes` (host names through the system resolver); an entry that
/// does not resolve is logged and skipped, so one stale name does not stop the node.
pub(crate) async fn resolve_bootstrap(
    config: &NodeConfig,
) -> Result<Vec<(PeerId, SocketAddr)>, NodeError> {
    let nodes = config.bootstrap_nodes().map_err(NodeError::Bootstrap)?;
    let mut resolved = Vec::with_capacity(nodes.len());
    for node in nodes {
        match tokio::net::lookup_host((node.host.as_str(), node.port)).await {
            Ok(mut addrs) => match addrs.next() {
                Some(addr) => resolved.push((node.peer_id, addr)),
                None => tracing::warn!(host = %node.host, "bootstrap host has no address"),
            },
            Err(error) => {
                tracing::warn!(host = %node.host, %error, "bootstrap host did not resolve")
            }
        }
    }
    Ok(resolved)
}

/// Publishes the blocks this node produces and the transactions its clients submit,
/// until `stop`.
pub(crate) async fn publish_loop(
    network: blyan_p2p::Network,
    mut events: broadcast::Receiver<NodeEvent>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = stop.wait_for(|stop| *stop) => return,
        };
        let published = match event {
            Ok(NodeEvent::BlockImported {
                block,
                produced: true,
            }) => network.publish_block(Block::clone(&block)).await,
            Ok(NodeEvent::TxAdmitted {
                tx, local: true, ..
            }) => network.publish_tx(SignedTransaction::clone(&tx)).await,
            Ok(_) => Ok(()),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "publisher fell behind the node's events");
                Ok(())
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if published.is_err() {
            return;
        }
    }
}

/// A started service and its endpoint, for the node to shut down.
#[derive(Debug)]
pub(crate) struct RunningNetwork {
    pub(crate) network: blyan_p2p::Network,
    pub(crate) endpoint: blyan_wire::Endpoint,
    pub(crate) addr: SocketAddr,
    pub(crate) advertise: SocketAddr,
}

/// Binds the endpoint and starts the service for `handle`.
pub(crate) async fn start(
    handle: &NodeHandle,
    config: &NodeConfig,
    endpoint: Option<blyan_wire::Endpoint>,
) -> Result<RunningNetwork, NodeError> {
    let key = Arc::clone(&handle.shared.key);
    let endpoint = match endpoint {
        Some(endpoint) if endpoint.peer_id() != key.peer_id() => {
            return Err(NodeError::Network(
                "the endpoint given in NodeOptions is not bound with the node key".to_owned(),
            ));
        }
        Some(endpoint) => endpoint,
        None => {
            let listen = config.network.listen_addr;
            let transport = blyan_wire::TransportConfig {
                request_timeout: Duration::from_millis(config.network.request_timeout_ms),
                ..blyan_wire::TransportConfig::default()
            };
            blyan_wire::Endpoint::bind(listen, &key, transport).map_err(|source| {
                NodeError::NetworkBind {
                    addr: listen,
                    source,
                }
            })?
        }
    };
    let bound = endpoint
        .local_addr()
        .map_err(|e| NodeError::Network(e.to_string()))?;
    let advertise = advertised(config, bound);
    let bootstrap = resolve_bootstrap(config).await?;
    let service = service_config(config, handle.info().chain_id, advertise, bootstrap);
    let host = Arc::new(NodeChain {
        handle: handle.clone(),
    });
    let network = blyan_p2p::Network::start(endpoint.clone(), key, host, service)
        .await
        .map_err(|e| NodeError::Network(e.to_string()))?;
    tracing::info!(%bound, %advertise, peer_id = %handle.info().peer_id, "peer-to-peer service started");
    Ok(RunningNetwork {
        network,
        endpoint,
        addr: bound,
        advertise,
    })
}
