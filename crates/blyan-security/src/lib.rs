//! DoS protection for a Blyan node: who may connect, which messages are processed, and
//! who gets disconnected or banned.
//!
//! [`SecurityManager`] keeps the seed's faces: [`check_connection`], [`check_message`],
//! [`report`], [`ban_peer`], [`is_banned`]. Behind them sit parts that also work alone:
//!
//! - **Rate limits** ([`TokenBucket`], [`AttemptLimiter`]): `governor`'s GCRA buckets per
//!   peer and per IP, counting message cost ([`MessageCosts`]) and KiB; per IP, inbound
//!   connection attempts; per peer, how many unknown relay origins it may introduce.
//! - **Connection limits** ([`ConnectionLimits`]): inbound and outbound budgets, caps per
//!   IP and per /24 (IPv6 /48), and Bitcoin Core-style eviction when inbound is full.
//! - **Replay protection** ([`ReplayGuard`]): a freshness window on the origin's timestamp
//!   and a 256-nonce anti-replay bitmap per origin.
//! - **Scores** ([`PeerScores`]): weighted [`PeerEvent`]s, exponential decay, thresholds.
//! - **Bans** ([`BanList`]): by peer and by IP, escalating, persisted atomically.
//!
//! **Time comes in, decisions go out.** Nothing here reads a clock: every call takes a
//! [`Now`] (monotonic time for buckets, decay and expiry; wall-clock time for message
//! timestamps and the ban file). Governor is driven the same way: each bucket carries a
//! clock cell that the bucket sets to the caller's `now` before checking, so a test or a
//! simulator replays the exact same decisions from the same inputs.
//!
//! **Everything is bounded.** Per-peer and per-IP state lives only while a connection is
//! admitted (so the connection caps bound it); tables keyed by input a remote controls
//! (attempts per IP, replay origins, scores, bans) have caps and an eviction rule that
//! drops what is worth least first. [`SecurityManager::table_sizes`] never exceeds
//! [`SecurityManager::table_caps`].
//!
//! **Typed refusals.** Every refusal is a [`Reject`] with a fixed label
//! ([`Reject::as_str`]) for `blyan_p2p_messages_total{status}`; events and ban reasons
//! have labels too, so metric cardinality is bounded by these enums.
//!
//! ```
//! use std::time::Duration;
//! use blyan_crypto::PeerId;
//! use blyan_security::{Direction, MessageKind, MessageMeta, Now, PeerEvent, Reject,
//!     SecurityConfig, SecurityManager, Verdict};
//!
//! let mut security = SecurityManager::new(SecurityConfig::default())?;
//! let now = Now::new(Duration::ZERO, 1_700_000_000_000);
//! let peer = PeerId::from_bytes([7; 32]);
//! let ip = "192.0.2.10".parse()?;
//!
//! let _admitted = security.check_connection(now, peer, ip, Direction::Inbound)?;
//! security.check_message(now, &peer, ip, &MessageMeta::direct(MessageKind::Block, 4096))?;
//!
//! // An invalid signature is fatal: the peer is banned and must be disconnected.
//! let Verdict::Ban(action) = security.report(now, &peer, PeerEvent::InvalidSignature) else {
//!     unreachable!("fatal events ban");
//! };
//! assert_eq!(action.disconnect, vec![peer]);
//! let meta = MessageMeta::direct(MessageKind::Control, 64);
//! assert_eq!(security.check_message(now, &peer, ip, &meta), Err(Reject::Banned));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! [`check_connection`]: SecurityManager::check_connection
//! [`check_message`]: SecurityManager::check_message
//! [`report`]: SecurityManager::report
//! [`ban_peer`]: SecurityManager::ban_peer
//! [`is_banned`]: SecurityManager::is_banned

mod ban_file;
mod bans;
mod bounded;
mod connections;
mod error;
mod manager;
mod net_group;
mod rate_limit;
mod reject;
mod replay;
mod scores;
mod time;

pub use ban_file::BAN_FILE_VERSION;
pub use bans::{BanConfig, BanList, BanReason, BanRecord, PeerBan};
pub use connections::{Admission, ConnectionLimits, Direction, EvictionProtection};
pub use error::{ConfigError, PersistError};
pub use manager::{
    BanAction, MessageMeta, Relayed, SecurityConfig, SecurityManager, TableSizes, Verdict,
};
pub use net_group::{IpKey, IpKeyParseError, Subnet};
pub use rate_limit::{
    AttemptLimiter, MessageCosts, MessageKind, RateLimitConfig, RateQuota, Shortfall, TokenBucket,
};
pub use reject::{Reject, Resource, Scope};
pub use replay::{NONCE_WINDOW, ReplayConfig, ReplayGuard};
pub use scores::{PeerEvent, PeerScores, ScoreConfig, Standing};
pub use time::{Now, SystemClock};

/// Re-exported so that [`TokenBucket::new`] and [`AttemptLimiter::new`] can be called
/// without depending on `governor` directly.
pub use governor::Quota;
