//! The mempool: valid-looking transactions waiting for a block, bounded in count and bytes.
//!
//! Policy:
//!
//! - **Admission** checks the chain id, payload size, the sender's signature and, against
//!   the current state, that the nonce is not used up and that the balance covers
//!   `amount + fee`. A nonce may run ahead of the account nonce (it waits for the gap to
//!   fill) by less than `max_per_sender`, and a sender holds at most `max_per_sender`
//!   transactions: a remote cannot park unbounded future work.
//! - **Replacement**: a transaction with the same `(sender, nonce)` replaces the pooled one
//!   only if its fee is at least `old fee + max(1, old fee × replacement_bump_percent / 100)`
//!   (default 10 %, as Ethereum clients use), so replacing costs something each time.
//! - **Order**: blocks take the highest fee first, earlier arrival first among equal fees,
//!   and each sender's transactions in nonce order.
//! - **Eviction**: when the pool is full (count or bytes), the lowest-fee transaction (the
//!   newest among equal fees) is evicted, only ever to admit a strictly higher fee.
//! - After a block or a reorg: [`Mempool::remove_included`], [`Mempool::reinsert_reverted`],
//!   then [`Mempool::revalidate`] against the new state.

use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap};

use blyan_crypto::{Address, Hash, verify_tx_signature};

use crate::error::TxError;
use crate::genesis::Genesis;
use crate::state::{StateError, StateMachine};
use crate::types::{Block, SignedTransaction};

/// Mempool limits and policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MempoolConfig {
    /// Most transactions held. Default 10 000 (two full blocks).
    pub max_txs: usize,
    /// Most bytes (canonical encodings) held. Default 8 MiB.
    pub max_bytes: usize,
    /// Most transactions per sender, and how far a nonce may run ahead of the account
    /// nonce. Default 64.
    pub max_per_sender: usize,
    /// Minimum fee increase for a replacement, in percent of the old fee (at least 1).
    /// Default 10.
    pub replacement_bump_percent: u64,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 10_000,
            max_bytes: 8 * 1024 * 1024,
            max_per_sender: 64,
            replacement_bump_percent: 10,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    /// The pool already holds this transaction.
    #[error("transaction {0} is already pooled")]
    AlreadyKnown(Hash),
    /// The transaction breaks a rule (chain, size, signature, nonce used up, balance).
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The nonce is too far ahead of the account nonce.
    #[error("nonce {nonce} is too far ahead of account nonce {account_nonce} (max gap {max_gap})")]
    NonceTooFarAhead {
        /// The transaction's nonce.
        nonce: u64,
        /// The sender's account nonce.
        account_nonce: u64,
        /// `max_per_sender`.
        max_gap: usize,
    },
    /// The sender already has `max_per_sender` pooled transactions.
    #[error("{sender} already has {max} pooled transactions")]
    SenderFull {
        /// The sender.
        sender: Address,
        /// The limit.
        max: usize,
    },
    /// A replacement whose fee is not enough above the pooled one's.
    #[error("replacement fee {fee} below the minimum {min_fee}")]
    ReplacementUnderpriced {
        /// The offered fee.
        fee: u64,
        /// The required fee.
        min_fee: u64,
    },
    /// The pool is full of transactions paying at least as much.
    #[error("mempool full: fee {fee} does not beat the lowest pooled fee {lowest_fee}")]
    PoolFull {
        /// The offered fee.
        fee: u64,
        /// The lowest fee in the pool.
        lowest_fee: u64,
    },
    /// The transaction alone is larger than the pool's byte limit.
    #[error("transaction of {size} bytes exceeds the pool limit of {max}")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// `max_bytes`.
        max: usize,
    },
    /// The transaction cannot be encoded (never for a decoded one).
    #[error("transaction cannot be encoded")]
    Unencodable,
    /// The state could not be read.
    #[error(transparent)]
    State(#[from] StateError),
}

/// A pooled transaction with what the pool knows about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PooledTx {
    /// The transaction.
    pub tx: SignedTransaction,
    /// Its hash.
    pub hash: Hash,
    /// The sending account.
    pub sender: Address,
    /// Canonical encoding size in bytes.
    pub size: usize,
    /// Arrival order (smaller = earlier).
    pub arrival: u64,
}

impl PooledTx {
    fn fee(&self) -> u64 {
        self.tx.tx.fee
    }

    fn nonce(&self) -> u64 {
        self.tx.tx.nonce
    }

    /// Eviction key: the smallest is evicted first (lowest fee, then newest).
    fn eviction_key(&self) -> (u64, Reverse<u64>, Hash) {
        (self.fee(), Reverse(self.arrival), self.hash)
    }
}

/// What a block builder says about the transaction offered by [`Mempool::select`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// Included: offer the sender's next nonce.
    Included,
    /// Not included but the sender's next nonce may be (a stale, already used nonce).
    Skip,
    /// Not included, nor any later transaction of this sender.
    SkipSender,
    /// The block is full: stop.
    Stop,
}

/// The transaction pool. See the module documentation for the policy.
#[derive(Debug, Clone)]
pub struct Mempool {
    config: MempoolConfig,
    chain_id: u32,
    max_tx_data_bytes: usize,
    by_hash: HashMap<Hash, PooledTx>,
    by_sender: HashMap<Address, BTreeMap<u64, Hash>>,
    by_eviction: BTreeSet<(u64, Reverse<u64>, Hash)>,
    bytes: usize,
    next_arrival: u64,
}

impl Mempool {
    /// An empty pool for the chain of `genesis`.
    pub fn new(config: MempoolConfig, genesis: &Genesis) -> Self {
        Self {
            config,
            chain_id: genesis.chain_id,
            max_tx_data_bytes: genesis.params.max_tx_data_bytes,
            by_hash: HashMap::new(),
            by_sender: HashMap::new(),
            by_eviction: BTreeSet::new(),
            bytes: 0,
            next_arrival: 0,
        }
    }

    /// Number of pooled transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Bytes held (sum of canonical encodings).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether the pool holds a transaction with this hash.
    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// The pooled transaction with this hash.
    pub fn get(&self, hash: &Hash) -> Option<&PooledTx> {
        self.by_hash.get(hash)
    }

    /// Admits a transaction, checked against `state`. Returns its hash.
    pub fn insert<S: StateMachine + ?Sized>(
        &mut self,
        tx: SignedTransaction,
        state: &S,
    ) -> Result<Hash, MempoolError> {
        let hash = tx.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::AlreadyKnown(hash));
        }
        let body = &tx.tx;
        if body.chain_id != self.chain_id {
            return Err(TxError::WrongChain {
                expected: self.chain_id,
                got: body.chain_id,
            }
            .into());
        }
        if body.data.len() > self.max_tx_data_bytes {
            return Err(TxError::DataTooLarge {
                len: body.data.len(),
                max: self.max_tx_data_bytes,
            }
            .into());
        }
        let size = tx.encoded_len().map_err(|_| MempoolError::Unencodable)?;
        if size > self.config.max_bytes {
            return Err(MempoolError::TooLarge {
                size,
                max: self.config.max_bytes,
            });
        }
        let sender = body.sender();
        let account = state.account(&sender)?.unwrap_or_default();
        if body.nonce < account.nonce {
            return Err(TxError::BadNonce {
                sender,
                expected: account.nonce,
                got: body.nonce,
            }
            .into());
        }
        let max_gap = self.config.max_per_sender;
        if body.nonce - account.nonce >= u64::try_from(max_gap).unwrap_or(u64::MAX) {
            return Err(MempoolError::NonceTooFarAhead {
                nonce: body.nonce,
                account_nonce: account.nonce,
                max_gap,
            });
        }
        let needed = u128::from(body.amount) + u128::from(body.fee);
        if u128::from(account.balance) < needed {
            return Err(TxError::InsufficientBalance {
                sender,
                balance: account.balance,
                needed,
            }
            .into());
        }

        // Plan every removal before changing anything: a rejection leaves the pool as is.
        let mut removals: Vec<Hash> = Vec::new();
        let replaced = self
            .by_sender
            .get(&sender)
            .and_then(|nonces| nonces.get(&body.nonce))
            .and_then(|h| self.by_hash.get(h));
        match replaced {
            Some(old) => {
                let bump = old
                    .fee()
                    .saturating_mul(self.config.replacement_bump_percent)
                    / 100;
                let min_fee = old.fee().saturating_add(bump.max(1));
                if body.fee < min_fee {
                    return Err(MempoolError::ReplacementUnderpriced {
                        fee: body.fee,
                        min_fee,
                    });
                }
                removals.push(old.hash);
            }
            None => {
                let held = self.by_sender.get(&sender).map_or(0, BTreeMap::len);
                if held >= self.config.max_per_sender {
                    return Err(MempoolError::SenderFull {
                        sender,
                        max: self.config.max_per_sender,
                    });
                }
            }
        }
        let mut count = self.by_hash.len() + 1 - removals.len();
        let mut bytes = self.bytes + size - removals.iter().map(|h| self.size_of(h)).sum::<usize>();
        let mut candidates = self.by_eviction.iter();
        while count > self.config.max_txs || bytes > self.config.max_bytes {
            let Some((fee, _, victim)) = candidates.next() else {
                // Only when the limits cannot hold even this one transaction.
                return Err(MempoolError::PoolFull {
                    fee: body.fee,
                    lowest_fee: 0,
                });
            };
            if removals.contains(victim) {
                continue;
            }
            if *fee >= body.fee {
                return Err(MempoolError::PoolFull {
                    fee: body.fee,
                    lowest_fee: *fee,
                });
            }
            count -= 1;
            bytes -= self.size_of(victim);
            removals.push(*victim);
        }

        // Verify the signature last among the checks: it is the expensive one.
        verify_tx_signature(&body.from, body.chain_id, &hash, &tx.signature)
            .map_err(TxError::BadSignature)?;

        for victim in removals {
            self.remove(&victim);
        }
        let arrival = self.next_arrival;
        self.next_arrival += 1;
        let entry = PooledTx {
            tx,
            hash,
            sender,
            size,
            arrival,
        };
        self.by_eviction.insert(entry.eviction_key());
        self.by_sender
            .entry(sender)
            .or_default()
            .insert(entry.nonce(), hash);
        self.bytes += size;
        self.by_hash.insert(hash, entry);
        Ok(hash)
    }

    fn size_of(&self, hash: &Hash) -> usize {
        self.by_hash.get(hash).map_or(0, |e| e.size)
    }

    /// Removes a transaction; returns it if it was pooled.
    pub fn remove(&mut self, hash: &Hash) -> Option<PooledTx> {
        let entry = self.by_hash.remove(hash)?;
        self.by_eviction.remove(&entry.eviction_key());
        if let Some(nonces) = self.by_sender.get_mut(&entry.sender) {
            nonces.remove(&entry.nonce());
            if nonces.is_empty() {
                self.by_sender.remove(&entry.sender);
            }
        }
        self.bytes -= entry.size;
        Some(entry)
    }

    /// Removes the transactions of a block that became canonical, and any pooled
    /// transaction using the same `(sender, nonce)` (it can no longer be included).
    pub fn remove_included(&mut self, block: &Block) -> usize {
        let mut removed = 0;
        for signed in &block.txs {
            let tx = &signed.tx;
            let conflicting = self
                .by_sender
                .get(&tx.sender())
                .and_then(|nonces| nonces.get(&tx.nonce))
                .copied();
            if let Some(hash) = conflicting
                && self.remove(&hash).is_some()
            {
                removed += 1;
            }
        }
        removed
    }

    /// Offers the transactions of blocks that left the canonical chain again, checked
    /// against `state` (the new canonical state). Returns how many were admitted.
    pub fn reinsert_reverted<S: StateMachine + ?Sized>(
        &mut self,
        txs: impl IntoIterator<Item = SignedTransaction>,
        state: &S,
    ) -> Result<usize, StateError> {
        let mut admitted = 0;
        for tx in txs {
            match self.insert(tx, state) {
                Ok(_) => admitted += 1,
                Err(MempoolError::State(e)) => return Err(e),
                Err(_) => {}
            }
        }
        Ok(admitted)
    }

    /// Drops what the new canonical state made invalid: nonces already used, nonces now too
    /// far ahead, senders that can no longer pay for their next transaction. Returns how
    /// many were dropped.
    pub fn revalidate<S: StateMachine + ?Sized>(&mut self, state: &S) -> Result<usize, StateError> {
        let max_gap = u64::try_from(self.config.max_per_sender).unwrap_or(u64::MAX);
        let mut drop = Vec::new();
        for (sender, nonces) in &self.by_sender {
            let account = state.account(sender)?.unwrap_or_default();
            for (nonce, hash) in nonces {
                let stale = *nonce < account.nonce;
                let too_far = nonce.saturating_sub(account.nonce) >= max_gap;
                let unaffordable = self.by_hash.get(hash).is_some_and(|e| {
                    u128::from(account.balance)
                        < u128::from(e.tx.tx.amount) + u128::from(e.tx.tx.fee)
                });
                if stale || too_far || unaffordable {
                    drop.push(*hash);
                }
            }
        }
        for hash in &drop {
            self.remove(hash);
        }
        Ok(drop.len())
    }

    /// Offers transactions in block order (highest fee first, earlier arrival first among
    /// equal fees, each sender's in nonce order) to `decide` until it says
    /// [`Selection::Stop`] or the pool is exhausted.
    pub fn select(&self, mut decide: impl FnMut(&PooledTx) -> Selection) {
        let mut heads: BinaryHeap<Head<'_>> = self
            .by_sender
            .values()
            .filter_map(|nonces| nonces.values().next())
            .filter_map(|hash| self.by_hash.get(hash))
            .map(Head)
            .collect();
        while let Some(Head(entry)) = heads.pop() {
            let next = || {
                self.by_sender
                    .get(&entry.sender)
                    .and_then(|nonces| nonces.range(entry.nonce() + 1..).next())
                    .and_then(|(_, hash)| self.by_hash.get(hash))
                    .map(Head)
            };
            match decide(entry) {
                Selection::Included | Selection::Skip => heads.extend(next()),
                Selection::SkipSender => {}
                Selection::Stop => return,
            }
        }
    }
}

/// A sender's next transaction in the selection heap: best = highest fee, then earliest.
struct Head<'a>(&'a PooledTx);

impl Ord for Head<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .fee()
            .cmp(&other.0.fee())
            .then_with(|| other.0.arrival.cmp(&self.0.arrival))
    }
}

impl PartialOrd for Head<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head<'_> {}
