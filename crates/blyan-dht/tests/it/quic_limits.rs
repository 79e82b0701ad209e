//! The driver's bounds over QUIC: malformed and foreign requests are refused without
//! disturbing the node, and the connection cache stays within its cap.

use std::net::SocketAddr;

use blyan_crypto::PeerId;
use blyan_dht::{DhtRequest, Key, PROTOCOL_ID, RecordCache, Reply, Response};
use blyan_wire::{Endpoint, Protocol, RequestError, ResetCode, TransportConfig};

use crate::quic_support::{CHAIN, Node, closest, config, eventually, key};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_foreign_requests_are_refused_and_the_node_keeps_serving() {
    let node = Node::any_port(key(0, 4), config(None)).await;
    let client = Endpoint::bind(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        &key(1, 4),
        TransportConfig::default(),
    )
    .unwrap();
    let connection = client.dial(node.addr, Some(node.id())).await.unwrap();
    let ping = DhtRequest::Ping.encode().unwrap();

    let garbage = connection
        .request_bytes(Protocol(PROTOCOL_ID), &[0, 0xc1])
        .await
        .unwrap_err();
    assert!(
        matches!(
            garbage,
            RequestError::Reset {
                code: ResetCode::Malformed
            }
        ),
        "{garbage}"
    );
    let foreign = connection
        .request_bytes(Protocol(PROTOCOL_ID + 1), &ping)
        .await
        .unwrap_err();
    assert!(
        matches!(
            foreign,
            RequestError::Reset {
                code: ResetCode::UnknownProtocol
            }
        ),
        "{foreign}"
    );

    let answer = connection
        .request_bytes(Protocol(PROTOCOL_ID), &ping)
        .await
        .unwrap();
    let mut records = RecordCache::new(CHAIN, 8);
    let response = Response::decode(&answer, Some(node.id()), node.addr, &mut records).unwrap();
    assert_eq!(response.reply, Reply::Pong);
    assert_eq!(response.responder.peer_id(), node.id());

    drop(connection);
    client.close().await;
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_connection_cache_stays_within_its_cap() {
    let seed = Node::any_port(key(0, 5), config(None)).await;
    let mut nodes = vec![];
    for i in 1..6 {
        let node = Node::any_port(key(i, 5), config(None)).await;
        node.join(seed.seed()).await;
        nodes.push(node);
    }
    // A node enters the seed's table once the seed's validation ping is answered: wait
    // for all five, so the seed's answers (and the lookups below) see the whole network.
    eventually("the seed to know every node", || async {
        seed.dht.status().await.unwrap().table_len >= 5
    })
    .await;
    nodes.push(seed);
    let mut small = config(None);
    small.max_connections = 2;
    let frugal = Node::any_port(key(100, 5), small).await;
    frugal.join(nodes[0].seed()).await;

    let ids: Vec<PeerId> = nodes.iter().map(Node::id).collect();
    for round in 0..3u8 {
        let target = Key::for_value(&[b'c', round]);
        let found = frugal.dht.find_node(target).await.unwrap();
        let found: Vec<PeerId> = found.iter().map(|n| n.peer_id()).collect();
        assert_eq!(found, closest(&ids, &target, 20));
        // Connections in use are never evicted, so the cap may be exceeded by the
        // requests in flight, and only by them.
        let status = frugal.dht.status().await.unwrap();
        assert!(
            status.connections <= 2 + status.outstanding_rpcs,
            "{status:?}"
        );
    }
    eventually("the cache to shrink back to its cap", || async {
        let status = frugal.dht.status().await.unwrap();
        status.outstanding_rpcs == 0 && status.connections <= 2
    })
    .await;

    frugal.stop().await;
    for node in nodes {
        node.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_set_beyond_what_an_instant_holds_do_not_stop_the_driver() {
    let mut forever = config(None);
    forever.save_interval = std::time::Duration::MAX;
    forever.dht.maintenance_interval = std::time::Duration::MAX;
    forever.dht.rpc_timeout = std::time::Duration::MAX;
    let node = Node::any_port(key(0, 7), forever).await;
    let other = Node::any_port(key(1, 7), config(None)).await;
    other.join(node.seed()).await;
    node.join(other.seed()).await;
    let found = node.dht.find_node(Key::for_value(b"far")).await.unwrap();
    assert_eq!(found.len(), 1);
    node.stop().await;
    other.stop().await;
}
