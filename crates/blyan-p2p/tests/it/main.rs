//! Integration tests of blyan-p2p's sans-IO cores, driven in simulated time.

mod common;
mod gossip;
mod sync;
