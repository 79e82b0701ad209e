//! The peer set: dialling policy, admission through the security manager, handshake,
//! keep-alive, score disconnects and bans, backoff — all in simulated time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use blyan_crypto::{Hash, PeerId};
use blyan_p2p::{
    CandidateSource, DisconnectReason, PROTOCOL_VERSION, PeerAction, PeerSet, PeerSetConfig,
    Status, StatusMismatch,
};
use blyan_security::{
    ConfigError, ConnectionLimits, Direction, PeerEvent, SecurityConfig, SecurityManager,
};

use crate::common::{now, peer};

fn ip(n: u32) -> IpAddr {
    // One /24 per peer, so per-subnet caps never interfere.
    IpAddr::V4(Ipv4Addr::new(10, (n >> 8) as u8, n as u8, 1))
}

fn addr(n: u32) -> SocketAddr {
    SocketAddr::new(ip(n), 4000)
}

fn status(chain_id: u32) -> Status {
    Status {
        protocol_version: PROTOCOL_VERSION,
        chain_id,
        genesis_hash: Hash::from_bytes([1; 32]),
        best_height: 5,
        best_hash: Hash::from_bytes([2; 32]),
        finalized_height: 0,
    }
}

fn security(max_inbound: usize) -> Result<SecurityManager, ConfigError> {
    SecurityManager::new(SecurityConfig {
        connections: ConnectionLimits {
            max_inbound,
            ..ConnectionLimits::default()
        },
        ..SecurityConfig::default()
    })
}

fn dials(actions: &[PeerAction]) -> Vec<PeerId> {
    actions
        .iter()
        .filter_map(|a| match a {
            PeerAction::Dial { peer, .. } => Some(*peer),
            _ => None,
        })
        .collect()
}

/// Connects `n` as `direction` and completes its handshake.
fn ready(
    set: &mut PeerSet,
    security: &mut SecurityManager,
    n: u32,
    direction: Direction,
    t: u64,
) -> Vec<PeerAction> {
    let mut actions = set.on_connected(now(t), security, peer(n), ip(n), direction);
    actions.extend(set.on_status(now(t), security, peer(n), &status(7), status(7)));
    actions
}

#[test]
fn dials_up_to_the_target_bootstrap_first() -> Result<(), ConfigError> {
    let mut security = security(40)?;
    let mut set = PeerSet::new(PeerSetConfig {
        target_outbound: 3,
        ..PeerSetConfig::default()
    });
    for n in 1..=9 {
        set.add_candidate(peer(n), addr(n), CandidateSource::Discovered);
    }
    set.add_candidate(peer(10), addr(10), CandidateSource::Bootstrap);
    let first = dials(&set.poll(now(0), &mut security));
    assert_eq!(first.len(), 3);
    assert_eq!(first.first(), Some(&peer(10)), "bootstrap nodes first");
    assert!(
        dials(&set.poll(now(1), &mut security)).is_empty(),
        "dials in flight count"
    );

    for p in &first {
        let n = u32::from_be_bytes([
            p.as_bytes()[0],
            p.as_bytes()[1],
            p.as_bytes()[2],
            p.as_bytes()[3],
        ]);
        let actions = ready(&mut set, &mut security, n, Direction::Outbound, 10);
        assert!(actions.contains(&PeerAction::SendStatus { peer: *p }));
        assert!(
            actions
                .iter()
                .any(|a| matches!(a, PeerAction::Ready { peer, .. } if peer == p))
        );
    }
    assert_eq!(set.connected(Direction::Outbound), 3);
    assert_eq!(set.ready_peers().count(), 3);
    assert!(
        dials(&set.poll(now(20), &mut security)).is_empty(),
        "target reached"
    );
    Ok(())
}

#[test]
fn reconnects_back_off_exponentially_with_bounded_jitter() {
    let config = PeerSetConfig {
        target_outbound: 1,
        backoff_base: Duration::from_secs(1),
        backoff_max: Duration::from_secs(60),
        jitter_percent: 20,
        seed: 11,
        ..PeerSetConfig::default()
    };
    let Ok(mut security) = security(40) else {
        panic!("security config");
    };
    let mut set = PeerSet::new(config);
    set.add_candidate(peer(1), addr(1), CandidateSource::Bootstrap);
    let mut t = 0u64;
    for failure in 1..=10u32 {
        let actions = set.poll(now(t), &mut security);
        assert_eq!(dials(&actions), vec![peer(1)], "due at {t} ms");
        set.on_dial_failed(now(t), &peer(1));
        let Some(next) = set.next_attempt(&peer(1)) else {
            panic!("still a candidate");
        };
        let delay = (next.as_micros() as u64).div_ceil(1_000) - t;
        let nominal = (1_000u64 << (failure - 1)).min(60_000);
        assert!(
            delay * 10 >= nominal * 8 && delay * 10 <= nominal * 12 && delay <= 60_000,
            "failure {failure}: delay {delay} ms, nominal {nominal} ms"
        );
        // Not dialled again before the delay.
        assert!(dials(&set.poll(now(t + delay - 1), &mut security)).is_empty());
        t += delay;
    }
}

#[test]
fn inbound_admission_is_the_security_managers() -> Result<(), ConfigError> {
    let mut security = security(2)?;
    let mut set = PeerSet::new(PeerSetConfig::default());
    for n in 1..=5 {
        let actions = set.on_connected(now(0), &mut security, peer(n), ip(n), Direction::Inbound);
        assert!(set.connected(Direction::Inbound) <= 2);
        if n > 2 {
            let refused = actions.iter().any(|a| {
                matches!(
                    a,
                    PeerAction::Disconnect {
                        reason: DisconnectReason::Rejected(_) | DisconnectReason::Evicted,
                        ..
                    }
                )
            });
            assert!(refused, "peer {n}: {actions:?}");
        }
    }
    // A second connection of a connected peer is refused too.
    let again = set.on_connected(now(1), &mut security, peer(1), ip(1), Direction::Inbound);
    assert!(matches!(
        again.as_slice(),
        [PeerAction::Disconnect {
            reason: DisconnectReason::Rejected(_),
            ..
        }]
    ));
    Ok(())
}

#[test]
fn a_status_mismatch_disconnects_with_its_reason() -> Result<(), ConfigError> {
    let mut security = security(40)?;
    let mut set = PeerSet::new(PeerSetConfig::default());
    set.add_candidate(peer(1), addr(1), CandidateSource::Discovered);
    let _ = set.on_connected(now(0), &mut security, peer(1), ip(1), Direction::Outbound);
    let actions = set.on_status(now(5), &mut security, peer(1), &status(7), status(8));
    assert_eq!(
        actions,
        vec![PeerAction::Disconnect {
            peer: peer(1),
            reason: DisconnectReason::Status(StatusMismatch::ChainId { ours: 7, theirs: 8 }),
        }]
    );
    assert_eq!(security.connected(Direction::Outbound), 0);
    assert_eq!(
        set.candidates(),
        0,
        "a peer on another chain is not redialled"
    );
    Ok(())
}

#[test]
fn silent_peers_time_out_and_answered_pings_keep_peers() -> Result<(), ConfigError> {
    let mut security = security(40)?;
    let mut set = PeerSet::new(PeerSetConfig::default());
    let _ = ready(&mut set, &mut security, 1, Direction::Inbound, 0);
    let _ = ready(&mut set, &mut security, 2, Direction::Inbound, 0);
    let _ = set.on_connected(now(0), &mut security, peer(3), ip(3), Direction::Inbound);

    // Peer 3 never sends its status.
    let actions = set.poll(now(10_000), &mut security);
    assert!(actions.contains(&PeerAction::Disconnect {
        peer: peer(3),
        reason: DisconnectReason::HandshakeTimeout
    }));

    let actions = set.poll(now(30_000), &mut security);
    let pings: Vec<(PeerId, u64)> = actions
        .iter()
        .filter_map(|a| match a {
            PeerAction::Ping { peer, nonce } => Some((*peer, *nonce)),
            _ => None,
        })
        .collect();
    assert_eq!(pings.len(), 2);
    for (p, nonce) in &pings {
        if *p == peer(1) {
            set.on_pong(p, *nonce);
        }
    }
    let actions = set.poll(now(50_000), &mut security);
    assert!(actions.contains(&PeerAction::Disconnect {
        peer: peer(2),
        reason: DisconnectReason::KeepAliveTimeout
    }));
    assert!(actions.contains(&PeerAction::Gone { peer: peer(2) }));
    assert_eq!(set.ready_peers().collect::<Vec<_>>(), vec![&peer(1)]);
    assert_eq!(security.connected(Direction::Inbound), 1);
    Ok(())
}

#[test]
fn low_scores_disconnect_and_fatal_events_ban() -> Result<(), ConfigError> {
    let mut security = security(40)?;
    let mut set = PeerSet::new(PeerSetConfig::default());
    set.add_candidate(peer(1), addr(1), CandidateSource::Discovered);
    let _ = ready(&mut set, &mut security, 1, Direction::Outbound, 0);
    let _ = ready(&mut set, &mut security, 2, Direction::Inbound, 0);

    let mut closed = Vec::new();
    for _ in 0..20 {
        closed.extend(set.report(now(1), &mut security, peer(1), PeerEvent::Timeout));
        if !closed.is_empty() {
            break;
        }
    }
    assert_eq!(
        closed,
        vec![
            PeerAction::Disconnect {
                peer: peer(1),
                reason: DisconnectReason::LowScore
            },
            PeerAction::Gone { peer: peer(1) },
        ]
    );
    assert!(
        set.next_attempt(&peer(1))
            .is_some_and(|t| t > Duration::from_millis(1)),
        "an outbound peer is redialled after a backoff"
    );

    let banned = set.report(now(2), &mut security, peer(2), PeerEvent::InvalidSignature);
    assert!(banned.contains(&PeerAction::Disconnect {
        peer: peer(2),
        reason: DisconnectReason::Banned
    }));
    assert_eq!(set.ready_peers().count(), 0);
    Ok(())
}

#[test]
fn candidates_are_bounded_and_bootstrap_nodes_stay() {
    let mut set = PeerSet::new(PeerSetConfig {
        max_candidates: 8,
        ..PeerSetConfig::default()
    });
    set.add_candidate(peer(0), addr(0), CandidateSource::Bootstrap);
    for n in 1..100 {
        set.add_candidate(peer(n), addr(n), CandidateSource::Discovered);
        assert!(set.candidates() <= 8);
    }
    assert!(set.next_attempt(&peer(0)).is_some());
}

#[test]
fn ready_peers_are_asked_for_their_status_again() -> Result<(), ConfigError> {
    let mut security = security(40)?;
    let mut set = PeerSet::new(PeerSetConfig {
        keepalive_interval: Duration::from_secs(3_600),
        ..PeerSetConfig::default()
    });
    let _ = ready(&mut set, &mut security, 1, Direction::Inbound, 0);
    assert!(set.poll(now(59_000), &mut security).is_empty());
    let actions = set.poll(now(60_000), &mut security);
    assert_eq!(actions, vec![PeerAction::SendStatus { peer: peer(1) }]);
    // The fresh status (a higher best height) goes to sync as a new Ready.
    let newer = Status {
        best_height: 50,
        ..status(7)
    };
    let actions = set.on_status(
        now(60_050),
        &mut security,
        peer(1),
        &status(7),
        newer.clone(),
    );
    assert_eq!(
        actions,
        vec![PeerAction::Ready {
            peer: peer(1),
            status: newer
        }]
    );
    assert!(set.poll(now(61_000), &mut security).is_empty());
    Ok(())
}
