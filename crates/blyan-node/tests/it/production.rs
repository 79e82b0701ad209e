//! Block production, the events for the network layer, restarts and shutdown.

use std::sync::Arc;
use std::time::Duration;

use blyan_consensus::SystemClock;
use blyan_node::{ApiClient, Node, NodeError, NodeEvent, NodeOptions, TxBody};

use crate::support::{PASSPHRASE, SLOT_MS, TestChain, USER_BALANCE, clock_at_slot, poll};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_transaction_is_included_in_the_next_block() {
    let chain = TestChain::new();
    let clock = clock_at_slot(1);
    let node = chain.open(clock.clone()).start().await.unwrap();
    let handle = node.handle();
    let mut events = handle.subscribe();
    let client = ApiClient::new(node.api_addr());

    let tx = chain.transfer(0, 250, 7);
    let body = serde_json::to_vec(&TxBody::from_signed(&tx)).unwrap();
    let response = client.request("POST", "/api/tx", Some(body)).await.unwrap();
    assert_eq!(response.status, 202);
    assert!(matches!(
        events.recv().await.unwrap(),
        NodeEvent::TxAdmitted { hash, .. } if hash == tx.hash()
    ));

    let block = handle.produce_block().await.unwrap().expect("our slot");
    assert_eq!(block.header.height, 1);
    assert_eq!(block.header.slot, 1);
    assert_eq!(block.txs, vec![tx.clone()]);
    // Nothing more to do in the same slot.
    assert!(handle.produce_block().await.unwrap().is_none());
    match events.recv().await.unwrap() {
        NodeEvent::BlockImported {
            block: imported,
            produced,
        } => {
            assert!(produced);
            assert_eq!(imported.hash(), block.hash());
        }
        other => panic!("unexpected event {other:?}"),
    }

    let status = client.status().await.unwrap();
    assert_eq!(status.height, 1);
    assert_eq!(status.mempool_size, 0);
    assert_eq!(status.tip_hash, block.hash().to_string());
    let user = handle.account(chain.user.address(), false).await.unwrap();
    assert_eq!(user.account.balance, USER_BALANCE - 257);
    assert_eq!(user.account.nonce, 1);
    let validator = handle
        .account(chain.validator.address(), false)
        .await
        .unwrap();
    assert_eq!(validator.account.balance, 250 + 7, "amount and fee");

    // The next slot produces the next block, empty.
    clock.advance(SLOT_MS);
    let next = handle.produce_block().await.unwrap().expect("slot 2");
    assert_eq!((next.header.height, next.header.slot), (2, 2));
    assert!(next.txs.is_empty());

    node.shutdown().await.unwrap();
    assert!(matches!(
        handle.chain_status().await,
        Err(NodeError::ShuttingDown)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_resumes_the_same_chain() {
    let chain = TestChain::new();
    let clock = clock_at_slot(1);
    let node = chain.open(clock.clone()).start().await.unwrap();
    let handle = node.handle();
    for _ in 0..3 {
        handle.produce_block().await.unwrap().expect("our slot");
        clock.advance(SLOT_MS);
    }
    let before = handle.chain_status().await.unwrap();
    let info = handle.info().clone();
    node.shutdown().await.unwrap();

    let reopened = chain.open(clock.clone());
    let handle = reopened.handle();
    let after = handle.chain_status().await.unwrap();
    assert_eq!(after, before);
    assert_eq!(after.height, 3);
    assert_eq!(handle.info(), &info);
    // And it continues from there.
    assert_eq!(
        handle.produce_block().await.unwrap().unwrap().header.height,
        4
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_production_loop_makes_a_block_every_slot() {
    let chain = TestChain::new();
    // A chain starting now with short slots, produced by the real loop on the system clock.
    let mut genesis = chain.genesis.clone();
    genesis.slot_duration_ms = 100;
    genesis.genesis_time_ms = blyan_consensus::Clock::now_ms(&SystemClock);
    let path = chain.path().join("fast-genesis.json");
    blyan_node::write_genesis(&path, &genesis, false).unwrap();
    let mut config = chain.config();
    config.consensus.genesis_file = Some(path);
    let options = NodeOptions {
        clock: Arc::new(SystemClock),
        env: Box::new(|name| (name == "BLYAN_KEY_PASSPHRASE").then(|| PASSPHRASE.to_owned())),
        endpoint: None,
        produce_blocks: true,
    };
    let node = Node::open(config, options).unwrap().start().await.unwrap();
    let handle = node.handle();
    let status = poll("height 3", Duration::from_secs(30), || {
        let handle = handle.clone();
        async move {
            let status = handle.chain_status().await.ok()?;
            (status.height >= 3).then_some(status)
        }
    })
    .await;
    assert!(status.tip_slot >= 3);
    node.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_chain_is_created_once_and_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = blyan_node::NodeConfig::default();
    config.storage.path = dir.path().join("data");
    config.metrics.enabled = false;
    config.api.listen_addr = "127.0.0.1:0".parse().unwrap();
    config.security.kdf_memory_kib = 64;
    config.security.kdf_passes = 1;
    let no_env = || NodeOptions {
        clock: clock_at_slot(1),
        env: Box::new(|_| None),
        endpoint: None,
        produce_blocks: false,
    };
    let first = Node::open(config.clone(), no_env()).unwrap();
    let info = first.handle().info().clone();
    assert!(info.dev_chain && info.producing);
    assert!(dir.path().join("data/genesis.json").exists());
    assert!(dir.path().join("data/node.key.passphrase").exists());
    drop(first);
    let second = Node::open(config, no_env()).unwrap();
    assert_eq!(second.handle().info(), &info);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_light_node_is_refused_until_p2p_exists() {
    let chain = TestChain::new();
    let mut config = chain.config();
    config.node.role = blyan_node::Role::Light;
    let error = Node::open(config, crate::support::manual_options(clock_at_slot(1))).unwrap_err();
    assert!(matches!(error, NodeError::RoleUnavailable(_)), "{error}");
}
