//! Fuzz the decoders a peer's block and transaction bytes go through, and what runs on
//! whatever decodes: hashing, the stateless block rules and batch signature verification.
//!
//! Invariants: no input panics; a decoded block or transaction re-encodes canonically to
//! bytes that decode to the same value.

#![no_main]

use std::collections::BTreeMap;
use std::sync::OnceLock;

use blyan_consensus::{Block, BlockValidator, ConsensusParams, Genesis, SignedTransaction};
use blyan_crypto::KeyPair;
use blyan_wire::{Codec, from_canonical_bytes, to_canonical_bytes};
use libfuzzer_sys::fuzz_target;

/// A one-validator chain whose rules every decoded block is checked against.
fn validator() -> &'static BlockValidator {
    static VALIDATOR: OnceLock<BlockValidator> = OnceLock::new();
    VALIDATOR.get_or_init(|| {
        BlockValidator::new(Genesis {
            chain_id: 1,
            genesis_time_ms: 0,
            slot_duration_ms: 1_000,
            validators: vec![KeyPair::from_seed(&[7; 32]).public_key()],
            balances: BTreeMap::new(),
            params: ConsensusParams::default(),
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let codec = Codec::DEFAULT;
    if let Ok(block) = codec.deserialize::<Block>(data) {
        let _ = block.hash();
        let _ = validator().verify_block(&block);
        let bytes = to_canonical_bytes(&block).expect("a decoded block re-encodes");
        let again: Block = from_canonical_bytes(&bytes).expect("canonical bytes decode");
        assert_eq!(again, block);
    }
    if let Ok(tx) = codec.deserialize::<SignedTransaction>(data) {
        let _ = tx.hash();
        let _ = validator().check_tx_fields(&tx);
        let bytes = to_canonical_bytes(&tx).expect("a decoded transaction re-encodes");
        let again: SignedTransaction = from_canonical_bytes(&bytes).expect("canonical bytes decode");
        assert_eq!(again, tx);
    }
});
