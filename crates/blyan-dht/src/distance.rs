//! The Kademlia key space: 256-bit keys and the XOR metric between them.

use std::fmt;

use blyan_crypto::{PeerId, sha256};

/// Number of bits in a key, and so the number of buckets in a routing table.
pub const KEY_BITS: usize = 256;

/// A point in the 256-bit Kademlia key space.
///
/// Peer ids are keys as they are (a `PeerId` is already the SHA-256 of a public key, so ids
/// spread evenly over the space); a value's key is the SHA-256 of its name.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key([u8; 32]);

impl Key {
    /// Wraps 32 raw bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key under which a value named `name` is stored: SHA-256 of the name.
    pub fn for_value(name: &[u8]) -> Self {
        Self(sha256(name).to_bytes())
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// XOR distance from `self` to `other`.
    pub fn distance(&self, other: &Key) -> Distance {
        let mut out = [0u8; 32];
        for ((o, a), b) in out.iter_mut().zip(&self.0).zip(&other.0) {
            *o = a ^ b;
        }
        Distance(out)
    }

    /// The one key at distance `distance` from `self` (XOR is its own inverse, which is what
    /// makes the metric unidirectional).
    pub fn at_distance(&self, distance: &Distance) -> Key {
        let mut out = [0u8; 32];
        for ((o, a), d) in out.iter_mut().zip(&self.0).zip(&distance.0) {
            *o = a ^ d;
        }
        Key(out)
    }
}

impl From<PeerId> for Key {
    fn from(peer: PeerId) -> Self {
        Self(peer.to_bytes())
    }
}

impl From<&PeerId> for Key {
    fn from(peer: &PeerId) -> Self {
        Self(peer.to_bytes())
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key(")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// XOR distance between two keys, ordered as a 256-bit big-endian unsigned integer.
///
/// The laws Kademlia relies on (property-tested): `d(a, a) = 0`; `d(a, b) = 0` only if
/// `a = b`; `d(a, b) = d(b, a)`; `d(a, c) = d(a, b) ^ d(b, c)`, so `d(a, c) <= d(a, b) + d(b, c)`;
/// and unidirectionality: for a key `a` and a distance `d` exactly one `b` has `d(a, b) = d`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Distance([u8; 32]);

impl Ord for Distance {
    /// As 256-bit big-endian integers, compared a 64-bit word at a time (lookups compare
    /// distances in their inner loops; this beats a byte-wise `memcmp` call).
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        for (a, b) in self.0.chunks_exact(8).zip(other.0.chunks_exact(8)) {
            let mut x = [0u8; 8];
            let mut y = [0u8; 8];
            x.copy_from_slice(a);
            y.copy_from_slice(b);
            match u64::from_be_bytes(x).cmp(&u64::from_be_bytes(y)) {
                std::cmp::Ordering::Equal => {}
                unequal => return unequal,
            }
        }
        std::cmp::Ordering::Equal
    }
}

impl PartialOrd for Distance {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Distance {
    /// The distance from a key to itself.
    pub const ZERO: Distance = Distance([0; 32]);

    /// The largest possible distance.
    pub const MAX: Distance = Distance([0xff; 32]);

    /// Wraps 32 raw big-endian bytes.
    pub const fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw 32 big-endian bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Number of leading zero bits (256 for [`Distance::ZERO`]): the length of the prefix the
    /// two keys share.
    pub fn leading_zeros(&self) -> u32 {
        let mut zeros = 0;
        for byte in &self.0 {
            zeros += byte.leading_zeros();
            if *byte != 0 {
                break;
            }
        }
        zeros
    }

    /// The routing-table bucket a key at this distance from the local key belongs to:
    /// bucket `i` holds distances in `[2^i, 2^(i+1))`, so bucket 255 is the far half of the
    /// key space and bucket 0 the single closest key. `None` for distance zero (our own key).
    pub fn bucket_index(&self) -> Option<usize> {
        let zeros = usize::try_from(self.leading_zeros()).ok()?;
        (KEY_BITS - 1).checked_sub(zeros)
    }
}

impl fmt::Debug for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Distance(lz={}, ", self.leading_zeros())?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key() -> impl Strategy<Value = Key> {
        any::<[u8; 32]>().prop_map(Key::from_bytes)
    }

    /// 256-bit big-endian addition with carry, for the triangle inequality.
    fn add(a: &Distance, b: &Distance) -> (bool, [u8; 32]) {
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for i in (0..32).rev() {
            let s = u16::from(a.0[i]) + u16::from(b.0[i]) + carry;
            out[i] = (s & 0xff) as u8;
            carry = s >> 8;
        }
        (carry != 0, out)
    }

    proptest! {
        #[test]
        fn identity_and_zero(a in key(), b in key()) {
            prop_assert_eq!(a.distance(&a), Distance::ZERO);
            prop_assert_eq!(a.distance(&b) == Distance::ZERO, a == b);
        }

        #[test]
        fn symmetry(a in key(), b in key()) {
            prop_assert_eq!(a.distance(&b), b.distance(&a));
        }

        #[test]
        fn xor_triangle(a in key(), b in key(), c in key()) {
            let ab = a.distance(&b);
            let bc = b.distance(&c);
            let ac = a.distance(&c);
            // d(a,c) = d(a,b) ^ d(b,c), and XOR never exceeds the sum.
            prop_assert_eq!(ac, Key::from_bytes(ab.0).distance(&Key::from_bytes(bc.0)));
            let (overflow, sum) = add(&ab, &bc);
            prop_assert!(overflow || ac <= Distance(sum));
        }

        #[test]
        fn unidirectional(a in key(), b in key(), c in key()) {
            let d = a.distance(&b);
            prop_assert_eq!(a.at_distance(&d), b);
            // Any other key is at another distance.
            prop_assert_eq!(a.distance(&c) == d, c == b);
        }

        #[test]
        fn bucket_index_matches_range(a in key(), b in key()) {
            let d = a.distance(&b);
            match d.bucket_index() {
                None => prop_assert_eq!(a, b),
                Some(i) => {
                    // 2^i <= d < 2^(i+1): bit i is the highest set bit.
                    let byte = 31 - i / 8;
                    prop_assert_eq!(d.0[byte] >> (i % 8), 1);
                    prop_assert!(d.0[..byte].iter().all(|x| *x == 0));
                }
            }
        }
    }

    proptest! {
        #[test]
        fn word_order_is_byte_order(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            prop_assert_eq!(Distance(a).cmp(&Distance(b)), a.cmp(&b));
        }
    }

    #[test]
    fn ordering_is_numeric() {
        let mut small = [0u8; 32];
        small[31] = 0xff;
        let mut big = [0u8; 32];
        big[0] = 1;
        assert!(Distance(small) < Distance(big));
        assert_eq!(Distance::MAX.bucket_index(), Some(255));
        assert_eq!(Distance::ZERO.leading_zeros(), 256);
        let mut one = [0u8; 32];
        one[31] = 1;
        assert_eq!(Distance(one).bucket_index(), Some(0));
    }
}
