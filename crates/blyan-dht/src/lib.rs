//! # blyan-dht: Kademlia discovery
//!
//! **Status: not built yet.** This crate holds no code today; this essay says what it
//! will hold.
//!
//! ## What it will hold
//!
//! - A sans-IO core: `RoutingTable` (256 buckets, k = 20, XOR distance on `PeerId`),
//!   a `Lookup` iterator (alpha = 3, per-peer timeouts that never stall a lookup) and a
//!   bounded record store, all driven by `now` and returning actions.
//! - The RPCs PING, FIND_NODE, FIND_VALUE and STORE over the `blyan-wire` transport,
//!   with signed node records (`record` domain) `{peer_id, addrs, seq}`.
//! - Eclipse resistance: at most 2 entries per /24 (IPv6 /48) per bucket and 10 per
//!   table, applied to lookup results too.
//! - Persistence of identity and routing table, bootstrap and bucket refresh.
//! - A seeded discrete-event simulator running the same core for thousands of nodes.
//!
//! Public faces: `DHT::{bootstrap, find_node, store, get}` (in Rust casing, `Dht`).
