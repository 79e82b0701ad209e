//! Protocol ids: the byte that opens every stream and names the protocol it carries.

use std::fmt;

/// The one ALPN protocol id of this version of the transport.
pub const ALPN: &[u8] = b"blyan/1";

/// The first byte of every request and message stream: which protocol the frame belongs
/// to. Each protocol crate owns its ids and its message enum (e.g. the DHT's RPCs, the
/// p2p layer's status, sync and gossip); this crate only routes by the byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Protocol(pub u8);

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "protocol {:#04x}", self.0)
    }
}
