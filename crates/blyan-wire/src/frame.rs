//! Length-prefixed frames over byte buffers: `length (u32 BE) | flags (u8) | payload`.

use bytes::{Buf, Bytes, BytesMut};

use crate::CodecError;
use crate::limits::Limits;

/// Bytes of the big-endian `u32` length that starts every frame.
pub const FRAME_HEADER_LEN: usize = 4;

/// How much buffer space an incomplete frame may reserve ahead of the bytes that arrived:
/// the announced length alone never makes us allocate its full size.
const RESERVE_STEP: usize = 64 * 1024;

/// Splits frames off a growing byte buffer, for callers that read bytes in arbitrary chunks.
///
/// Feed it whatever arrived; [`FrameDecoder::decode`] returns `Ok(None)` until a whole frame
/// is buffered, then the frame's message (flags byte + payload) as zero-copy [`Bytes`].
/// The length is validated as soon as its four bytes are present, before any payload is
/// buffered, so an oversized or empty frame fails fast. Decode the message with
/// [`Codec::deserialize`](crate::Codec::deserialize).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrameDecoder {
    limits: Limits,
}

impl FrameDecoder {
    /// A decoder enforcing `limits.max_frame_len`.
    pub const fn new(limits: Limits) -> Self {
        Self { limits }
    }

    /// Takes one complete frame off the front of `src` and returns its message, or returns
    /// `Ok(None)` and leaves `src` untouched while the frame is incomplete.
    ///
    /// After an error the stream is out of sync: close the connection.
    pub fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, CodecError> {
        match split_frame(src, &self.limits)? {
            Some((message, _)) => {
                let len = message.len();
                src.advance(FRAME_HEADER_LEN);
                Ok(Some(src.split_to(len).freeze()))
            }
            None => {
                let wanted = match parse_length(src, &self.limits)? {
                    Some(len) => FRAME_HEADER_LEN + len,
                    None => FRAME_HEADER_LEN,
                };
                src.reserve(wanted.saturating_sub(src.len()).min(RESERVE_STEP));
                Ok(None)
            }
        }
    }
}

/// A frame's message and the bytes after the frame.
type MessageAndRest<'a> = (&'a [u8], &'a [u8]);

/// Splits the first frame off `src`: `Ok(Some((message, rest)))` when a whole frame is
/// present, `Ok(None)` when more bytes are needed, an error when the header is invalid.
pub fn split_frame<'a>(
    src: &'a [u8],
    limits: &Limits,
) -> Result<Option<MessageAndRest<'a>>, CodecError> {
    let Some(len) = parse_length(src, limits)? else {
        return Ok(None);
    };
    let Some(frame) = src.get(FRAME_HEADER_LEN..FRAME_HEADER_LEN + len) else {
        return Ok(None);
    };
    let rest = src.get(FRAME_HEADER_LEN + len..).unwrap_or_default();
    Ok(Some((frame, rest)))
}

/// Reads and validates the length field, if its four bytes are there.
fn parse_length(src: &[u8], limits: &Limits) -> Result<Option<usize>, CodecError> {
    let Some(header) = src.first_chunk::<FRAME_HEADER_LEN>() else {
        return Ok(None);
    };
    check_length(u32::from_be_bytes(*header), limits).map(Some)
}

/// The rules for a length field: at least the flags byte, at most the frame limit.
pub(crate) fn check_length(length: u32, limits: &Limits) -> Result<usize, CodecError> {
    // u32 always fits usize on the 32- and 64-bit targets Rust supports for std + tokio.
    let len = usize::try_from(length).unwrap_or(usize::MAX);
    let max = limits.frame_len_cap();
    if len == 0 {
        Err(CodecError::EmptyMessage)
    } else if len > max {
        Err(CodecError::FrameTooLarge { len, max })
    } else {
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_frames_wait() {
        let mut decoder = FrameDecoder::default();
        let mut buf = BytesMut::from(&[0_u8, 0, 0][..]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(&[3, 0, 1]);
        assert_eq!(decoder.decode(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 6);
        buf.extend_from_slice(&[2, 9]);
        assert_eq!(
            decoder.decode(&mut buf).unwrap().as_deref(),
            Some(&[0_u8, 1, 2][..])
        );
        assert_eq!(&buf[..], &[9]);
    }

    #[test]
    fn oversized_length_fails_before_the_payload_arrives() {
        let limits = Limits {
            max_frame_len: 1000,
            ..Limits::DEFAULT
        };
        let mut buf = BytesMut::from(&1001_u32.to_be_bytes()[..]);
        let err = FrameDecoder::new(limits).decode(&mut buf).unwrap_err();
        assert!(
            matches!(
                err,
                CodecError::FrameTooLarge {
                    len: 1001,
                    max: 1000
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn huge_announced_length_reserves_little() {
        let mut buf = BytesMut::from(&(16 * 1024 * 1024_u32).to_be_bytes()[..]);
        assert_eq!(FrameDecoder::default().decode(&mut buf).unwrap(), None);
        assert!(
            buf.capacity() <= FRAME_HEADER_LEN + RESERVE_STEP + 64,
            "{}",
            buf.capacity()
        );
    }

    #[test]
    fn zero_length_is_an_empty_message() {
        let err = split_frame(&[0, 0, 0, 0, 1], &Limits::DEFAULT).unwrap_err();
        assert!(matches!(err, CodecError::EmptyMessage), "{err}");
    }

    #[test]
    fn split_frame_returns_the_rest() {
        let (message, rest) = split_frame(&[0, 0, 0, 1, 0, 7, 7], &Limits::DEFAULT)
            .unwrap()
            .unwrap();
        assert_eq!(message, &[0]);
        assert_eq!(rest, &[7, 7]);
    }
}
