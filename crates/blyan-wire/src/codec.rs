//! `Codec`: typed values to messages (flags byte + payload) and frames, and back.

use bytes::{Bytes, BytesMut};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CodecError;
use crate::canonical::{decode_body, encode_into};
use crate::compression::{compress_if_smaller, decompress_bounded};
use crate::frame::{FRAME_HEADER_LEN, FrameDecoder};
use crate::limits::{Compression, Limits};

/// Flags bit 0: the payload is a zstd stream of the MsgPack encoding.
pub const FLAG_ZSTD: u8 = 0b0000_0001;

/// Every flag bit this version understands; any other set bit is [`CodecError::UnknownFlags`].
pub const KNOWN_FLAGS: u8 = FLAG_ZSTD;

/// A first guess for the output buffer; most messages fit, larger ones grow it geometrically.
const INITIAL_CAPACITY: usize = 256;

/// Encodes values as messages and frames and decodes them back, under configurable
/// [`Limits`] and [`Compression`].
///
/// A *message* is `flags (u8) | payload`, where the payload is the canonical MsgPack
/// encoding of the value, zstd-compressed when bit 0 of `flags` is set. A *frame* is
/// `length (u32 big-endian) | message`, where `length` counts the message (flags byte +
/// payload) and excludes itself. `Codec` is `Copy` and holds no buffers, so keep one per
/// connection or share one freely.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Codec {
    limits: Limits,
    compression: Compression,
}

impl Codec {
    /// The documented defaults: [`Limits::DEFAULT`] and [`Compression::DEFAULT`].
    pub const DEFAULT: Self = Self::new(Limits::DEFAULT, Compression::DEFAULT);

    /// A codec with the given limits and compression policy.
    pub const fn new(limits: Limits, compression: Compression) -> Self {
        Self {
            limits,
            compression,
        }
    }

    /// This codec with other limits.
    #[must_use]
    pub const fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// This codec with another compression policy.
    #[must_use]
    pub const fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The limits this codec enforces.
    pub const fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The compression policy this codec's encoders follow.
    pub const fn compression(&self) -> &Compression {
        &self.compression
    }

    /// Encodes `value` as a message: one flags byte, then the MsgPack payload (compressed
    /// with zstd when the policy says so and it makes the payload smaller).
    ///
    /// Fails with [`CodecError::FrameTooLarge`] rather than produce a message a peer with
    /// the same limits would refuse.
    pub fn serialize<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes, CodecError> {
        self.encode_message(value, 0).map(Bytes::from)
    }

    /// Decodes a message produced by [`Codec::serialize`] (any valid zstd stream is
    /// accepted where bit 0 is set, even one that is larger than its content).
    pub fn deserialize<T: DeserializeOwned>(&self, message: &[u8]) -> Result<T, CodecError> {
        let max = self.limits.frame_len_cap();
        if message.len() > max {
            return Err(CodecError::FrameTooLarge {
                len: message.len(),
                max,
            });
        }
        let (&flags, payload) = message.split_first().ok_or(CodecError::EmptyMessage)?;
        let unknown = flags & !KNOWN_FLAGS;
        if unknown != 0 {
            return Err(CodecError::UnknownFlags(unknown));
        }
        if flags & FLAG_ZSTD == 0 {
            decode_body(payload, &self.limits)
        } else {
            let body = decompress_bounded(payload, self.limits.max_decompressed_len)?;
            decode_body(&body, &self.limits)
        }
    }

    /// The canonical MsgPack encoding of `value`, never compressed: what consensus hashes.
    /// Same as [`to_canonical_bytes`](crate::to_canonical_bytes).
    pub fn encode_canonical<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        crate::to_canonical_bytes(value)
    }

    /// Decodes canonical MsgPack bytes (no flags byte) under this codec's nesting limit.
    pub fn decode_canonical<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T, CodecError> {
        decode_body(bytes, &self.limits)
    }

    /// Encodes `value` as one complete frame (length, flags, payload).
    pub fn frame<T: Serialize + ?Sized>(&self, value: &T) -> Result<Bytes, CodecError> {
        self.encode_frame_vec(value).map(Bytes::from)
    }

    /// Appends one frame carrying `value` to `dst`.
    pub fn encode_frame<T: Serialize + ?Sized>(
        &self,
        value: &T,
        dst: &mut BytesMut,
    ) -> Result<(), CodecError> {
        let frame = self.encode_frame_vec(value)?;
        if dst.is_empty() {
            // Take the buffer over instead of copying it.
            dst.unsplit(BytesMut::from(Bytes::from(frame)));
        } else {
            dst.extend_from_slice(&frame);
        }
        Ok(())
    }

    /// Decodes one frame from the front of `src`, consuming it, or returns `Ok(None)` (and
    /// consumes nothing) while the frame is still incomplete. See [`FrameDecoder`].
    pub fn decode_frame<T: DeserializeOwned>(
        &self,
        src: &mut BytesMut,
    ) -> Result<Option<T>, CodecError> {
        match self.frame_decoder().decode(src)? {
            Some(message) => self.deserialize(&message).map(Some),
            None => Ok(None),
        }
    }

    /// A [`FrameDecoder`] enforcing this codec's frame limit.
    pub const fn frame_decoder(&self) -> FrameDecoder {
        FrameDecoder::new(self.limits)
    }

    /// Encodes a frame into one buffer: header, flags and payload written in place.
    pub(crate) fn encode_frame_vec<T: Serialize + ?Sized>(
        &self,
        value: &T,
    ) -> Result<Vec<u8>, CodecError> {
        let mut frame = self.encode_message(value, FRAME_HEADER_LEN)?;
        let message_len = frame.len() - FRAME_HEADER_LEN;
        // `encode_message` guarantees `message_len <= frame_len_cap() <= u32::MAX`.
        let length = u32::try_from(message_len).map_err(|_| CodecError::FrameTooLarge {
            len: message_len,
            max: self.limits.frame_len_cap(),
        })?;
        frame[..FRAME_HEADER_LEN].copy_from_slice(&length.to_be_bytes());
        Ok(frame)
    }

    /// Encodes a message after `header_room` zero bytes (0 for a bare message, 4 for a frame
    /// whose header the caller fills in), so that framing never copies the payload.
    fn encode_message<T: Serialize + ?Sized>(
        &self,
        value: &T,
        header_room: usize,
    ) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(INITIAL_CAPACITY);
        out.resize(header_room + 1, 0);
        encode_into(&mut out, value)?;
        let body_start = header_room + 1;
        let body_len = out.len() - body_start;
        if let Compression::Zstd { threshold, level } = self.compression {
            // Never compress what the peer could not decompress under the same limits.
            if body_len > threshold && body_len <= self.limits.max_decompressed_len {
                let mut prefix = out[..body_start].to_vec();
                prefix[header_room] = FLAG_ZSTD;
                if let Some(compressed) = compress_if_smaller(&prefix, &out[body_start..], level) {
                    out = compressed;
                }
            }
        }
        let message_len = out.len() - header_room;
        let max = self.limits.frame_len_cap();
        if message_len > max {
            return Err(CodecError::FrameTooLarge {
                len: message_len,
                max,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Blob {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
    }

    #[test]
    fn small_message_is_flags_zero_then_msgpack() {
        let message = Codec::DEFAULT.serialize(&(1_u8, "hi")).unwrap();
        assert_eq!(&message[..], &[0x00, 0x92, 0x01, 0xa2, b'h', b'i']);
    }

    #[test]
    fn large_compressible_message_is_compressed() {
        let blob = Blob {
            data: vec![7; 4096],
        };
        let message = Codec::DEFAULT.serialize(&blob).unwrap();
        assert_eq!(message[0], FLAG_ZSTD);
        assert!(message.len() < 200, "{}", message.len());
        assert_eq!(Codec::DEFAULT.deserialize::<Blob>(&message).unwrap(), blob);
    }

    #[test]
    fn payload_at_threshold_is_not_compressed() {
        // bin16 header (3 bytes) + data, inside a 1-element array (1 byte): exactly 1024.
        let blob = Blob {
            data: vec![7; 1020],
        };
        let message = Codec::DEFAULT.serialize(&blob).unwrap();
        assert_eq!(message.len(), 1025);
        assert_eq!(message[0], 0);
    }

    #[test]
    fn disabled_compression_never_compresses() {
        let codec = Codec::DEFAULT.with_compression(Compression::Disabled);
        let message = codec
            .serialize(&Blob {
                data: vec![7; 4096],
            })
            .unwrap();
        assert_eq!(message[0], 0);
    }

    #[test]
    fn unknown_flags_are_rejected() {
        let mut message = Codec::DEFAULT.serialize(&1_u8).unwrap().to_vec();
        message[0] = 0x83;
        let err = Codec::DEFAULT.deserialize::<u8>(&message).unwrap_err();
        assert!(matches!(err, CodecError::UnknownFlags(0x82)), "{err}");
    }

    #[test]
    fn empty_message_is_rejected() {
        let err = Codec::DEFAULT.deserialize::<u8>(&[]).unwrap_err();
        assert!(matches!(err, CodecError::EmptyMessage), "{err}");
    }

    #[test]
    fn encoder_refuses_what_the_decoder_would_refuse() {
        let limits = Limits {
            max_frame_len: 100,
            ..Limits::DEFAULT
        };
        let codec = Codec::DEFAULT
            .with_limits(limits)
            .with_compression(Compression::Disabled);
        let err = codec.serialize(&Blob { data: vec![1; 200] }).unwrap_err();
        assert!(
            matches!(err, CodecError::FrameTooLarge { max: 100, .. }),
            "{err}"
        );
        let err = codec.frame(&Blob { data: vec![1; 200] }).unwrap_err();
        assert!(
            matches!(err, CodecError::FrameTooLarge { max: 100, .. }),
            "{err}"
        );
    }

    #[test]
    fn frame_header_counts_flags_and_payload() {
        let frame = Codec::DEFAULT.frame(&(1_u8, "hi")).unwrap();
        assert_eq!(
            &frame[..],
            &[0, 0, 0, 6, 0x00, 0x92, 0x01, 0xa2, b'h', b'i']
        );
    }

    #[test]
    fn encode_frame_appends() {
        let mut buf = BytesMut::new();
        Codec::DEFAULT.encode_frame(&1_u8, &mut buf).unwrap();
        Codec::DEFAULT.encode_frame(&2_u8, &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 0, 0, 2, 0, 1, 0, 0, 0, 2, 0, 2]);
        assert_eq!(
            Codec::DEFAULT.decode_frame::<u8>(&mut buf).unwrap(),
            Some(1)
        );
        assert_eq!(
            Codec::DEFAULT.decode_frame::<u8>(&mut buf).unwrap(),
            Some(2)
        );
        assert_eq!(Codec::DEFAULT.decode_frame::<u8>(&mut buf).unwrap(), None);
    }
}
