//! Serde: `bin` in MsgPack, hex in JSON, and wrong lengths rejected without panics.

use blyan_crypto::{
    Address, Hash, KeyPair, MerkleProof, MerkleTree, PeerId, PublicKey, Signature, sha256,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fn msgpack<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec(value).unwrap()
}

fn round_trip<T>(value: T, len: usize)
where
    T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + std::fmt::Display,
{
    // MsgPack: bin8 marker (0xc4), the length, the raw bytes.
    let bytes = msgpack(&value);
    assert_eq!(bytes[0], 0xc4, "{value:?} is not MsgPack bin");
    assert_eq!(usize::from(bytes[1]), len);
    assert_eq!(bytes.len(), len + 2);
    assert_eq!(rmp_serde::from_slice::<T>(&bytes).unwrap(), value);

    // JSON: the same hex string as Display.
    let json = serde_json::to_string(&value).unwrap();
    assert_eq!(json, format!("\"{value}\""));
    assert_eq!(serde_json::from_str::<T>(&json).unwrap(), value);

    // A sequence of u8 is accepted too (formats without a bytes type).
    let seq = msgpack(&bytes[2..].to_vec());
    assert_eq!(rmp_serde::from_slice::<T>(&seq).unwrap(), value);

    // Wrong lengths: bin, seq and hex; shorter and longer.
    for wrong in [len - 1, len + 1, 0] {
        let raw = vec![0x11u8; wrong];
        assert!(rmp_serde::from_slice::<T>(&msgpack(&serde_bytes::Bytes::new(&raw))).is_err());
        assert!(rmp_serde::from_slice::<T>(&msgpack(&raw)).is_err());
        let hex = format!("\"{}\"", "ab".repeat(wrong));
        assert!(serde_json::from_str::<T>(&hex).is_err());
    }
    let bad_char = format!("\"{}\"", "zz".repeat(len));
    assert!(serde_json::from_str::<T>(&bad_char).is_err());
}

#[test]
fn fixed_size_types_round_trip() {
    let key = KeyPair::from_seed(&[5u8; 32]);
    let pk = key.public_key();
    round_trip(sha256(b"x"), 32);
    round_trip(pk.address(), 20);
    round_trip(pk.peer_id(), 32);
    round_trip(pk, 32);
    round_trip(key.sign(blyan_crypto::Domain::Block, 1, b"x"), 64);
}

#[test]
fn invalid_public_keys_are_rejected_on_deserialize() {
    // The identity point: small order.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    let encoded = msgpack(&serde_bytes::Bytes::new(&identity));
    assert!(rmp_serde::from_slice::<PublicKey>(&encoded).is_err());
    let json = format!("\"01{}\"", "00".repeat(31));
    assert!(serde_json::from_str::<PublicKey>(&json).is_err());
}

#[test]
fn text_forms() {
    let pk = KeyPair::from_seed(&[6u8; 32]).public_key();
    let address = pk.address();
    let text = address.to_string();
    assert_eq!(text.len(), 40);
    assert!(text.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    assert_eq!(text.to_uppercase().parse::<Address>(), Ok(address));
    assert!(matches!(
        text[..38].parse::<Address>(),
        Err(blyan_crypto::ParseError::WrongLength {
            expected: 40,
            actual: 38
        })
    ));
    let peer = pk.peer_id();
    assert_eq!(peer.to_string().parse::<PeerId>(), Ok(peer));
    let sig = Signature::from_bytes([3u8; 64]);
    assert_eq!(sig.to_string().parse::<Signature>(), Ok(sig));
    assert_eq!(Hash::ZERO.to_string().parse::<Hash>(), Ok(Hash::ZERO));
}

#[test]
fn merkle_proofs_serialize_and_are_bounded() {
    let items: Vec<Hash> = (0u8..9).map(|i| sha256(&[i])).collect();
    let tree = MerkleTree::from_items(&items).unwrap();
    let proof = tree.proof(4).unwrap();
    let bytes = msgpack(&proof);
    let back: MerkleProof = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back, proof);
    assert_eq!(back.verify(&tree.root(), 4, &items[4], 9), Ok(()));
    let json = serde_json::to_string(&proof).unwrap();
    assert_eq!(serde_json::from_str::<MerkleProof>(&json).unwrap(), proof);

    let too_long = MerkleProof::from_siblings(vec![Hash::ZERO; 33]);
    assert!(rmp_serde::from_slice::<MerkleProof>(&msgpack(&too_long)).is_err());
}
