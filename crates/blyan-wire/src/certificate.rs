//! Self-signed Ed25519 X.509 certificates: the container a node's key travels in during the
//! TLS handshake, and the strict parser that accepts a peer's.
//!
//! Hand-written DER for one fixed certificate shape instead of `rcgen`: the node key must
//! never leave `blyan-crypto` (we sign through `hazmat::sign_raw`), the shape is eight
//! fixed fields, and the parser has to be written anyway because the verifier must accept
//! exactly what the protocol allows (a self-signed Ed25519 certificate) and nothing of
//! X.509's generality. The builder is ~40 lines; rcgen would add `yasna`, `time`, `pem` and
//! a second signing abstraction for the same bytes.

use blyan_crypto::hazmat;
use blyan_crypto::{KeyPair, PeerId, PublicKey, PublicKeyError, Signature};

/// The largest certificate the parser looks at, checked before any parsing. A Blyan
/// certificate is 209 bytes; 4 KiB leaves room for other implementations' names and
/// non-critical extensions while keeping a hostile certificate cheap to refuse.
pub const MAX_CERTIFICATE_LEN: usize = 4096;

/// `AlgorithmIdentifier { id-Ed25519 (1.3.101.112) }` with absent parameters (RFC 8410 §3).
const ED25519_ALGORITHM: [u8; 7] = [0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70];

/// `SubjectPublicKeyInfo` for Ed25519 up to the 32 key bytes (RFC 8410 §4).
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// `Name ::= CN=blyan` for issuer and subject: the identity is the key, not a name.
const NAME_BLYAN: [u8; 18] = [
    0x30, 0x10, 0x31, 0x0e, 0x30, 0x0c, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x05, b'b', b'l', b'y',
    b'a', b'n',
];

/// `Validity` from 1975-01-01 (UTCTime) to 9999-12-31 23:59:59 (GeneralizedTime, RFC 5280
/// §4.1.2.5 "no well-defined expiration date"). Fixed, so a key always yields the same
/// certificate; validity is not checked by the verifier (see [`verify_peer_certificate`]).
const VALIDITY_FOREVER: [u8; 34] = [
    0x30, 0x20, 0x17, 0x0d, b'7', b'5', b'0', b'1', b'0', b'1', b'0', b'0', b'0', b'0', b'0', b'0',
    b'Z', 0x18, 0x0f, b'9', b'9', b'9', b'9', b'1', b'2', b'3', b'1', b'2', b'3', b'5', b'9', b'5',
    b'9', b'Z',
];

/// `[0] EXPLICIT Version v3`.
const VERSION_V3: [u8; 5] = [0xa0, 0x03, 0x02, 0x01, 0x02];

/// `serialNumber 1`: every key is its own issuer, so one serial per issuer is unique.
const SERIAL_ONE: [u8; 3] = [0x02, 0x01, 0x01];

/// DER tags used by the parser.
mod tag {
    pub(super) const INTEGER: u8 = 0x02;
    pub(super) const BIT_STRING: u8 = 0x03;
    pub(super) const OCTET_STRING: u8 = 0x04;
    pub(super) const OID: u8 = 0x06;
    pub(super) const BOOLEAN: u8 = 0x01;
    pub(super) const UTC_TIME: u8 = 0x17;
    pub(super) const GENERALIZED_TIME: u8 = 0x18;
    pub(super) const SEQUENCE: u8 = 0x30;
    pub(super) const VERSION: u8 = 0xa0;
    pub(super) const ISSUER_UID: u8 = 0x81;
    pub(super) const SUBJECT_UID: u8 = 0x82;
    pub(super) const EXTENSIONS: u8 = 0xa3;
}

/// Why a peer's certificate was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// Larger than [`MAX_CERTIFICATE_LEN`]; refused before parsing.
    #[error("certificate of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The certificate's length.
        len: usize,
        /// [`MAX_CERTIFICATE_LEN`].
        max: usize,
    },
    /// Not valid DER of an X.509 certificate; `what` names the element that failed.
    #[error("malformed certificate: {what}")]
    Malformed {
        /// The element that could not be parsed.
        what: &'static str,
    },
    /// A version other than v1 or v3, or v2-only unique identifiers.
    #[error("unsupported certificate version")]
    UnsupportedVersion,
    /// The key or a signature algorithm is not Ed25519.
    #[error("certificate is not an Ed25519 certificate")]
    NotEd25519,
    /// Issuer and subject differ: not a self-issued certificate.
    #[error("certificate is not self-issued (issuer differs from subject)")]
    NotSelfIssued,
    /// A critical extension, which the verifier does not understand and so must refuse.
    #[error("certificate carries a critical extension")]
    CriticalExtension,
    /// The certificate's key is not a valid Ed25519 public key.
    #[error("invalid public key: {0}")]
    InvalidPublicKey(#[from] PublicKeyError),
    /// The self-signature does not verify under the certificate's own key.
    #[error("the certificate's self-signature does not verify")]
    BadSignature,
}

/// The self-signed certificate of `key`: always the same 209 bytes for the same key
/// (Ed25519 signatures are deterministic and every other field is fixed).
///
/// Shape: X.509 v3, serial 1, issuer = subject = `CN=blyan`, valid 1975-01-01 to
/// 9999-12-31, Ed25519 key and signature, no extensions.
pub fn self_signed_certificate(key: &KeyPair) -> Vec<u8> {
    let public = key.public_key();
    let mut tbs_body = Vec::with_capacity(160);
    tbs_body.extend_from_slice(&VERSION_V3);
    tbs_body.extend_from_slice(&SERIAL_ONE);
    tbs_body.extend_from_slice(&ED25519_ALGORITHM);
    tbs_body.extend_from_slice(&NAME_BLYAN);
    tbs_body.extend_from_slice(&VALIDITY_FOREVER);
    tbs_body.extend_from_slice(&NAME_BLYAN);
    tbs_body.extend_from_slice(&ED25519_SPKI_PREFIX);
    tbs_body.extend_from_slice(public.as_bytes());
    let tbs = der_wrap(tag::SEQUENCE, &tbs_body);
    let signature = hazmat::sign_raw(key, &tbs);

    let mut body = Vec::with_capacity(tbs.len() + ED25519_ALGORITHM.len() + 67);
    body.extend_from_slice(&tbs);
    body.extend_from_slice(&ED25519_ALGORITHM);
    body.extend_from_slice(&[tag::BIT_STRING, 0x41, 0x00]);
    body.extend_from_slice(signature.as_bytes());
    der_wrap(tag::SEQUENCE, &body)
}

/// Parses a peer's certificate and returns its Ed25519 key if the certificate is exactly
/// what the protocol allows.
///
/// Checks, in order: length ≤ [`MAX_CERTIFICATE_LEN`]; strict DER (definite, minimal
/// lengths; nothing trailing anywhere); version v1 or v3; the signature algorithm (inner and
/// outer) is Ed25519 with absent parameters; issuer equals subject; the validity field is
/// two well-tagged times (their values are not checked: the certificate carries an identity,
/// not an authority, and nodes' clocks must not decide who can connect); the key is a valid
/// Ed25519 key (canonical, not of small order); no unique identifiers; no critical
/// extension (non-critical ones are ignored); the self-signature verifies under the
/// certificate's own key with blyan-crypto's validity rule.
pub fn verify_peer_certificate(der: &[u8]) -> Result<PublicKey, CertificateError> {
    let (public, tbs, signature) = parse_certificate(der)?;
    hazmat::verify_raw(&public, tbs, &signature).map_err(|_| CertificateError::BadSignature)?;
    Ok(public)
}

/// The key of a certificate that [`verify_peer_certificate`] has already accepted in this
/// handshake: every check but the self-signature, which need not be verified twice.
#[cfg(feature = "transport")]
pub(crate) fn certificate_key(der: &[u8]) -> Result<PublicKey, CertificateError> {
    parse_certificate(der).map(|(public, _, _)| public)
}

/// Parses a certificate strictly: its key, the signed `tbsCertificate` bytes and the
/// self-signature (not yet verified).
fn parse_certificate(der: &[u8]) -> Result<(PublicKey, &[u8], Signature), CertificateError> {
    if der.len() > MAX_CERTIFICATE_LEN {
        return Err(CertificateError::TooLarge {
            len: der.len(),
            max: MAX_CERTIFICATE_LEN,
        });
    }
    let mut outer = Reader::new(der);
    let certificate = outer.read(tag::SEQUENCE, "certificate")?;
    outer.finish("bytes after the certificate")?;

    let mut cert = Reader::new(certificate.content);
    let tbs = cert.read(tag::SEQUENCE, "tbsCertificate")?;
    let outer_algorithm = cert.read(tag::SEQUENCE, "signatureAlgorithm")?;
    let signature = cert.read(tag::BIT_STRING, "signatureValue")?;
    cert.finish("bytes after the signature")?;
    if outer_algorithm.raw != ED25519_ALGORITHM {
        return Err(CertificateError::NotEd25519);
    }
    let signature = match signature.content {
        [0x00, bits @ ..] => <[u8; 64]>::try_from(bits)
            .map(Signature::from_bytes)
            .map_err(|_| CertificateError::NotEd25519)?,
        _ => return Err(CertificateError::NotEd25519),
    };

    let public = parse_tbs(tbs.content)?;
    Ok((public, tbs.raw, signature))
}

/// The `PeerId` a verified certificate stands for: SHA-256 of its Ed25519 key.
pub fn peer_id_of_certificate(der: &[u8]) -> Result<PeerId, CertificateError> {
    verify_peer_certificate(der).map(|key| PeerId::from_public_key(&key))
}

/// Checks the fields of `TBSCertificate` and returns the subject's key.
fn parse_tbs(tbs: &[u8]) -> Result<PublicKey, CertificateError> {
    let mut fields = Reader::new(tbs);
    if fields.peek_tag() == Some(tag::VERSION) {
        let version = fields.read(tag::VERSION, "version")?;
        let mut inner = Reader::new(version.content);
        let number = inner.read(tag::INTEGER, "version number")?;
        inner.finish("bytes after the version")?;
        // v1 is encoded by omission (DER forbids the default value), so only v3 (2) here.
        if number.content != [0x02] {
            return Err(CertificateError::UnsupportedVersion);
        }
    }
    let serial = fields.read(tag::INTEGER, "serialNumber")?;
    // RFC 5280 §4.1.2.2: at most 20 octets (plus a sign byte some encoders add).
    if serial.content.is_empty() || serial.content.len() > 21 {
        return Err(CertificateError::Malformed {
            what: "serialNumber length",
        });
    }
    let algorithm = fields.read(tag::SEQUENCE, "signature")?;
    if algorithm.raw != ED25519_ALGORITHM {
        return Err(CertificateError::NotEd25519);
    }
    let issuer = fields.read(tag::SEQUENCE, "issuer")?;
    let validity = fields.read(tag::SEQUENCE, "validity")?;
    check_validity_shape(validity.content)?;
    let subject = fields.read(tag::SEQUENCE, "subject")?;
    if issuer.raw != subject.raw {
        return Err(CertificateError::NotSelfIssued);
    }
    let spki = fields.read(tag::SEQUENCE, "subjectPublicKeyInfo")?;
    let key_bytes = spki
        .raw
        .strip_prefix(&ED25519_SPKI_PREFIX[..])
        .and_then(|key| <[u8; 32]>::try_from(key).ok())
        .ok_or(CertificateError::NotEd25519)?;
    let public = PublicKey::from_bytes(&key_bytes)?;

    match fields.peek_tag() {
        Some(tag::ISSUER_UID | tag::SUBJECT_UID) => {
            return Err(CertificateError::UnsupportedVersion);
        }
        Some(tag::EXTENSIONS) => {
            let extensions = fields.read(tag::EXTENSIONS, "extensions")?;
            check_extensions(extensions.content)?;
        }
        _ => {}
    }
    fields.finish("bytes after the tbsCertificate fields")?;
    Ok(public)
}

/// `Validity ::= SEQUENCE { notBefore Time, notAfter Time }`, each UTCTime or GeneralizedTime.
fn check_validity_shape(validity: &[u8]) -> Result<(), CertificateError> {
    let mut times = Reader::new(validity);
    for what in ["notBefore", "notAfter"] {
        match times.peek_tag() {
            Some(t @ (tag::UTC_TIME | tag::GENERALIZED_TIME)) => {
                times.read(t, what)?;
            }
            _ => return Err(CertificateError::Malformed { what }),
        }
    }
    times.finish("bytes after the validity times")
}

/// `[3] EXPLICIT SEQUENCE SIZE (1..MAX) OF Extension`; any critical extension is refused.
fn check_extensions(explicit: &[u8]) -> Result<(), CertificateError> {
    let mut wrapper = Reader::new(explicit);
    let list = wrapper.read(tag::SEQUENCE, "extension list")?;
    wrapper.finish("bytes after the extension list")?;
    let mut extensions = Reader::new(list.content);
    if extensions.is_empty() {
        return Err(CertificateError::Malformed {
            what: "empty extension list",
        });
    }
    while !extensions.is_empty() {
        let extension = extensions.read(tag::SEQUENCE, "extension")?;
        let mut parts = Reader::new(extension.content);
        parts.read(tag::OID, "extension id")?;
        if parts.peek_tag() == Some(tag::BOOLEAN) {
            let critical = parts.read(tag::BOOLEAN, "extension criticality")?;
            match critical.content {
                [0xff] => return Err(CertificateError::CriticalExtension),
                // DER encodes the default (FALSE) by omission.
                _ => {
                    return Err(CertificateError::Malformed {
                        what: "extension criticality",
                    });
                }
            }
        }
        parts.read(tag::OCTET_STRING, "extension value")?;
        parts.finish("bytes after an extension")?;
    }
    Ok(())
}

/// `tag | length | content` with a DER length (short form below 128, else minimal long form).
fn der_wrap(tag: u8, content: &[u8]) -> Vec<u8> {
    let len = content.len();
    let mut out = Vec::with_capacity(len + 4);
    out.push(tag);
    if len < 0x80 {
        out.push(len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0x81, len as u8]);
    } else {
        // Certificates are far below 64 KiB.
        out.extend_from_slice(&[0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

/// One DER element: its full encoding and its content.
#[derive(Clone, Copy)]
struct Element<'a> {
    raw: &'a [u8],
    content: &'a [u8],
}

/// A strict DER reader over a byte slice: single-byte tags, definite minimal lengths.
struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(input: &'a [u8]) -> Self {
        Self { rest: input }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    fn finish(&self, what: &'static str) -> Result<(), CertificateError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(CertificateError::Malformed { what })
        }
    }

    /// Reads the next element, which must carry `expected` as its tag.
    fn read(&mut self, expected: u8, what: &'static str) -> Result<Element<'a>, CertificateError> {
        let malformed = CertificateError::Malformed { what };
        let input = self.rest;
        let (&tag, after_tag) = input.split_first().ok_or(malformed.clone())?;
        if tag != expected {
            return Err(malformed);
        }
        let (&first, after_len) = after_tag.split_first().ok_or(malformed.clone())?;
        let (len, after_len) = match first {
            0..=0x7f => (usize::from(first), after_len),
            0x81 => match after_len.split_first() {
                // Long form for a length below 128 is not minimal.
                Some((&len, rest)) if len >= 0x80 => (usize::from(len), rest),
                _ => return Err(malformed),
            },
            0x82 => match after_len {
                [hi, lo, rest @ ..] if *hi != 0 => {
                    ((usize::from(*hi) << 8) | usize::from(*lo), rest)
                }
                _ => return Err(malformed),
            },
            // Indefinite (0x80) is BER, not DER; longer forms exceed the size limit.
            _ => return Err(malformed),
        };
        if after_len.len() < len {
            return Err(malformed);
        }
        let (content, rest) = after_len.split_at(len);
        let header_len = input.len() - after_len.len();
        let raw = input.get(..header_len + len).ok_or(malformed)?;
        self.rest = rest;
        Ok(Element { raw, content })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(seed: u8) -> KeyPair {
        KeyPair::from_seed(&[seed; 32])
    }

    #[test]
    fn own_certificate_verifies_and_names_the_key() {
        let key = key(1);
        let cert = self_signed_certificate(&key);
        assert_eq!(cert.len(), 209);
        assert_eq!(verify_peer_certificate(&cert), Ok(key.public_key()));
        assert_eq!(peer_id_of_certificate(&cert), Ok(key.peer_id()));
        // Deterministic: the same key always yields the same bytes.
        assert_eq!(cert, self_signed_certificate(&key));
    }

    #[test]
    fn a_flipped_signature_bit_is_refused() {
        let mut cert = self_signed_certificate(&key(2));
        let last = cert.len() - 1;
        cert[last] ^= 1;
        assert_eq!(
            verify_peer_certificate(&cert),
            Err(CertificateError::BadSignature)
        );
    }

    #[test]
    fn a_swapped_key_is_refused() {
        // Someone else's key in the certificate, signed by the original key.
        let mut cert = self_signed_certificate(&key(3));
        let other = key(4).public_key();
        let at = cert
            .windows(32)
            .position(|w| w == key(3).public_key().as_bytes())
            .unwrap();
        cert[at..at + 32].copy_from_slice(other.as_bytes());
        assert_eq!(
            verify_peer_certificate(&cert),
            Err(CertificateError::BadSignature)
        );
    }

    #[test]
    fn oversized_input_is_refused_before_parsing() {
        let big = vec![0u8; MAX_CERTIFICATE_LEN + 1];
        assert_eq!(
            verify_peer_certificate(&big),
            Err(CertificateError::TooLarge {
                len: MAX_CERTIFICATE_LEN + 1,
                max: MAX_CERTIFICATE_LEN
            })
        );
    }

    #[test]
    fn trailing_bytes_are_refused() {
        let mut cert = self_signed_certificate(&key(5));
        cert.push(0);
        assert!(matches!(
            verify_peer_certificate(&cert),
            Err(CertificateError::Malformed { .. })
        ));
    }

    #[test]
    fn non_minimal_lengths_are_refused() {
        let mut reader = Reader::new(&[0x04, 0x81, 0x01, 0xaa]);
        assert!(reader.read(tag::OCTET_STRING, "x").is_err());
        let mut reader = Reader::new(&[0x04, 0x82, 0x00, 0x81]);
        assert!(reader.read(tag::OCTET_STRING, "x").is_err());
        let mut reader = Reader::new(&[0x04, 0x80, 0x00, 0x00]);
        assert!(reader.read(tag::OCTET_STRING, "x").is_err());
    }

    #[test]
    fn critical_extensions_are_refused_and_others_ignored() {
        let basic_constraints = [0x06, 0x03, 0x55, 0x1d, 0x13];
        let value = [0x04, 0x02, 0x30, 0x00];
        let mut critical = basic_constraints.to_vec();
        critical.extend_from_slice(&[0x01, 0x01, 0xff]);
        critical.extend_from_slice(&value);
        let mut plain = basic_constraints.to_vec();
        plain.extend_from_slice(&value);
        let wrap = |ext: &[u8]| der_wrap(tag::SEQUENCE, &der_wrap(tag::SEQUENCE, ext));
        assert_eq!(
            check_extensions(&wrap(&critical)),
            Err(CertificateError::CriticalExtension)
        );
        assert_eq!(check_extensions(&wrap(&plain)), Ok(()));
    }

    proptest! {
        #[test]
        fn no_mutation_panics_and_only_the_original_verifies(
            seed in any::<u8>(),
            at in any::<usize>(),
            byte in any::<u8>(),
        ) {
            let original = self_signed_certificate(&key(seed));
            let mut cert = original.clone();
            let at = at % cert.len();
            cert[at] = byte;
            let verdict = verify_peer_certificate(&cert);
            if cert != original {
                prop_assert!(verdict.is_err());
            }
        }

        #[test]
        fn truncations_never_verify(seed in any::<u8>(), cut in any::<usize>()) {
            let cert = self_signed_certificate(&key(seed));
            let cut = cut % cert.len();
            prop_assert!(verify_peer_certificate(&cert[..cut]).is_err());
        }
    }
}
