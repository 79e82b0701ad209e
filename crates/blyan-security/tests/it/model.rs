//! A long random action sequence per seed, with the invariants checked after every step.
//! A failing seed is printed and reproduces the failure exactly.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use blyan_security::{
    BanReason, Direction, MessageKind, MessageMeta, Now, PeerEvent, Reject, SecurityManager,
};

use crate::bounds::{assert_within_caps, small_caps};
use crate::{T0_UNIX_MS, peer, start};

const PEERS: u64 = 120;
const SEEDS: u64 = 40;
const STEPS: usize = 1500;

/// SplitMix64: tiny, seeded, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Peers live at a fixed address each: 40 IPs in 8 subnets, so per-IP and per-subnet
/// caps and shared-IP bans all come into play.
fn addr(p: u64) -> IpAddr {
    let host = p % 40;
    IpAddr::V4(Ipv4Addr::new(10, 0, (host % 8) as u8, (host / 8) as u8 + 1))
}

const EVENTS: [PeerEvent; 10] = [
    PeerEvent::InvalidBlock,
    PeerEvent::InvalidTransaction,
    PeerEvent::InvalidMessage,
    PeerEvent::Timeout,
    PeerEvent::RateLimited,
    PeerEvent::Useless,
    PeerEvent::UsefulBlock,
    PeerEvent::UsefulTransaction,
    PeerEvent::InvalidSignature,
    PeerEvent::Equivocation,
];

fn step(m: &mut SecurityManager, rng: &mut Rng, now: &mut Now, nonces: &mut [u64]) {
    let p = rng.below(PEERS);
    let id = peer(p as u32);
    match rng.below(100) {
        0..=24 => {
            let dir = if rng.below(4) == 0 {
                Direction::Outbound
            } else {
                Direction::Inbound
            };
            if let Ok(blyan_security::Admission::AcceptedEvicting(victim)) =
                m.check_connection(*now, id, addr(p), dir)
            {
                assert!(m.connection(&victim).is_none());
            }
        }
        25..=34 => {
            let _ = m.connection_closed(&id);
        }
        35..=64 => {
            let kind = MessageKind::ALL[rng.below(6) as usize];
            let bytes = rng.below(64 * 1024) as usize;
            let meta = if rng.below(2) == 0 {
                MessageMeta::direct(kind, bytes)
            } else {
                let origin = rng.below(200) as usize;
                // Mostly fresh nonces, sometimes replays; timestamps around now.
                if rng.below(4) != 0 {
                    nonces[origin] += 1 + rng.below(3);
                }
                let skew = rng.below(40_000);
                let ts = (now.unix_ms() + 20_000).saturating_sub(skew);
                MessageMeta::relayed(
                    kind,
                    bytes,
                    peer(500_000 + origin as u32),
                    nonces[origin],
                    ts,
                )
            };
            let _ = m.check_message(*now, &id, addr(p), &meta);
        }
        65..=84 => {
            let event = EVENTS[rng.below(EVENTS.len() as u64) as usize];
            let _ = m.report(*now, &id, event);
        }
        85..=87 => {
            let minutes = 1 + rng.below(120);
            let _ = m.ban_peer(
                *now,
                id,
                BanReason::Manual,
                Duration::from_secs(60 * minutes),
            );
        }
        88 => {
            let _ = m.unban_peer(&id);
        }
        89 => m.maintain(*now),
        _ => {
            let ms = if rng.below(10) == 0 {
                rng.below(3_600_000)
            } else {
                rng.below(2_000)
            };
            *now = *now + Duration::from_millis(ms);
        }
    }
}

fn check_invariants(m: &mut SecurityManager, now: Now) {
    assert_within_caps(m);
    let scores = blyan_security::ScoreConfig::default();
    let meta = MessageMeta::direct(MessageKind::Control, 1);
    for p in 0..PEERS {
        let id = peer(p as u32);
        let score = m.score(now, &id);
        assert!(
            score >= scores.min && score <= scores.max,
            "score {score} out of bounds"
        );
        let peer_banned = m.is_banned(now, &id);
        let ip_banned = m.is_ip_banned(now, addr(p));
        if peer_banned || ip_banned {
            assert!(
                m.connection(&id).is_none(),
                "banned peer {p} still connected"
            );
            // Both checks refuse, and (being refusals) change nothing.
            let c = m.check_connection(now, id, addr(p), Direction::Inbound);
            assert!(matches!(c, Err(Reject::Banned | Reject::IpBanned)), "{c:?}");
            let r = m.check_message(now, &id, addr(p), &meta);
            assert!(matches!(r, Err(Reject::Banned | Reject::IpBanned)), "{r:?}");
        }
    }
    assert!(m.connected(Direction::Inbound) <= 16);
    assert!(m.connected(Direction::Outbound) <= 4);
}

#[test]
fn random_sequences_keep_the_invariants() {
    for seed in 0..SEEDS {
        let mut m = SecurityManager::new(small_caps()).unwrap();
        let mut rng = Rng(seed);
        let mut now = start();
        let mut nonces = vec![0u64; 200];
        for i in 0..STEPS {
            step(&mut m, &mut rng, &mut now, &mut nonces);
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                check_invariants(&mut m, now)
            }));
            if let Err(e) = result {
                eprintln!("invariant broken with seed {seed} at step {i}");
                std::panic::resume_unwind(e);
            }
        }
        assert!(now.unix_ms() > T0_UNIX_MS);
    }
}
