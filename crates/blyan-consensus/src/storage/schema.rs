//! The on-disk layout: table definitions, meta keys, the schema version and the value
//! encodings. Every table is keyed by fixed-size byte arrays or integers so redb's B-trees
//! order them without a custom comparator.

use blyan_crypto::Hash;
use redb::TableDefinition;
use serde::{Deserialize, Serialize};

use crate::state::SmtNode;
use crate::types::Header;

/// Version of this layout. A database written by a newer version is refused
/// ([`crate::StorageError::SchemaTooNew`]) rather than misread.
pub const SCHEMA_VERSION: u32 = 1;

/// Block hash → canonical encoding of the whole [`crate::Block`] (the bytes that travel).
pub(crate) const BLOCKS: TableDefinition<'static, &[u8; 32], &[u8]> =
    TableDefinition::new("blocks");
/// Block hash → canonical encoding of [`BlockRecord`] (header + arrival order): what the
/// block tree is rebuilt from without decoding bodies.
pub(crate) const BLOCK_META: TableDefinition<'static, &[u8; 32], &[u8]> =
    TableDefinition::new("block_meta");
/// Hashes of the stored blocks that are not canonical (live side branches).
pub(crate) const SIDE_BLOCKS: TableDefinition<'static, &[u8; 32], ()> =
    TableDefinition::new("side_blocks");
/// Height → canonical block hash, genesis (0) to the tip.
pub(crate) const CANONICAL: TableDefinition<'static, u64, &[u8; 32]> =
    TableDefinition::new("canonical");
/// Address → `(balance, nonce)`; empty accounts are never stored.
pub(crate) const ACCOUNTS: TableDefinition<'static, &[u8; 20], (u64, u64)> =
    TableDefinition::new("accounts");
/// State tree node hash → encoded [`SmtNode`] (see [`encode_node`]).
pub(crate) const STATE_NODES: TableDefinition<'static, &[u8; 32], &[u8]> =
    TableDefinition::new("state_nodes");
/// Canonical block hash → canonical encoding of its [`crate::UndoData`]; kept only for
/// blocks above the irreversible height (the only ones a reorg can revert).
pub(crate) const UNDO: TableDefinition<'static, &[u8; 32], &[u8]> = TableDefinition::new("undo");
/// Meta key → value (see the `META_*` keys).
pub(crate) const META: TableDefinition<'static, &str, &[u8]> = TableDefinition::new("meta");

/// `u32` big-endian: [`SCHEMA_VERSION`] of the writer.
pub(crate) const META_SCHEMA: &str = "schema_version";
/// 32 bytes: hash of the genesis block (the chain's identity).
pub(crate) const META_GENESIS: &str = "genesis_hash";
/// 32 bytes: hash of the canonical tip.
pub(crate) const META_TIP: &str = "tip";
/// 32 bytes: state root after the tip.
pub(crate) const META_STATE_ROOT: &str = "state_root";
/// `u64` big-endian: arrival number the next stored block gets.
pub(crate) const META_NEXT_ARRIVAL: &str = "next_arrival";

/// What the block tree needs of a stored block: the header and the order in which blocks
/// arrived (so that a restart keeps the first-seen rule between equal-height rivals).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// The block's header.
    pub header: Header,
    /// Arrival number: blocks stored earlier have smaller numbers.
    pub arrival: u64,
}

const NODE_LEN: usize = 65;
const TAG_INTERNAL: u8 = 0;
const TAG_LEAF: u8 = 1;

/// A tree node as 65 bytes: a tag (0 internal, 1 leaf), then two 32-byte hashes
/// (left, right or key, value hash). Fixed size, no codec on the hottest path.
pub(crate) fn encode_node(node: &SmtNode) -> [u8; NODE_LEN] {
    let (tag, a, b) = match node {
        SmtNode::Internal { left, right } => (TAG_INTERNAL, left, right),
        SmtNode::Leaf { key, value } => (TAG_LEAF, key, value),
    };
    let mut out = [0u8; NODE_LEN];
    out[0] = tag;
    out[1..33].copy_from_slice(a.as_bytes());
    out[33..].copy_from_slice(b.as_bytes());
    out
}

/// Inverse of [`encode_node`]; `None` for anything that is not 65 bytes with a known tag.
pub(crate) fn decode_node(bytes: &[u8]) -> Option<SmtNode> {
    let bytes: &[u8; NODE_LEN] = bytes.try_into().ok()?;
    let (tag, rest) = bytes.split_first()?;
    let (a, b) = rest.split_at(32);
    let a = Hash::from_bytes(a.try_into().ok()?);
    let b = Hash::from_bytes(b.try_into().ok()?);
    match *tag {
        TAG_INTERNAL => Some(SmtNode::Internal { left: a, right: b }),
        TAG_LEAF => Some(SmtNode::Leaf { key: a, value: b }),
        _ => None,
    }
}

/// A 32-byte meta value as a hash.
pub(crate) fn decode_hash(bytes: &[u8]) -> Option<Hash> {
    Some(Hash::from_bytes(bytes.try_into().ok()?))
}

/// An 8-byte big-endian meta value.
pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.try_into().ok()?))
}

/// A 4-byte big-endian meta value.
pub(crate) fn decode_u32(bytes: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::sha256;

    #[test]
    fn nodes_round_trip_and_garbage_is_refused() {
        for node in [
            SmtNode::Internal {
                left: sha256(b"l"),
                right: Hash::ZERO,
            },
            SmtNode::Leaf {
                key: sha256(b"k"),
                value: sha256(b"v"),
            },
        ] {
            assert_eq!(decode_node(&encode_node(&node)), Some(node));
        }
        let mut bad = encode_node(&SmtNode::Leaf {
            key: Hash::ZERO,
            value: Hash::ZERO,
        });
        bad[0] = 7;
        assert_eq!(decode_node(&bad), None);
        assert_eq!(decode_node(&bad[..64]), None);
    }
}
