//! Account addresses: the first 20 bytes of SHA-256 of a public key.

use core::fmt;
use core::str::FromStr;

use crate::byte_serde::impl_byte_serde;
use crate::hash::sha256;
use crate::hex::{self, ParseError};
use crate::keys::PublicKey;

/// An account address: the first 20 bytes of SHA-256(public key).
///
/// Shown as 40 lowercase hex characters (no `0x` prefix); `FromStr` also accepts upper case.
/// A binary serde format carries the 20 bytes as `bin`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address([u8; 20]);

impl Address {
    /// Length of an address in bytes.
    pub const LEN: usize = 20;

    /// Wraps 20 raw bytes (an address read from storage, the wire or a user).
    pub const fn from_bytes(bytes: [u8; 20]) -> Self {
        Self(bytes)
    }

    /// The raw 20 bytes.
    pub const fn as_bytes(&self) -> &[u8; 20] {
        &self.0
    }

    /// The raw 20 bytes, by value.
    pub const fn to_bytes(self) -> [u8; 20] {
        self.0
    }

    /// The address of the account controlled by `public_key`.
    pub fn from_public_key(public_key: &PublicKey) -> Self {
        let digest = sha256(public_key.as_bytes()).to_bytes();
        let mut out = [0u8; 20];
        for (o, d) in out.iter_mut().zip(digest) {
            *o = d;
        }
        Self(out)
    }
}

impl From<&PublicKey> for Address {
    fn from(public_key: &PublicKey) -> Self {
        Self::from_public_key(public_key)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write_hex(f, &self.0)
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Address({self})")
    }
}

impl FromStr for Address {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex::parse_hex(s).map(Self)
    }
}

impl_byte_serde!(Address, 20, |bytes| Ok::<_, ParseError>(Address(bytes)));
