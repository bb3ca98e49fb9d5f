//! `attach`: an instance is about to start: its namespace, veths, addresses, routes, names and
//! published ports. `detach`: it stopped.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;

use super::{Instance, Link, Networking, Stack, State, instance_error, own_links};
use crate::hosts;
use crate::ifname;
use crate::link::Netlink;
use crate::netns::NetNs;
use crate::{Attach, InstanceDef, Mode, NetError, Sandbox};

/// One network of an instance about to be plumbed: what was decided under the lock.
struct PlannedLink {
    bridge_index: u32,
    prefix: u8,
    /// Its default route goes through this network's gateway (not `internal`).
    gateway: Option<std::net::Ipv4Addr>,
    link: Link,
}

impl Networking {
    /// Connects `def` as its mode says (creating its bridges if `prepare` did not) and returns
    /// how its processes enter that network. An instance that was attached before keeps its
    /// namespace and addresses (a restart), unless its networks changed.
    pub async fn attach(&self, def: &InstanceDef) -> Result<Sandbox, NetError> {
        let mut st = self.lock().await;
        let reuse = st
            .instances
            .get(&def.name)
            .is_some_and(|i| i.def.mode == def.mode);
        if !reuse {
            let netns = self.unplumb(&mut st, &def.name).await;
            let stack = match &def.mode {
                Mode::Join(x) => {
                    if !matches!(
                        st.instances.get(x).map(|i| &i.stack),
                        Some(Stack::Own { .. })
                    ) {
                        return Err(instance_error(
                            &def.name,
                            format!(
                                "it shares the network of {x} (network_mode: service), which has not started"
                            ),
                        ));
                    }
                    Stack::Joined(x.clone())
                }
                Mode::Loopback | Mode::Networks(_) => {
                    let attachments: &[Attach] = match &def.mode {
                        Mode::Networks(a) => a,
                        _ => &[],
                    };
                    // Under the lock: the bridges, and the addresses (two instances must never
                    // lease the same one).
                    let mut warnings = Vec::new();
                    let mut created = false;
                    for a in attachments {
                        created |= self
                            .ensure_bridge(&mut st, &def.project, &a.network, &mut warnings)
                            .await?;
                    }
                    if created {
                        self.apply_firewall(&st).await?;
                    }
                    let plan = match self.plan_links(&mut st, def, attachments) {
                        Ok(plan) => plan,
                        Err(e) => {
                            self.abandon(&mut st, &def.name, attachments).await;
                            return Err(e);
                        }
                    };
                    let host = match attachments.is_empty() {
                        true => None,
                        false => Some(st.shared_host()?),
                    };
                    // Without it: the namespace, the links and the files, in parallel with
                    // the other instances that start now.
                    drop(st);
                    let built = async {
                        let netns = self.namespace(netns, &def.name).await?;
                        self.configure(host.as_deref(), def, &netns, &plan).await?;
                        self.write_files(&def.name)?;
                        Ok::<_, NetError>(netns)
                    }
                    .await;
                    st = self.lock().await;
                    match built {
                        Ok(netns) => Stack::Own {
                            netns,
                            links: plan.into_iter().map(|p| p.link).collect(),
                        },
                        Err(e) => {
                            self.abandon(&mut st, &def.name, attachments).await;
                            return Err(e);
                        }
                    }
                }
            };
            st.instances.insert(
                def.name.clone(),
                Instance {
                    def: def.clone(),
                    stack,
                    running: false,
                },
            );
        }
        if let Some(i) = st.instances.get_mut(&def.name) {
            i.def = def.clone();
            i.running = true;
        }
        self.rewrite_hosts(&st, &[&def.name])?;
        if !def.ports.is_empty()
            && let Some(addr) = own_links(&st, &def.name)
                .and_then(|links| links.first())
                .map(|l| IpAddr::V4(l.addr))
            && let Err(e) = st
                .forwarder
                .publish(&def.project, &def.service, &def.ports, &def.name, addr)
                .await
        {
            // It will not start: it must not be listed or sent connections.
            if let Some(i) = st.instances.get_mut(&def.name) {
                i.running = false;
            }
            st.forwarder.withdraw(&def.name);
            let _ = self.rewrite_hosts(&st, &[&def.name]);
            return Err(e);
        }
        self.sandbox_of(&st, &def.name)
            .ok_or_else(|| instance_error(&def.name, "its network went away".into()))
    }

    /// `instance` stopped: it no longer resolves nor gets connections. Its namespace and
    /// addresses stay for its next start (and for the instances that share its namespace).
    pub async fn detach(&self, instance: &str) {
        let mut st = self.lock().await;
        let Some(i) = st.instances.get_mut(instance) else {
            return;
        };
        i.running = false;
        st.forwarder.withdraw(instance);
        let _ = self.rewrite_hosts(&st, &[instance]);
    }

    /// A new namespace, or the one kept from before.
    async fn namespace(&self, kept: Option<NetNs>, instance: &str) -> Result<NetNs, NetError> {
        match kept {
            Some(ns) => Ok(ns),
            None => NetNs::create().await.map_err(|e| {
                instance_error(instance, format!("cannot create a network namespace: {e}"))
            }),
        }
    }

    /// Leases an address on each network and names the veths, under the lock.
    fn plan_links(
        &self,
        st: &mut State,
        def: &InstanceDef,
        attachments: &[Attach],
    ) -> Result<Vec<PlannedLink>, NetError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            instance_error(&def.name, format!("cannot {what}: {e}"))
        };
        let mut plan = Vec::new();
        for a in attachments {
            let network = &a.network.name;
            let b = st
                .bridges
                .get_mut(network)
                .ok_or_else(|| fail("attach", &format!("network {network} does not exist")))?;
            let subnet = b.subnet;
            let addr = b
                .leases
                .lease(subnet, &def.name, a.ipv4_address)
                .map_err(|reason| {
                    instance_error(&def.name, format!("network `{network}`: {reason}"))
                })?;
            plan.push(PlannedLink {
                bridge_index: b.index,
                prefix: subnet.prefix(),
                gateway: (!b.internal).then(|| subnet.gateway()).flatten(),
                link: Link {
                    network: network.clone(),
                    veth: ifname::veth(&self.config.scope, &def.name, network),
                    addr,
                    aliases: a.aliases.clone(),
                },
            });
        }
        Ok(plan)
    }

    /// Loopback up, then per network: a veth from the bridge to `eth<i>`, its address, and the
    /// default route through the first network that is not internal. Runs without the lock.
    async fn configure(
        &self,
        host: Option<&Netlink>,
        def: &InstanceDef,
        netns: &NetNs,
        plan: &[PlannedLink],
    ) -> Result<(), NetError> {
        let fail = |what: &str, e: &dyn std::fmt::Display| {
            instance_error(&def.name, format!("cannot {what}: {e}"))
        };
        let inside = netns
            .netlink()
            .await
            .map_err(|e| fail("open a netlink socket in its namespace", &e))?;
        let lo = inside
            .index("lo")
            .await
            .map_err(|e| fail("find its loopback", &crate::link::reason(&e)))?
            .ok_or_else(|| fail("find its loopback", &"no `lo`"))?;
        inside
            .set_up(lo)
            .await
            .map_err(|e| fail("bring its loopback up", &crate::link::reason(&e)))?;
        let mut default_route = false;
        for (n, p) in plan.iter().enumerate() {
            let host = host.ok_or_else(|| fail("attach", &"no netlink connection"))?;
            let veth = &p.link.veth;
            let addr = p.link.addr;
            let peer = format!("eth{n}");
            host.delete(veth)
                .await
                .map_err(|e| fail("remove a stale veth", &crate::link::reason(&e)))?;
            host.create_veth(veth, p.bridge_index, netns.fd(), &peer)
                .await
                .map_err(|e| fail(&format!("create veth {veth}"), &crate::link::reason(&e)))?;
            let index = inside
                .index(&peer)
                .await
                .map_err(|e| fail(&format!("find {peer}"), &crate::link::reason(&e)))?
                .ok_or_else(|| fail(&format!("find {peer}"), &"it is not in the namespace"))?;
            inside
                .add_address(index, addr, p.prefix)
                .await
                .map_err(|e| {
                    fail(
                        &format!("give {peer} address {addr}"),
                        &crate::link::reason(&e),
                    )
                })?;
            inside
                .set_up(index)
                .await
                .map_err(|e| fail(&format!("bring {peer} up"), &crate::link::reason(&e)))?;
            if !default_route && let Some(gw) = p.gateway {
                inside
                    .add_default_route(gw)
                    .await
                    .map_err(|e| fail("add its default route", &crate::link::reason(&e)))?;
                default_route = true;
            }
        }
        Ok(())
    }

    /// Removes what `instance` had (its veths and addresses; its namespace is returned, to be
    /// kept when it gets one again).
    pub(super) async fn unplumb(&self, st: &mut State, instance: &str) -> Option<NetNs> {
        let old = st.instances.remove(instance)?;
        st.forwarder.withdraw(instance);
        match old.stack {
            Stack::Joined(_) => None,
            Stack::Own { netns, links } => {
                for l in &links {
                    if let Ok(host) = st.host() {
                        let _ = host.delete(&l.veth).await;
                    }
                    if let Some(b) = st.bridges.get_mut(&l.network) {
                        b.leases.release(instance);
                    }
                }
                Some(netns)
            }
        }
    }

    /// Undoes a `configure` that failed half-way.
    async fn abandon(&self, st: &mut State, instance: &str, attachments: &[Attach]) {
        for a in attachments {
            let veth = ifname::veth(&self.config.scope, instance, &a.network.name);
            if let Ok(host) = st.host() {
                let _ = host.delete(&veth).await;
            }
            if let Some(b) = st.bridges.get_mut(&a.network.name) {
                b.leases.release(instance);
            }
        }
    }

    /// Creates the instance's directory and its resolv.conf (hosts comes with `rewrite_hosts`).
    fn write_files(&self, instance: &str) -> Result<(), NetError> {
        let dir = self.instance_dir(instance);
        let io = |what: &str, e: std::io::Error| NetError::System {
            what: format!("cannot {what} {}", dir.display()),
            reason: e.to_string(),
        };
        std::fs::create_dir_all(&dir).map_err(|e| io("create", e))?;
        // Readable by the instance's user, whoever it is.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| io("set the permissions of", e))?;
        let (host, nameservers) = self.nameservers();
        hosts::write_in_place(
            &dir.join("resolv.conf"),
            &hosts::resolv_text(&host, &nameservers),
        )
        .map_err(|e| io("write resolv.conf in", e))?;
        hosts::write_in_place(&dir.join("hosts"), &hosts::hosts_text(&[]))
            .map_err(|e| io("write hosts in", e))?;
        for file in ["resolv.conf", "hosts"] {
            std::fs::set_permissions(dir.join(file), std::fs::Permissions::from_mode(0o644))
                .map_err(|e| io("set the permissions of the files in", e))?;
        }
        Ok(())
    }
}
