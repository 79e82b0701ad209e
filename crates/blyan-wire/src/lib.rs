//! # blyan-wire: the bytes between Blyan nodes
//!
//! This crate turns typed messages into bytes and back. It knows no domain type: anything
//! that is `Serialize + DeserializeOwned` travels. Three layers, each usable alone:
//!
//! 1. **Canonical encoding** ([`to_canonical_bytes`], [`from_canonical_bytes`]): compact
//!    MsgPack via `rmp-serde`. Structs are arrays of their fields (no names), integers take
//!    their shortest form, fields annotated `#[serde(with = "serde_bytes")]` are MsgPack
//!    `bin` (a plain `Vec<u8>` would be an array of integers: annotate it). The same value
//!    always encodes to the same bytes (use `BTreeMap`, never `HashMap`), which is why
//!    consensus hashes exactly these bytes. Decoding rejects trailing bytes and nesting
//!    deeper than [`Limits::max_depth`].
//! 2. **Messages** ([`Codec::serialize`], [`network_serializer`]): `flags (u8) | payload`.
//!    Bit 0 of `flags` means the payload is zstd; any other bit is [`CodecError::UnknownFlags`].
//!    A payload over 1 KiB is compressed when that makes it strictly smaller.
//! 3. **Frames** ([`Codec::frame`], [`FrameDecoder`], [`Codec::read_frame`]):
//!    `length (u32 big-endian) | flags | payload`, where `length` counts flags + payload.
//!
//! ## Guarantees
//!
//! * No decoder panics on any byte string; every failure is a [`CodecError`].
//! * A frame length is checked against [`Limits::max_frame_len`] (16 MiB) before a payload
//!   byte is read or allocated, and buffers grow with the bytes that actually arrive.
//! * Decompression stops after [`Limits::max_decompressed_len`] (16 MiB) + 1 output bytes:
//!   the size a zstd header announces is never trusted, and a frame asking for a window
//!   larger than the limit needs is refused. Encoders never exceed their own limits.
//! * Only the canonical MsgPack bytes are canonical: compressed bytes depend on the zstd
//!   version, so hash and sign the canonical encoding, never a frame.
//!
//! ## Features
//!
//! `transport` (default) will carry the QUIC transport; it enables `async-io`
//! ([`Codec::read_frame`] / [`Codec::write_frame`] over tokio). With
//! `default-features = false` the crate is the codec alone, without tokio.
//!
//! ## Example
//!
//! ```
//! use blyan_wire::{Codec, network_serializer};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, PartialEq, Serialize, Deserialize)]
//! struct Ping {
//!     nonce: u64,
//!     #[serde(with = "serde_bytes")]
//!     payload: Vec<u8>,
//! }
//!
//! let ping = Ping { nonce: 7, payload: vec![1, 2, 3] };
//! let message = network_serializer::serialize(&ping)?;
//! assert_eq!(network_serializer::deserialize::<Ping>(&message)?, ping);
//!
//! // Frames can arrive in any chunks; the decoder waits for a whole one.
//! let frame = Codec::DEFAULT.frame(&ping)?;
//! let mut buf = bytes::BytesMut::from(&frame[..3]);
//! assert_eq!(Codec::DEFAULT.decode_frame::<Ping>(&mut buf)?, None);
//! buf.extend_from_slice(&frame[3..]);
//! assert_eq!(Codec::DEFAULT.decode_frame::<Ping>(&mut buf)?, Some(ping));
//! # Ok::<(), blyan_wire::CodecError>(())
//! ```

#[cfg(feature = "async-io")]
mod async_io;
mod canonical;
mod certificate;
mod codec;
mod compression;
mod error;
mod frame;
mod limits;
pub mod network_serializer;
#[cfg(feature = "transport")]
mod transport;
mod value_extent;

pub use canonical::{from_canonical_bytes, from_canonical_bytes_exact, to_canonical_bytes};
pub use certificate::{
    CertificateError, MAX_CERTIFICATE_LEN, peer_id_of_certificate, self_signed_certificate,
    verify_peer_certificate,
};
pub use codec::{Codec, FLAG_ZSTD, KNOWN_FLAGS};
pub use error::{CodecError, DecodeError, EncodeError};
pub use frame::{FRAME_HEADER_LEN, FrameDecoder, split_frame};
pub use limits::{
    Compression, DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_DECOMPRESSED_LEN, DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME_LEN, DEFAULT_ZSTD_LEVEL, Limits,
};
#[cfg(feature = "transport")]
pub use transport::*;
