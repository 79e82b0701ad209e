//! A node restarted with the same key and data directory comes back with its identity and
//! the table it saved, whose entries it pings before trusting them again.

use std::collections::HashSet;
use std::net::SocketAddr;

use blyan_crypto::PeerId;
use blyan_dht::{Key, NodeRecord, TABLE_FILE_NAME};

use crate::quic_support::{CHAIN, Node, config, eventually, key};

async fn table_ids(node: &Node) -> HashSet<PeerId> {
    let nodes = node.dht.table_nodes().await.unwrap();
    nodes.iter().map(|n| n.peer_id()).collect()
}

/// Waits until the OS lets `addr` be bound again (the old endpoint's socket closes in the
/// background). The probe socket closes as it drops.
async fn rebindable(addr: SocketAddr) {
    eventually("the old port to be free", || async {
        std::net::UdpSocket::bind(addr).is_ok()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_keeps_its_identity_and_revalidates_its_saved_table() {
    let dir = tempfile::tempdir().unwrap();
    let seed = Node::any_port(key(0, 2), config(None)).await;
    let mut others = Vec::new();
    for i in 1..6 {
        let node = Node::any_port(key(i, 2), config(None)).await;
        node.join(seed.seed()).await;
        others.push(node);
    }
    let node = Node::any_port(key(100, 2), config(Some(dir.path().into()))).await;
    node.join(seed.seed()).await;
    eventually("the node to know all 6 others", || async {
        node.dht.find_node(Key::from(node.id())).await.is_ok()
            && node.dht.status().await.unwrap().table_len == 6
    })
    .await;
    let saved = table_ids(&node).await;
    let id = node.id();
    let addr = node.addr;
    let seq = NodeRecord::decode(node.dht.local_record(), CHAIN)
        .unwrap()
        .seq();
    node.stop().await;
    assert!(dir.path().join(TABLE_FILE_NAME).is_file());

    // One saved entry dies while the node is down.
    let gone = others.pop().unwrap();
    let gone_id = gone.id();
    gone.stop().await;

    rebindable(addr).await;
    let node = Node::start(key(100, 2), addr, config(Some(dir.path().into()))).await;
    assert_eq!(node.dht.local_id(), id);
    let record = NodeRecord::decode(node.dht.local_record(), CHAIN).unwrap();
    assert_eq!(record.peer_id(), id);
    assert!(record.seq() > seq, "a restart signs a newer record");

    // No bootstrap: the table comes back from disk, one ping at a time; the dead entry's
    // ping fails (after the 5 s request timeout) and it never enters.
    eventually("the saved entries to be re-validated", || async {
        let status = node.dht.status().await.unwrap();
        status.candidates == 0 && status.outstanding_rpcs == 0 && status.table_len == 5
    })
    .await;
    let table = table_ids(&node).await;
    assert!(!table.contains(&gone_id));
    let mut expected = saved;
    expected.remove(&gone_id);
    assert_eq!(table, expected);
    // And it serves lookups straight away.
    let found = node
        .dht
        .find_node(Key::for_value(b"after restart"))
        .await
        .unwrap();
    assert_eq!(found.len(), 5);

    node.stop().await;
    seed.stop().await;
    for other in others {
        other.stop().await;
    }
}
