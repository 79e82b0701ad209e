#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! Cost of recording through the facade, and of rendering a scrape.
//!
//! Baseline: `update_chain_height` (an unlabelled gauge) on the Prometheus
//! recorder. `no_recorder` is what an embedder without an exporter pays.

use std::hint::black_box;
use std::time::Duration;

use blyan_ops::{
    BlockStatus, Direction, MessageStatus, MessageType, build_recorder, metrics_collector as mc,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn recording(c: &mut Criterion) {
    let (recorder, handle) = build_recorder().unwrap();
    let mut group = c.benchmark_group("record");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("no_recorder/update_chain_height", |b| {
        b.iter(|| mc::update_chain_height(black_box(42)));
    });
    metrics::with_local_recorder(&recorder, || {
        mc::describe_all();
        mc::register_all();
        group.bench_function("update_chain_height", |b| {
            b.iter(|| mc::update_chain_height(black_box(42)));
        });
        group.bench_function("set_peers", |b| {
            b.iter(|| mc::set_peers(black_box(Direction::Inbound), black_box(8)));
        });
        group.bench_function("record_message", |b| {
            b.iter(|| {
                mc::record_message(black_box(MessageType::BlockGossip), MessageStatus::Received)
            });
        });
        group.bench_function("record_block", |b| {
            b.iter(|| {
                mc::record_block(black_box(BlockStatus::Imported), Duration::from_micros(900))
            });
        });
    });
    group.finish();

    let mut group = c.benchmark_group("scrape");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("render_all_series", |b| {
        b.iter(|| black_box(handle.render()))
    });
    group.finish();
}

criterion_group!(benches, recording);
criterion_main!(benches);
