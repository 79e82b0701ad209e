//! Certificates made by other tools (the fuzz seeds: ours, and one from Python's
//! `cryptography` with another name, a random-looking serial, a one-day validity and a
//! non-critical extension) pass the verifier and name the right key.

use std::path::Path;

use blyan_crypto::KeyPair;
use blyan_wire::{peer_id_of_certificate, self_signed_certificate, verify_peer_certificate};

fn seed(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/seeds/peer_certificate")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

#[test]
fn the_committed_blyan_seed_is_what_the_builder_makes() {
    let der = seed("blyan");
    let key = verify_peer_certificate(&der).unwrap();
    // The seed was made from the key with seed [1; 32]: the builder is deterministic.
    assert_eq!(key, KeyPair::from_seed(&[1; 32]).public_key());
    assert_eq!(der, self_signed_certificate(&KeyPair::from_seed(&[1; 32])));
}

#[test]
fn a_python_cryptography_certificate_verifies() {
    let der = seed("cryptography");
    // Made from the RFC 8032 seed [7; 32] by scripts/interop/make_certificate_seed.py.
    let expected = KeyPair::from_seed(&[7; 32]);
    assert_eq!(verify_peer_certificate(&der), Ok(expected.public_key()));
    assert_eq!(peer_id_of_certificate(&der), Ok(expected.peer_id()));
}
