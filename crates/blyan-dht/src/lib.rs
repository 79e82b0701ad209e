//! # blyan-dht: Kademlia discovery
//!
//! How a Blyan node finds other nodes: a Kademlia DHT over the 256-bit key space of
//! [`PeerId`](blyan_crypto::PeerId)s (k = 20, alpha = 3, XOR distance). This crate is its
//! deciding core, written sans-IO in the manner of quinn-proto: plain structs that are
//! given `now` ([`Timestamp`]) and inputs and return what to do. They open no socket and
//! read no clock, so a tokio driver and a seeded simulator run the very same code, and a
//! failing seed replays exactly.
//!
//! ## Main types
//!
//! - [`Key`] and [`Distance`]: points of the key space and the XOR metric between them;
//!   [`Distance::bucket_index`] is `255 - leading_zeros`.
//! - [`RoutingTable`]: 256 buckets of at most k [`Entry`]s. Only a node that answered one of
//!   our own requests enters ([`RoutingTable::on_response`]). A full bucket does not evict:
//!   it returns [`InsertOutcome::PingLeastRecentlySeen`], keeps the newcomer in a bounded
//!   replacement cache, and [`RoutingTable::on_ping_result`] then keeps the old node or
//!   promotes a replacement. Repeated failures remove an entry.
//! - Eclipse resistance ([`Subnet`]): at most 2 entries per /24 (IPv6 /48) per bucket and 10
//!   per table ([`RoutingConfig`]), and the same per-subnet cap on what we answer and on
//!   lookup results ([`RoutingTable::closest_peers_diverse`], [`take_diverse`]).
//! - [`Lookup`]: the iterative FIND_NODE. [`Lookup::poll`] yields
//!   [`LookupAction::SendFindNode`] (at most alpha in flight), `Wait` or `Done`. A peer
//!   silent past its timeout stops counting against alpha without stalling the lookup, and
//!   its late answer is still used. It ends when the k closest candidates (unresponsive ones
//!   left out) have all answered. Candidates, nodes per response and nodes per subnet are
//!   bounded, whatever peers send.
//!
//! ## Data flow
//!
//! The driver seeds a [`Lookup`] with `table.closest_peers_diverse(target, k)`, sends what
//! `poll` asks, feeds answers to both the lookup and the table (`on_response`), pings when
//! the table asks, and calls `poll` again at the deadline `Wait` names. In a seeded
//! simulation of 1,000 nodes every lookup ends and finds the true 20 closest nodes.
//!
//! ```
//! use std::net::SocketAddr;
//! use blyan_crypto::PeerId;
//! use blyan_dht::*;
//!
//! let me = PeerId::from_bytes([0; 32]);
//! let mut table = RoutingTable::new(me, RoutingConfig::default());
//! let peer = NodeInfo::new(PeerId::from_bytes([1; 32]), [SocketAddr::from(([10, 0, 0, 1], 4000))])?;
//! assert_eq!(table.on_response(Timestamp::ZERO, peer.clone()), InsertOutcome::Inserted);
//!
//! let target = Key::from_bytes([7; 32]);
//! let seeds = table.closest_peers_diverse(&target, 20);
//! let mut lookup = Lookup::new(target, me, seeds, LookupConfig::default());
//! let LookupAction::SendFindNode { peer: asked, .. } = lookup.poll(Timestamp::ZERO) else { unreachable!() };
//! lookup.on_response(Timestamp::from_millis(40), &asked, vec![]);
//! assert!(matches!(lookup.poll(Timestamp::from_millis(40)), LookupAction::Done(r) if r.closest == [peer]));
//! # Ok::<(), NodeInfoError>(())
//! ```
//!
//! ## Still to come
//!
//! Signed node records (`record` domain) `{peer_id, addrs, seq}` and the RPC messages PING,
//! FIND_NODE, FIND_VALUE and STORE (encoded with the `blyan-wire` codec); a bounded record
//! store for values (TTL, republish, caps); persistence and re-validation of the identity and
//! table across restarts; bootstrap and bucket refresh; the tokio driver over the QUIC
//! transport; the `Dht::{bootstrap, find_node, store, get}` face; a discrete-event simulator
//! for 10,000 nodes with churn; optional disjoint-path (S/Kademlia) lookups.

mod distance;
mod lookup;
mod node;
mod routing_table;
mod time;

pub use distance::{Distance, KEY_BITS, Key};
pub use lookup::{Lookup, LookupAction, LookupConfig, LookupResult, LookupStats};
pub use node::{MAX_ADDRS, NodeInfo, NodeInfoError, Subnet, take_diverse};
pub use routing_table::{Entry, InsertOutcome, Rejection, RoutingConfig, RoutingTable};
pub use time::Timestamp;
