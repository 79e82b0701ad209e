//! How addresses are grouped: per host and per network.

use core::fmt;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use core::str::FromStr;

/// The unit that per-IP limits and IP bans apply to: an IPv4 address, or an IPv6 /64.
///
/// An IPv6 host is normally given a whole /64 (RFC 6177), so keying by the full 128-bit
/// address would hand one attacker 2^64 fresh identities. IPv4-mapped IPv6 addresses are
/// treated as the IPv4 address they carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpKey {
    /// One IPv4 address.
    V4([u8; 4]),
    /// The first 64 bits of an IPv6 address.
    V6([u8; 8]),
}

impl IpKey {
    /// The key an address counts under.
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4.octets()),
            IpAddr::V6(v6) => {
                let o = v6.octets();
                Self::V6([o[0], o[1], o[2], o[3], o[4], o[5], o[6], o[7]])
            }
        }
    }

    /// The network group this key belongs to.
    pub fn subnet(&self) -> Subnet {
        match *self {
            Self::V4([a, b, c, _]) => Subnet::V4([a, b, c]),
            Self::V6([a, b, c, d, e, f, _, _]) => Subnet::V6([a, b, c, d, e, f]),
        }
    }
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> Self {
        Self::of(ip)
    }
}

/// `1.2.3.4` or `2001:db8:1:2::/64`.
impl fmt::Display for IpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::V4(o) => write!(f, "{}", Ipv4Addr::from(o)),
            Self::V6(p) => {
                let mut o = [0u8; 16];
                for (dst, src) in o.iter_mut().zip(p) {
                    *dst = src;
                }
                write!(f, "{}/64", Ipv6Addr::from(o))
            }
        }
    }
}

/// The text of an [`IpKey`] did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an IPv4 address or an IPv6 /64 prefix: {0:?}")]
pub struct IpKeyParseError(String);

/// Parses what [`Display`](fmt::Display) writes; a bare IPv6 address is taken as its /64.
impl FromStr for IpKey {
    type Err = IpKeyParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let addr = s.strip_suffix("/64").unwrap_or(s);
        match IpAddr::from_str(addr) {
            Ok(ip @ IpAddr::V6(_)) => Ok(Self::of(ip)),
            Ok(ip @ IpAddr::V4(_)) if addr.len() == s.len() => Ok(Self::of(ip)),
            _ => Err(IpKeyParseError(s.chars().take(64).collect())),
        }
    }
}

/// A network group for diversity limits: an IPv4 /24 or an IPv6 /48, the usual size of
/// one operator's allocation (Bitcoin Core's netgroups use /16; we follow the DHT's /24
/// rule so that both layers agree on what "one network" is).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subnet {
    /// The first three octets of an IPv4 address.
    V4([u8; 3]),
    /// The first six bytes of an IPv6 address.
    V6([u8; 6]),
}

impl Subnet {
    /// The network group of an address.
    pub fn of(ip: IpAddr) -> Self {
        IpKey::of(ip).subnet()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapped_v4_counts_as_v4() {
        let mapped: IpAddr = "::ffff:10.1.2.3".parse().unwrap();
        assert_eq!(IpKey::of(mapped), IpKey::V4([10, 1, 2, 3]));
    }

    #[test]
    fn v6_hosts_in_one_slash64_share_a_key() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(IpKey::of(a), IpKey::of(b));
        assert_ne!(IpKey::of(a), IpKey::of(c));
        assert_eq!(Subnet::of(a), Subnet::of(c));
    }

    #[test]
    fn text_round_trips() {
        for s in ["10.0.0.1", "2001:db8:1:2::/64"] {
            let key: IpKey = s.parse().unwrap();
            assert_eq!(key.to_string(), s);
        }
        assert!("10.0.0.1/64".parse::<IpKey>().is_err());
        assert!("garbage".parse::<IpKey>().is_err());
    }
}
