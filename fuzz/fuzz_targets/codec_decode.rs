//! Fuzz the message and canonical decoders with a block-shaped type.
//!
//! Invariants: no input panics; whatever decodes re-encodes canonically to bytes that decode
//! to the same value; our own messages decode back unchanged; `from_canonical_bytes_exact`
//! accepts an input exactly when it is the canonical encoding of its value.

#![no_main]

use blyan_wire::{
    Codec, Compression, Limits, from_canonical_bytes, from_canonical_bytes_exact,
    to_canonical_bytes,
};
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Header {
    version: u32,
    chain_id: u32,
    height: u64,
    slot: u64,
    timestamp_ms: u64,
    #[serde(with = "serde_bytes")]
    parent_hash: [u8; 32],
    #[serde(with = "serde_bytes")]
    tx_root: [u8; 32],
    #[serde(with = "serde_bytes")]
    state_root: [u8; 32],
    #[serde(with = "serde_bytes")]
    producer: [u8; 32],
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Transaction {
    chain_id: u32,
    #[serde(with = "serde_bytes")]
    from: [u8; 32],
    #[serde(with = "serde_bytes")]
    to: [u8; 20],
    amount: u64,
    fee: u64,
    nonce: u64,
    #[serde(with = "serde_bytes")]
    data: Vec<u8>,
    #[serde(with = "serde_bytes")]
    signature: [u8; 64],
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Payload {
    Block {
        header: Header,
        signature: Box<[u8]>,
        txs: Vec<Transaction>,
    },
    Txs(Vec<Transaction>),
    Status(u64, Option<String>),
    Ping,
}

fuzz_target!(|data: &[u8]| {
    // Small limits so the fuzzer reaches them; the logic is the same at 16 MiB.
    let limits = Limits {
        max_frame_len: 1 << 16,
        max_decompressed_len: 1 << 18,
        max_depth: 32,
    };
    let codec = Codec::DEFAULT.with_limits(limits);

    if let Ok(value) = codec.deserialize::<Payload>(data) {
        check_canonical(&value);
        // Whatever our encoder produces (it may refuse: a peer's better compression can fit
        // a value in a frame that ours does not), our decoder takes back unchanged.
        for codec in [codec, codec.with_compression(Compression::Disabled)] {
            if let Ok(message) = codec.serialize(&value) {
                let again = codec
                    .deserialize::<Payload>(&message)
                    .expect("own message decodes");
                assert_eq!(again, value);
            }
        }
    }

    if let Ok(value) = from_canonical_bytes::<Payload>(data) {
        check_canonical(&value);
        let exact = from_canonical_bytes_exact::<Payload>(data);
        let canonical = to_canonical_bytes(&value).expect("decoded value re-encodes");
        assert_eq!(exact.is_ok(), canonical == data);
    }
});

fn check_canonical(value: &Payload) {
    let bytes = to_canonical_bytes(value).expect("decoded value re-encodes");
    let back = from_canonical_bytes_exact::<Payload>(&bytes).expect("canonical bytes are exact");
    assert_eq!(&back, value);
}
