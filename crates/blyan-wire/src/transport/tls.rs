//! rustls configuration: TLS 1.3 only, ALPN `blyan/1`, mutual authentication with
//! self-signed Ed25519 certificates, the node key signing through `blyan-crypto`.

use std::sync::{Arc, Mutex, PoisonError};

use blyan_crypto::{KeyPair, PeerId, Signature, hazmat};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::{CertifiedKey, Signer, SigningKey, SingleCertAndKey};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureAlgorithm, SignatureScheme};

use crate::certificate::{CertificateError, self_signed_certificate};
use crate::transport::error::BindError;
use crate::transport::protocol::ALPN;
use crate::transport::verified_certificates::VerifiedCertificates;

/// The server name a dialer puts in its ClientHello state (SNI is not sent): certificates
/// carry keys, not names, so any fixed name works.
pub(crate) const SERVER_NAME: &str = "blyan";

/// ring's provider restricted to TLS 1.3 cipher suites (the `tls12` feature is off, so
/// rustls has no TLS 1.2 code at all). Made once per endpoint and shared by its dials.
pub(crate) fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|suite| suite.version() == &rustls::version::TLS13);
    Arc::new(provider)
}

/// The node key as a rustls signing key: it only ever signs TLS 1.3 `CertificateVerify`
/// content (which carries its own context string) through `hazmat::sign_raw`.
#[derive(Debug)]
struct NodeSigningKey(Arc<KeyPair>);

impl SigningKey for NodeSigningKey {
    fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
        offered
            .contains(&SignatureScheme::ED25519)
            .then(|| Box::new(NodeSigner(Arc::clone(&self.0))) as Box<dyn Signer>)
    }

    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::ED25519
    }
}

#[derive(Debug)]
struct NodeSigner(Arc<KeyPair>);

impl Signer for NodeSigner {
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
        Ok(hazmat::sign_raw(&self.0, message).to_bytes().to_vec())
    }

    fn scheme(&self) -> SignatureScheme {
        SignatureScheme::ED25519
    }
}

/// This node's certificate and signing key, made once per endpoint.
pub(crate) fn node_identity(key: &KeyPair) -> Arc<SingleCertAndKey> {
    let cert = CertificateDer::from(self_signed_certificate(key));
    let signing = Arc::new(NodeSigningKey(Arc::new(key.clone())));
    Arc::new(SingleCertAndKey::from(CertifiedKey::new(
        vec![cert],
        signing,
    )))
}

/// Accepts exactly a self-signed Ed25519 certificate and Ed25519 TLS 1.3 signatures.
/// As a client-side verifier it may also insist on one expected `PeerId`.
#[derive(Debug)]
pub(crate) struct PeerVerifier {
    expected: Option<PeerId>,
    /// Shared by every verifier of one endpoint.
    verified: Arc<VerifiedCertificates>,
    /// The id of a certificate refused because it was not `expected`, for the dial's error.
    mismatch: Mutex<Option<PeerId>>,
}

impl PeerVerifier {
    pub(crate) fn new(expected: Option<PeerId>, verified: Arc<VerifiedCertificates>) -> Self {
        Self {
            expected,
            verified,
            mismatch: Mutex::new(None),
        }
    }

    /// The id of the certificate that failed the expected-id check, if any.
    pub(crate) fn mismatch(&self) -> Option<PeerId> {
        *self.mismatch.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn verify_certificate(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
    ) -> Result<(), rustls::Error> {
        if !intermediates.is_empty() {
            // A self-signed certificate needs no chain; a chain means someone else's PKI.
            return Err(invalid(CertificateError::Malformed {
                what: "certificate chain (intermediates are not allowed)",
            }));
        }
        let actual = self.verified.verify(end_entity).map_err(invalid)?.peer_id;
        match self.expected {
            Some(expected) if expected != actual => {
                *self.mismatch.lock().unwrap_or_else(PoisonError::into_inner) = Some(actual);
                Err(rustls::Error::InvalidCertificate(
                    rustls::CertificateError::ApplicationVerificationFailure,
                ))
            }
            _ => Ok(()),
        }
    }
}

fn invalid(err: CertificateError) -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::Other(rustls::OtherError(
        Arc::new(err),
    )))
}

impl PeerVerifier {
    /// Checks a TLS 1.3 `CertificateVerify` signature: scheme Ed25519 only, the key from the
    /// (already verified) certificate, blyan-crypto's validity rule.
    fn verify_handshake_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        check_handshake_signature(&self.verified, message, cert, dss.scheme, dss.signature())
    }
}

fn check_handshake_signature(
    verified: &VerifiedCertificates,
    message: &[u8],
    cert: &CertificateDer<'_>,
    scheme: SignatureScheme,
    signature: &[u8],
) -> Result<HandshakeSignatureValid, rustls::Error> {
    if scheme != SignatureScheme::ED25519 {
        return Err(rustls::Error::PeerMisbehaved(
            rustls::PeerMisbehaved::SignedHandshakeWithUnadvertisedSigScheme,
        ));
    }
    // rustls passes the end-entity certificate that `verify_*_cert` accepted just before:
    // its key (point already decoded) comes from the verified-certificate memory.
    let key = verified.accepted(cert).map_err(invalid)?.key;
    let signature = <[u8; 64]>::try_from(signature)
        .map(Signature::from_bytes)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))?;
    hazmat::verify_raw(&key, message, &signature)
        .map_err(|_| rustls::Error::InvalidCertificate(rustls::CertificateError::BadSignature))?;
    Ok(HandshakeSignatureValid::assertion())
}

fn tls12_refused() -> rustls::Error {
    rustls::Error::PeerIncompatible(rustls::PeerIncompatible::Tls13RequiredForQuic)
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.verify_certificate(end_entity, intermediates)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.verify_certificate(end_entity, intermediates)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(tls12_refused())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.verify_handshake_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

fn tls_error(err: impl std::fmt::Display) -> BindError {
    BindError::Tls(err.to_string())
}

/// The server side: mandatory client certificates, no session tickets (a resumed session
/// would skip the client certificate), ALPN `blyan/1`.
pub(crate) fn server_config(
    provider: Arc<CryptoProvider>,
    identity: Arc<SingleCertAndKey>,
    verified: Arc<VerifiedCertificates>,
) -> Result<rustls::ServerConfig, BindError> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .with_client_cert_verifier(Arc::new(PeerVerifier::new(None, verified)))
        .with_cert_resolver(identity);
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.send_tls13_tickets = 0;
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    Ok(config)
}

/// The client side of one dial: the verifier may insist on `expected`. No SNI, no
/// resumption, ALPN `blyan/1`.
pub(crate) fn client_config(
    provider: Arc<CryptoProvider>,
    identity: Arc<SingleCertAndKey>,
    verifier: Arc<PeerVerifier>,
) -> Result<rustls::ClientConfig, BindError> {
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_error)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(identity);
    config.alpn_protocols = vec![ALPN.to_vec()];
    config.enable_sni = false;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(config)
}

/// The `PeerId` of an established connection's remote, from the certificate the handshake
/// verified (looked up in the endpoint's verified-certificate memory).
pub(crate) fn remote_peer_id(
    connection: &quinn::Connection,
    verified: &VerifiedCertificates,
) -> Option<PeerId> {
    let identity = connection.peer_identity()?;
    let certificates = identity.downcast::<Vec<CertificateDer<'static>>>().ok()?;
    Some(verified.accepted(certificates.first()?).ok()?.peer_id)
}

/// The ALPN protocol the handshake negotiated.
pub(crate) fn negotiated_alpn(connection: &quinn::Connection) -> Option<Vec<u8>> {
    let data = connection.handshake_data()?;
    let data = data
        .downcast::<quinn::crypto::rustls::HandshakeData>()
        .ok()?;
    data.protocol
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(expected: Option<PeerId>) -> PeerVerifier {
        PeerVerifier::new(expected, Arc::new(VerifiedCertificates::default()))
    }

    fn cert(seed: u8) -> CertificateDer<'static> {
        CertificateDer::from(self_signed_certificate(&KeyPair::from_seed(&[seed; 32])))
    }

    #[test]
    fn intermediates_are_refused() {
        assert!(
            verifier(None)
                .verify_certificate(&cert(1), &[cert(2)])
                .is_err()
        );
        assert!(verifier(None).verify_certificate(&cert(1), &[]).is_ok());
    }

    #[test]
    fn an_unexpected_peer_is_refused_and_remembered() {
        let expected = KeyPair::from_seed(&[9; 32]).peer_id();
        let verifier = verifier(Some(expected));
        assert!(verifier.verify_certificate(&cert(1), &[]).is_err());
        assert_eq!(
            verifier.mismatch(),
            Some(KeyPair::from_seed(&[1; 32]).peer_id())
        );
    }

    #[test]
    fn handshake_signatures_must_be_ed25519_by_the_certificate_key() {
        let key = KeyPair::from_seed(&[1; 32]);
        let message = b"TLS 1.3 CertificateVerify content";
        let signature = hazmat::sign_raw(&key, message).to_bytes();
        let ed25519 = SignatureScheme::ED25519;
        // Whether the certificates are remembered (verified before) or parsed again.
        let remembering = VerifiedCertificates::default();
        remembering.verify(&cert(1)).unwrap();
        remembering.verify(&cert(2)).unwrap();
        for verified in [&remembering, &VerifiedCertificates::default()] {
            let check = |message: &[u8], cert: &CertificateDer<'_>, scheme, signature: &[u8]| {
                check_handshake_signature(verified, message, cert, scheme, signature).is_ok()
            };
            assert!(check(message, &cert(1), ed25519, &signature));
            // Another key's certificate, another message, another scheme, a short signature.
            assert!(!check(message, &cert(2), ed25519, &signature));
            assert!(!check(b"other", &cert(1), ed25519, &signature));
            let ecdsa = SignatureScheme::ECDSA_NISTP256_SHA256;
            assert!(!check(message, &cert(1), ecdsa, &signature));
            assert!(!check(message, &cert(1), ed25519, &signature[..63]));
        }
    }

    #[test]
    fn the_node_key_signs_only_ed25519() {
        let key = KeyPair::from_seed(&[1; 32]);
        let signing = NodeSigningKey(Arc::new(key.clone()));
        assert!(
            signing
                .choose_scheme(&[SignatureScheme::ECDSA_NISTP256_SHA256])
                .is_none()
        );
        let signer = signing.choose_scheme(&[SignatureScheme::ED25519]).unwrap();
        let signature = signer.sign(b"content").unwrap();
        let signature = Signature::from_bytes(signature.try_into().unwrap());
        assert!(hazmat::verify_raw(&key.public_key(), b"content", &signature).is_ok());
    }
}
