//! What sync needs from the local chain: reads, the header and body checks, the block
//! locator, and the answers we serve to peers. [`SyncChain`] is implemented for
//! [`ChainManager`] (the node) and by small in-memory chains in tests and simulations.

use blyan_consensus::{Block, BlockError, ChainManager, Header};
use blyan_crypto::Hash;
use blyan_security::PeerEvent;

use crate::bounded_vec::BoundedVec;
use crate::gossip::Validation;
use crate::message::{
    BlockBody, MAX_BODIES_PER_REQUEST, MAX_HEADERS_PER_RESPONSE, MAX_LOCATOR_LEN, SignedHeader,
};

/// The local chain as sync sees it.
///
/// Reads return `None` for anything not stored; an implementation over a database maps a
/// read failure to `None` as well (sync then asks again later: it never penalizes a peer
/// for a header whose parent we could not read, because such a header must still link
/// to one we hold).
pub trait SyncChain {
    /// Height and hash of the canonical tip.
    fn best(&self) -> (u64, Hash);

    /// The canonical block hash at `height`.
    fn canonical_hash(&self, height: u64) -> Option<Hash>;

    /// The header of a stored block (canonical or side).
    fn header(&self, hash: &Hash) -> Option<Header>;

    /// A stored block (canonical or side).
    fn block(&self, hash: &Hash) -> Option<Block>;

    /// Checks a header against its parent and the local clock, with its signature
    /// (producer of the slot, timestamps, height, `BlockValidator::verify_signed_header`).
    fn verify_header(
        &self,
        header: &SignedHeader,
        parent: &Header,
        now_ms: u64,
    ) -> Result<(), BlockError>;

    /// Checks that a body is the one its (already checked) header commits to
    /// (`BlockValidator::verify_tx_root`: transaction count and `tx_root`). Signatures are
    /// not verified here: the importer verifies every block once, off the chain lock,
    /// before the chain imports it.
    fn check_body(&self, block: &Block) -> Result<(), BlockError>;
}

/// Hashes of the canonical chain from the tip back to genesis: the 10 newest one by one,
/// then doubling the step, always ending with genesis. At most [`MAX_LOCATOR_LEN`].
/// A server walks it and starts after the first hash on its own canonical chain, which
/// is the fork point within a factor of two of the distance.
pub fn block_locator(chain: &impl SyncChain) -> Vec<Hash> {
    let (best, _) = chain.best();
    let mut heights = Vec::new();
    let mut height = best;
    let mut step = 1u64;
    while height > 0 && heights.len() < MAX_LOCATOR_LEN - 1 {
        heights.push(height);
        if heights.len() >= 10 {
            step = step.saturating_mul(2);
        }
        height = height.saturating_sub(step);
    }
    heights.push(0);
    heights
        .into_iter()
        .filter_map(|h| chain.canonical_hash(h))
        .collect()
}

/// The gossip router's relay rule for a block, the part that needs the chain: the block
/// must check out against its parent (header rules, producer signature) and its body must
/// be the one the header commits to. Known blocks and blocks whose parent we lack (ask for
/// it with `GetBlock`) or whose slot is ahead of our clock are not relayed and not blamed;
/// a block that breaks a rule is rejected (a bad producer signature bans the sender, since
/// no honest node relays one). The driver then verifies the transactions' signatures
/// ([`verdict_of`] on `BlockValidator::pre_verify`) without the chain, relays only if they
/// pass, and imports the verified block; the chain checks the state.
pub fn check_gossip_block(chain: &impl SyncChain, block: &Block, now_ms: u64) -> Validation {
    let hash = block.hash();
    if chain.header(&hash).is_some() {
        return Validation::Ignore;
    }
    let Some(parent) = chain.header(&block.header.parent_hash) else {
        return Validation::Ignore;
    };
    let signed = SignedHeader {
        header: block.header.clone(),
        signature: block.signature,
    };
    verdict_of(
        chain
            .verify_header(&signed, &parent, now_ms)
            .and_then(|()| chain.check_body(block)),
    )
}

/// The gossip verdict of a block check: accept when it passed, ignore a failure that does
/// not make the block invalid (unknown parent, a slot ahead of our clock), reject the rest
/// (a bad producer signature as [`PeerEvent::InvalidSignature`]).
pub fn verdict_of(check: Result<(), BlockError>) -> Validation {
    match check {
        Ok(()) => Validation::Accept,
        Err(error) if !error.is_invalid_block() => Validation::Ignore,
        Err(BlockError::BadSignature(_)) => Validation::Reject(PeerEvent::InvalidSignature),
        Err(_) => Validation::Reject(PeerEvent::InvalidBlock),
    }
}

/// The answer to `GetHeaders`: canonical headers after the first locator hash that is on
/// our canonical chain (after genesis when none is), at most `max` and
/// [`MAX_HEADERS_PER_RESPONSE`].
pub fn serve_headers(
    chain: &impl SyncChain,
    locator: &[Hash],
    max: u32,
) -> BoundedVec<SignedHeader, MAX_HEADERS_PER_RESPONSE> {
    let start = locator
        .iter()
        .find_map(|hash| {
            let header = chain.header(hash)?;
            (chain.canonical_hash(header.height) == Some(*hash)).then_some(header.height)
        })
        .unwrap_or(0);
    let (best, _) = chain.best();
    let max = usize::try_from(max)
        .unwrap_or(usize::MAX)
        .min(MAX_HEADERS_PER_RESPONSE);
    let headers = (start.saturating_add(1)..=best)
        .take(max)
        .map_while(|height| {
            let hash = chain.canonical_hash(height)?;
            chain.block(&hash).map(|block| SignedHeader::of(&block))
        })
        .collect();
    BoundedVec::truncating(headers)
}

/// The answer to `GetBodies`: the bodies of a prefix of `hashes`, stopping at the first
/// block we do not have or when the next body would pass `max_bytes` (at least one body is
/// sent if we have it, so a large block always makes progress).
pub fn serve_bodies(
    chain: &impl SyncChain,
    hashes: &[Hash],
    max_bytes: usize,
) -> BoundedVec<BlockBody, MAX_BODIES_PER_REQUEST> {
    let mut bodies = Vec::new();
    let mut total = 0usize;
    for hash in hashes.iter().take(MAX_BODIES_PER_REQUEST) {
        let Some(block) = chain.block(hash) else {
            break;
        };
        let size = block.encoded_len().unwrap_or(usize::MAX);
        if !bodies.is_empty() && total.saturating_add(size) > max_bytes {
            break;
        }
        let Ok(body) = BlockBody::of(&block) else {
            break;
        };
        total = total.saturating_add(size);
        bodies.push(body);
    }
    BoundedVec::truncating(bodies)
}

/// The node's chain: reads from the store, checks with its `BlockValidator`. A storage
/// failure reads as "not stored".
impl SyncChain for ChainManager {
    fn best(&self) -> (u64, Hash) {
        let tip = self.tip();
        (tip.height, tip.hash)
    }

    fn canonical_hash(&self, height: u64) -> Option<Hash> {
        self.store().canonical_hash(height).ok().flatten()
    }

    fn header(&self, hash: &Hash) -> Option<Header> {
        self.store()
            .record(hash)
            .ok()
            .flatten()
            .map(|record| record.header)
    }

    fn block(&self, hash: &Hash) -> Option<Block> {
        self.get_block(hash).ok().flatten()
    }

    fn verify_header(
        &self,
        header: &SignedHeader,
        parent: &Header,
        now_ms: u64,
    ) -> Result<(), BlockError> {
        self.validator()
            .verify_signed_header(&header.header, &header.signature, parent, now_ms)
    }

    fn check_body(&self, block: &Block) -> Result<(), BlockError> {
        self.validator().verify_tx_root(block)
    }
}
