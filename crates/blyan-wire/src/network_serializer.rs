//! The seed's `network_serializer.{serialize, deserialize}` face, with the default limits.
//!
//! `serialize` returns a *message* (one flags byte + the MsgPack payload, zstd-compressed
//! when that pays off); `deserialize` reads one back. Frame it with
//! [`Codec::frame`] or let the transport do it. For other limits or
//! compression settings use a [`Codec`] directly.

use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Codec, CodecError};

/// Encodes `value` as a message under [`Codec::DEFAULT`].
pub fn serialize<T: Serialize + ?Sized>(value: &T) -> Result<Bytes, CodecError> {
    Codec::DEFAULT.serialize(value)
}

/// Decodes a message under [`Codec::DEFAULT`].
pub fn deserialize<T: DeserializeOwned>(message: &[u8]) -> Result<T, CodecError> {
    Codec::DEFAULT.deserialize(message)
}
