//! [`Networking`]: every bridge, namespace, name and published port of one daemon, and the
//! verbs on them, one file each: `prepare` (a project's networks), `attach` (an instance starts;
//! also `detach` when it stops), `release` (a project goes down; also `recover` after a crash).
//!
//! One lock over all of it: operations must see each other's results (a hosts file lists the
//! instances attached before it was written). The slow part of `attach` (a namespace, veths,
//! addresses and routes: netlink round trips of a few milliseconds) runs without it, so that
//! instances starting together are plumbed in parallel; what they share (bridges, addresses,
//! names) is decided under it before, and recorded under it after.

mod attach;
mod prepare;
mod release;

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use tokio::sync::{Mutex, MutexGuard};

use crate::firewall::{Firewall, FirewallKind};
use crate::forward::{Forwarder, Published};
use crate::hosts::{self, HostEntry};
use crate::ipam::{Ipv4Net, Leases};
use crate::link::{self, Netlink};
use crate::netns::NetNs;
use crate::{InstanceDef, NetConfig, NetError, Sandbox};

pub struct Networking {
    config: NetConfig,
    firewall: Option<Firewall>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Networking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Networking")
            .field("scope", &self.config.scope)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// The connection in the daemon's own namespace, made on first use.
    host: Option<std::sync::Arc<Netlink>>,
    /// By engine-level network name.
    bridges: BTreeMap<String, Bridge>,
    /// By instance name.
    instances: BTreeMap<String, Instance>,
    forwarder: Forwarder,
}

struct Bridge {
    ifname: String,
    index: u32,
    subnet: Ipv4Net,
    internal: bool,
    /// The projects using it; it goes when the last one is released.
    projects: BTreeSet<String>,
    leases: Leases,
}

/// An instance's end of one network.
struct Link {
    network: String,
    /// The host end of its veth.
    veth: String,
    addr: Ipv4Addr,
    aliases: Vec<String>,
}

enum Stack {
    Own {
        netns: NetNs,
        links: Vec<Link>,
    },
    /// `network_mode: service:x`: x's (by instance name).
    Joined(String),
}

struct Instance {
    def: InstanceDef,
    stack: Stack,
    /// Started and not yet exited: listed in hosts files, sent connections.
    running: bool,
}

/// What [`Networking::recover`] would remove: for tests and diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Leftovers {
    pub links: Vec<String>,
    pub firewall: bool,
    pub files: bool,
}

impl Leftovers {
    pub fn is_empty(&self) -> bool {
        self.links.is_empty() && !self.firewall && !self.files
    }
}

impl Networking {
    pub fn new(config: NetConfig) -> Networking {
        let firewall = config
            .firewall
            .or_else(FirewallKind::detect)
            .map(|kind| Firewall::new(kind, config.scope.clone()));
        Networking {
            config,
            firewall,
            state: Mutex::new(State::default()),
        }
    }

    pub fn config(&self) -> &NetConfig {
        &self.config
    }

    /// The firewall tool in use (`None`: neither nft nor iptables is installed, so networks
    /// cannot be created).
    pub fn firewall(&self) -> Option<FirewallKind> {
        self.firewall.as_ref().map(|f| f.kind)
    }

    async fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().await
    }

    /// How a process enters `instance`'s network (for `exec`); `None` when it has none here.
    pub async fn sandbox(&self, instance: &str) -> Option<Sandbox> {
        let st = self.lock().await;
        self.sandbox_of(&st, instance)
    }

    /// The addresses of `instance`, by network (engine-level name); those of the instance whose
    /// namespace it shares, for `service:x`.
    pub async fn addresses(&self, instance: &str) -> Vec<(String, Ipv4Addr)> {
        let st = self.lock().await;
        own_links(&st, instance)
            .map(|links| links.iter().map(|l| (l.network.clone(), l.addr)).collect())
            .unwrap_or_default()
    }

    /// The published ports of `project`.
    pub async fn published(&self, project: &str) -> Vec<Published> {
        self.lock().await.forwarder.published(project)
    }

    /// The inodes of the network namespaces of `project`'s instances (`net:[<inode>]`).
    pub async fn namespaces(&self, project: &str) -> Vec<u64> {
        let st = self.lock().await;
        st.instances
            .values()
            .filter(|i| i.def.project == project)
            .filter_map(|i| match &i.stack {
                Stack::Own { netns, .. } => Some(netns.inode()),
                Stack::Joined(_) => None,
            })
            .collect()
    }

    /// The bridge of a network (engine-level name), while it exists.
    pub async fn bridge(&self, network: &str) -> Option<(String, Ipv4Net)> {
        let st = self.lock().await;
        st.bridges
            .get(network)
            .map(|b| (b.ifname.clone(), b.subnet))
    }

    fn instance_dir(&self, instance: &str) -> PathBuf {
        self.config.run_dir.join(instance)
    }

    fn sandbox_of(&self, st: &State, instance: &str) -> Option<Sandbox> {
        let i = st.instances.get(instance)?;
        let owner = match &i.stack {
            Stack::Own { .. } => instance,
            Stack::Joined(x) => x.as_str(),
        };
        let Stack::Own { netns, .. } = &st.instances.get(owner)?.stack else {
            return None;
        };
        let dir = self.instance_dir(owner);
        Some(Sandbox {
            netns: netns.path(),
            binds: vec![
                (dir.join("hosts"), PathBuf::from("/etc/hosts")),
                (dir.join("resolv.conf"), PathBuf::from("/etc/resolv.conf")),
            ],
        })
    }

    /// Rewrites the hosts file of every instance with a namespace of its own that shares a
    /// network with one of `changed` (and theirs).
    fn rewrite_hosts(&self, st: &State, changed: &[&str]) -> Result<(), NetError> {
        let mut networks = BTreeSet::new();
        let mut owners = BTreeSet::new();
        for name in changed {
            let owner = owner_of(st, name);
            owners.insert(owner.to_string());
            if let Some(links) = own_links(st, owner) {
                networks.extend(links.iter().map(|l| l.network.clone()));
            }
        }
        // Instances on the same networks (in the same order) see the same hosts file: each
        // text is made once per rewrite, not once per instance, and the names of instances
        // sharing a namespace once, not once per entry. Attaching 203 instances to one network
        // one after the other (wharf-net's addresses test with 200 leased) took 92 s in a
        // debug build when every file was made for itself, 2.8 s now.
        let joined = joined_names(st);
        let mut texts: BTreeMap<Vec<&str>, String> = BTreeMap::new();
        for (name, i) in &st.instances {
            if let Stack::Own { links, .. } = &i.stack
                && (owners.contains(name) || links.iter().any(|l| networks.contains(&l.network)))
            {
                let key: Vec<&str> = links.iter().map(|l| l.network.as_str()).collect();
                let text = texts
                    .entry(key)
                    .or_insert_with(|| hosts::hosts_text(&entries_on(st, links, &joined)));
                let path = self.instance_dir(name).join("hosts");
                hosts::write_in_place(&path, text).map_err(|e| NetError::System {
                    what: format!("cannot write {}", path.display()),
                    reason: e.to_string(),
                })?;
            }
        }
        Ok(())
    }

    /// The nameservers instances get.
    fn nameservers(&self) -> (String, Vec<IpAddr>) {
        let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        let servers = self
            .config
            .nameservers
            .clone()
            .unwrap_or_else(|| hosts::reachable_nameservers(&host));
        (host, servers)
    }
}

impl State {
    /// The connection in the daemon's namespace.
    fn host(&mut self) -> Result<&Netlink, NetError> {
        self.shared_host()?;
        Ok(self.host.as_deref().expect("just set"))
    }

    /// The connection in the daemon's namespace, for use after the lock is released.
    fn shared_host(&mut self) -> Result<std::sync::Arc<Netlink>, NetError> {
        if self.host.is_none() {
            let nl = Netlink::connect().map_err(|e| NetError::System {
                what: "cannot open a netlink socket".into(),
                reason: e.to_string(),
            })?;
            self.host = Some(std::sync::Arc::new(nl));
        }
        Ok(std::sync::Arc::clone(self.host.as_ref().expect("just set")))
    }
}

/// The instance whose namespace `name` uses (itself, or x for `service:x`).
fn owner_of<'a>(st: &'a State, name: &'a str) -> &'a str {
    match st.instances.get(name).map(|i| &i.stack) {
        Some(Stack::Joined(x)) => x,
        _ => name,
    }
}

fn own_links<'a>(st: &'a State, name: &str) -> Option<&'a [Link]> {
    match &st.instances.get(owner_of(st, name))?.stack {
        Stack::Own { links, .. } => Some(links),
        Stack::Joined(_) => None,
    }
}

/// The hosts file of `name` (an instance with its own namespace): for each of its networks,
/// every running instance on it with its names, and the names of the running instances that
/// share that instance's namespace.
/// The names of an instance: its own, its service's and its `hostname`.
fn names_of(i: &Instance, instance: &str) -> Vec<String> {
    let mut names = vec![instance.to_string(), i.def.service.clone()];
    names.extend(i.def.hostname.clone());
    names
}

/// The names of the running instances that share another's namespace (`network_mode:
/// service:x`), by the instance whose namespace it is.
fn joined_names(st: &State) -> BTreeMap<&str, Vec<String>> {
    let mut joined: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (joiner, j) in &st.instances {
        if let (true, Stack::Joined(owner)) = (j.running, &j.stack) {
            joined
                .entry(owner.as_str())
                .or_default()
                .extend(names_of(j, joiner));
        }
    }
    joined
}

/// The hosts entries seen from the networks `links` are on: every running instance on each of
/// them, with its aliases there and the names of the instances that share its namespace.
fn entries_on(st: &State, links: &[Link], joined: &BTreeMap<&str, Vec<String>>) -> Vec<HostEntry> {
    let mut entries = Vec::new();
    for mine in links {
        for (other, i) in &st.instances {
            let Stack::Own { links: theirs, .. } = &i.stack else {
                continue;
            };
            let Some(link) = theirs.iter().find(|l| l.network == mine.network) else {
                continue;
            };
            if !i.running {
                continue;
            }
            let mut names = names_of(i, other);
            names.extend(link.aliases.iter().cloned());
            names.extend(joined.get(other.as_str()).into_iter().flatten().cloned());
            entries.push(HostEntry {
                addr: IpAddr::V4(link.addr),
                names,
            });
        }
    }
    entries
}

fn link_error(network: &str, what: &str, e: &rtnetlink::Error) -> NetError {
    NetError::Network {
        network: network.to_string(),
        reason: format!("cannot {what}: {}", link::reason(e)),
    }
}

fn instance_error(instance: &str, reason: String) -> NetError {
    NetError::Instance {
        instance: instance.to_string(),
        reason,
    }
}
