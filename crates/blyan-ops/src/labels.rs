//! Closed label enums: the only values a metric label may take.
//!
//! A Prometheus series exists per distinct label set, so a label fed from
//! remote input (a peer id, an address, an error string) lets any peer grow
//! the node's memory and the monitoring server's. Every label value here comes
//! from a fixed enum, so the number of series is known at compile time.

use std::fmt;

/// A label key together with every value it may take, as listed in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelSpec {
    /// The label key written to the exposition (`direction`, `status`, ...).
    pub key: &'static str,
    /// Every value the key may take. Empty for a label whose value is fixed
    /// per process by the binary (the `version` of `blyan_build_info`).
    pub values: &'static [&'static str],
}

/// Defines a label enum with its key, its string values and the lists the
/// catalog and the tests iterate over, so a value is written exactly once.
macro_rules! label_enum {
    (
        $(#[$meta:meta])*
        $name:ident, key = $key:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $value:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [Self] = &[ $( Self::$variant, )+ ];

            /// The label key and every value it may take.
            pub const LABEL: LabelSpec = LabelSpec {
                key: $key,
                values: &[ $( $value, )+ ],
            };

            /// The label value written to the exposition.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $value, )+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

label_enum! {
    /// Which side opened a connection, or which way bytes travelled.
    Direction, key = "direction" {
        /// The remote dialled us; bytes we received.
        Inbound => "inbound",
        /// We dialled the remote; bytes we sent.
        Outbound => "outbound",
    }
}

label_enum! {
    /// The outcome of importing one block.
    BlockStatus, key = "status" {
        /// Valid and stored in the block tree (canonical or side branch).
        Imported => "imported",
        /// Failed validation.
        Rejected => "rejected",
        /// Parent unknown: parked in the orphan buffer.
        Orphaned => "orphaned",
        /// Already known: nothing to do.
        Duplicate => "duplicate",
    }
}

impl From<bool> for BlockStatus {
    /// The seed's `record_block(success, ..)`: `true` is [`BlockStatus::Imported`],
    /// `false` is [`BlockStatus::Rejected`].
    fn from(success: bool) -> Self {
        if success {
            Self::Imported
        } else {
            Self::Rejected
        }
    }
}

label_enum! {
    /// The kind of a peer-to-peer message, as counted by `blyan_p2p_messages_total`.
    ///
    /// Protocol crates map their own message enums onto these kinds; a kind
    /// they do not know maps to [`MessageType::Other`].
    MessageType, key = "type" {
        /// Status exchange when a connection opens.
        Handshake => "handshake",
        /// Liveness probe and its answer.
        Ping => "ping",
        /// A block relayed by gossip.
        BlockGossip => "block_gossip",
        /// A transaction relayed by gossip.
        TxGossip => "tx_gossip",
        /// A request for blocks or headers (sync).
        BlockRequest => "block_request",
        /// The answer to a block request.
        BlockResponse => "block_response",
        /// Kademlia PING.
        DhtPing => "dht_ping",
        /// Kademlia FIND_NODE.
        DhtFindNode => "dht_find_node",
        /// Kademlia FIND_VALUE.
        DhtFindValue => "dht_find_value",
        /// Kademlia STORE.
        DhtStore => "dht_store",
        /// Anything else.
        Other => "other",
    }
}

label_enum! {
    /// What happened to a peer-to-peer message.
    MessageStatus, key = "status" {
        /// Written to a peer.
        Sent => "sent",
        /// Read from a peer and accepted for processing.
        Received => "received",
        /// Read from a peer and failed decoding or validation.
        Invalid => "invalid",
        /// Refused by a rate limit.
        RateLimited => "rate_limited",
        /// Already seen (gossip duplicate or replay).
        Duplicate => "duplicate",
        /// Dropped because a bounded queue was full.
        Dropped => "dropped",
        /// A request that got no answer in time.
        Timeout => "timeout",
    }
}

label_enum! {
    /// Why a peer's score was lowered.
    PenaltyReason, key = "reason" {
        /// Sent a block that failed validation.
        InvalidBlock => "invalid_block",
        /// Sent a transaction that failed validation.
        InvalidTransaction => "invalid_transaction",
        /// Sent a message whose signature did not verify.
        InvalidSignature => "invalid_signature",
        /// Sent bytes that did not decode.
        MalformedMessage => "malformed_message",
        /// Sent a response nobody asked for.
        Unsolicited => "unsolicited",
        /// Exceeded a rate limit.
        RateLimitExceeded => "rate_limit_exceeded",
        /// Replayed a message already seen.
        Replay => "replay",
        /// Did not answer a request in time.
        Timeout => "timeout",
        /// Broke the protocol in another way.
        ProtocolViolation => "protocol_violation",
    }
}

label_enum! {
    /// Why the security layer refused a connection or a message.
    RejectionReason, key = "reason" {
        /// The peer or its IP is banned.
        Banned => "banned",
        /// A per-peer or per-IP token bucket was empty.
        RateLimited => "rate_limited",
        /// The node already has its maximum number of peers.
        TooManyPeers => "too_many_peers",
        /// Too many connections from one IP address.
        TooManyPerIp => "too_many_per_ip",
        /// Too many connections from one /24 (IPv6 /48).
        TooManyPerSubnet => "too_many_per_subnet",
        /// A nonce already seen inside the replay window.
        Replay => "replay",
        /// A timestamp outside the accepted window.
        StaleTimestamp => "stale_timestamp",
        /// A signature that did not verify.
        InvalidSignature => "invalid_signature",
        /// A message over its size limit.
        Oversized => "oversized",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_values_well_formed(spec: LabelSpec, strings: &[&str]) {
        assert_eq!(spec.values, strings, "LABEL lists the values of as_str");
        for (i, value) in spec.values.iter().enumerate() {
            assert!(!value.is_empty());
            assert!(
                value
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
                "{value} is not snake_case"
            );
            assert!(!spec.values[..i].contains(value), "{value} repeated");
        }
    }

    #[test]
    fn every_enum_lists_unique_snake_case_values_matching_as_str() {
        macro_rules! check {
            ($($label:ident),+) => {$(
                let strings: Vec<_> = $label::ALL.iter().map(|v| v.as_str()).collect();
                assert_values_well_formed($label::LABEL, &strings);
            )+};
        }
        check!(
            Direction,
            BlockStatus,
            MessageType,
            MessageStatus,
            PenaltyReason,
            RejectionReason
        );
    }

    #[test]
    fn display_writes_the_label_value() {
        assert_eq!(Direction::Inbound.to_string(), "inbound");
        assert_eq!(MessageType::DhtFindNode.to_string(), "dht_find_node");
    }

    #[test]
    fn success_flag_maps_to_imported_or_rejected() {
        assert_eq!(BlockStatus::from(true), BlockStatus::Imported);
        assert_eq!(BlockStatus::from(false), BlockStatus::Rejected);
    }
}
