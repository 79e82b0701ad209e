//! # blyan-p2p: peers, gossip and chain sync
//!
//! The deciding half of the node's networking. Three sans-IO cores, each a plain struct
//! that is given the time (`blyan_security::Now`) and its inputs and returns actions; no
//! sockets, no tokio, no clock. A thin driver moves their messages over `blyan-wire`'s
//! QUIC streams; a simulator drives the same cores in virtual time (see `tests/it`).
//!
//! - [`PeerSet`]: keeps `target_outbound` outbound peers from the bootstrap list and the
//!   DHT, admits every connection through `SecurityManager`, runs the [`Status`] handshake
//!   ([`check_status`] → [`StatusMismatch`]) and repeats it every minute, pings quiet
//!   peers, disconnects on score verdicts, redials with exponential backoff and jitter.
//! - [`SyncScheduler`]: headers-first sync. A block locator finds the fork point; headers
//!   arrive in batches from rotating peers and are checked (producer, signature, parent)
//!   before any body is asked for; bodies come from several peers at once in a moving
//!   window; blocks leave in order as [`SyncAction::Import`]. Timeouts and lies move the
//!   work to another peer and yield a [`SyncAction::Penalize`]. [`SyncChain`] is what it
//!   needs from the chain (implemented for `ChainManager`); [`SyncProgress`] feeds
//!   `blyan_sync_progress_ratio` and `/api/sync`.
//! - [`GossipRouter`]: new blocks and transactions travel in signed [`GossipEnvelope`]s
//!   (origin key, nonce, timestamp; `gossip` signature domain, chain id bound). Each is
//!   checked once (seen-cache), signature then replay window, handed to the driver to
//!   validate ([`check_gossip_block`], then the signatures, for blocks), and only then
//!   pushed in full to one peer (or more, or `⌊√n⌋`) and announced to the rest, who fetch it on
//!   demand. Sync leaves the next block to gossip for a grace period, so it arrives once.
//!
//! - [`Network`] (feature `service`, default): the tokio driver. One task owns the three
//!   cores and the `SecurityManager`, shares one QUIC endpoint with the DHT, and routes
//!   every connection's streams by protocol byte (1 DHT, 2 sync, 3 gossip); the embedding
//!   node supplies its chain through [`ChainHost`].
//!
//! The messages ([`SyncRequest`]/[`SyncResponse`] on protocol byte [`SYNC_PROTOCOL`],
//! [`GossipMessage`] on [`GOSSIP_PROTOCOL`]) use the `blyan-wire` codec ([`WireMessage`]);
//! every list is a [`BoundedVec`] whose cap is checked before allocation. The byte layout
//! is in `docs/protocol.md`, "Peer protocol".
//!
//! **Bounds.** Held headers, bodies in flight, requests per peer, tracked peers, the
//! seen-cache, kept envelopes, pending fetches and candidates all have caps in their
//! configs; no input from a peer grows any of them past the cap.
//!
//! ```
//! use std::time::Duration;
//! use blyan_consensus::Transaction;
//! use blyan_crypto::{KeyPair, PeerId};
//! use blyan_p2p::*;
//! use blyan_security::Now;
//!
//! let alice = KeyPair::from_seed(&[1; 32]);
//! let now = Now::new(Duration::ZERO, 1_700_000_000_000);
//! let tx = Transaction { chain_id: 1, from: alice.public_key(), to: alice.address(),
//!                        amount: 5, fee: 1, nonce: 0, data: vec![] }.sign(&alice);
//!
//! // Alice publishes to her only peer, Bob: a signed envelope, pushed in full.
//! let mut alice_router = GossipRouter::new(GossipConfig::new(1));
//! alice_router.add_peer(PeerId::from_bytes([2; 32]));
//! let sent = alice_router.publish(now, &alice, GossipPayload::Tx(tx))?;
//! let [GossipAction::Send { message, .. }] = sent.as_slice() else { unreachable!() };
//! let bytes = message.encode()?;
//!
//! // Bob decodes, checks signature and replay window, and asks his driver to validate.
//! let mut bob_router = GossipRouter::new(GossipConfig::new(1));
//! let got = bob_router.on_message(now, alice.peer_id(), GossipMessage::decode(&bytes)?);
//! let [GossipAction::Deliver { id, .. }] = got.as_slice() else { unreachable!() };
//! // Valid: relayed to Bob's other peers (he has none), never back to Alice.
//! assert!(bob_router.validated(id, Validation::Accept).is_empty());
//! # Ok::<(), MessageError>(())
//! ```

mod bounded_vec;
mod chain;
mod error;
mod gossip;
mod message;
mod peer_set;
mod rng;
#[cfg(feature = "service")]
mod service;
mod status;
mod sync;

pub use bounded_vec::BoundedVec;
pub use chain::{
    SyncChain, block_locator, check_gossip_block, serve_bodies, serve_headers, verdict_of,
};
pub use error::MessageError;
pub use gossip::{GossipAction, GossipConfig, GossipFault, GossipRouter, GossipStats, Validation};
pub use message::{
    Announce, BlockBody, GOSSIP_PROTOCOL, GossipEnvelope, GossipMessage, GossipPayload,
    MAX_BODIES_PER_REQUEST, MAX_HEADERS_PER_RESPONSE, MAX_LOCATOR_LEN, MAX_TXS_PER_BODY,
    PROTOCOL_VERSION, SYNC_PROTOCOL, SignedHeader, Status, SyncRequest, SyncResponse, WireMessage,
};
pub use peer_set::{CandidateSource, DisconnectReason, PeerAction, PeerSet, PeerSetConfig};
#[cfg(feature = "service")]
pub use service::{
    BAN_FILE, ChainHost, IMPORT_QUEUE, ImportRefused, Network, NetworkConfig, NetworkError,
    NetworkStatus, PeerInfo,
};
pub use status::{StatusMismatch, check_status};
pub use sync::{RequestId, SyncAction, SyncConfig, SyncFault, SyncProgress, SyncScheduler};
