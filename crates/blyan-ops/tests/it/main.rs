//! Integration tests of blyan-ops: the exposition as Prometheus' own checker
//! sees it, the real HTTP endpoint, and captured log lines.

// Helpers outside `#[test]` functions may panic too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod docs;
mod exposition;
mod http;
mod logging;
mod support;
