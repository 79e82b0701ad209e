//! Properties of fork choice over random block trees delivered in random orders.
//!
//! Stated with care: first seen wins at equal height, so when several leaves share the
//! greatest height the final tip depends on arrival order; its height never does, and when
//! the highest leaf is unique the tip is that leaf whatever the order.

use std::collections::HashSet;

use blyan_consensus::{BlockMeta, ForkChoiceConfig, OrphanConfig};
use proptest::prelude::*;
use proptest::sample::Index;

use crate::fork_choice_driver::{Driver, child, genesis};

/// One block per entry: which earlier block is its parent (`recent` picks among the last
/// three, which makes long branches likely), and its slot gap.
type TreeSpec = Vec<(Index, bool, u64)>;

fn tree_spec(max_blocks: usize) -> impl Strategy<Value = TreeSpec> {
    prop::collection::vec((any::<Index>(), any::<bool>(), 1..4u64), 1..max_blocks)
}

fn build(spec: &TreeSpec) -> Vec<BlockMeta> {
    let mut blocks = vec![genesis()];
    for (i, (index, recent, gap)) in spec.iter().enumerate() {
        let parent = if *recent {
            let window = blocks.len().min(3);
            blocks[blocks.len() - window + index.index(window)]
        } else {
            blocks[index.index(blocks.len())]
        };
        blocks.push(child(&parent, i as u64 + 1, *gap));
    }
    blocks.remove(0);
    blocks
}

/// `blocks` reordered by the random `keys` (ties keep the original order).
fn shuffled(blocks: &[BlockMeta], keys: &[u64]) -> Vec<BlockMeta> {
    let mut order: Vec<usize> = (0..blocks.len()).collect();
    order.sort_by_key(|&i| (keys[i % keys.len()], i));
    order.into_iter().map(|i| blocks[i]).collect()
}

fn roomy() -> ForkChoiceConfig {
    ForkChoiceConfig {
        max_reorg_depth: 1_000,
        canonical_retention: 1_001,
        max_side_blocks: 10_000,
        orphans: OrphanConfig {
            max_orphans: 1_000,
            max_per_producer: 1_000,
            max_height_ahead: 1_000,
        },
        ..ForkChoiceConfig::default()
    }
}

/// Leaves of the tree formed by `blocks` (blocks nobody names as parent).
fn leaves(blocks: &[BlockMeta]) -> Vec<BlockMeta> {
    let parents: HashSet<_> = blocks.iter().map(|b| b.parent).collect();
    blocks
        .iter()
        .filter(|b| !parents.contains(&b.hash))
        .copied()
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Any delivery order (orphans included) ends on a highest leaf; the same one when it is
    /// unique. Every update the driver executed kept its model state equal to the chain.
    #[test]
    fn any_order_reaches_a_highest_leaf(spec in tree_spec(40), keys in prop::collection::vec(any::<u64>(), 40)) {
        let blocks = build(&spec);
        let max_height = blocks.iter().map(|b| b.height).max().unwrap();
        let highest: Vec<_> = leaves(&blocks).into_iter().filter(|b| b.height == max_height).collect();

        let mut in_order = Driver::new(roomy());
        for meta in &blocks {
            in_order.import(*meta).unwrap();
        }
        let mut random = Driver::new(roomy());
        for meta in shuffled(&blocks, &keys) {
            random.import(meta).unwrap();
        }
        for driver in [&in_order, &random] {
            driver.assert_consistent();
            prop_assert_eq!(driver.core.orphan_count(), 0);
            prop_assert_eq!(driver.core.block_count(), blocks.len() + 1);
            prop_assert_eq!(driver.core.tip().height, max_height);
            prop_assert!(highest.iter().any(|leaf| leaf.hash == driver.core.tip().hash));
        }
        if highest.len() == 1 {
            prop_assert_eq!(in_order.core.tip().hash, random.core.tip().hash);
        }
        // Every live branch is listed once, by its leaf.
        let side_leaves = leaves(&blocks).len() - 1;
        prop_assert_eq!(random.core.get_fork_chains().len(), side_leaves);
    }

    /// With a tight reorg window, default orphan limits and blocks that fail their state
    /// transition, whatever is accepted keeps the model state equal to the canonical chain,
    /// no bad block ever becomes canonical, and no side branch outlives the window.
    #[test]
    fn tight_window_with_failures_stays_consistent(
        spec in tree_spec(60),
        keys in prop::collection::vec(any::<u64>(), 60),
        bad in prop::collection::vec(any::<Index>(), 0..6),
    ) {
        let blocks = build(&spec);
        let config = ForkChoiceConfig {
            max_reorg_depth: 3,
            finality_depth: 2,
            canonical_retention: 5,
            max_side_blocks: 8,
            ..ForkChoiceConfig::default()
        };
        let mut driver = Driver::new(config);
        driver.bad = bad.iter().map(|index| blocks[index.index(blocks.len())].hash).collect();
        for meta in shuffled(&blocks, &keys) {
            // Refusals (too deep, below irreversible, invalid ancestry, full) are fine here.
            let _ = driver.import(meta);
            driver.assert_consistent();
            prop_assert!(driver.core.side_block_count() <= 8 + 3 + 1);
        }
        for hash in &driver.bad {
            prop_assert!(!driver.core.is_canonical(hash));
        }
        prop_assert!(driver.reorg_depths.iter().all(|&depth| depth <= 3));
    }
}
