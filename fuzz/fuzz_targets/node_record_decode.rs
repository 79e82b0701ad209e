//! Fuzz the decoder of signed DHT node records, which arrive from peers.
//!
//! Invariants: no input panics; a record that decodes re-encodes to exactly the input (the
//! decoder accepts only the canonical form) and decodes again to the same record.

#![no_main]

use blyan_dht::NodeRecord;
use libfuzzer_sys::fuzz_target;

/// The chain id the fuzzed records are checked against.
const CHAIN_ID: u32 = 1;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = NodeRecord::decode(data, CHAIN_ID) {
        let bytes = record.encode().expect("a decoded record re-encodes");
        assert_eq!(bytes, data, "only the canonical encoding decodes");
        let again = NodeRecord::decode(&bytes, CHAIN_ID).expect("its own encoding decodes");
        assert_eq!(again, record);
    }
});
