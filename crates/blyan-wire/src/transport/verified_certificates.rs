//! A bounded memory of certificates whose self-signature already verified, so that a peer
//! that reconnects costs one Ed25519 verification less per side. Only the self-signature is
//! remembered: the TLS `CertificateVerify` signature (proof that the peer holds the key) is
//! checked on every handshake.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use blyan_crypto::{Hash, PublicKey, sha256};

use crate::certificate::{CertificateError, verify_peer_certificate};

/// 1,024 certificates (≈ 100 KiB): more than the peers a node keeps, so reconnections hit;
/// the oldest entry goes first when full.
const CAPACITY: usize = 1024;

/// Certificates (by SHA-256 of their exact bytes) that passed [`verify_peer_certificate`].
#[derive(Debug)]
pub(crate) struct VerifiedCertificates {
    capacity: usize,
    state: Mutex<State>,
}

impl Default for VerifiedCertificates {
    fn default() -> Self {
        Self::with_capacity(CAPACITY)
    }
}

#[derive(Debug, Default)]
struct State {
    keys: HashMap<Hash, PublicKey>,
    order: VecDeque<Hash>,
}

impl VerifiedCertificates {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            state: Mutex::default(),
        }
    }

    /// [`verify_peer_certificate`], answered from memory for certificates seen before.
    /// Same verdict either way: the key is a function of the exact bytes.
    pub(crate) fn verify(&self, der: &[u8]) -> Result<PublicKey, CertificateError> {
        if der.len() > crate::MAX_CERTIFICATE_LEN {
            return verify_peer_certificate(der);
        }
        let digest = sha256(der);
        if let Some(key) = self.lock().keys.get(&digest) {
            return Ok(*key);
        }
        let key = verify_peer_certificate(der)?;
        let mut state = self.lock();
        if state.keys.insert(digest, key).is_none() {
            state.order.push_back(digest);
            while state.order.len() > self.capacity {
                if let Some(oldest) = state.order.pop_front() {
                    state.keys.remove(&oldest);
                }
            }
        }
        Ok(key)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blyan_crypto::KeyPair;

    #[test]
    fn remembers_good_certificates_never_bad_ones_and_stays_bounded() {
        const SMALL: usize = 8;
        let cache = VerifiedCertificates::with_capacity(SMALL);
        let key = KeyPair::from_seed(&[1; 32]);
        let cert = crate::self_signed_certificate(&key);
        assert_eq!(cache.verify(&cert), Ok(key.public_key()));
        assert_eq!(cache.verify(&cert), Ok(key.public_key()));

        let mut bad = cert.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(cache.verify(&bad), Err(CertificateError::BadSignature));
        assert_eq!(cache.lock().keys.len(), 1);

        for seed in 0..(SMALL as u32 + 10) {
            let mut bytes = [0_u8; 32];
            bytes[..4].copy_from_slice(&seed.to_le_bytes());
            let key = KeyPair::from_seed(&bytes);
            cache.verify(&crate::self_signed_certificate(&key)).unwrap();
        }
        let state = cache.lock();
        assert_eq!(state.keys.len(), SMALL);
        assert_eq!(state.order.len(), SMALL);
    }
}
