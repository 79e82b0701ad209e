//! What the DHT knows about another node: its id, a bounded list of addresses, and the
//! subnet those addresses put it in for IP-diversity limits.

use std::hash::{Hash, Hasher};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use blyan_crypto::PeerId;

use crate::distance::Key;

/// Most addresses kept for one node. Enough for IPv4 + IPv6 and a couple of NAT mappings;
/// a peer never makes us hold more.
pub const MAX_ADDRS: usize = 4;

/// A node's id and the addresses it can be reached on.
///
/// The first address is the primary one: the address the node answered us from. It decides
/// the node's [`Subnet`] for the eclipse-resistance limits, so a node cannot escape them by
/// listing a far-away address first.
///
/// A node learned from the network also carries the signed [`NodeRecord`](crate::NodeRecord)
/// it was verified from ([`record`](Self::record)), so that we can relay it to others
/// without re-signing or re-fetching; equality and hashing ignore it.
///
/// Layout (72 bytes): the id and the primary address are held inline, so the hot paths
/// (distance, subnet limits, copying a node into an answer or a lookup) never follow a
/// pointer; further addresses and the record sit behind one shared pointer that a node with
/// a single address and no record does not have.
#[derive(Clone, Debug)]
pub struct NodeInfo {
    peer_id: PeerId,
    primary: SocketAddr,
    extra: Option<Arc<Extra>>,
}

/// The rarely used part of a [`NodeInfo`], shared between its copies.
#[derive(Debug)]
struct Extra {
    /// Every address, primary first, when there are several; empty when there is one.
    addrs: Box<[SocketAddr]>,
    record: Option<Arc<[u8]>>,
}

impl PartialEq for NodeInfo {
    fn eq(&self, other: &Self) -> bool {
        self.peer_id == other.peer_id && self.addrs() == other.addrs()
    }
}

impl Eq for NodeInfo {}

impl Hash for NodeInfo {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.peer_id.hash(state);
        self.addrs().hash(state);
    }
}

/// Why a [`NodeInfo`] could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NodeInfoError {
    /// A node without an address cannot be contacted.
    #[error("node {0} has no address")]
    NoAddress(PeerId),
    /// More distinct addresses than [`MAX_ADDRS`] (reading stops at the first one too many).
    #[error("node has more than {max} distinct addresses")]
    TooManyAddresses {
        /// The limit, [`MAX_ADDRS`].
        max: usize,
    },
}

impl NodeInfo {
    /// A node with `addrs` (duplicates dropped, order kept); the first is the primary address.
    pub fn new(
        peer_id: PeerId,
        addrs: impl IntoIterator<Item = SocketAddr>,
    ) -> Result<Self, NodeInfoError> {
        // On the stack: most nodes have one address, and building one must not allocate.
        let mut unique = [SocketAddr::from(([0, 0, 0, 0], 0)); MAX_ADDRS];
        let mut len = 0;
        for addr in addrs {
            let seen = unique.get(..len).unwrap_or(&[]);
            if seen.contains(&addr) {
                continue;
            }
            let Some(slot) = unique.get_mut(len) else {
                return Err(NodeInfoError::TooManyAddresses { max: MAX_ADDRS });
            };
            *slot = addr;
            len += 1;
        }
        let unique = unique.get(..len).unwrap_or(&[]);
        let Some(primary) = unique.first().copied() else {
            return Err(NodeInfoError::NoAddress(peer_id));
        };
        let extra = (unique.len() > 1).then(|| {
            Arc::new(Extra {
                addrs: unique.into(),
                record: None,
            })
        });
        Ok(Self {
            peer_id,
            primary,
            extra,
        })
    }

    /// This node with the encoded signed record it was verified from attached.
    #[must_use]
    pub fn with_record(mut self, record: Arc<[u8]>) -> Self {
        let addrs = self
            .extra
            .as_ref()
            .map_or_else(|| Box::from([]), |e| e.addrs.clone());
        self.extra = Some(Arc::new(Extra {
            addrs,
            record: Some(record),
        }));
        self
    }

    /// The encoded signed record this node was learned from, if any: what we relay when we
    /// list the node in an answer. Nodes given by configuration (seeds) have none.
    pub fn record(&self) -> Option<&Arc<[u8]>> {
        self.extra.as_ref().and_then(|e| e.record.as_ref())
    }

    /// The node's id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The node's position in the key space.
    pub fn key(&self) -> Key {
        Key::from(self.peer_id)
    }

    /// The node's addresses, primary first; never empty, at most [`MAX_ADDRS`].
    pub fn addrs(&self) -> &[SocketAddr] {
        match &self.extra {
            Some(extra) if !extra.addrs.is_empty() => &extra.addrs,
            _ => std::slice::from_ref(&self.primary),
        }
    }

    /// The address the node answered from.
    pub fn primary_addr(&self) -> SocketAddr {
        self.primary
    }

    /// The subnet of the primary address.
    pub fn subnet(&self) -> Subnet {
        Subnet::of(self.primary.ip())
    }
}

/// The network an address belongs to for IP-diversity limits: its IPv4 /24 or IPv6 /48.
///
/// One operator typically controls a /24 or a /48, so capping entries per subnet caps how
/// much of a routing table (or a lookup result) one operator can fill with Sybil ids.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subnet {
    /// The first 24 bits of an IPv4 address (IPv4-mapped IPv6 addresses count as IPv4).
    V4([u8; 3]),
    /// The first 48 bits of an IPv6 address.
    V6([u8; 6]),
}

impl Subnet {
    /// The subnet as one number, distinct for distinct subnets: a tag bit for the family
    /// above the address bits.
    fn key(self) -> u64 {
        let (family, bytes): (u64, &[u8]) = match &self {
            Subnet::V4(b) => (1, b),
            Subnet::V6(b) => (2, b),
        };
        bytes
            .iter()
            .fold(family, |acc, b| (acc << 8) | u64::from(*b))
    }

    /// The subnet `ip` belongs to.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                Subnet::V4([a, b, c])
            }
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Subnet::V6([o[0], o[1], o[2], o[3], o[4], o[5]])
            }
        }
    }
}

/// Keeps the first `n` nodes of `sorted` (closest first) with at most `max_per_subnet` nodes
/// from any one [`Subnet`]; the rest of a crowded subnet is skipped, not the farther nodes.
pub fn take_diverse<'a>(
    sorted: impl IntoIterator<Item = &'a NodeInfo>,
    n: usize,
    max_per_subnet: usize,
) -> Vec<NodeInfo> {
    let mut counts = SubnetCounts::new();
    let mut out = Vec::with_capacity(n);
    for node in sorted {
        if out.len() == n {
            break;
        }
        if counts.admit(node.subnet(), max_per_subnet) {
            out.push(node.clone());
        }
    }
    out
}

/// Nodes counted per subnet over a short run (a lookup's window, an answer, a result):
/// a scan of a few 64-bit words beats hashing, and the first [`SubnetCounts::INLINE`]
/// subnets sit on the stack, so counting allocates nothing in the usual case.
pub(crate) struct SubnetCounts {
    keys: [u64; Self::INLINE],
    counts: [usize; Self::INLINE],
    len: usize,
    spill: Vec<(u64, usize)>,
}

impl SubnetCounts {
    /// Subnets counted without allocating: more than a result or an answer holds.
    const INLINE: usize = 32;

    pub(crate) fn new() -> Self {
        Self {
            keys: [0; Self::INLINE],
            counts: [0; Self::INLINE],
            len: 0,
            spill: Vec::new(),
        }
    }

    /// Counts one more node of `subnet` unless `max` of it were counted already; returns
    /// whether it was counted. The first node of a subnet is always counted.
    pub(crate) fn admit(&mut self, subnet: Subnet, max: usize) -> bool {
        let key = subnet.key();
        let seen = self.keys.get(..self.len).unwrap_or(&[]);
        let count = match seen.iter().position(|k| *k == key) {
            Some(at) => self.counts.get_mut(at),
            None => self
                .spill
                .iter_mut()
                .find(|(k, _)| *k == key)
                .map(|(_, count)| count),
        };
        match count {
            Some(count) if *count >= max => false,
            Some(count) => {
                *count += 1;
                true
            }
            None => {
                if let (Some(k), Some(c)) =
                    (self.keys.get_mut(self.len), self.counts.get_mut(self.len))
                {
                    *k = key;
                    *c = 1;
                    self.len += 1;
                } else {
                    self.spill.push((key, 1));
                }
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    fn addr(s: &str) -> SocketAddr {
        s.parse()
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)))
    }

    #[test]
    fn addresses_are_bounded_and_deduplicated() {
        let id = PeerId::from_bytes([1; 32]);
        assert_eq!(
            NodeInfo::new(id, []).err(),
            Some(NodeInfoError::NoAddress(id))
        );
        let same = NodeInfo::new(id, [addr("1.2.3.4:5"), addr("1.2.3.4:5")]);
        assert_eq!(same.map(|n| n.addrs().len()).ok(), Some(1));
        let many = (0..5u16).map(|p| SocketAddr::from(([1, 2, 3, 4], p)));
        assert!(matches!(
            NodeInfo::new(id, many),
            Err(NodeInfoError::TooManyAddresses { max: MAX_ADDRS })
        ));
    }

    #[test]
    fn several_addresses_and_records_survive_copies() {
        let id = PeerId::from_bytes([2; 32]);
        let (a, b) = (addr("10.1.2.3:1"), addr("[2001:db8::1]:2"));
        let one = NodeInfo::new(id, [a]).ok();
        let two = NodeInfo::new(id, [a, b, a]).ok();
        assert_eq!(one.as_ref().map(|n| n.addrs().to_vec()), Some(vec![a]));
        assert_eq!(two.as_ref().map(|n| n.addrs().to_vec()), Some(vec![a, b]));
        assert_ne!(one, two);
        for node in [one, two].into_iter().flatten() {
            let record: Arc<[u8]> = Arc::from(vec![7u8, 8, 9]);
            let signed = node.clone().with_record(Arc::clone(&record));
            // The record rides along; addresses, subnet and equality do not change.
            assert_eq!(signed.record(), Some(&record));
            assert_eq!(node.record(), None);
            assert_eq!(signed.addrs(), node.addrs());
            assert_eq!(signed.subnet(), Subnet::of(a.ip()));
            assert_eq!(signed.primary_addr(), a);
            assert_eq!(signed, node);
            assert_eq!(signed.clone().record(), Some(&record));
        }
    }

    #[test]
    fn subnets() {
        assert_eq!(
            Subnet::of(addr("10.1.2.3:1").ip()),
            Subnet::of(addr("10.1.2.200:1").ip())
        );
        assert_ne!(
            Subnet::of(addr("10.1.2.3:1").ip()),
            Subnet::of(addr("10.1.3.3:1").ip())
        );
        let mapped = IpAddr::V6(Ipv6Addr::from([0, 0, 0, 0, 0, 0xffff, 0x0a01, 0x0203]));
        assert_eq!(Subnet::of(mapped), Subnet::V4([10, 1, 2]));
        assert_eq!(
            Subnet::of(addr("[2001:db8:1:2::1]:1").ip()),
            Subnet::of(addr("[2001:db8:1:ffff::9]:1").ip())
        );
    }

    #[test]
    fn subnet_keys_are_distinct() {
        let subnets = [
            Subnet::V4([0, 0, 0]),
            Subnet::V4([0, 0, 1]),
            Subnet::V4([1, 0, 0]),
            Subnet::V6([0, 0, 0, 0, 0, 0]),
            Subnet::V6([0, 0, 0, 0, 0, 1]),
            Subnet::V6([0, 0, 0, 1, 0, 0]),
            Subnet::V6([0xff; 6]),
        ];
        for (i, a) in subnets.iter().enumerate() {
            for (j, b) in subnets.iter().enumerate() {
                assert_eq!(a.key() == b.key(), i == j, "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn subnet_counts_past_the_inline_ones_still_count() {
        let mut counts = SubnetCounts::new();
        let subnet = |i: usize| Subnet::V4([10, (i >> 8) as u8, i as u8]);
        for i in 0..100 {
            assert!(counts.admit(subnet(i), 2));
        }
        for i in 0..100 {
            assert!(counts.admit(subnet(i), 2), "second of {i}");
            assert!(!counts.admit(subnet(i), 2), "third of {i}");
        }
    }

    #[test]
    fn take_diverse_skips_crowded_subnets() {
        let nodes: Vec<NodeInfo> = (0..6u8)
            .filter_map(|i| {
                let ip = if i < 4 { [10, 0, 0, i] } else { [10, 0, i, 1] };
                NodeInfo::new(PeerId::from_bytes([i; 32]), [SocketAddr::from((ip, 1))]).ok()
            })
            .collect();
        let kept = take_diverse(&nodes, 5, 2);
        let ids: Vec<u8> = kept.iter().map(|n| n.peer_id().as_bytes()[0]).collect();
        assert_eq!(ids, vec![0, 1, 4, 5]);
    }
}
