//! Ed25519 signatures and the domain helpers for blocks and transactions.

use core::fmt;
use core::str::FromStr;

use crate::byte_serde::impl_byte_serde;
use crate::domain::Domain;
use crate::hash::Hash;
use crate::hex::{self, ParseError};
use crate::keys::{KeyPair, PublicKey};

/// A 64-byte Ed25519 signature `R || S`.
///
/// Any 64 bytes are accepted here; whether they are a valid signature is decided by
/// verification. A binary serde format carries the 64 bytes as `bin`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature([u8; 64]);

impl Signature {
    /// Length of a signature in bytes.
    pub const LEN: usize = 64;

    /// Wraps 64 raw bytes.
    pub const fn from_bytes(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }

    /// The raw 64 bytes.
    pub const fn as_bytes(&self) -> &[u8; 64] {
        &self.0
    }

    /// The raw 64 bytes, by value.
    pub const fn to_bytes(self) -> [u8; 64] {
        self.0
    }

    /// The encoded commitment point `R` (first half).
    pub(crate) fn r_bytes(&self) -> [u8; 32] {
        let mut r = [0u8; 32];
        r.copy_from_slice(&self.0[..32]);
        r
    }

    /// The encoded scalar `S` (second half).
    pub(crate) fn s_bytes(&self) -> [u8; 32] {
        let mut s = [0u8; 32];
        s.copy_from_slice(&self.0[32..]);
        s
    }
}

impl From<[u8; 64]> for Signature {
    fn from(bytes: [u8; 64]) -> Self {
        Self(bytes)
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write_hex(f, &self.0)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        hex::parse_hex(s).map(Self)
    }
}

impl_byte_serde!(Signature, 64, |bytes| Ok::<_, ParseError>(Signature(bytes)));

/// Why a signature was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// `S` is not reduced modulo the group order ℓ (e.g. `S + ℓ`, a malleated copy).
    #[error("signature scalar S is not canonical (S >= l)")]
    NonCanonicalS,
    /// `R` is not canonically encoded (y >= p, or x = 0 with the sign bit set).
    #[error("signature point R is not canonically encoded")]
    NonCanonicalR,
    /// `R` does not decode to a point on the curve.
    #[error("signature point R is not on the curve")]
    RNotOnCurve,
    /// `R` has small order.
    #[error("signature point R has small order")]
    SmallOrderR,
    /// Well formed, but the verification equation does not hold: wrong key, message,
    /// domain or chain.
    #[error("signature does not match the key and message")]
    Mismatch,
}

/// Signs a block hash (domain [`Domain::Block`]) as the block's producer.
pub fn sign_block(key: &KeyPair, chain_id: u32, block_hash: &Hash) -> Signature {
    key.sign(Domain::Block, chain_id, block_hash.as_bytes())
}

/// Checks a producer's signature over a block hash (domain [`Domain::Block`]).
pub fn verify_block_signature(
    producer: &PublicKey,
    chain_id: u32,
    block_hash: &Hash,
    signature: &Signature,
) -> Result<(), SignatureError> {
    producer.verify(Domain::Block, chain_id, block_hash.as_bytes(), signature)
}

/// Signs a transaction hash (domain [`Domain::Tx`]) as the sending account.
pub fn sign_tx(key: &KeyPair, chain_id: u32, tx_hash: &Hash) -> Signature {
    key.sign(Domain::Tx, chain_id, tx_hash.as_bytes())
}

/// Checks a sender's signature over a transaction hash (domain [`Domain::Tx`]).
pub fn verify_tx_signature(
    sender: &PublicKey,
    chain_id: u32,
    tx_hash: &Hash,
    signature: &Signature,
) -> Result<(), SignatureError> {
    sender.verify(Domain::Tx, chain_id, tx_hash.as_bytes(), signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256;

    #[test]
    fn domains_and_chains_do_not_cross() {
        let key = KeyPair::from_seed(&[1u8; 32]);
        let pk = key.public_key();
        let payload = b"same bytes everywhere";
        for signed_in in Domain::ALL {
            for chain in [0u32, 1, 0x0100_0000] {
                let sig = key.sign(signed_in, chain, payload);
                for checked_in in Domain::ALL {
                    for checked_chain in [0u32, 1, 0x0100_0000] {
                        let result = pk.verify(checked_in, checked_chain, payload, &sig);
                        if checked_in == signed_in && checked_chain == chain {
                            assert_eq!(result, Ok(()));
                        } else {
                            assert_eq!(result, Err(SignatureError::Mismatch));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn block_and_tx_helpers() {
        let key = KeyPair::from_seed(&[2u8; 32]);
        let other = KeyPair::from_seed(&[3u8; 32]).public_key();
        let hash = sha256(b"header");
        let sig = sign_block(&key, 9, &hash);
        assert_eq!(
            verify_block_signature(&key.public_key(), 9, &hash, &sig),
            Ok(())
        );
        assert!(verify_block_signature(&other, 9, &hash, &sig).is_err());
        assert!(verify_block_signature(&key.public_key(), 10, &hash, &sig).is_err());
        assert!(verify_tx_signature(&key.public_key(), 9, &hash, &sig).is_err());
        let tx_sig = sign_tx(&key, 9, &hash);
        assert_eq!(
            verify_tx_signature(&key.public_key(), 9, &hash, &tx_sig),
            Ok(())
        );
        assert!(verify_block_signature(&key.public_key(), 9, &hash, &tx_sig).is_err());
    }
}
