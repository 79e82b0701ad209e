//! `Endpoint`: a QUIC socket with this node's identity that dials and accepts connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blyan_crypto::{KeyPair, PeerId};
use rustls::crypto::CryptoProvider;
use rustls::sign::SingleCertAndKey;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::transport::config::TransportConfig;
use crate::transport::connection::Connection;
use crate::transport::error::{BindError, ConnectFailure, ConnectionLost, DialError, close_code};
use crate::transport::metrics::{self, Direction, HandshakeFailure, TransportMetrics};
use crate::transport::protocol::ALPN;
use crate::transport::tls::{
    PeerVerifier, SERVER_NAME, client_config, negotiated_alpn, node_identity, provider,
    remote_peer_id, server_config,
};
use crate::transport::verified_certificates::VerifiedCertificates;

/// A QUIC endpoint with this node's identity: it dials peers and accepts their connections,
/// both mutually authenticated. Cheap to clone; clones share the socket.
///
/// Must be created inside a Tokio runtime (multi-threaded or current-thread).
#[derive(Clone, Debug)]
pub struct Endpoint {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    quic: quinn::Endpoint,
    peer_id: PeerId,
    provider: Arc<CryptoProvider>,
    identity: Arc<SingleCertAndKey>,
    shared: Arc<Shared>,
    transport: Arc<quinn::TransportConfig>,
    accepted: Mutex<mpsc::Receiver<Connection>>,
    accept_task: JoinHandle<()>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

impl Endpoint {
    /// Binds a UDP socket on `addr` (port 0 picks a free port) with `key` as the node
    /// identity.
    ///
    /// The endpoint's byte counters (`blyan_p2p_bytes_total`) are registered here with the
    /// `metrics` recorder current at this point: install the recorder before binding.
    pub fn bind(
        addr: SocketAddr,
        key: &KeyPair,
        config: TransportConfig,
    ) -> Result<Self, BindError> {
        tokio::runtime::Handle::try_current().map_err(|_| no_runtime())?;
        let socket = std::net::UdpSocket::bind(addr)?;
        let runtime = Arc::new(quinn::TokioRuntime);
        let socket = quinn::Runtime::wrap_udp_socket(&*runtime, socket)?;
        Self::with_socket(socket, runtime, key, config)
    }

    /// Binds `addr` on a simulated network (feature `sim`).
    #[cfg(feature = "sim")]
    pub fn bind_sim(
        network: &crate::SimNetwork,
        addr: SocketAddr,
        key: &KeyPair,
        config: TransportConfig,
    ) -> Result<Self, BindError> {
        tokio::runtime::Handle::try_current().map_err(|_| no_runtime())?;
        let socket = network.bind(addr)?;
        Self::with_socket(Arc::new(socket), Arc::new(quinn::TokioRuntime), key, config)
    }

    fn with_socket(
        socket: Arc<dyn quinn::AsyncUdpSocket>,
        runtime: Arc<dyn quinn::Runtime>,
        key: &KeyPair,
        config: TransportConfig,
    ) -> Result<Self, BindError> {
        let transport = Arc::new(config.quinn_transport()?);
        let provider = provider();
        let identity = node_identity(key);
        let verified = Arc::new(VerifiedCertificates::default());
        let metrics = TransportMetrics::new();
        let tls = server_config(
            Arc::clone(&provider),
            Arc::clone(&identity),
            Arc::clone(&verified),
        )?;
        let quic_tls = quinn::crypto::rustls::QuicServerConfig::try_from(tls)
            .map_err(|err| BindError::Tls(err.to_string()))?;
        let mut server = quinn::ServerConfig::with_crypto(Arc::new(quic_tls));
        server.transport_config(Arc::clone(&transport));
        let quic = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(server),
            socket,
            runtime,
        )?;
        let (queue, accepted) = mpsc::channel(config.accept_queue.max(1));
        let shared = Arc::new(Shared {
            config,
            verified,
            metrics,
        });
        let accept_task = tokio::spawn(accept_loop(quic.clone(), Arc::clone(&shared), queue));
        Ok(Self {
            inner: Arc::new(Inner {
                quic,
                peer_id: key.peer_id(),
                provider,
                identity,
                shared,
                transport,
                accepted: Mutex::new(accepted),
                accept_task,
            }),
        })
    }

    /// The address the socket is bound to.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.quic.local_addr()
    }

    /// This node's id (SHA-256 of its key), which peers see in its certificate.
    pub fn peer_id(&self) -> PeerId {
        self.inner.peer_id
    }

    /// The configuration this endpoint runs with.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.shared.config
    }

    /// Connects to `addr`. With `expected`, the handshake is aborted (before this node's
    /// certificate is sent) unless the remote's certificate proves that id.
    pub async fn dial(
        &self,
        addr: SocketAddr,
        expected: Option<PeerId>,
    ) -> Result<Connection, DialError> {
        let result = self.try_dial(addr, expected).await;
        match &result {
            Ok(_) => metrics::connection_opened(Direction::Outbound),
            Err(err) => {
                if let Some(reason) = dial_failure_reason(err) {
                    metrics::handshake_failed(Direction::Outbound, reason);
                }
            }
        }
        result
    }

    async fn try_dial(
        &self,
        addr: SocketAddr,
        expected: Option<PeerId>,
    ) -> Result<Connection, DialError> {
        let inner = &*self.inner;
        let verifier = Arc::new(PeerVerifier::new(
            expected,
            Arc::clone(&inner.shared.verified),
        ));
        let tls = client_config(
            Arc::clone(&inner.provider),
            Arc::clone(&inner.identity),
            Arc::clone(&verifier),
        )
        .map_err(|err| DialError::Connect(ConnectFailure::tls(err)))?;
        let quic_tls = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|err| DialError::Connect(ConnectFailure::tls(err)))?;
        let mut client = quinn::ClientConfig::new(Arc::new(quic_tls));
        client.transport_config(Arc::clone(&inner.transport));
        let connecting = inner
            .quic
            .connect_with(client, addr, SERVER_NAME)
            .map_err(|err| DialError::Connect(ConnectFailure::quic(err)))?;
        let after = inner.shared.config.handshake_timeout;
        match tokio::time::timeout(after, connecting).await {
            Err(_) => Err(DialError::HandshakeTimeout { after }),
            Ok(Err(lost)) => match (expected, verifier.mismatch()) {
                (Some(expected), Some(actual)) => {
                    Err(DialError::PeerIdMismatch { expected, actual })
                }
                _ => Err(DialError::Handshake(ConnectionLost(lost))),
            },
            Ok(Ok(quic)) => establish(quic, Direction::Outbound, &inner.shared),
        }
    }

    /// The next authenticated inbound connection; `None` after [`Endpoint::close`].
    ///
    /// Handshakes run concurrently in the background (at most
    /// `max_pending_handshakes`, each bounded by `handshake_timeout`), so a slow or hostile
    /// client never delays the others. Cancel-safe.
    pub async fn accept(&self) -> Option<Connection> {
        self.inner.accepted.lock().await.recv().await
    }

    /// Shuts the endpoint down gracefully: stops accepting, closes every connection with
    /// [`close_code::SHUTDOWN`] and waits up to `close_timeout` for peers to acknowledge.
    /// Returns `true` when everything closed in time.
    pub async fn close(&self) -> bool {
        self.inner.quic.set_server_config(None);
        self.inner.accept_task.abort();
        self.inner
            .quic
            .close(close_code::SHUTDOWN.into(), b"shutdown");
        let idle = self.inner.quic.wait_idle();
        tokio::time::timeout(self.inner.shared.config.close_timeout, idle)
            .await
            .is_ok()
    }
}

fn no_runtime() -> BindError {
    BindError::Io(std::io::Error::other(
        "Endpoint must be created inside a Tokio runtime",
    ))
}

/// The `reason` label of a failed dial; `None` when no handshake started.
fn dial_failure_reason(err: &DialError) -> Option<HandshakeFailure> {
    Some(match err {
        DialError::PeerIdMismatch { .. } => HandshakeFailure::PeerIdMismatch,
        DialError::HandshakeTimeout { .. } => HandshakeFailure::Timeout,
        DialError::Handshake(lost) => HandshakeFailure::of(&lost.0),
        DialError::NoPeerCertificate => HandshakeFailure::NoCertificate,
        DialError::WrongProtocol => HandshakeFailure::WrongProtocol,
        DialError::Connect(_) => return None,
    })
}

/// What the connections of an endpoint share with the code that establishes them.
#[derive(Debug)]
struct Shared {
    config: TransportConfig,
    verified: Arc<VerifiedCertificates>,
    metrics: TransportMetrics,
}

/// Checks what the handshake established (ALPN, the peer's certificate) and wraps the
/// connection.
fn establish(
    quic: quinn::Connection,
    direction: Direction,
    shared: &Shared,
) -> Result<Connection, DialError> {
    if negotiated_alpn(&quic).as_deref() != Some(ALPN) {
        quic.close(close_code::WRONG_PROTOCOL.into(), b"ALPN blyan/1 required");
        return Err(DialError::WrongProtocol);
    }
    let Some(remote) = remote_peer_id(&quic, &shared.verified) else {
        quic.close(close_code::WRONG_PROTOCOL.into(), b"no certificate");
        return Err(DialError::NoPeerCertificate);
    };
    Ok(Connection::new(
        quic,
        remote,
        direction,
        &shared.config,
        shared.metrics.clone(),
    ))
}

/// Accepts connection attempts, runs each handshake in its own task (bounded in number and
/// time), and queues established connections for `Endpoint::accept`. Past
/// `validate_addresses_above` handshakes in progress, an attempt from an address not yet
/// validated is answered with a QUIC Retry instead (stateless: it costs this side no
/// handshake work until the client proves it receives at its address).
async fn accept_loop(quic: quinn::Endpoint, shared: Arc<Shared>, queue: mpsc::Sender<Connection>) {
    let max_handshakes = shared.config.max_pending_handshakes.max(1);
    let handshakes = Arc::new(Semaphore::new(max_handshakes));
    while let Some(incoming) = quic.accept().await {
        let in_progress = max_handshakes - handshakes.available_permits();
        if in_progress >= shared.config.validate_addresses_above
            && !incoming.remote_address_validated()
            && incoming.may_retry()
        {
            metrics::address_validation();
            if let Err(err) = incoming.retry() {
                err.into_incoming().refuse();
            }
            continue;
        }
        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
            tracing::debug!(remote = %incoming.remote_address(), "too many handshakes; refused");
            metrics::handshake_failed(Direction::Inbound, HandshakeFailure::Capacity);
            incoming.refuse();
            continue;
        };
        let shared = Arc::clone(&shared);
        let queue = queue.clone();
        tokio::spawn(async move {
            // Held until the connection is queued: a full queue slows new handshakes.
            let _permit = permit;
            let remote = incoming.remote_address();
            let connecting = match incoming.accept() {
                Ok(connecting) => connecting,
                Err(err) => {
                    tracing::debug!(%remote, %err, "inbound connection failed");
                    metrics::handshake_failed(Direction::Inbound, HandshakeFailure::of(&err));
                    return;
                }
            };
            let after: Duration = shared.config.handshake_timeout;
            let failure = match tokio::time::timeout(after, connecting).await {
                Ok(Ok(quic)) => match establish(quic, Direction::Inbound, &shared) {
                    Ok(connection) => {
                        metrics::connection_opened(Direction::Inbound);
                        let _ = queue.send(connection).await;
                        return;
                    }
                    Err(err) => {
                        tracing::debug!(%remote, %err, "inbound handshake refused");
                        dial_failure_reason(&err).unwrap_or(HandshakeFailure::Other)
                    }
                },
                Ok(Err(err)) => {
                    tracing::debug!(%remote, %err, "inbound handshake failed");
                    HandshakeFailure::of(&err)
                }
                Err(_) => {
                    tracing::debug!(%remote, "inbound handshake timed out");
                    HandshakeFailure::Timeout
                }
            };
            metrics::handshake_failed(Direction::Inbound, failure);
        });
    }
}
