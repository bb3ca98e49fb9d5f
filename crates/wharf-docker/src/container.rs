//! A service instance as the Engine's container-create request: everything the model holds that
//! Docker supports, from the typed fields and the normalised `extra` keys.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, DeviceMapping, EndpointIpamConfig, EndpointSettings, HealthConfig,
    HostConfig, HostConfigLogConfig, Mount, MountTmpfsOptions, MountType, MountVolumeOptions,
    NetworkingConfig, PortBinding, ResourcesUlimits, RestartPolicy as EngineRestart,
    RestartPolicyNameEnum,
};
use serde_json::Value as Json;
use wharf_model::Project;
use wharf_model::project::{HealthTest, RestartPolicy, Service, VolumeType};
use wharf_runtime::{AttachmentSpec, InstanceSpec, NetworkModeSpec};

use crate::{DockerError, labels};

/// The create request and the networks to connect the container to after it is created (the
/// create request takes one endpoint before API 1.44).
pub struct ContainerPlan {
    pub body: ContainerCreateBody,
    pub more_networks: Vec<(String, EndpointSettings)>,
}

/// The Engine's API version, `(major, minor)`.
pub type ApiVersion = (usize, usize);

/// The first API version whose health checks take `start_interval` (Docker 25).
pub const START_INTERVAL_API: ApiVersion = (1, 44);

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn strings(v: Option<&Json>) -> Option<Vec<String>> {
    match v? {
        Json::Array(items) => Some(
            items
                .iter()
                .map(|i| match i {
                    Json::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        ),
        Json::String(s) => Some(vec![s.clone()]),
        _ => None,
    }
}

fn bytes_of(v: Option<&Json>) -> Option<i64> {
    match v? {
        Json::String(s) => s.parse().ok(),
        Json::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn endpoint(service: &Service, attachment: &AttachmentSpec) -> EndpointSettings {
    let mut aliases = vec![service.name.clone()];
    aliases.extend(attachment.aliases.iter().cloned());
    EndpointSettings {
        aliases: Some(aliases),
        ipam_config: attachment.ipv4_address.map(|ip| EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The container of instance `spec` of `service`. `network_of` gives the container id of the
/// instance whose network `network_mode: service:x` joins.
pub fn plan(
    project: &Project,
    service: &Service,
    spec: &InstanceSpec,
    image: &str,
    api: ApiVersion,
    network_of: Option<&str>,
) -> Result<ContainerPlan, DockerError> {
    let bad = |reason: String| DockerError::Service {
        service: service.name.clone(),
        reason,
    };
    let extra = &service.extra;
    let env: Vec<String> = service
        .environment
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={v}")))
        .collect();

    // Networking.
    let mut host = HostConfig::default();
    let mut networking = None;
    let mut more_networks = Vec::new();
    let mut own_network = true;
    match spec.network.as_ref().map(|n| &n.mode) {
        None => {}
        Some(NetworkModeSpec::Host) => {
            host.network_mode = Some("host".into());
            own_network = false;
        }
        Some(NetworkModeSpec::None) => host.network_mode = Some("none".into()),
        Some(NetworkModeSpec::Instance(name)) => {
            let id = network_of.unwrap_or(name);
            host.network_mode = Some(format!("container:{id}"));
            own_network = false;
        }
        Some(NetworkModeSpec::Attached(list)) => {
            if let Some((first, rest)) = list.split_first() {
                host.network_mode = Some(first.network.name.clone());
                networking = Some(NetworkingConfig {
                    endpoints_config: Some(HashMap::from([(
                        first.network.name.clone(),
                        endpoint(service, first),
                    )])),
                });
                for a in rest {
                    more_networks.push((a.network.name.clone(), endpoint(service, a)));
                }
            }
        }
    }
    if let Some(NetworkModeSpec::Attached(_)) | None = spec.network.as_ref().map(|n| &n.mode) {
        // `network_mode: container:<name>` of the model (not a service of the project).
        if let Some(wharf_model::project::NetworkMode::Container(c)) = &service.network_mode {
            host.network_mode = Some(format!("container:{c}"));
            networking = None;
            more_networks.clear();
            own_network = false;
        }
    }

    // Ports: `expose` and the targets of `ports`, published as written.
    let mut exposed: Vec<String> = Vec::new();
    let mut bindings: HashMap<String, Option<Vec<PortBinding>>> = HashMap::new();
    if own_network {
        for e in &service.expose {
            let e = if e.contains('/') {
                e.clone()
            } else {
                format!("{e}/tcp")
            };
            if !exposed.contains(&e) {
                exposed.push(e);
            }
        }
        for p in &service.ports {
            let key = format!("{}/{}", p.target, p.protocol);
            if !exposed.contains(&key) {
                exposed.push(key.clone());
            }
            bindings
                .entry(key)
                .or_insert_with(|| Some(Vec::new()))
                .get_or_insert_with(Vec::new)
                .push(PortBinding {
                    host_ip: p.host_ip.clone().filter(|h| !h.is_empty()),
                    host_port: Some(p.published.clone().unwrap_or_default()),
                });
        }
    }
    if !bindings.is_empty() {
        host.port_bindings = Some(bindings);
    }

    // Volumes: binds (the Engine creates a missing source directory, as Compose does), named
    // and anonymous volumes, tmpfs.
    let mut binds = Vec::new();
    let mut mounts = Vec::new();
    for v in &service.volumes {
        match v.kind {
            VolumeType::Bind => {
                let Some(source) = &v.source else {
                    return Err(bad(format!("bind mount of {} has no source", v.target)));
                };
                let mode = if v.read_only { ":ro" } else { ":rw" };
                binds.push(format!("{source}:{}{mode}", v.target));
            }
            VolumeType::Volume => {
                let source = v.source.as_ref().map(|key| {
                    project
                        .volumes
                        .get(key)
                        .map(|vol| vol.name.clone())
                        .unwrap_or_else(|| format!("{}_{key}", project.name))
                });
                let no_copy = v
                    .options
                    .get("volume")
                    .and_then(|o| o.get("nocopy"))
                    .and_then(Json::as_bool);
                mounts.push(Mount {
                    target: Some(v.target.clone()),
                    source,
                    typ: Some(MountType::VOLUME),
                    read_only: Some(v.read_only),
                    volume_options: no_copy.map(|n| MountVolumeOptions {
                        no_copy: Some(n),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            VolumeType::Tmpfs => {
                let size = bytes_of(v.options.get("tmpfs").and_then(|t| t.get("size")));
                mounts.push(Mount {
                    target: Some(v.target.clone()),
                    typ: Some(MountType::TMPFS),
                    tmpfs_options: size.map(|s| MountTmpfsOptions {
                        size_bytes: Some(s),
                        ..Default::default()
                    }),
                    ..Default::default()
                });
            }
            other => {
                return Err(bad(format!(
                    "volume of type {} at {} is not supported by the Docker runtime; use a bind, volume or tmpfs mount",
                    other.as_str(),
                    v.target
                )));
            }
        }
    }
    if !binds.is_empty() {
        host.binds = Some(binds);
    }
    if !mounts.is_empty() {
        host.mounts = Some(mounts);
    }
    if let Some(list) = strings(extra.get("tmpfs")) {
        host.tmpfs = Some(
            list.into_iter()
                .map(|t| match t.split_once(':') {
                    Some((path, opts)) => (path.to_string(), opts.to_string()),
                    None => (t, String::new()),
                })
                .collect(),
        );
    }

    // Privileges, devices, limits, names.
    host.cap_add = strings(extra.get("cap_add"));
    host.cap_drop = strings(extra.get("cap_drop"));
    host.privileged = extra.get("privileged").and_then(Json::as_bool);
    host.init = extra.get("init").and_then(Json::as_bool);
    host.readonly_rootfs = extra.get("read_only").and_then(Json::as_bool);
    host.shm_size = bytes_of(extra.get("shm_size"));
    host.memory = bytes_of(extra.get("mem_limit"));
    host.nano_cpus = extra
        .get("cpus")
        .and_then(Json::as_f64)
        .map(|c| (c * 1e9) as i64);
    host.pids_limit = extra.get("pids_limit").and_then(Json::as_i64);
    host.dns = strings(extra.get("dns"));
    host.dns_search = strings(extra.get("dns_search"));
    host.security_opt = strings(extra.get("security_opt"));
    host.group_add = strings(extra.get("group_add"));
    host.pid_mode = extra.get("pid").and_then(Json::as_str).map(str::to_string);
    host.ipc_mode = extra.get("ipc").and_then(Json::as_str).map(str::to_string);
    host.sysctls = extra.get("sysctls").and_then(Json::as_object).map(|m| {
        m.iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), v)
            })
            .collect()
    });
    if let Some(devices) = extra.get("devices").and_then(Json::as_array) {
        let mut out = Vec::new();
        for d in devices {
            let (host_path, container_path, perms) = match d {
                Json::String(s) => {
                    let mut parts = s.splitn(3, ':');
                    let h = parts.next().unwrap_or_default().to_string();
                    let c = parts
                        .next()
                        .map(str::to_string)
                        .unwrap_or_else(|| h.clone());
                    let p = parts.next().unwrap_or("rwm").to_string();
                    (h, c, p)
                }
                Json::Object(m) => {
                    let get = |k: &str| m.get(k).and_then(Json::as_str).map(str::to_string);
                    let h = get("source").unwrap_or_default();
                    let c = get("target").unwrap_or_else(|| h.clone());
                    (h, c, get("permissions").unwrap_or_else(|| "rwm".into()))
                }
                other => return Err(bad(format!("cannot read device {other}"))),
            };
            out.push(DeviceMapping {
                path_on_host: Some(host_path),
                path_in_container: Some(container_path),
                cgroup_permissions: Some(perms),
            });
        }
        host.devices = Some(out);
    }
    if let Some(ulimits) = extra.get("ulimits").and_then(Json::as_object) {
        let mut out = Vec::new();
        for (name, v) in ulimits {
            let (soft, hard) = match v {
                Json::Object(m) => (
                    m.get("soft").and_then(Json::as_i64),
                    m.get("hard").and_then(Json::as_i64),
                ),
                Json::Number(n) => (n.as_i64(), n.as_i64()),
                Json::String(s) => (s.parse().ok(), s.parse().ok()),
                _ => (None, None),
            };
            let (Some(soft), Some(hard)) = (soft, hard) else {
                return Err(bad(format!(
                    "ulimit `{name}` needs a number or `soft` and `hard`"
                )));
            };
            out.push(ResourcesUlimits {
                name: Some(name.clone()),
                soft: Some(soft),
                hard: Some(hard),
            });
        }
        host.ulimits = Some(out);
    }
    host.extra_hosts = match extra.get("extra_hosts") {
        Some(Json::Object(m)) => Some(
            m.iter()
                .flat_map(|(h, ips)| {
                    let ips = match ips {
                        Json::Array(a) => a
                            .iter()
                            .filter_map(|i| i.as_str().map(str::to_string))
                            .collect(),
                        Json::String(s) => vec![s.clone()],
                        _ => Vec::new(),
                    };
                    ips.into_iter().map(move |ip| format!("{h}:{ip}"))
                })
                .collect(),
        ),
        other => strings(other).map(|list| {
            list.into_iter()
                .map(|e| match e.split_once('=') {
                    Some((h, ip)) => format!("{h}:{ip}"),
                    None => e,
                })
                .collect()
        }),
    };
    if let Some(logging) = extra.get("logging").and_then(Json::as_object) {
        host.log_config = Some(HostConfigLogConfig {
            typ: logging
                .get("driver")
                .and_then(Json::as_str)
                .map(str::to_string),
            config: logging.get("options").and_then(Json::as_object).map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let v = v
                            .as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| v.to_string());
                        (k.clone(), v)
                    })
                    .collect()
            }),
        });
    }
    let (name, retries) = match service.restart {
        RestartPolicy::No => (RestartPolicyNameEnum::NO, None),
        RestartPolicy::Always => (RestartPolicyNameEnum::ALWAYS, None),
        RestartPolicy::UnlessStopped => (RestartPolicyNameEnum::UNLESS_STOPPED, None),
        RestartPolicy::OnFailure { max_retries } => (
            RestartPolicyNameEnum::ON_FAILURE,
            max_retries.and_then(|m| i64::try_from(m).ok()),
        ),
    };
    host.restart_policy = Some(EngineRestart {
        name: Some(name),
        maximum_retry_count: retries,
    });

    let healthcheck = service.healthcheck.as_ref().map(|h| {
        let test = if !h.is_enabled() {
            Some(vec!["NONE".to_string()])
        } else {
            h.test.as_ref().map(|t| match t {
                HealthTest::Cmd(args) => std::iter::once("CMD".to_string())
                    .chain(args.iter().cloned())
                    .collect(),
                HealthTest::Shell(cmd) => vec!["CMD-SHELL".to_string(), cmd.clone()],
                HealthTest::None => vec!["NONE".to_string()],
            })
        };
        HealthConfig {
            test,
            interval: h.interval.map(nanos),
            timeout: h.timeout.map(nanos),
            retries: h.retries.and_then(|r| i64::try_from(r).ok()),
            start_period: h.start_period.map(nanos),
            start_interval: h
                .start_interval
                .filter(|_| api >= START_INTERVAL_API)
                .map(nanos),
        }
    });

    let hostname = if own_network {
        service.hostname.clone()
    } else {
        None
    };
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: service.command.clone(),
        entrypoint: service.entrypoint.clone(),
        env: Some(env),
        working_dir: service.working_dir.clone(),
        user: service.user.clone(),
        hostname,
        domainname: extra
            .get("domainname")
            .and_then(Json::as_str)
            .map(str::to_string),
        labels: Some(labels::container_labels(project, service, spec.number)),
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        healthcheck,
        stop_signal: service.stop_signal.clone(),
        stop_timeout: service
            .stop_grace_period
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX)),
        tty: extra.get("tty").and_then(Json::as_bool),
        open_stdin: extra.get("stdin_open").and_then(Json::as_bool),
        host_config: Some(host),
        networking_config: networking,
        ..Default::default()
    };
    Ok(ContainerPlan {
        body,
        more_networks,
    })
}
