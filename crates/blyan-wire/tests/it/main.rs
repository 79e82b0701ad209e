//! Integration tests of blyan-wire: one binary, one module per concern.
//!
//! The binary installs a counting global allocator so that `bomb` can assert that a zstd
//! bomb is refused with bounded memory.

// Helpers outside `#[test]` fns may unwrap too: in this binary a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
// The counting allocator needs `unsafe impl GlobalAlloc`; it forwards to `System` unchanged.
#![allow(unsafe_code)]

mod alloc_meter;
#[cfg(feature = "async-io")]
mod async_frames;
mod bomb;
mod certificates;
mod frames;
mod model;
mod roundtrip;
#[cfg(feature = "transport")]
mod transport;
#[cfg(feature = "transport")]
mod transport_abuse;
#[cfg(feature = "transport")]
mod transport_interop;
#[cfg(feature = "transport")]
mod transport_metrics;
#[cfg(feature = "sim")]
mod transport_sim;
#[cfg(feature = "transport")]
mod transport_support;

#[global_allocator]
static ALLOCATOR: alloc_meter::CountingAllocator = alloc_meter::CountingAllocator;
