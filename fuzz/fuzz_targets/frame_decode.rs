//! Fuzz the frame decoders: a byte stream arriving in fuzzer-chosen chunks.
//!
//! The first input byte picks the chunk size; the rest is the stream. Invariants: no input
//! panics; the incremental `FrameDecoder` and the slice splitter `split_frame` agree on
//! every frame; every message returned respects the frame limit; decoding each message into
//! a value never panics, and what decodes round-trips through our own encoder.

#![no_main]

use blyan_wire::{Codec, Limits, split_frame};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Gossip {
    topic: u8,
    #[serde(with = "serde_bytes")]
    origin: Vec<u8>,
    nonce: u64,
    timestamp_ms: u64,
    entries: Vec<(u32, String)>,
    #[serde(with = "serde_bytes")]
    body: Vec<u8>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let limits = Limits {
        max_frame_len: 1 << 12,
        max_decompressed_len: 1 << 16,
        max_depth: 16,
    };
    let codec = Codec::DEFAULT.with_limits(limits);

    // The reference: split the whole stream at once.
    let mut expected = Vec::new();
    let mut rest = stream;
    let reference_error = loop {
        match split_frame(rest, &limits) {
            Ok(Some((message, tail))) => {
                expected.push(message.to_vec());
                rest = tail;
            }
            Ok(None) => break false,
            Err(_) => break true,
        }
    };

    // The incremental decoder, fed `chunk` bytes at a time.
    let mut decoder = codec.frame_decoder();
    let mut buf = BytesMut::new();
    let mut got = Vec::new();
    let mut failed = false;
    'feed: for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(message)) => {
                    assert!(!message.is_empty() && message.len() <= limits.max_frame_len);
                    got.push(message.to_vec());
                }
                Ok(None) => break,
                Err(_) => {
                    failed = true;
                    break 'feed;
                }
            }
        }
    }
    assert_eq!(
        got, expected,
        "incremental and whole-buffer framing disagree"
    );
    assert_eq!(failed, reference_error);

    for message in &got {
        if let Ok(value) = codec.deserialize::<Gossip>(message) {
            if let Ok(frame) = codec.frame(&value) {
                let mut again = BytesMut::from(&frame[..]);
                let back = codec
                    .decode_frame::<Gossip>(&mut again)
                    .expect("own frame decodes");
                assert_eq!(back, Some(value));
            }
        }
    }
});
