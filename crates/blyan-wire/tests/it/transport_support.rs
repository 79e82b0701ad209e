//! Shared pieces of the transport tests: keys, configs, a served endpoint pair, and raw
//! quinn clients that misbehave in ways `Endpoint` never would.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blyan_crypto::KeyPair;
use blyan_wire::{ALPN, Connection, Endpoint, Inbound, Protocol, TransportConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Echo-ish request protocol of the tests: answers `Ping { n, data }` with `n + 1`.
pub(crate) const PING: Protocol = Protocol(0x01);
/// One-way note protocol of the tests.
pub(crate) const NOTE: Protocol = Protocol(0x02);
/// A protocol the test server holds requests of (never answers on its own).
pub(crate) const HOLD: Protocol = Protocol(0x03);

/// Generous: only reached when something is broken.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ping {
    pub(crate) n: u64,
    #[serde(with = "serde_bytes")]
    pub(crate) data: Vec<u8>,
}

pub(crate) fn key(seed: u8) -> KeyPair {
    KeyPair::from_seed(&[seed; 32])
}

pub(crate) fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Defaults with timeouts short enough for tests but far above what a healthy exchange on
/// one machine needs.
pub(crate) fn config() -> TransportConfig {
    TransportConfig {
        handshake_timeout: Duration::from_secs(10),
        request_timeout: Duration::from_secs(10),
        inbound_read_timeout: Duration::from_secs(10),
        ..TransportConfig::default()
    }
}

/// Waits for `future` at most [`PATIENCE`].
pub(crate) async fn within<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future)
        .await
        .expect("timed out waiting for the transport")
}

/// Serves a connection: answers PING, forwards NOTE messages and HOLD requests to the
/// returned channels.
pub(crate) fn serve(
    connection: Connection,
) -> (
    mpsc::Receiver<Ping>,
    mpsc::Receiver<blyan_wire::InboundRequest>,
) {
    let (notes_tx, notes) = mpsc::channel(64);
    let (held_tx, held) = mpsc::channel(1024);
    tokio::spawn(async move {
        while let Some(inbound) = connection.accept_inbound().await {
            match inbound {
                Inbound::Request(request) if request.protocol() == PING => {
                    tokio::spawn(async move {
                        match request.decode::<Ping>() {
                            Ok(ping) => {
                                let pong = Ping {
                                    n: ping.n + 1,
                                    data: ping.data,
                                };
                                let _ = request.respond(&pong).await;
                            }
                            Err(err) => {
                                request.reject(blyan_wire::ResetCode::for_codec_error(&err));
                            }
                        }
                    });
                }
                Inbound::Request(request) if request.protocol() == HOLD => {
                    let _ = held_tx.send(request).await;
                }
                Inbound::Request(request) => request.reject(blyan_wire::ResetCode::UnknownProtocol),
                Inbound::Message(message) => {
                    if let Ok(note) = message.decode::<Ping>() {
                        let _ = notes_tx.send(note).await;
                    }
                }
            }
        }
    });
    (notes, held)
}

/// Two endpoints with `config`, `a` connected to `b`; returns both ends of the connection.
pub(crate) async fn connected_pair(
    config: TransportConfig,
) -> (Endpoint, Endpoint, Connection, Connection) {
    let a = Endpoint::bind(localhost(), &key(1), config.clone()).unwrap();
    let b = Endpoint::bind(localhost(), &key(2), config).unwrap();
    let b_addr = b.local_addr().unwrap();
    let (dialed, accepted) =
        within(async { tokio::join!(a.dial(b_addr, Some(b.peer_id())), b.accept()) }).await;
    (a, b.clone(), dialed.unwrap(), accepted.unwrap())
}

/// Accepts any server certificate: the raw test clients attack the server, not the client.
#[derive(Debug)]
struct AcceptAnyServer;

impl ServerCertVerifier for AcceptAnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// A plain quinn client endpoint: with `identity`, it presents that key's Blyan
/// certificate (signing through rustls' own ring provider); without, no certificate.
pub(crate) fn raw_client(identity: Option<&KeyPair>) -> quinn::Endpoint {
    raw_client_with_alpn(identity, &[ALPN])
}

/// [`raw_client`] offering the given ALPN protocols (possibly none).
pub(crate) fn raw_client_with_alpn(identity: Option<&KeyPair>, alpn: &[&[u8]]) -> quinn::Endpoint {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyServer));
    let mut tls = match identity {
        Some(key) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from(blyan_wire::self_signed_certificate(
                    key,
                ))],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der().to_vec())),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    tls.alpn_protocols = alpn.iter().map(|protocol| protocol.to_vec()).collect();
    let quic_tls = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client(localhost()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(quic_tls)));
    endpoint
}
