//! `Endpoint`: a QUIC socket with this node's identity that dials and accepts connections.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use blyan_crypto::{KeyPair, PeerId};
use rustls::sign::SingleCertAndKey;
use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio::task::JoinHandle;

use crate::transport::config::TransportConfig;
use crate::transport::connection::Connection;
use crate::transport::error::{BindError, ConnectFailure, ConnectionLost, DialError, close_code};
use crate::transport::protocol::ALPN;
use crate::transport::tls::{
    PeerVerifier, SERVER_NAME, client_config, negotiated_alpn, node_identity, remote_peer_id,
    server_config,
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
    identity: Arc<SingleCertAndKey>,
    verified: Arc<VerifiedCertificates>,
    config: Arc<TransportConfig>,
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
        let identity = node_identity(key);
        let verified = Arc::new(VerifiedCertificates::default());
        let tls = server_config(Arc::clone(&identity), Arc::clone(&verified))?;
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
        let config = Arc::new(config);
        let (queue, accepted) = mpsc::channel(config.accept_queue.max(1));
        let accept_task = tokio::spawn(accept_loop(quic.clone(), Arc::clone(&config), queue));
        Ok(Self {
            inner: Arc::new(Inner {
                quic,
                peer_id: key.peer_id(),
                identity,
                verified,
                config,
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
        &self.inner.config
    }

    /// Connects to `addr`. With `expected`, the handshake is aborted (before this node's
    /// certificate is sent) unless the remote's certificate proves that id.
    pub async fn dial(
        &self,
        addr: SocketAddr,
        expected: Option<PeerId>,
    ) -> Result<Connection, DialError> {
        let verifier = Arc::new(PeerVerifier::new(
            expected,
            Arc::clone(&self.inner.verified),
        ));
        let tls = client_config(Arc::clone(&self.inner.identity), Arc::clone(&verifier))
            .map_err(|err| DialError::Connect(ConnectFailure::tls(err)))?;
        let quic_tls = quinn::crypto::rustls::QuicClientConfig::try_from(tls)
            .map_err(|err| DialError::Connect(ConnectFailure::tls(err)))?;
        let mut client = quinn::ClientConfig::new(Arc::new(quic_tls));
        client.transport_config(Arc::clone(&self.inner.transport));
        let connecting = self
            .inner
            .quic
            .connect_with(client, addr, SERVER_NAME)
            .map_err(|err| DialError::Connect(ConnectFailure::quic(err)))?;
        let after = self.inner.config.handshake_timeout;
        match tokio::time::timeout(after, connecting).await {
            Err(_) => Err(DialError::HandshakeTimeout { after }),
            Ok(Err(lost)) => match (expected, verifier.mismatch()) {
                (Some(expected), Some(actual)) => {
                    Err(DialError::PeerIdMismatch { expected, actual })
                }
                _ => Err(DialError::Handshake(ConnectionLost(lost))),
            },
            Ok(Ok(quic)) => establish(quic, &self.inner.config),
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
        tokio::time::timeout(self.inner.config.close_timeout, idle)
            .await
            .is_ok()
    }
}

fn no_runtime() -> BindError {
    BindError::Io(std::io::Error::other(
        "Endpoint must be created inside a Tokio runtime",
    ))
}

/// Checks what the handshake established (ALPN, the peer's certificate) and wraps the
/// connection.
fn establish(quic: quinn::Connection, config: &TransportConfig) -> Result<Connection, DialError> {
    if negotiated_alpn(&quic).as_deref() != Some(ALPN) {
        quic.close(close_code::WRONG_PROTOCOL.into(), b"ALPN blyan/1 required");
        return Err(DialError::WrongProtocol);
    }
    let Some(remote) = remote_peer_id(&quic) else {
        quic.close(close_code::WRONG_PROTOCOL.into(), b"no certificate");
        return Err(DialError::NoPeerCertificate);
    };
    Ok(Connection::new(quic, remote, config))
}

/// Accepts connection attempts, runs each handshake in its own task (bounded in number and
/// time), and queues established connections for `Endpoint::accept`.
async fn accept_loop(
    quic: quinn::Endpoint,
    config: Arc<TransportConfig>,
    queue: mpsc::Sender<Connection>,
) {
    let handshakes = Arc::new(Semaphore::new(config.max_pending_handshakes.max(1)));
    while let Some(incoming) = quic.accept().await {
        let Ok(permit) = Arc::clone(&handshakes).try_acquire_owned() else {
            tracing::debug!(remote = %incoming.remote_address(), "too many handshakes; refused");
            incoming.refuse();
            continue;
        };
        let config = Arc::clone(&config);
        let queue = queue.clone();
        tokio::spawn(async move {
            // Held until the connection is queued: a full queue slows new handshakes.
            let _permit = permit;
            let remote = incoming.remote_address();
            let connecting = match incoming.accept() {
                Ok(connecting) => connecting,
                Err(err) => {
                    tracing::debug!(%remote, %err, "inbound connection failed");
                    return;
                }
            };
            let after: Duration = config.handshake_timeout;
            match tokio::time::timeout(after, connecting).await {
                Ok(Ok(quic)) => match establish(quic, &config) {
                    Ok(connection) => {
                        let _ = queue.send(connection).await;
                    }
                    Err(err) => tracing::debug!(%remote, %err, "inbound handshake refused"),
                },
                Ok(Err(err)) => tracing::debug!(%remote, %err, "inbound handshake failed"),
                Err(_) => tracing::debug!(%remote, "inbound handshake timed out"),
            }
        });
    }
}
