use std::time::Duration;

use blyan_security::{
    Direction, MessageKind, MessageMeta, PeerEvent, RateLimitConfig, RateQuota, Reject, Resource,
    Scope, SecurityConfig, Verdict,
};

use crate::{T0_UNIX_MS, admit, ip, manager, peer, secs, start};

fn tx() -> MessageMeta {
    MessageMeta::direct(MessageKind::Transaction, 200)
}

#[test]
fn a_peer_over_quota_is_throttled_then_recovers() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    let addr = ip("192.0.2.1");
    admit(&mut m, now, peer(1), addr);
    // Burst 400 units, a transaction costs 2: 200 pass at once.
    for _ in 0..200 {
        assert_eq!(m.check_message(now, &peer(1), addr, &tx()), Ok(()));
    }
    let limited = Reject::RateLimited {
        scope: Scope::Peer,
        resource: Resource::Messages,
    };
    assert_eq!(m.check_message(now, &peer(1), addr, &tx()), Err(limited));
    assert_eq!(limited.as_str(), "rate_limited");
    // 200 units/s: after 10 ms, one more transaction.
    let later = now + Duration::from_millis(10);
    assert_eq!(m.check_message(later, &peer(1), addr, &tx()), Ok(()));
    assert_eq!(m.check_message(later, &peer(1), addr, &tx()), Err(limited));
    // After two quiet seconds the whole burst is back.
    let recovered = later + secs(2);
    for _ in 0..200 {
        assert_eq!(m.check_message(recovered, &peer(1), addr, &tx()), Ok(()));
    }
}

#[test]
fn peers_behind_one_ip_share_its_budget() {
    let config = SecurityConfig {
        rate: RateLimitConfig {
            peer_messages: RateQuota::per_second(10, 10),
            ip_messages: RateQuota::per_second(15, 15),
            ..RateLimitConfig::default()
        },
        ..SecurityConfig::default()
    };
    let mut m = manager(config);
    let now = start();
    let addr = ip("192.0.2.1");
    let control = MessageMeta::direct(MessageKind::Control, 10);
    for i in 0..2 {
        admit(&mut m, now, peer(i), addr);
    }
    for _ in 0..10 {
        assert_eq!(m.check_message(now, &peer(0), addr, &control), Ok(()));
    }
    for _ in 0..5 {
        assert_eq!(m.check_message(now, &peer(1), addr, &control), Ok(()));
    }
    assert_eq!(
        m.check_message(now, &peer(1), addr, &control),
        Err(Reject::RateLimited {
            scope: Scope::Ip,
            resource: Resource::Messages
        })
    );
}

#[test]
fn bytes_are_limited_and_oversized_messages_never_pass() {
    let config = SecurityConfig {
        rate: RateLimitConfig {
            peer_bytes_kib: RateQuota::per_second(64, 128),
            ..RateLimitConfig::default()
        },
        ..SecurityConfig::default()
    };
    let mut m = manager(config);
    let now = start();
    let addr = ip("192.0.2.1");
    let _ = m
        .check_connection(now, peer(1), addr, Direction::Outbound)
        .unwrap();
    let big = MessageMeta::direct(MessageKind::SyncResponse, 100 * 1024);
    assert_eq!(m.check_message(now, &peer(1), addr, &big), Ok(()));
    assert_eq!(
        m.check_message(now, &peer(1), addr, &big),
        Err(Reject::RateLimited {
            scope: Scope::Peer,
            resource: Resource::Bytes
        })
    );
    let huge = MessageMeta::direct(MessageKind::SyncResponse, 129 * 1024);
    assert_eq!(
        m.check_message(now + secs(10), &peer(1), addr, &huge),
        Err(Reject::MessageTooLarge)
    );
}

#[test]
fn messages_need_an_admitted_connection_at_that_ip() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    assert_eq!(
        m.check_message(now, &peer(1), ip("192.0.2.1"), &tx()),
        Err(Reject::UnknownConnection)
    );
    admit(&mut m, now, peer(1), ip("192.0.2.1"));
    assert_eq!(
        m.check_message(now, &peer(1), ip("192.0.2.2"), &tx()),
        Err(Reject::UnknownConnection)
    );
}

#[test]
fn replayed_nonce_and_stale_timestamp_are_refused() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    let addr = ip("192.0.2.1");
    admit(&mut m, now, peer(1), addr);
    let origin = peer(77);
    let msg = |nonce, ts| MessageMeta::relayed(MessageKind::Block, 2000, origin, nonce, ts);
    assert_eq!(
        m.check_message(now, &peer(1), addr, &msg(5, T0_UNIX_MS)),
        Ok(())
    );
    assert_eq!(
        m.check_message(now, &peer(1), addr, &msg(5, T0_UNIX_MS)),
        Err(Reject::Replay)
    );
    assert_eq!(
        m.check_message(now, &peer(1), addr, &msg(6, T0_UNIX_MS - 121_000)),
        Err(Reject::Stale)
    );
    assert_eq!(
        m.check_message(now, &peer(1), addr, &msg(6, T0_UNIX_MS + 16_000)),
        Err(Reject::FromFuture)
    );
    assert_eq!(
        m.check_message(now, &peer(1), addr, &msg(6, T0_UNIX_MS)),
        Ok(())
    );
}

#[test]
fn a_peer_can_introduce_only_so_many_new_origins() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    let addr = ip("192.0.2.1");
    admit(&mut m, now, peer(1), addr);
    let from =
        |o: u32| MessageMeta::relayed(MessageKind::Control, 100, peer(10_000 + o), 1, T0_UNIX_MS);
    for o in 0..64 {
        assert_eq!(m.check_message(now, &peer(1), addr, &from(o)), Ok(()));
    }
    assert_eq!(
        m.check_message(now, &peer(1), addr, &from(64)),
        Err(Reject::RateLimited {
            scope: Scope::Peer,
            resource: Resource::NewOrigins
        })
    );
    // Known origins are not limited by this budget.
    let again = MessageMeta::relayed(MessageKind::Control, 100, peer(10_000), 2, T0_UNIX_MS);
    assert_eq!(m.check_message(now, &peer(1), addr, &again), Ok(()));
}

#[test]
fn scores_decay_to_neutral_and_gate_reconnection() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    let addr = ip("192.0.2.1");
    admit(&mut m, now, peer(1), addr);
    assert_eq!(m.report(now, &peer(1), PeerEvent::Timeout), Verdict::Keep);
    assert_eq!(
        m.report(now, &peer(1), PeerEvent::InvalidBlock),
        Verdict::Disconnect
    );
    assert!(m.connection(&peer(1)).is_none());
    assert_eq!(
        m.check_connection(now + secs(60), peer(1), addr, Direction::Inbound),
        Err(Reject::LowScore)
    );
    // -22 halves every 10 minutes: above -20 after about 82 s.
    let later = now + secs(600);
    assert!((m.score(later, &peer(1)) + 11.0).abs() < 1e-9);
    assert!(
        m.check_connection(later, peer(1), addr, Direction::Inbound)
            .is_ok()
    );
    let much_later = now + secs(600 * 20);
    assert!(m.score(much_later, &peer(1)).abs() < 1e-4);
    m.maintain(much_later);
    assert_eq!(m.table_sizes().scores, 0);
}
