//! Nodes over real QUIC on 127.0.0.1, each with its own database: agreement, transaction
//! gossip through the API, and late sync.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blyan_consensus::{ConsensusParams, Genesis, ManualClock, SystemClock, Transaction};
use blyan_crypto::{Hash, KeyPair};
use blyan_node::{
    ApiClient, Node, NodeConfig, NodeOptions, Role, RunningNode, StatusView, TxBody, write_genesis,
};

use crate::loopback::loopback_config;
use crate::support::{PASSPHRASE, poll};

pub(crate) const CHAIN_ID: u32 = 4242;
pub(crate) const SLOT_MS: u64 = 400;

/// A chain of `validators` validators and a funded user, its files in a temp dir.
pub(crate) struct TestNet {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) validators: Vec<KeyPair>,
    pub(crate) user: KeyPair,
}

impl TestNet {
    pub(crate) fn new(validators: usize, start_in_ms: i64) -> Self {
        Self::with_params(validators, start_in_ms, SLOT_MS, ConsensusParams::default())
    }

    pub(crate) fn with_params(
        validators: usize,
        start_in_ms: i64,
        slot_ms: u64,
        params: ConsensusParams,
    ) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let validators: Vec<KeyPair> = (0..validators)
            .map(|i| KeyPair::from_seed(&[100 + i as u8; 32]))
            .collect();
        let user = KeyPair::from_seed(&[7; 32]);
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let genesis = Genesis {
            chain_id: CHAIN_ID,
            genesis_time_ms: u64::try_from(i64::try_from(now.as_millis()).unwrap() + start_in_ms)
                .unwrap(),
            slot_duration_ms: slot_ms,
            validators: validators.iter().map(KeyPair::public_key).collect(),
            balances: BTreeMap::from([(user.address(), 1_000_000)]),
            params,
        };
        write_genesis(&dir.path().join("genesis.json"), &genesis, false).unwrap();
        Self {
            dir,
            validators,
            user,
        }
    }

    /// Node `name`'s configuration: its own data dir and key, loopback ports, `bootstrap`.
    pub(crate) fn config(
        &self,
        name: &str,
        key: &KeyPair,
        role: Role,
        bootstrap: &[String],
    ) -> NodeConfig {
        let mut config = loopback_config(
            &self.dir.path().join(name),
            &self.dir.path().join("genesis.json"),
            name,
            key,
            role,
            bootstrap,
            PASSPHRASE,
        );
        config.network.target_outbound = 4;
        config
    }

    pub(crate) fn genesis(&self) -> Genesis {
        blyan_node::read_genesis(&self.dir.path().join("genesis.json")).unwrap()
    }

    pub(crate) async fn start(
        &self,
        name: &str,
        key: &KeyPair,
        role: Role,
        bootstrap: &[String],
    ) -> RunningNode {
        self.start_on(name, key, role, bootstrap, None).await
    }

    /// Starts a node on `endpoint` (bound with `key`), or on UDP when `None`.
    pub(crate) async fn start_on(
        &self,
        name: &str,
        key: &KeyPair,
        role: Role,
        bootstrap: &[String],
        endpoint: Option<blyan_wire::Endpoint>,
    ) -> RunningNode {
        let config = self.config(name, key, role, bootstrap);
        let options = NodeOptions {
            clock: Arc::new(SystemClock),
            env: Box::new(|name| (name == "BLYAN_KEY_PASSPHRASE").then(|| PASSPHRASE.to_owned())),
            endpoint,
            produce_blocks: true,
        };
        Node::open(config, options).unwrap().start().await.unwrap()
    }
}

/// `<peer id>@127.0.0.1:<port>` of a running node.
pub(crate) fn bootstrap_entry(node: &RunningNode) -> String {
    format!("{}@{}", node.handle().info().peer_id, node.p2p_addr())
}

pub(crate) async fn status(node: &RunningNode) -> StatusView {
    ApiClient::new(node.api_addr()).status().await.unwrap()
}

/// The canonical hash at `height` on `node`, if it has one.
pub(crate) async fn hash_at(node: &RunningNode, height: u64) -> Option<Hash> {
    node.handle()
        .block_by_height(height)
        .await
        .unwrap()
        .map(|b| b.hash())
}

/// Waits until `address` holds `balance` at the tip of every node in `nodes`.
pub(crate) async fn wait_for_balance(
    nodes: &[RunningNode],
    address: blyan_crypto::Address,
    balance: u64,
    within: Duration,
) {
    poll(
        &format!("balance {balance} on every node"),
        within,
        || async {
            for node in nodes {
                let at_tip = node.handle().account(address, false).await.unwrap();
                if at_tip.account.balance != balance {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_validators_and_two_full_nodes_agree_and_spread_a_transaction() {
    let net = TestNet::new(5, 3_000);
    let seed = net
        .start("v0", &net.validators[0], Role::Validator, &[])
        .await;
    let boot = vec![bootstrap_entry(&seed)];
    let mut nodes = vec![seed];
    for i in 1..5 {
        let key = net.validators[i].clone();
        nodes.push(
            net.start(&format!("v{i}"), &key, Role::Validator, &boot)
                .await,
        );
    }
    for i in 0..2 {
        let key = KeyPair::from_seed(&[200 + i as u8; 32]);
        nodes.push(net.start(&format!("f{i}"), &key, Role::Full, &boot).await);
    }

    // Everyone connects to someone and the chain grows on every node.
    let target = 12;
    poll(
        "every node at height 12",
        Duration::from_secs(90),
        || async {
            for node in &nodes {
                if status(node).await.height < target {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    for node in &nodes {
        assert!(
            status(node).await.peers >= 1,
            "{} has no peer",
            node.handle().info().name
        );
    }

    // A transaction posted to one full node's API reaches a validator and then a block,
    // visible on every node.
    let recipient = KeyPair::from_seed(&[9; 32]).address();
    let tx = Transaction {
        chain_id: CHAIN_ID,
        from: net.user.public_key(),
        to: recipient,
        amount: 1234,
        fee: 5,
        nonce: 0,
        data: vec![],
    }
    .sign(&net.user);
    let body = serde_json::to_vec(&TxBody::from_signed(&tx)).unwrap();
    let posted = ApiClient::new(nodes[6].api_addr())
        .request("POST", "/api/tx", Some(body))
        .await
        .unwrap();
    assert_eq!(
        posted.status,
        202,
        "{}",
        String::from_utf8_lossy(&posted.body)
    );
    wait_for_balance(&nodes, recipient, 1234, Duration::from_secs(60)).await;

    // Same chain everywhere: every node holds the same block at a common height, and
    // the same state root there.
    let common = {
        let mut lowest = u64::MAX;
        for node in &nodes {
            lowest = lowest.min(status(node).await.height);
        }
        lowest.saturating_sub(3)
    };
    let reference = hash_at(&nodes[0], common).await.unwrap();
    let root = nodes[0]
        .handle()
        .block_by_height(common)
        .await
        .unwrap()
        .unwrap()
        .header
        .state_root;
    for node in &nodes {
        let block = node
            .handle()
            .block_by_height(common)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            block.hash(),
            reference,
            "{} differs at {common}",
            node.handle().info().name
        );
        assert_eq!(block.header.state_root, root);
    }

    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_started_late_syncs_two_thousand_blocks_then_follows_the_tip() {
    const BLOCKS: u64 = 2_000;
    // Slot 0 lies far enough back that BLOCKS slots have passed.
    let net = TestNet::new(1, -i64::try_from((BLOCKS + 200) * SLOT_MS).unwrap());
    let genesis = net.genesis();
    let validator = net.validators[0].clone();

    // The validator's history, produced on a manual clock before the network starts.
    {
        let clock = Arc::new(ManualClock::new(genesis.genesis_time_ms));
        let options = NodeOptions {
            clock: clock.clone(),
            env: Box::new(|name| (name == "BLYAN_KEY_PASSPHRASE").then(|| PASSPHRASE.to_owned())),
            endpoint: None,
            produce_blocks: false,
        };
        let node = Node::open(net.config("v0", &validator, Role::Validator, &[]), options).unwrap();
        let handle = node.handle();
        for slot in 1..=BLOCKS {
            clock.set(genesis.genesis_time_ms + slot * SLOT_MS + SLOT_MS / 2);
            handle.produce_block().await.unwrap().unwrap();
        }
        let running = node.start().await.unwrap();
        running.shutdown().await.unwrap();
    }

    let seed = net.start("v0", &validator, Role::Validator, &[]).await;
    assert!(status(&seed).await.height >= BLOCKS);
    let late_key = KeyPair::from_seed(&[201; 32]);
    let late = net
        .start("late", &late_key, Role::Full, &[bootstrap_entry(&seed)])
        .await;

    let synced = poll(
        "the late node to catch up",
        Duration::from_secs(120),
        || async {
            let theirs = status(&seed).await.height;
            let ours = status(&late).await.height;
            (ours >= BLOCKS && ours + 2 >= theirs).then_some(ours)
        },
    )
    .await;
    let reference = hash_at(&seed, BLOCKS).await.unwrap();
    assert_eq!(hash_at(&late, BLOCKS).await, Some(reference));

    // Then it follows new blocks by gossip.
    poll(
        "the late node to follow the tip",
        Duration::from_secs(30),
        || async { (status(&late).await.height >= synced + 3).then_some(()) },
    )
    .await;
    let sync: blyan_node::SyncView = ApiClient::new(late.api_addr())
        .get_json("/api/sync")
        .await
        .unwrap();
    assert!(sync.peers >= 1);
    assert!(sync.progress_ratio > 0.99, "{sync:?}");

    late.shutdown().await.unwrap();
    seed.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_transactions_spreads_without_peers_penalizing_each_other() {
    let net = TestNet::new(1, 1_000);
    let seed = net
        .start("v0", &net.validators[0], Role::Validator, &[])
        .await;
    let boot = vec![bootstrap_entry(&seed)];
    let mut nodes = vec![seed];
    for i in 0..3 {
        let key = KeyPair::from_seed(&[210 + i as u8; 32]);
        nodes.push(net.start(&format!("f{i}"), &key, Role::Full, &boot).await);
    }
    poll("a full mesh", Duration::from_secs(60), || async {
        for node in &nodes {
            if status(node).await.peers < 3 {
                return None;
            }
        }
        Some(())
    })
    .await;

    // 64 transfers (the mempool's nonce window) at once into one full node: each is
    // announced to its peers, who fetch it; the validator includes them all. Before
    // solicited fetches were charged as control messages, the fetches of such a burst
    // overran the announcer's budget (64 x 10 units against a burst of 400) and honest
    // peers penalized and banned each other.
    let recipient = KeyPair::from_seed(&[11; 32]).address();
    let client = nodes[3].handle();
    for nonce in 0..64 {
        let tx = Transaction {
            chain_id: CHAIN_ID,
            from: net.user.public_key(),
            to: recipient,
            amount: 1,
            fee: 1,
            nonce,
            data: vec![],
        }
        .sign(&net.user);
        client.submit_tx(tx).await.unwrap();
    }
    wait_for_balance(&nodes, recipient, 64, Duration::from_secs(90)).await;
    for node in &nodes {
        let network = node.handle().network_status().await.unwrap().unwrap();
        assert_eq!(network.banned, 0, "{}", node.handle().info().name);
        assert_eq!(network.peers, 3, "{}", node.handle().info().name);
        for peer in node.handle().peers().await.unwrap() {
            assert!(
                peer.score >= 0.0,
                "{} penalized {}: {}",
                node.handle().info().name,
                peer.peer_id,
                peer.score
            );
        }
    }
    for node in nodes {
        node.shutdown().await.unwrap();
    }
}
