//! From the runtime's network specs to `wharf-net`'s, and what `prepare` says.

use std::collections::BTreeMap;

use wharf_model::Project;
use wharf_model::project::NetworkMode;
use wharf_net::{Attach, InstanceDef, Ipv4Net, Mode, NetworkDef, Networking, PortDef, Protocol};

use crate::{
    InstanceSpec, NetworkModeSpec, NetworkSpec, PortProtocol, ProjectNetworkSpec, RuntimeError,
};

/// The bridges of every network a service of `project` is attached to; warnings for ports that
/// cannot be published natively.
pub(super) async fn prepare(
    net: &Networking,
    project: &Project,
) -> Result<Vec<String>, RuntimeError> {
    let mut defs: BTreeMap<String, NetworkDef> = BTreeMap::new();
    let mut warnings = Vec::new();
    for service in project.services.values() {
        match &service.network_mode {
            None => {
                for key in service.networks.keys() {
                    let Some(network) = project.networks.get(key) else {
                        continue;
                    };
                    let spec = ProjectNetworkSpec::of(key, network);
                    let def = network_def(&spec).map_err(RuntimeError::Other)?;
                    defs.insert(def.name.clone(), def);
                }
            }
            Some(mode @ (NetworkMode::Host | NetworkMode::None)) if !service.ports.is_empty() => {
                warnings.push(format!(
                    "service `{}`: `ports` has no effect with network_mode: {mode} ({})",
                    service.name,
                    if *mode == NetworkMode::Host {
                        "the program listens on the machine's ports itself"
                    } else {
                        "it has no network to publish from"
                    }
                ));
            }
            Some(_) => {}
        }
    }
    let defs: Vec<NetworkDef> = defs.into_values().collect();
    let mut more = net
        .prepare(&project.name, &defs)
        .await
        .map_err(|e| RuntimeError::Other(format!("project {}: {e}", project.name)))?;
    warnings.append(&mut more);
    Ok(warnings)
}

/// What an `up` without isolation is told, unless every service uses the host network anyway.
pub(super) fn host_network_warning(project: &Project) -> Option<String> {
    let isolated = project
        .services
        .values()
        .any(|s| s.network_mode != Some(NetworkMode::Host));
    isolated.then(|| {
        "network isolation is off (it needs wharf to run as root): instances share this machine's network, so service names do not resolve (use 127.0.0.1), two services cannot listen on the same port, `networks:` and `internal:` separate nothing (every instance reaches every port of the machine), and `ports:` are not published by wharf (each program listens on the host port itself, so replicas of a published service collide)"
            .to_string()
    })
}

/// What to connect `spec` to; `None` for the machine's network (no spec, or `host`).
pub(super) fn instance_def(spec: &InstanceSpec) -> Result<Option<InstanceDef>, String> {
    let Some(NetworkSpec {
        mode,
        ports,
        hostname,
    }) = &spec.network
    else {
        return Ok(None);
    };
    let mode = match mode {
        NetworkModeSpec::Host => return Ok(None),
        NetworkModeSpec::None => Mode::Loopback,
        NetworkModeSpec::Instance(x) => Mode::Join(x.clone()),
        NetworkModeSpec::Attached(attachments) => Mode::Networks(
            attachments
                .iter()
                .map(|a| {
                    Ok(Attach {
                        network: network_def(&a.network)?,
                        aliases: a.aliases.clone(),
                        ipv4_address: a.ipv4_address,
                    })
                })
                .collect::<Result<_, String>>()?,
        ),
    };
    Ok(Some(InstanceDef {
        project: spec.project.clone(),
        service: spec.service.clone(),
        name: spec.name.clone(),
        hostname: hostname.clone(),
        mode,
        ports: ports
            .iter()
            .map(|p| PortDef {
                host_ip: p.host_ip,
                published: p.published,
                target: p.target,
                protocol: match p.protocol {
                    PortProtocol::Tcp => Protocol::Tcp,
                    PortProtocol::Udp => Protocol::Udp,
                },
            })
            .collect(),
    }))
}

fn network_def(spec: &ProjectNetworkSpec) -> Result<NetworkDef, String> {
    let subnet = match &spec.subnet {
        Some(s) => Some(
            s.parse::<Ipv4Net>()
                .map_err(|e| format!("network `{}`: {e}", spec.key))?,
        ),
        None => None,
    };
    Ok(NetworkDef {
        name: spec.name.clone(),
        internal: spec.internal,
        subnet,
    })
}
