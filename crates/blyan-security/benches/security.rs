#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]
//! `check_message` with 10,000 admitted peers against a bare governor keyed check on the
//! same 10,000 keys, plus a per-peer memory figure.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use blyan_crypto::PeerId;
use blyan_security::{
    ConnectionLimits, Direction, MessageKind, MessageMeta, Now, PeerScores, RateLimitConfig,
    RateQuota, ReplayGuard, SecurityConfig, SecurityManager,
};
use criterion::{Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};

const PEERS: u32 = 10_000;

fn peer(i: u32) -> PeerId {
    let mut b = [0u8; 32];
    b[..4].copy_from_slice(&i.to_be_bytes());
    b[31] = 0x5a;
    PeerId::from_bytes(b)
}

fn ip(i: u32) -> IpAddr {
    // One peer per IP, in 40 /24s' worth of distinct subnets per 10k.
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i))
}

/// Quotas so large that the benchmark measures the check, not the refusal path.
fn roomy() -> SecurityConfig {
    let huge = RateQuota::per_second(1_000_000_000, u32::MAX);
    SecurityConfig {
        rate: RateLimitConfig {
            peer_messages: huge,
            peer_bytes_kib: huge,
            ip_messages: huge,
            ip_bytes_kib: huge,
            connection_attempts: huge,
            max_tracked_ips: PEERS as usize,
            ..RateLimitConfig::default()
        },
        connections: ConnectionLimits {
            max_inbound: PEERS as usize,
            max_per_subnet: PEERS as usize,
            ..ConnectionLimits::default()
        },
        ..SecurityConfig::default()
    }
}

fn bench(c: &mut Criterion) {
    let mut manager = SecurityManager::new(roomy()).unwrap();
    let start = Now::new(Duration::from_secs(1), 1_700_000_000_000);
    for i in 0..PEERS {
        let _ = manager
            .check_connection(start, peer(i), ip(i), Direction::Inbound)
            .unwrap();
    }
    assert_eq!(manager.table_sizes().connections, PEERS as usize);

    let keyed = RateLimiter::keyed(Quota::per_second(NonZeroU32::new(1_000_000_000).unwrap()));
    for i in 0..PEERS {
        keyed.check_key(&peer(i)).unwrap();
    }

    let meta = MessageMeta::direct(MessageKind::Transaction, 300);
    let mut group = c.benchmark_group("check_message_10k_peers");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    let mut i = 0u32;
    group.bench_function("governor_keyed_check_key (baseline)", |b| {
        b.iter(|| {
            i = (i + 7919) % PEERS;
            black_box(keyed.check_key(black_box(&peer(i)))).ok();
        })
    });

    let mut i = 0u32;
    let mut now = start;
    group.bench_function("security_manager_check_message", |b| {
        b.iter(|| {
            i = (i + 7919) % PEERS;
            now = now + Duration::from_nanos(50);
            black_box(manager.check_message(now, black_box(&peer(i)), ip(i), &meta)).unwrap();
        })
    });

    let mut i = 0u32;
    let mut now = start;
    group.bench_function("security_manager_check_message_relayed", |b| {
        b.iter(|| {
            i = (i + 7919) % PEERS;
            now = now + Duration::from_micros(1);
            let meta = MessageMeta::relayed(
                MessageKind::Transaction,
                300,
                peer(i % 64),
                // Strictly increasing per origin, as origins number their messages.
                now.monotonic().as_nanos() as u64,
                now.unix_ms(),
            );
            black_box(manager.check_message(now, black_box(&peer(i)), ip(i), &meta)).unwrap();
        })
    });
    group.finish();

    println!(
        "memory: {} B per admitted connection, {} B per score, {} B per replay origin \
         (entries, before map overhead); {:?}",
        SecurityManager::connection_entry_size(),
        PeerScores::entry_size(),
        ReplayGuard::entry_size(),
        manager.table_sizes()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
