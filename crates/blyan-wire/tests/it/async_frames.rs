//! Frames over tokio `AsyncRead`/`AsyncWrite`, including arbitrary read chunking.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use blyan_wire::{Codec, CodecError, Limits};
use proptest::prelude::*;
use tokio::io::{AsyncRead, AsyncWriteExt, ReadBuf};

use crate::model::{Envelope, chunks, envelope};

/// A reader that hands out a byte stream in predetermined chunks, one per read call.
struct ChunkedReader {
    chunks: Vec<Vec<u8>>,
    next: usize,
    offset: usize,
}

impl ChunkedReader {
    fn new(stream: &[u8], cuts: &[usize]) -> Self {
        let chunks = chunks(stream, cuts)
            .into_iter()
            .map(<[u8]>::to_vec)
            .collect();
        Self {
            chunks,
            next: 0,
            offset: 0,
        }
    }
}

impl AsyncRead for ChunkedReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        while let Some(chunk) = this.chunks.get(this.next) {
            let rest = &chunk[this.offset..];
            if rest.is_empty() {
                this.next += 1;
                this.offset = 0;
                continue;
            }
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.offset += n;
            break;
        }
        Poll::Ready(Ok(()))
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn async_frames_round_trip_in_any_chunks(
        values in proptest::collection::vec(envelope(), 1..4),
        cuts in proptest::collection::vec(any::<usize>(), 0..20),
    ) {
        let codec = Codec::DEFAULT;
        let decoded = runtime().block_on(async {
            let mut stream = Vec::new();
            for value in &values {
                codec.write_frame(&mut stream, value).await.unwrap();
            }
            let mut reader = ChunkedReader::new(&stream, &cuts);
            let mut out = Vec::new();
            while let Some(value) = codec.read_frame::<_, Envelope>(&mut reader).await.unwrap() {
                out.push(value);
            }
            out
        });
        prop_assert_eq!(decoded, values);
    }

    #[test]
    fn async_arbitrary_streams_never_panic(
        stream in proptest::collection::vec(any::<u8>(), 0..4096),
        cuts in proptest::collection::vec(any::<usize>(), 0..8),
    ) {
        let codec = Codec::DEFAULT.with_limits(Limits { max_frame_len: 2048, ..Limits::DEFAULT });
        runtime().block_on(async {
            let mut reader = ChunkedReader::new(&stream, &cuts);
            while let Ok(Some(_)) = codec.read_frame::<_, Envelope>(&mut reader).await {}
        });
    }
}

#[tokio::test(flavor = "current_thread")]
async fn duplex_pipe_carries_frames_both_ways() {
    let codec = Codec::DEFAULT;
    let (mut a, mut b) = tokio::io::duplex(64);
    let writer = async {
        for i in 0..50_u64 {
            codec
                .write_frame(&mut a, &(i, "x".repeat(i as usize * 40)))
                .await
                .unwrap();
        }
        a.shutdown().await.unwrap();
    };
    let reader = async {
        let mut seen = 0_u64;
        while let Some((i, s)) = codec.read_frame::<_, (u64, String)>(&mut b).await.unwrap() {
            assert_eq!((i, s.len()), (seen, seen as usize * 40));
            seen += 1;
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    assert_eq!(seen, 50);
}

#[tokio::test(flavor = "current_thread")]
async fn end_of_stream_inside_a_frame_is_truncated() {
    let frame = Codec::DEFAULT.frame(&"hello").unwrap();
    for cut in 1..frame.len() {
        let mut reader = &frame[..cut];
        let err = Codec::DEFAULT
            .read_frame::<_, String>(&mut reader)
            .await
            .unwrap_err();
        assert!(matches!(err, CodecError::Truncated), "cut {cut}: {err}");
    }
    let mut empty: &[u8] = &[];
    assert!(
        Codec::DEFAULT
            .read_frame::<_, String>(&mut empty)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn oversized_header_is_refused_before_reading_the_payload() {
    let limits = Limits {
        max_frame_len: 1024,
        ..Limits::DEFAULT
    };
    let mut stream: &[u8] = &[0, 0, 4, 1, 0];
    let err = Codec::DEFAULT
        .with_limits(limits)
        .read_message(&mut stream)
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            CodecError::FrameTooLarge {
                len: 1025,
                max: 1024
            }
        ),
        "{err}"
    );
    // The payload byte after the header was never consumed.
    assert_eq!(stream, &[0]);
}
