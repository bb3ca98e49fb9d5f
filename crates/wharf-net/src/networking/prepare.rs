//! `prepare`: a project's bridges and the firewall rules for them, before its instances start.

use std::fs::File;
use std::net::IpAddr;
use std::path::Path;

use super::{Bridge, Networking, State, link_error};
use crate::firewall::BridgeRules;
use crate::ifname;
use crate::ipam::{self, Ipv4Net, Leases};
use crate::{NetError, NetworkDef};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

impl Networking {
    /// Creates the bridges of `networks` for `project` (or adds the project to those that
    /// exist) and updates the firewall. Returns warnings for the user.
    pub async fn prepare(
        &self,
        project: &str,
        networks: &[NetworkDef],
    ) -> Result<Vec<String>, NetError> {
        let mut st = self.lock().await;
        let mut warnings = Vec::new();
        let mut created = false;
        for def in networks {
            created |= self
                .ensure_bridge(&mut st, project, def, &mut warnings)
                .await?;
        }
        if created {
            self.apply_firewall(&st).await?;
        }
        Ok(warnings)
    }

    /// Makes sure the bridge of `def` exists and `project` is among its users; says whether it
    /// was created.
    pub(super) async fn ensure_bridge(
        &self,
        st: &mut State,
        project: &str,
        def: &NetworkDef,
        warnings: &mut Vec<String>,
    ) -> Result<bool, NetError> {
        let fail = |reason: String| NetError::Network {
            network: def.name.clone(),
            reason,
        };
        if let Some(b) = st.bridges.get_mut(&def.name) {
            if b.internal != def.internal {
                return Err(fail(format!(
                    "it already exists {} `internal` (another project uses it): give the networks different names",
                    if b.internal { "with" } else { "without" }
                )));
            }
            if let Some(s) = def.subnet
                && s.normalized() != b.subnet.normalized()
            {
                return Err(fail(format!(
                    "it already exists with subnet {} (another project uses it), not {s}",
                    b.subnet
                )));
            }
            b.projects.insert(project.to_string());
            return Ok(false);
        }
        if self.firewall.is_none() {
            return Err(fail(
                "neither `iptables` nor `nft` is installed, and without a firewall networks cannot be isolated: install nftables or iptables".into(),
            ));
        }
        let ifname = ifname::bridge(&self.config.scope, &def.name);
        let (_, nameservers) = self.nameservers();
        let _pool_lock = lock_pool(&self.config.lock_file).await?;
        let host = st.host()?;
        // A bridge of this name can only be a leftover of this scope's crashed daemon.
        host.delete(&ifname)
            .await
            .map_err(|e| link_error(&def.name, "remove a stale bridge", &e))?;
        let mut taken = host
            .routes()
            .await
            .map_err(|e| link_error(&def.name, "read the routes", &e))?;
        taken.extend(nameservers.iter().filter_map(|ns| match ns {
            IpAddr::V4(v4) => Ipv4Net::new(*v4, 32),
            IpAddr::V6(_) => None,
        }));
        let subnet = match def.subnet {
            Some(s) => {
                if s.gateway().is_none() {
                    return Err(fail(format!("subnet {s} is too small (at most /30)")));
                }
                if let Some(route) = taken.iter().find(|t| t.overlaps(&s)) {
                    return Err(fail(format!(
                        "subnet {s} overlaps {route}, which this machine already routes or uses: choose another subnet"
                    )));
                }
                s.normalized()
            }
            None => ipam::allocate(&self.config.pools, &taken).ok_or_else(|| {
                let pools: Vec<String> = self.config.pools.iter().map(|p| p.to_string()).collect();
                fail(format!(
                    "no subnet is free on this machine among the {}: give the network an `ipam` subnet, or remove unused networks",
                    pools.join(", ")
                ))
            })?,
        };
        let alias = ifname::bridge_alias(&self.config.scope, &def.name);
        let index = host
            .create_bridge(&ifname, &alias, subnet)
            .await
            .map_err(|e| link_error(&def.name, &format!("create bridge {ifname}"), &e))?;
        if !def.internal && enable_forwarding()? {
            warnings.push(
                "enabled IPv4 forwarding on this machine (net.ipv4.ip_forward=1) so that instances reach the outside"
                    .into(),
            );
        }
        st.bridges.insert(
            def.name.clone(),
            Bridge {
                ifname,
                index,
                subnet,
                internal: def.internal,
                projects: [project.to_string()].into(),
                leases: Leases::default(),
            },
        );
        Ok(true)
    }

    /// Installs the rules for the current bridges (or removes them all when there is none).
    pub(super) async fn apply_firewall(&self, st: &State) -> Result<(), NetError> {
        let Some(fw) = &self.firewall else {
            return Ok(());
        };
        if st.bridges.is_empty() {
            fw.remove().await?;
            return Ok(());
        }
        let rules: Vec<BridgeRules> = st
            .bridges
            .values()
            .map(|b| BridgeRules {
                ifname: b.ifname.clone(),
                subnet: b.subnet,
                internal: b.internal,
            })
            .collect();
        fw.apply(&rules).await
    }
}

/// Turns IPv4 forwarding on if it is off; says whether it did.
fn enable_forwarding() -> Result<bool, NetError> {
    let on = std::fs::read_to_string(IP_FORWARD).is_ok_and(|v| v.trim() == "1");
    if on {
        return Ok(false);
    }
    std::fs::write(IP_FORWARD, "1").map_err(|e| NetError::System {
        what: "cannot enable IPv4 forwarding".into(),
        reason: e.to_string(),
    })?;
    Ok(true)
}

/// The machine-wide lock held while a subnet is chosen and its bridge created, so that two
/// daemons never take the same one.
async fn lock_pool(path: &Path) -> Result<File, NetError> {
    let path = path.to_path_buf();
    let fail = |what: &str, e: std::io::Error, path: &Path| NetError::System {
        what: format!("{what} {}", path.display()),
        reason: e.to_string(),
    };
    tokio::task::spawn_blocking(move || {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("cannot create", e, dir))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| fail("cannot open", e, &path))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| fail("cannot lock", e.into(), &path))?;
        Ok(file)
    })
    .await
    .map_err(|e| NetError::System {
        what: "cannot lock the address pool".into(),
        reason: e.to_string(),
    })?
}
