#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! Fork-choice core costs: planning and committing a reorg of depth 10 and 100 (the tree
//! part only; reverting and applying state comes with the chain manager), and linear insert
//! throughput with pruning and the retention window at work.
//!
//! Run: `cargo bench -p blyan-consensus --bench reorg -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use blyan_consensus::{BlockMeta, Decision, ForkChoice, ForkChoiceConfig};
use blyan_crypto::{Hash, sha256};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

fn genesis() -> BlockMeta {
    BlockMeta {
        hash: sha256(b"genesis"),
        parent: Hash::ZERO,
        height: 0,
        slot: 0,
        producer: [1; 32],
    }
}

fn child(parent: &BlockMeta, id: u64, gap: u64) -> BlockMeta {
    BlockMeta {
        hash: sha256(&id.to_be_bytes()),
        parent: parent.hash,
        height: parent.height + 1,
        slot: parent.slot + gap,
        producer: [(id % 4) as u8; 32],
    }
}

/// Inserts and commits, following every tip update.
fn import(core: &mut ForkChoice, meta: BlockMeta) {
    match core.insert(meta, ()).unwrap().decision {
        Decision::Extended(update) | Decision::Reorg(update) => {
            core.commit(&update).unwrap();
        }
        _ => {}
    }
}

/// A 300-block canonical chain plus a side branch forking `depth` below the tip and as high
/// as the tip; returns the core and the block that makes the branch win.
fn reorg_setup(depth: u64) -> (ForkChoice, BlockMeta) {
    let mut core = ForkChoice::new(genesis(), ForkChoiceConfig::default()).unwrap();
    let mut tip = genesis();
    for id in 1..=300 {
        let block = child(&tip, id, 1);
        import(&mut core, block);
        tip = block;
    }
    let fork_hash = core.canonical_hash(300 - depth).unwrap();
    let mut side = *core.get(&fork_hash).unwrap();
    for i in 0..depth {
        let block = child(&side, 1_000_000 + i, 2);
        import(&mut core, block);
        side = block;
    }
    (core, child(&side, 2_000_000, 1))
}

fn bench_reorg(c: &mut Criterion) {
    let mut group = c.benchmark_group("reorg");
    for depth in [10u64, 100] {
        let (core, winner) = reorg_setup(depth);
        group.bench_function(format!("plan_and_commit/depth_{depth}"), |b| {
            b.iter_batched(
                || core.clone(),
                |mut core| {
                    let Decision::Reorg(update) = core.insert(winner, ()).unwrap().decision else {
                        panic!("expected a reorg");
                    };
                    assert_eq!(update.depth(), depth);
                    black_box(core.commit(&update).unwrap());
                    core
                },
                BatchSize::LargeInput,
            );
        });
        // Baseline for the ratio: the clone the batched setup pays is excluded, but the
        // same-depth extension (insert + commit of one block) shows the fixed cost.
        group.bench_function(format!("extend_baseline/depth_{depth}"), |b| {
            let tip = *core.tip();
            let next = child(&tip, 3_000_000, 1);
            b.iter_batched(
                || core.clone(),
                |mut core| {
                    import(&mut core, black_box(next));
                    core
                },
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

fn bench_insert(c: &mut Criterion) {
    const BLOCKS: u64 = 10_000;
    let blocks: Vec<BlockMeta> = {
        let mut out = Vec::with_capacity(BLOCKS as usize);
        let mut tip = genesis();
        for id in 1..=BLOCKS {
            tip = child(&tip, id, 1);
            out.push(tip);
        }
        out
    };
    let mut group = c.benchmark_group("insert");
    group.throughput(Throughput::Elements(BLOCKS));
    group.sample_size(10);
    group.bench_function("linear_chain_10k", |b| {
        b.iter(|| {
            let mut core = ForkChoice::new(genesis(), ForkChoiceConfig::default()).unwrap();
            for block in &blocks {
                import(&mut core, *block);
            }
            black_box(core.tip_height())
        });
    });
    group.finish();
}

criterion_group!(benches, bench_reorg, bench_insert);
criterion_main!(benches);
