//! The one Ed25519 validity rule, shared by single and batch verification.
//!
//! A signature `(R, S)` by key `A` over message `M` is valid iff
//!
//! 1. `A` is canonically encoded, on the curve, not of small order (checked once, when the
//!    [`PublicKey`] is made);
//! 2. `S < ℓ` (canonical scalar);
//! 3. `R` is canonically encoded (y < p; x = 0 only with the sign bit clear), on the curve and
//!    not of small order;
//! 4. `[8]([S]B − R − [k]A) = 0` with `k = SHA-512(R ‖ A ‖ M) mod ℓ` (the cofactored equation
//!    of RFC 8032 §5.1.7).
//!
//! Rules 1–3 are `verify_strict`'s. Rule 4 is cofactored where `verify_strict` is
//! cofactorless, because only the cofactored equation lets a batch decide exactly like the
//! single check: a cofactorless batch multiplies each residual by a random `z`, and a residual
//! that is a non-zero torsion point vanishes whenever `z` is a multiple of its order, so the
//! batch would accept what the single check rejects ("Taming the many EdDSAs", Chalkias et al.,
//! 2020; ZIP-215). The two rules differ only on signatures whose `A` or `R` have a torsion
//! component: no honest signer produces those.

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use sha2::Digest as _;

use crate::keys::PublicKey;
use crate::signature::{Signature, SignatureError};

/// True iff the little-endian y coordinate (sign bit masked) is at least p = 2^255 − 19.
fn y_is_unreduced(bytes: &[u8; 32]) -> bool {
    // y >= p iff bits 8..255 are all ones and the low byte is >= 0xed.
    let [low, middle @ .., high] = bytes;
    *high & 0x7f == 0x7f && middle.iter().all(|b| *b == 0xff) && *low >= 0xed
}

/// The canonical encodings of the 8 points of small order (the torsion subgroup): identity,
/// the order-2 point, two of order 4, four of order 8. A canonical encoding is unique, so
/// comparing bytes decides small order without curve arithmetic.
pub(crate) const SMALL_ORDER_ENCODINGS: [[u8; 32]; 8] = [
    hex32("0100000000000000000000000000000000000000000000000000000000000000"),
    hex32("ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"),
    hex32("0000000000000000000000000000000000000000000000000000000000000000"),
    hex32("0000000000000000000000000000000000000000000000000000000000000080"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a"),
    hex32("c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"),
    hex32("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc85"),
];

/// Compile-time hex for the constants above.
const fn hex32(s: &str) -> [u8; 32] {
    const fn nibble(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            _ => 0,
        }
    }
    let b = s.as_bytes();
    let mut out = [0u8; 32];
    let mut i = 0;
    while i < 32 && 2 * i + 1 < b.len() {
        out[i] = (nibble(b[2 * i]) << 4) | nibble(b[2 * i + 1]);
        i += 1;
    }
    out
}

/// Why an encoding is not an acceptable point (key or `R`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StrictPointError {
    NonCanonical,
    NotOnCurve,
    SmallOrder,
}

/// Decodes a point that is canonically encoded and not of small order.
///
/// All checks except decompression are on the bytes: y < p; the encoding is not one of the
/// eight small-order encodings; and not "x = 0 with the sign bit set", which only the
/// identity and the order-2 point (y = ±1) can produce. No re-compression (a field
/// inversion) and no cofactor multiplication are needed.
pub(crate) fn decode_strict_point(bytes: &[u8; 32]) -> Result<EdwardsPoint, StrictPointError> {
    if y_is_unreduced(bytes) {
        return Err(StrictPointError::NonCanonical);
    }
    let mut y = *bytes;
    y[31] &= 0x7f;
    let sign_bit_set = bytes[31] & 0x80 != 0;
    if sign_bit_set && (y == SMALL_ORDER_ENCODINGS[0] || y == SMALL_ORDER_ENCODINGS[1]) {
        return Err(StrictPointError::NonCanonical);
    }
    if SMALL_ORDER_ENCODINGS.contains(bytes) {
        return Err(StrictPointError::SmallOrder);
    }
    CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(StrictPointError::NotOnCurve)
}

/// A signature that passed the encoding checks (rules 2 and 3) with its challenge `k`.
pub(crate) struct Prepared {
    pub(crate) r: EdwardsPoint,
    pub(crate) s: Scalar,
    pub(crate) k: Scalar,
}

/// Applies rules 2 and 3 and computes `k = SHA-512(R ‖ A ‖ M) mod ℓ`, with `M` given in parts.
pub(crate) fn prepare(
    public_key: &PublicKey,
    message: &[&[u8]],
    signature: &Signature,
) -> Result<Prepared, SignatureError> {
    let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(signature.s_bytes()))
        .ok_or(SignatureError::NonCanonicalS)?;
    let r_bytes = signature.r_bytes();
    let r = decode_strict_point(&r_bytes).map_err(|e| match e {
        StrictPointError::NonCanonical => SignatureError::NonCanonicalR,
        StrictPointError::NotOnCurve => SignatureError::RNotOnCurve,
        StrictPointError::SmallOrder => SignatureError::SmallOrderR,
    })?;
    let mut h = sha2::Sha512::new();
    h.update(r_bytes);
    h.update(public_key.as_bytes());
    for part in message {
        h.update(part);
    }
    let k = Scalar::from_bytes_mod_order_wide(&h.finalize().into());
    Ok(Prepared { r, s, k })
}

/// Rule 4 for one prepared signature.
pub(crate) fn equation_holds(public_key: &PublicKey, prepared: &Prepared) -> bool {
    let minus_a = -public_key.point();
    // [S]B − [k]A − R, then clear the cofactor.
    let residual =
        EdwardsPoint::vartime_double_scalar_mul_basepoint(&prepared.k, &minus_a, &prepared.s)
            - prepared.r;
    residual.mul_by_cofactor().is_identity()
}

/// Verifies one signature over the message given in parts.
pub(crate) fn verify_single(
    public_key: &PublicKey,
    message: &[&[u8]],
    signature: &Signature,
) -> Result<(), SignatureError> {
    let prepared = prepare(public_key, message, signature)?;
    if equation_holds(public_key, &prepared) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyPair;

    fn unhex<const N: usize>(s: &str) -> [u8; N] {
        crate::hex::parse_hex::<N>(s).unwrap()
    }

    fn unhex_vec(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len() / 2)
            .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
            .collect()
    }

    /// RFC 8032 §7.1: TEST 1, 2, 3, 1024 and SHA(abc). Raw Ed25519, no Blyan domain.
    #[test]
    fn rfc8032_known_answers() {
        let cases: [(&str, &str, Vec<u8>, &str); 5] = [
            (
                "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
                "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
                Vec::new(),
                "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
            ),
            (
                "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
                "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
                vec![0x72],
                "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
            ),
            (
                "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
                "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
                vec![0xaf, 0x82],
                "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
            ),
            (
                "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
                "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
                unhex_vec(include_str!("testdata/rfc8032_test1024_msg.hex")),
                "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
            ),
            (
                "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
                "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
                // SHA-512("abc")
                unhex_vec(
                    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
                ),
                "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b58909351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
            ),
        ];
        for (seed, public, message, signature) in cases {
            let key = KeyPair::from_seed(&unhex(seed));
            assert_eq!(key.public_key().to_bytes(), unhex::<32>(public));
            let sig = key.sign_raw(&message);
            assert_eq!(sig.to_bytes(), unhex::<64>(signature));
            assert_eq!(key.public_key().verify_raw(&message, &sig), Ok(()));
            let mut wrong = message.clone();
            wrong.push(0);
            assert_eq!(
                key.public_key().verify_raw(&wrong, &sig),
                Err(SignatureError::Mismatch)
            );
        }
        assert_eq!(
            unhex_vec(include_str!("testdata/rfc8032_test1024_msg.hex")).len(),
            1023
        );
    }

    #[test]
    fn small_order_encodings_are_the_torsion_subgroup() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        for enc in SMALL_ORDER_ENCODINGS {
            let point = CompressedEdwardsY(enc).decompress().unwrap();
            assert!(point.is_small_order());
            assert_eq!(point.compress().to_bytes(), enc, "canonical");
        }
        for t in EIGHT_TORSION {
            assert!(SMALL_ORDER_ENCODINGS.contains(&t.compress().to_bytes()));
        }
        // Eight distinct encodings.
        for (i, a) in SMALL_ORDER_ENCODINGS.iter().enumerate() {
            assert!(!SMALL_ORDER_ENCODINGS[i + 1..].contains(a));
        }
    }

    #[test]
    fn unreduced_y_detection() {
        let mut p = [0xffu8; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        assert!(y_is_unreduced(&p));
        p[0] = 0xec; // p − 1
        assert!(!y_is_unreduced(&p));
        p[0] = 0xed;
        p[31] = 0xff; // p with the sign bit
        assert!(y_is_unreduced(&p));
        assert!(!y_is_unreduced(&[0u8; 32]));
    }
}
