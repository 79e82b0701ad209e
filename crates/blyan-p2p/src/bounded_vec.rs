//! A list with a length cap that decoding checks before it allocates.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;

use serde::de::{Error as _, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::MessageError;

/// A `Vec<T>` of at most `MAX` items, encoded exactly like a `Vec<T>` (a MsgPack array).
///
/// Decoding reads the array header first and refuses a length over `MAX` before any item is
/// read or any memory is reserved; the capacity reserved is `min(announced, MAX)`, so a
/// peer cannot make us allocate for items it never sends. Building one from a longer list
/// is a [`MessageError::TooMany`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundedVec<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> BoundedVec<T, MAX> {
    /// The cap.
    pub const MAX: usize = MAX;

    /// An empty list.
    pub const fn new() -> Self {
        Self(Vec::new())
    }

    /// Wraps `items`; `what` names the field in the error if there are more than `MAX`.
    pub fn try_new(items: Vec<T>, what: &'static str) -> Result<Self, MessageError> {
        if items.len() > MAX {
            return Err(MessageError::TooMany {
                what,
                len: items.len(),
                max: MAX,
            });
        }
        Ok(Self(items))
    }

    /// Keeps the first `MAX` items of `items` and drops the rest (for answers that may be
    /// shortened, such as a batch of headers).
    pub fn truncating(mut items: Vec<T>) -> Self {
        items.truncate(MAX);
        Self(items)
    }

    /// The items.
    pub fn into_inner(self) -> Vec<T> {
        self.0
    }
}

impl<T, const MAX: usize> Default for BoundedVec<T, MAX> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T, const MAX: usize> Deref for BoundedVec<T, MAX> {
    type Target = [T];

    fn deref(&self) -> &[T] {
        &self.0
    }
}

impl<T: Serialize, const MAX: usize> Serialize for BoundedVec<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for BoundedVec<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(BoundedVisitor::<T, MAX>(PhantomData))
    }
}

struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
    type Value = BoundedVec<T, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {MAX} items")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let announced = seq.size_hint().unwrap_or(0);
        if announced > MAX {
            return Err(A::Error::invalid_length(announced, &self));
        }
        let mut items = Vec::with_capacity(announced);
        while let Some(item) = seq.next_element()? {
            if items.len() == MAX {
                return Err(A::Error::invalid_length(MAX + 1, &self));
            }
            items.push(item);
        }
        Ok(BoundedVec(items))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_wire::{from_canonical_bytes, to_canonical_bytes};

    #[test]
    fn encodes_like_a_vec_and_refuses_long_lists() -> Result<(), Box<dyn std::error::Error>> {
        let list: BoundedVec<u32, 3> = BoundedVec::try_new(vec![1, 2, 3], "test")?;
        let bytes = to_canonical_bytes(&list)?;
        assert_eq!(bytes, to_canonical_bytes(&vec![1u32, 2, 3])?);
        assert_eq!(from_canonical_bytes::<BoundedVec<u32, 3>>(&bytes)?, list);
        assert!(from_canonical_bytes::<BoundedVec<u32, 2>>(&bytes).is_err());
        assert!(matches!(
            BoundedVec::<u32, 2>::try_new(vec![1, 2, 3], "test"),
            Err(MessageError::TooMany { len: 3, max: 2, .. })
        ));
        assert_eq!(BoundedVec::<u32, 2>::truncating(vec![1, 2, 3]).len(), 2);
        Ok(())
    }

    #[test]
    fn a_huge_announced_length_is_refused_before_reading() {
        // MsgPack array32 header announcing 2^32 - 1 items, followed by nothing.
        let bytes = [0xdd, 0xff, 0xff, 0xff, 0xff];
        assert!(from_canonical_bytes::<BoundedVec<u64, 16>>(&bytes).is_err());
    }
}
