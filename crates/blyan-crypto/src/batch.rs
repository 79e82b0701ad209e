//! Batch verification that decides exactly like [`PublicKey::verify`].

use core::fmt;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::Digest as _;

use crate::domain::Domain;
use crate::keys::PublicKey;
use crate::signature::{Signature, SignatureError};
use crate::verify::{self, Prepared};

/// One signature to check in a batch: the same inputs as [`PublicKey::verify`].
#[derive(Debug, Clone, Copy)]
pub struct BatchItem<'a> {
    /// The signer.
    pub public_key: &'a PublicKey,
    /// The domain the signature was made in.
    pub domain: Domain,
    /// The chain the signature was made for.
    pub chain_id: u32,
    /// The signed payload (without the domain header).
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a Signature,
}

/// Some signatures of a batch are invalid: each with its index and reason, in index order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BatchVerifyError {
    /// `(index, reason)` for every invalid signature; never empty.
    pub invalid: Vec<(usize, SignatureError)>,
}

impl BatchVerifyError {
    /// Index and reason of the first invalid signature.
    pub fn first(&self) -> Option<(usize, SignatureError)> {
        self.invalid.first().copied()
    }

    /// Indices of all invalid signatures.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        self.invalid.iter().map(|(i, _)| *i)
    }
}

impl fmt::Display for BatchVerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.first() {
            Some((index, reason)) => write!(
                f,
                "{} invalid signature(s) in batch, first at index {index}: {reason}",
                self.invalid.len()
            ),
            None => f.write_str("invalid signature in batch"),
        }
    }
}

/// Verifies many signatures at once; `Ok` iff every one of them passes
/// [`PublicKey::verify`]. On failure, names every invalid signature.
///
/// Each signature is first put through the encoding checks of the single rule (canonical
/// `S`, canonical non-small-order `R`; keys were checked when parsed). The survivors go into
/// one multiscalar multiplication `[8](Σ zᵢRᵢ + Σ zᵢkᵢAᵢ − (Σ zᵢSᵢ)B) = 0` with 128-bit
/// coefficients `zᵢ` derived by hashing the whole batch. If that fails, each survivor is
/// checked alone to find the culprits. The cofactored equation is what makes the batch
/// agree with the single check (see the crate documentation).
pub fn verify_batch(items: &[BatchItem<'_>]) -> Result<(), BatchVerifyError> {
    let mut invalid = Vec::new();
    let mut prepared: Vec<(usize, Prepared)> = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let header = item.domain.header(item.chain_id);
        let [a, b, c, d] = header.parts();
        match verify::prepare(item.public_key, &[a, b, c, d, item.message], item.signature) {
            Ok(p) => prepared.push((index, p)),
            Err(reason) => invalid.push((index, reason)),
        }
    }

    let all_hold = match prepared.as_slice() {
        [] => true,
        [(index, p)] => {
            let key = items.get(*index).map(|item| item.public_key);
            key.is_some_and(|key| verify::equation_holds(key, p))
        }
        _ => combined_equation_holds(items, &prepared),
    };
    if !all_hold {
        // Locate the failures: the single check is the definition, so ask it.
        for (index, p) in &prepared {
            let holds = items
                .get(*index)
                .is_some_and(|item| verify::equation_holds(item.public_key, p));
            if !holds {
                invalid.push((*index, SignatureError::Mismatch));
            }
        }
    }

    if invalid.is_empty() {
        Ok(())
    } else {
        invalid.sort_unstable_by_key(|(index, _)| *index);
        Err(BatchVerifyError { invalid })
    }
}

/// The random linear combination of all prepared equations, cofactor cleared.
fn combined_equation_holds(items: &[BatchItem<'_>], prepared: &[(usize, Prepared)]) -> bool {
    let z = coefficients(items, prepared);
    let mut b_coefficient = Scalar::ZERO;
    let mut scalars = Vec::with_capacity(2 * prepared.len() + 1);
    let mut points = Vec::with_capacity(2 * prepared.len() + 1);
    for ((index, p), z) in prepared.iter().zip(&z) {
        let Some(item) = items.get(*index) else {
            return false;
        };
        b_coefficient += z * p.s;
        scalars.push(*z);
        points.push(p.r);
        scalars.push(z * p.k);
        points.push(*item.public_key.point());
    }
    scalars.push(-b_coefficient);
    points.push(ED25519_BASEPOINT_POINT);
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// 128-bit coefficients from SHA-512 over the batch (every k, which binds R, A and M, and
/// every S), four per hash output. A signer cannot choose inputs that cancel: changing any
/// input changes every coefficient.
fn coefficients(items: &[BatchItem<'_>], prepared: &[(usize, Prepared)]) -> Vec<Scalar> {
    let mut transcript = sha2::Sha512::new();
    transcript.update(b"blyan/v1/batch-verify");
    transcript.update((prepared.len() as u64).to_le_bytes());
    for (index, p) in prepared {
        transcript.update(p.k.as_bytes());
        if let Some(item) = items.get(*index) {
            transcript.update(item.signature.as_bytes());
        }
    }
    let seed: [u8; 64] = transcript.finalize().into();

    let mut out = Vec::with_capacity(prepared.len());
    let mut counter = 0u64;
    while out.len() < prepared.len() {
        let mut h = sha2::Sha512::new();
        h.update(seed);
        h.update(counter.to_le_bytes());
        let block: [u8; 64] = h.finalize().into();
        for chunk in block.chunks_exact(16) {
            if out.len() == prepared.len() {
                break;
            }
            let mut wide = [0u8; 32];
            wide[..16].copy_from_slice(chunk);
            out.push(Scalar::from_bytes_mod_order(wide));
        }
        counter += 1;
    }
    out
}
