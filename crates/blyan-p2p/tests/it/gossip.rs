//! Gossip in simulated time: 100 routers on a random graph spread blocks and transactions
//! to every node with few duplicate full copies; plus the router's refusals.

use std::collections::BTreeMap;

use blyan_crypto::{Hash, KeyPair, PeerId, Signature};
use blyan_p2p::{
    GossipAction, GossipConfig, GossipEnvelope, GossipFault, GossipMessage, GossipPayload,
    GossipRouter, MessageError, Validation,
};
use blyan_security::PeerEvent;

use crate::common::{CHAIN_ID, build_chain, now, peer, transfer};

enum Event {
    Message {
        to: usize,
        from: usize,
        message: GossipMessage,
    },
    FetchRequest {
        server: usize,
        client: usize,
        id: Hash,
    },
    FetchAnswer {
        to: usize,
        from: usize,
        id: Hash,
        envelope: Option<Box<GossipEnvelope>>,
    },
}

struct Net {
    routers: Vec<GossipRouter>,
    ids: Vec<PeerId>,
    queue: BTreeMap<(u64, u64), Event>,
    seq: u64,
    rng: u64,
    /// Messages (pushes, announcements, fetch requests and answers) sent.
    sent: u64,
    penalties: Vec<(PeerId, GossipFault)>,
    /// When each message reached each node (its delivery), in simulated ms.
    reached: BTreeMap<Hash, u64>,
}

impl Net {
    /// `n` routers, each linked to `links` random others (both ways).
    fn new(n: usize, links: usize, seed: u64) -> Self {
        let ids: Vec<PeerId> = (0..n).map(|i| peer(i as u32)).collect();
        let mut routers: Vec<GossipRouter> = (0..n)
            .map(|i| {
                GossipRouter::new(GossipConfig {
                    seed: seed ^ i as u64,
                    ..GossipConfig::new(CHAIN_ID)
                })
            })
            .collect();
        let mut net = Self {
            routers: Vec::new(),
            ids,
            queue: BTreeMap::new(),
            seq: 0,
            rng: seed | 1,
            sent: 0,
            penalties: Vec::new(),
            reached: BTreeMap::new(),
        };
        for i in 0..n {
            let mut added = 0;
            while added < links {
                let j = (net.next() % n as u64) as usize;
                if j != i {
                    routers[i].add_peer(net.ids[j]);
                    routers[j].add_peer(net.ids[i]);
                    added += 1;
                }
            }
        }
        net.routers = routers;
        net
    }

    fn next(&mut self) -> u64 {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }

    fn index(&self, id: &PeerId) -> usize {
        self.ids.iter().position(|p| p == id).unwrap_or(usize::MAX)
    }

    fn schedule(&mut self, t: u64, event: Event) {
        let at = t + 10 + self.next() % 40;
        self.seq += 1;
        self.sent += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn handle(&mut self, node: usize, t: u64, actions: Vec<GossipAction>) {
        for action in actions {
            match action {
                GossipAction::Send { to, message } => {
                    let to = self.index(&to);
                    self.schedule(
                        t,
                        Event::Message {
                            to,
                            from: node,
                            message,
                        },
                    );
                }
                GossipAction::Fetch { from, id, .. } => {
                    let server = self.index(&from);
                    self.schedule(
                        t,
                        Event::FetchRequest {
                            server,
                            client: node,
                            id,
                        },
                    );
                }
                GossipAction::Deliver { id, .. } => {
                    let latest = self.reached.entry(id).or_default();
                    *latest = (*latest).max(t);
                    // The driver checks the payload here; every one in this network is valid.
                    let relay = self.routers[node].validated(&id, Validation::Accept);
                    self.handle(node, t, relay);
                }
                GossipAction::Penalize { peer, fault, .. } => self.penalties.push((peer, fault)),
            }
        }
    }

    fn run(&mut self) {
        while let Some(((t, _), event)) = self.queue.pop_first() {
            match event {
                Event::Message { to, from, message } => {
                    let from_id = self.ids[from];
                    let actions = self.routers[to].on_message(now(t), from_id, message);
                    self.handle(to, t, actions);
                }
                Event::FetchRequest { server, client, id } => {
                    let envelope = self.routers[server].envelope(&id).cloned().map(Box::new);
                    self.schedule(
                        t,
                        Event::FetchAnswer {
                            to: client,
                            from: server,
                            id,
                            envelope,
                        },
                    );
                }
                Event::FetchAnswer {
                    to,
                    from,
                    id,
                    envelope,
                } => {
                    let from_id = self.ids[from];
                    let actions =
                        self.routers[to].on_fetched(now(t), from_id, id, envelope.map(|e| *e));
                    self.handle(to, t, actions);
                }
            }
        }
    }
}

fn tx_payload(nonce: u64) -> GossipPayload {
    GossipPayload::Tx(transfer(&KeyPair::from_seed(&[5; 32]), nonce))
}

#[test]
fn gossip_reaches_all_100_nodes_with_few_duplicates() -> Result<(), Box<dyn std::error::Error>> {
    const NODES: usize = 100;
    let mut net = Net::new(NODES, 4, 2024);
    let blocks = build_chain(5, 0);
    let mut ids = Vec::new();
    let mut slowest = 0u64;
    for (k, block) in blocks.iter().skip(1).enumerate() {
        let origin = (k * 37) % NODES;
        let key = KeyPair::from_seed(&[origin as u8; 32]);
        let t = k as u64 * 1_000;
        let payloads = [GossipPayload::Block(block.clone()), tx_payload(k as u64)];
        for payload in payloads {
            let actions = net.routers[origin].publish(now(t), &key, payload)?;
            let published = actions.iter().find_map(|a| match a {
                GossipAction::Send {
                    message: GossipMessage::Envelope(e),
                    ..
                } => e.id().ok(),
                GossipAction::Send {
                    message: GossipMessage::Announce(a),
                    ..
                } => Some(a.id),
                _ => None,
            });
            ids.extend(published);
            net.handle(origin, t, actions);
            net.run();
            if let Some(reached) = published.and_then(|id| net.reached.get(&id)) {
                slowest = slowest.max(reached - t);
            }
        }
    }
    assert_eq!(ids.len(), 10);
    let mut duplicates = 0u64;
    for id in &ids {
        for router in &net.routers {
            let copies = router.duplicates_of(id);
            assert!(copies.is_some(), "every node received every message");
            duplicates += u64::from(copies.unwrap_or(0));
        }
    }
    let per_node = duplicates as f64 / (ids.len() * NODES) as f64;
    let messages = net.sent as f64 / (ids.len() * NODES) as f64;
    eprintln!(
        "gossip over {NODES} nodes: {per_node:.2} duplicate full copies per node per message, \
         {messages:.2} messages sent per node per message, every node reached within \
         {slowest} ms (10-50 ms per hop)"
    );
    assert!(per_node <= 2.0, "{per_node} duplicates per node");
    assert!(net.penalties.is_empty(), "honest nodes are not blamed");
    Ok(())
}

fn signed(key: &KeyPair, nonce: u64, timestamp_ms: u64) -> Result<GossipEnvelope, MessageError> {
    GossipEnvelope::sign(key, CHAIN_ID, nonce, timestamp_ms, tx_payload(nonce))
}

/// Full pushes among `actions`.
fn count_pushes(actions: &[GossipAction]) -> usize {
    actions
        .iter()
        .filter(|a| {
            matches!(
                a,
                GossipAction::Send {
                    message: GossipMessage::Envelope(_),
                    ..
                }
            )
        })
        .count()
}

fn router_with_peers(n: u32) -> GossipRouter {
    let mut router = GossipRouter::new(GossipConfig::new(CHAIN_ID));
    for i in 1..=n {
        router.add_peer(peer(i));
    }
    router
}

#[test]
fn nothing_is_relayed_before_validation_and_invalid_payloads_are_blamed() -> Result<(), MessageError>
{
    let key = KeyPair::from_seed(&[1; 32]);
    let mut router = router_with_peers(9);
    let t = now(0);
    let envelope = signed(&key, 1, t.unix_ms())?;
    let actions = router.on_message(t, peer(1), GossipMessage::Envelope(Box::new(envelope)));
    assert!(matches!(actions.as_slice(), [GossipAction::Deliver { .. }]));
    let Some(GossipAction::Deliver { id, .. }) = actions.first() else {
        panic!("expected a delivery, got {actions:?}");
    };
    let actions = router.validated(id, Validation::Reject(PeerEvent::InvalidTransaction));
    assert_eq!(
        actions,
        vec![GossipAction::Penalize {
            peer: peer(1),
            event: PeerEvent::InvalidTransaction,
            fault: GossipFault::Invalid,
        }]
    );

    let good = signed(&key, 2, t.unix_ms())?;
    let actions = router.on_message(t, peer(2), GossipMessage::Envelope(Box::new(good)));
    let Some(GossipAction::Deliver { id, .. }) = actions.first() else {
        panic!("expected a delivery, got {actions:?}");
    };
    let relay = router.validated(id, Validation::Accept);
    let pushes = count_pushes(&relay);
    // 8 peers may lack it (not the sender): 1 push (the default fanout), 7 announcements.
    assert_eq!(relay.len(), 8);
    assert_eq!(pushes, 1);
    assert!(
        relay
            .iter()
            .all(|a| !matches!(a, GossipAction::Send { to, .. } if *to == peer(2)))
    );
    assert!(
        router.validated(id, Validation::Accept).is_empty(),
        "relayed once"
    );
    Ok(())
}

#[test]
fn a_burst_published_over_many_milliseconds_is_accepted_in_any_order() {
    let key = KeyPair::from_seed(&[4; 32]);
    let mut origin = router_with_peers(2);
    let mut envelopes = Vec::new();
    for i in 0..200u64 {
        // One message every 3 ms: a clock-based nonce would span 600,000 values.
        let actions = origin.publish(now(i * 3), &key, tx_payload(i)).unwrap();
        let Some(GossipAction::Send {
            message: GossipMessage::Envelope(envelope),
            ..
        }) = actions.iter().find(|a| {
            matches!(
                a,
                GossipAction::Send {
                    message: GossipMessage::Envelope(_),
                    ..
                }
            )
        })
        else {
            panic!("no push in {actions:?}");
        };
        envelopes.push(envelope.as_ref().clone());
    }
    let nonces: Vec<u64> = envelopes.iter().map(|e| e.nonce).collect();
    assert!(
        nonces.windows(2).all(|w| w[1] == w[0] + 1),
        "consecutive nonces"
    );

    let mut receiver = router_with_peers(3);
    let at = now(1_000);
    for envelope in envelopes.into_iter().rev() {
        let actions = receiver.on_message(at, peer(1), GossipMessage::Envelope(Box::new(envelope)));
        assert!(
            matches!(actions.as_slice(), [GossipAction::Deliver { .. }]),
            "{actions:?}"
        );
    }
}

#[test]
fn the_square_root_fanout_pushes_to_floor_sqrt_n_peers() -> Result<(), MessageError> {
    let key = KeyPair::from_seed(&[1; 32]);
    let mut router = GossipRouter::new(GossipConfig {
        push_fanout: None,
        ..GossipConfig::new(CHAIN_ID)
    });
    for i in 1..=17 {
        router.add_peer(peer(i));
    }
    let t = now(0);
    let envelope = signed(&key, 1, t.unix_ms())?;
    let actions = router.on_message(t, peer(1), GossipMessage::Envelope(Box::new(envelope)));
    let Some(GossipAction::Deliver { id, .. }) = actions.first() else {
        panic!("expected a delivery, got {actions:?}");
    };
    let relay = router.validated(id, Validation::Accept);
    let pushes = count_pushes(&relay);
    // 16 peers may lack it: ⌊√16⌋ = 4 pushes, 12 announcements.
    assert_eq!(relay.len(), 16);
    assert_eq!(pushes, 4);
    Ok(())
}

#[test]
fn bad_signatures_replays_and_stale_messages_are_refused() -> Result<(), MessageError> {
    let key = KeyPair::from_seed(&[1; 32]);
    let mut router = router_with_peers(3);
    let t = now(0);

    let mut forged = signed(&key, 1, t.unix_ms())?;
    forged.signature = Signature::from_bytes([3; 64]);
    let actions = router.on_message(t, peer(1), GossipMessage::Envelope(Box::new(forged)));
    assert!(matches!(
        actions.as_slice(),
        [GossipAction::Penalize {
            event: PeerEvent::InvalidSignature,
            fault: GossipFault::BadSignature,
            ..
        }]
    ));

    let first = signed(&key, 5, t.unix_ms())?;
    let actions = router.on_message(t, peer(1), GossipMessage::Envelope(Box::new(first.clone())));
    assert!(matches!(actions.as_slice(), [GossipAction::Deliver { .. }]));
    // The same envelope again: a duplicate, counted, not blamed.
    let again = router.on_message(t, peer(2), GossipMessage::Envelope(Box::new(first.clone())));
    assert!(again.is_empty());
    assert_eq!(
        first.id().ok().and_then(|id| router.duplicates_of(&id)),
        Some(1)
    );

    // Same origin and nonce, other content: a replay.
    let mut other = signed(&key, 5, t.unix_ms() + 1)?;
    other.nonce = 5;
    let actions = router.on_message(t, peer(1), GossipMessage::Envelope(Box::new(other)));
    assert!(matches!(
        actions.as_slice(),
        [GossipAction::Penalize {
            fault: GossipFault::Replay,
            ..
        }]
    ));

    // After the seen-cache forgot it, the old envelope is refused as stale, unblamed.
    let later = now(200_000);
    assert!(router.poll(later).is_empty());
    assert_eq!(router.seen_len(), 0);
    let replayed = router.on_message(later, peer(3), GossipMessage::Envelope(Box::new(first)));
    assert!(replayed.is_empty());
    assert_eq!(router.stats().received, 1);
    Ok(())
}

#[test]
fn a_failed_fetch_goes_to_the_next_announcer() -> Result<(), MessageError> {
    let key = KeyPair::from_seed(&[1; 32]);
    let t = now(0);
    let envelope = signed(&key, 1, t.unix_ms())?;
    let id = envelope.id()?;
    let announce = blyan_p2p::Announce {
        id,
        hash: envelope.payload.hash(),
        height: 0,
        is_block: false,
    };
    let mut router = router_with_peers(3);
    let first = router.on_message(t, peer(1), GossipMessage::Announce(announce));
    assert_eq!(
        first,
        vec![GossipAction::Fetch {
            from: peer(1),
            id,
            is_block: false
        }]
    );
    assert!(
        router
            .on_message(t, peer(2), GossipMessage::Announce(announce))
            .is_empty()
    );
    assert_eq!(router.pending_fetches(), 1);

    // Peer 1 times out: blamed, and peer 2 is asked.
    let actions = router.poll(now(6_000));
    assert_eq!(
        actions,
        vec![
            GossipAction::Penalize {
                peer: peer(1),
                event: PeerEvent::Timeout,
                fault: GossipFault::Timeout,
            },
            GossipAction::Fetch {
                from: peer(2),
                id,
                is_block: false
            },
        ]
    );
    // A late answer from peer 1 is ignored; peer 2's answer is delivered.
    assert!(
        router
            .on_fetched(now(6_001), peer(1), id, Some(envelope.clone()))
            .is_empty()
    );
    let actions = router.on_fetched(now(6_002), peer(2), id, Some(envelope));
    assert!(matches!(actions.as_slice(), [GossipAction::Deliver { .. }]));
    assert_eq!(router.pending_fetches(), 0);
    Ok(())
}

#[test]
fn a_disconnected_announcer_is_not_blamed_for_its_fetch() -> Result<(), MessageError> {
    let key = KeyPair::from_seed(&[1; 32]);
    let t = now(0);
    let envelope = signed(&key, 1, t.unix_ms())?;
    let announce = blyan_p2p::Announce {
        id: envelope.id()?,
        hash: envelope.payload.hash(),
        height: 0,
        is_block: false,
    };
    let mut router = router_with_peers(3);
    let _ = router.on_message(t, peer(1), GossipMessage::Announce(announce));
    let _ = router.on_message(t, peer(2), GossipMessage::Announce(announce));
    // A forged copy of the same content from a third peer does not end the fetch.
    let mut forged = envelope.clone();
    forged.signature = Signature::from_bytes([3; 64]);
    let _ = router.on_message(t, peer(3), GossipMessage::Envelope(Box::new(forged)));
    assert_eq!(router.pending_fetches(), 1);
    router.remove_peer(&peer(1));
    assert_eq!(
        router.poll(now(1)),
        vec![GossipAction::Fetch {
            from: peer(2),
            id: announce.id,
            is_block: announce.is_block
        }]
    );
    Ok(())
}

#[test]
fn the_seen_cache_and_fetches_stay_bounded_under_a_flood() -> Result<(), MessageError> {
    let key = KeyPair::from_seed(&[1; 32]);
    let mut router = GossipRouter::new(GossipConfig {
        seen_capacity: 16,
        max_pending_fetches: 4,
        max_held_envelopes: 2,
        ..GossipConfig::new(CHAIN_ID)
    });
    router.add_peer(peer(1));
    let t = now(0);
    for nonce in 1..=40 {
        let envelope = signed(&key, nonce, t.unix_ms())?;
        let _ = router.on_message(t, peer(1), GossipMessage::Envelope(Box::new(envelope)));
        let announce = blyan_p2p::Announce {
            id: Hash::from_bytes([nonce as u8; 32]),
            hash: Hash::ZERO,
            height: 0,
            is_block: false,
        };
        let _ = router.on_message(t, peer(1), GossipMessage::Announce(announce));
        assert!(router.seen_len() <= 16);
        assert!(router.pending_fetches() <= 4);
    }
    let held = (38..=40)
        .filter_map(|n| signed(&key, n, t.unix_ms()).ok()?.id().ok())
        .filter(|id| router.envelope(id).is_some())
        .count();
    assert_eq!(held, 2, "only the newest envelopes are kept for fetches");
    Ok(())
}

#[test]
fn blocks_are_relayed_only_when_they_check_out_against_their_parent() {
    use blyan_p2p::check_gossip_block;

    let blocks = build_chain(4, 0);
    let chain = crate::common::MemChain::new(blocks[..3].to_vec());
    let at = now(0).unix_ms();
    assert_eq!(
        check_gossip_block(&chain, &blocks[2], at),
        Validation::Ignore,
        "known"
    );
    assert_eq!(
        check_gossip_block(&chain, &blocks[3], at),
        Validation::Accept
    );
    assert_eq!(
        check_gossip_block(&chain, &blocks[4], at),
        Validation::Ignore,
        "parent unknown: fetch it, relay nothing"
    );
    let mut forged = blocks[3].clone();
    forged.signature = Signature::from_bytes([1; 64]);
    assert_eq!(
        check_gossip_block(&chain, &forged, at),
        Validation::Reject(PeerEvent::InvalidSignature)
    );
    let mut emptied = blocks[4].clone();
    emptied.header.parent_hash = blocks[2].hash();
    emptied.header.height = 3;
    assert!(matches!(
        check_gossip_block(&chain, &emptied, at),
        Validation::Reject(_)
    ));
    // A block from a slot our clock has not reached: not relayed, not blamed.
    assert_eq!(
        check_gossip_block(&chain, &blocks[3], 0),
        Validation::Ignore
    );
}
