//! zstd for payloads: opportunistic compression and bomb-proof decompression.

use std::cell::RefCell;
use std::io::{self, Read};

use crate::CodecError;

/// The smallest output step of the decompressor: small frames allocate little, large ones
/// grow the buffer geometrically (never beyond the limit).
const MIN_OUTPUT_STEP: usize = 16 * 1024;

thread_local! {
    /// One zstd compression context per thread: creating one costs far more than compressing
    /// a typical message. Tagged with its level so a codec with another level replaces it.
    static COMPRESSOR: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
}

/// Compresses `body` with zstd at `level` and writes `prefix` followed by the compressed
/// bytes into a new buffer, if and only if the compressed form is strictly smaller than
/// `body`. Any compression failure means "send it uncompressed".
pub(crate) fn compress_if_smaller(prefix: &[u8], body: &[u8], level: i32) -> Option<Vec<u8>> {
    if body.is_empty() {
        return None;
    }
    // A destination one byte shorter than the input: zstd fails with "destination too
    // small" exactly when compression would not save anything.
    let mut out = vec![0_u8; prefix.len() + body.len() - 1];
    let (head, dest) = out.split_at_mut(prefix.len());
    head.copy_from_slice(prefix);
    let written = COMPRESSOR.with(|cell| match cell.try_borrow_mut() {
        Ok(mut slot) => {
            let reuse = matches!(&*slot, Some((cached, _)) if *cached == level);
            if !reuse {
                *slot = Some((level, zstd::bulk::Compressor::new(level).ok()?));
            }
            let (_, compressor) = slot.as_mut()?;
            compressor.compress_to_buffer(body, dest).ok()
        }
        // Unreachable in practice (no re-entrancy), but never worth a panic.
        Err(_) => zstd::bulk::Compressor::new(level)
            .ok()?
            .compress_to_buffer(body, dest)
            .ok(),
    })?;
    out.truncate(prefix.len() + written);
    Some(out)
}

/// Decompresses a zstd `payload`, failing with [`CodecError::DecompressedTooLarge`] as soon
/// as the output would exceed `max` bytes.
///
/// The frame content size written in the zstd header is never trusted: the output grows with
/// the bytes actually produced, never beyond `max` (one further byte is probed for), and the decoder refuses frames whose
/// window is larger than `max` needs, so its own buffers stay bounded as well.
pub(crate) fn decompress_bounded(payload: &[u8], max: usize) -> Result<Vec<u8>, CodecError> {
    let mut decoder =
        zstd::stream::read::Decoder::with_buffer(payload).map_err(CodecError::Decompress)?;
    decoder
        .window_log_max(window_log_for(max))
        .map_err(CodecError::Decompress)?;

    let first = payload
        .len()
        .saturating_mul(4)
        .max(MIN_OUTPUT_STEP)
        .min(max);
    let mut out = vec![0_u8; first];
    let mut filled = 0;
    loop {
        let read = if filled < out.len() {
            let dest = out
                .get_mut(filled..)
                .ok_or(CodecError::DecompressedTooLarge { max })?;
            decoder.read(dest)
        } else if filled < max {
            let grow = filled.max(MIN_OUTPUT_STEP).min(max - filled);
            // Exact, so the buffer never overshoots `max` the way amortized growth would.
            out.reserve_exact(grow);
            out.resize(filled + grow, 0);
            continue;
        } else {
            // The buffer holds `max` bytes: one more byte of output means the limit is
            // exceeded, and it is probed for without growing the buffer.
            match decoder.read(&mut [0_u8; 1]) {
                Ok(0) => break,
                Ok(_) => return Err(CodecError::DecompressedTooLarge { max }),
                Err(err) => Err(err),
            }
        };
        match read {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(CodecError::Decompress(err)),
        }
    }
    out.truncate(filled);
    Ok(out)
}

/// The smallest zstd window (as a power of two) that covers `max` bytes, within zstd's
/// supported range of 2^10..=2^31. A larger window is never needed for an output of at most
/// `max` bytes, and a frame that asks for one is refused before its buffer is allocated.
fn window_log_for(max: usize) -> u32 {
    let log = usize::BITS - max.saturating_sub(1).leading_zeros();
    log.clamp(10, 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_log_covers_the_limit() {
        assert_eq!(window_log_for(0), 10);
        assert_eq!(window_log_for(1024), 10);
        assert_eq!(window_log_for(1025), 11);
        assert_eq!(window_log_for(16 * 1024 * 1024), 24);
        assert_eq!(window_log_for(usize::MAX), 31);
    }

    #[test]
    fn compressible_data_round_trips() {
        let body = vec![42_u8; 100_000];
        let out = compress_if_smaller(&[9], &body, 3).unwrap();
        assert_eq!(out[0], 9);
        assert!(out.len() < 1_000);
        assert_eq!(decompress_bounded(&out[1..], body.len()).unwrap(), body);
    }

    #[test]
    fn incompressible_data_is_not_compressed() {
        // A xorshift stream has no redundancy zstd can find.
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let body: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(compress_if_smaller(&[], &body, 1).is_none());
    }

    #[test]
    fn output_over_the_limit_is_refused() {
        let body = vec![0_u8; 10_000];
        let out = compress_if_smaller(&[], &body, 1).unwrap();
        assert_eq!(decompress_bounded(&out, 10_000).unwrap().len(), 10_000);
        let err = decompress_bounded(&out, 9_999).unwrap_err();
        assert!(
            matches!(err, CodecError::DecompressedTooLarge { max: 9_999 }),
            "{err}"
        );
    }

    #[test]
    fn garbage_is_a_decompress_error() {
        let err = decompress_bounded(b"definitely not zstd", 1 << 20).unwrap_err();
        assert!(matches!(err, CodecError::Decompress(_)), "{err}");
    }
}
