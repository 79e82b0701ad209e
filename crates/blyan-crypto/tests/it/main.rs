//! Integration tests of blyan-crypto's public API (one binary, one module per concept).

// Helpers outside `#[test]` functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod edge_vectors;
mod key_store;
mod merkle;
mod serde_formats;
