//! Fork choice scenarios through the public API: extension, side chains, first seen wins,
//! reorgs and their depth limit, rollback after a failed apply, pruning, finality, orphans,
//! the invalid cache and equivocation.

use blyan_consensus::{
    Decision, ForkChoice, ForkChoiceConfig, ForkChoiceError, InsertError, OrphanConfig, TipUpdate,
};
use blyan_crypto::Hash;

use crate::fork_choice_driver::{Driver, branch, child, genesis};

fn small(max_reorg_depth: u64) -> ForkChoiceConfig {
    ForkChoiceConfig {
        max_reorg_depth,
        finality_depth: 2.min(max_reorg_depth),
        canonical_retention: max_reorg_depth + 5,
        ..ForkChoiceConfig::default()
    }
}

fn update_of(decision: Decision) -> TipUpdate {
    match decision {
        Decision::Extended(update) | Decision::Reorg(update) => update,
        other => panic!("expected a tip update, got {other:?}"),
    }
}

#[test]
fn extension_side_chain_and_already_known() {
    let mut core: ForkChoice = ForkChoice::new(genesis(), ForkChoiceConfig::default()).unwrap();
    let b1 = child(&genesis(), 1, 1);
    let update = update_of(core.insert(b1, ()).unwrap().decision);
    assert_eq!(
        update,
        TipUpdate {
            old_tip: genesis().hash,
            new_tip: b1.hash,
            fork_point: genesis().hash,
            fork_height: 0,
            revert: vec![],
            apply: vec![b1.hash],
        }
    );
    assert!(!core.is_canonical(&b1.hash), "not canonical before commit");
    assert_eq!(
        core.insert(b1, ()).unwrap().decision,
        Decision::AlreadyKnown
    );
    core.commit(&update).unwrap();
    assert_eq!(core.tip().hash, b1.hash);
    assert!(core.is_canonical(&b1.hash));

    // A sibling at equal height: stored, not canonical.
    let rival = child(&genesis(), 2, 2);
    assert_eq!(
        core.insert(rival, ()).unwrap().decision,
        Decision::SideChain
    );
    assert!(core.contains(&rival.hash) && !core.is_canonical(&rival.hash));
    assert_eq!(core.tip().hash, b1.hash);
}

#[test]
fn equal_height_rival_never_replaces_the_tip() {
    let mut driver = Driver::new(ForkChoiceConfig::default());
    let main = branch(&genesis(), 100, 5);
    driver.import_all(&main);
    let rival = branch(&main[1], 200, 3); // fork at height 2, reaches height 5
    for meta in &rival {
        assert_eq!(driver.import(*meta).unwrap(), Decision::SideChain);
    }
    assert_eq!(driver.core.tip().hash, main[4].hash);
    driver.assert_consistent();
    // One more block on the rival makes it strictly longer: reorg.
    let decision = driver.import(child(&rival[2], 300, 1)).unwrap();
    let update = update_of(decision);
    assert_eq!(update.fork_height, 2);
    assert_eq!(
        update.revert,
        vec![main[4].hash, main[3].hash, main[2].hash]
    );
    assert_eq!(update.apply.len(), 4);
    assert_eq!(update.apply[0], rival[0].hash);
    assert_eq!(driver.core.tip().height, 6);
    assert_eq!(driver.reorg_depths, vec![3]);
    driver.assert_consistent();
}

#[test]
fn first_seen_wins_among_equal_candidates() {
    let mut driver = Driver::new(ForkChoiceConfig::default());
    let a = child(&genesis(), 1, 1);
    let b = child(&genesis(), 2, 2);
    driver.import(a).unwrap();
    driver.import(b).unwrap();
    assert_eq!(driver.core.tip().hash, a.hash);
    // Both grow to height 3: the one that got there first stays.
    let b2 = child(&b, 3, 1);
    let b3 = child(&b2, 4, 1);
    driver.import(b2).unwrap(); // reorg to b's branch (height 2 > 1)
    assert_eq!(driver.core.tip().hash, b2.hash);
    let a2 = child(&a, 5, 5);
    assert_eq!(driver.import(a2).unwrap(), Decision::SideChain);
    driver.import(b3).unwrap();
    let a3 = child(&a2, 6, 1);
    assert_eq!(driver.import(a3).unwrap(), Decision::SideChain);
    assert_eq!(driver.core.tip().hash, b3.hash);
    driver.assert_consistent();
}

#[test]
fn reorg_at_exactly_max_depth_succeeds_one_deeper_is_refused() {
    for max in [5, 100] {
        let mut driver = Driver::new(small(max));
        let n = usize::try_from(max).unwrap() * 2;
        let main = branch(&genesis(), 10_000, n);
        driver.import_all(&main);
        let tip_height = n as u64;
        assert_eq!(driver.core.irreversible_height(), tip_height - max);

        // Forking one below the irreversible block would revert max + 1 blocks.
        let deep_fork = &main[n - usize::try_from(max).unwrap() - 2]; // height tip - max - 1
        let refused = driver.import(child(deep_fork, 20_000, 7));
        assert_eq!(
            refused,
            Err(InsertError::ReorgTooDeep {
                depth: max + 1,
                max
            })
        );

        // Forking at the irreversible block: a branch one longer than the tip reorgs
        // exactly `max` blocks.
        let fork = &main[n - usize::try_from(max).unwrap() - 1]; // height tip - max
        assert_eq!(fork.height, tip_height - max);
        let mut rival = Vec::new();
        let mut parent = *fork;
        for i in 0..=max {
            let block = child(&parent, 30_000 + i, 3);
            rival.push(block);
            parent = block;
        }
        for meta in &rival[..rival.len() - 1] {
            assert_eq!(driver.import(*meta).unwrap(), Decision::SideChain);
        }
        let update = update_of(driver.import(*rival.last().unwrap()).unwrap());
        assert_eq!(update.depth(), max);
        assert_eq!(driver.core.tip().hash, rival.last().unwrap().hash);
        driver.assert_consistent();
    }
}

#[test]
fn failed_apply_during_reorg_keeps_the_old_chain_and_poisons_the_branch() {
    let mut driver = Driver::new(ForkChoiceConfig::default());
    let main = branch(&genesis(), 1, 4);
    driver.import_all(&main);
    let old_state = driver.state.clone();
    // A rival from height 1 that reaches height 5; its second block fails.
    let rival = branch(&main[0], 100, 4);
    driver.bad.insert(rival[1].hash);
    for meta in &rival[..3] {
        assert_eq!(driver.import(*meta).unwrap(), Decision::SideChain);
    }
    let late_child = child(&rival[3], 500, 1); // buffered as an orphan below the bad block
    assert!(matches!(
        driver.import(late_child),
        Ok(Decision::Orphaned { .. })
    ));
    let decision = driver.import(rival[3]).unwrap();
    let update = update_of(decision);
    assert_eq!(update.depth(), 3);
    // The driver failed at rival[1], aborted, and marked it invalid: the old chain stands.
    assert_eq!(driver.state, old_state);
    assert_eq!(driver.core.tip().hash, main[3].hash);
    for meta in &rival[1..] {
        assert!(!driver.core.contains(&meta.hash));
        assert!(driver.core.is_known_invalid(&meta.hash));
    }
    assert!(
        driver.core.contains(&rival[0].hash),
        "the valid prefix stays"
    );
    assert!(
        driver.core.is_known_invalid(&late_child.hash),
        "orphan descendant dropped"
    );
    assert_eq!(driver.core.orphan_count(), 0);
    driver.assert_consistent();

    // Known-bad blocks and their descendants are refused without validation.
    assert_eq!(
        driver.import(rival[1]),
        Err(InsertError::KnownInvalid(rival[1].hash))
    );
    let grandchild = child(&late_child, 501, 1);
    assert_eq!(
        driver.import(grandchild),
        Err(InsertError::InvalidAncestor {
            block: grandchild.hash,
            ancestor: late_child.hash
        })
    );
    assert!(driver.core.is_known_invalid(&grandchild.hash));
}

#[test]
fn failed_apply_moves_to_a_valid_prefix_that_still_wins() {
    let mut driver = Driver::new(ForkChoiceConfig::default());
    let main = branch(&genesis(), 1, 3);
    driver.import_all(&main);
    // Rival from genesis reaching height 6; block at height 6 fails, height 5 still beats 3.
    let rival = branch(&genesis(), 100, 6);
    driver.bad.insert(rival[5].hash);
    driver.import_all(&rival);
    assert_eq!(driver.core.tip().hash, rival[4].hash);
    assert!(driver.core.is_known_invalid(&rival[5].hash));
    assert_eq!(driver.reorg_depths, vec![3]);
    driver.assert_consistent();
}

#[test]
fn commit_refuses_stale_updates_and_canonical_blocks_cannot_be_invalidated() {
    let mut core: ForkChoice = ForkChoice::new(genesis(), ForkChoiceConfig::default()).unwrap();
    let a = child(&genesis(), 1, 1);
    let update = update_of(core.insert(a, ()).unwrap().decision);
    core.commit(&update).unwrap();
    assert_eq!(
        core.commit(&update),
        Err(ForkChoiceError::StaleUpdate { new_tip: a.hash })
    );
    let mut forged = update.clone();
    forged.new_tip = Hash::from_bytes([9; 32]);
    assert_eq!(
        core.commit(&forged),
        Err(ForkChoiceError::UnknownBlock(forged.new_tip))
    );
    assert_eq!(
        core.mark_invalid(a.hash),
        Err(ForkChoiceError::CanonicalBlock(a.hash))
    );
    assert_eq!(
        core.mark_invalid(genesis().hash),
        Err(ForkChoiceError::CanonicalBlock(genesis().hash))
    );
}

#[test]
fn structural_lies_are_refused() {
    let mut core: ForkChoice = ForkChoice::new(genesis(), ForkChoiceConfig::default()).unwrap();
    let mut wrong_height = child(&genesis(), 1, 1);
    wrong_height.height = 5;
    assert_eq!(
        core.insert(wrong_height, ()),
        Err(InsertError::HeightMismatch {
            block: wrong_height.hash,
            height: 5,
            parent_height: 0
        })
    );
    let mut same_slot = child(&genesis(), 2, 1);
    same_slot.slot = 0;
    assert!(matches!(
        core.insert(same_slot, ()),
        Err(InsertError::SlotNotAfterParent { .. })
    ));
    assert_eq!(core.block_count(), 1);
}

#[test]
fn irreversible_side_branches_are_pruned_and_reported() {
    let mut driver = Driver::new(small(3));
    let main = branch(&genesis(), 1, 3);
    driver.import_all(&main);
    let side = branch(&main[0], 100, 2); // forks at height 1, reaches 3
    driver.import_all(&side);
    let forks = driver.core.get_fork_chains();
    assert_eq!(forks.len(), 1);
    assert_eq!(forks[0].fork_point, main[0].hash);
    assert_eq!(forks[0].tip, side[1].hash);
    assert_eq!(forks[0].length, 2);
    // Tip 4: irreversible height 1 (the fork point itself): the side branch is still live.
    driver.import(child(&main[2], 10, 1)).unwrap();
    assert_eq!(driver.core.get_fork_chains().len(), 1);
    // Tip 5: irreversible height 2, the branch forks below it: pruned, parents first.
    let tip = *driver.core.tip();
    driver.import(child(&tip, 11, 1)).unwrap();
    assert_eq!(driver.pruned, vec![side[0].hash, side[1].hash]);
    assert!(driver.core.get_fork_chains().is_empty());
    assert!(!driver.core.contains(&side[0].hash));
    // A late block on the pruned branch, at height 3 = irreversible + 1, is refused: its
    // parent could only be a pruned side block.
    assert!(matches!(
        driver.import(child(&side[0], 12, 1)),
        Err(InsertError::BelowIrreversible { .. })
    ));
    driver.assert_consistent();
}

#[test]
fn memory_stays_bounded_over_a_long_chain_with_many_forks() {
    let config = ForkChoiceConfig {
        max_reorg_depth: 20,
        finality_depth: 5,
        canonical_retention: 50,
        ..ForkChoiceConfig::default()
    };
    let mut driver = Driver::new(config);
    let mut id = 1_000_000;
    let mut max_blocks = 0;
    for step in 0..3_000u64 {
        let tip = *driver.core.tip();
        // Every third step, a two-block side branch from a few blocks back.
        if step % 3 == 0 && tip.height > 4 {
            let fork = driver
                .core
                .get(&driver.core.canonical_hash(tip.height - 3).unwrap())
                .copied()
                .unwrap();
            let a = child(&fork, id, 7);
            let b = child(&a, id + 1, 1);
            id += 2;
            driver.import(a).unwrap();
            driver.import(b).unwrap();
        }
        driver.import(child(&tip, id, 1)).unwrap();
        id += 1;
        max_blocks = max_blocks.max(driver.core.block_count());
    }
    driver.assert_consistent();
    assert_eq!(driver.core.tip().height, 3_000);
    // 51 canonical blocks plus the side branches within 20 blocks of the tip (7 forks * 2).
    assert!(max_blocks <= 51 + 2 * 8, "tree grew to {max_blocks}");
    assert!(
        driver.pruned.len() > 1_900,
        "pruned {}",
        driver.pruned.len()
    );
    for hash in &driver.pruned {
        assert!(!driver.core.contains(hash));
    }
    assert_eq!(driver.core.lowest_height(), 3_000 - 50);
    assert_eq!(driver.core.canonical_hash(3_000 - 51), None);
}

#[test]
fn finality_is_depth_on_the_canonical_chain() {
    let mut driver = Driver::new(ForkChoiceConfig::default());
    let main = branch(&genesis(), 1, 10);
    driver.import_all(&main);
    assert_eq!(driver.core.finalized_height(), Some(0));
    assert!(driver.core.is_finalized(&genesis().hash));
    assert!(!driver.core.is_finalized(&main[0].hash));
    driver.import(child(&main[9], 11, 1)).unwrap();
    assert!(driver.core.is_finalized(&main[0].hash));
    assert!(!driver.core.is_finalized(&main[1].hash));
    assert_eq!(driver.commits.last().unwrap().finalized_height, Some(1));
    let side = child(&genesis(), 99, 50);
    driver.import(side).unwrap();
    assert!(
        !driver.core.is_finalized(&side.hash),
        "side blocks are never final"
    );
}

#[test]
fn orphans_are_released_in_order_when_the_parent_arrives() {
    let mut driver = Driver::new(ForkChoiceConfig::default());
    let chain = branch(&genesis(), 1, 6);
    for meta in chain[1..].iter().rev() {
        assert!(matches!(
            driver.import(*meta),
            Ok(Decision::Orphaned { .. })
        ));
    }
    assert_eq!(driver.core.orphan_count(), 5);
    assert_eq!(driver.core.tip().height, 0);
    assert_eq!(driver.import(chain[4]).unwrap(), Decision::AlreadyKnown);
    // The missing link releases the whole chain, parents first.
    driver.import(chain[0]).unwrap();
    assert_eq!(driver.core.orphan_count(), 0);
    assert_eq!(driver.core.tip().hash, chain[5].hash);
    driver.assert_consistent();
}

#[test]
fn orphan_buffer_is_bounded_by_height_count_and_producer() {
    let config = ForkChoiceConfig {
        orphans: OrphanConfig {
            max_orphans: 4,
            max_per_producer: 2,
            max_height_ahead: 10,
        },
        ..ForkChoiceConfig::default()
    };
    let mut core: ForkChoice = ForkChoice::new(genesis(), config).unwrap();
    let unknown = {
        let mut meta = genesis();
        meta.hash = Hash::from_bytes([7; 32]);
        meta.height = 1;
        meta.slot = 1;
        meta
    };
    assert_eq!(
        core.insert(child(&branch(&unknown, 1, 10)[9], 50, 1), ()),
        Err(InsertError::OrphanTooFarAhead {
            height: 12,
            max_height: 10
        })
    );
    // Same slot gap so one producer signs all of these (slot = 1 + 4k).
    let mut parent = unknown;
    let mut same_producer = Vec::new();
    for i in 0..3 {
        let meta = child(&parent, 60 + i, 4);
        same_producer.push(meta);
        parent = meta;
    }
    core.insert(same_producer[0], ()).unwrap();
    core.insert(same_producer[1], ()).unwrap();
    assert_eq!(
        core.insert(same_producer[2], ()),
        Err(InsertError::ProducerOrphanLimit { max: 2 })
    );
    // Other producers fill the pool; then a lower orphan evicts the highest one.
    let others: Vec<_> = (0..2)
        .map(|i| child(&same_producer[1], 70 + i, 1 + i))
        .collect();
    core.insert(others[0], ()).unwrap();
    core.insert(others[1], ()).unwrap();
    assert_eq!(core.orphan_count(), 4);
    let high = child(&others[1], 80, 1);
    assert_eq!(core.insert(high, ()), Err(InsertError::OrphanPoolFull));
    let low = child(&unknown, 90, 1);
    match core.insert(low, ()).unwrap().decision {
        Decision::Orphaned { evicted } => assert_eq!(evicted, vec![others[1].hash]),
        other => panic!("{other:?}"),
    }
    assert_eq!(core.orphan_count(), 4);
}

#[test]
fn equivocation_is_reported_once_and_the_block_is_kept() {
    let mut driver = Driver::new(ForkChoiceConfig::default());
    let first = child(&genesis(), 1, 1);
    let mut second = child(&genesis(), 2, 1);
    assert_eq!(first.slot, second.slot);
    driver.import(first).unwrap();
    assert_eq!(driver.import(second).unwrap(), Decision::SideChain);
    assert_eq!(driver.equivocations.len(), 1);
    let evidence = driver.equivocations[0];
    assert_eq!((evidence.first, evidence.second), (first.hash, second.hash));
    assert_eq!(
        (evidence.producer, evidence.slot),
        (first.producer, first.slot)
    );
    second.hash = Hash::from_bytes([3; 32]);
    driver.import(second).unwrap();
    assert_eq!(driver.equivocations.len(), 1, "reported once per slot");
}

#[test]
fn side_blocks_are_capped_but_a_better_chain_is_always_accepted() {
    let config = ForkChoiceConfig {
        max_side_blocks: 3,
        ..ForkChoiceConfig::default()
    };
    let mut driver = Driver::new(config);
    let main = branch(&genesis(), 1, 5);
    driver.import_all(&main);
    let side = branch(&main[0], 100, 4);
    driver.import_all(&side[..3]);
    assert_eq!(driver.core.side_block_count(), 3);
    assert_eq!(
        driver.import(child(&main[1], 200, 9)),
        Err(InsertError::SideBlocksFull { max: 3 })
    );
    // side[3] reaches height 5 = tip: not better, refused.
    assert_eq!(
        driver.import(side[3]),
        Err(InsertError::SideBlocksFull { max: 3 })
    );
    // The main chain keeps growing regardless.
    driver.import(child(&main[4], 300, 1)).unwrap();
    assert_eq!(driver.core.tip().height, 6);
}

#[test]
fn restore_rebuilds_the_window_and_rejects_broken_chains() {
    let chain: Vec<_> = std::iter::once(genesis())
        .chain(branch(&genesis(), 1, 20))
        .collect();
    let config = small(5);
    let core: ForkChoice = ForkChoice::restore(chain.iter().copied(), config).unwrap();
    assert_eq!(core.tip().hash, chain[20].hash);
    assert_eq!(core.lowest_height(), 10);
    assert_eq!(core.irreversible_height(), 15);
    let mut broken = chain.clone();
    broken.remove(7);
    assert_eq!(
        ForkChoice::<()>::restore(broken, config).unwrap_err(),
        ForkChoiceError::BrokenChain(chain[8].hash)
    );
    assert_eq!(
        ForkChoice::<()>::restore([], config).unwrap_err(),
        ForkChoiceError::EmptyChain
    );
    let bad = ForkChoiceConfig {
        finality_depth: 200,
        ..ForkChoiceConfig::default()
    };
    assert!(matches!(
        ForkChoice::<()>::new(genesis(), bad),
        Err(ForkChoiceError::InvalidConfig(_))
    ));
}
