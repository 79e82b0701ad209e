//! Integration tests of blyan-p2p's sans-IO cores, driven in simulated time.

mod chain_manager;
mod common;
mod gossip;
mod peer_set;
mod sync;
mod sync_props;
