//! Merkle trees over item hashes (transactions, state entries), with inclusion proofs.
//!
//! Built on `rs_merkle` with our own hasher:
//!
//! - leaf = SHA-256(0x00 ‖ item hash), node = SHA-256(0x01 ‖ left ‖ right): the prefixes keep
//!   a leaf from ever being read as an inner node (second-preimage resistance);
//! - an odd node at the end of a layer is promoted unchanged, never paired with itself:
//!   duplicating it would give `[a, b, c]` and `[a, b, c, c]` the same root (CVE-2012-2459);
//! - the empty tree's root is SHA-256("blyan/v1/empty").

use serde::{Deserialize, Deserializer, Serialize};

use crate::hash::{Hash, Sha256Hasher, sha256};

/// Most leaves a tree or a proof may claim: bounds the proof length (32 hashes) that a
/// remote-supplied proof can make us process.
pub const MAX_LEAVES: usize = u32::MAX as usize;

/// Most sibling hashes in a proof: the depth of a tree of [`MAX_LEAVES`] leaves.
pub const MAX_PROOF_LEN: usize = 32;

/// Domain tag hashed for the root of an empty tree.
const EMPTY_TAG: &[u8] = b"blyan/v1/empty";

/// Why a Merkle operation failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// The index is not below the number of leaves.
    #[error("leaf index {index} out of range for {len} leaves")]
    IndexOutOfRange {
        /// The requested index.
        index: usize,
        /// Number of leaves in the tree.
        len: usize,
    },
    /// A proof cannot be checked against an empty tree.
    #[error("an empty tree has no inclusion proofs")]
    EmptyTree,
    /// More leaves than [`MAX_LEAVES`] were claimed or given.
    #[error("{len} leaves exceed the limit of {max}")]
    TooManyLeaves {
        /// Claimed number of leaves.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The proof does not have one hash per level that has a sibling.
    #[error("proof has {actual} hashes, the tree shape needs {expected}")]
    WrongProofLength {
        /// Hashes required by the tree shape.
        expected: usize,
        /// Hashes in the proof.
        actual: usize,
    },
    /// The proof, item and index lead to a different root.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
}

/// The hash function pair for `rs_merkle`: leaf and node hashing with distinct prefixes.
#[derive(Debug, Clone, Copy)]
struct BlyanMerkleHasher;

impl rs_merkle::Hasher for BlyanMerkleHasher {
    type Hash = [u8; 32];

    /// Leaf hashing: SHA-256(0x00 ‖ data).
    fn hash(data: &[u8]) -> [u8; 32] {
        let mut h = Sha256Hasher::new();
        h.update(&[0x00]).update(data);
        h.finalize().to_bytes()
    }

    fn concat_and_hash(left: &[u8; 32], right: Option<&[u8; 32]>) -> [u8; 32] {
        match right {
            Some(right) => {
                let mut h = Sha256Hasher::new();
                h.update(&[0x01]).update(left).update(right);
                h.finalize().to_bytes()
            }
            // The last node of an odd layer moves up unchanged.
            None => *left,
        }
    }
}

/// The leaf hash of an item: SHA-256(0x00 ‖ item).
fn leaf_hash(item: &Hash) -> [u8; 32] {
    <BlyanMerkleHasher as rs_merkle::Hasher>::hash(item.as_bytes())
}

/// The root of a tree with no items: SHA-256("blyan/v1/empty").
pub fn empty_root() -> Hash {
    sha256(EMPTY_TAG)
}

/// The root of the tree over `items`, without keeping the tree: the same value as
/// [`MerkleTree::root`], computed in one buffer (for validating a block's `tx_root`, where no
/// proofs are needed). The tests hold it equal to the `rs_merkle` tree and to a reference.
pub fn merkle_root(items: &[Hash]) -> Hash {
    if items.is_empty() {
        return empty_root();
    }
    let mut layer: Vec<[u8; 32]> = items.iter().map(leaf_hash).collect();
    // Each level overwrites the front of the same buffer with its parents.
    let mut len = layer.len();
    while len > 1 {
        let mut parents = 0;
        for read in (0..len).step_by(2) {
            let right = if read + 1 < len {
                layer.get(read + 1).copied()
            } else {
                None
            };
            let Some(left) = layer.get(read).copied() else {
                break;
            };
            let node =
                <BlyanMerkleHasher as rs_merkle::Hasher>::concat_and_hash(&left, right.as_ref());
            if let Some(slot) = layer.get_mut(parents) {
                *slot = node;
            }
            parents += 1;
        }
        len = parents;
    }
    layer
        .first()
        .copied()
        .map(Hash::from_bytes)
        .unwrap_or_else(empty_root)
}

/// A Merkle tree over a list of item hashes.
pub struct MerkleTree {
    inner: rs_merkle::MerkleTree<BlyanMerkleHasher>,
    len: usize,
}

impl MerkleTree {
    /// Builds the tree over `items`, in order.
    pub fn from_items(items: &[Hash]) -> Result<Self, MerkleError> {
        if items.len() > MAX_LEAVES {
            return Err(MerkleError::TooManyLeaves {
                len: items.len(),
                max: MAX_LEAVES,
            });
        }
        let leaves: Vec<[u8; 32]> = items.iter().map(leaf_hash).collect();
        Ok(Self {
            inner: rs_merkle::MerkleTree::from_leaves(&leaves),
            len: items.len(),
        })
    }

    /// The root; [`empty_root`] for a tree without items.
    pub fn root(&self) -> Hash {
        self.inner
            .root()
            .map(Hash::from_bytes)
            .unwrap_or_else(empty_root)
    }

    /// Number of items.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the tree has no items.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The inclusion proof of the item at `index`.
    pub fn proof(&self, index: usize) -> Result<MerkleProof, MerkleError> {
        if index >= self.len {
            return Err(MerkleError::IndexOutOfRange {
                index,
                len: self.len,
            });
        }
        let siblings = self
            .inner
            .proof(&[index])
            .proof_hashes()
            .iter()
            .copied()
            .map(Hash::from_bytes)
            .collect();
        Ok(MerkleProof { siblings })
    }
}

impl core::fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("len", &self.len)
            .field("root", &self.root())
            .finish()
    }
}

/// Proof that an item sits at an index of a tree with a given root and size: the sibling
/// hashes from the leaf up, skipping levels where the path node is promoted.
///
/// Serializes as a sequence of hashes (MsgPack: array of `bin`); deserializing refuses more
/// than [`MAX_PROOF_LEN`] hashes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MerkleProof {
    siblings: Vec<Hash>,
}

impl MerkleProof {
    /// A proof from its sibling hashes (leaf level first).
    pub fn from_siblings(siblings: Vec<Hash>) -> Self {
        Self { siblings }
    }

    /// The sibling hashes, leaf level first.
    pub fn siblings(&self) -> &[Hash] {
        &self.siblings
    }

    /// Checks that `item` is at `index` in a tree of `total` items with root `root`.
    pub fn verify(
        &self,
        root: &Hash,
        index: usize,
        item: &Hash,
        total: usize,
    ) -> Result<(), MerkleError> {
        if total == 0 {
            return Err(MerkleError::EmptyTree);
        }
        if total > MAX_LEAVES {
            return Err(MerkleError::TooManyLeaves {
                len: total,
                max: MAX_LEAVES,
            });
        }
        if index >= total {
            return Err(MerkleError::IndexOutOfRange { index, len: total });
        }
        let expected = proof_len(index, total);
        if self.siblings.len() != expected {
            return Err(MerkleError::WrongProofLength {
                expected,
                actual: self.siblings.len(),
            });
        }
        let hashes = self.siblings.iter().map(|h| h.to_bytes()).collect();
        let proof = rs_merkle::MerkleProof::<BlyanMerkleHasher>::new(hashes);
        match proof.root(&[index], &[leaf_hash(item)], total) {
            Ok(computed) if computed == root.to_bytes() => Ok(()),
            _ => Err(MerkleError::RootMismatch),
        }
    }
}

/// Number of siblings on the path of `index` in a tree of `total` leaves.
fn proof_len(mut index: usize, mut total: usize) -> usize {
    let mut len = 0;
    while total > 1 {
        if index ^ 1 < total {
            len += 1;
        }
        index /= 2;
        total = total.div_ceil(2);
    }
    len
}

impl<'de> Deserialize<'de> for MerkleProof {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedSiblings;

        impl<'de> serde::de::Visitor<'de> for BoundedSiblings {
            type Value = Vec<Hash>;

            fn expecting(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "at most {MAX_PROOF_LEN} hashes")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some(hash) = seq.next_element::<Hash>()? {
                    if out.len() == MAX_PROOF_LEN {
                        return Err(serde::de::Error::invalid_length(MAX_PROOF_LEN + 1, &self));
                    }
                    out.push(hash);
                }
                Ok(out)
            }
        }

        #[derive(Deserialize)]
        struct Wire {
            #[serde(deserialize_with = "deserialize_siblings")]
            siblings: Vec<Hash>,
        }

        fn deserialize_siblings<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Hash>, D::Error> {
            d.deserialize_seq(BoundedSiblings)
        }

        let wire = Wire::deserialize(deserializer)?;
        Ok(Self {
            siblings: wire.siblings,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proof_len_matches_shape() {
        assert_eq!(proof_len(0, 1), 0);
        assert_eq!(proof_len(0, 2), 1);
        assert_eq!(proof_len(2, 3), 1); // promoted at the leaf level
        assert_eq!(proof_len(0, 3), 2);
        assert_eq!(proof_len(4, 5), 1);
        assert_eq!(proof_len(7, 8), 3);
    }
}
