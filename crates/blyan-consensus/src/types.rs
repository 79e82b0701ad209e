//! Blocks, headers and transactions: the values that travel on the wire and sit in the
//! database, with their canonical hashes.
//!
//! Hashes are SHA-256 of the canonical MsgPack encoding (`blyan_wire::to_canonical_bytes`:
//! structs as arrays in field order, bytes as `bin`) of the *unsigned* value: a header
//! without the producer's signature, a transaction without the sender's. The signature is
//! over that hash, so it can never be part of it.

use blyan_crypto::{
    Address, Hash, KeyPair, MerkleTree, PublicKey, Signature, sha256, sign_block, sign_tx,
};
use blyan_wire::{CodecError, to_canonical_bytes};
use serde::{Deserialize, Serialize};

/// The only block format this code produces and accepts.
pub const BLOCK_VERSION: u32 = 1;

/// A block header: everything the producer signs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Header {
    /// Format version, [`BLOCK_VERSION`].
    pub version: u32,
    /// The chain this block belongs to (also bound into every signature).
    pub chain_id: u32,
    /// Distance from genesis (genesis is 0).
    pub height: u64,
    /// The slot the block was produced in; strictly increasing along a chain.
    pub slot: u64,
    /// Production time, milliseconds since the Unix epoch; inside the slot.
    pub timestamp_ms: u64,
    /// Hash of the parent header. For the genesis block: the hash of the genesis document,
    /// so two networks with different genesis settings never share a block hash.
    pub parent_hash: Hash,
    /// Merkle root ([`MerkleTree`]) over the hashes of the block's transactions, in order.
    pub tx_root: Hash,
    /// Root of the account state after applying this block's transactions.
    pub state_root: Hash,
    /// The validator that produced and signed the block.
    pub producer: PublicKey,
}

impl Header {
    /// The block hash: SHA-256 of the canonical encoding of this header.
    pub fn hash(&self) -> Hash {
        hash_canonical(self)
    }
}

/// A block: a signed header and its transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: Header,
    /// The producer's signature over the block hash (domain `block`).
    pub signature: Signature,
    /// The transactions, applied in this order.
    pub txs: Vec<SignedTransaction>,
}

impl Block {
    /// Signs `header` with `producer` and assembles the block. The caller fills `tx_root`
    /// and `state_root` (see [`tx_root`]); the block builder does all of it.
    pub fn sign(header: Header, txs: Vec<SignedTransaction>, producer: &KeyPair) -> Self {
        let signature = sign_block(producer, header.chain_id, &header.hash());
        Self {
            header,
            signature,
            txs,
        }
    }

    /// The block hash (the header's hash).
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }

    /// Height of the block.
    pub fn height(&self) -> u64 {
        self.header.height
    }

    /// The hashes of the transactions, in block order.
    pub fn tx_hashes(&self) -> Vec<Hash> {
        self.txs.iter().map(SignedTransaction::hash).collect()
    }

    /// Size of the canonical encoding in bytes (what the block size limit counts).
    pub fn encoded_len(&self) -> Result<usize, CodecError> {
        to_canonical_bytes(self).map(|bytes| bytes.len())
    }
}

/// A transfer of `amount` from the account of `from` to `to`, paying `fee` to the producer.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain the transaction is for (also bound into the signature).
    pub chain_id: u32,
    /// The sending account's key; the account is `from.address()`.
    pub from: PublicKey,
    /// The receiving account.
    pub to: Address,
    /// Amount moved from `from` to `to`.
    pub amount: u64,
    /// Amount paid by `from` to the block producer.
    pub fee: u64,
    /// Must equal the sender's account nonce; the account nonce then increases by one.
    pub nonce: u64,
    /// Opaque payload, at most `ConsensusParams::max_tx_data_bytes` bytes.
    #[serde(with = "serde_bytes")]
    pub data: Vec<u8>,
}

impl Transaction {
    /// The transaction hash: SHA-256 of the canonical encoding (no signature).
    pub fn hash(&self) -> Hash {
        hash_canonical(self)
    }

    /// The sending account.
    pub fn sender(&self) -> Address {
        self.from.address()
    }

    /// Signs the transaction with the sender's key. The key should be `from`'s; a
    /// different key yields a transaction that fails verification.
    pub fn sign(self, key: &KeyPair) -> SignedTransaction {
        let signature = sign_tx(key, self.chain_id, &self.hash());
        SignedTransaction {
            tx: self,
            signature,
        }
    }
}

/// A transaction with its sender's signature (domain `tx`) over the transaction hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// `from`'s signature over `tx.hash()`.
    pub signature: Signature,
}

impl SignedTransaction {
    /// The transaction hash (the signature is not part of it).
    pub fn hash(&self) -> Hash {
        self.tx.hash()
    }

    /// Size of the canonical encoding in bytes (what the mempool and block limits count).
    pub fn encoded_len(&self) -> Result<usize, CodecError> {
        to_canonical_bytes(self).map(|bytes| bytes.len())
    }
}

/// The `tx_root` of a block with transactions of these hashes: the [`MerkleTree`] root, or
/// `blyan_crypto::empty_root()` for none.
pub fn tx_root(tx_hashes: &[Hash]) -> Hash {
    // More than 2^32 leaves cannot be built; no block comes near (the count limit is
    // checked first), and the empty root then makes the tx_root check fail.
    MerkleTree::from_items(tx_hashes)
        .map(|tree| tree.root())
        .unwrap_or(Hash::ZERO)
}

/// SHA-256 of a value's canonical encoding.
///
/// Encoding a plain struct of integers, keys and bytes into a `Vec` cannot fail; if a future
/// type made it fail, the all-zero hash is returned, which matches no real block or tx.
pub(crate) fn hash_canonical<T: Serialize + ?Sized>(value: &T) -> Hash {
    match to_canonical_bytes(value) {
        Ok(bytes) => sha256(&bytes),
        Err(_) => Hash::ZERO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::{verify_block_signature, verify_tx_signature};
    use blyan_wire::from_canonical_bytes;

    fn key(n: u8) -> KeyPair {
        KeyPair::from_seed(&[n; 32])
    }

    fn tx(n: u64) -> Transaction {
        Transaction {
            chain_id: 7,
            from: key(1).public_key(),
            to: key(2).address(),
            amount: 10 + n,
            fee: 1,
            nonce: n,
            data: vec![1, 2, 3],
        }
    }

    #[test]
    fn tx_hash_excludes_signature_and_signature_verifies() {
        let signed = tx(0).sign(&key(1));
        assert_eq!(signed.hash(), tx(0).hash());
        assert_eq!(
            verify_tx_signature(&key(1).public_key(), 7, &signed.hash(), &signed.signature),
            Ok(())
        );
        assert_ne!(tx(0).hash(), tx(1).hash());
    }

    #[test]
    fn block_round_trips_and_hash_is_header_hash() {
        let txs = vec![tx(0).sign(&key(1)), tx(1).sign(&key(1))];
        let header = Header {
            version: BLOCK_VERSION,
            chain_id: 7,
            height: 1,
            slot: 3,
            timestamp_ms: 1_000,
            parent_hash: sha256(b"parent"),
            tx_root: tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>()),
            state_root: Hash::ZERO,
            producer: key(3).public_key(),
        };
        let block = Block::sign(header.clone(), txs, &key(3));
        assert_eq!(block.hash(), header.hash());
        assert_eq!(
            verify_block_signature(&key(3).public_key(), 7, &block.hash(), &block.signature),
            Ok(())
        );
        let bytes = to_canonical_bytes(&block).unwrap();
        assert_eq!(block.encoded_len().unwrap(), bytes.len());
        let back: Block = from_canonical_bytes(&bytes).unwrap();
        assert_eq!(back, block);
        assert_eq!(back.hash(), block.hash());
    }

    #[test]
    fn every_header_field_changes_the_hash() {
        let base = Header {
            version: 1,
            chain_id: 1,
            height: 1,
            slot: 1,
            timestamp_ms: 1,
            parent_hash: Hash::ZERO,
            tx_root: Hash::ZERO,
            state_root: Hash::ZERO,
            producer: key(1).public_key(),
        };
        let variants: Vec<Header> = vec![
            Header {
                version: 2,
                ..base.clone()
            },
            Header {
                chain_id: 2,
                ..base.clone()
            },
            Header {
                height: 2,
                ..base.clone()
            },
            Header {
                slot: 2,
                ..base.clone()
            },
            Header {
                timestamp_ms: 2,
                ..base.clone()
            },
            Header {
                parent_hash: sha256(b"p"),
                ..base.clone()
            },
            Header {
                tx_root: sha256(b"t"),
                ..base.clone()
            },
            Header {
                state_root: sha256(b"s"),
                ..base.clone()
            },
            Header {
                producer: key(2).public_key(),
                ..base.clone()
            },
        ];
        for v in variants {
            assert_ne!(v.hash(), base.hash(), "{v:?}");
        }
    }

    #[test]
    fn tx_root_of_nothing_is_the_empty_root() {
        assert_eq!(tx_root(&[]), blyan_crypto::empty_root());
    }
}
