//! Peer identities: SHA-256 of an Ed25519 public key.

use core::fmt;
use core::str::FromStr;

use crate::byte_serde::impl_byte_serde;
use crate::hash::sha256;
use crate::hex::{self, ParseError};
use crate::keys::PublicKey;

/// A node's identity: SHA-256 of its Ed25519 public key (32 bytes).
///
/// It is also the node's Kademlia id: XOR distance is taken on these 32 bytes, so the
/// id space is 256 bits wide.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId([u8; 32]);

impl PeerId {
    /// Length of a peer id in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 raw bytes. The caller vouches that they are a SHA-256 of a public key;
    /// use this for ids read from storage or the wire.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The raw 32 bytes, by value.
    pub const fn to_bytes(self) -> [u8; 32] {
        self.0
    }

    /// The id of the node holding `public_key`: SHA-256 of its 32 encoded bytes.
    pub fn from_public_key(public_key: &PublicKey) -> Self {
        Self(sha256(public_key.as_bytes()).to_bytes())
    }
}

impl From<&PublicKey> for PeerId {
    fn from(public_key: &PublicKey) -> Self {
        Self::from_public_key(public_key)
    }
}

impl FromStr for PeerId {
    type Err = ParseError;

    /// Parses the 64 hex characters that `Display` writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex::parse_hex(s).map(Self)
    }
}

impl_byte_serde!(PeerId, 32, |bytes| Ok::<_, ParseError>(PeerId(bytes)));

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write_hex(f, &self.0)
    }
}

impl fmt::Debug for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Eight hex characters are enough to tell peers apart in logs.
        write!(f, "PeerId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "…)")
    }
}
