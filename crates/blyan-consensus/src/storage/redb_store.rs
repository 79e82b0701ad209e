//! [`ChainStore`]: the chain in a redb database, with the account state served from the
//! same transaction that writes a block.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use blyan_crypto::{Address, Hash};
use blyan_wire::{from_canonical_bytes, to_canonical_bytes};
use redb::{
    Database, Durability, ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable,
    ReadableTableMetadata, Table, TableDefinition, WriteTransaction,
};

use crate::genesis::Genesis;
use crate::state::{
    Account, AccountProof, AccountState, NodeStore, SmtNode, StateDiff, StateMachine, StateStore,
    StoreError, UndoData,
};
use crate::storage::StorageError;
use crate::storage::node_cache::{DEFAULT_NODE_CACHE_ENTRIES, HashKeyed, NodeCache};
use crate::storage::schema::{
    ACCOUNTS, BLOCK_META, BLOCKS, BlockRecord, CANONICAL, META, META_GENESIS, META_NEXT_ARRIVAL,
    META_SCHEMA, META_STATE_ROOT, META_TIP, SCHEMA_VERSION, SIDE_BLOCKS, STATE_NODES, UNDO,
    decode_hash, decode_node, decode_u32, decode_u64, encode_node,
};
use crate::types::{Block, Header};

/// Default redb page cache: 64 MiB holds the upper levels of every table and the hot part
/// of the state tree; redb's own default (1 GiB) is too much for a small node.
const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

type HashTable<'t, V> = Table<'t, &'static [u8; 32], V>;

/// The chain database.
///
/// Opened for one genesis: a database initialised for another chain, or by a newer schema,
/// is refused. All writes go through [`ChainStore::write`] (one atomic transaction); reads
/// see the last committed state.
///
/// Decoded state-tree nodes are kept in a bounded in-memory cache shared by every
/// transaction and read view: nodes are content addressed, so a cached node is never stale
/// (an aborted transaction or a reorg cannot make it wrong) and the upper levels of the
/// tree are read from memory instead of the database.
///
/// A non-durable commit (group commit, see [`ChainStore::write`]) does not write its state
/// tree nodes to the database: they are kept in memory, merged with the following
/// non-durable commits (a node created by one block and replaced by the next never reaches
/// the disk), and written by the next durable commit, before anything else it writes. A
/// crash loses every non-durable commit anyway (redb rolls back to the last durable one,
/// whose nodes are all on disk); dropping the store makes the buffered nodes durable.
pub struct ChainStore {
    db: DbHandle,
    genesis_hash: Hash,
    nodes: Arc<NodeCache>,
    /// Node changes of the non-durable commits since the last durable one.
    unflushed: Mutex<UnflushedNodes>,
}

impl std::fmt::Debug for ChainStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainStore")
            .field("genesis_hash", &self.genesis_hash)
            .finish_non_exhaustive()
    }
}

impl Drop for ChainStore {
    /// Writes the nodes buffered by non-durable commits (a durable empty commit), so that
    /// the database never records a state root whose nodes it lacks.
    fn drop(&mut self) {
        if self.unflushed().is_empty() {
            return;
        }
        if let Err(error) = self.flush() {
            // redb's own close would now make the non-durable commits durable *without* the
            // tree nodes this flush failed to write: a tip whose state root lacks nodes.
            // Leaking the handle instead leaves the file as a crash would, and the next open
            // rolls back to the last durable commit, which is complete. The cost, only on this
            // failure path: the file handle and its lock stay held until the process exits.
            tracing::error!(
                %error,
                "cannot write the buffered state nodes on close; the commits since the last \
                 durable one will be rolled back when the database is next opened"
            );
            if let Some(db) = self.db.0.take() {
                std::mem::forget(db);
            }
        }
    }
}

/// The database, owned by [`ChainStore`] and released by its `Drop`: closed normally, or
/// leaked when buffered state nodes could not be written (see `Drop for ChainStore`).
struct DbHandle(Option<Database>);

impl std::ops::Deref for DbHandle {
    type Target = Database;

    fn deref(&self) -> &Database {
        match &self.0 {
            Some(db) => db,
            // Only `Drop for ChainStore` takes the database, after its last use.
            None => unreachable!("the database handle is taken only while the store drops"),
        }
    }
}

/// Number of entries per table (for operators, tests and benches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreStats {
    /// Stored blocks (canonical and side).
    pub blocks: u64,
    /// Stored non-canonical blocks.
    pub side_blocks: u64,
    /// Entries of the canonical index (tip height + 1).
    pub canonical: u64,
    /// Blocks with undo data (canonical blocks above the irreversible height).
    pub undo: u64,
    /// Stored (non-empty) accounts.
    pub accounts: u64,
    /// Stored state tree nodes.
    pub state_nodes: u64,
}

impl ChainStore {
    /// Opens the database at `path`, creating and initialising it with `genesis` if the file
    /// does not exist or is empty. A crash during an earlier run is repaired by redb on open
    /// (the last committed transaction is the state).
    pub fn open(path: impl AsRef<Path>, genesis: &Genesis) -> Result<Self, StorageError> {
        let db = Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .create(path)?;
        Self::init(db, genesis)
    }

    /// A database in memory (redb's in-memory backend): for unit tests and simulations.
    pub fn in_memory(genesis: &Genesis) -> Result<Self, StorageError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, genesis)
    }

    /// Creates the tables and writes the genesis block and state into an empty database, or
    /// checks that a non-empty one belongs to this chain and schema.
    fn init(db: Database, genesis: &Genesis) -> Result<Self, StorageError> {
        let block = genesis.block()?;
        let genesis_hash = block.hash();
        let store = Self {
            db: DbHandle(Some(db)),
            genesis_hash,
            nodes: Arc::new(NodeCache::new(DEFAULT_NODE_CACHE_ENTRIES)),
            unflushed: Mutex::new(UnflushedNodes::default()),
        };
        store.write(true, |t| {
            let schema = t.meta_get(META_SCHEMA)?;
            let Some(schema) = schema else {
                let transition = genesis.state_transition()?;
                t.state_mut().apply(&transition.diff)?;
                t.put_block(&block, 0)?;
                t.set_canonical(0, &genesis_hash)?;
                t.set_tip(&genesis_hash)?;
                t.set_next_arrival(1)?;
                t.meta_put(META_SCHEMA, &SCHEMA_VERSION.to_be_bytes())?;
                t.meta_put(META_GENESIS, genesis_hash.as_bytes())?;
                return Ok(());
            };
            let found = decode_u32(&schema).ok_or(StorageError::Corrupt { table: "meta" })?;
            if found > SCHEMA_VERSION {
                return Err(StorageError::SchemaTooNew {
                    found,
                    supported: SCHEMA_VERSION,
                });
            }
            let stored = t
                .meta_get(META_GENESIS)?
                .ok_or(StorageError::MissingMeta(META_GENESIS))?;
            let stored = decode_hash(&stored).ok_or(StorageError::Corrupt { table: "meta" })?;
            if stored != genesis_hash {
                return Err(StorageError::GenesisMismatch {
                    stored,
                    expected: genesis_hash,
                });
            }
            Ok(())
        })?;
        Ok(store)
    }

    /// Hash of the genesis block this database belongs to.
    pub fn genesis_hash(&self) -> Hash {
        self.genesis_hash
    }

    /// Runs `f` on the tables of one write transaction and commits if it returns `Ok`; on
    /// `Err` the transaction is aborted and nothing it wrote is kept. The state root in the
    /// meta table is written from the state tables just before the commit.
    ///
    /// With `durable = false` the commit is not flushed to disk (redb's `Durability::None`):
    /// it is atomic and visible, and a later durable commit makes it and every earlier one
    /// durable. A crash loses the non-durable tail, never part of a transaction.
    pub fn write<T, E>(
        &self,
        durable: bool,
        f: impl FnOnce(&mut WriteTables<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StorageError>,
    {
        let mut txn = self.db.begin_write().map_err(StorageError::from)?;
        if !durable {
            txn.set_durability(Durability::None)
                .map_err(StorageError::from)?;
        }
        let mut unflushed = self.unflushed();
        let result = {
            let mut tables = WriteTables::open(&txn, &self.nodes, &unflushed, durable)?;
            match f(&mut tables) {
                Ok(value) => tables
                    .finish()
                    .map(|deferred| (value, deferred))
                    .map_err(E::from),
                Err(error) => Err(error),
            }
        };
        match result {
            Ok((value, deferred)) => {
                txn.commit().map_err(StorageError::from)?;
                if durable {
                    // The buffered nodes were written by this transaction.
                    unflushed.clear();
                } else {
                    unflushed.extend(deferred);
                }
                Ok(value)
            }
            Err(error) => {
                // Dropping the transaction aborts it as well; an abort failure leaves nothing
                // committed either way, so the caller's error is the one to report.
                let _ = txn.abort();
                Err(error)
            }
        }
    }

    /// Makes every earlier non-durable commit durable (an empty durable transaction, which
    /// writes their buffered state tree nodes).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.write(true, |_| Ok::<_, StorageError>(()))
    }

    fn unflushed(&self) -> MutexGuard<'_, UnflushedNodes> {
        // Updated only after a commit, in one call: a panic elsewhere cannot leave it half
        // written.
        self.unflushed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self) -> Result<ReadTransaction, StorageError> {
        Ok(self.db.begin_read()?)
    }

    fn read_meta_hash(&self, key: &'static str) -> Result<Hash, StorageError> {
        let table = self.read()?.open_table(META)?;
        let value = table.get(key)?.ok_or(StorageError::MissingMeta(key))?;
        decode_hash(value.value()).ok_or(StorageError::Corrupt { table: "meta" })
    }

    /// Hash of the canonical tip.
    pub fn tip(&self) -> Result<Hash, StorageError> {
        self.read_meta_hash(META_TIP)
    }

    /// State root after the tip.
    pub fn state_root(&self) -> Result<Hash, StorageError> {
        self.read_meta_hash(META_STATE_ROOT)
    }

    /// The stored block with this hash (canonical or side).
    pub fn block(&self, hash: &Hash) -> Result<Option<Block>, StorageError> {
        let table = self.read()?.open_table(BLOCKS)?;
        table
            .get(hash.as_bytes())?
            .map(|v| decode(v.value(), "blocks"))
            .transpose()
    }

    /// The stored header and arrival number of a block.
    pub fn record(&self, hash: &Hash) -> Result<Option<BlockRecord>, StorageError> {
        let table = self.read()?.open_table(BLOCK_META)?;
        table
            .get(hash.as_bytes())?
            .map(|v| decode(v.value(), "block_meta"))
            .transpose()
    }

    /// The canonical block hash at `height`.
    pub fn canonical_hash(&self, height: u64) -> Result<Option<Hash>, StorageError> {
        let table = self.read()?.open_table(CANONICAL)?;
        Ok(table.get(height)?.map(|v| Hash::from_bytes(*v.value())))
    }

    /// The undo data kept for a canonical block (none at or below the irreversible height).
    pub fn undo(&self, hash: &Hash) -> Result<Option<UndoData>, StorageError> {
        let table = self.read()?.open_table(UNDO)?;
        table
            .get(hash.as_bytes())?
            .map(|v| decode(v.value(), "undo"))
            .transpose()
    }

    /// The records of every stored side block, in arrival order.
    pub fn side_blocks(&self) -> Result<Vec<(Hash, BlockRecord)>, StorageError> {
        let txn = self.read()?;
        let side = txn.open_table(SIDE_BLOCKS)?;
        let meta = txn.open_table(BLOCK_META)?;
        let mut out = Vec::new();
        for entry in side.iter()? {
            let (key, _) = entry?;
            let hash = Hash::from_bytes(*key.value());
            let record: BlockRecord = decode(
                meta.get(hash.as_bytes())?
                    .ok_or(StorageError::Missing {
                        what: "block meta",
                        hash,
                    })?
                    .value(),
                "block_meta",
            )?;
            out.push((hash, record));
        }
        out.sort_by_key(|(_, record)| record.arrival);
        Ok(out)
    }

    /// A read-only view of the committed state (for account queries and proofs).
    pub fn state_view(&self) -> Result<AccountState<StateView>, StorageError> {
        let txn = self.read()?;
        let view = StateView {
            accounts: txn.open_table(ACCOUNTS)?,
            nodes: txn.open_table(STATE_NODES)?,
            cache: Arc::clone(&self.nodes),
            unflushed: self.unflushed().clone(),
            root: self.state_root()?,
        };
        Ok(AccountState::open(view)?)
    }

    /// The committed account under `address` (`None`: no account).
    pub fn account(&self, address: &Address) -> Result<Option<Account>, StorageError> {
        Ok(self.state_view()?.account(address)?)
    }

    /// A proof of the committed account under `address` against [`ChainStore::state_root`].
    pub fn account_proof(&self, address: &Address) -> Result<AccountProof, StorageError> {
        Ok(self.state_view()?.prove(address)?)
    }

    /// Entries per table.
    pub fn stats(&self) -> Result<StoreStats, StorageError> {
        let txn = self.read()?;
        Ok(StoreStats {
            blocks: txn.open_table(BLOCKS)?.len()?,
            side_blocks: txn.open_table(SIDE_BLOCKS)?.len()?,
            canonical: txn.open_table(CANONICAL)?.len()?,
            undo: txn.open_table(UNDO)?.len()?,
            accounts: txn.open_table(ACCOUNTS)?.len()?,
            state_nodes: txn.open_table(STATE_NODES)?.len()?,
        })
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    table: &'static str,
) -> Result<T, StorageError> {
    from_canonical_bytes(bytes).map_err(|_| StorageError::Corrupt { table })
}

fn encode<T: serde::Serialize>(value: &T, table: &'static str) -> Result<Vec<u8>, StorageError> {
    to_canonical_bytes(value).map_err(|_| StorageError::Encode { table })
}

/// Every table of one write transaction, open. Given to the closure of
/// [`ChainStore::write`]; the state tables sit inside an [`AccountState`] so validation
/// reads, and applying a block writes, inside the same transaction.
pub struct WriteTables<'t> {
    blocks: HashTable<'t, &'static [u8]>,
    block_meta: HashTable<'t, &'static [u8]>,
    side: HashTable<'t, ()>,
    canonical: Table<'t, u64, &'static [u8; 32]>,
    undo: HashTable<'t, &'static [u8]>,
    meta: Table<'t, &'static str, &'static [u8]>,
    state: AccountState<StateTables<'t>>,
}

impl std::fmt::Debug for WriteTables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WriteTables")
            .field("state_root", &self.state.root())
            .finish_non_exhaustive()
    }
}

fn open<'t, K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &'t WriteTransaction,
    def: TableDefinition<'_, K, V>,
) -> Result<Table<'t, K, V>, StorageError> {
    Ok(txn.open_table(def)?)
}

impl<'t> WriteTables<'t> {
    fn open(
        txn: &'t WriteTransaction,
        cache: &'t NodeCache,
        unflushed: &'t UnflushedNodes,
        durable: bool,
    ) -> Result<Self, StorageError> {
        let meta = open(txn, META)?;
        let mut nodes = open(txn, STATE_NODES)?;
        if durable {
            // First the nodes of the earlier non-durable commits, so that this commit
            // makes their state durable with them.
            let mut sorted: Vec<_> = unflushed.iter().collect();
            sorted.sort_unstable_by_key(|(hash, _)| **hash);
            write_nodes(&mut nodes, sorted)?;
        }
        let root = match meta.get(META_STATE_ROOT)? {
            Some(v) => decode_hash(v.value()).ok_or(StorageError::Corrupt { table: "meta" })?,
            None => crate::state::EMPTY_ROOT,
        };
        let state = AccountState::open(StateTables {
            accounts: open(txn, ACCOUNTS)?,
            nodes,
            cache,
            // Already written into the table when durable.
            unflushed: if durable { None } else { Some(unflushed) },
            deferred: UnflushedNodes::default(),
            root,
        })?;
        Ok(Self {
            blocks: open(txn, BLOCKS)?,
            block_meta: open(txn, BLOCK_META)?,
            side: open(txn, SIDE_BLOCKS)?,
            canonical: open(txn, CANONICAL)?,
            undo: open(txn, UNDO)?,
            meta,
            state,
        })
    }

    /// Writes the state root next to the tip, so both move in the same commit. Returns the
    /// node changes a non-durable transaction deferred (empty for a durable one).
    fn finish(mut self) -> Result<UnflushedNodes, StorageError> {
        let root = self.state.root();
        self.meta_put(META_STATE_ROOT, root.as_bytes())?;
        Ok(self.state.into_store().deferred)
    }

    /// The account state as of this transaction's writes so far.
    pub fn state(&self) -> &AccountState<StateTables<'t>> {
        &self.state
    }

    /// The account state, to apply or revert a diff.
    pub fn state_mut(&mut self) -> &mut AccountState<StateTables<'t>> {
        &mut self.state
    }

    fn meta_get(&self, key: &str) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.meta.get(key)?.map(|v| v.value().to_vec()))
    }

    fn meta_put(&mut self, key: &str, value: &[u8]) -> Result<(), StorageError> {
        self.meta.insert(key, value)?;
        Ok(())
    }

    /// Stores a block and its record (not marked side or canonical).
    pub fn put_block(&mut self, block: &Block, arrival: u64) -> Result<(), StorageError> {
        let hash = block.hash();
        let record = BlockRecord {
            header: block.header.clone(),
            arrival,
        };
        self.blocks
            .insert(hash.as_bytes(), encode(block, "blocks")?.as_slice())?;
        self.block_meta
            .insert(hash.as_bytes(), encode(&record, "block_meta")?.as_slice())?;
        Ok(())
    }

    /// The stored block with this hash.
    pub fn block(&self, hash: &Hash) -> Result<Block, StorageError> {
        let value = self
            .blocks
            .get(hash.as_bytes())?
            .ok_or(StorageError::Missing {
                what: "block",
                hash: *hash,
            })?;
        decode(value.value(), "blocks")
    }

    /// The stored header of a block.
    pub fn header(&self, hash: &Hash) -> Result<Header, StorageError> {
        let value = self
            .block_meta
            .get(hash.as_bytes())?
            .ok_or(StorageError::Missing {
                what: "block meta",
                hash: *hash,
            })?;
        decode::<BlockRecord>(value.value(), "block_meta").map(|r| r.header)
    }

    /// Deletes a block with everything stored about it (record, side mark, undo data).
    pub fn delete_block(&mut self, hash: &Hash) -> Result<(), StorageError> {
        let key = hash.as_bytes();
        self.blocks.remove(key)?;
        self.block_meta.remove(key)?;
        self.side.remove(key)?;
        self.undo.remove(key)?;
        Ok(())
    }

    /// Marks a stored block as on a side branch (`true`) or canonical (`false`).
    pub fn set_side(&mut self, hash: &Hash, side: bool) -> Result<(), StorageError> {
        if side {
            self.side.insert(hash.as_bytes(), ())?;
        } else {
            self.side.remove(hash.as_bytes())?;
        }
        Ok(())
    }

    /// Sets the canonical block at `height`.
    pub fn set_canonical(&mut self, height: u64, hash: &Hash) -> Result<(), StorageError> {
        self.canonical.insert(height, hash.as_bytes())?;
        Ok(())
    }

    /// Removes the canonical entry at `height` (a reverted block above the new tip).
    pub fn remove_canonical(&mut self, height: u64) -> Result<(), StorageError> {
        self.canonical.remove(height)?;
        Ok(())
    }

    /// The canonical block at `height`, as written so far.
    pub fn canonical(&self, height: u64) -> Result<Option<Hash>, StorageError> {
        Ok(self
            .canonical
            .get(height)?
            .map(|v| Hash::from_bytes(*v.value())))
    }

    /// Stores the undo data of a block that became canonical.
    pub fn put_undo(&mut self, hash: &Hash, undo: &UndoData) -> Result<(), StorageError> {
        self.undo
            .insert(hash.as_bytes(), encode(undo, "undo")?.as_slice())?;
        Ok(())
    }

    /// The undo data of a canonical block (an error if it is not stored).
    pub fn undo(&self, hash: &Hash) -> Result<UndoData, StorageError> {
        let value = self
            .undo
            .get(hash.as_bytes())?
            .ok_or(StorageError::Missing {
                what: "undo data",
                hash: *hash,
            })?;
        decode(value.value(), "undo")
    }

    /// Forgets the undo data of a block (reverted, or now irreversible).
    pub fn delete_undo(&mut self, hash: &Hash) -> Result<(), StorageError> {
        self.undo.remove(hash.as_bytes())?;
        Ok(())
    }

    /// Records the canonical tip.
    pub fn set_tip(&mut self, hash: &Hash) -> Result<(), StorageError> {
        self.meta_put(META_TIP, hash.as_bytes())
    }

    /// The arrival number the next stored block gets.
    pub fn next_arrival(&self) -> Result<u64, StorageError> {
        match self.meta.get(META_NEXT_ARRIVAL)? {
            Some(v) => decode_u64(v.value()).ok_or(StorageError::Corrupt { table: "meta" }),
            None => Ok(0),
        }
    }

    /// Sets the arrival number of the next stored block.
    pub fn set_next_arrival(&mut self, next: u64) -> Result<(), StorageError> {
        self.meta_put(META_NEXT_ARRIVAL, &next.to_be_bytes())
    }
}

/// The state tables of a write transaction as a [`StateStore`]: reads see the
/// transaction's own writes, and [`StateStore::write`] applies a [`StateDiff`] into it.
pub struct StateTables<'t> {
    accounts: Table<'t, &'static [u8; 20], (u64, u64)>,
    nodes: HashTable<'t, &'static [u8]>,
    cache: &'t NodeCache,
    /// In a non-durable transaction: the node changes of the earlier non-durable commits,
    /// not in the table yet (`None` in a durable one: they were written at its start).
    unflushed: Option<&'t UnflushedNodes>,
    /// In a non-durable transaction: this transaction's node changes, kept out of the
    /// table (see [`ChainStore`]).
    deferred: UnflushedNodes,
    root: Hash,
}

impl std::fmt::Debug for StateTables<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateTables")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

fn store_error(error: impl Into<StorageError>) -> StoreError {
    StoreError::new(error.into())
}

/// A node through the cache: a miss reads the table and remembers the decoded node.
fn read_node(
    table: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    cache: &NodeCache,
    hash: &Hash,
) -> Result<Option<SmtNode>, StoreError> {
    if let Some(node) = cache.get(hash) {
        return Ok(Some(node));
    }
    match table.get(hash.as_bytes()).map_err(store_error)? {
        None => Ok(None),
        Some(value) => {
            let node = decode_node(value.value()).ok_or_else(|| {
                store_error(StorageError::Corrupt {
                    table: "state_nodes",
                })
            })?;
            cache.insert(*hash, node);
            Ok(Some(node))
        }
    }
}

fn read_account(
    table: &impl ReadableTable<&'static [u8; 20], (u64, u64)>,
    address: &Address,
) -> Result<Option<Account>, StoreError> {
    Ok(table
        .get(address.as_bytes())
        .map_err(store_error)?
        .map(|v| {
            let (balance, nonce) = v.value();
            Account { balance, nonce }
        }))
}

/// Node changes held in memory (hash → write or delete): a hash map, since thousands of
/// them accumulate over a group commit and are only sorted once, when written.
type UnflushedNodes = HashKeyed<Option<SmtNode>>;

/// Writes (`Some`) and deletes (`None`) nodes in the table (pass them in key order).
fn write_nodes<'a>(
    table: &mut HashTable<'_, &'static [u8]>,
    nodes: impl IntoIterator<Item = (&'a Hash, &'a Option<SmtNode>)>,
) -> Result<(), StorageError> {
    for (hash, node) in nodes {
        match node {
            Some(node) => table
                .insert(hash.as_bytes(), encode_node(node).as_slice())
                .map(drop),
            None => table.remove(hash.as_bytes()).map(drop),
        }?;
    }
    Ok(())
}

impl NodeStore for StateTables<'_> {
    fn node(&self, hash: &Hash) -> Result<Option<SmtNode>, StoreError> {
        // The newest change of a node wins: this transaction's, then the unflushed ones.
        for changes in [Some(&self.deferred), self.unflushed].into_iter().flatten() {
            if let Some(change) = changes.get(hash) {
                return Ok(*change);
            }
        }
        read_node(&self.nodes, self.cache, hash)
    }
}

impl StateStore for StateTables<'_> {
    fn state_root(&self) -> Result<Hash, StoreError> {
        Ok(self.root)
    }

    fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        read_account(&self.accounts, address)
    }

    fn write(&mut self, diff: &StateDiff) -> Result<(), StoreError> {
        for (address, account) in &diff.accounts {
            match account {
                Some(a) => self
                    .accounts
                    .insert(address.as_bytes(), (a.balance, a.nonce))
                    .map(drop),
                None => self.accounts.remove(address.as_bytes()).map(drop),
            }
            .map_err(store_error)?;
        }
        if self.unflushed.is_some() {
            self.deferred
                .extend(diff.nodes.iter().map(|(hash, node)| (*hash, *node)));
        } else {
            write_nodes(&mut self.nodes, &diff.nodes).map_err(store_error)?;
        }
        // Content addressed: caching a node before the commit is safe even if the
        // transaction aborts (see `NodeCache`).
        self.cache.insert_all(
            diff.nodes
                .iter()
                .filter_map(|(hash, node)| node.as_ref().map(|n| (hash, n))),
        );
        self.root = diff.new_root;
        Ok(())
    }
}

/// The committed state as a read-only [`StateStore`] (a snapshot: later commits are not
/// seen). Writing through it fails with [`StorageError::ReadOnly`].
pub struct StateView {
    accounts: ReadOnlyTable<&'static [u8; 20], (u64, u64)>,
    nodes: ReadOnlyTable<&'static [u8; 32], &'static [u8]>,
    cache: Arc<NodeCache>,
    /// Node changes of committed non-durable transactions, not in the table yet.
    unflushed: UnflushedNodes,
    root: Hash,
}

impl std::fmt::Debug for StateView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateView")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl NodeStore for StateView {
    fn node(&self, hash: &Hash) -> Result<Option<SmtNode>, StoreError> {
        if let Some(change) = self.unflushed.get(hash) {
            return Ok(*change);
        }
        read_node(&self.nodes, &self.cache, hash)
    }
}

impl StateStore for StateView {
    fn state_root(&self) -> Result<Hash, StoreError> {
        Ok(self.root)
    }

    fn account(&self, address: &Address) -> Result<Option<Account>, StoreError> {
        read_account(&self.accounts, address)
    }

    fn write(&mut self, _diff: &StateDiff) -> Result<(), StoreError> {
        Err(store_error(StorageError::ReadOnly))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use blyan_crypto::KeyPair;

    use super::*;
    use crate::genesis::ConsensusParams;

    fn genesis(chain_id: u32) -> Genesis {
        let v = KeyPair::from_seed(&[1; 32]);
        Genesis {
            chain_id,
            genesis_time_ms: 0,
            slot_duration_ms: 1000,
            validators: vec![v.public_key()],
            balances: (1..=20u8)
                .map(|i| (KeyPair::from_seed(&[i; 32]).address(), u64::from(i) * 100))
                .collect::<BTreeMap<_, _>>(),
            params: ConsensusParams::default(),
        }
    }

    #[test]
    fn fresh_store_holds_genesis_block_and_state() {
        let g = genesis(1);
        let store = ChainStore::in_memory(&g).unwrap();
        let block = g.block().unwrap();
        assert_eq!(store.tip().unwrap(), block.hash());
        assert_eq!(store.state_root().unwrap(), block.header.state_root);
        assert_eq!(store.block(&block.hash()).unwrap(), Some(block.clone()));
        assert_eq!(store.canonical_hash(0).unwrap(), Some(block.hash()));
        let who = KeyPair::from_seed(&[7; 32]).address();
        assert_eq!(
            store.account(&who).unwrap(),
            Some(Account {
                balance: 700,
                nonce: 0
            })
        );
        let proof = store.account_proof(&who).unwrap();
        assert_eq!(
            proof.verify(&block.header.state_root, &who).unwrap(),
            Some(Account {
                balance: 700,
                nonce: 0
            })
        );
        let stats = store.stats().unwrap();
        assert_eq!((stats.blocks, stats.canonical, stats.accounts), (1, 1, 20));
    }

    #[test]
    fn failed_write_leaves_nothing() {
        let g = genesis(1);
        let store = ChainStore::in_memory(&g).unwrap();
        let before = store.stats().unwrap();
        let root = store.state_root().unwrap();
        let result: Result<(), StorageError> = store.write(true, |t| {
            let who = KeyPair::from_seed(&[99; 32]).address();
            let tr = t.state().set_accounts([(
                who,
                Account {
                    balance: 1,
                    nonce: 0,
                },
            )])?;
            t.state_mut().apply(&tr.diff)?;
            t.set_canonical(5, &Hash::ZERO)?;
            Err(StorageError::ReadOnly)
        });
        assert!(matches!(result, Err(StorageError::ReadOnly)));
        assert_eq!(store.stats().unwrap(), before);
        assert_eq!(store.state_root().unwrap(), root);
    }

    #[test]
    fn node_cache_stays_correct_across_aborted_writes_and_reverts() {
        let g = genesis(1);
        let store = ChainStore::in_memory(&g).unwrap();
        let root = store.state_root().unwrap();
        let who = KeyPair::from_seed(&[99; 32]).address();
        let rich = KeyPair::from_seed(&[3; 32]).address();
        let set = |t: &mut WriteTables<'_>, balance: u64| {
            let tr = t
                .state()
                .set_accounts([(who, Account { balance, nonce: 0 })])?;
            t.state_mut().apply(&tr.diff)?;
            Ok::<_, StorageError>(tr)
        };
        // An aborted write leaves its nodes in the cache; the committed tree is unchanged.
        let aborted: Result<(), StorageError> = store.write(true, |t| {
            set(t, 1)?;
            Err(StorageError::ReadOnly)
        });
        assert!(aborted.is_err());
        assert_eq!(store.state_root().unwrap(), root);
        assert_eq!(store.account(&who).unwrap(), None);
        let proof = store.account_proof(&rich).unwrap();
        assert!(proof.verify(&root, &rich).unwrap().is_some());
        // The same change committed, reverted (its nodes deleted), then made again: every
        // read, through the cache or the table, matches the tree of the current root.
        let tr = store.write(true, |t| set(t, 1)).unwrap();
        let after = store.state_root().unwrap();
        assert_eq!(after, tr.diff.new_root);
        store
            .write(true, |t| {
                t.state_mut().revert(&tr.undo)?;
                Ok::<_, StorageError>(())
            })
            .unwrap();
        assert_eq!(store.state_root().unwrap(), root);
        assert_eq!(store.account(&who).unwrap(), None);
        assert!(
            store
                .account_proof(&who)
                .unwrap()
                .verify(&root, &who)
                .unwrap()
                .is_none()
        );
        store.write(true, |t| set(t, 1).map(drop)).unwrap();
        assert_eq!(store.state_root().unwrap(), after);
        let proof = store.account_proof(&who).unwrap();
        assert_eq!(
            proof.verify(&after, &who).unwrap(),
            Some(Account {
                balance: 1,
                nonce: 0
            })
        );
        assert_eq!(store.stats().unwrap().state_nodes, {
            // Exactly the reachable nodes are stored, whatever the cache holds.
            let fresh = ChainStore::in_memory(&g).unwrap();
            fresh.write(true, |t| set(t, 1).map(drop)).unwrap();
            fresh.stats().unwrap().state_nodes
        });
    }

    #[test]
    fn non_durable_commits_defer_their_nodes_until_a_durable_one() {
        let g = genesis(1);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chain.redb");
        let who = KeyPair::from_seed(&[99; 32]).address();
        let set = |t: &mut WriteTables<'_>, balance: u64| {
            let tr = t
                .state()
                .set_accounts([(who, Account { balance, nonce: 0 })])?;
            t.state_mut().apply(&tr.diff)?;
            Ok::<_, StorageError>(())
        };
        let reachable = |balance: u64| {
            let fresh = ChainStore::in_memory(&g).unwrap();
            fresh.write(true, |t| set(t, balance)).unwrap();
            (
                fresh.state_root().unwrap(),
                fresh.stats().unwrap().state_nodes,
            )
        };
        let store = ChainStore::open(&path, &g).unwrap();
        // Churn: every commit replaces the previous one's leaf and path.
        for balance in 1..=5 {
            store.write(false, |t| set(t, balance)).unwrap();
        }
        let (root, nodes) = reachable(5);
        assert_eq!(store.state_root().unwrap(), root);
        // Reads see the deferred nodes.
        let proof = store.account_proof(&who).unwrap();
        assert_eq!(
            proof.verify(&root, &who).unwrap().map(|a| a.balance),
            Some(5)
        );
        // A durable transaction that aborts drops nothing of them.
        let aborted: Result<(), StorageError> = store.write(true, |t| {
            set(t, 6)?;
            Err(StorageError::ReadOnly)
        });
        assert!(aborted.is_err());
        assert_eq!(store.account(&who).unwrap().map(|a| a.balance), Some(5));
        // A flush writes exactly the reachable nodes (created-then-deleted ones never stay).
        store.flush().unwrap();
        assert_eq!(store.stats().unwrap().state_nodes, nodes);
        // Dropping the store with deferred nodes makes them durable.
        store.write(false, |t| set(t, 7)).unwrap();
        drop(store);
        let (root, nodes) = reachable(7);
        let store = ChainStore::open(&path, &g).unwrap();
        assert_eq!(store.state_root().unwrap(), root);
        assert_eq!(store.stats().unwrap().state_nodes, nodes);
        let proof = store.account_proof(&who).unwrap();
        assert_eq!(
            proof.verify(&root, &who).unwrap().map(|a| a.balance),
            Some(7)
        );
    }

    #[test]
    fn state_view_refuses_writes() {
        let g = genesis(1);
        let store = ChainStore::in_memory(&g).unwrap();
        let mut view = store.state_view().unwrap();
        let diff = StateDiff {
            old_root: view.root(),
            ..StateDiff::default()
        };
        assert!(view.apply(&diff).is_err());
    }
}
