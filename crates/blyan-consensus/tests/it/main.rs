//! Integration tests of blyan-consensus's public API (one binary, one module per concept).

// Helpers outside `#[test]` functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod builder;
mod chain_fixture;
mod chain_manager;
mod crash;
mod fork_choice;
mod fork_choice_driver;
mod fork_choice_props;
mod mempool;
mod state_props;
mod storage;
mod validation;
