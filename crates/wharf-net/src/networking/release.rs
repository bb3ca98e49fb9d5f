//! `release`: a project went down: its instances' veths, namespaces and files, its published
//! ports, and the bridges no other project uses. `recover`: everything of this scope, found by
//! name (after a crash, or at shutdown).

use std::time::Duration;

use super::{Leftovers, Networking, State, link_error};
use crate::NetError;
use crate::firewall::{Firewall, FirewallKind, find_program};
use crate::forward::Forwarder;
use crate::ifname;

/// How long `release` waits for closed namespaces to take their veths with them.
const VETH_GRACE: Duration = Duration::from_secs(2);

impl Networking {
    /// Removes what `project` had. Its instances should have stopped: a namespace still in use
    /// by a process lives on with it (without its veths) until that process ends.
    pub async fn release(&self, project: &str) -> Result<(), NetError> {
        let mut st = self.lock().await;
        st.forwarder.close_project(project);
        let names: Vec<String> = st
            .instances
            .iter()
            .filter(|(_, i)| i.def.project == project)
            .map(|(n, _)| n.clone())
            .collect();
        // Instances sharing another's namespace first, so that none is left pointing at a gone one.
        let (joined, own): (Vec<String>, Vec<String>) = names
            .into_iter()
            .partition(|n| matches!(st.instances[n].stack, super::Stack::Joined(_)));
        // Closing a namespace (its processes are gone) destroys its veths, both ends, in one
        // batch in the kernel: much faster than deleting them one by one (each deletion waits
        // for a network-wide synchronisation). Whatever is still there after a moment (a
        // process that lingers in a namespace) is deleted explicitly.
        let mut veths = Vec::new();
        for name in joined.iter().chain(&own) {
            if let Some(old) = st.instances.remove(name) {
                st.forwarder.withdraw(name);
                if let super::Stack::Own { netns, links } = old.stack {
                    drop(netns);
                    for l in links {
                        if let Some(b) = st.bridges.get_mut(&l.network) {
                            b.leases.release(name);
                        }
                        veths.push(l.veth);
                    }
                }
            }
            let _ = std::fs::remove_dir_all(self.instance_dir(name));
        }
        self.wait_gone(&mut st, &mut veths).await;
        for veth in &veths {
            if let Ok(host) = st.host() {
                let _ = host.delete(veth).await;
            }
        }
        let mut first_error = None;
        let gone: Vec<String> = st
            .bridges
            .iter_mut()
            .filter_map(|(name, b)| {
                b.projects.remove(project);
                b.projects.is_empty().then(|| name.clone())
            })
            .collect();
        for name in &gone {
            if let Some(b) = st.bridges.remove(name) {
                let deleted =
                    match st.host() {
                        Ok(host) => host.delete(&b.ifname).await.map(|_| ()).map_err(|e| {
                            link_error(name, &format!("delete bridge {}", b.ifname), &e)
                        }),
                        Err(e) => Err(e),
                    };
                if let Err(e) = deleted {
                    first_error.get_or_insert(e);
                }
            }
        }
        if !gone.is_empty()
            && let Err(e) = self.apply_firewall(&st).await
        {
            first_error.get_or_insert(e);
        }
        // Instances of other projects on a shared (external) network lose these names.
        let remaining: Vec<String> = st.instances.keys().cloned().collect();
        let refs: Vec<&str> = remaining.iter().map(String::as_str).collect();
        let _ = self.rewrite_hosts(&st, &refs);
        if st.instances.is_empty() {
            let _ = std::fs::remove_dir(&self.config.run_dir);
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Removes every link, firewall table or chain and file of this scope, known or not: what a
    /// crashed daemon of the same state directory left (call before starting any instance), or
    /// everything at shutdown. Also removes the bridges of any other scope whose owning process
    /// is gone (their alias names it), with that scope's rules and files: what daemons and test
    /// runs that were killed and never restarted left. Returns what it removed, for the log.
    pub async fn recover(&self) -> Result<Vec<String>, NetError> {
        let mut st = self.lock().await;
        let mut removed = Vec::new();
        // Namespaces close with the instances' records; their processes are gone or going.
        st.instances.clear();
        st.bridges.clear();
        st.forwarder = Forwarder::default();
        let links = st
            .host()?
            .links()
            .await
            .map_err(|e| link_error("*", "list links", &e))?;
        let mut scopes = vec![self.config.scope.clone()];
        let mut doomed: Vec<String> = Vec::new();
        for (name, alias) in &links {
            if ifname::is_ours(&self.config.scope, name) {
                doomed.push(name.clone());
            } else if name.starts_with(ifname::BRIDGE_PREFIX)
                && let Some(scope) = ifname::alias_scope(alias)
                && !ifname::owner_alive(alias)
            {
                doomed.push(name.clone());
                if !scopes.iter().any(|s| s == scope) {
                    scopes.push(scope.to_string());
                }
            }
        }
        // Veths first (they are bridge ports), then bridges.
        doomed.sort_by_key(|n| !n.starts_with(ifname::VETH_PREFIX));
        for name in doomed {
            let host = st.host()?;
            if host
                .delete(&name)
                .await
                .map_err(|e| link_error(&name, "delete", &e))?
            {
                removed.push(format!("link {name}"));
            }
        }
        for scope in &scopes {
            for kind in installed_firewalls() {
                let fw = Firewall::new(kind, scope.clone());
                if fw.remove().await? {
                    removed.push(match kind {
                        FirewallKind::Nftables => {
                            format!("nftables table inet {}", crate::firewall::nft_table(scope))
                        }
                        FirewallKind::Iptables => {
                            format!("iptables chains {}", crate::firewall::iptables_chain(scope))
                        }
                    });
                }
            }
            let dir = self
                .config
                .run_dir
                .parent()
                .map(|p| p.join(scope))
                .unwrap_or_else(|| self.config.run_dir.clone());
            if dir.exists() {
                std::fs::remove_dir_all(&dir).map_err(|e| NetError::System {
                    what: format!("cannot remove {}", dir.display()),
                    reason: e.to_string(),
                })?;
                removed.push(format!("files in {}", dir.display()));
            }
        }
        Ok(removed)
    }

    /// What [`Networking::recover`] would remove now.
    pub async fn leftovers(&self) -> Result<Leftovers, NetError> {
        let mut st = self.lock().await;
        let links = self.our_links(&mut st).await?;
        let mut firewall = false;
        for kind in installed_firewalls() {
            let fw = Firewall::new(kind, self.config.scope.clone());
            firewall |= fw.present().await;
        }
        let files = std::fs::read_dir(&self.config.run_dir).is_ok_and(|mut d| d.next().is_some());
        Ok(Leftovers {
            links,
            firewall,
            files,
        })
    }

    /// Waits (up to [`VETH_GRACE`]) for the kernel to destroy `veths`; leaves in it those that
    /// are still there.
    async fn wait_gone(&self, st: &mut State, veths: &mut Vec<String>) {
        let deadline = tokio::time::Instant::now() + VETH_GRACE;
        while !veths.is_empty() && tokio::time::Instant::now() < deadline {
            let Ok(links) = self.our_links(st).await else {
                return;
            };
            veths.retain(|v| links.contains(v));
            if !veths.is_empty() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    async fn our_links(&self, st: &mut State) -> Result<Vec<String>, NetError> {
        let host = st.host()?;
        let links = host
            .links()
            .await
            .map_err(|e| link_error("*", "list links", &e))?;
        Ok(links
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| ifname::is_ours(&self.config.scope, name))
            .collect())
    }
}

/// The firewall tools on this machine (a scope's rules may be in either, if the machine changed).
fn installed_firewalls() -> Vec<FirewallKind> {
    let mut kinds = Vec::new();
    if find_program("iptables").is_some() {
        kinds.push(FirewallKind::Iptables);
    }
    if find_program("nft").is_some() {
        kinds.push(FirewallKind::Nftables);
    }
    kinds
}
