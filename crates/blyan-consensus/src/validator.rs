//! Block validity: every rule of the chain, each failing with its own [`BlockError`].
//!
//! Three entry points, from cheap to complete:
//!
//! - [`BlockValidator::verify_header`]: a header against its parent and the clock, no
//!   body, no state (headers-first sync); [`BlockValidator::verify_signed_header`] adds the
//!   producer's signature.
//! - [`BlockValidator::verify_block`]: everything the block proves about itself (format,
//!   producer of the slot, limits, transaction rules that need no state, `tx_root`, all
//!   signatures in one batch).
//! - [`BlockValidator::validate_block`]: all of the above plus the parent, the clock and
//!   the state: executes the transactions on the parent state, checks `state_root`, and
//!   returns the [`StateTransition`] to persist. The state is not modified.
//!
//! [`BlockValidator::pre_verify`] runs `verify_block` ahead of import, on any thread and
//! without the chain, and returns a [`VerifiedBlock`]: `ChainManager::add_verified_block`
//! then skips the signature batch, so a block is verified once however it arrived (sync
//! verifies one batch while the previous one is imported).
//!
//! The clock is an argument (`now_ms`), never read here.

use std::collections::HashSet;

use blyan_crypto::{
    Address, BatchItem, Domain, Hash, Signature, SignatureError, verify_batch,
    verify_block_signature,
};

use crate::error::{BlockError, TxError};
use crate::genesis::{ConsensusParams, Genesis};
use crate::state::{StateMachine, StateTransition};
use crate::types::{BLOCK_VERSION, Block, Header, SignedTransaction, tx_root};

/// Checks blocks against the rules of one chain (its genesis document).
#[derive(Debug, Clone)]
pub struct BlockValidator {
    genesis: Genesis,
    /// `genesis.document_hash()`: stamps the [`VerifiedBlock`]s this validator made.
    chain: Hash,
}

/// A block that passed [`BlockValidator::verify_block`] (format, limits, `tx_root`, every
/// signature) for the chain whose genesis document hash it carries. Only
/// [`BlockValidator::pre_verify`] makes one; import still checks the parent, the clock
/// and the state.
#[derive(Debug, Clone)]
pub struct VerifiedBlock {
    block: Block,
    chain: Hash,
}

impl VerifiedBlock {
    /// The block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// The block, giving up the proof of verification.
    pub fn into_inner(self) -> Block {
        self.block
    }

    /// Whether `validator` (its chain's rules) is the one that verified this block.
    pub fn verified_by(&self, validator: &BlockValidator) -> bool {
        self.chain == validator.chain
    }
}

impl BlockValidator {
    /// A validator for the chain started by `genesis`.
    pub fn new(genesis: Genesis) -> Self {
        let chain = genesis.document_hash();
        Self { genesis, chain }
    }

    /// Runs [`verify_block`](Self::verify_block) and keeps the proof with the block, so the
    /// chain does not verify it again on import.
    pub fn pre_verify(&self, block: Block) -> Result<VerifiedBlock, BlockError> {
        self.verify_block(&block)?;
        Ok(VerifiedBlock {
            block,
            chain: self.chain,
        })
    }

    /// The chain's genesis document.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The consensus parameters.
    pub fn params(&self) -> &ConsensusParams {
        &self.genesis.params
    }

    /// Looks up the parent of `header` with `lookup`; [`BlockError::UnknownParent`] if it is
    /// not known (the block belongs in the orphan buffer).
    pub fn find_parent<'a>(
        &self,
        header: &Header,
        lookup: impl FnOnce(&Hash) -> Option<&'a Header>,
    ) -> Result<&'a Header, BlockError> {
        lookup(&header.parent_hash).ok_or(BlockError::UnknownParent(header.parent_hash))
    }

    /// The rules a header satisfies on its own: version, chain, producer of the slot,
    /// timestamp inside the slot.
    fn verify_header_alone(&self, header: &Header) -> Result<(), BlockError> {
        if header.version != BLOCK_VERSION {
            return Err(BlockError::UnsupportedVersion {
                supported: BLOCK_VERSION,
                got: header.version,
            });
        }
        if header.chain_id != self.genesis.chain_id {
            return Err(BlockError::WrongChain {
                expected: self.genesis.chain_id,
                got: header.chain_id,
            });
        }
        match self.genesis.producer_of(header.slot) {
            Some(expected) if *expected == header.producer => {}
            expected => {
                return Err(BlockError::WrongProducer {
                    slot: header.slot,
                    // No validators at all: no address can match.
                    expected: expected.map_or(Address::from_bytes([0; 20]), |k| k.address()),
                    got: header.producer.address(),
                });
            }
        }
        let (start, end) = self
            .genesis
            .slot_start_ms(header.slot)
            .and_then(|start| Some((start, start.checked_add(self.genesis.slot_duration_ms)?)))
            .ok_or(BlockError::SlotOutOfRange { slot: header.slot })?;
        if header.timestamp_ms < start || header.timestamp_ms >= end {
            return Err(BlockError::TimestampOutsideSlot {
                slot: header.slot,
                timestamp_ms: header.timestamp_ms,
                slot_start_ms: start,
                slot_end_ms: end,
            });
        }
        Ok(())
    }

    /// Checks a header against its parent and the local clock: everything that needs
    /// neither the body, the state nor the signature (see
    /// [`BlockValidator::verify_signed_header`]).
    pub fn verify_header(
        &self,
        header: &Header,
        parent: &Header,
        now_ms: u64,
    ) -> Result<(), BlockError> {
        self.verify_header_alone(header)?;
        let parent_hash = parent.hash();
        if header.parent_hash != parent_hash {
            return Err(BlockError::WrongParent {
                expected: header.parent_hash,
                got: parent_hash,
            });
        }
        let expected_height = parent.height.saturating_add(1);
        if header.height != expected_height {
            return Err(BlockError::WrongHeight {
                expected: expected_height,
                got: header.height,
            });
        }
        if header.slot <= parent.slot {
            return Err(BlockError::SlotNotAfterParent {
                slot: header.slot,
                parent_slot: parent.slot,
            });
        }
        if header.timestamp_ms <= parent.timestamp_ms {
            return Err(BlockError::TimestampNotAfterParent {
                timestamp_ms: header.timestamp_ms,
                parent_timestamp_ms: parent.timestamp_ms,
            });
        }
        let now_slot = self.genesis.slot_at(now_ms);
        if header.slot > now_slot.saturating_add(self.genesis.params.max_future_slots) {
            return Err(BlockError::SlotInFuture {
                slot: header.slot,
                now_slot,
            });
        }
        Ok(())
    }

    /// [`BlockValidator::verify_header`] plus the producer's signature.
    pub fn verify_signed_header(
        &self,
        header: &Header,
        signature: &Signature,
        parent: &Header,
        now_ms: u64,
    ) -> Result<(), BlockError> {
        self.verify_header(header, parent, now_ms)?;
        verify_block_signature(&header.producer, header.chain_id, &header.hash(), signature)
            .map_err(BlockError::BadSignature)
    }

    /// Checks everything a block proves about itself, without its parent or the state:
    /// version, chain, producer of the slot, timestamp inside the slot, count and size
    /// limits, each transaction's chain and payload size, no duplicates, `tx_root`, and the
    /// producer's and every sender's signature (one batch verification).
    pub fn verify_block(&self, block: &Block) -> Result<(), BlockError> {
        self.verify_header_alone(&block.header)?;
        let params = &self.genesis.params;
        if block.txs.len() > params.max_block_txs {
            return Err(BlockError::TooManyTxs {
                count: block.txs.len(),
                max: params.max_block_txs,
            });
        }
        let size = block.encoded_len().map_err(|_| BlockError::Unencodable)?;
        if size > params.max_block_bytes {
            return Err(BlockError::TooLarge {
                size,
                max: params.max_block_bytes,
            });
        }

        let hashes = block.tx_hashes();
        let mut seen = HashSet::with_capacity(hashes.len());
        for (index, (signed, hash)) in block.txs.iter().zip(&hashes).enumerate() {
            self.check_tx_fields(signed)
                .map_err(|error| BlockError::InvalidTx {
                    index,
                    hash: *hash,
                    error,
                })?;
            if !seen.insert(*hash) {
                return Err(BlockError::DuplicateTx { index, hash: *hash });
            }
        }
        let computed = tx_root(&hashes);
        if computed != block.header.tx_root {
            return Err(BlockError::TxRootMismatch {
                header: block.header.tx_root,
                computed,
            });
        }
        self.verify_signatures(block, &hashes)
    }

    /// Checks that a body is the one its header commits to: the transaction count limit
    /// and `tx_root`. Hashing only, no signature: cheap enough to run as bodies arrive
    /// (the header's signature then vouches for the body; [`verify_block`](Self::verify_block)
    /// still checks everything before import).
    pub fn verify_tx_root(&self, block: &Block) -> Result<(), BlockError> {
        let max = self.genesis.params.max_block_txs;
        if block.txs.len() > max {
            return Err(BlockError::TooManyTxs {
                count: block.txs.len(),
                max,
            });
        }
        let computed = tx_root(&block.tx_hashes());
        if computed != block.header.tx_root {
            return Err(BlockError::TxRootMismatch {
                header: block.header.tx_root,
                computed,
            });
        }
        Ok(())
    }

    /// The stateless rules of one transaction: chain id and payload size.
    pub fn check_tx_fields(&self, signed: &SignedTransaction) -> Result<(), TxError> {
        let tx = &signed.tx;
        if tx.chain_id != self.genesis.chain_id {
            return Err(TxError::WrongChain {
                expected: self.genesis.chain_id,
                got: tx.chain_id,
            });
        }
        let max = self.genesis.params.max_tx_data_bytes;
        if tx.data.len() > max {
            return Err(TxError::DataTooLarge {
                len: tx.data.len(),
                max,
            });
        }
        Ok(())
    }

    /// Producer signature (batch index 0) and transaction signatures (index i + 1) in one
    /// batch; the first invalid one is reported.
    fn verify_signatures(&self, block: &Block, tx_hashes: &[Hash]) -> Result<(), BlockError> {
        let block_hash = block.header.hash();
        let mut items = Vec::with_capacity(block.txs.len() + 1);
        items.push(BatchItem {
            public_key: &block.header.producer,
            domain: Domain::Block,
            chain_id: block.header.chain_id,
            message: block_hash.as_bytes(),
            signature: &block.signature,
        });
        for (signed, hash) in block.txs.iter().zip(tx_hashes) {
            items.push(BatchItem {
                public_key: &signed.tx.from,
                domain: Domain::Tx,
                chain_id: signed.tx.chain_id,
                message: hash.as_bytes(),
                signature: &signed.signature,
            });
        }
        let Err(failure) = verify_batch(&items) else {
            return Ok(());
        };
        match failure.first() {
            Some((0, reason)) => Err(BlockError::BadSignature(reason)),
            Some((index, reason)) => Err(BlockError::BadTxSignature {
                index: index.saturating_sub(1),
                reason,
            }),
            // A batch error always names a signature; treat an empty one as the block's.
            None => Err(BlockError::BadSignature(SignatureError::Mismatch)),
        }
    }

    /// Validates `block` as a child of `parent` on the parent's state at time `now_ms`:
    /// every rule. Returns the state transition (diff and undo data) to persist; `state`
    /// is not modified.
    pub fn validate_block<S: StateMachine + ?Sized>(
        &self,
        block: &Block,
        parent: &Header,
        state: &S,
        now_ms: u64,
    ) -> Result<StateTransition, BlockError> {
        self.verify_header(&block.header, parent, now_ms)?;
        self.verify_block(block)?;
        self.verify_state(block, state)
    }

    /// The state half of [`BlockValidator::validate_block`]: executes the block on its
    /// parent's state and checks the resulting root against `state_root`. For a block whose
    /// header and body were checked on arrival and that is applied later (a reorg).
    pub fn verify_state<S: StateMachine + ?Sized>(
        &self,
        block: &Block,
        state: &S,
    ) -> Result<StateTransition, BlockError> {
        let transition = state.execute_block(block)?;
        if transition.root() != block.header.state_root {
            return Err(BlockError::StateRootMismatch {
                header: block.header.state_root,
                computed: transition.root(),
            });
        }
        Ok(transition)
    }
}
