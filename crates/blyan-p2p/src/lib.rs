//! # blyan-p2p: peers, gossip and chain sync
//!
//! placeholder essay
mod bounded_vec;
mod chain;
mod error;
mod gossip;
mod message;
mod peer_set;
mod rng;
mod status;
mod sync;

pub use bounded_vec::BoundedVec;
pub use chain::{SyncChain, block_locator, serve_bodies, serve_headers};
pub use error::MessageError;
pub use gossip::{GossipAction, GossipConfig, GossipFault, GossipRouter, GossipStats, Validation};
pub use message::{
    Announce, BlockBody, GOSSIP_PROTOCOL, GossipEnvelope, GossipMessage, GossipPayload,
    MAX_BODIES_PER_REQUEST, MAX_HEADERS_PER_RESPONSE, MAX_LOCATOR_LEN, MAX_TXS_PER_BODY,
    PROTOCOL_VERSION, SYNC_PROTOCOL, SignedHeader, Status, SyncRequest, SyncResponse, WireMessage,
};
pub use peer_set::{CandidateSource, DisconnectReason, PeerAction, PeerSet, PeerSetConfig};
pub use status::{StatusMismatch, check_status};
pub use sync::{RequestId, SyncAction, SyncConfig, SyncFault, SyncProgress, SyncScheduler};
