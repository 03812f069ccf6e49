//! Pod IP addresses from a loopback range (default `127.10.0.0/16`).
//!
//! Addresses are handed out round-robin from a cursor, so a freed address is not reused at
//! once (old connections to it may linger in TIME_WAIT).

use std::collections::HashSet;
use std::net::Ipv4Addr;

pub use crate::model::cidr::Cidr;

/// Allocated addresses of one range.
#[derive(Debug)]
pub struct Ipam {
    cidr: Cidr,
    used: HashSet<u32>,
    /// Offset of the next address to try.
    cursor: u32,
}

impl Ipam {
    pub fn new(cidr: Cidr) -> Self {
        Ipam {
            cidr,
            used: HashSet::new(),
            cursor: 1,
        }
    }

    /// A free address (never the network or broadcast address), or None when exhausted.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let size = self.cidr.size();
        let base = u32::from(self.cidr.network);
        for _ in 0..size {
            let offset = self.cursor;
            self.cursor = if self.cursor + 1 >= size - 1 {
                1
            } else {
                self.cursor + 1
            };
            if offset == 0 || offset >= size - 1 {
                continue;
            }
            if self.used.insert(offset) {
                return Some(Ipv4Addr::from(base + offset));
            }
        }
        None
    }

    pub fn release(&mut self, ip: Ipv4Addr) {
        let offset = u32::from(ip).wrapping_sub(u32::from(self.cidr.network));
        self.used.remove(&offset);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_allocates_round_robin() {
        let cidr: Cidr = "127.10.0.0/30".parse().unwrap();
        let mut ipam = Ipam::new(cidr);
        let a = ipam.allocate().unwrap();
        let b = ipam.allocate().unwrap();
        assert_eq!(
            (a.to_string().as_str(), b.to_string().as_str()),
            ("127.10.0.1", "127.10.0.2")
        );
        assert_eq!(
            ipam.allocate(),
            None,
            "network and broadcast are never used"
        );
        ipam.release(a);
        assert_eq!(ipam.allocate(), Some(a));
        assert!("127.10.0.1/16".parse::<Cidr>().is_err());
        assert!("10.0.0.0".parse::<Cidr>().is_err());
        assert!("127.10.0.0/31".parse::<Cidr>().is_err());
    }
}
