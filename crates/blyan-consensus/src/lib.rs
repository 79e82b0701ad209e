//! # blyan-consensus: the chain, without networking
//!
//! **Status: not built yet.** This crate holds no code today; this essay says what it
//! will hold so that the layering is visible from the first commit. Its issue is the
//! next one after the crypto and codec foundation.
//!
//! ## What it will hold
//!
//! - **Types.** `Header { version, chain_id, height, slot, timestamp_ms, parent_hash,
//!   tx_root, state_root, producer }`, `Block { header, signature, txs }`,
//!   `Transaction`/`SignedTransaction` and `Genesis`. Their canonical encoding is the
//!   MsgPack encoding of `blyan-wire` (structs as arrays, bytes as bin), so the bytes
//!   that are hashed are the bytes that travel. Block and transaction hashes exclude
//!   signatures; signatures use the `block` and `tx` domains of `blyan-crypto`.
//! - **Validation.** `BlockValidator::verify_block` checks one rule at a time, each with
//!   its own `BlockError` variant: version, chain id, height, parent, slot, producer
//!   schedule (proof of authority, round-robin slots), signature, timestamp, future-slot
//!   limit against an injected clock, size limits, every transaction, `tx_root` and
//!   `state_root`.
//! - **State machine** behind a trait, with a default account model `{balance, nonce}`
//!   whose root is a sparse Merkle tree updated in O(touched × log n), with inclusion
//!   and absence proofs.
//! - **Block tree and fork choice** (`ChainManager`): longest chain, first seen wins at
//!   equal height, reorgs bounded by `max_reorg_depth`, finality at `finality_depth`,
//!   bounded orphan and invalid-block caches, equivocation evidence.
//! - **Mempool** ordered by fee, with per-sender nonce ordering and bounded size.
//! - **Storage** in `redb`: one write transaction per block import, so a crash at any
//!   instant leaves the last committed tip.
