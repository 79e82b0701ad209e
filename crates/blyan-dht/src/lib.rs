//! # blyan-dht: Kademlia discovery
//!
//! How a Blyan node finds other nodes and small values: Kademlia over the 256-bit space of
//! [`PeerId`](blyan_crypto::PeerId)s (k = 20, alpha = 3, XOR distance). The deciding core is
//! sans-IO (as quinn-proto): given `now` ([`Timestamp`]) and inputs, it returns what to do,
//! with no socket and no clock, so the tokio driver and a seeded simulator run the same code
//! and a failing seed replays exactly. Every collection a remote can grow is bounded.
//!
//! ## Main types
//!
//! - [`DhtCore`]: one node. Inputs: inbound requests ([`DhtCore::handle_request`] returns the
//!   [`Reply`]), answers and failures of its own requests, commands (`bootstrap`,
//!   `find_node`, `get`, `put`) and time; output: [`Action`]s from [`DhtCore::poll`] (send a
//!   request, a query finished) and a wake-up time. It runs its own maintenance: liveness
//!   pings, bucket refresh, republishing, expiry. Settings and defaults: [`DhtConfig`].
//! - [`RoutingTable`]: 256 buckets of k entries; only a node that answered *our* request
//!   enters, a full bucket pings its oldest entry before replacing it, and at most 2 nodes
//!   per /24 (IPv6 /48) per bucket and 10 per table ([`Subnet`]), also in lookup results.
//! - [`Lookup`]: the iterative search; optional disjoint paths (S/Kademlia) in the core.
//! - [`DhtRequest`], [`Reply`], [`Response`]: the PING / FIND_NODE / FIND_VALUE / STORE
//!   messages on transport protocol [`PROTOCOL_ID`], every field capped before allocation;
//!   nodes travel as signed [`NodeRecord`]s, verified once through a [`RecordCache`].
//! - [`RecordStore`]: values held for others, capped in size, count and per key.
//! - [`save_table`] / [`load_table`]: the table as signed records in one atomic,
//!   checksummed file; loaded nodes must answer a ping again. The node key itself lives in
//!   [`blyan_crypto::KeyStore`], so a restarted node keeps its id.
//! - `sim` (feature `sim`): a discrete-event simulator; at 10,000 nodes a lookup takes 3
//!   rounds and ~25 requests and finds the true 20 closest, and the simulator runs
//!   over 200k requests per second on two cores, with the same results on one
//!   (`examples/simulate.rs`).
//!
//! ```
//! use std::net::SocketAddr;
//! use blyan_crypto::PeerId;
//! use blyan_dht::*;
//!
//! let now = Timestamp::ZERO;
//! let mut core = DhtCore::new(PeerId::from_bytes([0; 32]), DhtConfig::default(), 7);
//! let seed = Seed { addr: SocketAddr::from(([10, 0, 0, 1], 4000)), peer: None };
//! core.bootstrap(now, [seed])?;
//! let Some(Action::SendRequest { rpc, request, .. }) = core.poll(now) else { unreachable!() };
//! assert!(matches!(request, DhtRequest::FindNode { .. }));
//! // The seed answers (its record verified by the driver): it enters the table.
//! let responder = NodeInfo::new(PeerId::from_bytes([1; 32]), [seed.addr])?;
//! core.on_response(now, rpc, Response { responder: responder.clone(), reply: Reply::Nodes(vec![]) });
//! assert!(core.table().get(&responder.peer_id()).is_some());
//! # Ok::<(), Box<dyn std::error::Error>>(())
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
//! ## Not done
//!
//! Holders do not re-replicate values (publishers republish), values are not cached along
//! the lookup path, and a lost answer is not retried within a lookup.

#[cfg(feature = "sim")]
mod agenda;
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
