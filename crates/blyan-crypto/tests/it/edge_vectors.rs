//! Batch and single verification must return the same verdict on every input, including the
//! edge cases of "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, 2020): small-order
//! keys and R, non-canonical S, non-canonical point encodings, mixed-order keys and R.

use blyan_crypto::{
    BatchItem, Domain, KeyPair, PublicKey, PublicKeyError, Signature, SignatureError, verify_batch,
};
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use proptest::prelude::*;
use sha2::Digest as _;

const DOMAIN: Domain = Domain::Tx;
const CHAIN: u32 = 7;

/// ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const L: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// One test input: raw key bytes, raw signature, payload.
#[derive(Debug, Clone)]
struct Vector {
    name: String,
    key: [u8; 32],
    sig: [u8; 64],
    payload: Vec<u8>,
}

fn challenge(r: &[u8; 32], a: &[u8; 32], payload: &[u8]) -> Scalar {
    let mut h = sha2::Sha512::new();
    h.update(r);
    h.update(a);
    h.update(DOMAIN.signing_message(CHAIN, payload));
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

/// A signature with chosen `R` (point and encoding) and `S = r + k·a`.
fn sig_from_parts(r_bytes: [u8; 32], s: Scalar) -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r_bytes);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

fn scalar(n: u64) -> Scalar {
    Scalar::from(n) * Scalar::from(0x9e37_79b9_7f4a_7c15u64) + Scalar::from(n + 3)
}

fn order8_point() -> EdwardsPoint {
    EIGHT_TORSION
        .iter()
        .copied()
        .find(|t| !(t + t + t + t).is_identity())
        .unwrap()
}

/// Encodings that decompress but are not canonical: y = p + k for small k, either sign bit,
/// and "x = 0 with the sign bit set".
fn non_canonical_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for k in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut bytes = [0xffu8; 32];
            bytes[0] = 0xed + k; // p = 2^255 − 19 has low byte 0xed
            bytes[31] = 0x7f | sign;
            if CompressedEdwardsY(bytes).decompress().is_some() {
                out.push(bytes);
            }
        }
    }
    for t in EIGHT_TORSION {
        let mut bytes = t.compress().to_bytes();
        if (t + t).is_identity() {
            bytes[31] |= 0x80; // x = 0: the sign bit must be clear
            out.push(bytes);
        }
    }
    out
}

/// The vectors: honest, malleated, small-order, non-canonical, mixed-order.
fn vectors() -> Vec<Vector> {
    let mut out = Vec::new();
    let payload = b"edge case payload".to_vec();
    let t8 = order8_point();

    // Honest signatures by a key from a seed.
    let honest = KeyPair::from_seed(&[9u8; 32]);
    let honest_sig = honest.sign(DOMAIN, CHAIN, &payload).to_bytes();
    out.push(Vector {
        name: "honest".into(),
        key: honest.public_key().to_bytes(),
        sig: honest_sig,
        payload: payload.clone(),
    });

    // S + ℓ and S + 2^253 (high bits), on an otherwise valid signature.
    let mut s_plus_l = honest_sig;
    let mut carry = 0u16;
    for (byte, l) in s_plus_l[32..].iter_mut().zip(L) {
        let sum = u16::from(*byte) + u16::from(l) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    out.push(Vector {
        name: "S + l".into(),
        key: honest.public_key().to_bytes(),
        sig: s_plus_l,
        payload: payload.clone(),
    });
    let mut s_high = honest_sig;
    s_high[63] |= 0xe0;
    out.push(Vector {
        name: "S high bits".into(),
        key: honest.public_key().to_bytes(),
        sig: s_high,
        payload: payload.clone(),
    });

    // A key with a known scalar: A = aB.
    let a = scalar(11);
    let a_point = ED25519_BASEPOINT_POINT * a;
    let a_bytes = a_point.compress().to_bytes();

    // Small-order R with S = k·a: the cofactored equation holds ([8]T = 0), so only the
    // small-order check rejects it. Also every small-order R with an honest-looking S.
    for (i, t) in EIGHT_TORSION.iter().enumerate() {
        let r_bytes = t.compress().to_bytes();
        let k = challenge(&r_bytes, &a_bytes, &payload);
        out.push(Vector {
            name: format!("small-order R #{i}, S = k·a"),
            key: a_bytes,
            sig: sig_from_parts(r_bytes, k * a),
            payload: payload.clone(),
        });
    }

    // Small-order A: with A = T and R = rB, S = r, the equation holds for any message.
    for (i, t) in EIGHT_TORSION.iter().enumerate() {
        let r = scalar(100 + i as u64);
        let r_bytes = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
        out.push(Vector {
            name: format!("small-order A #{i}"),
            key: t.compress().to_bytes(),
            sig: sig_from_parts(r_bytes, r),
            payload: payload.clone(),
        });
    }

    // Non-canonical encodings as R (with S = k·a so small-order ones would otherwise pass)
    // and as A (with R = rB, S = r: passes the equation whenever A decodes to small order).
    for (i, enc) in non_canonical_encodings().into_iter().enumerate() {
        let k = challenge(&enc, &a_bytes, &payload);
        out.push(Vector {
            name: format!("non-canonical R #{i}"),
            key: a_bytes,
            sig: sig_from_parts(enc, k * a),
            payload: payload.clone(),
        });
        let r = scalar(200 + i as u64);
        let r_bytes = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
        out.push(Vector {
            name: format!("non-canonical A #{i}"),
            key: enc,
            sig: sig_from_parts(r_bytes, r),
            payload: payload.clone(),
        });
    }

    // Mixed-order key A = aB + T8 signing honestly (R = rB, S = r + k·a), and mixed-order R
    // (R = rB + T8) under a prime-order key: residuals are torsion points.
    let mixed = a_point + t8;
    let mixed_bytes = mixed.compress().to_bytes();
    for m in 0..16u8 {
        let msg = vec![m; 3];
        let r = scalar(300 + u64::from(m));
        let r_bytes = (ED25519_BASEPOINT_POINT * r).compress().to_bytes();
        let k = challenge(&r_bytes, &mixed_bytes, &msg);
        out.push(Vector {
            name: format!("mixed-order A, message {m}"),
            key: mixed_bytes,
            sig: sig_from_parts(r_bytes, r + k * a),
            payload: msg.clone(),
        });
        let r_mixed = (ED25519_BASEPOINT_POINT * r + t8).compress().to_bytes();
        let k = challenge(&r_mixed, &a_bytes, &msg);
        out.push(Vector {
            name: format!("mixed-order R, message {m}"),
            key: a_bytes,
            sig: sig_from_parts(r_mixed, r + k * a),
            payload: msg,
        });
    }

    // A point not on the curve as R and as A.
    let mut off_curve = [0u8; 32];
    off_curve[0] = 2; // y = 2 gives a non-square x²
    if CompressedEdwardsY(off_curve).decompress().is_none() {
        out.push(Vector {
            name: "R not on curve".into(),
            key: a_bytes,
            sig: sig_from_parts(off_curve, a),
            payload: payload.clone(),
        });
        out.push(Vector {
            name: "A not on curve".into(),
            key: off_curve,
            sig: honest_sig,
            payload,
        });
    }
    out
}

/// What the single check says: key parse, then `PublicKey::verify`.
fn single(v: &Vector) -> Result<(), String> {
    let key = PublicKey::from_bytes(&v.key).map_err(|e| format!("key: {e}"))?;
    key.verify(DOMAIN, CHAIN, &v.payload, &Signature::from_bytes(v.sig))
        .map_err(|e| format!("sig: {e}"))
}

#[test]
fn batch_and_single_agree_on_every_vector() {
    let vectors = vectors();
    assert!(vectors.len() > 60, "vector set unexpectedly small");
    let filler = KeyPair::from_seed(&[1u8; 32]);
    let filler_pk = filler.public_key();
    let filler_sig = filler.sign(DOMAIN, CHAIN, b"filler");

    let mut accepted = 0;
    for v in &vectors {
        let verdict = single(v);
        let Ok(key) = PublicKey::from_bytes(&v.key) else {
            // Keys are checked once, at parse time, for both paths alike.
            assert!(verdict.is_err(), "{}", v.name);
            continue;
        };
        let sig = Signature::from_bytes(v.sig);
        let item = BatchItem {
            public_key: &key,
            domain: DOMAIN,
            chain_id: CHAIN,
            message: &v.payload,
            signature: &sig,
        };
        let filler_item = BatchItem {
            public_key: &filler_pk,
            domain: DOMAIN,
            chain_id: CHAIN,
            message: b"filler",
            signature: &filler_sig,
        };
        // Alone, and at position 2 of a batch of 5 otherwise valid signatures.
        let alone = verify_batch(&[item]);
        let mixed = verify_batch(&[filler_item, filler_item, item, filler_item, filler_item]);
        match &verdict {
            Ok(()) => {
                accepted += 1;
                assert_eq!(alone, Ok(()), "{}", v.name);
                assert_eq!(mixed, Ok(()), "{}", v.name);
            }
            Err(_) => {
                assert!(
                    alone.is_err(),
                    "{}: batch accepted what single rejected",
                    v.name
                );
                let err = mixed.expect_err(&v.name);
                assert_eq!(err.indices().collect::<Vec<_>>(), vec![2], "{}", v.name);
            }
        }
    }
    // Honest plus the 32 mixed-order vectors (cofactored rule) are the accepted ones.
    assert_eq!(accepted, 1 + 32);
}

#[test]
fn rejections_carry_the_right_reason() {
    let by_name = |prefix: &str| -> Vec<Vector> {
        vectors()
            .into_iter()
            .filter(|v| v.name.starts_with(prefix))
            .collect()
    };
    for v in by_name("S + l").into_iter().chain(by_name("S high bits")) {
        assert_eq!(
            single(&v),
            Err(format!("sig: {}", SignatureError::NonCanonicalS))
        );
    }
    for v in by_name("small-order R") {
        assert_eq!(
            single(&v),
            Err(format!("sig: {}", SignatureError::SmallOrderR)),
            "{}",
            v.name
        );
    }
    for v in by_name("small-order A") {
        assert_eq!(
            PublicKey::from_bytes(&v.key),
            Err(PublicKeyError::SmallOrder),
            "{}",
            v.name
        );
    }
    for v in by_name("non-canonical R") {
        assert_eq!(
            single(&v),
            Err(format!("sig: {}", SignatureError::NonCanonicalR)),
            "{}",
            v.name
        );
    }
    for v in by_name("non-canonical A") {
        assert_eq!(
            PublicKey::from_bytes(&v.key),
            Err(PublicKeyError::NonCanonical),
            "{}",
            v.name
        );
    }
}

/// Honest signatures are accepted by ed25519-dalek's `verify_strict` too, and everything
/// `verify_strict` accepts among the vectors, we accept.
#[test]
fn agrees_with_verify_strict_except_mixed_order() {
    for v in vectors() {
        let Ok(dalek_key) = ed25519_dalek::VerifyingKey::from_bytes(&v.key) else {
            continue;
        };
        let message = DOMAIN.signing_message(CHAIN, &v.payload);
        let strict = dalek_key
            .verify_strict(&message, &ed25519_dalek::Signature::from_bytes(&v.sig))
            .is_ok();
        let ours = single(&v).is_ok();
        if strict {
            assert!(ours, "{}: verify_strict accepts, we reject", v.name);
        }
        if ours && !strict {
            assert!(v.name.starts_with("mixed-order"), "{}", v.name);
        }
    }
}

/// Why the rule is cofactored: with a mixed-order key, ed25519-dalek's cofactorless
/// `verify_batch` accepts signatures that its `verify_strict` rejects, even after every
/// encoding pre-check (canonical S, R, A; no small-order R, A) passes.
#[test]
fn cofactorless_batch_cannot_match_verify_strict() {
    let found = vectors()
        .into_iter()
        .filter(|v| v.name.starts_with("mixed-order"))
        .any(|v| {
            let key = ed25519_dalek::VerifyingKey::from_bytes(&v.key).unwrap();
            assert!(!key.is_weak());
            let sig = ed25519_dalek::Signature::from_bytes(&v.sig);
            let message = DOMAIN.signing_message(CHAIN, &v.payload);
            let strict = key.verify_strict(&message, &sig).is_ok();
            let batch = ed25519_dalek::verify_batch(&[&message], &[sig], &[key]).is_ok();
            !strict && batch
        });
    assert!(
        found,
        "expected a cofactorless batch/strict disagreement among the vectors"
    );
}

proptest! {
    // Each case verifies up to 8 signatures twice in an unoptimized test build.
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Random batches of valid and corrupted signatures: the batch names exactly the
    /// signatures the single check rejects.
    #[test]
    fn batch_names_exactly_the_single_failures(
        seeds in proptest::collection::vec(any::<[u8; 32]>(), 1..8),
        corrupt in proptest::collection::vec((any::<bool>(), 0usize..64, 1u8..=255), 8),
    ) {
        let keys: Vec<KeyPair> = seeds.iter().map(KeyPair::from_seed).collect();
        let pks: Vec<PublicKey> = keys.iter().map(KeyPair::public_key).collect();
        let msgs: Vec<Vec<u8>> = (0..keys.len()).map(|i| vec![i as u8; i + 1]).collect();
        let sigs: Vec<Signature> = keys
            .iter()
            .zip(&msgs)
            .zip(&corrupt)
            .map(|((k, m), (flip, at, mask))| {
                let mut bytes = k.sign(DOMAIN, CHAIN, m).to_bytes();
                if *flip {
                    bytes[*at] ^= mask;
                }
                Signature::from_bytes(bytes)
            })
            .collect();
        let items: Vec<BatchItem<'_>> = (0..keys.len())
            .map(|i| BatchItem {
                public_key: &pks[i],
                domain: DOMAIN,
                chain_id: CHAIN,
                message: &msgs[i],
                signature: &sigs[i],
            })
            .collect();
        let expected: Vec<(usize, SignatureError)> = items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| {
                it.public_key
                    .verify(it.domain, it.chain_id, it.message, it.signature)
                    .err()
                    .map(|e| (i, e))
            })
            .collect();
        match verify_batch(&items) {
            Ok(()) => prop_assert!(expected.is_empty()),
            Err(err) => prop_assert_eq!(err.invalid, expected),
        }
    }
}
