//! zstd bombs: payloads that expand far beyond the limit are typed errors with bounded memory.

use blyan_wire::{Codec, CodecError, FLAG_ZSTD, Limits};
use bytes::BytesMut;

use crate::alloc_meter::peak_during;

const MIB: usize = 1024 * 1024;
/// zstd's largest block: one RLE block regenerates at most this many bytes.
const BLOCK: usize = 128 * 1024;

/// A hand-built zstd frame of `blocks` RLE blocks of 128 KiB zeros (4 bytes per block, the
/// best ratio zstd allows: 32768:1), without a content size in its header.
pub(crate) fn rle_bomb(blocks: usize) -> Vec<u8> {
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd]; // magic number, little-endian
    frame.push(0x00); // descriptor: no content size, not single-segment, no checksum
    frame.push(0x38); // window descriptor: 2^(10 + 7) = 128 KiB
    for i in 0..blocks {
        let last = u32::from(i + 1 == blocks);
        let header = ((BLOCK as u32) << 3) | (1 << 1) | last; // size | RLE type | last
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.push(0x00); // the repeated byte
    }
    frame
}

pub(crate) fn message(zstd_payload: &[u8]) -> Vec<u8> {
    let mut message = vec![FLAG_ZSTD];
    message.extend_from_slice(zstd_payload);
    message
}

#[test]
fn one_gib_bomb_is_refused_with_bounded_memory() {
    let bomb = message(&rle_bomb(1024 * MIB / BLOCK));
    assert!(bomb.len() < 33 * 1024, "bomb is {} bytes", bomb.len());

    let (result, peak) = peak_during(|| Codec::DEFAULT.deserialize::<Vec<u8>>(&bomb));
    let err = result.unwrap_err();
    assert!(
        matches!(err, CodecError::DecompressedTooLarge { max } if max == 16 * MIB),
        "{err}"
    );
    // Output buffer capped at limit + 1, plus one transient realloc copy.
    assert!(peak < 26 * MIB, "peak allocation {peak} bytes");
}

#[test]
fn memory_follows_the_limit_not_the_bomb() {
    let limits = Limits {
        max_decompressed_len: MIB,
        ..Limits::DEFAULT
    };
    let codec = Codec::DEFAULT.with_limits(limits);
    let bomb = message(&rle_bomb(1024 * MIB / BLOCK));
    let (result, peak) = peak_during(|| codec.deserialize::<Vec<u8>>(&bomb));
    assert!(matches!(result, Err(CodecError::DecompressedTooLarge { max }) if max == MIB));
    assert!(peak < 2 * MIB, "peak allocation {peak} bytes");
}

#[test]
fn bomb_inside_a_frame_is_refused() {
    let bomb = message(&rle_bomb(256)); // 32 MiB of zeros in 1 KiB
    assert!(bomb.len() < 1100);
    let mut buf = BytesMut::new();
    buf.extend_from_slice(&(bomb.len() as u32).to_be_bytes());
    buf.extend_from_slice(&bomb);
    let err = Codec::DEFAULT
        .decode_frame::<Vec<u8>>(&mut buf)
        .unwrap_err();
    assert!(
        matches!(err, CodecError::DecompressedTooLarge { .. }),
        "{err}"
    );
}

#[test]
fn encoder_made_bomb_is_refused() {
    // 64 MiB of zeros through the real zstd encoder, streamed so the test never holds them.
    let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
    let zeros = vec![0_u8; MIB];
    for _ in 0..64 {
        std::io::Write::write_all(&mut encoder, &zeros).unwrap();
    }
    let bomb = message(&encoder.finish().unwrap());
    let (result, peak) = peak_during(|| Codec::DEFAULT.deserialize::<Vec<u8>>(&bomb));
    assert!(matches!(
        result,
        Err(CodecError::DecompressedTooLarge { .. })
    ));
    assert!(peak < 26 * MIB, "peak allocation {peak} bytes");
}

#[test]
fn announced_content_size_is_not_trusted() {
    // The header claims 1 TiB of content; the frame holds 100 bytes. Nothing is sized from
    // the claim, and the mismatch is a decompression error.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0xc0, 0x38];
    frame.extend_from_slice(&(1_u64 << 40).to_le_bytes());
    let header = (100_u32 << 3) | (1 << 1) | 1;
    frame.extend_from_slice(&header.to_le_bytes()[..3]);
    frame.push(0x00);
    let bomb = message(&frame);
    let (result, peak) = peak_during(|| Codec::DEFAULT.deserialize::<Vec<u8>>(&bomb));
    let err = result.unwrap_err();
    assert!(matches!(err, CodecError::Decompress(_)), "{err}");
    assert!(peak < MIB, "peak allocation {peak} bytes");
}

#[test]
fn window_larger_than_the_limit_needs_is_refused() {
    // Window descriptor exponent 21: a 2 GiB window, which the 16 MiB limit never needs.
    let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, 21 << 3];
    let header = (100_u32 << 3) | (1 << 1) | 1;
    frame.extend_from_slice(&header.to_le_bytes()[..3]);
    frame.push(0x00);
    let err = Codec::DEFAULT
        .deserialize::<Vec<u8>>(&message(&frame))
        .unwrap_err();
    assert!(matches!(err, CodecError::Decompress(_)), "{err}");
}
