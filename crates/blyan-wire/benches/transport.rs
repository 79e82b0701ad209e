//! Transport benchmarks, each against a raw quinn baseline measured in the same run: the
//! same ring crypto provider, the same tokio runtime and quinn defaults, a plain self-signed
//! server certificate whose verification the client skips, no client authentication, and
//! an echo server that reads a stream to its end and answers.
//!
//! - `handshake`: dial + accept of one connection (Blyan: mutual Ed25519 authentication and
//!   PeerId check; raw: server-only TLS with verification skipped), then close.
//! - `small_request`: one request/response round trip of a 40-byte message on a new stream.
//! - `bulk`: 8 MiB sent on one stream, a 2-byte answer (MB/s of one stream, one direction).
//!
//! After the criterion groups, a paired run alternates one Blyan and one raw operation at a
//! time and prints both medians and their ratio (robust to background load drift).
//!
//! Run: `cargo bench -p blyan-wire --bench transport -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use blyan_crypto::KeyPair;
use blyan_wire::{
    ALPN, Connection, Endpoint, Inbound, Protocol, TransportConfig, self_signed_certificate,
};
use criterion::{Criterion, Throughput, criterion_group};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
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

// ---------------------------------------------------------------- raw quinn baseline

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

struct RawSetup {
    client: quinn::Endpoint,
    server_addr: SocketAddr,
    connection: quinn::Connection,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn raw_server() -> quinn::Endpoint {
    let key = KeyPair::from_seed(&[3; 32]);
    let tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(self_signed_certificate(&key))],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.to_pkcs8_der().to_vec())),
        )
        .unwrap();
    let mut tls = tls;
    tls.alpn_protocols = vec![ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls).unwrap();
    let config = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    quinn::Endpoint::server(config, localhost()).unwrap()
}

fn raw_client() -> quinn::Endpoint {
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SkipVerification))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN.to_vec()];
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

async fn raw_setup() -> RawSetup {
    let server = raw_server();
    let server_addr = server.local_addr().unwrap();
    raw_serve(server);
    let client = raw_client();
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

/// The six measured operations, shared by the criterion groups and the paired run.
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
    let blyan = rt.block_on(blyan_setup());
    let raw = rt.block_on(raw_setup());
    let mut group = c.benchmark_group("transport/handshake");
    group.bench_function("blyan_mutual_auth", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || blyan_handshake(&blyan)))
    });
    group.bench_function("raw_quinn", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || raw_handshake(&raw)))
    });
    group.finish();
}

fn small_request(c: &mut Criterion) {
    let rt = runtime();
    let blyan = rt.block_on(blyan_setup());
    let raw = rt.block_on(raw_setup());
    let mut group = c.benchmark_group("transport/small_request");
    group.bench_function("blyan", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || blyan_small(&blyan)))
    });
    group.bench_function("raw_quinn", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || raw_small(&raw)))
    });
    group.finish();
}

fn bulk(c: &mut Criterion) {
    let rt = runtime();
    let blyan = rt.block_on(blyan_setup());
    let raw = rt.block_on(raw_setup());
    let message = bulk_message();
    let mut group = c.benchmark_group("transport/bulk_8MiB");
    group.throughput(Throughput::Bytes(BULK_LEN as u64));
    group.sample_size(10);
    group.bench_function("blyan", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || blyan_bulk(&blyan, &message)))
    });
    group.bench_function("raw_quinn", |b| {
        b.iter_custom(|iters| timed(&rt, iters, || raw_bulk(&raw, &message)))
    });
    group.finish();
}

// ---------------------------------------------------------------- paired medians

/// Runs `blyan` and `raw` alternately `rounds` times, one operation each, and prints both
/// medians and the throughput ratio raw_time / blyan_time. Alternating puts both under the
/// same background load, which sequential criterion groups on a shared machine do not.
fn paired<A, B, FA, FB>(rt: &Runtime, name: &str, rounds: usize, mut blyan: FA, mut raw: FB)
where
    FA: FnMut() -> A,
    FB: FnMut() -> B,
    A: Future<Output = ()>,
    B: Future<Output = ()>,
{
    let mut blyan_times = Vec::with_capacity(rounds);
    let mut raw_times = Vec::with_capacity(rounds);
    rt.block_on(async {
        for round in 0..rounds {
            // Alternate which goes first, so neither always runs on a warm path.
            let (first_is_blyan, a, b) = if round % 2 == 0 {
                (true, &mut blyan_times, &mut raw_times)
            } else {
                (false, &mut raw_times, &mut blyan_times)
            };
            let started = Instant::now();
            if first_is_blyan {
                blyan().await
            } else {
                raw().await
            }
            a.push(started.elapsed());
            let started = Instant::now();
            if first_is_blyan {
                raw().await
            } else {
                blyan().await
            }
            b.push(started.elapsed());
        }
    });
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (blyan_median, raw_median) = (median(&mut blyan_times), median(&mut raw_times));
    eprintln!(
        "paired {name}: blyan median {blyan_median:?}, raw quinn median {raw_median:?}, \
         blyan speed = {:.1} % of raw ({rounds} rounds)",
        100.0 * raw_median.as_secs_f64() / blyan_median.as_secs_f64()
    );
}

fn paired_report() {
    let rt = runtime();
    let blyan = rt.block_on(blyan_setup());
    let raw = rt.block_on(raw_setup());
    let message = bulk_message();
    paired(
        &rt,
        "handshake",
        400,
        || blyan_handshake(&blyan),
        || raw_handshake(&raw),
    );
    paired(
        &rt,
        "small_request",
        3000,
        || blyan_small(&blyan),
        || raw_small(&raw),
    );
    paired(
        &rt,
        "bulk_8MiB",
        40,
        || blyan_bulk(&blyan, &message),
        || raw_bulk(&raw, &message),
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = handshake, small_request, bulk
}

fn main() {
    benches();
    // Only under `cargo bench` (which passes `--bench`), not in test mode or `--list`.
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|arg| arg == "--bench") && !args.iter().any(|arg| arg == "--list") {
        paired_report();
    }
    Criterion::default().configure_from_args().final_summary();
}
