//! Cryptography for the Blyan node: Ed25519 identities and domain-separated signatures,
//! SHA-256 hashes, Merkle trees and the encrypted node key file. It depends on no other Blyan
//! crate; every other crate builds on it.
//!
//! # Main types
//!
//! - [`KeyPair`] signs, [`PublicKey`] verifies. A [`Signature`] is always made in a
//!   [`Domain`] (`block`, `tx`, `gossip`, `record`) for a chain id: the signed bytes are
//!   `"blyan/v1/" ‖ domain ‖ 0x00 ‖ chain_id (u32 BE) ‖ payload`, so a signature never
//!   verifies in another domain or on another chain. [`sign_block`] /
//!   [`verify_block_signature`] and [`sign_tx`] / [`verify_tx_signature`] sign 32-byte hashes.
//! - [`PeerId`] = SHA-256(public key), the node and Kademlia id; [`Address`] = its first
//!   20 bytes, the account id, shown as 40 lowercase hex characters.
//! - [`Hash`](struct@Hash), [`sha256`], [`Sha256Hasher`]; [`MerkleTree`] and [`MerkleProof`] (leaf and node
//!   hashes prefixed 0x00 / 0x01, odd nodes promoted, empty root SHA-256("blyan/v1/empty")).
//! - [`KeyStore`]: the node key encrypted at rest (Argon2id + XChaCha20-Poly1305), written
//!   atomically with mode 0600; a wrong passphrase or a damaged file is a typed error and never
//!   a new identity.
//!
//! # One validity rule
//!
//! A signature is valid iff the key and `R` are canonically encoded, on the curve and not of
//! small order, `S < ℓ`, and the cofactored equation `[8]([S]B − R − [k]A) = 0` holds. Every
//! path applies this rule: [`PublicKey::verify`] and [`verify_batch`], which is about twice
//! as fast per signature and returns exactly the same verdicts (a disagreement would split
//! consensus). The tests check both paths against small-order points, non-canonical
//! encodings, `S + ℓ` and mixed-order keys. Cofactored rather than `verify_strict`'s
//! cofactorless equation: only the cofactored one lets a batch agree exactly with the single
//! check (see `docs/performance.md`); honest signatures verify under both.
//!
//! # Encodings
//!
//! `Display`/`FromStr` and human-readable serde use lowercase hex; binary serde (the MsgPack
//! wire codec) uses `bin`. Deserializing checks lengths (and key validity) and fails with an
//! error, never a panic.
//!
//! # Example
//!
//! ```
//! use blyan_crypto::{sha256, verify_batch, Address, BatchItem, Domain, KeyPair, PeerId};
//!
//! let key = KeyPair::generate()?;
//! let public = key.public_key();
//! let sig = key.sign(Domain::Gossip, 1, b"hello");
//! public.verify(Domain::Gossip, 1, b"hello", &sig)?;
//! assert!(public.verify(Domain::Record, 1, b"hello", &sig).is_err());
//! assert!(public.verify(Domain::Gossip, 2, b"hello", &sig).is_err());
//!
//! let item = BatchItem { public_key: &public, domain: Domain::Gossip, chain_id: 1,
//!                        message: b"hello", signature: &sig };
//! verify_batch(&[item, item])?;
//!
//! assert_eq!(PeerId::from_public_key(&public).to_bytes(), sha256(public.as_bytes()).to_bytes());
//! let address: Address = public.address().to_string().parse()?;
//! assert_eq!(address, key.address());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod address;
mod batch;
mod byte_serde;
mod domain;
mod hash;
#[cfg(feature = "hazmat")]
pub mod hazmat;
mod hex;
mod key_store;
mod keys;
mod merkle;
mod peer_id;
mod signature;
mod verify;

pub use address::Address;
pub use batch::{BatchItem, BatchVerifyError, verify_batch};
pub use domain::Domain;
pub use hash::{Hash, Sha256Hasher, sha256};
pub use hex::ParseError;
pub use key_store::{KeyStore, KeyStoreError, KeyStoreParams};
pub use keys::{KeyPair, PublicKey, PublicKeyError, PublicKeyParseError, RandomnessError};
pub use merkle::{
    MAX_LEAVES, MAX_PROOF_LEN, MerkleError, MerkleProof, MerkleTree, empty_root, merkle_root,
};
pub use peer_id::PeerId;
pub use signature::{
    Signature, SignatureError, sign_block, sign_tx, verify_block_signature, verify_tx_signature,
};
