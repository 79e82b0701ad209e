use blyan_security::{
    BanReason, Direction, MessageKind, MessageMeta, PeerEvent, Reject, SecurityConfig, Verdict,
};

use crate::{admit, ip, manager, peer, secs, start};

const HOUR: u64 = 3600;

#[test]
fn a_ban_expires() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    let addr = ip("192.0.2.1");
    admit(&mut m, now, peer(1), addr);
    let action = m.ban_peer(now, peer(1), BanReason::Manual, secs(HOUR));
    assert_eq!(action.disconnect, vec![peer(1)]);
    assert_eq!(action.ban.until, now.monotonic() + secs(HOUR));
    assert!(m.is_banned(now, &peer(1)));
    let meta = MessageMeta::direct(MessageKind::Control, 10);
    assert_eq!(
        m.check_message(now, &peer(1), addr, &meta),
        Err(Reject::Banned)
    );
    assert_eq!(
        m.check_connection(now + secs(HOUR - 1), peer(1), addr, Direction::Inbound),
        Err(Reject::Banned)
    );
    let after = now + secs(HOUR);
    assert!(!m.is_banned(after, &peer(1)));
    assert!(
        m.check_connection(after, peer(1), addr, Direction::Inbound)
            .is_ok()
    );
}

#[test]
fn an_escalated_ban_lasts_longer() {
    let mut m = manager(SecurityConfig::default());
    let mut now = start();
    let first = m.ban_peer(now, peer(1), BanReason::Manual, secs(HOUR));
    assert_eq!(first.ban.offences, 1);
    now = now + secs(2 * HOUR);
    let second = m.ban_peer(now, peer(1), BanReason::Manual, secs(HOUR));
    assert_eq!(second.ban.offences, 2);
    assert_eq!(second.ban.until, now.monotonic() + secs(2 * HOUR));
    now = now + secs(3 * HOUR);
    let third = m.ban_peer(now, peer(1), BanReason::Manual, secs(HOUR));
    assert_eq!(third.ban.until, now.monotonic() + secs(4 * HOUR));
    // Repeating a ban while it is in force is not a new offence.
    let again = m.ban_peer(now, peer(1), BanReason::Manual, secs(HOUR));
    assert_eq!(again.ban.offences, 3);
    assert_eq!(again.ban.until, third.ban.until);
}

#[test]
fn a_fatal_event_bans_at_once_and_score_bans_escalate() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    let addr = ip("192.0.2.1");
    admit(&mut m, now, peer(1), addr);
    match m.report(now, &peer(1), PeerEvent::Equivocation) {
        Verdict::Ban(action) => {
            assert_eq!(action.disconnect, vec![peer(1)]);
            assert_eq!(action.ban.until, now.monotonic() + secs(HOUR));
        }
        other => panic!("expected a ban, got {other:?}"),
    }
    assert_eq!(
        m.bans().peer_record(&peer(1)).map(|r| r.reason),
        Some(BanReason::Equivocation)
    );
    // Three invalid blocks reach the ban threshold for another peer.
    admit(&mut m, now, peer(2), ip("192.0.2.2"));
    assert_eq!(
        m.report(now, &peer(2), PeerEvent::InvalidBlock),
        Verdict::Disconnect
    );
    assert_eq!(
        m.report(now, &peer(2), PeerEvent::InvalidBlock),
        Verdict::Disconnect
    );
    assert!(matches!(
        m.report(now, &peer(2), PeerEvent::InvalidBlock),
        Verdict::Ban(_)
    ));
    assert!(m.is_banned(now, &peer(2)));
}

#[test]
fn several_banned_peers_on_one_ip_ban_the_ip() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    let addr = ip("198.51.100.9");
    for i in 0..3 {
        admit(&mut m, now, peer(i), addr);
    }
    assert!(
        m.ban_peer(now, peer(0), BanReason::Manual, secs(HOUR))
            .ban
            .ip_banned
            .is_none()
    );
    assert!(
        m.ban_peer(now, peer(1), BanReason::Manual, secs(HOUR))
            .ban
            .ip_banned
            .is_none()
    );
    // A fresh identity from the same host meanwhile.
    admit(&mut m, now, peer(3), addr);
    let third = m.ban_peer(now, peer(2), BanReason::Manual, secs(HOUR));
    assert!(third.ban.ip_banned.is_some());
    assert_eq!(third.disconnect, vec![peer(2), peer(3)]);
    assert!(m.is_ip_banned(now, addr));
    assert_eq!(
        m.check_connection(now + secs(60), peer(4), addr, Direction::Inbound),
        Err(Reject::IpBanned)
    );
    let meta = MessageMeta::direct(MessageKind::Control, 10);
    assert_eq!(
        m.check_message(now, &peer(3), addr, &meta),
        Err(Reject::IpBanned)
    );
    assert!(m.unban_ip(addr));
    assert!(
        m.check_connection(now + secs(60), peer(4), addr, Direction::Inbound)
            .is_ok()
    );
}

#[test]
fn an_operator_ban_of_an_ip_closes_its_connections() {
    let mut m = manager(SecurityConfig::default());
    let now = start();
    admit(&mut m, now, peer(1), ip("2001:db8::1"));
    let closed = m.ban_ip(now, ip("2001:db8::2"), secs(HOUR));
    assert_eq!(closed, vec![peer(1)]);
    assert!(!m.unban_peer(&peer(1)));
}
