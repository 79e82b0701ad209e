//! The node's error type.

use std::net::SocketAddr;
use std::path::PathBuf;

use blyan_consensus::{BuildError, ChainError, MempoolError, StorageError};

use crate::config::Role;
use crate::genesis_file::GenesisFileError;
use crate::node_key::KeyError;

/// Why the node could not start, or an operation on it failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The node key could not be loaded.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The genesis document could not be read or written.
    #[error(transparent)]
    Genesis(#[from] GenesisFileError),
    /// The chain refused a block or its database failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// No block could be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// This role cannot run yet.
    #[error("role {0} is not available yet (light clients come in a later release)")]
    RoleUnavailable(Role),
    /// The peer-to-peer address could not be bound.
    #[error("cannot listen for peers on {addr}")]
    NetworkBind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: blyan_wire::BindError,
    },
    /// The peer-to-peer service did not start.
    #[error("peer-to-peer service: {0}")]
    Network(String),
    /// The devnet could not be set up.
    #[error("devnet: {0}")]
    Devnet(String),
    /// A `bootstrap.nodes` entry is malformed.
    #[error("bootstrap.nodes: {0}")]
    Bootstrap(String),
    /// The API address could not be bound.
    #[error("cannot serve the API on {addr}")]
    ApiBind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The node is shutting down (or has shut down): the chain is closed.
    #[error("the node is shutting down")]
    ShuttingDown,
    /// A background task failed (panicked or was cancelled).
    #[error("node task failed: {0}")]
    Task(String),
}

impl From<StorageError> for NodeError {
    fn from(e: StorageError) -> Self {
        Self::Chain(e.into())
    }
}

/// Why a transaction was not accepted into the mempool.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The mempool refused it (invalid, known, underpriced, sender full, ...).
    #[error(transparent)]
    Rejected(#[from] MempoolError),
    /// The node could not judge it.
    #[error(transparent)]
    Node(#[from] NodeError),
}
