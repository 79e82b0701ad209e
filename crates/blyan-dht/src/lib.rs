//! # blyan-dht: Kademlia discovery
//!
//! How a Blyan node finds other nodes: Kademlia over the 256-bit space of
//! [`PeerId`](blyan_crypto::PeerId)s (k = 20, alpha = 3, XOR distance). This is its sans-IO
//! deciding core (as quinn-proto): structs given `now` ([`Timestamp`]) and inputs that return
//! what to do, with no socket and no clock, so a tokio driver and a seeded simulator run the
//! same code and a failing seed replays exactly.
//!
//! ## Main types
//!
//! - [`Key`], [`Distance`]: the key space and its XOR metric (bucket = 255 - leading zeros).
//! - [`RoutingTable`]: 256 buckets of at most k [`Entry`]s; only a node that answered our own
//!   request enters ([`RoutingTable::on_response`]). A full bucket does not evict: it asks
//!   to [ping](InsertOutcome::PingLeastRecentlySeen) its oldest entry and caches the
//!   newcomer; [`RoutingTable::on_ping_result`] keeps the old node or promotes a replacement.
//! - Eclipse resistance ([`Subnet`]): at most 2 entries per /24 (IPv6 /48) per bucket and 10
//!   per table ([`RoutingConfig`]), and the same per-subnet cap on what we answer and on
//!   lookup results ([`RoutingTable::closest_peers_diverse`], [`take_diverse`]).
//! - [`Lookup`]: the iterative FIND_NODE. [`Lookup::poll`] yields
//!   [`LookupAction::SendFindNode`] (at most alpha in flight), `Wait` or `Done`. A peer
//!   silent past its timeout stops counting against alpha without stalling the lookup, and
//!   its late answer is still used. It ends when the k closest candidates (unresponsive ones
//!   left out) have all answered. What peers send cannot grow it past its bounds.
//! - [`NodeRecord`]: a node's signed `{peer_id, public_key, addrs, seq}` (`record` domain,
//!   per chain id), in a fixed binary form via the `blyan-wire` canonical codec. Decoding
//!   checks the size ([`MAX_RECORD_LEN`]) first, then the address list, that the peer id is
//!   the SHA-256 of the public key, and the signature; a higher `seq` supersedes.
//! - [`RecordStore`]: values held for others, one per publisher and key, with a capped TTL
//!   and caps on value size, values per key and values in total; full means refused.
//!
//! ## Data flow
//!
//! The driver seeds a [`Lookup`] with `table.closest_peers_diverse(target, k)`, sends what
//! `poll` asks, feeds answers to the lookup and the table, pings when the table asks, and
//! polls again at the deadline `Wait` names. In a seeded 1,000-node simulation every lookup
//! ends, and finds the true 20 closest nodes (200 of 200; 196 of 200 with 10% dead nodes).
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
//! let target = Key::from_bytes([7; 32]);
//! let seeds = table.closest_peers_diverse(&target, 20);
//! let mut lookup = Lookup::new(target, me, seeds, LookupConfig::default());
//! let LookupAction::SendFindNode { peer: asked, .. } = lookup.poll(Timestamp::ZERO) else { unreachable!() };
//! lookup.on_response(Timestamp::from_millis(40), &asked, vec![]);
//! assert!(matches!(lookup.poll(Timestamp::from_millis(40)), LookupAction::Done(r) if r.closest == [peer]));
//! # Ok::<(), NodeInfoError>(())
//! ```
//!
//! ## Driver
//!
//! [`Dht`] (feature `driver`, on by default) is the tokio face: one task owns a [`DhtCore`]
//! and does its IO over a blyan-wire QUIC `Endpoint`; clones of the handle send it commands
//! ([`Dht::bootstrap`], [`Dht::find_node`], [`Dht::store`], [`Dht::get`]) over a bounded
//! queue. Each request dials (or reuses, from a bounded cache) one connection per peer with
//! the expected peer id and is one stream on [`PROTOCOL_ID`]; an error, a timeout, a bad
//! answer or a wrong id is a failure for the core. Inbound requests come from a protocol
//! router ([`Dht::handle_inbound`]) or [`Dht::serve`], at most `max_inbound_requests` at
//! once. The table is saved to `data_dir` and its nodes are pinged again at the next start.
//!
//! ## Still to come
//!
//! PING/FIND_NODE/FIND_VALUE/STORE messages; republishing our own values; persistence of
//! identity and table; bootstrap and bucket refresh; the tokio driver over QUIC and the
//! `Dht` face; a 10,000-node simulator with churn; disjoint-path lookups.

mod bounded;
mod dht_core;
mod distance;
#[cfg(feature = "driver")]
mod driver;
mod lookup;
mod node;
mod node_record;
mod persist;
mod record_cache;
mod record_store;
mod rng;
mod routing_table;
mod rpc;
#[cfg(feature = "sim")]
pub mod sim;
mod time;

pub use dht_core::{
    Action, Contact, DhtConfig, DhtCore, DhtError, QueryId, QueryResult, QueryStats, RpcId, Seed,
};
pub use distance::{Distance, KEY_BITS, Key};
#[cfg(feature = "driver")]
pub use driver::{
    Dht, DhtStatus, DriverConfig, DriverError, InboundError, StoreSummary, TABLE_FILE_NAME,
};
pub use lookup::{Lookup, LookupAction, LookupConfig, LookupResult, LookupStats};
pub use node::{MAX_ADDRS, NodeInfo, NodeInfoError, Subnet, take_diverse};
pub use node_record::{MAX_RECORD_LEN, NodeRecord, RecordError};
pub use persist::{
    LoadedTable, MAX_SAVED_NODES, MAX_TABLE_FILE_LEN, PersistError, decode_table, load_table,
    quarantine, save_table,
};
pub use record_cache::RecordCache;
pub use record_store::{PutOutcome, RecordStore, RecordStoreConfig, StoreError, StoredValue};
pub use routing_table::{Entry, InsertOutcome, Rejection, RoutingConfig, RoutingTable};
pub use rpc::{
    DhtRequest, FoundValue, MAX_MESSAGE_LEN, MAX_NODES_PER_RESPONSE, MAX_VALUE_LEN,
    MAX_VALUES_PER_RESPONSE, PROTOCOL_ID, Refusal, Reply, Response, RpcError, dht_codec,
};
pub use time::Timestamp;
