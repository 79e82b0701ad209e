//! Integration tests of blyan-dht: routing-table invariants, lookup behaviour, and a seeded
//! in-memory network of Kademlia nodes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod core;
mod lookup;
mod network;
mod routing_props;
mod sim;
mod simulation;
