//! Integration tests of the node: configuration, the HTTP API against a real node, block
//! production and restarts, and the built binary as a process.

// Helpers outside `#[test]` functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api;
mod config;
mod hostile;
mod loopback;
mod metric_names;
mod network;
mod partition;
mod process;
mod production;
mod support;
