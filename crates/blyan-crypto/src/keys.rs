//! Ed25519 key pairs and public keys.

use core::cmp::Ordering;
use core::fmt;
use core::hash::{Hash as StdHash, Hasher as StdHasher};
use core::str::FromStr;

use curve25519_dalek::edwards::EdwardsPoint;
use ed25519_dalek::Signer as _;
use zeroize::Zeroizing;

use crate::address::Address;
use crate::byte_serde::impl_byte_serde;
use crate::domain::Domain;
use crate::hex::{self, ParseError};
use crate::peer_id::PeerId;
use crate::signature::{Signature, SignatureError};
use crate::verify::{self, StrictPointError};

/// Why 32 bytes are not an acceptable Ed25519 public key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyError {
    /// The y coordinate is not reduced modulo p (an alias of another encoding).
    #[error("public key is not canonically encoded")]
    NonCanonical,
    /// The bytes do not decode to a point on the curve.
    #[error("public key is not a point on the curve")]
    NotOnCurve,
    /// The point has small order (a "weak" key that could sign almost anything).
    #[error("public key has small order")]
    SmallOrder,
}

/// Why a public key could not be read from text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PublicKeyParseError {
    /// The text is not 64 hex characters.
    #[error(transparent)]
    Hex(#[from] ParseError),
    /// The bytes are not an acceptable key.
    #[error(transparent)]
    Key(#[from] PublicKeyError),
}

/// The operating system's random number generator failed.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("operating system randomness unavailable: {0}")]
pub struct RandomnessError(#[source] pub getrandom::Error);

/// Fills `buf` from the operating system's CSPRNG.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<(), RandomnessError> {
    getrandom::fill(buf).map_err(RandomnessError)
}

/// An Ed25519 public key that passed the strict checks: canonical encoding, on the curve,
/// not of small order. Holding a `PublicKey` means those checks are done.
#[derive(Clone, Copy)]
pub struct PublicKey {
    bytes: [u8; 32],
    point: EdwardsPoint,
}

impl PublicKey {
    /// Length of an encoded public key in bytes.
    pub const LEN: usize = 32;

    /// Decodes and checks a public key.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, PublicKeyError> {
        let point = verify::decode_strict_point(bytes).map_err(|e| match e {
            StrictPointError::NonCanonical => PublicKeyError::NonCanonical,
            StrictPointError::NotOnCurve => PublicKeyError::NotOnCurve,
            StrictPointError::SmallOrder => PublicKeyError::SmallOrder,
        })?;
        Ok(Self {
            bytes: *bytes,
            point,
        })
    }

    /// The 32-byte encoding.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// The 32-byte encoding, by value.
    pub const fn to_bytes(&self) -> [u8; 32] {
        self.bytes
    }

    /// The decoded curve point.
    pub(crate) fn point(&self) -> &EdwardsPoint {
        &self.point
    }

    /// The node id of this key.
    pub fn peer_id(&self) -> PeerId {
        PeerId::from_public_key(self)
    }

    /// The account address of this key.
    pub fn address(&self) -> Address {
        Address::from_public_key(self)
    }

    /// Checks `signature` over `bytes` in `domain` on chain `chain_id`.
    ///
    /// The rule (strict encodings, no small-order `R`, cofactored equation) is described in
    /// the crate documentation; [`verify_batch`](crate::verify_batch) applies the same rule.
    pub fn verify(
        &self,
        domain: Domain,
        chain_id: u32,
        bytes: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        let header = domain.header(chain_id);
        let [a, b, c, d] = header.parts();
        verify::verify_single(self, &[a, b, c, d, bytes], signature)
    }

    /// Checks a raw Ed25519 signature over `message` with no Blyan domain.
    #[cfg(any(test, feature = "hazmat"))]
    pub(crate) fn verify_raw(
        &self,
        message: &[u8],
        signature: &Signature,
    ) -> Result<(), SignatureError> {
        verify::verify_single(self, &[message], signature)
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        // The encoding is canonical, so equal bytes and equal points coincide.
        self.bytes == other.bytes
    }
}

impl Eq for PublicKey {}

impl StdHash for PublicKey {
    fn hash<H: StdHasher>(&self, state: &mut H) {
        self.bytes.hash(state);
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for PublicKey {
    fn cmp(&self, other: &Self) -> Ordering {
        self.bytes.cmp(&other.bytes)
    }
}

impl TryFrom<[u8; 32]> for PublicKey {
    type Error = PublicKeyError;

    fn try_from(bytes: [u8; 32]) -> Result<Self, Self::Error> {
        Self::from_bytes(&bytes)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        hex::write_hex(f, &self.bytes)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = PublicKeyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = hex::parse_hex::<32>(s)?;
        Ok(Self::from_bytes(&bytes)?)
    }
}

impl_byte_serde!(PublicKey, 32, |bytes| PublicKey::from_bytes(&bytes));

/// DER prefix of a PKCS#8 v1 `PrivateKeyInfo` for Ed25519 (RFC 8410 §7), before the seed.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A node's or an account's Ed25519 signing key with its public key.
///
/// The secret is zeroized on drop. `Debug` shows only the public key. Every signature is
/// made in a [`Domain`]; there is no way to sign bare bytes outside the `hazmat` feature.
#[derive(Clone)]
pub struct KeyPair {
    signing: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl KeyPair {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, RandomnessError> {
        let mut seed = Zeroizing::new([0u8; 32]);
        os_random(seed.as_mut())?;
        Ok(Self::from_seed(&seed))
    }

    /// The key derived from a 32-byte RFC 8032 seed ("secret key").
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        let signing = ed25519_dalek::SigningKey::from_bytes(seed);
        let verifying = signing.verifying_key();
        // A key derived from a seed is a clamped scalar times the base point: canonically
        // encoded, in the prime-order subgroup, never of small order. The checks of
        // `PublicKey::from_bytes` hold by construction.
        let public = PublicKey {
            bytes: verifying.to_bytes(),
            point: verifying.to_edwards(),
        };
        debug_assert!(PublicKey::from_bytes(&public.bytes).is_ok());
        Self { signing, public }
    }

    /// The 32-byte seed, for storage (see [`KeyStore`](crate::KeyStore)). Zeroized on drop.
    pub fn to_seed(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.signing.to_bytes())
    }

    /// The key as PKCS#8 v1 DER (RFC 8410), e.g. for a TLS library. Zeroized on drop.
    pub fn to_pkcs8_der(&self) -> Zeroizing<Vec<u8>> {
        let seed = self.to_seed();
        let mut der = Zeroizing::new(Vec::with_capacity(PKCS8_ED25519_PREFIX.len() + 32));
        der.extend_from_slice(&PKCS8_ED25519_PREFIX);
        der.extend_from_slice(seed.as_ref());
        der
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The node id of this key.
    pub fn peer_id(&self) -> PeerId {
        self.public.peer_id()
    }

    /// The account address of this key.
    pub fn address(&self) -> Address {
        self.public.address()
    }

    /// Signs `bytes` in `domain` on chain `chain_id` (see [`Domain`] for the exact message).
    pub fn sign(&self, domain: Domain, chain_id: u32, bytes: &[u8]) -> Signature {
        self.sign_raw(&domain.signing_message(chain_id, bytes))
    }

    /// Signs `message` as is, with no Blyan domain.
    pub(crate) fn sign_raw(&self, message: &[u8]) -> Signature {
        Signature::from_bytes(self.signing.sign(message).to_bytes())
    }
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_round_trip_and_identity() {
        let key = KeyPair::generate().unwrap();
        let again = KeyPair::from_seed(&key.to_seed());
        assert_eq!(key.public_key(), again.public_key());
        assert_eq!(key.peer_id(), PeerId::from_public_key(&key.public_key()));
        assert_eq!(
            key.peer_id().to_bytes(),
            crate::sha256(key.public_key().as_bytes()).to_bytes()
        );
        assert_eq!(
            key.address().as_bytes()[..],
            crate::sha256(key.public_key().as_bytes()).as_bytes()[..20]
        );
        let der = key.to_pkcs8_der();
        assert_eq!(der.len(), 48);
        assert_eq!(&der[16..], key.to_seed().as_slice());
        assert!(!format!("{key:?}").contains(&hex::to_hex(key.to_seed().as_slice())));
    }

    #[test]
    fn text_round_trip() {
        let key = KeyPair::from_seed(&[7u8; 32]).public_key();
        assert_eq!(key.to_string().parse::<PublicKey>(), Ok(key));
        assert!(matches!(
            "00".parse::<PublicKey>(),
            Err(PublicKeyParseError::Hex(ParseError::WrongLength { .. }))
        ));
    }
}
