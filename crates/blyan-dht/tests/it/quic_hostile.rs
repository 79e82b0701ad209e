//! Peers that answer garbage, or are not who they are said to be, count as failures: they
//! never enter a table and lookups still find every honest node.

use std::net::SocketAddr;

use blyan_crypto::PeerId;
use blyan_dht::{DhtRequest, Key, NodeRecord, PROTOCOL_ID, Reply, Seed};
use blyan_wire::{Connection, Endpoint, Inbound, Protocol, TransportConfig};

use crate::quic_support::{CHAIN, Node, closest, config, eventually, key};

/// Answers PING well (so it gets into tables) and everything else with bytes that are not
/// a DHT message.
async fn serve_lies(connection: Connection, record: Vec<u8>) {
    while let Some(inbound) = connection.accept_inbound().await {
        let Inbound::Request(request) = inbound else {
            continue;
        };
        let answer = match DhtRequest::decode(request.message()) {
            Ok(DhtRequest::Ping) => Reply::Pong.encode(&record).unwrap().to_vec(),
            _ => vec![0, 0xc1, 0xde, 0xad],
        };
        let _ = request.respond_bytes(&answer).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_wrong_peer_ids_are_failures_that_do_not_hurt_lookups() {
    let seed = Node::any_port(key(0, 3), config(None)).await;
    let mut honest = vec![];
    for i in 1..8 {
        let node = Node::any_port(key(i, 3), config(None)).await;
        node.join(seed.seed()).await;
        honest.push(node);
    }
    honest.push(seed);

    // The liar introduces itself to every honest node with a request; each pings it back
    // before taking it in, and the liar answers pings correctly.
    let liar_key = key(200, 3);
    let liar = Endpoint::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &liar_key,
        TransportConfig::default(),
    )
    .unwrap();
    let liar_addr = liar.local_addr().unwrap();
    let record = NodeRecord::new(&liar_key, CHAIN, &[liar_addr], 1)
        .unwrap()
        .encode()
        .unwrap();
    let accepting = {
        let liar = liar.clone();
        let record = record.clone();
        tokio::spawn(async move {
            while let Some(connection) = liar.accept().await {
                tokio::spawn(serve_lies(connection, record.clone()));
            }
        })
    };
    let mut liar_connections = Vec::new();
    for node in &honest {
        let connection = liar.dial(node.addr, Some(node.id())).await.unwrap();
        tokio::spawn(serve_lies(connection.clone(), record.clone()));
        let hello = DhtRequest::FindNode {
            target: Key::from(liar_key.peer_id()),
        };
        connection
            .request_bytes(Protocol(PROTOCOL_ID), &hello.encode().unwrap())
            .await
            .unwrap();
        liar_connections.push(connection);
    }
    for node in &honest {
        eventually("the liar to enter every table", || async {
            let table = node.dht.table_nodes().await.unwrap();
            table.iter().any(|n| n.peer_id() == liar_key.peer_id())
        })
        .await;
    }

    // An impostor: its certificate proves one id, the seed list claims another.
    let impostor_key = key(201, 3);
    let impostor = Endpoint::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &impostor_key,
        TransportConfig::default(),
    )
    .unwrap();
    let claimed = key(202, 3).peer_id();
    let newcomer = Node::any_port(key(300, 3), config(None)).await;
    let joined = newcomer
        .dht
        .bootstrap([
            Seed {
                addr: impostor.local_addr().unwrap(),
                peer: Some(claimed),
            },
            Seed {
                addr: liar_addr,
                peer: None,
            },
            honest[0].seed(),
        ])
        .await
        .unwrap();
    assert!(joined >= 1);
    let table = newcomer.dht.table_nodes().await.unwrap();
    for bad in [claimed, impostor_key.peer_id(), liar_key.peer_id()] {
        assert!(table.iter().all(|n| n.peer_id() != bad));
    }
    honest.push(newcomer);

    // Lookups of the liar's own id ask it first; it fails and the lookup goes on.
    let ids: Vec<PeerId> = honest.iter().map(Node::id).collect();
    for (i, node) in honest.iter().enumerate() {
        for target in [
            Key::from(liar_key.peer_id()),
            Key::for_value(&[b'h', u8::try_from(i).unwrap()]),
        ] {
            let others: Vec<PeerId> = ids.iter().copied().filter(|id| *id != node.id()).collect();
            let found = node.dht.find_node(target).await.unwrap();
            let found: Vec<PeerId> = found.iter().map(|n| n.peer_id()).collect();
            assert_eq!(found, closest(&others, &target, 20), "node {i}");
        }
    }

    drop(liar_connections);
    accepting.abort();
    liar.close().await;
    impostor.close().await;
    for node in honest {
        node.stop().await;
    }
}
