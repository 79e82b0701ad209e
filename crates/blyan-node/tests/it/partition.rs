//! Partitions on a simulated network (real QUIC over `SimNetwork`, links cut and healed):
//! the minority reorgs once to the majority's chain and loses no transaction; a split
//! longer than `max_reorg_depth` is refused and counted.

use std::net::SocketAddr;
use std::time::Duration;

use blyan_consensus::{ConsensusParams, Transaction};
use blyan_crypto::KeyPair;
use blyan_node::{Role, RunningNode};
use blyan_wire::{Endpoint, SimNetwork, TransportConfig};

use crate::network::{CHAIN_ID, TestNet, bootstrap_entry, hash_at, status};
use crate::support::poll;

fn sim_addr(i: usize) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, u8::try_from(i + 1).unwrap()], 7000))
}

/// Starts every validator of `net` on `sim`, node 0 as everyone's bootstrap.
async fn start_all(net: &TestNet, sim: &SimNetwork) -> Vec<RunningNode> {
    let mut nodes: Vec<RunningNode> = Vec::new();
    for (i, key) in net.validators.iter().enumerate() {
        let endpoint =
            Endpoint::bind_sim(sim, sim_addr(i), key, TransportConfig::default()).unwrap();
        let boot: Vec<String> = nodes.first().map(bootstrap_entry).into_iter().collect();
        nodes.push(
            net.start_on(
                &format!("v{i}"),
                key,
                Role::Validator,
                &boot,
                Some(endpoint),
            )
            .await,
        );
    }
    nodes
}

/// Cuts (or heals) every link between the two groups.
fn split(sim: &SimNetwork, left: &[usize], right: &[usize], cut: bool) {
    for &a in left {
        for &b in right {
            if cut {
                sim.cut(sim_addr(a), sim_addr(b));
            } else {
                sim.heal(sim_addr(a), sim_addr(b));
            }
        }
    }
}

async fn wait_connected(nodes: &[RunningNode], min_peers: usize, height: u64) {
    poll("the network to form", Duration::from_secs(60), || async {
        for node in nodes {
            let s = status(node).await;
            if s.peers < min_peers || s.height < height {
                return None;
            }
        }
        Some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_three_two_split_the_minority_reorgs_once_to_the_majority_chain() {
    let net = TestNet::new(5, 1_500);
    let params = net.genesis().params;
    let sim = SimNetwork::new(7);
    let nodes = start_all(&net, &sim).await;
    wait_connected(&nodes, 2, 3).await;
    let (majority, minority) = ([0, 1, 2], [3, 4]);
    let before = status(&nodes[0]).await.height;

    split(&sim, &majority, &minority, true);
    // A transfer that only the minority sees.
    let recipient = KeyPair::from_seed(&[9; 32]).address();
    let tx = Transaction {
        chain_id: CHAIN_ID,
        from: net.user.public_key(),
        to: recipient,
        amount: 777,
        fee: 3,
        nonce: 0,
        data: vec![],
    }
    .sign(&net.user);
    nodes[3].handle().submit_tx(tx).await.unwrap();
    // Longer than finality_depth slots: both sides build more than that many blocks.
    let split_height = before + params.finality_depth + 3;
    poll("both sides to build", Duration::from_secs(60), || async {
        let low = status(&nodes[4]).await.height;
        let high = status(&nodes[0]).await.height;
        (high >= split_height && low > before + 3).then_some(())
    })
    .await;
    let fork_check = before + 3;
    assert_ne!(
        hash_at(&nodes[0], fork_check).await,
        hash_at(&nodes[3], fork_check).await,
        "the sides diverged"
    );
    let minority_balance = nodes[3].handle().account(recipient, false).await.unwrap();
    assert_eq!(
        minority_balance.account.balance, 777,
        "included on the minority side"
    );

    split(&sim, &majority, &minority, false);
    poll(
        "every node on one chain",
        Duration::from_secs(60),
        || async {
            let reference = hash_at(&nodes[0], split_height).await?;
            for node in &nodes {
                if hash_at(node, split_height).await != Some(reference) {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;
    for (i, node) in nodes.iter().enumerate() {
        let s = status(node).await;
        let expected = u64::from(minority.contains(&i));
        assert_eq!(s.reorgs, expected, "v{i} reorged {} times", s.reorgs);
        assert_eq!(s.reorgs_refused, 0);
    }
    // The minority's transfer went back to a pool and onto the common chain.
    poll(
        "the minority's transfer on every node",
        Duration::from_secs(60),
        || async {
            for node in &nodes {
                let at_tip = node.handle().account(recipient, false).await.ok()?;
                if at_tip.account.balance != 777 {
                    return None;
                }
            }
            Some(())
        },
    )
    .await;

    for node in nodes {
        node.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_split_longer_than_max_reorg_depth_is_refused_and_counted() {
    let params = ConsensusParams {
        finality_depth: 2,
        max_reorg_depth: 4,
        ..ConsensusParams::default()
    };
    let net = TestNet::with_params(3, 1_500, 250, params);
    let sim = SimNetwork::new(11);
    let nodes = start_all(&net, &sim).await;
    wait_connected(&nodes, 2, 2).await;
    let (majority, minority) = ([0, 1], [2]);
    let before = status(&nodes[2]).await.height;

    split(&sim, &majority, &minority, true);
    // The lone validator builds more than max_reorg_depth blocks of its own.
    poll(
        "the minority to build past max_reorg_depth",
        Duration::from_secs(60),
        || async { (status(&nodes[2]).await.height > before + 6).then_some(()) },
    )
    .await;
    split(&sim, &majority, &minority, false);

    poll(
        "the refusal to be counted",
        Duration::from_secs(60),
        || async { (status(&nodes[2]).await.reorgs_refused >= 1).then_some(()) },
    )
    .await;
    let s = status(&nodes[2]).await;
    assert_eq!(s.reorgs, 0, "the minority never reorged");
    let check = before + 6;
    assert_ne!(
        hash_at(&nodes[2], check).await,
        hash_at(&nodes[0], check).await,
        "the minority kept its own branch"
    );
    assert_eq!(
        hash_at(&nodes[0], check).await,
        hash_at(&nodes[1], check).await
    );

    for node in nodes {
        node.shutdown().await.unwrap();
    }
}
