//! Fuzz the parser and verifier of peer certificates, which every TLS handshake feeds with
//! a remote's bytes before anything else is trusted.
//!
//! Invariants: no input panics; the size limit is checked first; a certificate that
//! verifies names a key whose own certificate also verifies, and anything accepted
//! verifies again identically (the verdict is a pure function of the bytes).

#![no_main]

use blyan_wire::{
    CertificateError, MAX_CERTIFICATE_LEN, peer_id_of_certificate, verify_peer_certificate,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let verdict = verify_peer_certificate(data);
    if data.len() > MAX_CERTIFICATE_LEN {
        assert_eq!(
            verdict,
            Err(CertificateError::TooLarge {
                len: data.len(),
                max: MAX_CERTIFICATE_LEN
            })
        );
        return;
    }
    if let Ok(key) = verdict {
        assert_eq!(verify_peer_certificate(data), Ok(key));
        assert_eq!(
            peer_id_of_certificate(data),
            Ok(blyan_crypto::PeerId::from_public_key(&key))
        );
    }
});
