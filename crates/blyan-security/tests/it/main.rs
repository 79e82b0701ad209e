//! Integration tests of blyan-security, on simulated time.

// Helpers outside `#[test]` functions are test code too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod bans;
mod bounds;
mod connections;
mod messages;
mod model;
mod persistence;

use std::net::IpAddr;
use std::time::Duration;

use blyan_crypto::PeerId;
use blyan_security::{Direction, Now, SecurityConfig, SecurityManager};

/// Wall-clock time at the simulated start.
pub(crate) const T0_UNIX_MS: u64 = 1_700_000_000_000;

pub(crate) fn start() -> Now {
    Now::new(Duration::from_secs(1), T0_UNIX_MS)
}

pub(crate) fn peer(i: u32) -> PeerId {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    b[31] = 0xa5;
    PeerId::from_bytes(b)
}

pub(crate) fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

pub(crate) fn manager(config: SecurityConfig) -> SecurityManager {
    SecurityManager::new(config).unwrap()
}

/// Admits `peer` from `addr` as an inbound connection; the test fails if it is refused.
pub(crate) fn admit(m: &mut SecurityManager, now: Now, peer: PeerId, addr: IpAddr) {
    if let Err(reject) = m.check_connection(now, peer, addr, Direction::Inbound) {
        panic!("{peer} from {addr} was refused: {reject:?}");
    }
}

pub(crate) fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}
