//! Transport benchmarks, each against raw quinn baselines measured in the same run and
//! process: the same quinn and rustls versions, the same `ring` provider restricted to TLS 1.3,
//! the same tokio runtime, an echo server that reads a stream to its end and answers.
//!
//! Three baselines, all without SNI, session tickets or resumption (as Blyan):
//!
//! - `raw_quinn_mutual_webpki` (**fair**): raw quinn + rustls doing the same cryptographic
//!   job as a Blyan handshake with rustls' own verifiers: TLS 1.3, mutual authentication with
//!   an Ed25519 certificate each way, checked by `WebPkiServerVerifier` /
//!   `WebPkiClientVerifier` against a one-certificate root store. A tiny CA (Ed25519,
//!   generated with `rcgen` at start-up) signs both end-entity certificates (Ed25519 keys,
//!   SAN `blyan` / `client`, EKU serverAuth / clientAuth). Each side checks the peer's chain
//!   (parse, the CA's Ed25519 signature, validity, EKU, the server name) and its
//!   `CertificateVerify` signature: two Ed25519 verifications and one signature per side.
//! - `raw_quinn_mutual_sig_only` (**strict**): mutual TLS 1.3 with Ed25519 certificates each
//!   way (Blyan's self-signed ones), where each side's verifier accepts the certificate
//!   unchecked and verifies only the `CertificateVerify` signature with rustls'
//!   `verify_tls13_signature` (webpki parses the certificate for its key). One Ed25519
//!   verification and one signature per side: the least any mutual Ed25519 handshake does,
//!   and exactly what Blyan does once its certificate cache knows the peer.
//! - `raw_quinn_no_client_auth` (the earlier reference): a self-signed server certificate
//!   whose verification the client skips, no client certificate: one Ed25519 signature per
//!   handshake and no verification at all.
//!
//! Operations:
//!
//! - `handshake`: dial + accept of one connection (Blyan: mutual Ed25519 authentication and
//!   PeerId check), then close.
//! - `small_request`: one request/response round trip of a 40-byte message on a new stream.
//! - `bulk`: 8 MiB sent on one stream, a 2-byte answer (MB/s of one stream, one direction).
//!
//! After the criterion groups, a paired run rotates one Blyan operation and one of each
//! baseline at a time and prints the medians and ratios (robust to background load drift).
//!
//! Run: `cargo bench -p blyan-wire --bench transport -- --warm-up-time 1 --measurement-time 3`
//!
//! Profile one kind of handshake alone (for `valgrind --tool=callgrind`):
//! `BLYAN_HANDSHAKE_PROFILE=blyan|webpki|sig_only|no_client_auth[:count] target/release/deps/transport-*`
//! runs `count` (default 200) handshakes of that kind after one warm-up and exits.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blyan_crypto::KeyPair;
use blyan_wire::{
    ALPN, Connection, Endpoint, Inbound, Protocol, TransportConfig, self_signed_certificate,
};
use criterion::{Criterion, Throughput, criterion_group};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::runtime::Runtime;

const ECHO: Protocol = Protocol(1);
const BULK_LEN: usize = 8 * 1024 * 1024;
/// A 40-byte codec message: flags 0 + MsgPack bin 8 of 37 bytes.
const SMALL: [u8; 40] = {
    let mut message = [7_u8; 40];
    message[0] = 0x00;
    message[1] = 0xc4;
    message[2] = 37;
    message
};
/// The bulk answer: flags 0 + MsgPack nil.
const ACK: [u8; 2] = [0x00, 0xc0];

fn localhost() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

// ---------------------------------------------------------------- Blyan transport

struct BlyanSetup {
    client: Endpoint,
    server: Endpoint,
    connection: Connection,
}

fn blyan_config() -> TransportConfig {
    TransportConfig::default()
}

/// A server that answers ECHO requests with the request (small) or ACK (bulk).
fn blyan_serve(connection: Connection) {
    tokio::spawn(async move {
        while let Some(inbound) = connection.accept_inbound().await {
            if let Inbound::Request(request) = inbound {
                tokio::spawn(async move {
                    let answer = if request.message().len() > SMALL.len() {
                        ACK.to_vec()
                    } else {
                        request.message().to_vec()
                    };
                    let _ = request.respond_bytes(&answer).await;
                });
            }
        }
    });
}

async fn blyan_setup() -> BlyanSetup {
    let server =
        Endpoint::bind(localhost(), &KeyPair::from_seed(&[2; 32]), blyan_config()).unwrap();
    let client =
        Endpoint::bind(localhost(), &KeyPair::from_seed(&[1; 32]), blyan_config()).unwrap();
    let acceptor = server.clone();
    tokio::spawn(async move {
        while let Some(connection) = acceptor.accept().await {
            blyan_serve(connection);
        }
    });
    let connection = client
        .dial(server.local_addr().unwrap(), Some(server.peer_id()))
        .await
        .unwrap();
    BlyanSetup {
        client,
        server,
        connection,
    }
}

// ---------------------------------------------------------------- raw quinn baselines

/// ring's provider restricted to TLS 1.3 suites, as Blyan's.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider
        .cipher_suites
        .retain(|suite| suite.version() == &rustls::version::TLS13);
    Arc::new(provider)
}

/// The no-client-auth reference: the client accepts any server certificate unchecked.
#[derive(Debug)]
struct SkipVerification;

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn verify_tls13_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// The strict baseline's verifier (both sides): any certificate, but the TLS 1.3
/// `CertificateVerify` signature must verify under its key (rustls' own check).
#[derive(Debug)]
struct SignatureOnly(rustls::crypto::WebPkiSupportedAlgorithms);

impl SignatureOnly {
    fn new() -> Arc<Self> {
        Arc::new(Self(provider().signature_verification_algorithms))
    }
}

impl ServerCertVerifier for SignatureOnly {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2".into()))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

impl ClientCertVerifier for SignatureOnly {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2".into()))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }
}

/// Which raw baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Baseline {
    /// Mutual TLS, Ed25519 both ways, rustls' WebPKI verifiers and a tiny CA.
    MutualWebPki,
    /// Mutual TLS, Ed25519 both ways, only the handshake signatures verified.
    MutualSignatureOnly,
    /// Server certificate only, verification skipped.
    NoClientAuth,
}

/// A self-signed Blyan certificate and its PKCS#8 key, for the baselines without a CA.
fn blyan_style_identity(seed: u8) -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let key = KeyPair::from_seed(&[seed; 32]);
    (
        CertificateDer::from(self_signed_certificate(&key)),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der().to_vec())),
    )
}

/// The tiny PKI of the mutual baseline: an Ed25519 CA and two Ed25519 end-entity
/// certificates it signed, with their PKCS#8 keys.
struct Pki {
    root: CertificateDer<'static>,
    server: (CertificateDer<'static>, PrivateKeyDer<'static>),
    client: (CertificateDer<'static>, PrivateKeyDer<'static>),
}

fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "bench CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let end_entity = |name: &str, purpose: rcgen::ExtendedKeyUsagePurpose| {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![purpose];
        let cert = params.signed_by(&key, &ca).unwrap();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        (cert.der().clone(), key)
    };
    Pki {
        root: ca.der().clone(),
        server: end_entity("blyan", rcgen::ExtendedKeyUsagePurpose::ServerAuth),
        client: end_entity("client", rcgen::ExtendedKeyUsagePurpose::ClientAuth),
    }
}

fn roots(pki: &Pki) -> Arc<rustls::RootCertStore> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.root.clone()).unwrap();
    Arc::new(roots)
}

struct RawSetup {
    client: quinn::Endpoint,
    server_addr: SocketAddr,
    connection: quinn::Connection,
}

fn raw_server(baseline: Baseline, pki: &Pki) -> quinn::Endpoint {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap();
    let mut tls = match baseline {
        Baseline::MutualWebPki => {
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots(pki), provider())
                    .build()
                    .unwrap();
            builder
                .with_client_cert_verifier(verifier)
                .with_single_cert(vec![pki.server.0.clone()], pki.server.1.clone_key())
                .unwrap()
        }
        Baseline::MutualSignatureOnly => {
            let (cert, key) = blyan_style_identity(4);
            builder
                .with_client_cert_verifier(SignatureOnly::new())
                .with_single_cert(vec![cert], key)
                .unwrap()
        }
        Baseline::NoClientAuth => {
            let (cert, key) = blyan_style_identity(3);
            builder
                .with_no_client_auth()
                .with_single_cert(vec![cert], key)
                .unwrap()
        }
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.send_tls13_tickets = 0;
    tls.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    quinn::Endpoint::server(config, localhost()).unwrap()
}

fn raw_client(baseline: Baseline, pki: &Pki) -> quinn::Endpoint {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap();
    let mut tls = match baseline {
        Baseline::MutualWebPki => {
            let verifier =
                rustls::client::WebPkiServerVerifier::builder_with_provider(roots(pki), provider())
                    .build()
                    .unwrap();
            builder
                .with_webpki_verifier(verifier)
                .with_client_auth_cert(vec![pki.client.0.clone()], pki.client.1.clone_key())
                .unwrap()
        }
        Baseline::MutualSignatureOnly => {
            let (cert, key) = blyan_style_identity(5);
            builder
                .dangerous()
                .with_custom_certificate_verifier(SignatureOnly::new())
                .with_client_auth_cert(vec![cert], key)
                .unwrap()
        }
        Baseline::NoClientAuth => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(SkipVerification))
            .with_no_client_auth(),
    };
    tls.alpn_protocols = vec![ALPN.to_vec()];
    tls.enable_sni = false;
    tls.resumption = rustls::client::Resumption::disabled();
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let mut endpoint = quinn::Endpoint::client(localhost()).unwrap();
    endpoint.set_default_client_config(quinn::ClientConfig::new(Arc::new(crypto)));
    endpoint
}

/// Echo server: every stream is read to its end and answered with itself (small) or ACK.
fn raw_serve(endpoint: quinn::Endpoint) {
    tokio::spawn(async move {
        while let Some(incoming) = endpoint.accept().await {
            tokio::spawn(async move {
                let Ok(connection) = incoming.await else {
                    return;
                };
                while let Ok((mut send, mut recv)) = connection.accept_bi().await {
                    tokio::spawn(async move {
                        let Ok(data) = recv.read_to_end(BULK_LEN + 16).await else {
                            return;
                        };
                        let answer = if data.len() > SMALL.len() + 5 {
                            &ACK[..]
                        } else {
                            &data[..]
                        };
                        let _ = send.write_all(answer).await;
                        let _ = send.finish();
                        let _ = send.stopped().await;
                    });
                }
            });
        }
    });
}

async fn raw_setup(baseline: Baseline, pki: &Pki) -> RawSetup {
    let server = raw_server(baseline, pki);
    let server_addr = server.local_addr().unwrap();
    raw_serve(server);
    let client = raw_client(baseline, pki);
    let connection = client.connect(server_addr, "blyan").unwrap().await.unwrap();
    RawSetup {
        client,
        server_addr,
        connection,
    }
}

async fn raw_exchange(connection: &quinn::Connection, message: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = connection.open_bi().await.unwrap();
    // The same bytes as a Blyan request: protocol byte, frame header, message.
    let mut head = vec![ECHO.0];
    head.extend_from_slice(&(message.len() as u32).to_be_bytes());
    send.write_all(&head).await.unwrap();
    send.write_all(message).await.unwrap();
    send.finish().unwrap();
    recv.read_to_end(BULK_LEN + 16).await.unwrap()
}

/// The setups every benchmark compares, on one runtime.
struct Setups {
    blyan: BlyanSetup,
    webpki: RawSetup,
    sig_only: RawSetup,
    no_client_auth: RawSetup,
}

fn setups(rt: &Runtime) -> Setups {
    let pki = pki();
    rt.block_on(async {
        Setups {
            blyan: blyan_setup().await,
            webpki: raw_setup(Baseline::MutualWebPki, &pki).await,
            sig_only: raw_setup(Baseline::MutualSignatureOnly, &pki).await,
            no_client_auth: raw_setup(Baseline::NoClientAuth, &pki).await,
        }
    })
}

// ---------------------------------------------------------------- benchmarks

/// Criterion's `iter_custom`: runs `op` `iters` times on `rt` and returns the elapsed time.
fn timed<F, Fut>(rt: &Runtime, iters: u64, mut op: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    rt.block_on(async {
        let started = Instant::now();
        for _ in 0..iters {
            op().await;
        }
        started.elapsed()
    })
}

/// The measured operations, shared by the criterion groups and the paired run.
async fn blyan_handshake(setup: &BlyanSetup) {
    let server = setup.server.local_addr().unwrap();
    let connection = setup
        .client
        .dial(server, Some(setup.server.peer_id()))
        .await
        .unwrap();
    connection.close();
}

async fn raw_handshake(setup: &RawSetup) {
    let connecting = setup.client.connect(setup.server_addr, "blyan").unwrap();
    connecting.await.unwrap().close(0_u32.into(), b"");
}

async fn blyan_small(setup: &BlyanSetup) {
    let response = setup.connection.request_bytes(ECHO, &SMALL).await.unwrap();
    assert_eq!(response.len(), SMALL.len());
}

async fn raw_small(setup: &RawSetup) {
    let response = raw_exchange(&setup.connection, &SMALL).await;
    assert_eq!(response.len(), SMALL.len() + 5);
}

async fn blyan_bulk(setup: &BlyanSetup, message: &[u8]) {
    let response = setup.connection.request_bytes(ECHO, message).await.unwrap();
    assert_eq!(&response[..], &ACK);
}

async fn raw_bulk(setup: &RawSetup, message: &[u8]) {
    let response = raw_exchange(&setup.connection, message).await;
    assert_eq!(&response[..], &ACK);
}

fn bulk_message() -> Vec<u8> {
    let mut message = vec![0x5a_u8; BULK_LEN];
    message[0] = 0x00;
    message
}

fn handshake(c: &mut Criterion) {
    let rt = runtime();
    let s = setups(&rt);
    let mut group = c.benchmark_group("transport/handshake");
    group.bench_function("blyan_mutual_auth", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || blyan_handshake(&s.blyan)))
    });
    group.bench_function("raw_quinn_mutual_webpki", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || raw_handshake(&s.webpki)))
    });
    group.bench_function("raw_quinn_mutual_sig_only", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || raw_handshake(&s.sig_only)))
    });
    group.bench_function("raw_quinn_no_client_auth", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || raw_handshake(&s.no_client_auth)))
    });
    group.finish();
}

fn small_request(c: &mut Criterion) {
    let rt = runtime();
    let s = setups(&rt);
    let mut group = c.benchmark_group("transport/small_request");
    group.bench_function("blyan", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || blyan_small(&s.blyan)))
    });
    group.bench_function("raw_quinn_mutual_webpki", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || raw_small(&s.webpki)))
    });
    group.finish();
}

fn bulk(c: &mut Criterion) {
    let rt = runtime();
    let s = setups(&rt);
    let message = bulk_message();
    let mut group = c.benchmark_group("transport/bulk_8MiB");
    group.throughput(Throughput::Bytes(BULK_LEN as u64));
    group.sample_size(10);
    group.bench_function("blyan", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || blyan_bulk(&s.blyan, &message)))
    });
    group.bench_function("raw_quinn_mutual_webpki", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || raw_bulk(&s.webpki, &message)))
    });
    group.finish();
}

// ---------------------------------------------------------------- paired medians

type Op<'a> = Box<dyn FnMut() -> Pin<Box<dyn Future<Output = ()> + 'a>> + 'a>;

/// The baselines of the paired run, in the order of `paired`'s operations after Blyan's.
const BASELINES: [&str; 3] = [
    "raw quinn mutual webpki",
    "raw quinn mutual sig-only",
    "raw quinn no client auth",
];

/// Runs Blyan and each baseline in turn `rounds` times, one operation each (the order
/// rotates every round), and prints the medians and Blyan's speed as a percentage of each
/// baseline (baseline time / Blyan time). Rotating puts all of them under the same
/// background load, which sequential criterion groups on a shared machine do not.
fn paired(rt: &Runtime, name: &str, rounds: usize, mut ops: [Op<'_>; 4]) {
    let n = ops.len();
    let mut times: [Vec<Duration>; 4] = std::array::from_fn(|_| Vec::with_capacity(rounds));
    rt.block_on(async {
        for round in 0..rounds {
            for k in 0..n {
                let which = (round + k) % n;
                let started = Instant::now();
                ops[which]().await;
                times[which].push(started.elapsed());
            }
        }
    });
    let medians = times.map(|mut times| {
        times.sort();
        times[times.len() / 2]
    });
    let blyan = medians[0];
    let mut line = format!("paired {name} ({rounds} rounds): blyan {blyan:?}");
    for (baseline, median) in BASELINES.iter().zip(&medians[1..]) {
        let percent = 100.0 * median.as_secs_f64() / blyan.as_secs_f64();
        line += &format!(" | {baseline} {median:?} -> blyan = {percent:.1} %");
    }
    eprintln!("{line}");
}

fn paired_report() {
    let rt = runtime();
    let s = setups(&rt);
    let message = bulk_message();
    let message = &message[..];
    paired(
        &rt,
        "handshake",
        600,
        [
            Box::new(|| Box::pin(blyan_handshake(&s.blyan))),
            Box::new(|| Box::pin(raw_handshake(&s.webpki))),
            Box::new(|| Box::pin(raw_handshake(&s.sig_only))),
            Box::new(|| Box::pin(raw_handshake(&s.no_client_auth))),
        ],
    );
    paired(
        &rt,
        "small_request",
        3000,
        [
            Box::new(|| Box::pin(blyan_small(&s.blyan))),
            Box::new(|| Box::pin(raw_small(&s.webpki))),
            Box::new(|| Box::pin(raw_small(&s.sig_only))),
            Box::new(|| Box::pin(raw_small(&s.no_client_auth))),
        ],
    );
    paired(
        &rt,
        "bulk_8MiB",
        40,
        [
            Box::new(|| Box::pin(blyan_bulk(&s.blyan, message))),
            Box::new(|| Box::pin(raw_bulk(&s.webpki, message))),
            Box::new(|| Box::pin(raw_bulk(&s.sig_only, message))),
            Box::new(|| Box::pin(raw_bulk(&s.no_client_auth, message))),
        ],
    );
}

/// `BLYAN_HANDSHAKE_PROFILE=kind[:count]`: one warm-up and `count` handshakes of one kind,
/// nothing else (for callgrind instruction counts).
fn profile(spec: &str) {
    let (kind, count) = match spec.split_once(':') {
        Some((kind, count)) => (kind, count.parse().unwrap()),
        None => (spec, 200_usize),
    };
    let rt = runtime();
    let s = setups(&rt);
    rt.block_on(async {
        for _ in 0..=count {
            match kind {
                "blyan" => blyan_handshake(&s.blyan).await,
                "webpki" => raw_handshake(&s.webpki).await,
                "sig_only" => raw_handshake(&s.sig_only).await,
                "no_client_auth" => raw_handshake(&s.no_client_auth).await,
                other => panic!("unknown handshake kind {other}"),
            }
        }
    });
    eprintln!("profiled {count} + 1 {kind} handshakes");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = handshake, small_request, bulk
}

fn main() {
    if let Ok(spec) = std::env::var("BLYAN_HANDSHAKE_PROFILE") {
        profile(&spec);
        return;
    }
    benches();
    // Only under `cargo bench` (which passes `--bench`), not in test mode or `--list`.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--bench") && !args.iter().any(|arg| arg == "--list") {
        paired_report();
    }
    Criterion::default().configure_from_args().final_summary();
}
