//! Round trips, determinism and "no panic on any input" for the value and message layers.

use blyan_wire::{
    Codec, CodecError, Compression, FLAG_ZSTD, Limits, from_canonical_bytes,
    from_canonical_bytes_exact, network_serializer, to_canonical_bytes,
};
use proptest::prelude::*;

use crate::model::{Envelope, envelope};

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn message_round_trips(value in envelope()) {
        let message = network_serializer::serialize(&value).unwrap();
        let back: Envelope = network_serializer::deserialize(&message).unwrap();
        prop_assert_eq!(back, value);
    }

    #[test]
    fn message_round_trips_without_compression(value in envelope()) {
        let codec = Codec::DEFAULT.with_compression(Compression::Disabled);
        let message = codec.serialize(&value).unwrap();
        prop_assert_eq!(message[0], 0);
        // Any codec decodes any other's output: compression is the sender's choice.
        prop_assert_eq!(Codec::DEFAULT.deserialize::<Envelope>(&message).unwrap(), value);
    }

    #[test]
    fn canonical_round_trips_exactly(value in envelope()) {
        let bytes = to_canonical_bytes(&value).unwrap();
        prop_assert_eq!(from_canonical_bytes::<Envelope>(&bytes).unwrap(), value.clone());
        prop_assert_eq!(from_canonical_bytes_exact::<Envelope>(&bytes).unwrap(), value);
    }

    #[test]
    fn encoding_is_deterministic(value in envelope()) {
        let first = to_canonical_bytes(&value).unwrap();
        let copy = value.clone();
        prop_assert_eq!(&to_canonical_bytes(&copy).unwrap(), &first);
        prop_assert_eq!(
            network_serializer::serialize(&value).unwrap(),
            network_serializer::serialize(&copy).unwrap()
        );
        // The uncompressed message is exactly flags 0 + the canonical bytes.
        let plain = Codec::DEFAULT.with_compression(Compression::Disabled).serialize(&value).unwrap();
        prop_assert_eq!(&plain[1..], &first[..]);
    }

    #[test]
    fn compressed_message_carries_the_canonical_bytes(value in envelope()) {
        let message = network_serializer::serialize(&value).unwrap();
        let canonical = to_canonical_bytes(&value).unwrap();
        if message[0] == FLAG_ZSTD {
            prop_assert!(canonical.len() > 1024);
            prop_assert!(message.len() - 1 < canonical.len());
            prop_assert_eq!(zstd::decode_all(&message[1..]).unwrap(), canonical);
        } else {
            prop_assert_eq!(&message[1..], &canonical[..]);
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        // Every outcome is fine as long as it is a value or a typed error.
        let _ = network_serializer::deserialize::<Envelope>(&bytes);
        let _ = from_canonical_bytes::<Envelope>(&bytes);
        let _ = from_canonical_bytes_exact::<Envelope>(&bytes);
        let _ = network_serializer::deserialize::<(u64, String, Vec<u32>)>(&bytes);
    }

    #[test]
    fn corrupted_messages_never_panic(
        value in envelope(),
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8),
    ) {
        let mut message = network_serializer::serialize(&value).unwrap().to_vec();
        for (at, xor) in flips {
            let len = message.len();
            message[at % len] ^= xor;
        }
        let _ = network_serializer::deserialize::<Envelope>(&message);
    }
}

#[test]
fn zstd_payloads_from_any_encoder_are_accepted() {
    // A compressed message that is larger than its content is valid input (we never send one).
    let value = (1_u8, 2_u8);
    let canonical = to_canonical_bytes(&value).unwrap();
    let mut message = vec![FLAG_ZSTD];
    message.extend(zstd::encode_all(&canonical[..], 19).unwrap());
    assert!(message.len() > canonical.len() + 1);
    assert_eq!(
        network_serializer::deserialize::<(u8, u8)>(&message).unwrap(),
        value
    );
}

#[test]
fn trailing_bytes_in_a_message_are_rejected() {
    let mut message = network_serializer::serialize(&5_u32).unwrap().to_vec();
    message.push(0xc0);
    let err = network_serializer::deserialize::<u32>(&message).unwrap_err();
    assert!(
        matches!(err, CodecError::TrailingBytes { remaining: 1 }),
        "{err}"
    );
}

#[test]
fn type_mismatch_is_a_decode_error() {
    let message = network_serializer::serialize(&"text").unwrap();
    let err = network_serializer::deserialize::<u64>(&message).unwrap_err();
    assert!(matches!(err, CodecError::Decode(_)), "{err}");
}

#[test]
fn a_message_over_the_frame_limit_is_refused_unread() {
    let codec = Codec::DEFAULT.with_limits(Limits {
        max_frame_len: 16,
        ..Limits::DEFAULT
    });
    let err = codec.deserialize::<Vec<u8>>(&[0_u8; 17]).unwrap_err();
    assert!(
        matches!(err, CodecError::FrameTooLarge { len: 17, max: 16 }),
        "{err}"
    );
}
