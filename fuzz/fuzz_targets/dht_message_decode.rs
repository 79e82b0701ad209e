//! Fuzz the DHT message decoders over the full path a peer's bytes take: message limits,
//! MsgPack, field caps, then the signature check of every node record in a response.
//!
//! Invariants: no input panics; a request that decodes re-encodes to a message that decodes
//! to the same request; a verified response never lists more than the caps allow, and its
//! responder is reachable at the address the answer came from.

#![no_main]

use std::net::SocketAddr;

use blyan_dht::{
    DhtRequest, MAX_NODES_PER_RESPONSE, MAX_VALUES_PER_RESPONSE, RecordCache, Reply, Response,
};
use libfuzzer_sys::fuzz_target;

/// The chain id the fuzzed records are checked against.
const CHAIN_ID: u32 = 1;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = DhtRequest::decode(data) {
        let bytes = request.encode().expect("a decoded request re-encodes");
        let again = DhtRequest::decode(&bytes).expect("its own encoding decodes");
        assert_eq!(again, request);
    }
    let from = SocketAddr::from(([192, 0, 2, 1], 4000));
    let mut cache = RecordCache::new(CHAIN_ID, 64);
    if let Ok(response) = Response::decode(data, None, from, &mut cache) {
        assert_eq!(response.responder.primary_addr(), from);
        match response.reply {
            Reply::Nodes(nodes) => assert!(nodes.len() <= MAX_NODES_PER_RESPONSE),
            Reply::Value { values, closer } => {
                assert!(values.len() <= MAX_VALUES_PER_RESPONSE);
                assert!(closer.len() <= MAX_NODES_PER_RESPONSE);
            }
            Reply::Pong | Reply::Stored | Reply::Refused(_) => {}
        }
    }
});
