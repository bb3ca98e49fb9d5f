//! Addresses: IPv4 subnets as written in Compose files, the pool private subnets are taken from,
//! and the addresses handed to instances on one network.

use std::collections::{BTreeMap, BTreeSet};
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

/// A range that networks' subnets are taken from, in blocks of one size: Docker's
/// `default-address-pools` entry (`{"base": "172.17.0.0/12", "size": 16}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressPool {
    pub base: Ipv4Net,
    /// The prefix length of each network's subnet.
    pub size: u8,
}

impl fmt::Display for AddressPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "/{}s of {}", self.size, self.base)
    }
}

/// Where networks without an `ipam` subnet get theirs: 10.208.0.0/12 in /20s, 256 networks of
/// 4094 instances each (a /24 each, as before, stopped a service at its 254th instance).
/// Docker gives each network a /16 (172.17.0.0/12 in /16s, then 192.168.0.0/16 in /20s), which
/// leaves room for 31 networks and, taking all of 172.16.0.0/12, is the range that most often
/// collides with the networks around a machine; a /20 keeps room for thousands of instances per
/// network and for many projects within one /12, chosen to be rare elsewhere (Podman uses
/// 10.88-89; the range contains 10.213.0.0/16, the previous pool). Subnets that overlap a route
/// or address of the machine are skipped; when all of this range is taken (a VPN that routes
/// 10.0.0.0/8), the /20s of 172.16.0.0/12 and then 192.168.0.0/16 that are free are used.
pub const DEFAULT_POOLS: &[AddressPool] = &[
    AddressPool {
        base: Ipv4Net {
            addr: Ipv4Addr::new(10, 208, 0, 0),
            prefix: 12,
        },
        size: 20,
    },
    AddressPool {
        base: Ipv4Net {
            addr: Ipv4Addr::new(172, 16, 0, 0),
            prefix: 12,
        },
        size: 20,
    },
    AddressPool {
        base: Ipv4Net {
            addr: Ipv4Addr::new(192, 168, 0, 0),
            prefix: 16,
        },
        size: 20,
    },
];

/// The first subnet of the first of `pools` that overlaps nothing in `taken` (the host's routes
/// and addresses, the subnets of other networks, the nameservers instances will use).
pub fn allocate(pools: &[AddressPool], taken: &[Ipv4Net]) -> Option<Ipv4Net> {
    pools.iter().find_map(|pool| {
        let base = pool.base.normalized();
        if pool.size < base.prefix || pool.size > 30 {
            return None;
        }
        let count = 1u64 << (pool.size - base.prefix);
        let step = 1u64 << (32 - u32::from(pool.size));
        (0..count)
            .map(|i| Ipv4Net {
                // Inside the pool, so below 2^32.
                addr: Ipv4Addr::from((u64::from(u32::from(base.network())) + i * step) as u32),
                prefix: pool.size,
            })
            .find(|candidate| !taken.iter().any(|t| t.overlaps(candidate)))
    })
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
        let used: BTreeSet<Ipv4Addr> = self.by_instance.values().copied().collect();
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
        let taken = [net("10.208.0.0/19"), net("10.208.35.17/32")];
        assert_eq!(allocate(DEFAULT_POOLS, &taken), Some(net("10.208.48.0/20")));
        let taken = [
            net("10.208.0.0/19"),
            net("10.208.32.0/20"),
            net("10.208.50.0/24"),
        ];
        assert_eq!(allocate(DEFAULT_POOLS, &taken), Some(net("10.208.64.0/20")));
        // A host route covering the first pool sends the next network to the second one, and
        // the second's used parts to the third.
        assert_eq!(
            allocate(DEFAULT_POOLS, &[net("10.0.0.0/8")]),
            Some(net("172.16.0.0/20"))
        );
        assert_eq!(
            allocate(DEFAULT_POOLS, &[net("10.0.0.0/8"), net("172.16.0.0/12")]),
            Some(net("192.168.0.0/20"))
        );
        let everything = [
            net("10.0.0.0/8"),
            net("172.16.0.0/12"),
            net("192.168.0.0/16"),
        ];
        assert_eq!(allocate(DEFAULT_POOLS, &everything), None);
        // Sizes that do not fit their base give nothing rather than a wrong subnet.
        let odd = [AddressPool {
            base: net("10.1.0.0/16"),
            size: 8,
        }];
        assert_eq!(allocate(&odd, &[]), None);
    }

    #[test]
    fn the_default_pools_hold_256_networks_of_thousands_of_instances() {
        let mut taken = Vec::new();
        for _ in 0..256 {
            let subnet = allocate(DEFAULT_POOLS, &taken).expect("a subnet");
            assert!(DEFAULT_POOLS[0].base.contains(subnet.network()), "{subnet}");
            assert_eq!(subnet.prefix(), 20);
            taken.push(subnet);
        }
        assert_eq!(taken[255], net("10.223.240.0/20"));
        assert_eq!(
            allocate(DEFAULT_POOLS, &taken).map(|s| s.to_string()),
            Some("172.16.0.0/20".into())
        );
    }

    // Pins the bug where each network was a /24, so a service's 254th instance got no address.
    #[test]
    fn the_254th_and_300th_instances_of_a_default_network_get_addresses() {
        let subnet = allocate(DEFAULT_POOLS, &[]).expect("a subnet");
        let mut l = Leases::default();
        let mut seen = BTreeSet::new();
        for n in 1..=300u32 {
            let ip = l
                .lease(subnet, &format!("p-web-{n}"), None)
                .unwrap_or_else(|e| panic!("instance {n}: {e}"));
            assert!(subnet.contains(ip) && Some(ip) != subnet.gateway(), "{ip}");
            assert!(seen.insert(ip), "{ip} given twice");
        }
        assert_eq!(l.get("p-web-254"), Some(Ipv4Addr::new(10, 208, 0, 255)));
        assert_eq!(l.get("p-web-255"), Some(Ipv4Addr::new(10, 208, 1, 0)));
        assert_eq!(l.get("p-web-300"), Some(Ipv4Addr::new(10, 208, 1, 45)));
        assert_eq!(subnet.broadcast(), Ipv4Addr::new(10, 208, 15, 255));
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
