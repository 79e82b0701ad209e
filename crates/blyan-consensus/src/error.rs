//! Why a block or a transaction is invalid: one variant per rule, carrying the values.

use blyan_crypto::{Address, Hash, SignatureError};

use crate::state::StateError;

/// Why a transaction cannot be applied (in a block, or admitted to the mempool).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxError {
    /// The transaction is for another chain.
    #[error("transaction for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain's id.
        expected: u32,
        /// The transaction's chain id.
        got: u32,
    },
    /// The payload exceeds `max_tx_data_bytes`.
    #[error("transaction data of {len} bytes exceeds the limit of {max}")]
    DataTooLarge {
        /// Payload length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The sender's signature does not verify.
    #[error("bad transaction signature: {0}")]
    BadSignature(SignatureError),
    /// The nonce is not the sender's account nonce.
    #[error("nonce {got} for {sender}, account nonce is {expected}")]
    BadNonce {
        /// The sending account.
        sender: Address,
        /// The account's nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The sender cannot pay `amount + fee`.
    #[error("{sender} has {balance}, needs {needed}")]
    InsufficientBalance {
        /// The sending account.
        sender: Address,
        /// Its balance.
        balance: u64,
        /// `amount + fee` (saturated at `u64::MAX` if the sum overflows).
        needed: u128,
    },
    /// Crediting the recipient or the producer would overflow its balance, or the sender's
    /// nonce is exhausted.
    #[error("balance or nonce of {account} would overflow")]
    Overflow {
        /// The account whose value would overflow.
        account: Address,
    },
}

/// Why a block is invalid, or could not be judged.
///
/// Every variant but [`BlockError::Storage`], [`BlockError::UnknownParent`] and
/// [`BlockError::SlotInFuture`] is a verdict on the block: the same block is invalid on every
/// node, forever. Those three depend on the local node (its state, what it has seen, its
/// clock): never cache them as invalid (see [`BlockError::is_invalid_block`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// The header's version is not [`crate::BLOCK_VERSION`].
    #[error("block version {got}, supported {supported}")]
    UnsupportedVersion {
        /// Supported version.
        supported: u32,
        /// Header's version.
        got: u32,
    },
    /// The header is for another chain.
    #[error("block for chain {got}, this chain is {expected}")]
    WrongChain {
        /// This chain's id.
        expected: u32,
        /// The header's chain id.
        got: u32,
    },
    /// The parent is not known (the block waits in the orphan buffer).
    #[error("unknown parent {0}")]
    UnknownParent(Hash),
    /// The parent given for validation is not the block's parent.
    #[error("block's parent is {expected}, validated against {got}")]
    WrongParent {
        /// `header.parent_hash`.
        expected: Hash,
        /// Hash of the header passed as parent.
        got: Hash,
    },
    /// The height is not the parent's height + 1.
    #[error("height {got}, expected {expected}")]
    WrongHeight {
        /// Parent height + 1.
        expected: u64,
        /// The header's height.
        got: u64,
    },
    /// The slot is not after the parent's slot.
    #[error("slot {slot} is not after the parent's slot {parent_slot}")]
    SlotNotAfterParent {
        /// The header's slot.
        slot: u64,
        /// The parent's slot.
        parent_slot: u64,
    },
    /// The slot is more than `max_future_slots` ahead of the local clock's slot.
    #[error("slot {slot} is in the future (now is slot {now_slot})")]
    SlotInFuture {
        /// The header's slot.
        slot: u64,
        /// The local clock's slot.
        now_slot: u64,
    },
    /// The producer is not the validator of the slot.
    #[error("slot {slot} belongs to {expected}, block produced by {got}")]
    WrongProducer {
        /// The header's slot.
        slot: u64,
        /// Address of `validators[slot mod n]`.
        expected: Address,
        /// Address of the header's producer.
        got: Address,
    },
    /// The producer's signature over the block hash does not verify.
    #[error("bad producer signature: {0}")]
    BadSignature(SignatureError),
    /// The timestamp is outside `[slot_start, slot_end)`.
    #[error("timestamp {timestamp_ms} outside slot {slot} [{slot_start_ms}, {slot_end_ms})")]
    TimestampOutsideSlot {
        /// The header's slot.
        slot: u64,
        /// The header's timestamp.
        timestamp_ms: u64,
        /// `genesis_time + slot * slot_duration`.
        slot_start_ms: u64,
        /// `slot_start + slot_duration` (exclusive).
        slot_end_ms: u64,
    },
    /// The slot's start time does not fit in a `u64` of milliseconds.
    #[error("slot {slot} is beyond the representable time")]
    SlotOutOfRange {
        /// The header's slot.
        slot: u64,
    },
    /// The timestamp is not after the parent's.
    #[error("timestamp {timestamp_ms} is not after the parent's {parent_timestamp_ms}")]
    TimestampNotAfterParent {
        /// The header's timestamp.
        timestamp_ms: u64,
        /// The parent's timestamp.
        parent_timestamp_ms: u64,
    },
    /// More transactions than `max_block_txs`.
    #[error("{count} transactions exceed the limit of {max}")]
    TooManyTxs {
        /// Transactions in the block.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// The encoded block is larger than `max_block_bytes`.
    #[error("block of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The block could not be encoded to measure it (never for a decoded block).
    #[error("block cannot be encoded")]
    Unencodable,
    /// A transaction's signature does not verify.
    #[error("transaction {index}: bad signature: {reason}")]
    BadTxSignature {
        /// Position in the block.
        index: usize,
        /// Why.
        reason: SignatureError,
    },
    /// The same transaction appears twice.
    #[error("transaction {index} ({hash}) repeats an earlier one")]
    DuplicateTx {
        /// Position of the second copy.
        index: usize,
        /// Its hash.
        hash: Hash,
    },
    /// A transaction breaks a rule (chain id, data size, nonce, balance, overflow).
    #[error("transaction {index} ({hash}): {error}")]
    InvalidTx {
        /// Position in the block.
        index: usize,
        /// Its hash.
        hash: Hash,
        /// The rule it breaks.
        error: TxError,
    },
    /// `tx_root` is not the Merkle root of the transactions.
    #[error("tx_root {header} does not match the transactions ({computed})")]
    TxRootMismatch {
        /// The header's value.
        header: Hash,
        /// The root of the block's transactions.
        computed: Hash,
    },
    /// `state_root` is not the root after applying the transactions.
    #[error("state_root {header} does not match the state after the block ({computed})")]
    StateRootMismatch {
        /// The header's value.
        header: Hash,
        /// The root computed by applying the block.
        computed: Hash,
    },
    /// The local state could not be read: not a verdict on the block.
    #[error("state unavailable: {0}")]
    Storage(StateError),
}

impl BlockError {
    /// Whether the error is a verdict on the block (it is invalid everywhere and forever, so
    /// it may be cached as invalid), as opposed to a missing parent, a block from a slot the
    /// local clock has not reached yet, or a local storage failure (retry later).
    pub fn is_invalid_block(&self) -> bool {
        !matches!(
            self,
            BlockError::Storage(_) | BlockError::UnknownParent(_) | BlockError::SlotInFuture { .. }
        )
    }
}
