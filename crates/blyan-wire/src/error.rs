//! The one error type of the codec and framing layer.

use std::fmt;
use std::io;

/// Everything that can go wrong while encoding or decoding a value, a message or a frame.
///
/// Every malformed or oversized input from a peer ends here as a typed value; no decoder in
/// this crate panics on any byte string. After a framing error (`FrameTooLarge`,
/// `EmptyMessage`, `Truncated` from a stream) the byte stream is out of sync and the
/// connection should be closed: there is no way to find the next frame boundary.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CodecError {
    /// A frame length (flags byte + payload) above the configured maximum. Checked before
    /// any payload byte is read or allocated.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge {
        /// The length the frame header (or the message) announced.
        len: usize,
        /// The configured `Limits::max_frame_len`.
        max: usize,
    },
    /// A zstd payload that expands beyond the configured maximum. Detected while
    /// decompressing, after at most `max + 1` output bytes.
    #[error("decompressed payload exceeds the limit of {max} bytes")]
    DecompressedTooLarge {
        /// The configured `Limits::max_decompressed_len`.
        max: usize,
    },
    /// The flags byte has bits set that this version does not know.
    #[error("unknown flag bits {0:#04x}")]
    UnknownFlags(u8),
    /// A message (or a frame with length 0) without its flags byte.
    #[error("empty message: the flags byte is missing")]
    EmptyMessage,
    /// The input ended before the frame or the encoded value was complete.
    #[error("input ended before the frame or value was complete")]
    Truncated,
    /// Bytes left over after a complete encoded value.
    #[error("{remaining} unexpected bytes after the encoded value")]
    TrailingBytes {
        /// How many bytes followed the value.
        remaining: usize,
    },
    /// The input decodes, but is not the canonical encoding of the decoded value.
    #[error("the input is not the canonical encoding of its value")]
    NonCanonical,
    /// A payload flagged as zstd that is not a valid zstd stream.
    #[error("malformed zstd payload: {0}")]
    Decompress(#[source] io::Error),
    /// The bytes are not a MsgPack encoding of the expected type.
    #[error("cannot decode value: {0}")]
    Decode(#[source] DecodeError),
    /// The value cannot be encoded (its `Serialize` impl failed, e.g. a map with unknown length).
    #[error("cannot encode value: {0}")]
    Encode(#[source] EncodeError),
    /// Reading or writing the underlying stream failed.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
}

/// Why MsgPack decoding failed. Opaque so that the MsgPack library is not part of the API.
#[derive(Debug)]
pub struct DecodeError(rmp_serde::decode::Error);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Why MsgPack encoding failed. Opaque so that the MsgPack library is not part of the API.
#[derive(Debug)]
pub struct EncodeError(rmp_serde::encode::Error);

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for EncodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl From<rmp_serde::decode::Error> for CodecError {
    fn from(err: rmp_serde::decode::Error) -> Self {
        use rmp_serde::decode::Error as E;
        // Running out of input is one condition whatever field it happened in.
        let eof = match &err {
            E::InvalidMarkerRead(io) | E::InvalidDataRead(io) => {
                io.kind() == io::ErrorKind::UnexpectedEof
            }
            _ => false,
        };
        if eof {
            Self::Truncated
        } else {
            Self::Decode(DecodeError(err))
        }
    }
}

impl From<rmp_serde::encode::Error> for CodecError {
    fn from(err: rmp_serde::encode::Error) -> Self {
        Self::Encode(EncodeError(err))
    }
}
