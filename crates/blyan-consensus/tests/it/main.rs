//! Integration tests of blyan-consensus's public API (one binary, one module per concept).

// Helpers outside `#[test]` functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fork_choice;
mod fork_choice_driver;
mod fork_choice_props;
mod builder;
mod chain_fixture;
mod mempool;
mod state_props;
mod validation;
mod chain_manager;
mod storage;
mod crash;
