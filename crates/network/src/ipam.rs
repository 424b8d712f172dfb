//! IPv4 address management: CIDR parsing, default pool selection (Docker's 172.17-31.0.0/16,
//! then 192.168.x.0/20) avoiding host routes and other networks, and per-network address
//! allocation.

use std::collections::BTreeSet;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Failure of an address-management request; messages are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpamError {
    /// The text is not a CIDR.
    #[error("invalid CIDR address: {0}")]
    InvalidCidr(String),
    /// The text is not an IPv4 address.
    #[error("invalid IP address: {0}")]
    InvalidAddress(String),
    /// The subnet overlaps another network or a host route.
    #[error("invalid pool request: Pool overlaps with other one on this address space")]
    Overlap,
    /// The gateway is outside the subnet.
    #[error("no matching subnet for gateway {0}")]
    GatewayOutside(Ipv4Addr),
    /// The ip-range is outside the subnet.
    #[error("no matching subnet for range {0}")]
    RangeOutside(Subnet),
    /// A requested address is outside the network.
    #[error("no configured subnet or ip-range contain the IP address {0}")]
    AddressOutside(Ipv4Addr),
    /// A requested address is taken.
    #[error("Address already in use")]
    AddressInUse,
    /// The subnet is full.
    #[error("no available IPv4 addresses on this network's address pools")]
    Exhausted,
    /// No default pool is free.
    #[error(
        "could not find an available, non-overlapping IPv4 address pool among the defaults to assign to the network"
    )]
    NoPool,
}

/// An IPv4 subnet `addr/prefix`, stored with host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Subnet {
    /// The network address.
    pub addr: Ipv4Addr,
    /// The prefix length, 0-32.
    pub prefix: u8,
}

impl Subnet {
    /// Builds a subnet, clearing host bits.
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Self {
        Subnet {
            addr: Ipv4Addr::from(u32::from(addr) & mask(prefix)),
            prefix,
        }
    }

    /// Whether `ip` is inside.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.prefix) == u32::from(self.addr)
    }

    /// Whether the two subnets share an address.
    pub fn overlaps(&self, other: &Subnet) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }

    /// The first address after the network address (Docker's default gateway).
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) + 1)
    }

    /// The last address (broadcast).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !mask(self.prefix))
    }
}

fn mask(prefix: u8) -> u32 {
    if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(prefix))
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Subnet {
    type Err = IpamError;
    fn from_str(s: &str) -> Result<Self, IpamError> {
        let bad = || IpamError::InvalidCidr(s.to_owned());
        let (a, p) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = a.parse().map_err(|_| bad())?;
        let prefix: u8 = p.parse().map_err(|_| bad())?;
        if prefix > 32 {
            return Err(bad());
        }
        Ok(Subnet::new(addr, prefix))
    }
}

impl Serialize for Subnet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Subnet {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Parses an IPv4 address with Docker's error.
pub fn parse_addr(s: &str) -> Result<Ipv4Addr, IpamError> {
    s.parse()
        .map_err(|_| IpamError::InvalidAddress(s.to_owned()))
}

/// Docker's default local pools in order: 172.17-31.0.0/16, then 192.168.0-240.0/20.
pub fn default_pools() -> impl Iterator<Item = Subnet> {
    let a = (17..=31).map(|b| Subnet::new(Ipv4Addr::new(172, b, 0, 0), 16));
    let b = (0..16).map(|i| Subnet::new(Ipv4Addr::new(192, 168, i * 16, 0), 20));
    a.chain(b)
}

/// The first default pool that overlaps none of `taken`.
pub fn pick_pool(taken: &[Subnet]) -> Result<Subnet, IpamError> {
    default_pools()
        .find(|p| !taken.iter().any(|t| t.overlaps(p)))
        .ok_or(IpamError::NoPool)
}

/// Allocates an address in `range` (inside `subnet`) not in `used`: `want` if given, else the
/// lowest free one. The network and broadcast addresses are never handed out.
pub fn allocate(
    subnet: Subnet,
    range: Subnet,
    used: &BTreeSet<Ipv4Addr>,
    want: Option<Ipv4Addr>,
) -> Result<Ipv4Addr, IpamError> {
    let reserved = |ip: Ipv4Addr| ip == subnet.addr || ip == subnet.broadcast();
    if let Some(ip) = want {
        if !subnet.contains(ip) || reserved(ip) {
            return Err(IpamError::AddressOutside(ip));
        }
        if used.contains(&ip) {
            return Err(IpamError::AddressInUse);
        }
        return Ok(ip);
    }
    let (lo, hi) = (u32::from(range.addr), u32::from(range.broadcast()));
    (lo..=hi)
        .map(Ipv4Addr::from)
        .find(|ip| !reserved(*ip) && !used.contains(ip))
        .ok_or(IpamError::Exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_clears_host_bits_and_rejects_garbage() {
        let s: Subnet = "10.1.2.3/16".parse().unwrap();
        assert_eq!(s.to_string(), "10.1.0.0/16");
        assert_eq!(
            "10.0.0.0/33".parse::<Subnet>().unwrap_err().to_string(),
            "invalid CIDR address: 10.0.0.0/33"
        );
        assert!("foo".parse::<Subnet>().is_err());
    }

    #[test]
    fn pick_pool_skips_taken_ranges() {
        let taken = vec![
            "172.17.0.0/16".parse().unwrap(),
            "172.18.5.0/24".parse().unwrap(),
        ];
        assert_eq!(pick_pool(&taken).unwrap().to_string(), "172.19.0.0/16");
        let all: Vec<Subnet> = default_pools().take(15).collect();
        assert_eq!(pick_pool(&all).unwrap().to_string(), "192.168.0.0/20");
    }

    #[test]
    fn allocate_skips_gateway_and_honours_requests() {
        let s: Subnet = "10.0.0.0/30".parse().unwrap();
        let mut used = BTreeSet::from([s.first_host()]);
        let ip = allocate(s, s, &used, None).unwrap();
        assert_eq!(ip, Ipv4Addr::new(10, 0, 0, 2));
        used.insert(ip);
        assert_eq!(allocate(s, s, &used, None), Err(IpamError::Exhausted));
        assert_eq!(
            allocate(s, s, &used, Some(ip)),
            Err(IpamError::AddressInUse)
        );
        assert_eq!(
            allocate(s, s, &used, Some(Ipv4Addr::new(10, 0, 1, 1))),
            Err(IpamError::AddressOutside(Ipv4Addr::new(10, 0, 1, 1)))
        );
    }
}
