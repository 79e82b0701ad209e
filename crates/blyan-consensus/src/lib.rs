//! # blyan-consensus: the chain, without networking
//!
//! **Status: being built.** (The design essay is written once the crate's parts exist.)
//!
//! Module map (each file one concept). Engineers add their own `mod`/`pub use` lines
//! below, one line at a time.

// -- types, validation, state machine, mempool --

// -- block tree, fork choice --
