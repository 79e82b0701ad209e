//! The peer protocol's messages: status handshake, sync requests and responses, gossip.
//!
//! Two protocol bytes tag the streams `blyan-wire` opens (the DHT uses 1):
//! [`SYNC_PROTOCOL`] for request/response on bidirectional streams, [`GOSSIP_PROTOCOL`]
//! for one-way gossip on unidirectional streams. Every message is one `blyan-wire`
//! message (`flags | MsgPack`, zstd above 1 KiB when smaller); every list has a cap that
//! decoding checks before it allocates ([`BoundedVec`]). The byte layout is specified in
//! `docs/protocol.md`, section "Peer protocol".

use blyan_consensus::{Block, Header, SignedTransaction};
use blyan_crypto::{Domain, Hash, KeyPair, PeerId, PublicKey, Signature, sha256};
use blyan_wire::{Codec, to_canonical_bytes};
use serde::{Deserialize, Serialize};

use crate::bounded_vec::BoundedVec;
use crate::error::MessageError;

/// Protocol byte of sync request/response streams (status, headers, bodies, blocks,
/// gossip fetches, keep-alive). The DHT's is 1.
pub const SYNC_PROTOCOL: u8 = 2;

/// Protocol byte of one-way gossip streams (envelopes and announcements).
pub const GOSSIP_PROTOCOL: u8 = 3;

/// The version of this protocol; the status handshake refuses any other.
pub const PROTOCOL_VERSION: u32 = 1;

/// Most hashes in a block locator. A locator of a chain of height `h` has about
/// `10 + log2(h)` entries, so 64 covers any chain that can exist.
pub const MAX_LOCATOR_LEN: usize = 64;

/// Most headers in one [`SyncResponse::Headers`]. A signed header is about 230 bytes, so a
/// full batch is about 115 KiB. Bitcoin's `headers` message carries 2,000 (81 bytes each);
/// ours are three times larger.
pub const MAX_HEADERS_PER_RESPONSE: usize = 512;

/// Most hashes in one [`SyncRequest::GetBodies`] and bodies in its answer. With the
/// default 1 MiB block limit a full answer could reach 128 MiB; a server shortens its
/// answer to fit the 16 MiB frame, and the client asks for the rest again.
pub const MAX_BODIES_PER_REQUEST: usize = 128;

/// Most transactions in one block body: the consensus default `max_block_txs`.
pub const MAX_TXS_PER_BODY: usize = 5_000;

/// The handshake both sides send first: who they follow and how far they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// [`PROTOCOL_VERSION`] of the sender.
    pub protocol_version: u32,
    /// The chain the sender follows.
    pub chain_id: u32,
    /// Hash of the sender's genesis block.
    pub genesis_hash: Hash,
    /// Height of the sender's canonical tip.
    pub best_height: u64,
    /// Hash of the sender's canonical tip.
    pub best_hash: Hash,
    /// Height of the sender's highest finalized block (0 while none is).
    pub finalized_height: u64,
}

/// A block header with its producer's signature: what headers-first sync checks before it
/// asks for bodies.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedHeader {
    /// The header.
    pub header: Header,
    /// The producer's signature over the header hash (domain `block`).
    pub signature: Signature,
}

impl SignedHeader {
    /// The header and signature of `block`.
    pub fn of(block: &Block) -> Self {
        Self {
            header: block.header.clone(),
            signature: block.signature,
        }
    }

    /// The block hash.
    pub fn hash(&self) -> Hash {
        self.header.hash()
    }
}

/// The transactions of one block, answered for a hash the client already has the header of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockBody {
    /// The block's transactions, in block order.
    pub txs: BoundedVec<SignedTransaction, MAX_TXS_PER_BODY>,
}

impl BlockBody {
    /// The body of `block` (its transactions; `None` past the cap).
    pub fn of(block: &Block) -> Result<Self, MessageError> {
        Ok(Self {
            txs: BoundedVec::try_new(block.txs.clone(), "block body transactions")?,
        })
    }

    /// The block made of `header` and this body.
    pub fn into_block(self, header: SignedHeader) -> Block {
        Block {
            header: header.header,
            signature: header.signature,
            txs: self.txs.into_inner(),
        }
    }
}

/// A request on a [`SYNC_PROTOCOL`] stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncRequest {
    /// The handshake (also sent later to refresh the peer's view); answered by
    /// [`SyncResponse::Status`].
    Status(Status),
    /// Headers after the first locator hash on the server's canonical chain, in height
    /// order, at most `max` (and at most [`MAX_HEADERS_PER_RESPONSE`]).
    GetHeaders {
        /// Hashes from the client's tip back to genesis, dense then exponentially sparse.
        locator: BoundedVec<Hash, MAX_LOCATOR_LEN>,
        /// How many headers the client will accept.
        max: u32,
    },
    /// The bodies of these blocks, in this order; the answer may stop early.
    GetBodies {
        /// Block hashes.
        hashes: BoundedVec<Hash, MAX_BODIES_PER_REQUEST>,
    },
    /// One whole block by hash (an orphan's missing parent).
    GetBlock {
        /// The block hash.
        hash: Hash,
    },
    /// A gossip envelope by message id (after an [`Announce`]).
    GetGossip {
        /// The message id.
        id: Hash,
    },
    /// Keep-alive; answered by [`SyncResponse::Pong`] with the same nonce.
    Ping {
        /// Echoed back.
        nonce: u64,
    },
}

/// The answer on a [`SYNC_PROTOCOL`] stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SyncResponse {
    /// The server's handshake.
    Status(Status),
    /// Consecutive headers, each the child of the one before; empty when the server has
    /// nothing after the locator.
    Headers(BoundedVec<SignedHeader, MAX_HEADERS_PER_RESPONSE>),
    /// Bodies of a prefix of the requested hashes, in request order.
    Bodies(BoundedVec<BlockBody, MAX_BODIES_PER_REQUEST>),
    /// The requested block, if the server has it.
    Block(Option<Box<Block>>),
    /// The requested gossip envelope, if the server still holds it.
    Gossip(Option<Box<GossipEnvelope>>),
    /// Answer to [`SyncRequest::Ping`].
    Pong {
        /// The ping's nonce.
        nonce: u64,
    },
}

/// What a gossip envelope carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipPayload {
    /// A new block (full push).
    Block(Block),
    /// A new transaction.
    Tx(SignedTransaction),
}

impl GossipPayload {
    /// The block or transaction hash.
    pub fn hash(&self) -> Hash {
        match self {
            Self::Block(block) => block.hash(),
            Self::Tx(tx) => tx.hash(),
        }
    }

    /// The block height; 0 for a transaction.
    pub fn height(&self) -> u64 {
        match self {
            Self::Block(block) => block.height(),
            Self::Tx(_) => 0,
        }
    }

    /// Whether this is a block.
    pub fn is_block(&self) -> bool {
        matches!(self, Self::Block(_))
    }
}

/// The fields of an envelope that its id commits to, borrowed (encoded exactly like the
/// first four fields of [`GossipEnvelope`]).
#[derive(Serialize)]
struct EnvelopeBody<'a> {
    origin: &'a PublicKey,
    nonce: u64,
    timestamp_ms: u64,
    payload: &'a GossipPayload,
}

/// A relayed message: created and signed by its origin, forwarded unchanged by every hop.
///
/// `id = SHA-256(canonical(origin, nonce, timestamp_ms, payload))`; the origin signs `id`
/// in the `gossip` domain for the chain id. The nonce and timestamp feed the replay guard
/// (`blyan-security`): a node accepts each `(origin, nonce)` once, inside a freshness window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GossipEnvelope {
    /// The origin's public key (its peer id is the key's SHA-256).
    pub origin: PublicKey,
    /// The origin's message counter: strictly increasing per origin.
    pub nonce: u64,
    /// The origin's wall-clock time when it created the message, Unix milliseconds.
    pub timestamp_ms: u64,
    /// The block or transaction.
    pub payload: GossipPayload,
    /// The origin's signature over the id (domain `gossip`).
    pub signature: Signature,
}

impl GossipEnvelope {
    /// Creates and signs an envelope as `origin`.
    pub fn sign(
        origin: &KeyPair,
        chain_id: u32,
        nonce: u64,
        timestamp_ms: u64,
        payload: GossipPayload,
    ) -> Result<Self, MessageError> {
        let public = origin.public_key();
        let id = envelope_id(&public, nonce, timestamp_ms, &payload)?;
        Ok(Self {
            origin: public,
            nonce,
            timestamp_ms,
            payload,
            signature: origin.sign(Domain::Gossip, chain_id, id.as_bytes()),
        })
    }

    /// The message id.
    pub fn id(&self) -> Result<Hash, MessageError> {
        envelope_id(&self.origin, self.nonce, self.timestamp_ms, &self.payload)
    }

    /// The origin's peer id.
    pub fn origin_peer(&self) -> PeerId {
        PeerId::from_public_key(&self.origin)
    }

    /// Computes the id and checks the origin's signature over it; returns the id.
    pub fn verify(&self, chain_id: u32) -> Result<Hash, MessageError> {
        let id = self.id()?;
        self.origin
            .verify(Domain::Gossip, chain_id, id.as_bytes(), &self.signature)
            .map_err(|source| MessageError::BadSignature { id, source })?;
        Ok(id)
    }
}

fn envelope_id(
    origin: &PublicKey,
    nonce: u64,
    timestamp_ms: u64,
    payload: &GossipPayload,
) -> Result<Hash, MessageError> {
    let body = EnvelopeBody {
        origin,
        nonce,
        timestamp_ms,
        payload,
    };
    to_canonical_bytes(&body)
        .map(|bytes| sha256(&bytes))
        .map_err(MessageError::Encode)
}

/// "I have message `id`": sent instead of the full envelope to most peers; a peer that
/// lacks it asks with [`SyncRequest::GetGossip`]. Authenticated by the connection, not
/// signed: it only makes the receiver ask, and a false one costs the liar a penalty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announce {
    /// The envelope's message id.
    pub id: Hash,
    /// The block or transaction hash inside.
    pub hash: Hash,
    /// The block height (0 for a transaction).
    pub height: u64,
    /// Whether the payload is a block.
    pub is_block: bool,
}

/// A message on a [`GOSSIP_PROTOCOL`] stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum GossipMessage {
    /// Full push of an envelope.
    Envelope(Box<GossipEnvelope>),
    /// Announcement of an envelope by id.
    Announce(Announce),
}

/// Encoding and decoding with the `blyan-wire` message codec and its default limits.
pub trait WireMessage: Serialize + for<'de> Deserialize<'de> + Sized {
    /// The message as `blyan-wire` message bytes (`flags | payload`).
    fn encode(&self) -> Result<Vec<u8>, MessageError> {
        Codec::DEFAULT
            .serialize(self)
            .map(|bytes| bytes.to_vec())
            .map_err(MessageError::Encode)
    }

    /// Decodes message bytes; every list's cap is checked before it is allocated.
    fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        Codec::DEFAULT
            .deserialize(bytes)
            .map_err(MessageError::Decode)
    }
}

impl WireMessage for SyncRequest {}
impl WireMessage for SyncResponse {}
impl WireMessage for GossipMessage {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn tx(key: &KeyPair, nonce: u64) -> SignedTransaction {
        blyan_consensus::Transaction {
            chain_id: 1,
            from: key.public_key(),
            to: key.address(),
            amount: 1,
            fee: 1,
            nonce,
            data: vec![7; 3],
        }
        .sign(key)
    }

    #[test]
    fn envelopes_verify_only_on_their_chain_and_unchanged() -> Result<(), MessageError> {
        let key = KeyPair::from_seed(&[3; 32]);
        let envelope = GossipEnvelope::sign(&key, 1, 5, 1_000, GossipPayload::Tx(tx(&key, 0)))?;
        let id = envelope.verify(1)?;
        assert_eq!(id, envelope.id()?);
        assert!(matches!(
            envelope.verify(2),
            Err(MessageError::BadSignature { .. })
        ));
        let mut changed = envelope.clone();
        changed.nonce += 1;
        assert!(changed.verify(1).is_err());
        assert_eq!(envelope.origin_peer(), key.peer_id());
        Ok(())
    }

    #[test]
    fn messages_round_trip() -> Result<(), MessageError> {
        let key = KeyPair::from_seed(&[4; 32]);
        let envelope = GossipEnvelope::sign(&key, 1, 1, 2, GossipPayload::Tx(tx(&key, 3)))?;
        let gossip = GossipMessage::Envelope(Box::new(envelope.clone()));
        assert_eq!(GossipMessage::decode(&gossip.encode()?)?, gossip);
        let request = SyncRequest::GetHeaders {
            locator: BoundedVec::try_new(vec![Hash::ZERO; 3], "locator")?,
            max: 10,
        };
        assert_eq!(SyncRequest::decode(&request.encode()?)?, request);
        let response = SyncResponse::Gossip(Some(Box::new(envelope)));
        assert_eq!(SyncResponse::decode(&response.encode()?)?, response);
        Ok(())
    }

    /// The test vectors of `docs/protocol.md`, "Peer protocol".
    #[test]
    fn encodings_match_the_spec_vectors() -> Result<(), MessageError> {
        let ping = SyncRequest::Ping { nonce: 7 };
        assert_eq!(
            ping.encode()?,
            [0x00, 0x81, 0xa4, b'P', b'i', b'n', b'g', 0x91, 0x07]
        );
        let none = SyncResponse::Block(None);
        assert_eq!(
            none.encode()?,
            [0x00, 0x81, 0xa5, b'B', b'l', b'o', b'c', b'k', 0xc0]
        );
        let get = SyncRequest::GetBodies {
            hashes: BoundedVec::try_new(vec![Hash::from_bytes([0xab; 32])], "hashes")?,
        };
        let mut expected = vec![0x00, 0x81, 0xa9];
        expected.extend_from_slice(b"GetBodies");
        expected.extend_from_slice(&[0x91, 0x91, 0xc4, 0x20]);
        expected.extend_from_slice(&[0xab; 32]);
        assert_eq!(get.encode()?, expected);
        Ok(())
    }

    #[test]
    fn an_oversized_locator_is_a_decode_error() -> Result<(), MessageError> {
        #[derive(Serialize)]
        enum Raw {
            GetHeaders { locator: Vec<Hash>, max: u32 },
        }
        let raw = Raw::GetHeaders {
            locator: vec![Hash::ZERO; MAX_LOCATOR_LEN + 1],
            max: 1,
        };
        let bytes = Codec::DEFAULT
            .serialize(&raw)
            .map_err(MessageError::Encode)?;
        assert!(matches!(
            SyncRequest::decode(&bytes),
            Err(MessageError::Decode(_))
        ));
        assert!(SyncRequest::decode(&[0, 0xc1]).is_err());
        Ok(())
    }

    fn sample_messages() -> Vec<Vec<u8>> {
        let key = KeyPair::from_seed(&[6; 32]);
        let mut out = Vec::new();
        if let Ok(envelope) = GossipEnvelope::sign(&key, 1, 1, 2, GossipPayload::Tx(tx(&key, 1))) {
            out.extend(GossipMessage::Envelope(Box::new(envelope)).encode().ok());
        }
        if let Ok(locator) = BoundedVec::try_new(vec![Hash::ZERO; 4], "locator") {
            out.extend(SyncRequest::GetHeaders { locator, max: 9 }.encode().ok());
        }
        out.extend(SyncResponse::Pong { nonce: 3 }.encode().ok());
        out
    }

    proptest! {
        /// What the fuzz target checks, in miniature: arbitrary and mutated bytes never
        /// panic, and whatever decodes re-encodes to something that decodes the same.
        #[test]
        fn decoders_never_panic(
            noise in proptest::collection::vec(any::<u8>(), 0..256),
            pick in 0usize..3,
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        ) {
            let mut mutated = sample_messages().get(pick).cloned().unwrap_or_default();
            for (at, value) in flips {
                if !mutated.is_empty() {
                    let i = at % mutated.len();
                    mutated[i] ^= value;
                }
            }
            for bytes in [noise, mutated] {
                if let Ok(m) = SyncRequest::decode(&bytes) {
                    prop_assert_eq!(SyncRequest::decode(&m.encode()?)?, m);
                }
                if let Ok(m) = SyncResponse::decode(&bytes) {
                    prop_assert_eq!(SyncResponse::decode(&m.encode()?)?, m);
                }
                if let Ok(m) = GossipMessage::decode(&bytes) {
                    if let GossipMessage::Envelope(e) = &m {
                        let _ = e.verify(1);
                    }
                    prop_assert_eq!(GossipMessage::decode(&m.encode()?)?, m);
                }
            }
        }
    }
}
