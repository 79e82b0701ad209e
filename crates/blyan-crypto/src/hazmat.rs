//! Raw Ed25519 without a Blyan domain. **Hazardous**: for protocols that bind their own
//! context into what is signed (TLS 1.3 `CertificateVerify` prefixes a context string).
//! Never use these for Blyan messages: a raw signature over bytes that happen to look like
//! a domain-separated message would be accepted as one.

use crate::keys::{KeyPair, PublicKey};
use crate::signature::{Signature, SignatureError};

/// Signs `message` exactly as given (RFC 8032 Ed25519).
pub fn sign_raw(key: &KeyPair, message: &[u8]) -> Signature {
    key.sign_raw(message)
}

/// Verifies a raw signature with the crate's validity rule (strict encodings, cofactored).
pub fn verify_raw(
    public_key: &PublicKey,
    message: &[u8],
    signature: &Signature,
) -> Result<(), SignatureError> {
    public_key.verify_raw(message, signature)
}
