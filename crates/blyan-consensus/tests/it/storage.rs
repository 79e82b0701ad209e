//! The redb store on disk: round trip of blocks, reopening restores tip, state root and the
//! block tree, and databases of another chain or a newer schema are typed errors.

use blyan_consensus::{ChainManager, ChainStore, ImportOutcome, StorageError};

use crate::chain_manager::{Fixture, assert_matches_replay};

#[test]
fn blocks_round_trip_through_the_database() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let mut chain = ChainManager::open(
        &path,
        fx.genesis.clone(),
        Fixture::config(1024),
        Fixture::clock(),
    )
    .unwrap();
    let g = fx.genesis_hash;
    let blocks = fx.branch(&g, 4, 3, 1);
    for block in &blocks {
        chain.add_block(block.clone()).unwrap();
    }
    for (i, block) in blocks.iter().enumerate() {
        assert_eq!(
            chain.get_block(&block.hash()).unwrap().as_ref(),
            Some(block)
        );
        assert_eq!(
            chain.get_block_by_height(i as u64 + 1).unwrap().as_ref(),
            Some(block)
        );
        let record = chain.store().record(&block.hash()).unwrap().unwrap();
        assert_eq!(record.header, block.header);
        assert!(chain.store().undo(&block.hash()).unwrap().is_some());
    }
    assert_eq!(chain.get_block_by_height(5).unwrap(), None);
}

#[test]
fn reopening_restores_tip_state_root_and_block_tree() {
    let mut fx = Fixture::new(Fixture::params(100, 2));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    let g = fx.genesis_hash;
    let main = fx.branch(&g, 6, 3, 1);
    let side = fx.branch(&main[2].hash(), 2, 2, 40);
    let rival = fx.child(&main[5].hash(), 2, 1, 80);
    let (tip, root, forks, stats) = {
        let mut chain = ChainManager::open(
            &path,
            fx.genesis.clone(),
            Fixture::config(1024),
            Fixture::clock(),
        )
        .unwrap();
        for block in main.iter().chain(&side) {
            chain.add_block(block.clone()).unwrap();
        }
        let first = fx.child(&main[5].hash(), 1, 2, 70);
        chain.add_block(first).unwrap();
        // Equal height, seen second: stays a side block after the restart too.
        assert!(matches!(
            chain.add_block(rival.clone()).unwrap(),
            ImportOutcome::SideChain { .. }
        ));
        (
            chain.tip(),
            chain.state_root(),
            chain.get_fork_chains(),
            chain.store().stats().unwrap(),
        )
    };
    let chain = ChainManager::open(
        &path,
        fx.genesis.clone(),
        Fixture::config(1024),
        Fixture::clock(),
    )
    .unwrap();
    assert_eq!(chain.tip(), tip);
    assert_eq!(chain.state_root(), root);
    assert_eq!(chain.store().state_root().unwrap(), root);
    assert_eq!(chain.get_fork_chains(), forks);
    assert_eq!(chain.store().stats().unwrap(), stats);
    assert_eq!(chain.fork_choice().side_block_count(), 3);
    assert_matches_replay(&fx, &chain);
}

#[test]
fn a_database_of_another_chain_or_newer_schema_is_refused() {
    let fx = Fixture::new(Fixture::params(100, 2));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("chain.redb");
    drop(ChainStore::open(&path, &fx.genesis).unwrap());

    let mut other = fx.genesis.clone();
    other.chain_id += 1;
    assert!(matches!(
        ChainStore::open(&path, &other).unwrap_err(),
        StorageError::GenesisMismatch { .. }
    ));

    // A newer writer bumped the schema version.
    {
        let db = redb::Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let def: redb::TableDefinition<'_, &str, &[u8]> = redb::TableDefinition::new("meta");
            let mut meta = txn.open_table(def).unwrap();
            meta.insert("schema_version", 2u32.to_be_bytes().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(matches!(
        ChainStore::open(&path, &fx.genesis).unwrap_err(),
        StorageError::SchemaTooNew {
            found: 2,
            supported: 1
        }
    ));

    // Not a database at all.
    let junk = dir.path().join("junk.redb");
    std::fs::write(&junk, vec![0x5a; 8192]).unwrap();
    assert!(matches!(
        ChainStore::open(&junk, &fx.genesis).unwrap_err(),
        StorageError::Open(_)
    ));
}
