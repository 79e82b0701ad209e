//! Integration tests of blyan-dht: routing-table invariants, lookup behaviour, whole
//! networks of `DhtCore`s in the discrete-event simulator, and nodes over real QUIC.

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
