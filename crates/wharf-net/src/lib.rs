//! wharf-net: the network a container would have, for native instances, made of Linux
//! namespaces directly (no container engine). Used by `wharf_runtime::native` when the daemon
//! runs as root.
//!
//! - **Networks** are bridges (`wb-<scope>-<hash>`, aliased with the network's full name), one
//!   per Compose network (by engine-level name, so an `external` network is shared by the
//!   projects that name it), with the `ipam` subnet when one is given, else the first /20 of
//!   [`ipam::DEFAULT_POOLS`] that overlaps no route or address of the machine (4094 instances
//!   per network). The host holds the first address (the gateway).
//! - **Instances** get a network namespace each ([`netns`]), with its loopback up and, per
//!   network, a veth whose host end (`wv-<scope>-<hash>`) is a port of the network's bridge and
//!   whose other end is `eth0`, `eth1`, ... inside, with an address of the network (its
//!   `ipv4_address`, else the next free one, kept across restarts) and, on the first network
//!   that is not `internal`, the default route. `network_mode: none` is a namespace with only
//!   loopback; `service:x` is x's namespace (x's first instance); `host` never comes here.
//! - **Isolation and NAT** ([`firewall`]): traffic between different wharf bridges is dropped,
//!   `internal` networks reach nothing beyond their bridge, others are masqueraded on the way
//!   out, in a table (nftables) or chains (iptables) of wharf's own.
//! - **Names** ([`hosts`]): each instance's `/etc/hosts` and `/etc/resolv.conf` are files under
//!   [`NetConfig::run_dir`] that the shim bind-mounts over the machine's in a private mount
//!   namespace ([`Sandbox`]), listing every running instance of the networks it is on.
//! - **Published ports** ([`forward`]): a userspace TCP/UDP forwarder in the daemon, round robin
//!   over the service's running replicas.
//! - **Cleanup**: [`Networking::release`] removes a project's part; [`Networking::recover`]
//!   removes whatever this daemon's scope left after a crash (links by name prefix, its own
//!   firewall table or chains, its files). Namespaces need no cleanup: they are held by
//!   descriptors and vanish with the daemon and its instances.

pub mod firewall;
pub mod forward;
pub mod hosts;
pub mod ifname;
pub mod ipam;
mod link;
mod netns;
mod networking;

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

pub use firewall::FirewallKind;
pub use forward::{PortDef, Protocol, Published};
pub use ipam::Ipv4Net;
pub use networking::{Leftovers, Networking};

/// Where and under which name a daemon keeps its network objects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetConfig {
    /// Four characters (`[0-9a-z]`) in the names of every link and firewall object of this
    /// daemon, so that one daemon's cleanup never touches another's: derive it from the state
    /// directory ([`NetConfig::for_state_dir`]) so that the next daemon finds the leftovers.
    pub scope: String,
    /// The instances' hosts and resolv.conf files: `/run/wharf/<scope>`.
    pub run_dir: PathBuf,
    /// Locked (flock) while a subnet is chosen, by every daemon of the machine.
    pub lock_file: PathBuf,
    /// The firewall tool; detected when `None` (see [`FirewallKind::detect`]).
    pub firewall: Option<FirewallKind>,
    /// The instances' nameservers; when `None`, the machine's own that instances can reach.
    pub nameservers: Option<Vec<IpAddr>>,
    /// Where the subnets of networks without an `ipam` subnet come from, in order.
    pub pools: Vec<ipam::AddressPool>,
}

impl NetConfig {
    pub fn new(scope: &str) -> NetConfig {
        NetConfig {
            scope: scope.to_string(),
            run_dir: PathBuf::from("/run/wharf").join(scope),
            lock_file: PathBuf::from("/run/wharf/ipam.lock"),
            firewall: None,
            nameservers: None,
            pools: ipam::DEFAULT_POOLS.to_vec(),
        }
    }

    /// The scope of the daemon that uses `state_dir` (by its absolute path, whether it exists
    /// yet or not).
    pub fn for_state_dir(state_dir: &Path) -> NetConfig {
        let path = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
        NetConfig::new(&ifname::scope_of(&path.to_string_lossy()))
    }

    /// A scope of this process only (tests, and runtimes that were given no state directory):
    /// leftovers of a crash cannot be found by the next process.
    pub fn ephemeral() -> NetConfig {
        use std::sync::atomic::{AtomicU64, Ordering};
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        NetConfig::new(&ifname::scope_of(&format!(
            "{}-{n}-{now}",
            std::process::id()
        )))
    }
}

/// A Compose network, as the bridge that carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkDef {
    /// The engine-level name (`edd_backend`): what identifies the bridge.
    pub name: String,
    pub internal: bool,
    /// `ipam.config[].subnet` (the first IPv4 one).
    pub subnet: Option<Ipv4Net>,
}

/// An instance's place on one network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attach {
    pub network: NetworkDef,
    pub aliases: Vec<String>,
    pub ipv4_address: Option<Ipv4Addr>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mode {
    /// On these networks, in this order (`eth0` is the first).
    Networks(Vec<Attach>),
    /// `network_mode: none`: loopback only.
    Loopback,
    /// `network_mode: service:x`: the namespace of this instance (x's first).
    Join(String),
}

/// What to connect an instance to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceDef {
    pub project: String,
    pub service: String,
    /// `<project>-<service>-<n>`.
    pub name: String,
    /// `hostname:`, one more name for its addresses.
    pub hostname: Option<String>,
    pub mode: Mode,
    pub ports: Vec<PortDef>,
}

/// How a process enters an instance's network: join the namespace at `netns`, then, in a
/// private mount namespace, bind-mount each `(source, target)` file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sandbox {
    pub netns: PathBuf,
    pub binds: Vec<(PathBuf, PathBuf)>,
}

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("network `{network}`: {reason}")]
    Network { network: String, reason: String },
    #[error("{instance}: {reason}")]
    Instance { instance: String, reason: String },
    #[error("cannot publish port {port} of service `{service}`: {reason}")]
    Publish {
        service: String,
        port: String,
        reason: String,
    },
    #[error("`{command}` failed: {reason}")]
    Firewall { command: String, reason: String },
    #[error("{what}: {reason}")]
    System { what: String, reason: String },
}
