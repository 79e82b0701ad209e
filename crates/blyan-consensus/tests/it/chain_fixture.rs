//! A small chain for the validation, state, mempool and builder tests: two validators, a
//! few funded users, tight limits, and helpers that build correct blocks.

use std::collections::BTreeMap;

use blyan_consensus::{
    AccountState, BLOCK_VERSION, Block, BlockValidator, ConsensusParams, Genesis, Header,
    MemoryStore, SignedTransaction, StateMachine, Transaction, state::PendingChanges, tx_root,
};
use blyan_crypto::{Address, KeyPair};

pub(crate) const CHAIN_ID: u32 = 42;
pub(crate) const GENESIS_TIME: u64 = 1_700_000_000_000;
pub(crate) const SLOT_MS: u64 = 1_000;
pub(crate) const USER_BALANCE: u64 = 1_000;

pub(crate) struct Chain {
    pub(crate) genesis: Genesis,
    pub(crate) validator: BlockValidator,
    pub(crate) state: AccountState<MemoryStore>,
    pub(crate) genesis_block: Block,
    pub(crate) validators: Vec<KeyPair>,
    pub(crate) users: Vec<KeyPair>,
    /// An account holding nearly `u64::MAX`, to provoke overflows.
    pub(crate) whale: KeyPair,
}

pub(crate) fn params() -> ConsensusParams {
    ConsensusParams {
        max_block_txs: 4,
        max_block_bytes: 900,
        max_tx_data_bytes: 64,
        ..ConsensusParams::default()
    }
}

pub(crate) fn chain() -> Chain {
    chain_with(params())
}

pub(crate) fn chain_with(params: ConsensusParams) -> Chain {
    let validators: Vec<KeyPair> = (1..=2u8).map(|i| KeyPair::from_seed(&[i; 32])).collect();
    let users: Vec<KeyPair> = (10..16u8).map(|i| KeyPair::from_seed(&[i; 32])).collect();
    let whale = KeyPair::from_seed(&[99; 32]);
    let mut balances: BTreeMap<Address, u64> =
        users.iter().map(|u| (u.address(), USER_BALANCE)).collect();
    balances.insert(whale.address(), u64::MAX - 5);
    let genesis = Genesis {
        chain_id: CHAIN_ID,
        genesis_time_ms: GENESIS_TIME,
        slot_duration_ms: SLOT_MS,
        validators: validators.iter().map(KeyPair::public_key).collect(),
        balances,
        params,
    };
    let genesis_block = genesis.block().unwrap();
    let mut state = AccountState::open(MemoryStore::new()).unwrap();
    state
        .apply(&genesis.state_transition().unwrap().diff)
        .unwrap();
    assert_eq!(state.root(), genesis_block.header.state_root);
    Chain {
        validator: BlockValidator::new(genesis.clone()),
        genesis,
        state,
        genesis_block,
        validators,
        users,
        whale,
    }
}

impl Chain {
    pub(crate) fn producer(&self, slot: u64) -> &KeyPair {
        &self.validators[(slot % self.validators.len() as u64) as usize]
    }

    /// A time inside `slot`.
    pub(crate) fn time_in(&self, slot: u64) -> u64 {
        GENESIS_TIME + slot * SLOT_MS + 10
    }

    pub(crate) fn tx(
        &self,
        from: &KeyPair,
        to: Address,
        amount: u64,
        fee: u64,
        nonce: u64,
    ) -> SignedTransaction {
        Transaction {
            chain_id: CHAIN_ID,
            from: from.public_key(),
            to,
            amount,
            fee,
            nonce,
            data: Vec::new(),
        }
        .sign(from)
    }

    /// A correct header for `slot` on `parent`, roots not yet filled.
    pub(crate) fn header(&self, parent: &Header, slot: u64) -> Header {
        Header {
            version: BLOCK_VERSION,
            chain_id: CHAIN_ID,
            height: parent.height + 1,
            slot,
            timestamp_ms: self.time_in(slot),
            parent_hash: parent.hash(),
            tx_root: tx_root(&[]),
            state_root: self.state.root(),
            producer: self.producer(slot).public_key(),
        }
    }

    /// Fills `tx_root` and signs with the slot's validator.
    pub(crate) fn seal(&self, mut header: Header, txs: Vec<SignedTransaction>) -> Block {
        header.tx_root = tx_root(&txs.iter().map(SignedTransaction::hash).collect::<Vec<_>>());
        let key = self.producer(header.slot);
        Block::sign(header, txs, key)
    }

    /// A fully valid block for `slot` on `parent` (whose post-state is `self.state`).
    pub(crate) fn block(&self, parent: &Header, slot: u64, txs: Vec<SignedTransaction>) -> Block {
        let mut header = self.header(parent, slot);
        let producer = header.producer.address();
        let mut pending = PendingChanges::new();
        for signed in &txs {
            self.state
                .execute_tx(&mut pending, &producer, &signed.tx)
                .unwrap();
        }
        header.state_root = self.state.seal(&pending).unwrap().root();
        self.seal(header, txs)
    }
}
