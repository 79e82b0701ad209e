//! How many bytes the first MsgPack value of a buffer occupies.
//!
//! The zero-copy `rmp-serde` reader does not report how far it read, so trailing bytes are
//! found by walking the value's markers once more. The walk is iterative (a count of items
//! still to skip, no recursion), bounds-checked and linear in the input.

/// The length in bytes of the MsgPack value at the start of `bytes`, or `None` if `bytes`
/// does not start with a complete, well-formed value.
pub(crate) fn value_extent(bytes: &[u8]) -> Option<usize> {
    let mut at = 0_usize;
    let mut pending = 1_usize;
    while pending > 0 {
        pending -= 1;
        let marker = *bytes.get(at)?;
        at += 1;
        let (children, skip) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, 0),
            0x80..=0x8f => (2 * usize::from(marker & 0x0f), 0),
            0x90..=0x9f => (usize::from(marker & 0x0f), 0),
            0xa0..=0xbf => (0, usize::from(marker & 0x1f)),
            0xc4 | 0xd9 => (0, read_len(bytes, &mut at, 1)?),
            0xc5 | 0xda => (0, read_len(bytes, &mut at, 2)?),
            0xc6 | 0xdb => (0, read_len(bytes, &mut at, 4)?),
            0xc7 => (0, read_len(bytes, &mut at, 1)?.checked_add(1)?),
            0xc8 => (0, read_len(bytes, &mut at, 2)?.checked_add(1)?),
            0xc9 => (0, read_len(bytes, &mut at, 4)?.checked_add(1)?),
            0xcc | 0xd0 => (0, 1),
            0xcd | 0xd1 => (0, 2),
            0xca | 0xce | 0xd2 => (0, 4),
            0xcb | 0xcf | 0xd3 => (0, 8),
            0xd4 => (0, 2),
            0xd5 => (0, 3),
            0xd6 => (0, 5),
            0xd7 => (0, 9),
            0xd8 => (0, 17),
            0xdc => (read_len(bytes, &mut at, 2)?, 0),
            0xdd => (read_len(bytes, &mut at, 4)?, 0),
            0xde => (read_len(bytes, &mut at, 2)?.checked_mul(2)?, 0),
            0xdf => (read_len(bytes, &mut at, 4)?.checked_mul(2)?, 0),
            // 0xc1 is reserved: never valid MsgPack.
            0xc1 => return None,
        };
        at = at.checked_add(skip)?;
        if at > bytes.len() {
            return None;
        }
        pending = pending.checked_add(children)?;
        // Every pending item needs at least one more byte.
        if pending > bytes.len() - at {
            return None;
        }
    }
    Some(at)
}

/// Reads a big-endian length of `width` bytes at `*at` and advances past it.
fn read_len(bytes: &[u8], at: &mut usize, width: usize) -> Option<usize> {
    let end = at.checked_add(width)?;
    let field = bytes.get(*at..end)?;
    *at = end;
    let value = field
        .iter()
        .fold(0_u64, |acc, &b| (acc << 8) | u64::from(b));
    usize::try_from(value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn scalars_and_containers() {
        assert_eq!(value_extent(&[0x05]), Some(1));
        assert_eq!(value_extent(&[0xcd, 1, 2, 0xff]), Some(3));
        assert_eq!(value_extent(&[0x92, 0x01, 0xa2, b'h', b'i', 0x00]), Some(5));
        assert_eq!(value_extent(&[0xc4, 2, 9, 9]), Some(4));
        assert_eq!(value_extent(&[0x81, 0x01, 0x02]), Some(3));
        assert_eq!(value_extent(&[0xd6, 1, 0, 0, 0, 0]), Some(6));
    }

    #[test]
    fn incomplete_or_invalid_values() {
        assert_eq!(value_extent(&[]), None);
        assert_eq!(value_extent(&[0x92, 0x01]), None);
        assert_eq!(value_extent(&[0xc4, 3, 9]), None);
        assert_eq!(value_extent(&[0xc1]), None);
        assert_eq!(value_extent(&[0xdd, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(value_extent(&[0xdf, 0xff, 0xff, 0xff, 0xff, 0x01]), None);
    }

    proptest! {
        #[test]
        fn extent_of_an_encoding_is_its_length(
            value in (
                any::<i64>(),
                ".{0,40}",
                proptest::collection::vec(any::<u8>(), 0..300),
                proptest::collection::btree_map(any::<u16>(), any::<Option<f64>>(), 0..20),
            ),
            tail in proptest::collection::vec(any::<u8>(), 0..8),
        ) {
            let (n, s, b, m): (i64, String, Vec<u8>, BTreeMap<u16, Option<f64>>) = value;
            let mut bytes = rmp_serde::to_vec(&(n, s, serde_bytes::ByteBuf::from(b), m)).unwrap();
            let len = bytes.len();
            bytes.extend_from_slice(&tail);
            prop_assert_eq!(value_extent(&bytes), Some(len));
        }

        #[test]
        fn any_input_is_handled(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Some(len) = value_extent(&bytes) {
                prop_assert!(len >= 1 && len <= bytes.len());
            }
        }
    }
}
