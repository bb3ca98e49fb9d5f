//! From a service of the project to the [`InstanceSpec`] a runtime starts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use wharf_model::Project;
use wharf_model::project::{NetworkMode, Service, VolumeType};
use wharf_runtime::{
    AttachmentSpec, InstanceSpec, NetworkModeSpec, NetworkSpec, PortProtocol, PortSpec,
    ProjectNetworkSpec, Runtime, Signal,
};

use crate::SupervisorError;

/// Docker's default when `stop_grace_period` is not set.
pub const DEFAULT_STOP_GRACE: Duration = Duration::from_secs(10);

/// The PATH an instance gets when the daemon's environment has none.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// `<project>-<service>-<n>`, Docker Compose's container name.
pub fn instance_name(project: &str, service: &str, number: u32) -> String {
    format!("{project}-{service}-{number}")
}

/// The environment variable through which a native instance finds a named volume's directory:
/// `WHARF_VOLUME_<NAME>`, the volume's key in upper case with every other character than
/// letters and digits as `_` (`db-data` is `WHARF_VOLUME_DB_DATA`).
pub fn volume_variable(volume: &str) -> String {
    let name: String = volume
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("WHARF_VOLUME_{name}")
}

/// The directory of a named volume in native mode: `<volumes_dir>/<engine name>`, refused
/// when the name would lead out of `volumes_dir` (the loader refuses such names; this is
/// defense in depth, issue 12).
pub fn volume_dir(
    volumes_dir: &Path,
    project: &Project,
    volume: &str,
) -> Result<PathBuf, wharf_model::names::NotAChild> {
    let name = project
        .volumes
        .get(volume)
        .map(|v| v.name.clone())
        .unwrap_or_else(|| format!("{}_{volume}", project.name));
    wharf_model::names::child_path(volumes_dir, &name)
}

/// Builds the spec of instance `number` of `service`.
///
/// The environment is the service's (values declared without one and not found are left out),
/// over `PATH` and `HOME` taken from `base_env`, plus `HOSTNAME` (the instance name) and one
/// `WHARF_VOLUME_<NAME>` per named volume the service mounts.
pub fn instance_spec(
    project: &Project,
    service: &Service,
    number: u32,
    base_env: &BTreeMap<String, String>,
    volumes_dir: &Path,
) -> Result<InstanceSpec, SupervisorError> {
    build_instance_spec(project, service, number, base_env, volumes_dir, false)
}

/// [`instance_spec`] for `runtime`: a runtime that runs images takes an instance without
/// `command` or `entrypoint` (the image's own command runs, and `argv` is empty).
pub fn instance_spec_for(
    runtime: &dyn Runtime,
    project: &Project,
    service: &Service,
    number: u32,
    base_env: &BTreeMap<String, String>,
    volumes_dir: &Path,
) -> Result<InstanceSpec, SupervisorError> {
    build_instance_spec(
        project,
        service,
        number,
        base_env,
        volumes_dir,
        runtime.runs_images(&project.name),
    )
}

fn build_instance_spec(
    project: &Project,
    service: &Service,
    number: u32,
    base_env: &BTreeMap<String, String>,
    volumes_dir: &Path,
    runs_images: bool,
) -> Result<InstanceSpec, SupervisorError> {
    let mut argv: Vec<String> = Vec::new();
    argv.extend(service.entrypoint.iter().flatten().cloned());
    argv.extend(service.command.iter().flatten().cloned());
    if argv.is_empty() && !runs_images {
        let what = match &service.image {
            Some(image) => format!("has image `{image}` but no `command` or `entrypoint`"),
            None => "has no `command` or `entrypoint`".to_string(),
        };
        return Err(SupervisorError::Config {
            service: service.name.clone(),
            message: format!(
                "service `{}` {what}: the native runtime runs programs, not images",
                service.name
            ),
            help: "add a `command:` naming the program to run (for an image, its own command), or run the project with --runtime docker".into(),
        });
    }
    let stop_signal = match &service.stop_signal {
        None => Signal::TERM,
        Some(s) => Signal::parse(s).ok_or_else(|| SupervisorError::Config {
            service: service.name.clone(),
            message: format!(
                "service `{}` has an unknown stop_signal `{s}`",
                service.name
            ),
            help: "use a signal name such as SIGTERM, SIGINT or SIGQUIT".into(),
        })?,
    };
    let working_dir = match &service.working_dir {
        Some(d) if Path::new(d).is_absolute() => PathBuf::from(d),
        Some(d) => project.working_dir.join(d),
        None => project.working_dir.clone(),
    };
    let name = instance_name(&project.name, &service.name, number);
    let mut environment = BTreeMap::new();
    for key in ["PATH", "HOME", "LANG", "TZ"] {
        if let Some(v) = base_env.get(key) {
            environment.insert(key.to_string(), v.clone());
        }
    }
    environment
        .entry("PATH".to_string())
        .or_insert_with(|| DEFAULT_PATH.to_string());
    environment.insert("HOSTNAME".into(), name.clone());
    for v in &service.volumes {
        if v.kind == VolumeType::Volume
            && let Some(source) = &v.source
        {
            let dir =
                volume_dir(volumes_dir, project, source).map_err(|e| SupervisorError::Config {
                    service: service.name.clone(),
                    message: format!("volume `{source}` of service `{}`: {e}", service.name),
                    help: "give the volume a name that follows Docker's rule for names".into(),
                })?;
            environment.insert(volume_variable(source), dir.to_string_lossy().into_owned());
        }
    }
    for (k, v) in &service.environment {
        if let Some(v) = v {
            environment.insert(k.clone(), v.clone());
        }
    }
    let network = network_spec(project, service)?;
    Ok(InstanceSpec {
        project: project.name.clone(),
        service: service.name.clone(),
        number,
        name,
        argv,
        working_dir,
        environment,
        user: service.user.clone(),
        stop_signal,
        network: Some(network),
    })
}

/// The networks (or network mode), published ports and hostname of the service's instances.
/// `service:x` is x's first instance; `bridge` is a network named `bridge` shared by every
/// project (Docker's default bridge), any other mode an existing network of that name.
pub fn network_spec(project: &Project, service: &Service) -> Result<NetworkSpec, SupervisorError> {
    let config = |message: String, help: &str| SupervisorError::Config {
        service: service.name.clone(),
        message,
        help: help.to_string(),
    };
    let shared = |name: &str| AttachmentSpec {
        network: ProjectNetworkSpec {
            key: name.to_string(),
            name: name.to_string(),
            internal: false,
            external: true,
            subnet: None,
        },
        aliases: Vec::new(),
        ipv4_address: None,
    };
    let mode = match &service.network_mode {
        Some(NetworkMode::Host) => NetworkModeSpec::Host,
        Some(NetworkMode::None) => NetworkModeSpec::None,
        Some(NetworkMode::Service(x)) => {
            NetworkModeSpec::Instance(instance_name(&project.name, x, 1))
        }
        Some(NetworkMode::Bridge) => NetworkModeSpec::Attached(vec![shared("bridge")]),
        Some(NetworkMode::Network(name)) => NetworkModeSpec::Attached(vec![shared(name)]),
        Some(NetworkMode::Container(c)) => {
            return Err(config(
                format!(
                    "service `{}` has network_mode container:{c}, which only the Docker runtime can do",
                    service.name
                ),
                "use network_mode: service:<name> to share another service's network, or run the project with --runtime docker",
            ));
        }
        None => {
            let mut attachments = Vec::new();
            for (key, attachment) in &service.networks {
                let Some(network) = project.networks.get(key) else {
                    continue;
                };
                let attachment = attachment.clone().unwrap_or_default();
                let ipv4_address = match &attachment.ipv4_address {
                    Some(a) => Some(a.parse().map_err(|_| {
                        config(
                            format!(
                                "service `{}` has an invalid ipv4_address `{a}` on network `{key}`",
                                service.name
                            ),
                            "write an IPv4 address of the network's subnet, such as 172.16.238.10",
                        )
                    })?),
                    None => None,
                };
                attachments.push(AttachmentSpec {
                    network: ProjectNetworkSpec::of(key, network),
                    aliases: attachment.aliases,
                    ipv4_address,
                });
            }
            NetworkModeSpec::Attached(attachments)
        }
    };
    let mut ports = Vec::new();
    for p in &service.ports {
        let protocol = match p.protocol.as_str() {
            "tcp" => PortProtocol::Tcp,
            "udp" => PortProtocol::Udp,
            other => {
                return Err(config(
                    format!(
                        "service `{}` publishes port {} over {other}, which the native runtime cannot forward",
                        service.name, p.target
                    ),
                    "publish tcp or udp ports",
                ));
            }
        };
        let host_ip = match p.host_ip.as_deref() {
            None | Some("") => None,
            Some(ip) => Some(ip.trim_matches(['[', ']']).parse().map_err(|_| {
                config(
                    format!(
                        "service `{}` publishes port {} on an invalid host address `{ip}`",
                        service.name, p.target
                    ),
                    "write an IP address such as 127.0.0.1",
                )
            })?),
        };
        let published = match p.published_ports().as_slice() {
            [] => None,
            [one] => Some((*one, *one)),
            [first, .., last] => Some((*first, *last)),
        };
        ports.push(PortSpec {
            host_ip,
            published,
            target: p.target,
            protocol,
        });
    }
    Ok(NetworkSpec {
        mode,
        ports,
        hostname: service.hostname.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `name: /some/dir` walked out of the volumes folder; the loader refuses it, and so does
    /// this, should a project hold one anyway.
    #[test]
    fn a_volume_dir_stays_in_the_volumes_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("compose.yaml"),
            "name: p\nservices:\n  a:\n    image: a\n    volumes: [data:/d]\nvolumes:\n  data: {}\n",
        )
        .unwrap();
        let options = wharf_model::LoadOptions {
            working_dir: dir.path().to_path_buf(),
            ..wharf_model::LoadOptions::default()
        };
        let mut project = wharf_model::load(&options).unwrap().project;
        let volumes = Path::new("/var/lib/wharf/volumes");
        assert_eq!(
            volume_dir(volumes, &project, "data").unwrap(),
            volumes.join("p_data")
        );
        for bad in ["/some/dir", "../x", ".."] {
            project.volumes.get_mut("data").unwrap().name = bad.into();
            let e = volume_dir(volumes, &project, "data").unwrap_err();
            assert_eq!(e.name, bad);
        }
    }
}
