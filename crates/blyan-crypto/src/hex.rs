//! Lowercase hex text for the fixed-size byte types (`Hash`, `Address`, `PeerId`, keys).

use core::fmt;

/// Why a hex string could not be parsed into a fixed-size value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The string does not have exactly `2 * N` characters.
    #[error("expected {expected} hex characters, got {actual}")]
    WrongLength {
        /// Required number of hex characters.
        expected: usize,
        /// Number of characters (bytes) in the input.
        actual: usize,
    },
    /// A byte of the input is not an ASCII hex digit.
    #[error("invalid hex character {byte:#04x} at position {index}")]
    InvalidChar {
        /// Byte offset of the bad character.
        index: usize,
        /// The offending byte.
        byte: u8,
    },
}

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Writes `bytes` as lowercase hex.
pub(crate) fn write_hex(f: &mut fmt::Formatter<'_>, bytes: &[u8]) -> fmt::Result {
    for b in bytes {
        let hi = DIGITS[usize::from(b >> 4)];
        let lo = DIGITS[usize::from(b & 0x0f)];
        write!(f, "{}{}", char::from(hi), char::from(lo))?;
    }
    Ok(())
}

/// Lowercase hex of `bytes` as a `String`.
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn nibble(byte: u8, index: usize) -> Result<u8, ParseError> {
    match byte {
        b'0'..=b'9' => Ok(byte - b'0'),
        b'a'..=b'f' => Ok(byte - b'a' + 10),
        // Upper case is accepted on input (people paste it); output is always lower case.
        b'A'..=b'F' => Ok(byte - b'A' + 10),
        _ => Err(ParseError::InvalidChar { index, byte }),
    }
}

/// Parses exactly `2 * N` hex characters (either case) into `N` bytes.
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Result<[u8; N], ParseError> {
    let input = s.as_bytes();
    if input.len() != 2 * N {
        return Err(ParseError::WrongLength {
            expected: 2 * N,
            actual: input.len(),
        });
    }
    let mut out = [0u8; N];
    for (i, (slot, pair)) in out.iter_mut().zip(input.chunks_exact(2)).enumerate() {
        if let [hi, lo] = *pair {
            *slot = (nibble(hi, 2 * i)? << 4) | nibble(lo, 2 * i + 1)?;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let bytes = [0x00, 0x7f, 0xab, 0xff];
        let text = to_hex(&bytes);
        assert_eq!(text, "007fabff");
        assert_eq!(parse_hex::<4>(&text), Ok(bytes));
        assert_eq!(parse_hex::<4>("007FABFF"), Ok(bytes));
        assert_eq!(
            parse_hex::<4>("007fab"),
            Err(ParseError::WrongLength {
                expected: 8,
                actual: 6
            })
        );
        assert_eq!(
            parse_hex::<4>("007fabfg"),
            Err(ParseError::InvalidChar {
                index: 7,
                byte: b'g'
            })
        );
        // Multi-byte UTF-8 is rejected by length or by character, never by a panic.
        assert!(parse_hex::<2>("é00").is_err());
    }
}
