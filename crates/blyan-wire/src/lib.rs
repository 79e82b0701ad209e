//! # blyan-wire: the bytes between Blyan nodes
//!
//! Typed messages to bytes and back, and the authenticated QUIC transport that carries them.
//! It knows no domain type: anything `Serialize + DeserializeOwned` travels, and each
//! protocol crate (DHT, p2p) owns its message enum and its [`Protocol`] byte.
//!
//! 1. **Canonical encoding** ([`to_canonical_bytes`]): compact MsgPack (structs as arrays,
//!    `serde_bytes` fields as `bin`), deterministic: consensus hashes and signs these bytes,
//!    never frames. Decoding rejects trailing bytes and nesting beyond [`Limits`].
//! 2. **Messages** ([`Codec::serialize`], [`network_serializer`]): `flags | payload`, bit 0 =
//!    zstd (above 1 KiB, when smaller). **Frames** ([`Codec::frame`], [`FrameDecoder`]):
//!    `length (u32 BE) | flags | payload`, the length checked (16 MiB) before a payload byte
//!    is read; decompression stops at 16 MiB (a zstd bomb is an error). No decoder panics.
//! 3. **Transport** (feature `transport`, default): an [`Endpoint`] on quinn + rustls (ring),
//!    TLS 1.3 only, ALPN `blyan/1`, mutual authentication. A node's certificate is
//!    self-signed with its Ed25519 key ([`self_signed_certificate`], signed through
//!    blyan-crypto); [`verify_peer_certificate`] accepts exactly such a certificate and the
//!    remote's `PeerId` is SHA-256 of its key. [`Endpoint::dial`] with an expected `PeerId`
//!    fails with [`DialError::PeerIdMismatch`] inside the handshake. A [`Connection`] carries
//!    one request per bidirectional stream (`protocol | frame` → `frame`) and one-way
//!    messages on unidirectional streams; [`Connection::accept_inbound`] yields
//!    [`Inbound`] requests (answer once, or drop: the peer sees [`ResetCode::Refused`]) and
//!    messages. Every cap and timeout is in [`TransportConfig`]: QUIC stream limits, an
//!    inbound byte budget, deadlines on outbound requests and on inbound reads (a stalled
//!    stream is reset alone), handshake (past a threshold, new addresses get a QUIC Retry
//!    first), idle and close. Connections, handshake failures by reason, stream resets,
//!    timeouts and bytes are counted through the `metrics` facade ([`metric_names`]).
//!    `SimNetwork` (feature `sim`) runs the same endpoint over an in-process network with
//!    cut, delayed and lossy links. Byte-level spec: `docs/protocol.md`, "Transport".
//!
//! ```
//! let frame = blyan_wire::Codec::DEFAULT.frame(&(1u8, "hi"))?;
//! assert_eq!(&frame[..], &[0, 0, 0, 6, 0, 0x92, 0x01, 0xa2, b'h', b'i']);
//! # #[cfg(feature = "transport")] {
//! use blyan_crypto::KeyPair;
//! use blyan_wire::{Endpoint, Inbound, Protocol, TransportConfig};
//! const ADD_ONE: Protocol = Protocol(1);
//! tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//!     let config = TransportConfig::default();
//!     let server = Endpoint::bind("127.0.0.1:0".parse()?, &KeyPair::generate()?, config.clone())?;
//!     let client = Endpoint::bind("127.0.0.1:0".parse()?, &KeyPair::generate()?, config)?;
//!     let (dialed, accepted) =
//!         tokio::join!(client.dial(server.local_addr()?, Some(server.peer_id())), server.accept());
//!     let (connection, accepted) = (dialed?, accepted.ok_or("endpoint closed")?);
//!     assert_eq!(accepted.remote_peer_id(), client.peer_id());
//!     tokio::spawn(async move {
//!         while let Some(Inbound::Request(request)) = accepted.accept_inbound().await {
//!             if let Ok(n) = request.decode::<u64>() {
//!                 let _ = request.respond(&(n + 1)).await;
//!             }
//!         }
//!     });
//!     assert_eq!(connection.request::<u64, u64>(ADD_ONE, &41).await?, 42);
//!     server.close().await;
//!     Ok::<_, Box<dyn std::error::Error>>(())
//! })?;
//! # }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! One connection per peer (dial deduplication, per-peer caps) is blyan-p2p's peer
//! manager's policy, not the transport's.

#[cfg(feature = "async-io")]
mod async_io;
mod canonical;
mod certificate;
mod codec;
mod compression;
mod error;
mod frame;
mod limits;
pub mod network_serializer;
#[cfg(feature = "transport")]
mod transport;
mod value_extent;

pub use canonical::{from_canonical_bytes, from_canonical_bytes_exact, to_canonical_bytes};
pub use certificate::{
    CertificateError, MAX_CERTIFICATE_LEN, peer_id_of_certificate, self_signed_certificate,
    verify_peer_certificate,
};
pub use codec::{Codec, FLAG_ZSTD, KNOWN_FLAGS};
pub use error::{CodecError, DecodeError, EncodeError};
pub use frame::{FRAME_HEADER_LEN, FrameDecoder, split_frame};
pub use limits::{
    Compression, DEFAULT_COMPRESSION_THRESHOLD, DEFAULT_MAX_DECOMPRESSED_LEN, DEFAULT_MAX_DEPTH,
    DEFAULT_MAX_FRAME_LEN, DEFAULT_ZSTD_LEVEL, Limits,
};
#[cfg(feature = "transport")]
pub use transport::*;
