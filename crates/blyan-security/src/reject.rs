//! Why a connection or a message was refused.

/// Who a rate limit was counted against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// The sending peer.
    Peer,
    /// Every peer behind the sender's IP (IPv4 address or IPv6 /64).
    Ip,
}

/// What a rate limit counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resource {
    /// Message cost units (each [`MessageKind`](crate::MessageKind) has a cost).
    Messages,
    /// Bytes, counted in KiB.
    Bytes,
    /// Relayed messages from origins the replay guard does not know yet.
    NewOrigins,
}

/// A refusal, as a typed value. [`Reject::as_str`] gives a fixed label for metrics
/// (`blyan_p2p_messages_total{status=...}`), so the label set is bounded by this enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Reject {
    /// The peer is banned.
    #[error("peer is banned")]
    Banned,
    /// The peer's IP (or IPv6 /64) is banned.
    #[error("IP is banned")]
    IpBanned,
    /// Too many inbound connection attempts from this IP.
    #[error("too many connection attempts from this IP")]
    TooManyAttempts,
    /// The peer already has a connection.
    #[error("peer is already connected")]
    AlreadyConnected,
    /// The peer's score is below the disconnect threshold; it must wait for it to decay.
    #[error("peer score is below the disconnect threshold")]
    LowScore,
    /// The IP already has the maximum number of connections.
    #[error("too many connections from this IP")]
    TooManyPerIp,
    /// The IPv4 /24 or IPv6 /48 already has the maximum number of connections.
    #[error("too many connections from this subnet")]
    TooManyPerSubnet,
    /// Every inbound slot is taken and no connected peer may be evicted for this one.
    #[error("inbound connection slots are full")]
    InboundFull,
    /// Every outbound slot is taken.
    #[error("outbound connection slots are full")]
    OutboundFull,
    /// A message from a peer with no admitted connection at this IP.
    #[error("no admitted connection for this peer at this IP")]
    UnknownConnection,
    /// A token bucket is empty.
    #[error("rate limited ({scope:?}, {resource:?})")]
    RateLimited {
        /// Whose bucket.
        scope: Scope,
        /// Which bucket.
        resource: Resource,
    },
    /// The message costs more than a full bucket holds: it can never pass.
    #[error("message exceeds the burst capacity of its rate limit")]
    MessageTooLarge,
    /// A relayed message's nonce was already seen from its origin.
    #[error("nonce already seen from this origin")]
    Replay,
    /// A relayed message's nonce is below its origin's window: it cannot be told apart
    /// from a replay.
    #[error("nonce is below the origin's replay window")]
    NonceTooOld,
    /// A relayed message's timestamp is older than the freshness window (or than the
    /// floor left by forgetting senders, see [`ReplayGuard`](crate::ReplayGuard)).
    #[error("timestamp is too old")]
    Stale,
    /// A relayed message's timestamp is further in the future than the allowed skew.
    #[error("timestamp is in the future")]
    FromFuture,
}

impl Reject {
    /// Every label [`Reject::as_str`] can return, for pre-registering metrics.
    pub const LABELS: [&'static str; 16] = [
        "banned",
        "ip_banned",
        "too_many_attempts",
        "already_connected",
        "low_score",
        "too_many_per_ip",
        "too_many_per_subnet",
        "inbound_full",
        "outbound_full",
        "unknown_connection",
        "rate_limited",
        "message_too_large",
        "replay",
        "nonce_too_old",
        "stale",
        "future",
    ];

    /// A fixed, lowercase label for metrics and logs.
    pub const fn as_str(&self) -> &'static str {
        match self {
            Self::Banned => "banned",
            Self::IpBanned => "ip_banned",
            Self::TooManyAttempts => "too_many_attempts",
            Self::AlreadyConnected => "already_connected",
            Self::LowScore => "low_score",
            Self::TooManyPerIp => "too_many_per_ip",
            Self::TooManyPerSubnet => "too_many_per_subnet",
            Self::InboundFull => "inbound_full",
            Self::OutboundFull => "outbound_full",
            Self::UnknownConnection => "unknown_connection",
            Self::RateLimited { .. } => "rate_limited",
            Self::MessageTooLarge => "message_too_large",
            Self::Replay => "replay",
            Self::NonceTooOld => "nonce_too_old",
            Self::Stale => "stale",
            Self::FromFuture => "future",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_listed() {
        let all = [
            Reject::Banned,
            Reject::IpBanned,
            Reject::TooManyAttempts,
            Reject::AlreadyConnected,
            Reject::LowScore,
            Reject::TooManyPerIp,
            Reject::TooManyPerSubnet,
            Reject::InboundFull,
            Reject::OutboundFull,
            Reject::UnknownConnection,
            Reject::RateLimited {
                scope: Scope::Peer,
                resource: Resource::Bytes,
            },
            Reject::MessageTooLarge,
            Reject::Replay,
            Reject::NonceTooOld,
            Reject::Stale,
            Reject::FromFuture,
        ];
        let labels: Vec<_> = all.iter().map(Reject::as_str).collect();
        assert_eq!(labels, Reject::LABELS);
    }
}
