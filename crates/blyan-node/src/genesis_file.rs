//! Genesis documents on disk: JSON files written by `blyan-node init` (or, for the dev
//! chain, on first start) and read at every start.
//!
//! The file is the [`Genesis`] document in JSON: keys and addresses as lowercase hex, the
//! balances as an object keyed by address. A file is written whole or not at all
//! (temporary file, fsync, rename), so a crash never leaves half a genesis behind.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

use blyan_consensus::{ConsensusParams, Genesis, GenesisError};
use blyan_crypto::{Address, PublicKey};

use crate::config::ConsensusConfig;

/// Largest genesis file read: a remote-supplied file must not make the node allocate
/// without bound. 64 MiB holds about a million initial balances.
pub const MAX_GENESIS_FILE_BYTES: u64 = 64 * 1024 * 1024;

/// Balance of the only validator of a dev chain, so a developer can send transactions
/// signed by the node key right away.
pub const DEV_VALIDATOR_BALANCE: u64 = 1_000_000_000_000;

/// Why a genesis file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum GenesisFileError {
    /// The file could not be read or written.
    #[error("cannot {op} genesis file {path}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// The file is larger than [`MAX_GENESIS_FILE_BYTES`].
    #[error("genesis file {path} is {len} bytes, more than the {max} allowed")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        len: u64,
        /// The limit.
        max: u64,
    },
    /// The file is not a genesis document.
    #[error("genesis file {path} is not a valid genesis document: {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error (with line and column).
        reason: String,
    },
    /// The document parses but cannot start a chain.
    #[error("genesis file {path} is unusable")]
    Unusable {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        #[source]
        source: GenesisError,
    },
    /// `write_genesis` refuses to replace a file unless asked to.
    #[error("genesis file {0} already exists (use --force to replace it)")]
    AlreadyExists(PathBuf),
}

/// Reads and checks the genesis document at `path`.
pub fn read_genesis(path: &Path) -> Result<Genesis, GenesisFileError> {
    let io_err = |op| {
        move |source| GenesisFileError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    let len = fs::metadata(path).map_err(io_err("inspect"))?.len();
    if len > MAX_GENESIS_FILE_BYTES {
        return Err(GenesisFileError::TooLarge {
            path: path.to_path_buf(),
            len,
            max: MAX_GENESIS_FILE_BYTES,
        });
    }
    let bytes = fs::read(path).map_err(io_err("read"))?;
    let genesis: Genesis = serde_json::from_slice(&bytes).map_err(|e| GenesisFileError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    genesis
        .block()
        .map_err(|source| GenesisFileError::Unusable {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(genesis)
}

/// Writes `genesis` to `path` atomically. An existing file is replaced only with
/// `overwrite`.
pub fn write_genesis(
    path: &Path,
    genesis: &Genesis,
    overwrite: bool,
) -> Result<(), GenesisFileError> {
    let io_err = |op| {
        move |source| GenesisFileError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    };
    genesis
        .block()
        .map_err(|source| GenesisFileError::Unusable {
            path: path.to_path_buf(),
            source,
        })?;
    if !overwrite && path.exists() {
        return Err(GenesisFileError::AlreadyExists(path.to_path_buf()));
    }
    let mut text = serde_json::to_string_pretty(genesis).map_err(|e| GenesisFileError::Parse {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    text.push('\n');
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(io_err("create the directory of"))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "genesis.json".to_owned());
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let mut file = fs::File::create(&tmp).map_err(io_err("create"))?;
    file.write_all(text.as_bytes()).map_err(io_err("write"))?;
    file.sync_all().map_err(io_err("sync"))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err("rename into"))?;
    if let Ok(dir) = fs::File::open(&dir) {
        // Makes the rename durable; a failure leaves a complete file either way.
        let _ = dir.sync_all();
    }
    Ok(())
}

/// The genesis of a new dev chain: `validator` alone, funded with
/// [`DEV_VALIDATOR_BALANCE`], slot 0 starting at `now_ms`, parameters from `consensus`.
pub fn dev_genesis(consensus: &ConsensusConfig, validator: &PublicKey, now_ms: u64) -> Genesis {
    Genesis {
        chain_id: consensus.chain_id,
        genesis_time_ms: now_ms,
        slot_duration_ms: consensus.slot_duration_ms,
        validators: vec![*validator],
        balances: BTreeMap::from([(validator.address(), DEV_VALIDATOR_BALANCE)]),
        params: consensus.params(),
    }
}

/// What `blyan-node init` puts into a genesis document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenesisSpec {
    /// Chain id.
    pub chain_id: u32,
    /// Start of slot 0, milliseconds since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Slot length, milliseconds.
    pub slot_duration_ms: u64,
    /// The validator set, in slot order.
    pub validators: Vec<PublicKey>,
    /// Initial balances; an address given twice is an error.
    pub balances: Vec<(Address, u64)>,
    /// Consensus parameters.
    pub params: ConsensusParams,
}

/// Why a [`GenesisSpec`] cannot become a genesis document.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisSpecError {
    /// A validator key appears twice (it would own several slots of each round).
    #[error("validator {0} is listed twice")]
    DuplicateValidator(Box<PublicKey>),
    /// An address is given two balances.
    #[error("address {0} is given two balances")]
    DuplicateBalance(Address),
    /// The document is unusable (no validators, zero slot).
    #[error(transparent)]
    Genesis(#[from] GenesisError),
}

impl GenesisSpec {
    /// The checked genesis document.
    pub fn build(&self) -> Result<Genesis, GenesisSpecError> {
        for (i, v) in self.validators.iter().enumerate() {
            if self
                .validators
                .get(..i)
                .is_some_and(|seen| seen.contains(v))
            {
                return Err(GenesisSpecError::DuplicateValidator(Box::new(*v)));
            }
        }
        let mut balances = BTreeMap::new();
        for (address, amount) in &self.balances {
            if balances.insert(*address, *amount).is_some() {
                return Err(GenesisSpecError::DuplicateBalance(*address));
            }
        }
        let genesis = Genesis {
            chain_id: self.chain_id,
            genesis_time_ms: self.genesis_time_ms,
            slot_duration_ms: self.slot_duration_ms,
            validators: self.validators.clone(),
            balances,
            params: self.params.clone(),
        };
        genesis.block()?;
        Ok(genesis)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::KeyPair;

    #[test]
    fn written_genesis_reads_back_identical() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("g/genesis.json");
        let key = KeyPair::from_seed(&[3; 32]);
        let genesis = dev_genesis(&ConsensusConfig::default(), &key.public_key(), 42);
        write_genesis(&path, &genesis, false).unwrap();
        assert_eq!(read_genesis(&path).unwrap(), genesis);
        assert!(matches!(
            write_genesis(&path, &genesis, false),
            Err(GenesisFileError::AlreadyExists(_))
        ));
        write_genesis(&path, &genesis, true).unwrap();
    }

    #[test]
    fn damaged_or_unusable_files_are_typed_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("genesis.json");
        fs::write(&path, b"{ not json").unwrap();
        assert!(matches!(
            read_genesis(&path),
            Err(GenesisFileError::Parse { .. })
        ));
        let key = KeyPair::from_seed(&[3; 32]);
        let mut genesis = dev_genesis(&ConsensusConfig::default(), &key.public_key(), 0);
        genesis.validators.clear();
        fs::write(&path, serde_json::to_vec(&genesis).unwrap()).unwrap();
        assert!(matches!(
            read_genesis(&path),
            Err(GenesisFileError::Unusable { .. })
        ));
        assert!(matches!(
            read_genesis(&dir.path().join("missing.json")),
            Err(GenesisFileError::Io { .. })
        ));
    }

    #[test]
    fn spec_refuses_duplicates() {
        let v = KeyPair::from_seed(&[1; 32]).public_key();
        let spec = GenesisSpec {
            chain_id: 1,
            genesis_time_ms: 0,
            slot_duration_ms: 1_000,
            validators: vec![v, v],
            balances: vec![],
            params: ConsensusParams::default(),
        };
        assert_eq!(
            spec.build().unwrap_err(),
            GenesisSpecError::DuplicateValidator(Box::new(v))
        );
        let spec = GenesisSpec {
            validators: vec![v],
            balances: vec![(v.address(), 1), (v.address(), 2)],
            ..spec
        };
        assert_eq!(
            spec.build().unwrap_err(),
            GenesisSpecError::DuplicateBalance(v.address())
        );
    }
}
