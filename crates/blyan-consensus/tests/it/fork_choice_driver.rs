//! A model chain manager that drives `ForkChoice` the way the real one will: the "state" is
//! the list of applied block hashes, an update runs as one transaction on a copy, and blocks
//! listed in `bad` fail their state transition.

use std::collections::{HashSet, VecDeque};
use std::sync::OnceLock;

use blyan_consensus::{
    BlockMeta, CommitOutcome, Decision, Equivocation, ForkChoice, ForkChoiceConfig, InsertError,
    TipUpdate,
};
use blyan_crypto::{Hash, KeyPair, sha256};

/// Four validator keys, made once.
pub(crate) fn validator(index: usize) -> [u8; 32] {
    static KEYS: OnceLock<Vec<[u8; 32]>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0u8..4)
            .map(|n| KeyPair::from_seed(&[n + 1; 32]).public_key().to_bytes())
            .collect()
    });
    keys[index % keys.len()]
}

pub(crate) fn genesis() -> BlockMeta {
    BlockMeta {
        hash: sha256(b"genesis"),
        parent: Hash::ZERO,
        height: 0,
        slot: 0,
        producer: validator(0),
    }
}

/// A child of `parent` with a distinct hash per `id`, `gap` slots later, produced by the
/// slot's round-robin validator.
pub(crate) fn child(parent: &BlockMeta, id: u64, gap: u64) -> BlockMeta {
    let slot = parent.slot + gap.max(1);
    BlockMeta {
        hash: sha256(&[b"block".as_slice(), &id.to_be_bytes()].concat()),
        parent: parent.hash,
        height: parent.height + 1,
        slot,
        producer: validator(usize::try_from(slot).unwrap()),
    }
}

/// `len` blocks on top of `from`, ids `first_id..`.
pub(crate) fn branch(from: &BlockMeta, first_id: u64, len: usize) -> Vec<BlockMeta> {
    let mut out: Vec<BlockMeta> = Vec::with_capacity(len);
    for i in 0..len {
        let parent = out.last().unwrap_or(from);
        out.push(child(parent, first_id + i as u64, 1));
    }
    out
}

pub(crate) struct Driver {
    pub(crate) core: ForkChoice<()>,
    /// Model state: every applied hash from genesis, in order.
    pub(crate) state: Vec<Hash>,
    /// Blocks whose state transition fails.
    pub(crate) bad: HashSet<Hash>,
    pub(crate) reorg_depths: Vec<u64>,
    pub(crate) pruned: Vec<Hash>,
    pub(crate) equivocations: Vec<Equivocation>,
    pub(crate) commits: Vec<CommitOutcome>,
}

impl Driver {
    pub(crate) fn new(config: ForkChoiceConfig) -> Self {
        let root = genesis();
        Self {
            core: ForkChoice::new(root, config).unwrap(),
            state: vec![root.hash],
            bad: HashSet::new(),
            reorg_depths: Vec::new(),
            pruned: Vec::new(),
            equivocations: Vec::new(),
            commits: Vec::new(),
        }
    }

    /// Imports `meta` and then every orphan it releases (parents first). Returns what the
    /// core said about `meta` itself.
    pub(crate) fn import(&mut self, meta: BlockMeta) -> Result<Decision, InsertError> {
        let mut first = None;
        let mut queue = VecDeque::from([meta]);
        while let Some(next) = queue.pop_front() {
            let result = self.core.insert(next, ());
            let summary = match result {
                Ok(insertion) => {
                    self.equivocations.extend(insertion.equivocation);
                    queue.extend(insertion.released.into_iter().map(|(meta, ())| meta));
                    self.execute(&insertion.decision);
                    Ok(insertion.decision)
                }
                Err(error) => Err(error),
            };
            first.get_or_insert(summary);
        }
        first.unwrap()
    }

    pub(crate) fn import_all(&mut self, metas: &[BlockMeta]) {
        for meta in metas {
            self.import(*meta).unwrap();
        }
    }

    fn execute(&mut self, decision: &Decision) {
        let mut next = match decision {
            Decision::Extended(update) | Decision::Reorg(update) => Some(update.clone()),
            _ => None,
        };
        while let Some(update) = next {
            next = self.run(&update);
        }
    }

    /// Runs one update as a transaction; on a failing block, aborts and invalidates it.
    fn run(&mut self, update: &TipUpdate) -> Option<TipUpdate> {
        let mut tx = self.state.clone();
        for hash in &update.revert {
            assert_eq!(tx.pop(), Some(*hash), "revert order is tip first");
        }
        assert_eq!(tx.last(), Some(&update.fork_point));
        for hash in &update.apply {
            if self.bad.contains(hash) {
                let invalidation = self.core.mark_invalid(*hash).unwrap();
                assert_eq!(invalidation.removed.first(), Some(hash));
                return invalidation.next;
            }
            tx.push(*hash);
        }
        self.state = tx;
        let outcome = self.core.commit(update).unwrap();
        if update.is_reorg() {
            self.reorg_depths.push(update.depth());
        }
        self.pruned.extend(&outcome.pruned);
        self.commits.push(outcome);
        None
    }

    /// The model state equals the core's canonical chain over its retained window, and that
    /// window is a parent-linked path ending at the tip.
    pub(crate) fn assert_consistent(&self) {
        let tip = self.core.tip();
        assert_eq!(self.state.len() as u64, tip.height + 1);
        assert_eq!(self.state.last(), Some(&tip.hash));
        let mut previous: Option<BlockMeta> = None;
        for height in self.core.lowest_height()..=tip.height {
            let hash = self
                .core
                .canonical_hash(height)
                .expect("canonical index hole");
            assert_eq!(self.state[usize::try_from(height).unwrap()], hash);
            let meta = *self.core.get(&hash).expect("canonical block stored");
            assert!(self.core.is_canonical(&hash));
            assert_eq!(meta.height, height);
            if let Some(parent) = previous {
                assert_eq!(meta.parent, parent.hash);
            }
            previous = Some(meta);
        }
        assert_eq!(self.core.canonical_hash(tip.height + 1), None);
        let irreversible = self.core.irreversible_height();
        for fork in self.core.get_fork_chains() {
            assert!(
                fork.fork_height >= irreversible,
                "side branch below irreversible"
            );
            assert!(self.core.is_canonical(&fork.fork_point));
            assert!(!self.core.is_canonical(&fork.tip));
            assert_eq!(fork.length, fork.tip_height - fork.fork_height);
        }
    }
}
