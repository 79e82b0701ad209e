//! Hostile peers against two honest validators over real QUIC: a forged block is banned at
//! once; a peer flooding replayed gossip is rate limited, dropped, and banned when it keeps
//! coming back; the honest nodes keep agreeing throughout.

use std::time::Duration;

use blyan_consensus::{Clock, SystemClock, Transaction};
use blyan_crypto::{Hash, KeyPair};
use blyan_node::{ApiClient, PeerView, Role, RunningNode, SyncView};
use blyan_p2p::{
    GOSSIP_PROTOCOL, GossipEnvelope, GossipMessage, GossipPayload, PROTOCOL_VERSION, SYNC_PROTOCOL,
    Status, SyncRequest, SyncResponse,
};
use blyan_wire::{Connection, Endpoint, Inbound, Protocol, ResetCode, TransportConfig};

use crate::network::{CHAIN_ID, TestNet, bootstrap_entry, hash_at, status};
use crate::support::poll;

/// A peer speaking the protocol by hand.
struct Hostile {
    key: KeyPair,
    endpoint: Endpoint,
}

impl Hostile {
    fn new(seed: u8) -> Self {
        let key = KeyPair::from_seed(&[seed; 32]);
        let endpoint = Endpoint::bind(
            "127.0.0.1:0".parse().unwrap(),
            &key,
            TransportConfig::default(),
        )
        .unwrap();
        Self { key, endpoint }
    }

    /// Dials `node` and completes the status exchange (answering the node's own status
    /// request and pings); `None` when the node refuses.
    async fn join(&self, node: &RunningNode, genesis_hash: Hash) -> Option<Connection> {
        let ours = Status {
            protocol_version: PROTOCOL_VERSION,
            chain_id: CHAIN_ID,
            genesis_hash,
            best_height: 0,
            best_hash: genesis_hash,
            finalized_height: 0,
        };
        let connection = self
            .endpoint
            .dial(node.p2p_addr(), Some(node.handle().info().peer_id))
            .await
            .ok()?;
        let answering = connection.clone();
        let status = ours.clone();
        tokio::spawn(async move {
            while let Some(Inbound::Request(request)) = answering.accept_inbound().await {
                let reply = match request.decode::<SyncRequest>() {
                    Ok(SyncRequest::Status(_)) => SyncResponse::Status(status.clone()),
                    Ok(SyncRequest::Ping { nonce }) => SyncResponse::Pong { nonce },
                    _ => {
                        request.reject(ResetCode::Refused);
                        continue;
                    }
                };
                let _ = request.respond(&reply).await;
            }
        });
        match connection
            .request::<SyncRequest, SyncResponse>(
                Protocol(SYNC_PROTOCOL),
                &SyncRequest::Status(ours),
            )
            .await
        {
            Ok(SyncResponse::Status(_)) => Some(connection),
            _ => None,
        }
    }

    async fn gossip(&self, connection: &Connection, payload: GossipPayload, nonce: u64) -> bool {
        let envelope =
            GossipEnvelope::sign(&self.key, CHAIN_ID, nonce, SystemClock.now_ms(), payload)
                .unwrap();
        connection
            .send_message(
                Protocol(GOSSIP_PROTOCOL),
                &GossipMessage::Envelope(Box::new(envelope)),
            )
            .await
            .is_ok()
    }
}

async fn peers(node: &RunningNode) -> Vec<PeerView> {
    ApiClient::new(node.api_addr())
        .get_json("/api/peers")
        .await
        .unwrap()
}

async fn banned(node: &RunningNode) -> usize {
    let sync: SyncView = ApiClient::new(node.api_addr())
        .get_json("/api/sync")
        .await
        .unwrap();
    sync.banned
}

async fn is_ready_peer(node: &RunningNode, key: &KeyPair) -> bool {
    let id = key.peer_id().to_string();
    peers(node).await.iter().any(|p| p.peer_id == id && p.ready)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_peers_are_penalized_and_banned_while_honest_nodes_agree() {
    let net = TestNet::new(2, 1_500);
    let v0 = net
        .start("v0", &net.validators[0], Role::Validator, &[])
        .await;
    let v1 = net
        .start(
            "v1",
            &net.validators[1],
            Role::Validator,
            &[bootstrap_entry(&v0)],
        )
        .await;
    let genesis_hash: Hash = status(&v0).await.genesis_hash.parse().unwrap();
    poll(
        "the honest chain to start",
        Duration::from_secs(60),
        || async { (status(&v1).await.height >= 3).then_some(()) },
    )
    .await;
    let start_height = status(&v0).await.height;

    // 1. A block whose producer signature is forged: banned at once.
    let forger = Hostile::new(66);
    let connection = forger.join(&v0, genesis_hash).await.expect("admitted");
    poll(
        "the forger to be a ready peer",
        Duration::from_secs(30),
        || async { is_ready_peer(&v0, &forger.key).await.then_some(()) },
    )
    .await;
    let mut forged = v0.handle().latest_block().await.unwrap();
    forged.header.parent_hash = forged.hash();
    forged.header.height += 1;
    forged.header.slot += 1;
    // The rightful producer of the slot and a timestamp inside it: only the signature,
    // made with the forger's key, is wrong.
    let genesis = net.genesis();
    forged.header.producer = *genesis.producer_of(forged.header.slot).unwrap();
    forged.header.timestamp_ms = genesis.slot_start_ms(forged.header.slot).unwrap() + 1;
    forged.signature = forger.key.sign(
        blyan_crypto::Domain::Block,
        CHAIN_ID,
        forged.header.hash().as_bytes(),
    );
    assert!(
        forger
            .gossip(&connection, GossipPayload::Block(forged), 1)
            .await
    );
    poll(
        "the forger to be banned",
        Duration::from_secs(30),
        || async {
            (banned(&v0).await == 1 && !is_ready_peer(&v0, &forger.key).await).then_some(())
        },
    )
    .await;
    assert!(
        forger.join(&v0, genesis_hash).await.is_none(),
        "a banned peer is refused"
    );

    // 2. A flood of replayed envelopes (one nonce, changing content): rate limited and
    // dropped; reconnecting before its score recovers ends in a ban.
    let flooder = Hostile::new(77);
    let mut rounds = 0;
    while banned(&v0).await < 2 {
        rounds += 1;
        assert!(rounds <= 30, "the flooder was never banned");
        let Some(connection) = flooder.join(&v0, genesis_hash).await else {
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        let _ = poll(
            "the flooder to be ready",
            Duration::from_secs(15),
            || async { is_ready_peer(&v0, &flooder.key).await.then_some(()) },
        )
        .await;
        for amount in 0..1_000u64 {
            let tx = Transaction {
                chain_id: CHAIN_ID,
                from: flooder.key.public_key(),
                to: net.user.address(),
                amount,
                fee: 1,
                nonce: 0,
                data: vec![],
            }
            .sign(&flooder.key);
            if !flooder.gossip(&connection, GossipPayload::Tx(tx), 1).await {
                break;
            }
        }
    }
    assert!(!is_ready_peer(&v0, &flooder.key).await);

    // The honest validators kept producing and agree.
    let target = start_height + 6;
    poll(
        "the honest chain to go on",
        Duration::from_secs(60),
        || async {
            (status(&v0).await.height >= target && status(&v1).await.height >= target).then_some(())
        },
    )
    .await;
    assert_eq!(
        hash_at(&v0, target - 2).await,
        hash_at(&v1, target - 2).await
    );
    let honest = net.validators[1].peer_id().to_string();
    assert!(
        peers(&v0)
            .await
            .iter()
            .any(|p| p.peer_id == honest && p.ready)
    );

    v1.shutdown().await.unwrap();
    v0.shutdown().await.unwrap();
}
