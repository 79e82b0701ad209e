//! Signing domains: what a signature is for, bound into the signed bytes.

use core::fmt;

/// The fixed start of every signed message.
const PREFIX: &[u8] = b"blyan/v1/";

/// What a signature authorizes. Every signed message is
/// `"blyan/v1/" || domain || 0x00 || chain_id (u32 BE) || bytes`, so a signature made for one
/// domain or one chain never verifies for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Domain {
    /// A block producer signing a block hash.
    Block,
    /// An account signing a transaction hash.
    Tx,
    /// A node signing a relayed gossip message.
    Gossip,
    /// A node signing its DHT node record.
    Record,
}

impl Domain {
    /// Every domain, for exhaustive tests.
    pub const ALL: [Domain; 4] = [Domain::Block, Domain::Tx, Domain::Gossip, Domain::Record];

    /// The label bound into signed messages (`block`, `tx`, `gossip`, `record`).
    pub const fn label(self) -> &'static str {
        match self {
            Domain::Block => "block",
            Domain::Tx => "tx",
            Domain::Gossip => "gossip",
            Domain::Record => "record",
        }
    }

    /// The bytes signed for `bytes` in this domain on chain `chain_id`.
    ///
    /// Exposed for external signers and test tooling; [`KeyPair::sign`](crate::KeyPair::sign)
    /// and [`PublicKey::verify`](crate::PublicKey::verify) build it themselves.
    pub fn signing_message(self, chain_id: u32, bytes: &[u8]) -> Vec<u8> {
        let header = self.header(chain_id);
        let mut out = Vec::with_capacity(header.len() + bytes.len());
        for part in header.parts() {
            out.extend_from_slice(part);
        }
        out.extend_from_slice(bytes);
        out
    }

    /// The fixed part of the signed message, before the payload.
    pub(crate) fn header(self, chain_id: u32) -> DomainHeader {
        DomainHeader {
            label: self.label().as_bytes(),
            chain_id: chain_id.to_be_bytes(),
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// `"blyan/v1/" || label || 0x00 || chain_id BE`, kept in pieces so verification can hash it
/// without copying the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DomainHeader {
    label: &'static [u8],
    chain_id: [u8; 4],
}

impl DomainHeader {
    /// The header's pieces in signing order.
    pub(crate) fn parts(&self) -> [&[u8]; 4] {
        [PREFIX, self.label, &[0u8], &self.chain_id]
    }

    /// Total length of the header in bytes.
    pub(crate) fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_layout() {
        let msg = Domain::Tx.signing_message(0x0102_0304, b"payload");
        assert_eq!(msg, b"blyan/v1/tx\x00\x01\x02\x03\x04payload".to_vec());
        let msg = Domain::Record.signing_message(7, b"");
        assert_eq!(msg, b"blyan/v1/record\x00\x00\x00\x00\x07".to_vec());
    }

    #[test]
    fn labels_are_distinct_and_prefix_free() {
        // The 0x00 after the label makes the encoding injective even if one label were a
        // prefix of another; this also checks no label contains a 0x00.
        for a in Domain::ALL {
            assert!(!a.label().as_bytes().contains(&0));
            for b in Domain::ALL {
                if a != b {
                    assert_ne!(a.label(), b.label());
                }
            }
        }
    }
}
