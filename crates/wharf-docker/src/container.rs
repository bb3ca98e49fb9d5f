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
use wharf_model::project::{FileReference, HealthTest, RestartPolicy, Service, VolumeType};
use wharf_runtime::{AttachmentSpec, InstanceSpec, NetworkModeSpec};

use crate::{DockerError, labels};

/// The create request, the networks to connect the container to after it is created (the
/// create request takes one endpoint before API 1.44), and the files to copy into it before it
/// starts.
pub struct ContainerPlan {
    pub body: ContainerCreateBody,
    pub more_networks: Vec<(String, EndpointSettings)>,
    pub files: Vec<FileCopy>,
}

/// A secret or config given as `content:`, copied into the container before it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCopy {
    /// Absolute path in the container.
    pub path: String,
    pub content: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// Service keys that the Docker runtime does not apply (yet): `prepare` names them in a warning
/// rather than dropping them silently.
pub const NOT_MAPPED: &[&str] = &[
    "blkio_config",
    "cgroup",
    "cgroup_parent",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpu_shares",
    "cpuset",
    "credential_spec",
    "device_cgroup_rules",
    "external_links",
    "gpus",
    "isolation",
    "links",
    "mac_address",
    "mem_reservation",
    "mem_swappiness",
    "memswap_limit",
    "oom_kill_disable",
    "oom_score_adj",
    "platform",
    "post_start",
    "pre_stop",
    "runtime",
    "storage_opt",
    "userns_mode",
    "uts",
    "volumes_from",
];

/// Build keys the Docker runtime does not apply (it sends context, dockerfile, args, target and
/// labels to the Engine's classic builder).
pub const BUILD_NOT_MAPPED: &[&str] = &[
    "additional_contexts",
    "cache_from",
    "cache_to",
    "dockerfile_inline",
    "extra_hosts",
    "isolation",
    "network",
    "no_cache",
    "platforms",
    "privileged",
    "pull",
    "secrets",
    "shm_size",
    "ssh",
    "tags",
    "ulimits",
];

/// What of `service` the Docker runtime leaves out, as one warning, if anything.
pub fn not_mapped(service: &Service) -> Option<String> {
    let mut keys: Vec<String> = NOT_MAPPED
        .iter()
        .filter(|k| service.extra.contains_key(**k))
        .map(|k| format!("`{k}`"))
        .collect();
    if let Some(deploy) = service.extra.get("deploy").and_then(Json::as_object) {
        for k in [
            "placement",
            "endpoint_mode",
            "update_config",
            "rollback_config",
        ] {
            if deploy.contains_key(k) {
                keys.push(format!("`deploy.{k}`"));
            }
        }
        let reservations = deploy
            .get("resources")
            .and_then(|r| r.get("reservations"))
            .and_then(Json::as_object);
        for k in ["cpus", "devices", "generic_resources"] {
            if reservations.is_some_and(|r| r.contains_key(k)) {
                keys.push(format!("`deploy.resources.reservations.{k}`"));
            }
        }
    }
    if let Some(build) = &service.build {
        keys.extend(
            BUILD_NOT_MAPPED
                .iter()
                .filter(|k| build.extra.contains_key(**k))
                .map(|k| format!("`build.{k}`")),
        );
    }
    (!keys.is_empty()).then(|| {
        format!(
            "service `{}`: the Docker runtime does not apply {}",
            service.name,
            keys.join(", ")
        )
    })
}

/// Where a secret or config goes in the container: secrets under `/run/secrets/` (their
/// `target`, else their name), configs at their `target`, else `/<name>`, as Docker Compose
/// places them.
fn file_target(kind: &str, reference: &FileReference) -> String {
    let target = reference.target.as_deref().unwrap_or(&reference.source);
    if target.starts_with('/') {
        target.to_string()
    } else if kind == "secret" {
        format!("/run/secrets/{target}")
    } else {
        format!("/{target}")
    }
}

/// The service's `secrets:` and `configs:`: a `file:` one is bind-mounted read-only (Docker
/// Compose does the same outside Swarm), a `content:` one is copied in with its mode, uid and
/// gid; `environment:` and `external` ones cannot be had here and are refused with the reason.
fn file_objects(
    project: &Project,
    service: &Service,
    binds: &mut Vec<String>,
    files: &mut Vec<FileCopy>,
) -> Result<(), DockerError> {
    let bad = |reason: String| DockerError::Service {
        service: service.name.clone(),
        reason,
    };
    let kinds = [
        ("secret", &service.secrets, &project.secrets),
        ("config", &service.configs, &project.configs),
    ];
    for (kind, references, objects) in kinds {
        for reference in references {
            let Some(object) = objects.get(&reference.source) else {
                return Err(bad(format!(
                    "{kind} `{}` is not defined in the top-level `{kind}s`",
                    reference.source
                )));
            };
            let path = file_target(kind, reference);
            if let Some(file) = &object.file {
                binds.push(format!("{}:{path}:ro", file.display()));
            } else if let Some(content) = &object.content {
                let id = |v: &Option<String>, what: &str| match v {
                    None => Ok(0),
                    Some(v) => v.parse::<u64>().map_err(|_| {
                        bad(format!(
                            "{kind} `{}`: {what} `{v}` is not a number; give the numeric id",
                            reference.source
                        ))
                    }),
                };
                files.push(FileCopy {
                    path,
                    content: content.clone().into_bytes(),
                    mode: reference.mode.unwrap_or(0o444),
                    uid: id(&reference.uid, "uid")?,
                    gid: id(&reference.gid, "gid")?,
                });
            } else if object.external {
                return Err(bad(format!(
                    "{kind} `{}` is external, which only Docker Swarm provides; define it with `file:` or `content:`",
                    reference.source
                )));
            } else {
                let variable = object.environment.as_deref().unwrap_or("?");
                return Err(bad(format!(
                    "{kind} `{}` comes from the environment variable {variable}, which the Docker runtime does not read; write it to a file and use `file:`",
                    reference.source
                )));
            }
        }
    }
    Ok(())
}

/// The Engine's API version, `(major, minor)`.
pub type ApiVersion = (usize, usize);

/// The first API version whose health checks take `start_interval` (Docker 25).
pub const START_INTERVAL_API: ApiVersion = (1, 44);

fn nanos(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// A mapping of the model's extra keys (`driver_opts`, `sysctls`, logging `options`) as the
/// Engine wants it: every value a string (numbers and booleans written as JSON writes them).
pub(crate) fn string_map(v: Option<&Json>) -> Option<HashMap<String, String>> {
    v.and_then(Json::as_object).map(|o| {
        o.iter()
            .map(|(k, v)| {
                let v = v
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string());
                (k.clone(), v)
            })
            .collect()
    })
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
    let mut files = Vec::new();
    file_objects(project, service, &mut binds, &mut files)?;
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
    // `deploy.resources` outside Swarm, as Docker Compose applies it: limits where the
    // top-level keys do not say, and the memory reservation.
    let resources = extra.get("deploy").and_then(|d| d.get("resources"));
    let limits = resources.and_then(|r| r.get("limits"));
    host.memory = host
        .memory
        .or_else(|| bytes_of(limits.and_then(|l| l.get("memory"))));
    host.nano_cpus = host.nano_cpus.or_else(|| {
        let cpus = limits.and_then(|l| l.get("cpus"))?;
        let cpus = cpus
            .as_f64()
            .or_else(|| cpus.as_str().and_then(|c| c.parse().ok()))?;
        Some((cpus * 1e9) as i64)
    });
    host.pids_limit = host
        .pids_limit
        .or_else(|| limits.and_then(|l| l.get("pids")).and_then(Json::as_i64));
    host.memory_reservation = bytes_of(
        resources
            .and_then(|r| r.get("reservations"))
            .and_then(|r| r.get("memory")),
    );
    host.dns = strings(extra.get("dns"));
    host.dns_search = strings(extra.get("dns_search"));
    host.security_opt = strings(extra.get("security_opt"));
    host.group_add = strings(extra.get("group_add"));
    host.pid_mode = extra.get("pid").and_then(Json::as_str).map(str::to_string);
    host.ipc_mode = extra.get("ipc").and_then(Json::as_str).map(str::to_string);
    host.sysctls = string_map(extra.get("sysctls"));
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
            config: string_map(logging.get("options")),
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
        files,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(source: &str, target: Option<&str>) -> FileReference {
        FileReference {
            source: source.into(),
            target: target.map(str::to_string),
            uid: None,
            gid: None,
            mode: None,
            span: Default::default(),
        }
    }

    #[test]
    fn secrets_and_configs_land_where_compose_puts_them() {
        assert_eq!(
            file_target("secret", &reference("token", None)),
            "/run/secrets/token"
        );
        assert_eq!(
            file_target("secret", &reference("token", Some("api_key"))),
            "/run/secrets/api_key"
        );
        assert_eq!(
            file_target("secret", &reference("token", Some("/etc/key"))),
            "/etc/key"
        );
        assert_eq!(file_target("config", &reference("motd", None)), "/motd");
        assert_eq!(
            file_target("config", &reference("motd", Some("/etc/motd"))),
            "/etc/motd"
        );
    }
}

#[cfg(test)]
mod plan_tests {
    use std::collections::BTreeMap;

    use super::*;

    fn load(compose: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("compose.yaml"), compose).unwrap();
        std::fs::write(dir.path().join("token.txt"), "s3cret").unwrap();
        let options = wharf_model::LoadOptions {
            files: vec![dir.path().join("compose.yaml")],
            working_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        match wharf_model::load(&options) {
            Ok(l) => l.project,
            Err(d) => panic!("{d:?}"),
        }
    }

    fn spec(project: &Project, service: &str) -> InstanceSpec {
        InstanceSpec {
            project: project.name.clone(),
            service: service.into(),
            number: 1,
            name: format!("{}-{service}-1", project.name),
            argv: Vec::new(),
            working_dir: "/".into(),
            environment: BTreeMap::new(),
            user: None,
            stop_signal: wharf_runtime::Signal::TERM,
            network: None,
        }
    }

    #[test]
    fn deploy_resources_secrets_and_configs_reach_the_container() {
        let project = load(
            r#"
name: p
services:
  a:
    image: x
    deploy:
      resources:
        limits: {memory: 1g, cpus: "1.5", pids: 100}
        reservations: {memory: 128m}
    secrets: [token]
    configs:
      - {source: motd, target: /etc/motd, mode: 0400, uid: "1000"}
secrets:
  token: {file: ./token.txt}
configs:
  motd: {content: hello}
"#,
        );
        let service = &project.services["a"];
        let plan = plan(&project, service, &spec(&project, "a"), "x", (1, 41), None).unwrap();
        let host = plan.body.host_config.unwrap();
        assert_eq!(host.memory, Some(1 << 30));
        assert_eq!(host.nano_cpus, Some(1_500_000_000));
        assert_eq!(host.pids_limit, Some(100));
        assert_eq!(host.memory_reservation, Some(128 << 20));
        let binds = host.binds.unwrap();
        assert_eq!(binds.len(), 1);
        assert!(
            binds[0].ends_with("/token.txt:/run/secrets/token:ro"),
            "{binds:?}"
        );
        assert_eq!(
            plan.files,
            [FileCopy {
                path: "/etc/motd".into(),
                content: b"hello".to_vec(),
                mode: 0o400,
                uid: 1000,
                gid: 0,
            }]
        );
        assert_eq!(not_mapped(service), None);
    }

    #[test]
    fn what_is_not_applied_is_named_and_an_environment_secret_is_refused() {
        let project = load(
            r#"
name: p
services:
  a:
    image: x
    platform: linux/arm64
    mac_address: "02:42:ac:11:00:02"
    deploy:
      placement: {constraints: ["node.role==manager"]}
  b:
    image: x
    secrets: [key]
secrets:
  key: {environment: API_KEY}
"#,
        );
        assert_eq!(
            not_mapped(&project.services["a"]).unwrap(),
            "service `a`: the Docker runtime does not apply `mac_address`, `platform`, `deploy.placement`"
        );
        let b = &project.services["b"];
        let Err(e) = plan(&project, b, &spec(&project, "b"), "x", (1, 41), None) else {
            panic!("an environment secret was accepted");
        };
        assert_eq!(
            e.to_string(),
            "service `b`: secret `key` comes from the environment variable API_KEY, which the Docker runtime does not read; write it to a file and use `file:`"
        );
    }
}
