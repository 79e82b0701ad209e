//! The canonical MsgPack encoding: the bytes consensus hashes and the payload of every message.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::CodecError;
use crate::limits::Limits;
use crate::value_extent::value_extent;

/// A first guess for the output buffer; most messages fit, larger ones grow it geometrically.
const INITIAL_CAPACITY: usize = 256;

/// Encodes `value` in the canonical compact MsgPack form.
///
/// Structs are arrays of their fields in declaration order (no field names), byte fields
/// marked `#[serde(with = "serde_bytes")]` are MsgPack `bin`, integers take their shortest
/// MsgPack form, enum variants are written by name. The same value always gives the same
/// bytes, provided its `Serialize` impl is itself deterministic (use `BTreeMap`, not
/// `HashMap`). This is the encoding consensus hashes; it is never compressed.
pub fn to_canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::with_capacity(INITIAL_CAPACITY);
    encode_into(&mut out, value)?;
    Ok(out)
}

/// Decodes one value from its canonical MsgPack bytes, with the default [`Limits`].
///
/// The whole input must be one value: trailing bytes are an error. Decoding is lenient about
/// integer widths (a peer may send `42` as a `u64`); use [`from_canonical_bytes_exact`] where
/// the exact bytes matter.
pub fn from_canonical_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    decode_body(bytes, &Limits::default())
}

/// Decodes one value and checks that `bytes` is exactly its canonical encoding.
///
/// Costs one re-encoding. Use it where a second encoding of the same value would be a
/// malleability problem (e.g. when the received bytes themselves are stored or hashed).
pub fn from_canonical_bytes_exact<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, CodecError> {
    let value: T = from_canonical_bytes(bytes)?;
    if to_canonical_bytes(&value)? == bytes {
        Ok(value)
    } else {
        Err(CodecError::NonCanonical)
    }
}

/// Appends the canonical encoding of `value` to `out`.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    value: &T,
) -> Result<(), CodecError> {
    // `Serializer::new` is the compact configuration: structs as arrays, bytes as bin.
    let mut serializer = rmp_serde::Serializer::new(out);
    value.serialize(&mut serializer)?;
    Ok(())
}

/// Decodes exactly one value from `bytes`, enforcing the nesting limit.
pub(crate) fn decode_body<T: DeserializeOwned>(
    bytes: &[u8],
    limits: &Limits,
) -> Result<T, CodecError> {
    // The zero-copy slice reader: byte and string fields are borrowed, not copied through
    // an intermediate buffer. It does not report its position, so the value's extent is
    // measured separately (only after a successful decode).
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes);
    deserializer.set_max_depth(limits.max_depth);
    let value = T::deserialize(&mut deserializer)?;
    // A value that decoded is well-formed, so its extent is always found.
    let len = value_extent(bytes).ok_or(CodecError::Truncated)?;
    match bytes.len() - len {
        0 => Ok(value),
        remaining => Err(CodecError::TrailingBytes { remaining }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Pair {
        a: u8,
        #[serde(with = "serde_bytes")]
        b: Vec<u8>,
    }

    #[test]
    fn struct_is_an_array_and_bytes_are_bin() {
        let bytes = to_canonical_bytes(&Pair {
            a: 7,
            b: vec![1, 2],
        })
        .unwrap();
        // fixarray(2), fixint 7, bin8 len 2, 1, 2
        assert_eq!(bytes, [0x92, 0x07, 0xc4, 0x02, 0x01, 0x02]);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut bytes = to_canonical_bytes(&Pair { a: 1, b: vec![] }).unwrap();
        bytes.push(0);
        let err = from_canonical_bytes::<Pair>(&bytes).unwrap_err();
        assert!(
            matches!(err, CodecError::TrailingBytes { remaining: 1 }),
            "{err}"
        );
    }

    #[test]
    fn missing_bytes_are_truncated() {
        let bytes = to_canonical_bytes(&Pair {
            a: 1,
            b: vec![9; 10],
        })
        .unwrap();
        let err = from_canonical_bytes::<Pair>(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(matches!(err, CodecError::Truncated), "{err}");
    }

    #[test]
    fn wide_integer_is_accepted_but_not_exact() {
        // fixarray(2), u64 marker with value 7, bin8 len 0
        let wide = [0x92, 0xcf, 0, 0, 0, 0, 0, 0, 0, 7, 0xc4, 0x00];
        let value: Pair = from_canonical_bytes(&wide).unwrap();
        assert_eq!(value, Pair { a: 7, b: vec![] });
        let err = from_canonical_bytes_exact::<Pair>(&wide).unwrap_err();
        assert!(matches!(err, CodecError::NonCanonical), "{err}");
        let exact = to_canonical_bytes(&value).unwrap();
        assert_eq!(from_canonical_bytes_exact::<Pair>(&exact).unwrap(), value);
    }

    #[test]
    fn nesting_beyond_the_limit_is_an_error() {
        // 200 nested one-element arrays around a nil, decoded as untyped nested options.
        #[derive(Debug, Deserialize)]
        struct Nest(#[allow(dead_code)] Vec<Option<Box<Nest>>>);
        let mut bytes = vec![0x91; 200];
        bytes.push(0x90);
        let limits = Limits {
            max_depth: 16,
            ..Limits::default()
        };
        let err = decode_body::<Nest>(&bytes, &limits).unwrap_err();
        assert!(matches!(err, CodecError::Decode(_)), "{err}");
        let ok = Limits {
            max_depth: 1024,
            ..Limits::default()
        };
        decode_body::<Nest>(&bytes, &ok).unwrap();
    }
}
