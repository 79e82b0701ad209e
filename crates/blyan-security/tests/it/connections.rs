use blyan_security::{
    Admission, ConnectionLimits, Direction, EvictionProtection, PeerEvent, Reject, SecurityConfig,
    Verdict,
};

use crate::{ip, manager, peer, secs, start};

#[test]
fn the_fourth_connection_from_one_ip_is_refused() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    for i in 0..3 {
        let admitted = m.check_connection(now, peer(i), ip("198.51.100.7"), Direction::Inbound);
        assert_eq!(admitted, Ok(Admission::Accepted));
    }
    assert_eq!(
        m.check_connection(now, peer(3), ip("198.51.100.7"), Direction::Inbound),
        Err(Reject::TooManyPerIp)
    );
    // Outbound counts too: the cap is about the host, not who dialled.
    assert_eq!(
        m.check_connection(now, peer(3), ip("198.51.100.7"), Direction::Outbound),
        Err(Reject::TooManyPerIp)
    );
    // A closed connection frees its slot.
    assert_eq!(m.connection_closed(&peer(0)), Some(Direction::Inbound));
    assert_eq!(m.connection_closed(&peer(0)), None);
    assert_eq!(
        m.check_connection(now, peer(3), ip("198.51.100.7"), Direction::Outbound),
        Ok(Admission::Accepted)
    );
}

#[test]
fn ipv6_hosts_share_their_slash64_and_subnets_are_capped() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    for i in 0..3 {
        let addr = ip(&format!("2001:db8:0:1::{}", i + 1));
        assert!(
            m.check_connection(now, peer(i), addr, Direction::Outbound)
                .is_ok()
        );
    }
    assert_eq!(
        m.check_connection(now, peer(9), ip("2001:db8:0:1::99"), Direction::Outbound),
        Err(Reject::TooManyPerIp)
    );
    // 8 per /24 (IPv4): the ninth distinct host in 203.0.113.0/24 is refused.
    let mut m = manager(SecurityConfig::default());
    for i in 0..8 {
        let addr = ip(&format!("203.0.113.{}", i + 1));
        assert!(
            m.check_connection(now, peer(i), addr, Direction::Inbound)
                .is_ok()
        );
    }
    assert_eq!(
        m.check_connection(now, peer(8), ip("203.0.113.200"), Direction::Inbound),
        Err(Reject::TooManyPerSubnet)
    );
}

#[test]
fn duplicate_and_outbound_budget() {
    let config = SecurityConfig {
        connections: ConnectionLimits {
            max_outbound: 2,
            ..ConnectionLimits::default()
        },
        ..SecurityConfig::default()
    };
    let mut m = manager(config);
    let now = start();
    assert!(
        m.check_connection(now, peer(1), ip("10.0.1.1"), Direction::Outbound)
            .is_ok()
    );
    assert_eq!(
        m.check_connection(now, peer(1), ip("10.0.2.1"), Direction::Inbound),
        Err(Reject::AlreadyConnected)
    );
    assert!(
        m.check_connection(now, peer(2), ip("10.0.2.1"), Direction::Outbound)
            .is_ok()
    );
    assert_eq!(
        m.check_connection(now, peer(3), ip("10.0.3.1"), Direction::Outbound),
        Err(Reject::OutboundFull)
    );
    assert_eq!(m.connected(Direction::Outbound), 2);
}

#[test]
fn connection_attempts_are_rate_limited_per_ip() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    let addr = ip("192.0.2.1");
    // Five quick attempts pass the attempt bucket (the fourth hits the per-IP cap).
    for i in 0..5 {
        let r = m.check_connection(now, peer(i), addr, Direction::Inbound);
        assert_ne!(r, Err(Reject::TooManyAttempts));
    }
    assert_eq!(
        m.check_connection(now, peer(5), addr, Direction::Inbound),
        Err(Reject::TooManyAttempts)
    );
    // One token returns every 6 s.
    assert!(m.connection_closed(&peer(0)).is_some());
    assert_eq!(
        m.check_connection(now + secs(6), peer(5), addr, Direction::Inbound),
        Ok(Admission::Accepted)
    );
}

#[test]
fn eviction_protects_useful_and_diverse_peers() {
    let config = SecurityConfig {
        connections: ConnectionLimits {
            max_inbound: 30,
            eviction_key: 7,
            ..ConnectionLimits::default()
        },
        ..SecurityConfig::default()
    };
    let mut m = manager(config);
    let mut now = start();
    // Ten honest peers in ten networks, connected first, some delivering blocks.
    for i in 0..10 {
        let addr = ip(&format!("10.{i}.0.1"));
        assert_eq!(
            m.check_connection(now, peer(i), addr, Direction::Inbound),
            Ok(Admission::Accepted)
        );
        if i % 2 == 0 {
            assert_eq!(
                m.report(now, &peer(i), PeerEvent::UsefulBlock),
                Verdict::Keep
            );
        }
    }
    // An attacker fills the other twenty slots from three subnets.
    now = now + secs(60);
    for j in 0..20u32 {
        let addr = ip(&format!("172.16.{}.{}", j / 8, j % 8 + 1));
        assert_eq!(
            m.check_connection(now, peer(1000 + j), addr, Direction::Inbound),
            Ok(Admission::Accepted)
        );
    }
    // Each new attacker connection evicts, but never an honest peer.
    for k in 0..200u32 {
        now = now + secs(1);
        let addr = ip(&format!("100.64.{k}.1"));
        let admitted = m.check_connection(now, peer(5000 + k), addr, Direction::Inbound);
        match admitted {
            Ok(Admission::AcceptedEvicting(victim)) => {
                assert!(victim != peer(5000 + k));
                assert!(m.connection(&victim).is_none());
            }
            other => panic!("expected an eviction, got {other:?}"),
        }
        for i in 0..10 {
            assert!(
                m.connection(&peer(i)).is_some(),
                "honest peer {i} evicted at {k}"
            );
        }
        assert_eq!(m.connected(Direction::Inbound), 30);
    }
}

#[test]
fn the_most_crowded_netgroup_loses_its_youngest() {
    let config = SecurityConfig {
        connections: ConnectionLimits {
            max_inbound: 20,
            // Only the uptime rule, so that the crowd rule is what is tested.
            protection: EvictionProtection {
                by_netgroup: 0,
                by_score: 0,
                by_recent_useful: 0,
                half_by_uptime: true,
            },
            ..ConnectionLimits::default()
        },
        ..SecurityConfig::default()
    };
    let mut m = manager(config);
    let mut now = start();
    for i in 0..12 {
        now = now + secs(1);
        let addr = ip(&format!("10.{i}.0.1"));
        assert!(
            m.check_connection(now, peer(i), addr, Direction::Inbound)
                .is_ok()
        );
    }
    let mut crowd = Vec::new();
    for j in 0..8u32 {
        now = now + secs(1);
        let addr = ip(&format!("172.16.0.{}", j + 1));
        assert!(
            m.check_connection(now, peer(100 + j), addr, Direction::Inbound)
                .is_ok()
        );
        crowd.push(peer(100 + j));
    }
    now = now + secs(1);
    let admitted = m.check_connection(now, peer(999), ip("192.0.2.1"), Direction::Inbound);
    // The youngest of the crowded /24 goes.
    assert_eq!(admitted, Ok(Admission::AcceptedEvicting(peer(107))));
}

#[test]
fn full_inbound_with_everyone_protected_refuses_the_newcomer() {
    let config = SecurityConfig {
        connections: ConnectionLimits {
            max_inbound: 4,
            ..ConnectionLimits::default()
        },
        ..SecurityConfig::default()
    };
    let mut m = manager(config);
    let now = start();
    for i in 0..4 {
        let addr = ip(&format!("10.{i}.0.1"));
        assert!(
            m.check_connection(now, peer(i), addr, Direction::Inbound)
                .is_ok()
        );
    }
    assert_eq!(
        m.check_connection(now, peer(9), ip("10.9.0.1"), Direction::Inbound),
        Err(Reject::InboundFull)
    );
    // Outbound has its own budget.
    assert!(
        m.check_connection(now, peer(9), ip("10.9.0.1"), Direction::Outbound)
            .is_ok()
    );
}
