//! Wire containers with a cap that decoding enforces before it allocates.
//!
//! serde's `Vec<T>` trusts the length a peer announces up to a generic limit; these types
//! allocate at most `MAX` elements (or bytes) whatever the announced length, skip the excess
//! without storing it, and remember how long the field really was, so that the caller turns
//! an oversized field into a typed error ([`RpcError::FieldTooLong`](crate::RpcError)).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, IgnoredAny, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A list of at most `MAX` items on the wire; `len` is the length the sender used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BoundedVec<T, const MAX: usize> {
    items: Vec<T>,
    len: usize,
}

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// Wraps `items` for sending; `None` if there are more than `MAX`.
    pub(crate) fn new(items: Vec<T>) -> Option<Self> {
        if items.len() > MAX {
            return None;
        }
        Some(Self {
            len: items.len(),
            items,
        })
    }

    /// The items, or the announced length if it exceeded `MAX`.
    pub(crate) fn into_checked(self) -> Result<Vec<T>, usize> {
        if self.len > MAX {
            Err(self.len)
        } else {
            Ok(self.items)
        }
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedVec<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(&self.items)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(SeqVisitor::<T, MAX>(PhantomData))
    }
}

struct SeqVisitor<T, const MAX: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for SeqVisitor<T, MAX> {
    type Value = BoundedVec<T, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list (at most {MAX} items are kept)")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let announced = seq.size_hint().unwrap_or(0);
        let mut items = Vec::with_capacity(announced.min(MAX));
        let mut len = 0usize;
        loop {
            if items.len() < MAX {
                match seq.next_element::<T>()? {
                    Some(item) => items.push(item),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            len = len.saturating_add(1);
        }
        Ok(BoundedVec { items, len })
    }
}

/// A byte string of at most `MAX` bytes on the wire (MsgPack `bin`); `len` is the length the
/// sender used. An oversized string is never copied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct BoundedBytes<const MAX: usize> {
    bytes: Vec<u8>,
    len: usize,
}

impl<const MAX: usize> BoundedBytes<MAX> {
    /// Wraps `bytes` for sending; `None` if longer than `MAX`.
    pub(crate) fn new(bytes: Vec<u8>) -> Option<Self> {
        if bytes.len() > MAX {
            return None;
        }
        Some(Self {
            len: bytes.len(),
            bytes,
        })
    }

    /// The bytes, or the announced length if it exceeded `MAX`.
    pub(crate) fn into_checked(self) -> Result<Vec<u8>, usize> {
        if self.len > MAX {
            Err(self.len)
        } else {
            Ok(self.bytes)
        }
    }
}

impl<const MAX: usize> Serialize for BoundedBytes<MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.bytes)
    }
}

impl<'de, const MAX: usize> Deserialize<'de> for BoundedBytes<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(BytesVisitor::<MAX>)
    }
}

struct BytesVisitor<const MAX: usize>;

impl<const MAX: usize> Visitor<'_> for BytesVisitor<MAX> {
    type Value = BoundedBytes<MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a byte string (at most {MAX} bytes are kept)")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Self::Value, E> {
        let bytes = if v.len() > MAX {
            Vec::new()
        } else {
            v.to_vec()
        };
        Ok(BoundedBytes {
            bytes,
            len: v.len(),
        })
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Self::Value, E> {
        if v.len() > MAX {
            return Ok(BoundedBytes {
                bytes: Vec::new(),
                len: v.len(),
            });
        }
        Ok(BoundedBytes {
            len: v.len(),
            bytes: v,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_wire::{from_canonical_bytes, to_canonical_bytes};

    #[test]
    fn within_the_cap_round_trips() {
        let list = BoundedVec::<u8, 3>::new(vec![1, 2, 3]).unwrap();
        let bytes = to_canonical_bytes(&list).unwrap();
        assert_eq!(bytes, to_canonical_bytes(&vec![1u8, 2, 3]).unwrap());
        let back: BoundedVec<u8, 3> = from_canonical_bytes(&bytes).unwrap();
        assert_eq!(back.into_checked(), Ok(vec![1, 2, 3]));
        assert!(BoundedVec::<u8, 3>::new(vec![0; 4]).is_none());

        let blob = BoundedBytes::<4>::new(vec![9; 4]).unwrap();
        let back: BoundedBytes<4> =
            from_canonical_bytes(&to_canonical_bytes(&blob).unwrap()).unwrap();
        assert_eq!(back.into_checked(), Ok(vec![9; 4]));
        assert!(BoundedBytes::<4>::new(vec![0; 5]).is_none());
    }

    #[test]
    fn over_the_cap_reports_the_announced_length() {
        let bytes = to_canonical_bytes(&vec![7u8; 10]).unwrap();
        let list: BoundedVec<u8, 3> = from_canonical_bytes(&bytes).unwrap();
        assert_eq!(list.items.capacity(), 3, "never allocates past the cap");
        assert_eq!(list.into_checked(), Err(10));

        let blob = to_canonical_bytes(&serde_bytes::Bytes::new(&[1; 9])).unwrap();
        let blob: BoundedBytes<4> = from_canonical_bytes(&blob).unwrap();
        assert_eq!(blob.into_checked(), Err(9));
    }

    #[test]
    fn a_huge_announced_length_is_not_trusted() {
        // An array header announcing 2^32 - 1 elements with none following.
        let bytes = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert!(from_canonical_bytes::<BoundedVec<u8, 3>>(&bytes).is_err());
    }
}
