//! The genesis document: chain id, timing, validator set, initial balances and the
//! consensus parameters every node must agree on; and the genesis block derived from it.

use std::collections::BTreeMap;

use blyan_crypto::{Address, Hash, PublicKey, Signature, empty_root};
use serde::{Deserialize, Serialize};

use crate::state::{Account, AccountState, MemoryStore, StateError, StateTransition};
use crate::types::{BLOCK_VERSION, Block, Header, hash_canonical};

/// Consensus parameters: changing any of them forks the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsensusParams {
    /// How many slots a block may be ahead of the local clock's slot. Default 1: tolerates
    /// clock skew up to one slot while a producer cannot pre-produce far ahead.
    pub max_future_slots: u64,
    /// Deepest reorg a node accepts. Default 100 (a few minutes of slots); below it blocks
    /// are irreversible and side branches are pruned.
    pub max_reorg_depth: u64,
    /// Blocks on top of a canonical block for it to count as finalized. Default 10.
    pub finality_depth: u64,
    /// Most transactions in a block. Default 5 000: batch-verifying 5 000 signatures takes
    /// well under a second on one core, leaving most of a slot for propagation.
    pub max_block_txs: usize,
    /// Largest canonical block encoding, in bytes. Default 1 MiB: 5 000 plain transfers
    /// (about 190 bytes each) fit, and a block is far below the 16 MiB frame limit.
    pub max_block_bytes: usize,
    /// Largest transaction payload, in bytes. Default 1 KiB: enough for a memo or a
    /// reference, small enough that data cannot crowd out transfers.
    pub max_tx_data_bytes: usize,
}

impl Default for ConsensusParams {
    fn default() -> Self {
        Self {
            max_future_slots: 1,
            max_reorg_depth: 100,
            finality_depth: 10,
            max_block_txs: 5_000,
            max_block_bytes: 1024 * 1024,
            max_tx_data_bytes: 1024,
        }
    }
}

/// Why a genesis document is unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// No validators: no slot has a producer.
    #[error("genesis names no validators")]
    NoValidators,
    /// A slot of zero milliseconds.
    #[error("slot duration must be positive")]
    ZeroSlotDuration,
    /// The state could not be built.
    #[error("cannot build the genesis state: {0}")]
    State(#[from] StateError),
}

/// The genesis document: the chain's starting point, identical on every node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// Chain id, bound into every signature.
    pub chain_id: u32,
    /// Start of slot 0, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Length of a slot in milliseconds.
    pub slot_duration_ms: u64,
    /// The validator set; slot `s` belongs to `validators[s mod n]`.
    pub validators: Vec<PublicKey>,
    /// Initial balances (a `BTreeMap` so the encoding, and the genesis hash, are canonical).
    pub balances: BTreeMap<Address, u64>,
    /// Consensus parameters.
    pub params: ConsensusParams,
}

impl Genesis {
    /// Checks the document is usable.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.validators.is_empty() {
            return Err(GenesisError::NoValidators);
        }
        if self.slot_duration_ms == 0 {
            return Err(GenesisError::ZeroSlotDuration);
        }
        Ok(())
    }

    /// SHA-256 of the canonical encoding of this document. It is the genesis block's
    /// `parent_hash`, so the genesis block hash commits to every setting.
    pub fn document_hash(&self) -> Hash {
        hash_canonical(self)
    }

    /// The validator that produces slot `slot`.
    pub fn producer_of(&self, slot: u64) -> Option<&PublicKey> {
        let n = u64::try_from(self.validators.len()).ok()?;
        let index = usize::try_from(slot.checked_rem(n)?).ok()?;
        self.validators.get(index)
    }

    /// Start of `slot` in milliseconds (`None` past the end of time).
    pub fn slot_start_ms(&self, slot: u64) -> Option<u64> {
        slot.checked_mul(self.slot_duration_ms)?
            .checked_add(self.genesis_time_ms)
    }

    /// The slot a time falls in (0 before genesis).
    pub fn slot_at(&self, now_ms: u64) -> u64 {
        now_ms
            .saturating_sub(self.genesis_time_ms)
            .checked_div(self.slot_duration_ms)
            .unwrap_or(0)
    }

    /// The initial state change: every non-zero balance, from an empty state. A storage
    /// layer writes its diff into an empty database.
    pub fn state_transition(&self) -> Result<StateTransition, GenesisError> {
        let state = AccountState::open(MemoryStore::new())?;
        let accounts = self
            .balances
            .iter()
            .map(|(address, balance)| {
                (
                    *address,
                    Account {
                        balance: *balance,
                        nonce: 0,
                    },
                )
            })
            .collect::<Vec<_>>();
        Ok(state.set_accounts(accounts)?)
    }

    /// The genesis block: height 0, slot 0, no transactions, the initial state root, parent
    /// hash = [`Genesis::document_hash`], produced by `validators[0]`. It is not signed (the
    /// signature is 64 zero bytes): nodes trust it by hash, never by signature.
    pub fn block(&self) -> Result<Block, GenesisError> {
        self.validate()?;
        let producer = *self.validators.first().ok_or(GenesisError::NoValidators)?;
        let state_root = self.state_transition()?.root();
        let header = Header {
            version: BLOCK_VERSION,
            chain_id: self.chain_id,
            height: 0,
            slot: 0,
            timestamp_ms: self.genesis_time_ms,
            parent_hash: self.document_hash(),
            tx_root: empty_root(),
            state_root,
            producer,
        };
        Ok(Block {
            header,
            signature: Signature::from_bytes([0u8; 64]),
            txs: Vec::new(),
        })
    }

    /// The genesis block hash: the chain's identity (peers compare it in their handshake).
    pub fn hash(&self) -> Result<Hash, GenesisError> {
        self.block().map(|b| b.hash())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::KeyPair;

    fn genesis() -> Genesis {
        let v = KeyPair::from_seed(&[1; 32]).public_key();
        Genesis {
            chain_id: 1,
            genesis_time_ms: 1_000,
            slot_duration_ms: 100,
            validators: vec![v],
            balances: BTreeMap::from([(v.address(), 50)]),
            params: ConsensusParams::default(),
        }
    }

    #[test]
    fn genesis_hash_commits_to_every_setting() {
        let g = genesis();
        let h = g.hash().unwrap();
        let mut other = g.clone();
        other.params.max_block_txs += 1;
        assert_ne!(other.hash().unwrap(), h);
        let mut other = g.clone();
        other.balances.insert(Address::from_bytes([9; 20]), 1);
        assert_ne!(other.hash().unwrap(), h);
        assert_eq!(g.hash().unwrap(), h);
    }

    #[test]
    fn slots_and_producers() {
        let mut g = genesis();
        g.validators.push(KeyPair::from_seed(&[2; 32]).public_key());
        assert_eq!(g.slot_at(0), 0);
        assert_eq!(g.slot_at(1_099), 0);
        assert_eq!(g.slot_at(1_100), 1);
        assert_eq!(g.slot_start_ms(3), Some(1_300));
        assert_eq!(g.slot_start_ms(u64::MAX), None);
        assert_eq!(g.producer_of(3), g.validators.get(1));
        assert_eq!(g.producer_of(4), g.validators.first());
    }

    #[test]
    fn unusable_documents_are_rejected() {
        let mut g = genesis();
        g.slot_duration_ms = 0;
        assert_eq!(g.block().unwrap_err(), GenesisError::ZeroSlotDuration);
        g.validators.clear();
        assert_eq!(g.validate().unwrap_err(), GenesisError::NoValidators);
    }
}
