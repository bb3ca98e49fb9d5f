//! Addresses: IPv4 subnets as written in Compose files, the pool private subnets are taken from,
//! and the addresses handed to instances on one network.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// An IPv4 subnet, `10.213.4.0/24`. The address is kept as written (`10.213.4.7/24` names the
/// same subnet; [`Ipv4Net::network`] gives its first address).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ipv4Net {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Net {
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Net> {
        (prefix <= 32).then_some(Ipv4Net { addr, prefix })
    }

    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask(&self) -> u32 {
        if self.prefix == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(self.prefix))
        }
    }

    /// The subnet's first address.
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) & self.mask())
    }

    /// The subnet's last address.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network())
    }

    pub fn overlaps(&self, other: &Ipv4Net) -> bool {
        self.contains(other.network()) || other.contains(self.network())
    }

    /// The `n`th address of the subnet (0 is the network address), if it is inside.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u64 << (32 - u32::from(self.prefix));
        (u64::from(n) < size).then(|| Ipv4Addr::from(u32::from(self.network()) + n))
    }

    /// The gateway (the host's address on the bridge): the first usable address.
    pub fn gateway(&self) -> Option<Ipv4Addr> {
        (self.prefix <= 30).then(|| self.nth(1)).flatten()
    }

    /// The same subnet, with its network address.
    pub fn normalized(&self) -> Ipv4Net {
        Ipv4Net {
            addr: self.network(),
            prefix: self.prefix,
        }
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ipv4Net {
    type Err = String;

    fn from_str(s: &str) -> Result<Ipv4Net, String> {
        let (addr, prefix) = s
            .trim()
            .split_once('/')
            .ok_or_else(|| format!("`{s}` is not an IPv4 subnet (expected a.b.c.d/len)"))?;
        let addr: Ipv4Addr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an IPv4 subnet (expected a.b.c.d/len)"))?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| *p <= 32)
            .ok_or_else(|| format!("`{s}` has an invalid prefix length (0 to 32)"))?;
        Ok(Ipv4Net { addr, prefix })
    }
}

/// The range private subnets are allocated from (256 networks of 254 instances), chosen to be
/// rare elsewhere: Docker's pools are 172.17-31.0.0/16 and 192.168.0.0/16, Podman's 10.88-89.
pub const DEFAULT_POOL: Ipv4Net = Ipv4Net {
    addr: Ipv4Addr::new(10, 213, 0, 0),
    prefix: 16,
};

/// The first /24 of `pool` that overlaps nothing in `taken` (the host's routes and addresses,
/// the subnets of other networks, the nameservers instances will use).
pub fn allocate(pool: Ipv4Net, taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    let pool = pool.normalized();
    if pool.prefix > 24 {
        return None;
    }
    let count = 1u32 << (24 - u32::from(pool.prefix));
    (0..count)
        .map(|i| Ipv4Net {
            addr: Ipv4Addr::from(u32::from(pool.network()) + (i << 8)),
            prefix: 24,
        })
        .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
}

/// The addresses of the instances on one network, by instance name; stable for as long as the
/// network exists, so that an instance that restarts keeps its address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Leases {
    by_instance: BTreeMap<String, Ipv4Addr>,
}

impl Leases {
    pub fn get(&self, instance: &str) -> Option<Ipv4Addr> {
        self.by_instance.get(instance).copied()
    }

    /// The address of `instance` on `subnet`: `wanted` (`ipv4_address`) when given, else its
    /// previous one, else the lowest free address after the gateway.
    pub fn lease(
        &mut self,
        subnet: Ipv4Net,
        instance: &str,
        wanted: Option<Ipv4Addr>,
    ) -> Result<Ipv4Addr, String> {
        let gateway = subnet.gateway();
        let holder = |ip: Ipv4Addr| {
            self.by_instance
                .iter()
                .find(|(name, a)| **a == ip && name.as_str() != instance)
                .map(|(name, _)| name.clone())
        };
        if let Some(ip) = wanted {
            if !subnet.contains(ip) || ip == subnet.network() || ip == subnet.broadcast() {
                return Err(format!(
                    "ipv4_address {ip} is not a usable address of {subnet}"
                ));
            }
            if Some(ip) == gateway {
                return Err(format!("ipv4_address {ip} is the gateway of {subnet}"));
            }
            if let Some(other) = holder(ip) {
                return Err(format!("ipv4_address {ip} is already used by {other}"));
            }
            self.by_instance.insert(instance.to_string(), ip);
            return Ok(ip);
        }
        if let Some(ip) = self.get(instance) {
            return Ok(ip);
        }
        let used: Vec<Ipv4Addr> = self.by_instance.values().copied().collect();
        let ip = (2..)
            .map_while(|n| subnet.nth(n))
            .take_while(|ip| *ip != subnet.broadcast())
            .find(|ip| Some(*ip) != gateway && !used.contains(ip))
            .ok_or_else(|| format!("no free address left in {subnet}"))?;
        self.by_instance.insert(instance.to_string(), ip);
        Ok(ip)
    }

    pub fn release(&mut self, instance: &str) {
        self.by_instance.remove(instance);
    }

    pub fn is_empty(&self) -> bool {
        self.by_instance.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn parses_and_describes_subnets() {
        let n = net("172.16.238.7/24");
        assert_eq!(n.network(), Ipv4Addr::new(172, 16, 238, 0));
        assert_eq!(n.broadcast(), Ipv4Addr::new(172, 16, 238, 255));
        assert_eq!(n.gateway(), Some(Ipv4Addr::new(172, 16, 238, 1)));
        assert!(n.contains(Ipv4Addr::new(172, 16, 238, 200)));
        assert!(!n.contains(Ipv4Addr::new(172, 16, 239, 1)));
        assert_eq!(n.to_string(), "172.16.238.7/24");
        assert_eq!(n.normalized().to_string(), "172.16.238.0/24");
        assert!(net("10.0.0.0/8").overlaps(&net("10.1.2.0/24")));
        assert!(!net("10.1.3.0/24").overlaps(&net("10.1.2.0/24")));
        assert!("10.0.0.0".parse::<Ipv4Net>().is_err());
        assert!("10.0.0.0/33".parse::<Ipv4Net>().is_err());
        assert!("fd00::/64".parse::<Ipv4Net>().is_err());
    }

    #[test]
    fn allocates_around_what_is_taken() {
        let taken = [net("10.213.0.0/23"), net("10.213.3.17/32")];
        assert_eq!(allocate(DEFAULT_POOL, &taken), Some(net("10.213.2.0/24")));
        let taken = [
            net("10.213.0.0/23"),
            net("10.213.2.0/24"),
            net("10.213.3.17/32"),
        ];
        assert_eq!(allocate(DEFAULT_POOL, &taken), Some(net("10.213.4.0/24")));
        // A host route covering the whole pool leaves nothing.
        assert_eq!(allocate(DEFAULT_POOL, &[net("10.0.0.0/8")]), None);
    }

    #[test]
    fn leases_are_stable_and_honour_ipv4_address() {
        let subnet = net("10.213.9.0/24");
        let mut l = Leases::default();
        assert_eq!(
            l.lease(subnet, "p-a-1", None),
            Ok(Ipv4Addr::new(10, 213, 9, 2))
        );
        assert_eq!(
            l.lease(subnet, "p-b-1", Some(Ipv4Addr::new(10, 213, 9, 3))),
            Ok(Ipv4Addr::new(10, 213, 9, 3))
        );
        assert_eq!(
            l.lease(subnet, "p-c-1", None),
            Ok(Ipv4Addr::new(10, 213, 9, 4))
        );
        assert_eq!(
            l.lease(subnet, "p-a-1", None),
            Ok(Ipv4Addr::new(10, 213, 9, 2))
        );
        assert_eq!(
            l.lease(subnet, "p-d-1", Some(Ipv4Addr::new(10, 213, 9, 3))),
            Err("ipv4_address 10.213.9.3 is already used by p-b-1".into())
        );
        assert_eq!(
            l.lease(subnet, "p-d-1", Some(Ipv4Addr::new(10, 213, 9, 1))),
            Err("ipv4_address 10.213.9.1 is the gateway of 10.213.9.0/24".into())
        );
        assert!(
            l.lease(subnet, "p-d-1", Some(Ipv4Addr::new(10, 0, 0, 1)))
                .is_err()
        );
        l.release("p-a-1");
        assert_eq!(
            l.lease(subnet, "p-e-1", None),
            Ok(Ipv4Addr::new(10, 213, 9, 2))
        );
    }

    #[test]
    fn a_full_subnet_says_so() {
        let subnet = net("10.213.9.0/30");
        let mut l = Leases::default();
        assert_eq!(l.lease(subnet, "a", None), Ok(Ipv4Addr::new(10, 213, 9, 2)));
        assert_eq!(
            l.lease(subnet, "b", None),
            Err("no free address left in 10.213.9.0/30".into())
        );
    }
}
