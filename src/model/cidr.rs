//! IPv4 ranges in CIDR notation, as the node's flags give them (`--pod-cidr`,
//! `--service-cidr`).
//!
//! Pure: no IO.

use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 range in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (ip, prefix) = s
            .split_once('/')
            .ok_or_else(|| format!("invalid CIDR {s:?}: expected ADDRESS/PREFIX"))?;
        let ip: Ipv4Addr = ip
            .parse()
            .map_err(|_| format!("invalid CIDR {s:?}: {ip:?} is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=30).contains(p))
            .ok_or_else(|| format!("invalid CIDR {s:?}: the prefix must be 8 to 30"))?;
        let mask = u32::MAX << (32 - prefix);
        let network = Ipv4Addr::from(u32::from(ip) & mask);
        if network != ip {
            return Err(format!(
                "invalid CIDR {s:?}: host bits are set (the network is {network}/{prefix})"
            ));
        }
        Ok(Cidr { network, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl Cidr {
    /// Whether every address of the range routes to the loopback interface.
    pub fn is_loopback(&self) -> bool {
        self.network.is_loopback()
    }

    /// How many addresses the range has, network and broadcast addresses included.
    pub fn size(&self) -> u32 {
        1u32 << (32 - self.prefix)
    }

    /// Whether `ip` is one of the range's host addresses (not its network or broadcast
    /// address), the addresses an allocator may hand out.
    pub fn contains_host(&self, ip: Ipv4Addr) -> bool {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.network));
        offset > 0 && offset < self.size() - 1
    }

    /// The address at `offset` from the network address.
    pub fn at(&self, offset: u32) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + offset)
    }

    /// Whether two ranges share an address.
    pub fn overlaps(&self, other: &Cidr) -> bool {
        let prefix = self.prefix.min(other.prefix);
        let mask = u32::MAX << (32 - prefix);
        u32::from(self.network) & mask == u32::from(other.network) & mask
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_tells_host_addresses() {
        let cidr: Cidr = "127.20.0.0/16".parse().unwrap();
        assert_eq!(cidr.to_string(), "127.20.0.0/16");
        assert_eq!(cidr.size(), 65536);
        assert!(!cidr.contains_host("127.20.0.0".parse().unwrap()));
        assert!(cidr.contains_host("127.20.0.1".parse().unwrap()));
        assert!(cidr.contains_host("127.20.255.254".parse().unwrap()));
        assert!(!cidr.contains_host("127.20.255.255".parse().unwrap()));
        assert!(!cidr.contains_host("127.21.0.1".parse().unwrap()));
        assert_eq!(cidr.at(5).to_string(), "127.20.0.5");
        assert!(cidr.overlaps(&"127.20.3.0/24".parse().unwrap()));
        assert!(!cidr.overlaps(&"127.10.0.0/16".parse().unwrap()));
        assert!("127.10.0.1/16".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("127.10.0.0/31".parse::<Cidr>().is_err());
    }
}
