//! A bounded memory of certificates that already passed [`verify_peer_certificate`], keyed
//! by their exact bytes, with what they prove (the key and the `PeerId`).
//!
//! A peer that reconnects costs one Ed25519 verification less per side, and within one
//! handshake the later steps (checking the `CertificateVerify` signature, naming the remote
//! once the connection is up) look the certificate up instead of parsing it and decoding its
//! key point again. Only the self-signature is remembered: the TLS `CertificateVerify`
//! signature (proof that the peer holds the key) is checked on every handshake.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use blyan_crypto::{PeerId, PublicKey};

use crate::certificate::{CertificateError, certificate_key, verify_peer_certificate};

/// 1,024 certificates: more than the peers a node keeps, so reconnections hit; the oldest
/// entry goes first when full.
const CAPACITY: usize = 1024;

/// Certificates longer than this are verified every time and never remembered, so the
/// memory stays under 1,024 × 512 bytes (plus map overhead) whatever peers send. A Blyan
/// certificate is 209 bytes.
const MAX_REMEMBERED_LEN: usize = 512;

/// What a verified certificate proves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct VerifiedPeer {
    /// The certificate's Ed25519 key (canonical, not of small order, point decoded).
    pub(crate) key: PublicKey,
    /// SHA-256 of the key.
    pub(crate) peer_id: PeerId,
}

impl VerifiedPeer {
    fn new(key: PublicKey) -> Self {
        Self {
            peer_id: PeerId::from_public_key(&key),
            key,
        }
    }
}

/// Certificates (by their exact bytes) that passed [`verify_peer_certificate`].
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
    peers: HashMap<Arc<[u8]>, VerifiedPeer>,
    order: VecDeque<Arc<[u8]>>,
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
    pub(crate) fn verify(&self, der: &[u8]) -> Result<VerifiedPeer, CertificateError> {
        if let Some(peer) = self.remembered(der) {
            return Ok(peer);
        }
        let peer = VerifiedPeer::new(verify_peer_certificate(der)?);
        if der.len() <= MAX_REMEMBERED_LEN {
            let mut state = self.lock();
            let der: Arc<[u8]> = Arc::from(der);
            if state.peers.insert(Arc::clone(&der), peer).is_none() {
                state.order.push_back(der);
                while state.order.len() > self.capacity {
                    if let Some(oldest) = state.order.pop_front() {
                        state.peers.remove(&oldest);
                    }
                }
            }
        }
        Ok(peer)
    }

    /// What a certificate that [`VerifiedCertificates::verify`] accepted earlier in this
    /// handshake proves: from memory, or (if it was too long to remember or has been
    /// evicted since) by parsing it again without re-checking its self-signature.
    pub(crate) fn accepted(&self, der: &[u8]) -> Result<VerifiedPeer, CertificateError> {
        match self.remembered(der) {
            Some(peer) => Ok(peer),
            None => certificate_key(der).map(VerifiedPeer::new),
        }
    }

    fn remembered(&self, der: &[u8]) -> Option<VerifiedPeer> {
        if der.len() > MAX_REMEMBERED_LEN {
            return None;
        }
        self.lock().peers.get(der).copied()
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
        let expected = VerifiedPeer {
            key: key.public_key(),
            peer_id: key.peer_id(),
        };
        assert_eq!(cache.verify(&cert), Ok(expected));
        assert_eq!(cache.verify(&cert), Ok(expected));
        assert_eq!(cache.accepted(&cert), Ok(expected));

        let mut bad = cert.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(cache.verify(&bad), Err(CertificateError::BadSignature));
        assert_eq!(cache.lock().peers.len(), 1);

        for seed in 0..(SMALL as u32 + 10) {
            let mut bytes = [0_u8; 32];
            bytes[..4].copy_from_slice(&seed.to_le_bytes());
            let key = KeyPair::from_seed(&bytes);
            cache.verify(&crate::self_signed_certificate(&key)).unwrap();
        }
        let state = cache.lock();
        assert_eq!(state.peers.len(), SMALL);
        assert_eq!(state.order.len(), SMALL);
    }

    #[test]
    fn an_evicted_certificate_is_parsed_again_with_the_same_answer() {
        let cache = VerifiedCertificates::with_capacity(1);
        let first = KeyPair::from_seed(&[1; 32]);
        let cert = crate::self_signed_certificate(&first);
        cache.verify(&cert).unwrap();
        cache
            .verify(&crate::self_signed_certificate(&KeyPair::from_seed(
                &[2; 32],
            )))
            .unwrap();
        assert_eq!(cache.remembered(&cert), None);
        assert_eq!(
            cache.accepted(&cert).map(|p| p.peer_id),
            Ok(first.peer_id())
        );
        // Parsing still refuses what is not a certificate.
        assert!(cache.accepted(b"not a certificate").is_err());
    }
}
