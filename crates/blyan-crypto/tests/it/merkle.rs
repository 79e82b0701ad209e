//! Merkle roots against an independent computation, and inclusion proofs.

use blyan_crypto::{Hash, MerkleError, MerkleProof, MerkleTree, empty_root, merkle_root, sha256};
use proptest::prelude::*;

/// The tree rule written out plainly: prefixed leaf and node hashes, odd node promoted.
fn reference_root(items: &[Hash]) -> Hash {
    if items.is_empty() {
        return sha256(b"blyan/v1/empty");
    }
    let mut layer: Vec<Hash> = items
        .iter()
        .map(|item| {
            let mut data = vec![0x00];
            data.extend_from_slice(item.as_bytes());
            sha256(&data)
        })
        .collect();
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut data = vec![0x01];
                    data.extend_from_slice(left.as_bytes());
                    data.extend_from_slice(right.as_bytes());
                    sha256(&data)
                }
                [odd] => *odd,
                _ => unreachable!(),
            })
            .collect();
    }
    layer[0]
}

fn items(n: usize) -> Vec<Hash> {
    (0..n).map(|i| sha256(&(i as u64).to_be_bytes())).collect()
}

#[test]
fn duplicated_last_item_changes_the_root() {
    let [a, b, c] = [sha256(b"a"), sha256(b"b"), sha256(b"c")];
    let three = MerkleTree::from_items(&[a, b, c]).unwrap().root();
    let four = MerkleTree::from_items(&[a, b, c, c]).unwrap().root();
    assert_ne!(three, four);
    assert_eq!(three, reference_root(&[a, b, c]));
    assert_eq!(four, reference_root(&[a, b, c, c]));
}

#[test]
fn empty_and_single() {
    let empty = MerkleTree::from_items(&[]).unwrap();
    assert!(empty.is_empty());
    assert_eq!(empty.root(), empty_root());
    assert_eq!(empty.root(), sha256(b"blyan/v1/empty"));
    assert_eq!(merkle_root(&[]), empty.root());
    assert_eq!(
        empty.proof(0),
        Err(MerkleError::IndexOutOfRange { index: 0, len: 0 })
    );

    let a = sha256(b"a");
    let one = MerkleTree::from_items(&[a]).unwrap();
    assert_eq!(one.root(), reference_root(&[a]));
    assert_ne!(one.root(), a, "a leaf is hashed with its prefix");
    let proof = one.proof(0).unwrap();
    assert!(proof.siblings().is_empty());
    assert_eq!(proof.verify(&one.root(), 0, &a, 1), Ok(()));
}

#[test]
fn malformed_proofs_are_typed_errors() {
    let items = items(5);
    let tree = MerkleTree::from_items(&items).unwrap();
    let root = tree.root();
    let proof = tree.proof(1).unwrap();
    assert_eq!(
        proof.verify(&root, 1, &items[1], 0),
        Err(MerkleError::EmptyTree)
    );
    assert_eq!(
        proof.verify(&root, 5, &items[1], 5),
        Err(MerkleError::IndexOutOfRange { index: 5, len: 5 })
    );
    let mut long = proof.siblings().to_vec();
    long.push(Hash::ZERO);
    assert!(matches!(
        MerkleProof::from_siblings(long).verify(&root, 1, &items[1], 5),
        Err(MerkleError::WrongProofLength { .. })
    ));
    assert!(matches!(
        proof.verify(&root, 1, &items[1], usize::MAX),
        Err(MerkleError::TooManyLeaves { .. })
    ));
}

proptest! {
    #[test]
    fn roots_match_and_every_proof_verifies(n in 1usize..80, tamper in any::<u8>()) {
        let items = items(n);
        let tree = MerkleTree::from_items(&items).unwrap();
        let root = tree.root();
        prop_assert_eq!(root, reference_root(&items));
        prop_assert_eq!(merkle_root(&items), root);
        for (index, item) in items.iter().enumerate() {
            let proof = tree.proof(index).unwrap();
            prop_assert_eq!(proof.verify(&root, index, item, n), Ok(()));

            // A different item, index, root or sibling fails. (The size is not committed by
            // the root: callers take it from the header that carries the root.)
            let other = sha256(&[tamper]);
            prop_assert!(proof.verify(&root, index, &other, n).is_err());
            if n > 1 {
                let wrong_index = (index + 1) % n;
                prop_assert!(proof.verify(&root, wrong_index, item, n).is_err());
            }
            prop_assert!(proof.verify(&sha256(b"other"), index, item, n).is_err());
            if !proof.siblings().is_empty() {
                let mut siblings = proof.siblings().to_vec();
                let at = usize::from(tamper) % siblings.len();
                let mut bytes = siblings[at].to_bytes();
                bytes[usize::from(tamper) % 32] ^= 1;
                siblings[at] = Hash::from_bytes(bytes);
                prop_assert!(MerkleProof::from_siblings(siblings).verify(&root, index, item, n).is_err());
            }
        }
    }
}
