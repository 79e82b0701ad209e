//! Signed node records: a node's own, self-certifying statement of where it can be reached.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use blyan_crypto::{Domain, KeyPair, PeerId, PublicKey, Signature, SignatureError};
use blyan_wire::{CodecError, from_canonical_bytes_exact, to_canonical_bytes};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use crate::node::MAX_ADDRS;
use crate::node::{NodeInfo, NodeInfoError};

/// Largest encoded record accepted, checked before decoding. A record with [`MAX_ADDRS`](crate::MAX_ADDRS)
/// IPv6 addresses takes about 250 bytes; 512 leaves room and keeps records cheap to relay.
pub const MAX_RECORD_LEN: usize = 512;

/// A node's signed statement `{peer_id, public_key, addrs, seq}`, signed in the
/// [`Domain::Record`] domain for one chain id.
///
/// A value of this type has been verified: it is built by [`NodeRecord::new`] (which signs)
/// or [`NodeRecord::decode`] (which checks size, address limits, that the peer id is the
/// SHA-256 of the public key, and the signature). A higher `seq` from the same peer
/// supersedes a lower one, so a node announces a new address by bumping it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRecord {
    body: RecordBody,
    signature: Signature,
}

/// What is signed: the canonical encoding of this struct.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct RecordBody {
    peer_id: PeerId,
    public_key: PublicKey,
    addrs: Vec<WireAddr>,
    seq: u64,
}

/// A socket address in a fixed binary form: 4 or 16 IP bytes and a port. Text forms of
/// addresses vary in length and spelling; this one has exactly one encoding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct WireAddr {
    #[serde(with = "serde_bytes")]
    ip: Vec<u8>,
    port: u16,
}

#[derive(Serialize, Deserialize)]
struct SignedRecord {
    body: RecordBody,
    signature: Signature,
}

/// Why a node record was refused.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// The encoded record is longer than [`MAX_RECORD_LEN`].
    #[error("record of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The bytes are not one canonical record.
    #[error("malformed record: {0}")]
    Malformed(#[source] CodecError),
    /// Encoding failed (only with an address list the codec cannot write).
    #[error("record could not be encoded: {0}")]
    Encode(#[source] CodecError),
    /// An address whose IP is neither 4 nor 16 bytes.
    #[error("address with an IP of {0} bytes")]
    BadIpLength(usize),
    /// The address list is empty or too long.
    #[error(transparent)]
    Addresses(#[from] NodeInfoError),
    /// Duplicate addresses in a record (a record is canonical: each address once).
    #[error("the same address is listed twice")]
    DuplicateAddress,
    /// The peer id is not the SHA-256 of the public key.
    #[error("peer id {claimed} does not belong to the record's public key ({derived})")]
    PeerIdMismatch {
        /// The id the record claims.
        claimed: PeerId,
        /// The id of the public key.
        derived: PeerId,
    },
    /// The signature does not verify.
    #[error("bad record signature: {0}")]
    BadSignature(#[source] SignatureError),
}

impl NodeRecord {
    /// Signs a record for `key` on chain `chain_id`: reachable at `addrs` (primary first,
    /// 1 to [`MAX_ADDRS`](crate::MAX_ADDRS) distinct), with sequence number `seq`.
    pub fn new(
        key: &KeyPair,
        chain_id: u32,
        addrs: &[SocketAddr],
        seq: u64,
    ) -> Result<Self, RecordError> {
        let public_key = key.public_key();
        let peer_id = public_key.peer_id();
        // Validate the list exactly as a receiver will.
        let info = NodeInfo::new(peer_id, addrs.iter().copied())?;
        if info.addrs().len() != addrs.len() {
            return Err(RecordError::DuplicateAddress);
        }
        let body = RecordBody {
            peer_id,
            public_key,
            addrs: addrs.iter().map(|a| WireAddr::from(*a)).collect(),
            seq,
        };
        let bytes = to_canonical_bytes(&body).map_err(RecordError::Encode)?;
        let signature = key.sign(Domain::Record, chain_id, &bytes);
        Ok(Self { body, signature })
    }

    /// Decodes and verifies a record received for chain `chain_id`.
    pub fn decode(bytes: &[u8], chain_id: u32) -> Result<Self, RecordError> {
        if bytes.len() > MAX_RECORD_LEN {
            return Err(RecordError::TooLarge {
                len: bytes.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let signed: SignedRecord =
            from_canonical_bytes_exact(bytes).map_err(RecordError::Malformed)?;
        let body = signed.body;
        let addrs = body
            .addrs
            .iter()
            .map(WireAddr::to_socket_addr)
            .collect::<Result<Vec<_>, _>>()?;
        let info = NodeInfo::new(body.peer_id, addrs.iter().copied())?;
        if info.addrs().len() != addrs.len() {
            return Err(RecordError::DuplicateAddress);
        }
        let derived = body.public_key.peer_id();
        if derived != body.peer_id {
            return Err(RecordError::PeerIdMismatch {
                claimed: body.peer_id,
                derived,
            });
        }
        let body_bytes = to_canonical_bytes(&body).map_err(RecordError::Encode)?;
        body.public_key
            .verify(Domain::Record, chain_id, &body_bytes, &signed.signature)
            .map_err(RecordError::BadSignature)?;
        Ok(Self {
            body,
            signature: signed.signature,
        })
    }

    /// The canonical encoding (at most [`MAX_RECORD_LEN`] bytes for any record `new` builds).
    pub fn encode(&self) -> Result<Vec<u8>, RecordError> {
        let signed = SignedRecord {
            body: self.body.clone(),
            signature: self.signature,
        };
        to_canonical_bytes(&signed).map_err(RecordError::Encode)
    }

    /// The node's id.
    pub fn peer_id(&self) -> PeerId {
        self.body.peer_id
    }

    /// The node's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.body.public_key
    }

    /// The sequence number.
    pub fn seq(&self) -> u64 {
        self.body.seq
    }

    /// The signature over the record.
    pub fn signature(&self) -> &Signature {
        &self.signature
    }

    /// The addresses, primary first.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.body
            .addrs
            .iter()
            .filter_map(|a| a.to_socket_addr().ok())
            .collect()
    }

    /// The routing information the record vouches for.
    pub fn node_info(&self) -> Result<NodeInfo, NodeInfoError> {
        NodeInfo::new(self.body.peer_id, self.addrs())
    }

    /// Whether `self` should replace `other`: the same peer with a higher sequence number.
    pub fn supersedes(&self, other: &NodeRecord) -> bool {
        self.body.peer_id == other.body.peer_id && self.body.seq > other.body.seq
    }
}

impl From<SocketAddr> for WireAddr {
    fn from(addr: SocketAddr) -> Self {
        let ip = match addr.ip() {
            IpAddr::V4(v4) => v4.octets().to_vec(),
            IpAddr::V6(v6) => v6.octets().to_vec(),
        };
        Self {
            ip,
            port: addr.port(),
        }
    }
}

impl WireAddr {
    fn to_socket_addr(&self) -> Result<SocketAddr, RecordError> {
        let ip = if let Ok(v4) = <[u8; 4]>::try_from(self.ip.as_slice()) {
            IpAddr::V4(Ipv4Addr::from(v4))
        } else if let Ok(v6) = <[u8; 16]>::try_from(self.ip.as_slice()) {
            IpAddr::V6(Ipv6Addr::from(v6))
        } else {
            return Err(RecordError::BadIpLength(self.ip.len()));
        };
        Ok(SocketAddr::new(ip, self.port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(seed: u8) -> KeyPair {
        KeyPair::from_seed(&[seed; 32])
    }

    fn v6(i: u16) -> SocketAddr {
        SocketAddr::new(
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, i, 0, 0, 0, 0, 1)),
            4000u16.wrapping_add(i),
        )
    }

    fn encode_signed(body: RecordBody, signature: Signature) -> Vec<u8> {
        to_canonical_bytes(&SignedRecord { body, signature }).unwrap()
    }

    #[test]
    fn round_trip_and_size_bound() {
        let addrs: Vec<_> = (0..MAX_ADDRS as u16).map(v6).collect();
        let record = NodeRecord::new(&key(1), 7, &addrs, 3).unwrap();
        let bytes = record.encode().unwrap();
        assert!(bytes.len() <= MAX_RECORD_LEN, "{} bytes", bytes.len());
        assert!(
            bytes.len() < 260,
            "binary form expected, got {} bytes",
            bytes.len()
        );
        let decoded = NodeRecord::decode(&bytes, 7).ok();
        assert_eq!(decoded.as_ref(), Some(&record));
        assert_eq!(decoded.map(|r| r.addrs()), Some(addrs));
        assert_eq!(record.peer_id(), key(1).peer_id());
        assert_eq!(record.seq(), 3);
    }

    #[test]
    fn other_chain_or_tampering_is_refused() {
        let record = NodeRecord::new(&key(1), 7, &[v6(1)], 1).unwrap();
        let bytes = record.encode().unwrap();
        assert!(matches!(
            NodeRecord::decode(&bytes, 8),
            Err(RecordError::BadSignature(_))
        ));
        let mut body = record.body.clone();
        body.seq = 2;
        assert!(matches!(
            NodeRecord::decode(&encode_signed(body, record.signature), 7),
            Err(RecordError::BadSignature(_))
        ));
        let mut body = record.body.clone();
        body.peer_id = key(2).peer_id();
        assert!(matches!(
            NodeRecord::decode(&encode_signed(body, record.signature), 7),
            Err(RecordError::PeerIdMismatch { .. })
        ));
        let mut body = record.body.clone();
        body.addrs[0].ip = vec![1, 2, 3];
        assert!(matches!(
            NodeRecord::decode(&encode_signed(body, record.signature), 7),
            Err(RecordError::BadIpLength(3))
        ));
    }

    #[test]
    fn address_limits() {
        let too_many: Vec<_> = (0..=MAX_ADDRS as u16).map(v6).collect();
        assert!(matches!(
            NodeRecord::new(&key(1), 7, &too_many, 1),
            Err(RecordError::Addresses(
                NodeInfoError::TooManyAddresses { .. }
            ))
        ));
        assert!(matches!(
            NodeRecord::new(&key(1), 7, &[], 1),
            Err(RecordError::Addresses(NodeInfoError::NoAddress(_)))
        ));
        assert!(matches!(
            NodeRecord::new(&key(1), 7, &[v6(1), v6(1)], 1),
            Err(RecordError::DuplicateAddress)
        ));
        // A forged record with too many addresses is refused before its signature is checked.
        let record = NodeRecord::new(&key(1), 7, &[v6(1)], 1).unwrap();
        let mut body = record.body.clone();
        body.addrs = too_many.iter().map(|a| WireAddr::from(*a)).collect();
        assert!(matches!(
            NodeRecord::decode(&encode_signed(body, record.signature), 7),
            Err(RecordError::Addresses(_))
        ));
    }

    #[test]
    fn oversized_and_garbage_input_are_errors() {
        assert!(matches!(
            NodeRecord::decode(&vec![0x90; MAX_RECORD_LEN + 1], 7),
            Err(RecordError::TooLarge { .. })
        ));
        for bytes in [
            &b""[..],
            &[0xc1],
            &[0x92, 0x01],
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
        ] {
            assert!(matches!(
                NodeRecord::decode(bytes, 7),
                Err(RecordError::Malformed(_))
            ));
        }
    }

    #[test]
    fn higher_seq_supersedes() {
        let old = NodeRecord::new(&key(1), 7, &[v6(1)], 1).unwrap();
        let new = NodeRecord::new(&key(1), 7, &[v6(2)], 2).unwrap();
        let other = NodeRecord::new(&key(2), 7, &[v6(2)], 9).unwrap();
        assert!(new.supersedes(&old));
        assert!(!old.supersedes(&new));
        assert!(!other.supersedes(&old));
        assert_eq!(new.node_info().ok().map(|n| n.primary_addr()), Some(v6(2)));
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_verify(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600)) {
            proptest::prop_assert!(NodeRecord::decode(&bytes, 7).is_err());
        }

        #[test]
        fn any_valid_record_round_trips(
            seed in proptest::prelude::any::<u8>(),
            seq in proptest::prelude::any::<u64>(),
            ports in proptest::collection::btree_set(proptest::prelude::any::<u16>(), 1..=MAX_ADDRS),
        ) {
            let addrs: Vec<SocketAddr> = ports
                .iter()
                .enumerate()
                .map(|(i, p)| if i % 2 == 0 { v6(*p) } else { SocketAddr::from(([192, 0, 2, 1], *p)) })
                .collect();
            let record = NodeRecord::new(&key(seed), 7, &addrs, seq).unwrap();
            let bytes = record.encode().unwrap();
            proptest::prop_assert!(bytes.len() <= MAX_RECORD_LEN);
            proptest::prop_assert_eq!(NodeRecord::decode(&bytes, 7).unwrap(), record);
        }
    }
}
