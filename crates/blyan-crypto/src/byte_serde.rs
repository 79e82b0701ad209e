//! Serde for fixed-size byte values: MsgPack `bin` in binary formats, lowercase hex strings in
//! human-readable ones (JSON, YAML).
//!
//! Deserializing checks the length and reports a mismatch as an error, never a panic. It
//! accepts bytes (borrowed, owned), a sequence of `u8` (formats without a bytes type) and, in
//! human-readable formats, a hex string.

use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, SeqAccess, Visitor};
use serde::{Deserializer, Serializer};

use crate::hex;

/// Serializes `bytes` as hex text or as one bytes value (`bin`), by format.
pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    if serializer.is_human_readable() {
        serializer.serialize_str(&hex::to_hex(bytes))
    } else {
        serializer.serialize_bytes(bytes)
    }
}

/// Deserializes exactly `N` bytes.
pub(crate) fn deserialize<'de, D: Deserializer<'de>, const N: usize>(
    deserializer: D,
) -> Result<[u8; N], D::Error> {
    if deserializer.is_human_readable() {
        deserializer.deserialize_str(FixedBytesVisitor::<N>(PhantomData))
    } else {
        deserializer.deserialize_bytes(FixedBytesVisitor::<N>(PhantomData))
    }
}

struct FixedBytesVisitor<const N: usize>(PhantomData<[u8; N]>);

impl<'de, const N: usize> Visitor<'de> for FixedBytesVisitor<N> {
    type Value = [u8; N];

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{N} bytes or {} hex characters", 2 * N)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        hex::parse_hex::<N>(v).map_err(E::custom)
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        <[u8; N]>::try_from(v).map_err(|_| E::invalid_length(v.len(), &self))
    }

    fn visit_borrowed_bytes<E: de::Error>(self, v: &'de [u8]) -> Result<Self::Value, E> {
        self.visit_bytes(v)
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        self.visit_bytes(&v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut out = [0u8; N];
        for (filled, slot) in out.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| de::Error::invalid_length(filled, &self))?;
        }
        // Reject longer sequences without buffering them: one extra element is enough to know.
        if seq.next_element::<de::IgnoredAny>()?.is_some() {
            return Err(de::Error::invalid_length(N + 1, &self));
        }
        Ok(out)
    }
}

/// Implements `Serialize`/`Deserialize` for a newtype over `[u8; N]` through `as_bytes` and a
/// constructor expression (which may reject the bytes with a `Display` error).
macro_rules! impl_byte_serde {
    ($ty:ty, $len:expr, |$bytes:ident| $construct:expr) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                $crate::byte_serde::serialize(self.as_bytes(), serializer)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let $bytes: [u8; $len] = $crate::byte_serde::deserialize(deserializer)?;
                $construct.map_err(<D::Error as serde::de::Error>::custom)
            }
        }
    };
}

pub(crate) use impl_byte_serde;
