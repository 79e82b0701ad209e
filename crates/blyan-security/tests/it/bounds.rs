use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use blyan_security::{
    BanConfig, BanReason, ConnectionLimits, Direction, MessageKind, MessageMeta, PeerEvent,
    RateLimitConfig, RateQuota, ReplayConfig, ScoreConfig, SecurityConfig, SecurityManager,
    TableSizes,
};

use crate::{manager, peer, secs, start};

pub(crate) fn small_caps() -> SecurityConfig {
    SecurityConfig {
        rate: RateLimitConfig {
            max_tracked_ips: 32,
            // Generous, so that floods reach the tables rather than the buckets.
            peer_new_origins: RateQuota::per_second(1000, 100_000),
            ..RateLimitConfig::default()
        },
        connections: ConnectionLimits {
            max_inbound: 16,
            max_outbound: 4,
            ..ConnectionLimits::default()
        },
        replay: ReplayConfig {
            max_senders: 64,
            ..ReplayConfig::default()
        },
        scores: ScoreConfig {
            max_tracked: 48,
            ..ScoreConfig::default()
        },
        bans: BanConfig {
            max_banned_peers: 40,
            max_banned_ips: 8,
            ..BanConfig::default()
        },
    }
}

pub(crate) fn assert_within_caps(m: &SecurityManager) {
    let s = m.table_sizes();
    let c = m.table_caps();
    let pairs = |t: TableSizes| {
        [
            t.connections,
            t.connected_ips,
            t.connected_subnets,
            t.attempt_ips,
            t.replay_senders,
            t.scores,
            t.banned_peers,
            t.banned_ips,
        ]
    };
    for (size, cap) in pairs(s).into_iter().zip(pairs(c)) {
        assert!(size <= cap, "table over its cap: {s:?} vs {c:?}");
    }
}

#[test]
fn a_flood_of_peers_ips_origins_and_offenders_stays_within_the_caps() {
    let mut m = manager(small_caps());
    let mut now = start();
    let relay_ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
    let _ = m
        .check_connection(now, peer(0), relay_ip, Direction::Outbound)
        .unwrap();
    for i in 1..20_000u32 {
        now = now + Duration::from_millis(1);
        // A new IPv6 /48 and a new identity every time.
        let v6 = IpAddr::V6(Ipv6Addr::new(
            0x2001,
            0xdb8 + (i >> 16) as u16,
            i as u16,
            1,
            0,
            0,
            0,
            1,
        ));
        let _ = m.check_connection(now, peer(i), v6, Direction::Inbound);
        // A new relay origin every time.
        let meta = MessageMeta::relayed(
            MessageKind::Control,
            10,
            peer(1_000_000 + i),
            1,
            now.unix_ms(),
        );
        let _ = m.check_message(now, &peer(0), relay_ip, &meta);
        // A new offender every time.
        let _ = m.report(now, &peer(2_000_000 + i), PeerEvent::Timeout);
        if i % 3 == 0 {
            let _ = m.ban_peer(now, peer(3_000_000 + i), BanReason::Manual, secs(3600));
            let _ = m.ban_ip(now, IpAddr::V4(Ipv4Addr::from(i)), secs(3600));
        }
        assert_within_caps(&m);
    }
    let s = m.table_sizes();
    assert!(s.replay_senders > 0 && s.scores > 0 && s.banned_peers > 0);
    assert_eq!(m.connected(Direction::Inbound), 16);
    // The latest ban is always kept: eviction takes the soonest-expiring.
    assert!(m.is_banned(now, &peer(3_000_000 + 19_998)));
}
