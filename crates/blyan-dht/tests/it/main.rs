//! Integration tests of blyan-dht: routing-table invariants, lookup behaviour, and a seeded
//! in-memory network of Kademlia nodes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod core;
mod lookup;
mod network;
mod quic;
mod quic_hostile;
mod quic_limits;
mod quic_restart;
mod quic_router;
mod quic_support;
mod routing_props;
mod sim;
mod simulation;
