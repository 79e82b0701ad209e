//! The driver behind a protocol router that owns the endpoint: the router accepts every
//! connection, hands DHT requests to `Dht::handle_inbound`, answers its own protocol, and
//! shares its connections with the driver (one QUIC connection per peer).

use blyan_crypto::PeerId;
use blyan_dht::{Dht, DhtRequest, Key, PROTOCOL_ID};
use blyan_wire::{Connection, Endpoint, Inbound, Protocol, TransportConfig};
use tokio::sync::mpsc;

use crate::quic_support::{Node, closest, config, eventually, key};

/// A protocol the router answers itself.
const ECHO: Protocol = Protocol(9);

/// Serves one connection the way a node's protocol router would.
async fn route(dht: Dht, connection: Connection) {
    let peer = connection.remote_peer_id();
    while let Some(inbound) = connection.accept_inbound().await {
        let Inbound::Request(request) = inbound else {
            continue;
        };
        if request.protocol() == Protocol(PROTOCOL_ID) {
            let dht = dht.clone();
            let from = connection.remote_addr();
            tokio::spawn(async move {
                let _ = dht.handle_inbound(peer, from, request).await;
            });
        } else {
            let echo = request.message().to_vec();
            let _ = request.respond_bytes(&echo).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_router_shares_its_endpoint_and_connections_with_the_driver() {
    let seed = Node::any_port(key(0, 6), config(None)).await;
    let mut nodes = vec![];
    for i in 1..5 {
        let node = Node::any_port(key(i, 6), config(None)).await;
        node.join(seed.seed()).await;
        nodes.push(node);
    }

    let router_key = key(100, 6);
    let endpoint = Endpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        &router_key,
        TransportConfig::default(),
    )
    .unwrap();
    let dht = Dht::spawn(endpoint.clone(), &router_key, config(None))
        .await
        .unwrap();
    let (sink, mut dialled) = mpsc::channel::<Connection>(64);
    dht.route_dialled_connections(sink);
    let router = {
        let dht = dht.clone();
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            loop {
                let connection = tokio::select! {
                    accepted = endpoint.accept() => match accepted {
                        Some(connection) => {
                            dht.adopt_connection(connection.clone());
                            connection
                        }
                        None => break,
                    },
                    Some(connection) = dialled.recv() => connection,
                };
                tokio::spawn(route(dht.clone(), connection));
            }
        })
    };

    assert!(dht.bootstrap([seed.seed()]).await.unwrap() >= 1);
    nodes.push(seed);
    let ids: Vec<PeerId> = nodes.iter().map(Node::id).collect();
    let target = Key::for_value(b"routed");
    let found = dht.find_node(target).await.unwrap();
    let found: Vec<PeerId> = found.iter().map(|n| n.peer_id()).collect();
    assert_eq!(found, closest(&ids, &target, 20));

    // The others reach the routed node through the connections it dialled: they ping it
    // before taking it in, and the router passes the pings on.
    for node in &nodes {
        eventually("every node to take the routed node in", || async {
            let found = node
                .dht
                .find_node(Key::from(router_key.peer_id()))
                .await
                .unwrap();
            found.first().map(|n| n.peer_id()) == Some(router_key.peer_id())
        })
        .await;
    }
    // One connection per peer: the router's other protocol runs on the DHT's connection.
    let client = Endpoint::bind(
        "127.0.0.1:0".parse().unwrap(),
        &key(200, 6),
        TransportConfig::default(),
    )
    .unwrap();
    let to_router = client
        .dial(endpoint.local_addr().unwrap(), Some(router_key.peer_id()))
        .await
        .unwrap();
    let echoed = to_router.request_bytes(ECHO, b"\x00hi").await.unwrap();
    assert_eq!(&echoed[..], b"\x00hi");
    let ping = DhtRequest::Ping.encode().unwrap();
    assert!(
        to_router
            .request_bytes(Protocol(PROTOCOL_ID), &ping)
            .await
            .is_ok()
    );

    drop(to_router);
    client.close().await;
    dht.shutdown().await.unwrap();
    router.abort();
    endpoint.close().await;
    for node in nodes {
        node.stop().await;
    }
}
