//! The validated project: what the planner and runtimes consume.
//!
//! A [`Project`] only exists when every reference in it is resolved (services, networks, volumes,
//! secrets, configs), `depends_on` has no cycle, durations are parsed and short syntaxes are
//! normalised into one form. Keys that wharf does not act on yet are kept, normalised, in `extra`
//! so that `wharf config` prints everything the user wrote.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value as Json;

use crate::node::Span;

#[derive(Clone, Debug, PartialEq)]
pub struct Project {
    pub name: String,
    /// The project directory: relative paths in the files were resolved against it.
    pub working_dir: PathBuf,
    /// The Compose files the project was loaded from, in merge order.
    pub files: Vec<PathBuf>,
    /// Services that are enabled (no profile, or an active one).
    pub services: BTreeMap<String, Service>,
    /// Services whose profiles are not active, with their profiles.
    pub disabled_services: BTreeMap<String, Vec<String>>,
    /// The networks, volumes, secrets and configs that enabled services use (Docker Compose leaves
    /// the others out of the project).
    pub networks: BTreeMap<String, Network>,
    pub volumes: BTreeMap<String, Volume>,
    pub secrets: BTreeMap<String, FileObject>,
    pub configs: BTreeMap<String, FileObject>,
    /// Profiles named by any service, enabled or not.
    pub all_profiles: Vec<String>,
    /// Top-level `models` (AI models for services), kept as written: wharf does not run them, and
    /// `wharf config` prints them back.
    pub models: BTreeMap<String, Json>,
    /// Top-level `x-*` keys.
    pub extensions: BTreeMap<String, Json>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Service {
    pub name: String,
    /// Where the service is defined (its key in the first file that defines it).
    pub span: Span,
    /// Where each of its keys was written, for messages about them; `networks.<name>` is where it
    /// names each network it joins.
    pub key_spans: BTreeMap<String, Span>,
    pub image: Option<String>,
    pub build: Option<Build>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// `env_file` contents with `environment` applied over them; `None` values were declared
    /// without a value and not found in the environment.
    pub environment: BTreeMap<String, Option<String>>,
    /// For each variable of `environment` whose value came from an env file (and was not set again
    /// by `environment`), that file's absolute path: exporters keep secret files' values secret.
    pub env_file_sources: BTreeMap<String, PathBuf>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub ports: Vec<Port>,
    pub expose: Vec<String>,
    pub volumes: Vec<ServiceVolume>,
    /// `depends_on`, with the dependencies Docker Compose implies (`network_mode: service:x`,
    /// `links`, `volumes_from`, ...) added.
    pub depends_on: BTreeMap<String, Dependency>,
    pub healthcheck: Option<Healthcheck>,
    /// Networks the service joins (empty when `network_mode` is set).
    pub networks: BTreeMap<String, Option<ServiceNetwork>>,
    pub network_mode: Option<NetworkMode>,
    /// `deploy.replicas`, else `scale`, else 1.
    pub replicas: u32,
    pub restart: RestartPolicy,
    pub stop_signal: Option<String>,
    pub stop_grace_period: Option<Duration>,
    pub labels: BTreeMap<String, String>,
    pub secrets: Vec<FileReference>,
    pub configs: Vec<FileReference>,
    pub profiles: Vec<String>,
    pub hostname: Option<String>,
    pub container_name: Option<String>,
    /// Every other key the user wrote, normalised as `docker compose config` prints it
    /// (including `deploy`, which is also read into `replicas` and `restart`).
    pub extra: BTreeMap<String, Json>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Build {
    /// An absolute path, or a URL (git or http) as written.
    pub context: String,
    pub dockerfile: Option<String>,
    pub args: BTreeMap<String, Option<String>>,
    pub target: Option<String>,
    pub labels: BTreeMap<String, String>,
    /// Other build keys (cache_from, platforms, ...), normalised.
    pub extra: BTreeMap<String, Json>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Port {
    pub mode: String,
    pub host_ip: Option<String>,
    pub target: u16,
    /// A port (`"8080"`) or a range (`"8000-8010"`); `None` lets the runtime pick one.
    pub published: Option<String>,
    pub protocol: String,
    pub name: Option<String>,
    pub app_protocol: Option<String>,
    pub span: Span,
}

impl Port {
    /// The published host ports, expanded from a range.
    pub fn published_ports(&self) -> Vec<u16> {
        let Some(p) = &self.published else {
            return Vec::new();
        };
        match p.split_once('-') {
            Some((a, b)) => match (a.parse::<u16>(), b.parse::<u16>()) {
                (Ok(a), Ok(b)) if a <= b => (a..=b).collect(),
                _ => Vec::new(),
            },
            None => p.parse().map(|p| vec![p]).unwrap_or_default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VolumeType {
    Bind,
    Volume,
    Tmpfs,
    Npipe,
    Cluster,
    Image,
}

impl VolumeType {
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeType::Bind => "bind",
            VolumeType::Volume => "volume",
            VolumeType::Tmpfs => "tmpfs",
            VolumeType::Npipe => "npipe",
            VolumeType::Cluster => "cluster",
            VolumeType::Image => "image",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct ServiceVolume {
    pub kind: VolumeType,
    /// Bind: an absolute host path. Volume: the name of a top-level volume (the key, not the
    /// `<project>_` name), or `None` for an anonymous volume.
    pub source: Option<String>,
    pub target: String,
    pub read_only: bool,
    /// `bind`, `volume`, `tmpfs` and `image` options as written (normalised).
    pub options: BTreeMap<String, Json>,
    pub span: Span,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Condition {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl Condition {
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Started => "service_started",
            Condition::Healthy => "service_healthy",
            Condition::CompletedSuccessfully => "service_completed_successfully",
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Dependency {
    pub condition: Condition,
    /// Restart this service when the dependency is restarted.
    pub restart: bool,
    /// `false`: a missing or failing dependency is a warning, not an error.
    pub required: bool,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum HealthTest {
    /// `["CMD", ...]`: exec the arguments.
    Cmd(Vec<String>),
    /// `["CMD-SHELL", "..."]` or a string: run with `/bin/sh -c`.
    Shell(String),
    /// `["NONE"]`: the image's health check is disabled.
    None,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Healthcheck {
    /// `None` when only timings are given (they then apply to the image's own check).
    pub test: Option<HealthTest>,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub retries: Option<u64>,
    pub start_period: Option<Duration>,
    pub start_interval: Option<Duration>,
    pub disable: bool,
}

impl Healthcheck {
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    pub const DEFAULT_RETRIES: u64 = 3;
    pub const DEFAULT_START_INTERVAL: Duration = Duration::from_secs(5);

    /// Whether a check runs at all (`disable: true` and `test: ["NONE"]` turn it off).
    pub fn is_enabled(&self) -> bool {
        !self.disable && !matches!(self.test, Some(HealthTest::None))
    }
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct ServiceNetwork {
    pub aliases: Vec<String>,
    pub ipv4_address: Option<String>,
    pub ipv6_address: Option<String>,
    /// Other keys (priority, mac_address, link_local_ips, driver_opts, ...).
    pub extra: BTreeMap<String, Json>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    Host,
    None,
    Bridge,
    /// `service:<name>`: share that service's network stack.
    Service(String),
    /// `container:<name>`: share an existing container's network stack (Docker only).
    Container(String),
    /// Any other value: an engine network of that name (Docker only).
    Network(String),
}

impl NetworkMode {
    pub fn parse(s: &str) -> Option<NetworkMode> {
        match s {
            "host" => Some(NetworkMode::Host),
            "none" => Some(NetworkMode::None),
            "bridge" | "default" => Some(NetworkMode::Bridge),
            _ => {
                if let Some(name) = s.strip_prefix("service:") {
                    Some(NetworkMode::Service(name.to_string()))
                } else {
                    s.strip_prefix("container:")
                        .map(|name| NetworkMode::Container(name.to_string()))
                }
            }
        }
    }
}

impl std::fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NetworkMode::Host => f.write_str("host"),
            NetworkMode::None => f.write_str("none"),
            NetworkMode::Bridge => f.write_str("bridge"),
            NetworkMode::Service(s) => write!(f, "service:{s}"),
            NetworkMode::Container(c) => write!(f, "container:{c}"),
            NetworkMode::Network(n) => f.write_str(n),
        }
    }
}

/// When an exited instance is started again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestartPolicy {
    No,
    Always,
    /// Restart after a non-zero exit, at most `max_retries` times when given.
    OnFailure {
        max_retries: Option<u64>,
    },
    UnlessStopped,
}

impl std::fmt::Display for RestartPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestartPolicy::No => f.write_str("no"),
            RestartPolicy::Always => f.write_str("always"),
            RestartPolicy::OnFailure { max_retries: None } => f.write_str("on-failure"),
            RestartPolicy::OnFailure {
                max_retries: Some(n),
            } => write!(f, "on-failure:{n}"),
            RestartPolicy::UnlessStopped => f.write_str("unless-stopped"),
        }
    }
}

/// A service's use of a top-level secret or config.
#[derive(Clone, Debug, PartialEq)]
pub struct FileReference {
    pub source: String,
    pub target: Option<String>,
    pub uid: Option<String>,
    pub gid: Option<String>,
    pub mode: Option<u32>,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Network {
    /// The engine-level name: `<project>_<key>` unless `name` or `external` says otherwise.
    pub name: String,
    pub external: bool,
    pub internal: bool,
    pub driver: Option<String>,
    /// IPAM subnets declared under `ipam.config[].subnet`.
    pub subnets: Vec<String>,
    pub labels: BTreeMap<String, String>,
    /// Everything else (driver_opts, ipam as written, enable_ipv6, attachable, ...).
    pub extra: BTreeMap<String, Json>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Volume {
    pub name: String,
    pub external: bool,
    pub driver: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub extra: BTreeMap<String, Json>,
}

/// A top-level secret or config.
#[derive(Clone, Debug, PartialEq)]
pub struct FileObject {
    pub name: String,
    pub external: bool,
    /// Absolute path of `file:`.
    pub file: Option<PathBuf>,
    /// `environment:`: the value comes from this variable.
    pub environment: Option<String>,
    /// `content:` (configs only).
    pub content: Option<String>,
    pub extra: BTreeMap<String, Json>,
}

impl Project {
    /// The names of enabled services in an order where every service comes after the services it
    /// depends on (ties broken by name). Always succeeds: cycles were rejected when loading.
    pub fn services_in_dependency_order(&self) -> Vec<&str> {
        let mut order: Vec<&str> = Vec::with_capacity(self.services.len());
        let mut done = std::collections::BTreeSet::new();
        fn visit<'a>(
            p: &'a Project,
            name: &'a str,
            done: &mut std::collections::BTreeSet<&'a str>,
            order: &mut Vec<&'a str>,
        ) {
            if !done.insert(name) {
                return;
            }
            if let Some(s) = p.services.get(name) {
                for dep in s.depends_on.keys() {
                    visit(p, dep, done, order);
                }
                if let Some(NetworkMode::Service(x)) = &s.network_mode {
                    visit(p, x, done, order);
                }
                order.push(name);
            }
        }
        for name in self.services.keys() {
            visit(self, name, &mut done, &mut order);
        }
        order
    }
}
