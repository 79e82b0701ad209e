//! The status handshake: both sides send a [`Status`]; a peer on another protocol version,
//! chain or genesis is disconnected with a reason that says which.

use blyan_crypto::Hash;

use crate::message::Status;

/// Why a peer's [`Status`] makes it useless to us. Each variant carries both values so the
/// log line says what differed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StatusMismatch {
    /// The peer speaks another version of the peer protocol.
    #[error("protocol version {theirs}, we speak {ours}")]
    ProtocolVersion {
        /// Ours.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// The peer follows another chain.
    #[error("chain id {theirs}, we follow {ours}")]
    ChainId {
        /// Ours.
        ours: u32,
        /// The peer's.
        theirs: u32,
    },
    /// Same chain id, different genesis block: another network.
    #[error("genesis {theirs}, ours is {ours}")]
    GenesisHash {
        /// Ours.
        ours: Hash,
        /// The peer's.
        theirs: Hash,
    },
    /// The peer claims a finalized height above its own tip: the status is inconsistent.
    #[error("finalized height {finalized} above best height {best}")]
    FinalizedAboveBest {
        /// Claimed finalized height.
        finalized: u64,
        /// Claimed best height.
        best: u64,
    },
}

impl StatusMismatch {
    /// A fixed label for logs and metrics.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::ProtocolVersion { .. } => "protocol_version",
            Self::ChainId { .. } => "chain_id",
            Self::GenesisHash { .. } => "genesis_hash",
            Self::FinalizedAboveBest { .. } => "finalized_above_best",
        }
    }
}

/// Checks the peer's handshake against ours: same protocol version, chain id and genesis
/// hash, and a self-consistent pair of heights. Heights are otherwise not judged here: a
/// peer behind us is still a useful peer to serve and to gossip with.
pub fn check_status(ours: &Status, theirs: &Status) -> Result<(), StatusMismatch> {
    if ours.protocol_version != theirs.protocol_version {
        return Err(StatusMismatch::ProtocolVersion {
            ours: ours.protocol_version,
            theirs: theirs.protocol_version,
        });
    }
    if ours.chain_id != theirs.chain_id {
        return Err(StatusMismatch::ChainId {
            ours: ours.chain_id,
            theirs: theirs.chain_id,
        });
    }
    if ours.genesis_hash != theirs.genesis_hash {
        return Err(StatusMismatch::GenesisHash {
            ours: ours.genesis_hash,
            theirs: theirs.genesis_hash,
        });
    }
    if theirs.finalized_height > theirs.best_height {
        return Err(StatusMismatch::FinalizedAboveBest {
            finalized: theirs.finalized_height,
            best: theirs.best_height,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::PROTOCOL_VERSION;

    fn status() -> Status {
        Status {
            protocol_version: PROTOCOL_VERSION,
            chain_id: 7,
            genesis_hash: Hash::from_bytes([1; 32]),
            best_height: 10,
            best_hash: Hash::from_bytes([2; 32]),
            finalized_height: 0,
        }
    }

    #[test]
    fn each_mismatch_has_its_reason() {
        let ours = status();
        assert_eq!(check_status(&ours, &ours), Ok(()));
        let behind = Status {
            best_height: 0,
            ..status()
        };
        assert_eq!(check_status(&ours, &behind), Ok(()));

        let cases = [
            (
                Status {
                    protocol_version: 9,
                    ..status()
                },
                "protocol_version",
            ),
            (
                Status {
                    chain_id: 8,
                    ..status()
                },
                "chain_id",
            ),
            (
                Status {
                    genesis_hash: Hash::ZERO,
                    ..status()
                },
                "genesis_hash",
            ),
            (
                Status {
                    finalized_height: 11,
                    ..status()
                },
                "finalized_above_best",
            ),
        ];
        for (theirs, label) in cases {
            let error = check_status(&ours, &theirs).err();
            assert_eq!(error.map(|e| e.as_str()), Some(label));
        }
    }
}
