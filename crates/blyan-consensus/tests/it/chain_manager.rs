//! The chain manager end to end: extension, reorgs with state checked against a replay,
//! the reorg depth limit, pruning on disk, invalid blocks leaving no trace, orphans,
//! equivocation and batched import. Also the block fixture used by `storage` and `crash`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use blyan_consensus::{
    AccountState, BLOCK_VERSION, Block, BlockError, ChainConfig, ChainError, ChainEvent,
    ChainManager, ConsensusParams, ForkChoiceConfig, Genesis, Header, ImportOutcome, InsertError,
    ManualClock, MemoryStore, SignedTransaction, StateMachine, Transaction, tx_root,
};
use blyan_crypto::{Address, Hash, KeyPair};

pub(crate) const SLOT_MS: u64 = 1_000;
pub(crate) const GENESIS_TIME: u64 = 1_600_000_000_000;
const USERS: u8 = 8;

/// Builds valid blocks anywhere in a tree, keeping each block's post-state (computed from
/// scratch on an in-memory store, independently of the chain manager).
pub(crate) struct Fixture {
    pub(crate) genesis: Genesis,
    validators: Vec<KeyPair>,
    pub(crate) users: Vec<KeyPair>,
    states: HashMap<Hash, AccountState<MemoryStore>>,
    headers: HashMap<Hash, Header>,
    pub(crate) genesis_hash: Hash,
}

impl Fixture {
    pub(crate) fn new(params: ConsensusParams) -> Self {
        let validators: Vec<KeyPair> = (1..=3u8).map(|i| KeyPair::from_seed(&[i; 32])).collect();
        let users: Vec<KeyPair> = (0..USERS)
            .map(|i| KeyPair::from_seed(&[100 + i; 32]))
            .collect();
        let balances: BTreeMap<Address, u64> =
            users.iter().map(|u| (u.address(), 1_000_000)).collect();
        let genesis = Genesis {
            chain_id: 9,
            genesis_time_ms: GENESIS_TIME,
            slot_duration_ms: SLOT_MS,
            validators: validators.iter().map(KeyPair::public_key).collect(),
            balances,
            params,
        };
        let block = genesis.block().unwrap();
        let mut state = AccountState::open(MemoryStore::new()).unwrap();
        state
            .apply(&genesis.state_transition().unwrap().diff)
            .unwrap();
        assert_eq!(state.root(), block.header.state_root);
        let hash = block.hash();
        Self {
            genesis,
            validators,
            users,
            states: HashMap::from([(hash, state)]),
            headers: HashMap::from([(hash, block.header)]),
            genesis_hash: hash,
        }
    }

    pub(crate) fn params(max_reorg_depth: u64, finality_depth: u64) -> ConsensusParams {
        ConsensusParams {
            max_reorg_depth,
            finality_depth,
            ..ConsensusParams::default()
        }
    }

    /// A clock far after every slot the tests use.
    pub(crate) fn clock() -> Arc<ManualClock> {
        Arc::new(ManualClock::new(GENESIS_TIME + 1_000_000 * SLOT_MS))
    }

    pub(crate) fn config(retention: u64) -> ChainConfig {
        ChainConfig {
            fork_choice: ForkChoiceConfig {
                canonical_retention: retention,
                ..ForkChoiceConfig::default()
            },
            ..ChainConfig::default()
        }
    }

    pub(crate) fn manager(&self, retention: u64) -> ChainManager {
        ChainManager::in_memory(self.genesis.clone(), Self::config(retention), Self::clock())
            .unwrap()
    }

    /// The post-state root of a fixture block (a from-scratch execution).
    pub(crate) fn root(&self, hash: &Hash) -> Hash {
        self.states[hash].root()
    }

    /// A valid child of `parent`, `gap` slots later, with `txs` transfers whose recipients
    /// depend on `salt` (so sibling branches differ in state).
    pub(crate) fn child(&mut self, parent: &Hash, gap: u64, txs: usize, salt: u64) -> Block {
        let parent_header = self.headers[parent].clone();
        let mut state = self.states[parent].clone();
        let slot = parent_header.slot + gap.max(1);
        let producer = &self.validators[(slot % self.validators.len() as u64) as usize];
        let mut signed = Vec::new();
        for k in 0..txs.min(self.users.len()) {
            let from = &self.users[(salt as usize + k) % self.users.len()];
            let nonce = state
                .account(&from.address())
                .unwrap()
                .unwrap_or_default()
                .nonce;
            let mut to = [0u8; 20];
            to[..8].copy_from_slice(&salt.to_be_bytes());
            to[19] = k as u8;
            signed.push(
                Transaction {
                    chain_id: self.genesis.chain_id,
                    from: from.public_key(),
                    to: Address::from_bytes(to),
                    amount: 10 + salt % 7,
                    fee: 1 + (k as u64 % 3),
                    nonce,
                    data: Vec::new(),
                }
                .sign(from),
            );
        }
        let mut header = Header {
            version: BLOCK_VERSION,
            chain_id: self.genesis.chain_id,
            height: parent_header.height + 1,
            slot,
            timestamp_ms: GENESIS_TIME + slot * SLOT_MS + 1,
            parent_hash: *parent,
            tx_root: tx_root(
                &signed
                    .iter()
                    .map(SignedTransaction::hash)
                    .collect::<Vec<_>>(),
            ),
            state_root: Hash::ZERO,
            producer: producer.public_key(),
        };
        let probe = Block::sign(header.clone(), signed.clone(), producer);
        let transition = state.execute_block(&probe).unwrap();
        header.state_root = transition.root();
        state.apply(&transition.diff).unwrap();
        let block = Block::sign(header, signed, producer);
        self.states.insert(block.hash(), state);
        self.headers.insert(block.hash(), block.header.clone());
        block
    }

    /// `len` blocks on top of `from`, each with `txs` transfers.
    pub(crate) fn branch(&mut self, from: &Hash, len: usize, txs: usize, salt: u64) -> Vec<Block> {
        let mut out: Vec<Block> = Vec::new();
        for i in 0..len {
            let parent = out.last().map_or(*from, Block::hash);
            out.push(self.child(&parent, 1, txs, salt + i as u64));
        }
        out
    }

    /// A block signed correctly but with a wrong state root.
    pub(crate) fn bad_child(&mut self, parent: &Hash, salt: u64) -> Block {
        let good = self.child(parent, 1, 2, salt);
        let mut header = good.header.clone();
        header.state_root = blyan_crypto::sha256(b"wrong");
        let producer = self
            .validators
            .iter()
            .find(|k| k.public_key() == header.producer)
            .unwrap();
        let block = Block::sign(header, good.txs.clone(), producer);
        self.headers.insert(block.hash(), block.header.clone());
        // Descendants are built on the state the block really produces.
        let state = self.states[&good.hash()].clone();
        self.states.insert(block.hash(), state);
        block
    }
}

/// Replays the manager's canonical chain from genesis on a fresh in-memory state and checks
/// the root and every user's account against the manager's.
pub(crate) fn assert_matches_replay(fx: &Fixture, chain: &ChainManager) {
    let mut state = AccountState::open(MemoryStore::new()).unwrap();
    state
        .apply(&fx.genesis.state_transition().unwrap().diff)
        .unwrap();
    for height in 1..=chain.tip().height {
        let block = chain.get_block_by_height(height).unwrap().unwrap();
        state.apply_block(&block).unwrap();
        assert_eq!(state.root(), block.header.state_root, "height {height}");
    }
    assert_eq!(state.root(), chain.state_root());
    assert_eq!(chain.store().state_root().unwrap(), chain.state_root());
    for user in &fx.users {
        let replayed = state.account(&user.address()).unwrap().unwrap_or_default();
        assert_eq!(chain.account(&user.address()).unwrap(), replayed);
        let proof = chain.account_proof(&user.address()).unwrap();
        let proven = proof.verify(&chain.state_root(), &user.address()).unwrap();
        assert_eq!(proven.unwrap_or_default(), replayed);
    }
}

fn import_all(chain: &mut ChainManager, blocks: &[Block]) -> Vec<ImportOutcome> {
    blocks
        .iter()
        .map(|b| chain.add_block(b.clone()).unwrap())
        .collect()
}

#[test]
fn extension_then_reorg_matches_a_replay_of_the_canonical_chain() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let mut chain = fx.manager(1024);
    let g = fx.genesis_hash;
    let main = fx.branch(&g, 5, 4, 1);
    for (i, outcome) in import_all(&mut chain, &main).into_iter().enumerate() {
        assert_eq!(
            outcome,
            ImportOutcome::Imported {
                hash: main[i].hash(),
                height: i as u64 + 1,
                reorg: None
            }
        );
    }
    assert_eq!(chain.get_latest_block().unwrap(), main[4]);
    assert_matches_replay(&fx, &chain);
    assert!(chain.is_finalized(&main[2].hash()).unwrap());
    assert!(!chain.is_finalized(&main[3].hash()).unwrap());
    assert_eq!(chain.finalized_height(), Some(3));

    // A rival branch from height 2, longer by one: side blocks until it wins.
    let rival = fx.branch(&main[1].hash(), 4, 5, 50);
    let outcomes = import_all(&mut chain, &rival);
    for outcome in &outcomes[..3] {
        assert!(
            matches!(outcome, ImportOutcome::SideChain { .. }),
            "{outcome:?}"
        );
    }
    let ImportOutcome::Imported {
        hash,
        height: 6,
        reorg: Some(reorg),
    } = &outcomes[3]
    else {
        panic!("expected a reorg, got {:?}", outcomes[3]);
    };
    assert_eq!(*hash, rival[3].hash());
    assert_eq!(reorg.depth(), 3);
    assert_eq!(reorg.fork_point, main[1].hash());
    assert_eq!(
        reorg.reverted,
        vec![main[4].hash(), main[3].hash(), main[2].hash()]
    );
    assert_eq!(chain.state_root(), fx.root(&rival[3].hash()));
    assert_matches_replay(&fx, &chain);
    let forks = chain.get_fork_chains();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].tip, main[4].hash());
    assert_eq!(forks[0].length, 3);

    // And back: the old branch grows past the new tip.
    let back = fx.branch(&main[4].hash(), 2, 3, 90);
    let outcomes = import_all(&mut chain, &back);
    let ImportOutcome::Imported {
        reorg: Some(reorg), ..
    } = &outcomes[1]
    else {
        panic!("expected a reorg back, got {:?}", outcomes[1]);
    };
    assert_eq!(reorg.depth(), 4);
    assert_matches_replay(&fx, &chain);
    assert_eq!(
        chain.add_block(back[1].clone()).unwrap(),
        ImportOutcome::Known {
            hash: back[1].hash()
        }
    );
}

#[test]
fn reorg_at_exactly_max_depth_succeeds_and_one_deeper_is_refused() {
    let depth = 4;
    let mut fx = Fixture::new(Fixture::params(depth, 2));
    let mut chain = fx.manager(16);
    let g = fx.genesis_hash;
    let main = fx.branch(&g, 8, 2, 1);
    import_all(&mut chain, &main);

    // Forking at height 3 reverts 5 > 4 blocks: refused, nothing stored.
    let too_deep = fx.branch(&main[2].hash(), 6, 2, 40);
    let err = chain.add_block(too_deep[0].clone()).unwrap_err();
    assert!(
        matches!(
            err,
            ChainError::Rejected(InsertError::ReorgTooDeep { depth: 5, max: 4 })
        ),
        "{err:?}"
    );
    assert_eq!(chain.get_block(&too_deep[0].hash()).unwrap(), None);

    // Forking at height 4 reverts exactly 4: accepted.
    let deepest = fx.branch(&main[3].hash(), 5, 2, 70);
    let outcomes = import_all(&mut chain, &deepest);
    let ImportOutcome::Imported {
        reorg: Some(reorg), ..
    } = &outcomes[4]
    else {
        panic!("expected a reorg, got {:?}", outcomes[4]);
    };
    assert_eq!(reorg.depth(), depth);
    assert_eq!(chain.tip().hash, deepest[4].hash());
    assert_matches_replay(&fx, &chain);
}

#[test]
fn pruned_side_branches_and_old_undo_data_leave_the_disk() {
    let depth = 3;
    let mut fx = Fixture::new(Fixture::params(depth, 1));
    let mut chain = fx.manager(8);
    let g = fx.genesis_hash;
    let main = fx.branch(&g, 3, 1, 1);
    import_all(&mut chain, &main);
    // A side branch of two blocks forking at height 1.
    let side = fx.branch(&main[0].hash(), 2, 1, 30);
    import_all(&mut chain, &side);
    let stats = chain.store().stats().unwrap();
    assert_eq!((stats.blocks, stats.side_blocks), (6, 2));
    assert_eq!(chain.get_fork_chains().len(), 1);

    // Grow the main chain until height 1 is irreversible (tip 5 - 3 = 2 > 1).
    let more = fx.branch(&main[2].hash(), 2, 1, 60);
    import_all(&mut chain, &more);
    for block in &side {
        assert_eq!(chain.get_block(&block.hash()).unwrap(), None);
    }
    assert!(chain.get_fork_chains().is_empty());
    let stats = chain.store().stats().unwrap();
    assert_eq!((stats.blocks, stats.side_blocks), (6, 0));
    // Undo data is kept only for the blocks a reorg may still revert.
    assert_eq!(stats.undo, depth);
    let pruned: Vec<Hash> = chain
        .drain_events()
        .into_iter()
        .filter_map(|event| match event {
            ChainEvent::Pruned(pruned) => Some(pruned),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(pruned, vec![side[0].hash(), side[1].hash()]);
}

#[test]
fn invalid_block_is_rejected_with_nothing_written() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let mut chain = fx.manager(1024);
    let g = fx.genesis_hash;
    let main = fx.branch(&g, 3, 3, 1);
    import_all(&mut chain, &main);
    let stats = chain.store().stats().unwrap();
    let tip = chain.tip();
    let root = chain.store().state_root().unwrap();

    let bad = fx.bad_child(&main[2].hash(), 7);
    let err = chain.add_block(bad.clone()).unwrap_err();
    let ChainError::Invalid { hash, error } = err else {
        panic!("{err:?}");
    };
    assert_eq!(hash, bad.hash());
    assert!(matches!(*error, BlockError::StateRootMismatch { .. }));
    assert_eq!(chain.store().stats().unwrap(), stats);
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.store().state_root().unwrap(), root);
    assert_eq!(chain.get_block(&bad.hash()).unwrap(), None);
    // Remembered: the second attempt is refused without execution.
    assert!(matches!(
        chain.add_block(bad).unwrap_err(),
        ChainError::Rejected(InsertError::KnownInvalid(_))
    ));

    // A side branch whose second block is invalid: stored as side until it would win, then
    // the reorg aborts and the bad block and its descendant are deleted.
    let b1 = fx.child(&main[0].hash(), 1, 1, 200);
    let b2 = fx.bad_child(&b1.hash(), 201);
    let b3 = fx.child(&b2.hash(), 1, 0, 202);
    for block in [&b1, &b2] {
        assert!(matches!(
            chain.add_block(block.clone()).unwrap(),
            ImportOutcome::SideChain { .. }
        ));
    }
    // b3 reaches height 4 > 3: the reorg runs, fails at b2 and is rolled back.
    let err = chain.add_block(b3.clone()).unwrap_err();
    assert!(
        matches!(&err, ChainError::Invalid { hash, .. } if *hash == b2.hash()),
        "{err:?}"
    );
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.store().state_root().unwrap(), root);
    assert!(chain.get_block(&b1.hash()).unwrap().is_some());
    for gone in [&b2, &b3] {
        assert_eq!(chain.get_block(&gone.hash()).unwrap(), None);
    }
    assert_matches_replay(&fx, &chain);
}

#[test]
fn orphans_wait_for_their_parent_then_import() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let mut chain = fx.manager(1024);
    let g = fx.genesis_hash;
    let blocks = fx.branch(&g, 3, 2, 1);
    assert_eq!(
        chain.add_block(blocks[2].clone()).unwrap(),
        ImportOutcome::Orphaned {
            hash: blocks[2].hash(),
            parent: blocks[1].hash()
        }
    );
    assert!(matches!(
        chain.add_block(blocks[1].clone()).unwrap(),
        ImportOutcome::Orphaned { .. }
    ));
    assert!(matches!(
        chain.add_block(blocks[0].clone()).unwrap(),
        ImportOutcome::Imported { height: 1, .. }
    ));
    assert_eq!(chain.tip().hash, blocks[2].hash());
    let released: Vec<Hash> = chain
        .drain_events()
        .into_iter()
        .map(|event| match event {
            ChainEvent::OrphanProcessed {
                hash,
                result: Ok(ImportOutcome::Imported { .. }),
            } => hash,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(released, vec![blocks[1].hash(), blocks[2].hash()]);
    assert_matches_replay(&fx, &chain);
}

#[test]
fn equivocation_is_reported_and_the_first_block_stays() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let mut chain = fx.manager(1024);
    let g = fx.genesis_hash;
    let first = fx.child(&g, 1, 1, 1);
    let second = fx.child(&g, 1, 2, 2);
    assert_eq!(first.header.slot, second.header.slot);
    chain.add_block(first.clone()).unwrap();
    assert!(matches!(
        chain.add_block(second.clone()).unwrap(),
        ImportOutcome::SideChain { .. }
    ));
    assert_eq!(chain.tip().hash, first.hash());
    let events = chain.drain_events();
    assert!(matches!(
        events.as_slice(),
        [ChainEvent::Equivocation(e)] if e.first == first.hash() && e.second == second.hash()
    ));
}

#[test]
fn batched_import_commits_every_block() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let mut chain = fx.manager(1024);
    let g = fx.genesis_hash;
    let blocks = fx.branch(&g, 20, 3, 1);
    let results = chain.import_batch(blocks.clone());
    assert_eq!(results.len(), 20);
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(ImportOutcome::Imported { .. })))
    );
    assert_eq!(chain.tip().hash, blocks[19].hash());
    assert_matches_replay(&fx, &chain);
}

#[test]
fn a_forged_signature_does_not_poison_the_honest_block() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let mut chain = fx.manager(1024);
    let g = fx.genesis_hash;
    let honest = fx.child(&g, 1, 2, 1);
    let other = fx.child(&g, 2, 1, 2);
    let mut forged = honest.clone();
    forged.signature = other.signature;
    let err = chain.add_block(forged).unwrap_err();
    assert!(
        matches!(&err, ChainError::Invalid { error, .. } if matches!(**error, BlockError::BadSignature(_))),
        "{err:?}"
    );
    assert!(matches!(
        chain.add_block(honest).unwrap(),
        ImportOutcome::Imported { height: 1, .. }
    ));
}

#[test]
fn pre_verified_blocks_import_like_any_other_and_keep_every_stateful_rule() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let mut chain = fx.manager(1024);
    let g = fx.genesis_hash;
    let validator = chain.validator().clone();
    for block in fx.branch(&g, 5, 3, 1) {
        let verified = validator.pre_verify(block).unwrap();
        assert!(matches!(
            chain.add_verified_block(verified).unwrap(),
            ImportOutcome::Imported { .. }
        ));
    }
    assert_eq!(chain.tip().height, 5);
    assert_matches_replay(&fx, &chain);

    // The signatures passed, so pre_verify accepts it; the state root is still checked.
    let tip = chain.tip().hash;
    let bad = fx.bad_child(&tip, 9);
    let verified = validator.pre_verify(bad).unwrap();
    let err = chain.add_verified_block(verified).unwrap_err();
    assert!(
        matches!(&err, ChainError::Invalid { error, .. } if matches!(**error, BlockError::StateRootMismatch { .. })),
        "{err:?}"
    );

    // A forged signature never becomes a VerifiedBlock.
    let honest = fx.child(&tip, 1, 2, 3);
    let mut forged = honest.clone();
    forged.signature = fx.child(&tip, 2, 1, 4).signature;
    assert!(matches!(
        validator.pre_verify(forged),
        Err(BlockError::BadSignature(_))
    ));
}

#[test]
fn a_block_verified_under_another_chains_rules_is_verified_again() {
    let mut fx = Fixture::new(ConsensusParams {
        max_block_txs: 2,
        ..Fixture::params(100, 2)
    });
    let mut chain = fx.manager(1024);
    let g = fx.genesis_hash;
    let block = fx.child(&g, 1, 3, 1);
    // Looser rules elsewhere: the same block passes there.
    let mut looser = fx.genesis.clone();
    looser.params.max_block_txs = 100;
    let verified = blyan_consensus::BlockValidator::new(looser)
        .pre_verify(block)
        .unwrap();
    assert!(!verified.verified_by(chain.validator()));
    let err = chain.add_verified_block(verified).unwrap_err();
    assert!(
        matches!(&err, ChainError::Invalid { error, .. } if matches!(**error, BlockError::TooManyTxs { .. })),
        "{err:?}"
    );
    assert_eq!(chain.tip().height, 0);
}
