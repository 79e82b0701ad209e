#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! The gossip router's hot paths against a bare baseline that does only the unavoidable
//! work (compute the id; for a new message also check the signature) with a `HashSet`:
//!
//! - `duplicate`: a copy of an envelope already seen (the common case in gossip);
//! - `new_message`: a fresh envelope through signature, replay window, seen-cache,
//!   delivery and relay to 16 peers.

use std::collections::HashSet;
use std::hint::black_box;
use std::time::{Duration, Instant};

use blyan_consensus::Transaction;
use blyan_crypto::{Hash, KeyPair, PeerId};
use blyan_p2p::{
    GossipAction, GossipConfig, GossipEnvelope, GossipMessage, GossipPayload, GossipRouter,
    Validation,
};
use blyan_security::Now;
use criterion::{Criterion, criterion_group, criterion_main};

const CHAIN_ID: u32 = 1;
const UNIX_MS: u64 = 1_700_000_000_000;

fn envelope(key: &KeyPair, nonce: u64) -> GossipEnvelope {
    let tx = Transaction {
        chain_id: CHAIN_ID,
        from: key.public_key(),
        to: key.address(),
        amount: nonce,
        fee: 1,
        nonce,
        data: vec![0; 64],
    }
    .sign(key);
    GossipEnvelope::sign(key, CHAIN_ID, nonce, UNIX_MS, GossipPayload::Tx(tx)).unwrap()
}

fn router() -> GossipRouter {
    let mut router = GossipRouter::new(GossipConfig::new(CHAIN_ID));
    for i in 0..16u8 {
        router.add_peer(PeerId::from_bytes([i + 1; 32]));
    }
    router
}

fn duplicate(c: &mut Criterion) {
    let key = KeyPair::from_seed(&[1; 32]);
    let now = Now::new(Duration::ZERO, UNIX_MS);
    let env = envelope(&key, 1);
    let from = PeerId::from_bytes([1; 32]);
    let mut group = c.benchmark_group("gossip/duplicate");

    let mut r = router();
    for action in r.on_message(now, from, GossipMessage::Envelope(Box::new(env.clone()))) {
        if let GossipAction::Deliver { id, .. } = action {
            let _ = r.validated(&id, Validation::Accept);
        }
    }
    group.bench_function("router", |b| {
        b.iter(|| {
            let message = GossipMessage::Envelope(Box::new(env.clone()));
            black_box(r.on_message(now, from, message))
        })
    });

    let mut seen: HashSet<Hash> = HashSet::new();
    seen.insert(env.id().unwrap());
    group.bench_function("hashset_baseline", |b| {
        b.iter(|| {
            let copy = Box::new(env.clone());
            black_box(seen.contains(&copy.id().unwrap()))
        })
    });
    group.finish();
}

fn new_message(c: &mut Criterion) {
    let key = KeyPair::from_seed(&[2; 32]);
    let from = PeerId::from_bytes([1; 32]);
    let mut pool: Vec<GossipEnvelope> = Vec::new();
    let mut group = c.benchmark_group("gossip/new_message");
    let mut take = |n: u64| {
        while (pool.len() as u64) < n {
            let nonce = pool.len() as u64 + 1;
            pool.push(envelope(&key, nonce));
        }
        pool[..n as usize].to_vec()
    };

    let batch = take(20_000);
    group.bench_function("router_deliver_and_relay", |b| {
        b.iter_custom(|iters| {
            let mut r = router();
            let now = Now::new(Duration::ZERO, UNIX_MS);
            let envelopes: Vec<_> = batch.iter().cycle().take(iters as usize).cloned().collect();
            let started = Instant::now();
            for (i, env) in envelopes.into_iter().enumerate() {
                if i % batch.len() == 0 {
                    // A new pass over the pool must look new: start a fresh router.
                    r = router();
                }
                for action in r.on_message(now, from, GossipMessage::Envelope(Box::new(env))) {
                    if let GossipAction::Deliver { id, .. } = action {
                        black_box(r.validated(&id, Validation::Accept));
                    }
                }
            }
            started.elapsed()
        })
    });

    group.bench_function("verify_and_hashset_baseline", |b| {
        b.iter_custom(|iters| {
            let mut seen: HashSet<Hash> = HashSet::new();
            let envelopes: Vec<_> = batch.iter().cycle().take(iters as usize).cloned().collect();
            let started = Instant::now();
            for (i, env) in envelopes.into_iter().enumerate() {
                if i % batch.len() == 0 {
                    seen.clear();
                }
                let id = env.verify(CHAIN_ID).unwrap();
                black_box(seen.insert(id));
            }
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20);
    targets = duplicate, new_message
}
criterion_main!(benches);
