//! The `ChainManager` adapter: a node on a short branch of its own syncs a longer chain
//! from another `ChainManager`, finding the fork point with its locator and reorging.

use std::collections::BTreeMap;
use std::sync::Arc;

use blyan_consensus::{
    ChainConfig, ChainManager, ConsensusParams, Genesis, ManualClock, Mempool, MempoolConfig,
    build_block,
};
use blyan_crypto::KeyPair;
use blyan_p2p::{
    PROTOCOL_VERSION, Status, SyncAction, SyncChain, SyncConfig, SyncScheduler, block_locator,
    serve_bodies, serve_headers,
};

use crate::common::{now, peer};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn genesis(key: &KeyPair) -> Genesis {
    Genesis {
        chain_id: 3,
        genesis_time_ms: 0,
        slot_duration_ms: 1_000,
        validators: vec![key.public_key()],
        balances: BTreeMap::new(),
        params: ConsensusParams::default(),
    }
}

/// Produces one empty block per slot in `slots` on `chain`.
fn produce(
    chain: &mut ChainManager,
    key: &KeyPair,
    clock: &ManualClock,
    slots: impl IntoIterator<Item = u64>,
) -> TestResult {
    let mempool = Mempool::new(MempoolConfig::default(), chain.validator().genesis());
    for slot in slots {
        let time = slot * 1_000 + 10;
        clock.set(time);
        let state = chain.store().state_view()?;
        let parent = chain.tip_header().clone();
        let built = build_block(
            chain.validator(),
            &mempool,
            slot,
            key,
            &parent,
            &state,
            time,
        )?;
        chain.add_block(built.block)?;
    }
    Ok(())
}

fn status(chain: &ChainManager) -> Status {
    let (best_height, best_hash) = chain.best();
    Status {
        protocol_version: PROTOCOL_VERSION,
        chain_id: 3,
        genesis_hash: chain.canonical_hash(0).unwrap_or(best_hash),
        best_height,
        best_hash,
        finalized_height: chain.finalized_height().unwrap_or(0),
    }
}

#[test]
fn a_node_on_a_short_branch_syncs_and_reorgs_to_the_longer_chain() -> TestResult {
    let key = KeyPair::from_seed(&[8; 32]);
    let clock = Arc::new(ManualClock::new(0));
    let mut server = ChainManager::in_memory(genesis(&key), ChainConfig::default(), clock.clone())?;
    let mut node = ChainManager::in_memory(genesis(&key), ChainConfig::default(), clock.clone())?;
    // Shared history to height 5, then the node's own branch of 3 blocks (slots 20..23),
    // while the server's branch runs to height 5 + 40.
    produce(&mut server, &key, &clock, 1..=5)?;
    for height in 1..=5 {
        if let Some(block) = server.get_block_by_height(height)? {
            node.add_block(block)?;
        }
    }
    produce(&mut node, &key, &clock, 20..23)?;
    produce(&mut server, &key, &clock, 30..70)?;
    assert_eq!(node.best().0, 8);
    assert_eq!(server.best().0, 45);
    let locator = block_locator(&node);
    assert_eq!(locator.first(), Some(&node.best().1));
    assert_eq!(locator.last(), node.canonical_hash(0).as_ref());

    let mut sync = SyncScheduler::new(SyncConfig {
        header_batch: 16,
        bodies_per_request: 5,
        ..SyncConfig::default()
    });
    let mut t = 0;
    let mut actions = sync.on_status(now(t), &node, peer(1), &status(&server));
    let mut rounds = 0;
    while !actions.is_empty() && rounds < 1_000 {
        rounds += 1;
        t += 10;
        let mut next = Vec::new();
        for action in actions {
            match action {
                SyncAction::RequestHeaders {
                    peer,
                    request,
                    locator,
                    max,
                } => {
                    let headers = serve_headers(&server, &locator, max).into_inner();
                    next.extend(sync.on_headers(now(t), &node, peer, request, headers));
                }
                SyncAction::RequestBodies {
                    peer,
                    request,
                    hashes,
                } => {
                    let bodies = serve_bodies(&server, &hashes, 1 << 20).into_inner();
                    next.extend(sync.on_bodies(now(t), &node, peer, request, bodies));
                }
                SyncAction::Import { blocks } => {
                    for result in node.import_batch(blocks) {
                        result?;
                    }
                    next.extend(sync.poll(now(t), &node));
                }
                SyncAction::Penalize { peer, fault } => {
                    return Err(format!("honest server {peer} penalized: {fault:?}").into());
                }
            }
        }
        actions = next;
    }
    assert_eq!(
        node.best(),
        server.best(),
        "the node reorged to the longer chain"
    );
    let progress = sync.progress(&node);
    assert_eq!(progress.current_height, 45);
    assert_eq!(progress.ratio, 1.0);
    assert_eq!(progress.held_headers, 0);
    Ok(())
}
