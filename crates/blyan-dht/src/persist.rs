//! Saving the routing table across restarts: the signed records of its nodes in one file,
//! written atomically, read with a size bound and a checksum.
//!
//! Identity is not saved here: the driver keeps the node key in a
//! [`blyan_crypto::KeyStore`] (encrypted, its own atomic file), so the node comes back with
//! the same [`PeerId`](blyan_crypto::PeerId) and the saved table stays meaningful.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use blyan_crypto::sha256;
use blyan_wire::{CodecError, from_canonical_bytes, to_canonical_bytes};
use serde::{Deserialize, Serialize};

use crate::bounded::{BoundedBytes, BoundedVec};
use crate::node::NodeInfo;
use crate::node_record::MAX_RECORD_LEN;
use crate::record_cache::RecordCache;

/// Most nodes a table file holds: 256 buckets of k = 20.
pub const MAX_SAVED_NODES: usize = 256 * 20;

/// The file starts with these 8 bytes: the format and its version.
const MAGIC: &[u8; 8] = b"BLYDHT\x00\x01";

/// SHA-256 of the payload, at the end of the file.
const CHECKSUM_LEN: usize = 32;

/// Largest table file read: every node with a maximal record, plus framing.
pub const MAX_TABLE_FILE_LEN: usize =
    MAGIC.len() + 16 + MAX_SAVED_NODES * (MAX_RECORD_LEN + 3) + CHECKSUM_LEN;

#[derive(Serialize, Deserialize)]
struct TableFile {
    records: BoundedVec<BoundedBytes<MAX_RECORD_LEN>, MAX_SAVED_NODES>,
}

/// Why a table file could not be written or read. A file that fails to load is left as it
/// is: nothing here deletes or overwrites it (see [`quarantine`]).
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Reading, writing, syncing or renaming failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: io::Error,
    },
    /// The file is longer than [`MAX_TABLE_FILE_LEN`]; it was not read.
    #[error("table file of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its length.
        len: u64,
        /// The limit.
        max: usize,
    },
    /// The file does not start with the table file magic (another file, or another
    /// version).
    #[error("not a blyan DHT table file (bad magic)")]
    BadMagic,
    /// The file is shorter than its header and checksum.
    #[error("table file truncated at {len} bytes")]
    Truncated {
        /// Its length.
        len: usize,
    },
    /// The checksum does not match: the file was damaged.
    #[error("table file checksum mismatch")]
    ChecksumMismatch,
    /// The payload does not decode.
    #[error("malformed table file: {0}")]
    Malformed(#[source] CodecError),
    /// More records, or a longer record, than the format allows.
    #[error("table file {field} of {len} exceeds the limit of {max}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// What [`load_table`] read: nodes to re-validate before they enter a table.
#[derive(Clone, Debug, Default)]
pub struct LoadedTable {
    /// Nodes whose records verified, in file order.
    pub nodes: Vec<NodeInfo>,
    /// Records that did not verify (another chain id, say) and were skipped.
    pub invalid: usize,
}

fn io_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> PersistError + 'a {
    move |source| PersistError::Io {
        op,
        path: path.to_path_buf(),
        source,
    }
}

/// Writes the signed records of `nodes` to `path` atomically: a temporary file in the same
/// directory, fsync, rename over `path`, fsync of the directory. A crash leaves either the
/// old file or the new one. Nodes without a record (configured seeds) and nodes past
/// [`MAX_SAVED_NODES`] are left out. Returns how many were written.
pub fn save_table<'a>(
    path: &Path,
    nodes: impl IntoIterator<Item = &'a NodeInfo>,
) -> Result<usize, PersistError> {
    let records: Vec<BoundedBytes<MAX_RECORD_LEN>> = nodes
        .into_iter()
        .filter_map(|n| n.record())
        .filter_map(|r| BoundedBytes::new(r.to_vec()))
        .take(MAX_SAVED_NODES)
        .collect();
    let count = records.len();
    let records = BoundedVec::new(records).ok_or(PersistError::FieldTooLong {
        field: "records",
        len: count,
        max: MAX_SAVED_NODES,
    })?;
    let payload = to_canonical_bytes(&TableFile { records }).map_err(PersistError::Malformed)?;
    let mut bytes = Vec::with_capacity(MAGIC.len() + payload.len() + CHECKSUM_LEN);
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&payload);
    bytes.extend_from_slice(sha256(&payload).as_bytes());

    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut tmp_name = path.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = dir.join(tmp_name);
    {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(io_err("create", &tmp))?;
        file.write_all(&bytes).map_err(io_err("write", &tmp))?;
        file.sync_all().map_err(io_err("fsync", &tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_err("rename", path))?;
    // The rename is durable once the directory entry is.
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", &dir))?;
    Ok(count)
}

/// Reads a table file written by [`save_table`] and verifies its records for chain
/// `chain_id`. `Ok(None)` if there is no file (a first start). The file is never modified.
pub fn load_table(path: &Path, chain_id: u32) -> Result<Option<LoadedTable>, PersistError> {
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("open", path)(e)),
    };
    let len = file.metadata().map_err(io_err("stat", path))?.len();
    if len > MAX_TABLE_FILE_LEN as u64 {
        return Err(PersistError::TooLarge {
            len,
            max: MAX_TABLE_FILE_LEN,
        });
    }
    // Bounded even if the file grows between stat and read.
    let mut bytes = Vec::new();
    file.take(MAX_TABLE_FILE_LEN as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err("read", path))?;
    if bytes.len() > MAX_TABLE_FILE_LEN {
        return Err(PersistError::TooLarge {
            len: bytes.len() as u64,
            max: MAX_TABLE_FILE_LEN,
        });
    }
    decode_table(&bytes, chain_id).map(Some)
}

/// Decodes the bytes of a table file (see [`load_table`]).
pub fn decode_table(bytes: &[u8], chain_id: u32) -> Result<LoadedTable, PersistError> {
    let Some(rest) = bytes.strip_prefix(MAGIC.as_slice()) else {
        return if bytes.len() < MAGIC.len() && MAGIC.starts_with(bytes) {
            Err(PersistError::Truncated { len: bytes.len() })
        } else {
            Err(PersistError::BadMagic)
        };
    };
    let Some(split) = rest.len().checked_sub(CHECKSUM_LEN) else {
        return Err(PersistError::Truncated { len: bytes.len() });
    };
    let (payload, checksum) = rest.split_at(split);
    if sha256(payload).as_bytes().as_slice() != checksum {
        return Err(PersistError::ChecksumMismatch);
    }
    let file: TableFile = from_canonical_bytes(payload).map_err(PersistError::Malformed)?;
    let records = file
        .records
        .into_checked()
        .map_err(|len| PersistError::FieldTooLong {
            field: "records",
            len,
            max: MAX_SAVED_NODES,
        })?;
    let mut cache = RecordCache::new(chain_id, 0);
    let mut loaded = LoadedTable::default();
    for record in records {
        let verified = record
            .into_checked()
            .ok()
            .and_then(|bytes| cache.verify(&bytes).ok());
        match verified {
            Some(node) => loaded.nodes.push(node),
            None => loaded.invalid += 1,
        }
    }
    Ok(loaded)
}

/// Moves a table file that failed to load aside (to `<name>.corrupt`, replacing an older
/// one) so that the next save does not overwrite the evidence. Returns the new path.
pub fn quarantine(path: &Path) -> Result<PathBuf, PersistError> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".corrupt");
    let target = path.with_file_name(name);
    fs::rename(path, &target).map_err(io_err("rename", path))?;
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_record::NodeRecord;
    use blyan_crypto::KeyPair;
    use std::net::SocketAddr;

    fn nodes(n: u8, chain: u32) -> Vec<NodeInfo> {
        (1..=n)
            .map(|i| {
                let key = KeyPair::from_seed(&[i; 32]);
                let addr = SocketAddr::from(([10, 0, i, 1], 4000));
                let bytes = NodeRecord::new(&key, chain, &[addr], 1)
                    .and_then(|r| r.encode())
                    .unwrap();
                RecordCache::new(chain, 0).verify(&bytes).unwrap()
            })
            .collect()
    }

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.bin");
        assert!(load_table(&path, 1).unwrap().is_none());
        let saved = nodes(5, 1);
        let bare = NodeInfo::new(
            blyan_crypto::PeerId::from_bytes([9; 32]),
            [SocketAddr::from(([1, 1, 1, 1], 1))],
        )
        .unwrap();
        let all: Vec<&NodeInfo> = saved.iter().chain([&bare]).collect();
        assert_eq!(save_table(&path, all).unwrap(), 5);
        let loaded = load_table(&path, 1).unwrap().unwrap();
        assert_eq!(loaded.nodes, saved);
        assert_eq!(loaded.invalid, 0);
        assert!(!dir.path().join("table.bin.tmp").exists());
        // Records of another chain do not verify and are skipped, not fatal.
        let other = load_table(&path, 2).unwrap().unwrap();
        assert_eq!((other.nodes.len(), other.invalid), (0, 5));
    }

    #[test]
    fn damage_is_a_typed_error_and_the_file_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.bin");
        save_table(&path, &nodes(3, 1)).unwrap();
        let good = fs::read(&path).unwrap();

        let mut flipped = good.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 1;
        fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            load_table(&path, 1),
            Err(PersistError::ChecksumMismatch)
        ));
        assert_eq!(
            fs::read(&path).unwrap(),
            flipped,
            "a failed load never touches the file"
        );

        for cut in [0, 3, 8, 20, good.len() - 1] {
            let result = decode_table(&good[..cut], 1);
            assert!(
                matches!(
                    result,
                    Err(PersistError::Truncated { .. } | PersistError::ChecksumMismatch)
                ),
                "cut at {cut}: {result:?}"
            );
        }
        assert!(matches!(
            decode_table(b"not a table file at all, really", 1),
            Err(PersistError::BadMagic)
        ));
        // A valid checksum over garbage is still refused by the decoder.
        let mut forged = MAGIC.to_vec();
        forged.extend_from_slice(&[0xc1]);
        forged.extend_from_slice(sha256(&[0xc1]).as_bytes());
        assert!(matches!(
            decode_table(&forged, 1),
            Err(PersistError::Malformed(_))
        ));

        let moved = quarantine(&path).unwrap();
        assert!(!path.exists());
        assert_eq!(fs::read(moved).unwrap(), flipped);
    }

    #[test]
    fn oversized_files_are_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("table.bin");
        let file = File::create(&path).unwrap();
        file.set_len(MAX_TABLE_FILE_LEN as u64 + 1).unwrap();
        assert!(matches!(
            load_table(&path, 1),
            Err(PersistError::TooLarge { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)) {
            let mut framed = MAGIC.to_vec();
            framed.extend_from_slice(&bytes);
            let _ = decode_table(&bytes, 1);
            let _ = decode_table(&framed, 1);
        }
    }
}
