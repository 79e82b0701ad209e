//! Fuzz the decoders of the peer protocol's messages (sync requests and responses, gossip),
//! which arrive from peers.
//!
//! Invariants: no input panics or allocates past the list caps; a message that decodes
//! re-encodes and decodes again to the same message; a decoded gossip envelope's id and
//! signature check never panic.

#![no_main]

use blyan_p2p::{GossipMessage, SyncRequest, SyncResponse, WireMessage};
use libfuzzer_sys::fuzz_target;

/// The chain id fuzzed envelopes are checked against.
const CHAIN_ID: u32 = 1;

fn round_trip<T: WireMessage + PartialEq + std::fmt::Debug>(data: &[u8]) -> Option<T> {
    let message = T::decode(data).ok()?;
    let bytes = message.encode().expect("a decoded message re-encodes");
    let again = T::decode(&bytes).expect("its own encoding decodes");
    assert_eq!(again, message);
    Some(message)
}

fuzz_target!(|data: &[u8]| {
    round_trip::<SyncRequest>(data);
    round_trip::<SyncResponse>(data);
    if let Some(GossipMessage::Envelope(envelope)) = round_trip::<GossipMessage>(data) {
        let _ = envelope.verify(CHAIN_ID);
    }
});
