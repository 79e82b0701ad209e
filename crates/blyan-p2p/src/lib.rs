//! # blyan-p2p: peers, gossip and chain sync
//!
//! **Status: not built yet.** This crate holds no code today; this essay says what it
//! will hold.
//!
//! ## What it will hold
//!
//! - A **peer manager** that keeps a target number of outbound peers, admits inbound
//!   peers through `blyan-security`, runs the status handshake (protocol version, chain
//!   id, genesis hash, best and finalized heights) and reconnects with backoff.
//! - **Headers-first chain sync**: a block locator finds the fork point, headers are
//!   checked before bodies are fetched in parallel from several peers in a moving
//!   window, and a peer that lies is penalized.
//! - **Gossip** of blocks and transactions with a bounded seen-cache, origin
//!   signatures, nonces and timestamps that pass replay checks.
//!
//! The deciding parts (sync scheduling, gossip routing) are sans-IO state machines
//! tested in simulated time; thin tokio drivers move the bytes.
