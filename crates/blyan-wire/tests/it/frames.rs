//! Frames over byte buffers: round trips under arbitrary chunking, limits, hostile input.

use blyan_wire::{Codec, CodecError, FrameDecoder, Limits, split_frame};
use bytes::BytesMut;
use proptest::prelude::*;

use crate::model::{Envelope, chunks, envelope};

/// Feeds `stream` to a frame decoder in the given chunks and decodes every value.
fn decode_chunked(codec: &Codec, stream: &[u8], cuts: &[usize]) -> Vec<Envelope> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks(stream, cuts) {
        buf.extend_from_slice(chunk);
        while let Some(value) = codec.decode_frame::<Envelope>(&mut buf).unwrap() {
            out.push(value);
        }
    }
    assert!(buf.is_empty(), "{} bytes left over", buf.len());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn frames_round_trip_in_any_chunks(
        values in proptest::collection::vec(envelope(), 1..5),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let codec = Codec::DEFAULT;
        let mut stream = BytesMut::new();
        for value in &values {
            codec.encode_frame(value, &mut stream).unwrap();
        }
        prop_assert_eq!(decode_chunked(&codec, &stream, &cuts), values);
    }

    #[test]
    fn frame_is_length_then_message(value in envelope()) {
        let codec = Codec::DEFAULT;
        let frame = codec.frame(&value).unwrap();
        let message = codec.serialize(&value).unwrap();
        let len = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        prop_assert_eq!(len, message.len());
        prop_assert_eq!(&frame[4..], &message[..]);
        let (split, rest) = split_frame(&frame, codec.limits()).unwrap().unwrap();
        prop_assert_eq!(split, &message[..]);
        prop_assert!(rest.is_empty());
    }

    #[test]
    fn arbitrary_streams_never_panic(
        stream in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let codec = Codec::DEFAULT.with_limits(Limits { max_frame_len: 2048, ..Limits::DEFAULT });
        let mut decoder = codec.frame_decoder();
        let mut buf = BytesMut::new();
        'feed: for chunk in chunks(&stream, &cuts) {
            buf.extend_from_slice(chunk);
            loop {
                match decoder.decode(&mut buf) {
                    Ok(Some(message)) => {
                        prop_assert!(!message.is_empty() && message.len() <= 2048);
                        let _ = codec.deserialize::<Envelope>(&message);
                    }
                    Ok(None) => break,
                    Err(_) => break 'feed,
                }
            }
        }
        let _ = split_frame(&stream, codec.limits());
    }
}

#[test]
fn oversized_header_is_rejected_with_the_announced_length() {
    let mut buf = BytesMut::from(&[0xff, 0xff, 0xff, 0xff, 0x00][..]);
    let err = FrameDecoder::new(Limits::DEFAULT)
        .decode(&mut buf)
        .unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::FrameTooLarge {
                len: 0xffff_ffff,
                max: 0x0100_0000
            }
        ),
        "{err}"
    );
}

#[test]
fn unknown_flags_in_a_frame_are_rejected() {
    let mut buf = BytesMut::from(&[0, 0, 0, 2, 0x04, 0x01][..]);
    let err = Codec::DEFAULT.decode_frame::<u8>(&mut buf).unwrap_err();
    assert!(matches!(err, CodecError::UnknownFlags(0x04)), "{err}");
}

#[test]
fn largest_frame_at_the_limit_passes_and_one_more_byte_fails() {
    let limits = Limits {
        max_frame_len: 1 + 3 + 1000,
        ..Limits::DEFAULT
    };
    let codec = Codec::DEFAULT
        .with_limits(limits)
        .with_compression(blyan_wire::Compression::Disabled);
    // bin16 header (3 bytes) + 1000 bytes + flags byte = exactly the limit.
    let at_limit = serde_bytes::ByteBuf::from(vec![1_u8; 1000]);
    let mut buf = BytesMut::from(&codec.frame(&at_limit).unwrap()[..]);
    assert_eq!(
        codec
            .decode_frame::<serde_bytes::ByteBuf>(&mut buf)
            .unwrap(),
        Some(at_limit)
    );
    let over = serde_bytes::ByteBuf::from(vec![1_u8; 1001]);
    let err = codec.frame(&over).unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::FrameTooLarge {
                len: 1005,
                max: 1004
            }
        ),
        "{err}"
    );
}
