//! The DHT's messages: PING, FIND_NODE, FIND_VALUE and STORE requests and their responses,
//! as they travel (blyan-wire messages on protocol [`PROTOCOL_ID`]) and as the core sees
//! them once verified.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blyan_crypto::PeerId;
use blyan_wire::{Codec, CodecError, Compression, Limits};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_bytes::ByteArray;

use crate::bounded::{BoundedBytes, BoundedVec};
use crate::distance::Key;
use crate::node::{MAX_ADDRS, NodeInfo};
use crate::node_record::{MAX_RECORD_LEN, RecordError};
use crate::record_cache::RecordCache;

/// The transport's protocol byte for DHT streams.
pub const PROTOCOL_ID: u8 = 1;

/// Most nodes in one answer: 32, room for the 30 a node answers with (k = 20 plus room for
/// entries it does not know are dead yet).
pub const MAX_NODES_PER_RESPONSE: usize = 32;

/// Most values in one FIND_VALUE answer: one per publisher, as many as a key may hold (16).
pub const MAX_VALUES_PER_RESPONSE: usize = 16;

/// Largest value a STORE may carry (1 KiB, the record store's default limit).
pub const MAX_VALUE_LEN: usize = 1024;

/// Largest DHT message, checked before anything is decoded. The largest valid one, a
/// FIND_VALUE answer with 16 full values and 32 full records, is under 34 KiB.
pub const MAX_MESSAGE_LEN: usize = 64 * 1024;

/// Deepest nesting a DHT message has (response, body, list, value) with room to spare.
const MAX_DEPTH: usize = 8;

/// The codec for DHT messages: [`MAX_MESSAGE_LEN`], shallow nesting, no compression
/// (answers are mostly keys and signatures, which do not compress).
pub fn dht_codec() -> Codec {
    Codec::new(
        Limits {
            max_frame_len: MAX_MESSAGE_LEN,
            max_decompressed_len: MAX_MESSAGE_LEN,
            max_depth: MAX_DEPTH,
        },
        Compression::Disabled,
    )
}

/// A request one DHT node sends another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DhtRequest {
    /// Are you alive? Answered with [`Reply::Pong`].
    Ping,
    /// The k nodes you know closest to `target`. Answered with [`Reply::Nodes`].
    FindNode {
        /// The key looked up.
        target: Key,
    },
    /// The values you hold under `key`, and the nodes you know closest to it. Answered with
    /// [`Reply::Value`].
    FindValue {
        /// The value's key.
        key: Key,
    },
    /// Hold `value` under `key` for `ttl` (whole seconds on the wire, rounded up; the holder
    /// may shorten it). Answered with [`Reply::Stored`] or [`Reply::Refused`].
    Store {
        /// The key.
        key: Key,
        /// At most [`MAX_VALUE_LEN`] bytes.
        value: Vec<u8>,
        /// How long to hold it.
        ttl: Duration,
    },
}

/// A value found under a key: who stored it and for how much longer it is held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundValue {
    /// The authenticated peer that stored it. Values are otherwise unsigned: a reader that
    /// needs more trust stores self-authenticating values (e.g. signed records).
    pub publisher: PeerId,
    /// The value bytes.
    pub value: Vec<u8>,
    /// Remaining lifetime at the holder.
    pub ttl: Duration,
}

/// Why a STORE was refused, as a one-byte code on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// 1: the value is larger than the holder accepts.
    ValueTooLarge,
    /// 2: the key holds as many values as the holder allows.
    KeyFull,
    /// 3: the holder's store is full.
    StoreFull,
    /// 4: a zero lifetime.
    ZeroTtl,
    /// 5: the holder is overloaded (rate limit); try later.
    Busy,
    /// A code this version does not know (kept, not an error, for newer peers).
    Other(u8),
}

impl Refusal {
    /// The wire code.
    pub fn code(self) -> u8 {
        match self {
            Refusal::ValueTooLarge => 1,
            Refusal::KeyFull => 2,
            Refusal::StoreFull => 3,
            Refusal::ZeroTtl => 4,
            Refusal::Busy => 5,
            Refusal::Other(code) => code,
        }
    }

    /// The refusal a wire code stands for.
    pub fn from_code(code: u8) -> Self {
        match code {
            1 => Refusal::ValueTooLarge,
            2 => Refusal::KeyFull,
            3 => Refusal::StoreFull,
            4 => Refusal::ZeroTtl,
            5 => Refusal::Busy,
            other => Refusal::Other(other),
        }
    }
}

/// An answer, as the core gives it (to be encoded with [`Reply::encode`]) and receives it
/// (inside a verified [`Response`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reply {
    /// Answer to PING.
    Pong,
    /// Answer to FIND_NODE: up to k nodes, closest first.
    Nodes(Vec<NodeInfo>),
    /// Answer to FIND_VALUE: the values held (possibly none) and closer nodes.
    Value {
        /// Values under the key, one per publisher.
        values: Vec<FoundValue>,
        /// Up to k nodes closest to the key.
        closer: Vec<NodeInfo>,
    },
    /// Answer to an accepted STORE.
    Stored,
    /// Answer to a refused STORE.
    Refused(Refusal),
}

/// A response whose records have all been verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The node that answered: the address it answered from first, then the addresses of
    /// its own signed record (at most [`MAX_ADDRS`](crate::MAX_ADDRS) in all).
    pub responder: NodeInfo,
    /// What it answered.
    pub reply: Reply,
}

/// Why a DHT message was refused.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Not a well-formed message of the expected type (or over [`MAX_MESSAGE_LEN`]).
    #[error("malformed DHT message: {0}")]
    Codec(#[from] CodecError),
    /// A list or byte field longer than its cap (found while decoding, before allocating
    /// it, or when encoding).
    #[error("{field} has {len} entries, more than the limit of {max}")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// The responder's own record does not verify.
    #[error("bad responder record: {0}")]
    BadResponderRecord(#[source] RecordError),
    /// A listed node's record does not verify (the whole answer is refused: an honest
    /// node relays records exactly as it received them).
    #[error("bad node record at position {index}: {source}")]
    BadNodeRecord {
        /// Its position in the list.
        index: usize,
        /// What was wrong.
        #[source]
        source: RecordError,
    },
    /// The responder's record names another peer than the one we asked.
    #[error("asked {expected}, answered by {actual}")]
    WrongResponder {
        /// The peer asked.
        expected: PeerId,
        /// The peer the record names.
        actual: PeerId,
    },
}

#[derive(Serialize, Deserialize)]
enum WireRequest {
    Ping,
    FindNode {
        target: ByteArray<32>,
    },
    FindValue {
        key: ByteArray<32>,
    },
    Store {
        key: ByteArray<32>,
        value: BoundedBytes<MAX_VALUE_LEN>,
        ttl_secs: u32,
    },
}

type WireRecord = BoundedBytes<MAX_RECORD_LEN>;
type WireNodes = BoundedVec<WireRecord, MAX_NODES_PER_RESPONSE>;

#[derive(Serialize, Deserialize)]
struct WireValue {
    publisher: PeerId,
    value: BoundedBytes<MAX_VALUE_LEN>,
    ttl_secs: u32,
}

#[derive(Serialize, Deserialize)]
enum WireBody {
    Pong,
    Nodes {
        nodes: WireNodes,
    },
    Value {
        values: BoundedVec<WireValue, MAX_VALUES_PER_RESPONSE>,
        nodes: WireNodes,
    },
    Stored,
    Refused {
        code: u8,
    },
}

#[derive(Serialize, Deserialize)]
struct WireResponse {
    responder: WireRecord,
    body: WireBody,
}

/// Whole seconds, rounded up so a short positive lifetime is not sent as zero.
fn secs_up(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX)
}

fn checked<T>(field: &'static str, max: usize, r: Result<T, usize>) -> Result<T, RpcError> {
    r.map_err(|len| RpcError::FieldTooLong { field, len, max })
}

fn bytes_field<const MAX: usize>(
    field: &'static str,
    bytes: Vec<u8>,
) -> Result<BoundedBytes<MAX>, RpcError> {
    let len = bytes.len();
    BoundedBytes::new(bytes).ok_or(RpcError::FieldTooLong {
        field,
        len,
        max: MAX,
    })
}

impl DhtRequest {
    /// Encodes the request as a blyan-wire message.
    pub fn encode(&self) -> Result<Bytes, RpcError> {
        let wire = match self {
            DhtRequest::Ping => WireRequest::Ping,
            DhtRequest::FindNode { target } => WireRequest::FindNode {
                target: ByteArray::new(*target.as_bytes()),
            },
            DhtRequest::FindValue { key } => WireRequest::FindValue {
                key: ByteArray::new(*key.as_bytes()),
            },
            DhtRequest::Store { key, value, ttl } => WireRequest::Store {
                key: ByteArray::new(*key.as_bytes()),
                value: bytes_field("value", value.clone())?,
                ttl_secs: secs_up(*ttl),
            },
        };
        Ok(dht_codec().serialize(&wire)?)
    }

    /// Decodes a request message.
    pub fn decode(message: &[u8]) -> Result<Self, RpcError> {
        let wire: WireRequest = dht_codec().deserialize(message)?;
        Ok(match wire {
            WireRequest::Ping => DhtRequest::Ping,
            WireRequest::FindNode { target } => DhtRequest::FindNode {
                target: Key::from_bytes(target.into_array()),
            },
            WireRequest::FindValue { key } => DhtRequest::FindValue {
                key: Key::from_bytes(key.into_array()),
            },
            WireRequest::Store {
                key,
                value,
                ttl_secs,
            } => DhtRequest::Store {
                key: Key::from_bytes(key.into_array()),
                value: checked("value", MAX_VALUE_LEN, value.into_checked())?,
                ttl: Duration::from_secs(u64::from(ttl_secs)),
            },
        })
    }
}

/// The signed records of `nodes` that have one (nodes learned only from configuration have
/// none and are left out), at most [`MAX_NODES_PER_RESPONSE`].
fn wire_nodes(nodes: &[NodeInfo]) -> Result<WireNodes, RpcError> {
    let records: Vec<WireRecord> = nodes
        .iter()
        .filter_map(|n| n.record())
        .filter_map(|r| BoundedBytes::new(r.to_vec()))
        .take(MAX_NODES_PER_RESPONSE)
        .collect();
    let len = records.len();
    BoundedVec::new(records).ok_or(RpcError::FieldTooLong {
        field: "nodes",
        len,
        max: MAX_NODES_PER_RESPONSE,
    })
}

impl Reply {
    /// Encodes the reply as a response message from the node whose encoded signed record is
    /// `own_record`. Listed nodes travel as their signed records.
    pub fn encode(&self, own_record: &[u8]) -> Result<Bytes, RpcError> {
        let body = match self {
            Reply::Pong => WireBody::Pong,
            Reply::Nodes(nodes) => WireBody::Nodes {
                nodes: wire_nodes(nodes)?,
            },
            Reply::Value { values, closer } => {
                let values = values
                    .iter()
                    .map(|v| {
                        Ok(WireValue {
                            publisher: v.publisher,
                            value: bytes_field("value", v.value.clone())?,
                            ttl_secs: secs_up(v.ttl),
                        })
                    })
                    .collect::<Result<Vec<_>, RpcError>>()?;
                let len = values.len();
                WireBody::Value {
                    values: BoundedVec::new(values).ok_or(RpcError::FieldTooLong {
                        field: "values",
                        len,
                        max: MAX_VALUES_PER_RESPONSE,
                    })?,
                    nodes: wire_nodes(closer)?,
                }
            }
            Reply::Stored => WireBody::Stored,
            Reply::Refused(reason) => WireBody::Refused {
                code: reason.code(),
            },
        };
        let wire = WireResponse {
            responder: bytes_field("responder", own_record.to_vec())?,
            body,
        };
        Ok(dht_codec().serialize(&wire)?)
    }
}

impl Response {
    /// Decodes a response message and verifies every record in it (through `cache`, which
    /// fixes the chain id). `expected` is the peer we asked, if we knew it (the transport
    /// authenticates it); `from` is the address the answer came from, which becomes the
    /// responder's primary address.
    pub fn decode(
        message: &[u8],
        expected: Option<PeerId>,
        from: SocketAddr,
        cache: &mut RecordCache,
    ) -> Result<Self, RpcError> {
        let wire: WireResponse = dht_codec().deserialize(message)?;
        let responder_bytes = checked("responder", MAX_RECORD_LEN, wire.responder.into_checked())?;
        let record = cache
            .verify(&responder_bytes)
            .map_err(RpcError::BadResponderRecord)?;
        if let Some(expected) = expected
            && expected != record.peer_id()
        {
            return Err(RpcError::WrongResponder {
                expected,
                actual: record.peer_id(),
            });
        }
        let addrs: Vec<SocketAddr> = std::iter::once(from)
            .chain(record.addrs().iter().copied())
            .fold(Vec::with_capacity(MAX_ADDRS), |mut acc, a| {
                if acc.len() < MAX_ADDRS && !acc.contains(&a) {
                    acc.push(a);
                }
                acc
            });
        let mut responder = NodeInfo::new(record.peer_id(), addrs)
            .map_err(|e| RpcError::BadResponderRecord(RecordError::Addresses(e)))?;
        if let Some(bytes) = record.record() {
            responder = responder.with_record(Arc::clone(bytes));
        }
        let reply = match wire.body {
            WireBody::Pong => Reply::Pong,
            WireBody::Nodes { nodes } => Reply::Nodes(verify_nodes(nodes, cache)?),
            WireBody::Value { values, nodes } => {
                let values = checked("values", MAX_VALUES_PER_RESPONSE, values.into_checked())?
                    .into_iter()
                    .map(|v| {
                        Ok(FoundValue {
                            publisher: v.publisher,
                            value: checked("value", MAX_VALUE_LEN, v.value.into_checked())?,
                            ttl: Duration::from_secs(u64::from(v.ttl_secs)),
                        })
                    })
                    .collect::<Result<Vec<_>, RpcError>>()?;
                Reply::Value {
                    values,
                    closer: verify_nodes(nodes, cache)?,
                }
            }
            WireBody::Stored => Reply::Stored,
            WireBody::Refused { code } => Reply::Refused(Refusal::from_code(code)),
        };
        Ok(Response { responder, reply })
    }
}

fn verify_nodes(nodes: WireNodes, cache: &mut RecordCache) -> Result<Vec<NodeInfo>, RpcError> {
    checked("nodes", MAX_NODES_PER_RESPONSE, nodes.into_checked())?
        .into_iter()
        .enumerate()
        .map(|(index, bytes)| {
            let bytes = checked("node record", MAX_RECORD_LEN, bytes.into_checked())?;
            cache
                .verify(&bytes)
                .map_err(|source| RpcError::BadNodeRecord { index, source })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node_record::NodeRecord;
    use blyan_crypto::KeyPair;

    const CHAIN: u32 = 9;

    fn signed(seed: u8) -> (PeerId, Vec<u8>) {
        let key = KeyPair::from_seed(&[seed; 32]);
        let addr = SocketAddr::from(([10, 0, seed, 1], 4000));
        let bytes = NodeRecord::new(&key, CHAIN, &[addr], 1)
            .and_then(|r| r.encode())
            .unwrap();
        (key.peer_id(), bytes)
    }

    fn node(seed: u8) -> NodeInfo {
        let (_, bytes) = signed(seed);
        RecordCache::new(CHAIN, 0).verify(&bytes).unwrap()
    }

    #[test]
    fn requests_round_trip() {
        let key = Key::for_value(b"k");
        for request in [
            DhtRequest::Ping,
            DhtRequest::FindNode { target: key },
            DhtRequest::FindValue { key },
            DhtRequest::Store {
                key,
                value: vec![1; MAX_VALUE_LEN],
                ttl: Duration::from_secs(60),
            },
        ] {
            let bytes = request.encode().unwrap();
            assert_eq!(DhtRequest::decode(&bytes).unwrap(), request);
        }
        let short = DhtRequest::Store {
            key,
            value: vec![],
            ttl: Duration::from_millis(1),
        };
        let back = DhtRequest::decode(&short.encode().unwrap()).unwrap();
        assert!(matches!(back, DhtRequest::Store { ttl, .. } if ttl == Duration::from_secs(1)));
    }

    #[test]
    fn responses_round_trip_verified() {
        let (me, own) = signed(1);
        let from = SocketAddr::from(([192, 0, 2, 7], 9000));
        let nodes: Vec<NodeInfo> = (2..6).map(node).collect();
        let replies = [
            Reply::Pong,
            Reply::Nodes(nodes.clone()),
            Reply::Value {
                values: vec![FoundValue {
                    publisher: me,
                    value: b"v".to_vec(),
                    ttl: Duration::from_secs(5),
                }],
                closer: nodes.clone(),
            },
            Reply::Stored,
            Reply::Refused(Refusal::KeyFull),
            Reply::Refused(Refusal::Other(77)),
        ];
        let mut cache = RecordCache::new(CHAIN, 16);
        for reply in replies {
            let bytes = reply.encode(&own).unwrap();
            let response = Response::decode(&bytes, Some(me), from, &mut cache).unwrap();
            assert_eq!(response.reply, reply);
            assert_eq!(response.responder.peer_id(), me);
            assert_eq!(response.responder.primary_addr(), from);
            assert_eq!(response.responder.addrs().len(), 2);
        }
        let bytes = Reply::Pong.encode(&own).unwrap();
        assert!(matches!(
            Response::decode(&bytes, Some(signed(2).0), from, &mut cache),
            Err(RpcError::WrongResponder { .. })
        ));
        // Another chain's cache refuses the records.
        assert!(matches!(
            Response::decode(&bytes, None, from, &mut RecordCache::new(CHAIN + 1, 4)),
            Err(RpcError::BadResponderRecord(_))
        ));
    }

    #[test]
    fn nodes_without_records_are_not_relayed() {
        let (_, own) = signed(1);
        let bare = NodeInfo::new(
            PeerId::from_bytes([3; 32]),
            [SocketAddr::from(([1, 2, 3, 4], 5))],
        )
        .unwrap();
        let bytes = Reply::Nodes(vec![bare, node(4)]).encode(&own).unwrap();
        let from = SocketAddr::from(([1, 1, 1, 1], 1));
        let response = Response::decode(&bytes, None, from, &mut RecordCache::new(CHAIN, 8));
        assert!(matches!(response.unwrap().reply, Reply::Nodes(n) if n == vec![node(4)]));
    }

    #[test]
    fn oversized_fields_are_typed_errors() {
        let (_, own) = signed(1);
        let store = DhtRequest::Store {
            key: Key::for_value(b"k"),
            value: vec![0; MAX_VALUE_LEN + 1],
            ttl: Duration::from_secs(1),
        };
        assert!(matches!(
            store.encode(),
            Err(RpcError::FieldTooLong { field: "value", .. })
        ));
        // Hand-built: 33 records where 32 are allowed.
        #[derive(Serialize)]
        enum LongBody {
            #[allow(dead_code)]
            Pong,
            Nodes {
                nodes: Vec<WireRecord>,
            },
        }
        #[derive(Serialize)]
        struct LongResponse {
            responder: WireRecord,
            body: LongBody,
        }
        let record = BoundedBytes::new(signed(2).1).unwrap();
        let wire = LongResponse {
            responder: BoundedBytes::new(own).unwrap(),
            body: LongBody::Nodes {
                nodes: vec![record; 33],
            },
        };
        let bytes = dht_codec().serialize(&wire).unwrap();
        let from = SocketAddr::from(([1, 1, 1, 1], 1));
        assert!(matches!(
            Response::decode(&bytes, None, from, &mut RecordCache::new(CHAIN, 8)),
            Err(RpcError::FieldTooLong {
                field: "nodes",
                len: 33,
                max: 32
            })
        ));
    }

    #[test]
    fn garbage_is_an_error() {
        let from = SocketAddr::from(([1, 1, 1, 1], 1));
        let mut cache = RecordCache::new(CHAIN, 8);
        for bytes in [&b""[..], &[0], &[0, 0xc1], &[0, 0x92, 0x01, 0x02]] {
            assert!(DhtRequest::decode(bytes).is_err());
            assert!(Response::decode(bytes, None, from, &mut cache).is_err());
        }
        assert!(matches!(
            DhtRequest::decode(&vec![0; MAX_MESSAGE_LEN + 1]),
            Err(RpcError::Codec(CodecError::FrameTooLarge { .. }))
        ));
    }
}
