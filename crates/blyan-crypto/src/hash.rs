//! SHA-256 and the 32-byte [`Hash`] it produces.

use core::fmt;
use core::str::FromStr;

use sha2::Digest as _;

use crate::byte_serde::impl_byte_serde;
use crate::hex::{self, ParseError};

/// A SHA-256 digest: block hashes, tx hashes, Merkle roots.
///
/// Shown (`Display`, `FromStr`, human-readable serde) as 64 lowercase hex characters; a
/// binary serde format (MsgPack) carries the 32 bytes as `bin`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Hash([u8; 32]);

impl Hash {
    /// Length of a hash in bytes.
    pub const LEN: usize = 32;

    /// The all-zero hash (the parent of a genesis block, an unset root).
    pub const ZERO: Hash = Hash([0u8; 32]);

    /// Wraps 32 raw bytes.
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
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write_hex(f, &self.0)
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({self})")
    }
}

impl FromStr for Hash {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex::parse_hex(s).map(Self)
    }
}

impl_byte_serde!(Hash, 32, |bytes| Ok::<_, ParseError>(Hash(bytes)));

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> Hash {
    Hash(sha2::Sha256::digest(data).into())
}

/// Incremental SHA-256, for data that arrives in pieces.
///
/// ```
/// use blyan_crypto::{sha256, Sha256Hasher};
/// let mut hasher = Sha256Hasher::new();
/// hasher.update(b"ab");
/// hasher.update(b"c");
/// assert_eq!(hasher.finalize(), sha256(b"abc"));
/// ```
#[derive(Clone, Default)]
pub struct Sha256Hasher(sha2::Sha256);

impl Sha256Hasher {
    /// A hasher that has seen no data.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `data` to the hash.
    pub fn update(&mut self, data: &[u8]) -> &mut Self {
        self.0.update(data);
        self
    }

    /// The digest of everything fed so far.
    pub fn finalize(self) -> Hash {
        Hash(self.0.finalize().into())
    }
}

impl fmt::Debug for Sha256Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sha256Hasher")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(s: &str) -> Hash {
        s.parse().unwrap()
    }

    /// NIST FIPS 180-2 / CAVP SHA-256 known answers.
    #[test]
    fn nist_vectors() {
        assert_eq!(
            sha256(b"abc"),
            h("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
        assert_eq!(
            sha256(b""),
            h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        );
        assert_eq!(
            sha256(b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            h("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        );
        let mut hasher = Sha256Hasher::new();
        let chunk = [b'a'; 1000];
        for _ in 0..1000 {
            hasher.update(&chunk);
        }
        assert_eq!(
            hasher.finalize(),
            h("cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        );
    }

    #[test]
    fn text_round_trip() {
        let hash = sha256(b"blyan");
        assert_eq!(hash.to_string().len(), 64);
        assert_eq!(h(&hash.to_string()), hash);
        assert_eq!(Hash::ZERO.to_string(), "0".repeat(64));
    }
}
