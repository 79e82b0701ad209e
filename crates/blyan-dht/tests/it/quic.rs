//! The driver over real QUIC on 127.0.0.1: 50 nodes join through one seed and every lookup
//! finds the true 20 closest; a stored value is found from another node.

use std::time::{Duration, Instant};

use blyan_crypto::PeerId;
use blyan_dht::{DriverConfig, Key};
use tokio::task::JoinSet;

use crate::quic_support::{Node, closest, config, key};

const NODES: u32 = 50;
/// Nodes joining at once.
const WAVE: usize = 7;

/// Every node is honest and alive here, so a request that takes long is a loaded machine,
/// not a dead peer: a 20 s request timeout (not 5 s) keeps a slow answer from costing a
/// lookup its exactness on a busy 2-core debug run.
fn patient() -> DriverConfig {
    let mut config = config(None);
    config.dht.rpc_timeout = Duration::from_secs(20);
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_nodes_find_the_true_closest_and_values() {
    let started = Instant::now();
    let seed = Node::any_port(key(0, 1), patient()).await;
    let via = seed.seed();
    let mut nodes = vec![seed];
    // In waves, as nodes join a live network: each wave joins a network the earlier waves
    // built, and the nodes of a wave meet each other through it.
    for wave in (1..NODES).collect::<Vec<_>>().chunks(WAVE) {
        let mut joining = JoinSet::new();
        for &i in wave {
            joining.spawn(async move {
                let node = Node::any_port(key(i, 1), patient()).await;
                node.join(via).await;
                (i, node)
            });
        }
        let mut joined = joining.join_all().await;
        joined.sort_by_key(|(i, _)| *i);
        nodes.extend(joined.into_iter().map(|(_, node)| node));
    }
    let joined = started.elapsed();

    let ids: Vec<PeerId> = nodes.iter().map(Node::id).collect();
    let mut lookups = JoinSet::new();
    for (i, node) in nodes.iter().enumerate() {
        let dht = node.dht.clone();
        let me = node.id();
        let target = Key::for_value(&[b'q', u8::try_from(i).unwrap()]);
        let others: Vec<PeerId> = ids.iter().copied().filter(|id| *id != me).collect();
        lookups.spawn(async move {
            let found = dht.find_node(target).await.unwrap();
            let found: Vec<PeerId> = found.iter().map(|n| n.peer_id()).collect();
            (i, found, closest(&others, &target, 20))
        });
    }
    while let Some(done) = lookups.join_next().await {
        let (i, found, truth) = done.unwrap();
        assert_eq!(found, truth, "node {i} did not find the true 20 closest");
    }
    let looked_up = started.elapsed();

    let key = Key::for_value(b"greeting");
    let summary = nodes[3]
        .dht
        .store(key, b"hello".to_vec(), Duration::from_secs(600))
        .await
        .unwrap();
    assert_eq!(summary.stored, 20, "{summary:?}");
    let values = nodes[40].dht.get(key).await.unwrap();
    assert_eq!(values.len(), 1);
    assert_eq!(values[0].publisher, nodes[3].id());
    assert_eq!(values[0].value, b"hello");
    assert!(
        nodes[17]
            .dht
            .get(Key::for_value(b"absent"))
            .await
            .unwrap()
            .is_empty()
    );

    let mut connections = 0;
    let mut table = 0;
    for node in &nodes {
        let status = node.dht.status().await.unwrap();
        connections += status.connections;
        table += status.table_len;
    }
    eprintln!(
        "{NODES} nodes joined in {joined:?}, lookups done at {looked_up:?}, store/get at {:?}; \
         {connections} cached connections, {table} table entries over all nodes",
        started.elapsed()
    );
    let mut stopping = JoinSet::new();
    for node in nodes {
        stopping.spawn(node.stop());
    }
    stopping.join_all().await;
}
