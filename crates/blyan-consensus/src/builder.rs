//! Block production: assemble a valid block for our slot from the mempool.

use blyan_crypto::{Hash, KeyPair};

use crate::TxError;
use crate::error::BlockError;
use crate::mempool::{Mempool, Selection};
use crate::state::{ExecError, PendingChanges, StateError, StateMachine, StateTransition};
use crate::types::{BLOCK_VERSION, Block, Header, SignedTransaction, tx_root};
use crate::validator::BlockValidator;

/// Why no block could be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BuildError {
    /// The header would break a rule (not our slot, slot not after the parent, slot not
    /// yet open by the clock, ...). Nothing to do until the next slot.
    #[error("cannot produce for this slot: {0}")]
    Header(BlockError),
    /// The state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
    /// The block could not be encoded (never for well-formed transactions).
    #[error("block cannot be encoded")]
    Unencodable,
}

/// A block ready to gossip and import, with what applying it does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltBlock {
    /// The signed block.
    pub block: Block,
    /// Its state transition on the parent state.
    pub transition: StateTransition,
    /// Pooled transactions found invalid on the parent state; the caller may remove them.
    pub invalid: Vec<Hash>,
}

/// Size of a MsgPack array header for `n` elements.
fn array_header_len(n: usize) -> usize {
    match n {
        0..16 => 1,
        16..65_536 => 3,
        _ => 5,
    }
}

/// Builds the block for `slot` on top of `parent` (whose post-state is `state`), signed by
/// `producer`, at local time `now_ms`.
///
/// Transactions come from the mempool in its order; each is executed on the pending state
/// and skipped if it fails there (stale nonce, gap, balance, overflow). The block stays
/// within `max_block_txs` and `max_block_bytes`. The timestamp is `now_ms` clamped into the
/// slot. The header passes [`BlockValidator::verify_header`] for the same `now_ms`.
pub fn build_block<S: StateMachine + ?Sized>(
    validator: &BlockValidator,
    mempool: &Mempool,
    slot: u64,
    producer: &KeyPair,
    parent: &Header,
    state: &S,
    now_ms: u64,
) -> Result<BuiltBlock, BuildError> {
    let genesis = validator.genesis();
    let params = validator.params();
    let slot_start = genesis
        .slot_start_ms(slot)
        .ok_or(BuildError::Header(BlockError::SlotOutOfRange { slot }))?;
    let slot_last = slot_start.saturating_add(genesis.slot_duration_ms.saturating_sub(1));
    let mut header = Header {
        version: BLOCK_VERSION,
        chain_id: genesis.chain_id,
        height: parent.height.saturating_add(1),
        slot,
        timestamp_ms: now_ms.clamp(slot_start, slot_last),
        parent_hash: parent.hash(),
        tx_root: Hash::ZERO,
        state_root: Hash::ZERO,
        producer: producer.public_key(),
    };
    validator
        .verify_header(&header, parent, now_ms)
        .map_err(BuildError::Header)?;

    let empty = Block::sign(header.clone(), Vec::new(), producer);
    let base_len = empty
        .encoded_len()
        .map_err(|_| BuildError::Unencodable)?
        .saturating_sub(array_header_len(0));
    let producer_address = producer.address();
    let mut pending = PendingChanges::new();
    let mut txs: Vec<SignedTransaction> = Vec::new();
    let mut tx_bytes = 0usize;
    let mut invalid = Vec::new();
    let mut failure = None;
    mempool.select(|entry| {
        if txs.len() >= params.max_block_txs {
            return Selection::Stop;
        }
        let size = base_len + array_header_len(txs.len() + 1) + tx_bytes + entry.size;
        if size > params.max_block_bytes {
            // A smaller transaction might still fit, but its sender's later nonces would
            // have to wait anyway; keep looking at other senders.
            return Selection::SkipSender;
        }
        if validator.check_tx_fields(&entry.tx).is_err() {
            invalid.push(entry.hash);
            return Selection::SkipSender;
        }
        match state.execute_tx(&mut pending, &producer_address, &entry.tx.tx) {
            Ok(()) => {
                tx_bytes += entry.size;
                txs.push(entry.tx.clone());
                Selection::Included
            }
            Err(ExecError::Tx(TxError::BadNonce { expected, got, .. })) if got < expected => {
                invalid.push(entry.hash);
                Selection::Skip
            }
            Err(ExecError::Tx(_)) => {
                invalid.push(entry.hash);
                Selection::SkipSender
            }
            Err(ExecError::State(e)) => {
                failure = Some(e);
                Selection::Stop
            }
        }
    });
    if let Some(e) = failure {
        return Err(e.into());
    }

    let transition = state.seal(&pending)?;
    header.tx_root = tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
    header.state_root = transition.root();
    let block = Block::sign(header, txs, producer);
    Ok(BuiltBlock {
        block,
        transition,
        invalid,
    })
}
