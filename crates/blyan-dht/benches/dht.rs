#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]
//! `closest_peers` on a full and on a typical routing table, and lookups in the seeded
//! discrete-event simulator (`blyan_dht::sim`, the same one the integration tests and the
//! `simulate` example use).

use std::hint::black_box;
use std::net::SocketAddr;
use std::time::Duration;

use blyan_crypto::{PeerId, sha256};
use blyan_dht::sim::{SimConfig, Simulation};
use blyan_dht::{Key, NodeInfo, RoutingConfig, RoutingTable, Timestamp};
use criterion::{Criterion, criterion_group, criterion_main};

/// Reproducible pseudo-random 32-byte strings: SHA-256 of a stream label and a counter.
struct Ids {
    label: u8,
    next: u64,
}

impl Ids {
    fn new(label: u8) -> Self {
        Self { label, next: 0 }
    }

    fn bytes32(&mut self) -> [u8; 32] {
        self.next += 1;
        let mut input = [0u8; 9];
        input[0] = self.label;
        input[1..].copy_from_slice(&self.next.to_le_bytes());
        sha256(&input).to_bytes()
    }
}

fn node(i: usize, id: [u8; 32]) -> NodeInfo {
    let ip = [10, (i >> 8) as u8, i as u8, 1];
    NodeInfo::new(PeerId::from_bytes(id), [SocketAddr::from((ip, 4000))]).unwrap()
}

/// Every bucket as full as the key space allows: about 5,000 entries around id zero.
fn full_table() -> RoutingTable {
    let mut table = RoutingTable::new(PeerId::from_bytes([0; 32]), RoutingConfig::default());
    let mut rng = Ids::new(1);
    let mut i = 0;
    for bucket in 0..256usize {
        let fill = if bucket < 5 { 1usize << bucket } else { 20 };
        for j in 0..fill {
            // Highest set bit = `bucket`, lower bits random (or enumerated for tiny buckets).
            let mut id = rng.bytes32();
            let byte = 31 - bucket / 8;
            for b in id.iter_mut().take(byte) {
                *b = 0;
            }
            let bit = bucket % 8;
            let mask = ((1u16 << bit) - 1) as u8;
            id[byte] = (1 << bit) | (id[byte] & mask);
            if bucket < 5 {
                id = [0; 32];
                id[31] = ((1usize << bucket) | j) as u8;
            }
            i += 1;
            table.on_response(Timestamp::ZERO, node(i, id));
        }
    }
    table
}

/// What a node in a 10,000-node network holds: 10,000 random ids offered, about 280 kept.
fn typical_table() -> RoutingTable {
    let mut table = RoutingTable::new(PeerId::from_bytes([0; 32]), RoutingConfig::default());
    let mut rng = Ids::new(2);
    for i in 0..10_000 {
        table.on_response(Timestamp::ZERO, node(i, rng.bytes32()));
    }
    table
}

fn closest_peers(c: &mut Criterion) {
    let mut group = c.benchmark_group("closest_peers");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, table) in [("full", full_table()), ("typical", typical_table())] {
        eprintln!("{name} table: {} entries", table.len());
        let mut rng = Ids::new(3);
        let targets: Vec<Key> = (0..64).map(|_| Key::from_bytes(rng.bytes32())).collect();
        let mut t = 0;
        group.bench_function(format!("{name}/k20"), |b| {
            b.iter(|| {
                t = (t + 1) % targets.len();
                black_box(table.closest_peers(&targets[t], 20))
            })
        });
        group.bench_function(format!("{name}/k20_diverse"), |b| {
            b.iter(|| {
                t = (t + 1) % targets.len();
                black_box(table.closest_peers_diverse(&targets[t], 20))
            })
        });
    }
    group.finish();
}

fn simulated_lookup(c: &mut Criterion) {
    let mut sim = Simulation::new(SimConfig {
        seed: 7,
        ..SimConfig::default()
    });
    sim.grow(1000, Duration::from_millis(20));
    sim.run_for(Duration::from_secs(30));
    let mut group = c.benchmark_group("simulated_lookup");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    // One lookup of a random key from a random node, run to its end in simulated time.
    group.bench_function("1000_nodes", |b| {
        b.iter(|| black_box(sim.measure_lookups(1, Duration::ZERO).mean_rpcs()))
    });
    group.finish();
}

criterion_group!(benches, closest_peers, simulated_lookup);
criterion_main!(benches);
