//! Shared fixtures: a signed test chain and an in-memory [`SyncChain`] that checks with the
//! real `BlockValidator` but keeps blocks in a `Vec` (no state, no database).

use std::collections::HashMap;
use std::time::Duration;

use blyan_consensus::{
    BLOCK_VERSION, Block, BlockError, BlockValidator, ConsensusParams, Genesis, Header,
    SignedTransaction, Transaction, tx_root,
};
use blyan_crypto::{Hash, KeyPair, PeerId};
use blyan_p2p::{PROTOCOL_VERSION, SignedHeader, Status, SyncChain};
use blyan_security::Now;

pub(crate) const CHAIN_ID: u32 = 7;
pub(crate) const SLOT_MS: u64 = 1_000;

/// A wall clock far enough after genesis that every test block's slot is in the past.
pub(crate) const UNIX_MS: u64 = 100_000_000;

pub(crate) fn now(ms: u64) -> Now {
    Now::new(Duration::from_millis(ms), UNIX_MS + ms)
}

pub(crate) fn peer(n: u32) -> PeerId {
    let mut bytes = [0u8; 32];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    PeerId::from_bytes(bytes)
}

pub(crate) fn producer() -> KeyPair {
    KeyPair::from_seed(&[9; 32])
}

pub(crate) fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN_ID,
        genesis_time_ms: 0,
        slot_duration_ms: SLOT_MS,
        validators: vec![producer().public_key()],
        balances: Default::default(),
        params: ConsensusParams::default(),
    }
}

/// A signed transfer of `nonce` coins from `key` to itself, with nonce `nonce`.
pub(crate) fn transfer(key: &KeyPair, nonce: u64) -> SignedTransaction {
    Transaction {
        chain_id: CHAIN_ID,
        from: key.public_key(),
        to: key.address(),
        amount: nonce,
        fee: 1,
        nonce,
        data: Vec::new(),
    }
    .sign(key)
}

/// A valid chain of `len` blocks after genesis; every fourth block carries a transaction.
/// `salt` changes the state roots, so two salts give two different branches.
pub(crate) fn build_chain(len: u64, salt: u8) -> Vec<Block> {
    let genesis = genesis();
    let Ok(first) = genesis.block() else {
        return Vec::new();
    };
    let key = producer();
    let user = KeyPair::from_seed(&[salt.wrapping_add(1); 32]);
    let mut blocks = vec![first];
    for height in 1..=len {
        let Some(parent) = blocks.last() else { break };
        let txs = if height % 4 == 0 {
            vec![transfer(&user, height)]
        } else {
            Vec::new()
        };
        let hashes: Vec<Hash> = txs.iter().map(|t| t.hash()).collect();
        let header = Header {
            version: BLOCK_VERSION,
            chain_id: CHAIN_ID,
            height,
            slot: height,
            timestamp_ms: height * SLOT_MS + 1,
            parent_hash: parent.hash(),
            tx_root: tx_root(&hashes),
            state_root: Hash::from_bytes([salt; 32]),
            producer: key.public_key(),
        };
        blocks.push(Block::sign(header, txs, &key));
    }
    blocks
}

/// A linear chain in memory.
pub(crate) struct MemChain {
    validator: BlockValidator,
    blocks: Vec<Block>,
    by_hash: HashMap<Hash, usize>,
}

impl MemChain {
    /// The chain `blocks` (the first one is genesis).
    pub(crate) fn new(blocks: Vec<Block>) -> Self {
        let by_hash = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| (b.hash(), i))
            .collect();
        Self {
            validator: BlockValidator::new(genesis()),
            blocks,
            by_hash,
        }
    }

    /// Appends `block` if it extends the tip and passes the body check; a known block is
    /// fine. Returns whether the chain accepted it.
    pub(crate) fn import(&mut self, block: Block) -> bool {
        self.try_import(block).is_ok()
    }

    /// [`Self::import`] with the reason of a refusal (`UnknownParent` when it does not
    /// extend the tip).
    pub(crate) fn try_import(&mut self, block: Block) -> Result<(), BlockError> {
        let hash = block.hash();
        if self.by_hash.contains_key(&hash) {
            return Ok(());
        }
        if self.blocks.last().map(|t| t.hash()) != Some(block.header.parent_hash) {
            return Err(BlockError::UnknownParent(block.header.parent_hash));
        }
        self.validator.verify_block(&block)?;
        self.by_hash.insert(hash, self.blocks.len());
        self.blocks.push(block);
        Ok(())
    }

    /// What the node's importer does with a synced block: import it, and on a refusal tell
    /// `sync` whom to blame (the body's sender alone for a transaction signature, which
    /// `tx_root` does not cover). Returns the scheduler's actions, `None` if imported.
    pub(crate) fn import_synced(
        &mut self,
        sync: &mut blyan_p2p::SyncScheduler,
        at: Now,
        block: Block,
    ) -> Option<Vec<blyan_p2p::SyncAction>> {
        let hash = block.hash();
        match self.try_import(block) {
            Ok(()) => None,
            Err(BlockError::BadTxSignature { .. }) => Some(sync.on_body_refused(at, self, &hash)),
            Err(_) => Some(sync.on_import_failed(at, self, &hash)),
        }
    }

    pub(crate) fn height(&self) -> u64 {
        self.blocks.len() as u64 - 1
    }

    pub(crate) fn blocks(&self) -> &[Block] {
        &self.blocks
    }

    pub(crate) fn status(&self) -> Status {
        let (best_height, best_hash) = self.best();
        Status {
            protocol_version: PROTOCOL_VERSION,
            chain_id: CHAIN_ID,
            genesis_hash: self.blocks.first().map(|b| b.hash()).unwrap_or(Hash::ZERO),
            best_height,
            best_hash,
            finalized_height: 0,
        }
    }
}

impl SyncChain for MemChain {
    fn best(&self) -> (u64, Hash) {
        (
            self.height(),
            self.blocks.last().map(|b| b.hash()).unwrap_or(Hash::ZERO),
        )
    }

    fn canonical_hash(&self, height: u64) -> Option<Hash> {
        self.blocks
            .get(usize::try_from(height).ok()?)
            .map(|b| b.hash())
    }

    fn header(&self, hash: &Hash) -> Option<Header> {
        let index = self.by_hash.get(hash)?;
        self.blocks.get(*index).map(|b| b.header.clone())
    }

    fn block(&self, hash: &Hash) -> Option<Block> {
        let index = self.by_hash.get(hash)?;
        self.blocks.get(*index).cloned()
    }

    fn verify_header(
        &self,
        header: &SignedHeader,
        parent: &Header,
        now_ms: u64,
    ) -> Result<(), BlockError> {
        self.validator
            .verify_signed_header(&header.header, &header.signature, parent, now_ms)
    }

    fn check_body(&self, block: &Block) -> Result<(), BlockError> {
        self.validator.verify_tx_root(block)
    }
}
