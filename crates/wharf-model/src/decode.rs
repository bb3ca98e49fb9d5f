//! The merged canonical tree to typed values: every value parsed (durations, ports, restart
//! policies, conditions), env files read into `environment`, names given to networks, volumes,
//! secrets and configs, profiles applied, and every reference from a service to another object
//! checked. Errors name the file and line of the offending value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Map as JsonMap, Value as Json};

use crate::diag::{Diagnostic, suggest};
use crate::load::Loader;
use crate::node::{Mapping, Node, Span, Value};
use crate::project::*;

/// Keys of a service that have a typed field (everything else goes to `Service::extra`).
const TYPED_KEYS: &[&str] = &[
    "image",
    "build",
    "command",
    "entrypoint",
    "environment",
    "env_file",
    "working_dir",
    "user",
    "ports",
    "expose",
    "volumes",
    "depends_on",
    "healthcheck",
    "networks",
    "network_mode",
    "stop_signal",
    "stop_grace_period",
    "labels",
    "secrets",
    "configs",
    "profiles",
    "hostname",
    "container_name",
    "extends",
];

pub(crate) fn decode(
    loader: &mut Loader<'_>,
    root: &Node,
    name: String,
    working_dir: PathBuf,
    files: Vec<PathBuf>,
) -> Option<Project> {
    let mut d = Decoder {
        errors: Vec::new(),
        env: &loader.env,
        project: &name,
        working_dir: &loader.options.working_dir,
    };
    let empty = Mapping::default();
    let top = root.as_map().unwrap_or(&empty);
    let section =
        |key: &str| -> &Mapping { top.get(key).and_then(|e| e.node.as_map()).unwrap_or(&empty) };

    let mut extensions = BTreeMap::new();
    for (k, e) in top {
        if k.starts_with("x-") {
            extensions.insert(k.clone(), to_json(&e.node));
        }
    }
    let models: BTreeMap<String, Json> = section("models")
        .iter()
        .map(|(k, e)| (k.clone(), to_json(&e.node)))
        .collect();

    let mut networks: BTreeMap<String, Network> = section("networks")
        .iter()
        .map(|(k, e)| (k.clone(), d.network(k, &e.node)))
        .collect();
    let volumes: BTreeMap<String, Volume> = section("volumes")
        .iter()
        .map(|(k, e)| (k.clone(), d.volume(k, &e.node)))
        .collect();
    let secrets: BTreeMap<String, FileObject> = section("secrets")
        .iter()
        .map(|(k, e)| (k.clone(), d.file_object("secret", k, &e.node)))
        .collect();
    let configs: BTreeMap<String, FileObject> = section("configs")
        .iter()
        .map(|(k, e)| (k.clone(), d.file_object("config", k, &e.node)))
        .collect();

    // Profiles: `--profile` flags, else COMPOSE_PROFILES; `*` enables every profile.
    let active: BTreeSet<String> = if !loader.options.profiles.is_empty() {
        loader.options.profiles.iter().cloned().collect()
    } else {
        loader
            .env
            .get("COMPOSE_PROFILES")
            .map(|s| {
                s.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    };
    let all_active = active.contains("*");

    let mut services = BTreeMap::new();
    let mut disabled_services = BTreeMap::new();
    let mut all_profiles = BTreeSet::new();
    let service_entries = section("services");
    for (sname, entry) in service_entries {
        let service = d.service(sname, entry.key_span, &entry.node);
        all_profiles.extend(service.profiles.iter().cloned());
        let enabled = service.profiles.is_empty()
            || all_active
            || service.profiles.iter().any(|p| active.contains(p));
        if enabled {
            services.insert(sname.clone(), service);
        } else {
            disabled_services.insert(sname.clone(), service.profiles.clone());
        }
    }

    // The default network, for services that name no network and no network_mode.
    let needs_default = services
        .values()
        .any(|s| s.network_mode.is_none() && s.networks.contains_key("default"));
    if needs_default && !networks.contains_key("default") {
        networks.insert(
            "default".into(),
            Network {
                name: format!("{name}_default"),
                external: false,
                internal: false,
                driver: None,
                subnets: Vec::new(),
                labels: BTreeMap::new(),
                extra: BTreeMap::new(),
            },
        );
    }

    let mut project = Project {
        name: name.clone(),
        working_dir,
        files,
        services,
        disabled_services,
        networks,
        volumes,
        secrets,
        configs,
        all_profiles: all_profiles.into_iter().collect(),
        models,
        extensions,
    };
    let mut errors = d.errors;
    if !loader.options.no_consistency {
        check_references(&project, service_entries, &mut errors);
    }
    crate::validate::validate_tree(root, &mut errors);
    loader.diagnostics.extend(errors);
    add_implied_dependencies(&mut project);
    remove_unused_resources(&mut project);
    Some(project)
}

/// Docker Compose adds a dependency on every service a service refers to outside `depends_on`:
/// `network_mode`, `ipc`, `pid`, `uts` or `cgroup` set to `service:x` and `links` (restarted with
/// it), and `volumes_from` (not restarted). An explicit `depends_on` entry wins. Only services that
/// exist are added: a reference to anything else was reported by [`check_references`].
fn add_implied_dependencies(project: &mut Project) {
    let names: BTreeSet<String> = project.services.keys().cloned().collect();
    for s in project.services.values_mut() {
        let mut implied: Vec<(String, bool, Span)> = Vec::new();
        let span_of = |k: &str| s.key_spans.get(k).copied().unwrap_or(s.span);
        if let Some(NetworkMode::Service(x)) = &s.network_mode {
            implied.push((x.clone(), true, span_of("network_mode")));
        }
        for key in ["ipc", "pid", "uts", "cgroup"] {
            if let Some(x) = s
                .extra
                .get(key)
                .and_then(Json::as_str)
                .and_then(|v| v.strip_prefix("service:"))
            {
                implied.push((x.to_string(), true, span_of(key)));
            }
        }
        for (key, restart) in [("links", true), ("volumes_from", false)] {
            if let Some(Json::Array(items)) = s.extra.get(key) {
                for item in items.iter().filter_map(Json::as_str) {
                    if key == "volumes_from" && item.starts_with("container:") {
                        continue;
                    }
                    let name = item.split(':').next().unwrap_or(item);
                    implied.push((name.to_string(), restart, span_of(key)));
                }
            }
        }
        for (name, restart, span) in implied {
            if names.contains(&name) && name != s.name {
                s.depends_on.entry(name).or_insert(Dependency {
                    condition: Condition::Started,
                    restart,
                    required: true,
                    span,
                });
            }
        }
    }
}

/// Docker Compose leaves out of the project the networks, volumes, secrets and configs that no
/// enabled service uses (compose-go's `WithoutUnnecessaryResources`, applied unless
/// `--all-resources` is given): those of services disabled by their profiles, and those declared
/// and never used.
fn remove_unused_resources(project: &mut Project) {
    let mut networks = BTreeSet::new();
    let mut volumes = BTreeSet::new();
    let mut secrets = BTreeSet::new();
    let mut configs = BTreeSet::new();
    for s in project.services.values() {
        networks.extend(s.networks.keys().cloned());
        for v in &s.volumes {
            if let (VolumeType::Volume, Some(source)) = (v.kind, &v.source) {
                volumes.insert(source.clone());
            }
        }
        secrets.extend(s.secrets.iter().map(|r| r.source.clone()));
        if let Some(Json::Array(items)) = s.build.as_ref().and_then(|b| b.extra.get("secrets")) {
            for item in items {
                let source = item.get("source").or(Some(item)).and_then(Json::as_str);
                secrets.extend(source.map(String::from));
            }
        }
        configs.extend(s.configs.iter().map(|r| r.source.clone()));
    }
    project.networks.retain(|k, _| networks.contains(k));
    project.volumes.retain(|k, _| volumes.contains(k));
    project.secrets.retain(|k, _| secrets.contains(k));
    project.configs.retain(|k, _| configs.contains(k));
}

struct Decoder<'a> {
    errors: Vec<Diagnostic>,
    env: &'a BTreeMap<String, String>,
    project: &'a str,
    /// The directory paths in messages are shown relative to.
    working_dir: &'a std::path::Path,
}

impl Decoder<'_> {
    fn err(&mut self, message: String, span: Span) {
        self.errors.push(Diagnostic::error(message, span));
    }

    fn string(&mut self, n: &Node, what: &str) -> Option<String> {
        match n.scalar_text() {
            Some(s) => Some(s),
            None if n.is_null() => None,
            None => {
                self.err(
                    format!("{what} must be a string, found {}", n.kind()),
                    n.span,
                );
                None
            }
        }
    }

    fn uint(&mut self, n: &Node, what: &str) -> Option<u64> {
        let parsed = match &n.value {
            Value::Int(i) => u64::try_from(*i).ok(),
            Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 => Some(*f as u64),
            Value::Str(s) => s.trim().parse().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.err(
                format!(
                    "{what} must be a whole number, found `{}`",
                    n.scalar_text().unwrap_or_else(|| n.kind().into())
                ),
                n.span,
            );
        }
        parsed
    }

    fn boolean(&mut self, n: &Node, what: &str) -> Option<bool> {
        match &n.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "y" | "on" | "1" => Some(true),
                "false" | "no" | "n" | "off" | "0" => Some(false),
                _ => {
                    self.err(format!("{what} must be true or false, found `{s}`"), n.span);
                    None
                }
            },
            _ => {
                self.err(
                    format!("{what} must be true or false, found {}", n.kind()),
                    n.span,
                );
                None
            }
        }
    }

    fn duration(&mut self, n: &Node, what: &str) -> Option<Duration> {
        let text = n.scalar_text()?;
        // A bare number is seconds in old files; Compose reads durations with Go's syntax only.
        match crate::duration::parse_duration(&text) {
            Ok(d) => Some(d),
            Err(e) => {
                self.errors.push(
                    Diagnostic::error(format!("invalid duration `{text}` for {what}: {e}"), n.span)
                        .with_help("write durations like 30s, 1m30s, 500ms or 1h"),
                );
                None
            }
        }
    }

    /// `command` / `entrypoint`: a list as is, a string split like a shell would.
    fn command(&mut self, n: &Node, what: &str) -> Option<Vec<String>> {
        match &n.value {
            Value::Null => None,
            Value::Seq(items) => Some(
                items
                    .iter()
                    .map(|i| i.scalar_text().unwrap_or_default())
                    .collect(),
            ),
            _ => {
                let text = n.scalar_text()?;
                match crate::shell_words::split_command_with_rest(&text) {
                    Ok((words, rest)) => {
                        if let Some(rest) = rest {
                            self.errors.push(
                                Diagnostic::warning(
                                    format!("{what} is cut at `{rest}`: Docker Compose does not run a shell, so it drops the rest"),
                                    n.span,
                                )
                                .with_help(format!("to run it through a shell, write [\"sh\", \"-c\", {}]", serde_json::to_string(&text).unwrap_or_default())),
                            );
                        }
                        Some(words)
                    }
                    Err(e) => {
                        self.err(format!("cannot split {what} `{text}`: {e}"), n.span);
                        None
                    }
                }
            }
        }
    }

    fn string_map(&mut self, n: Option<&Node>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        if let Some(m) = n.and_then(Node::as_map) {
            for (k, e) in m {
                out.insert(k.clone(), e.node.scalar_text().unwrap_or_default());
            }
        }
        out
    }

    fn optional_string_map(&mut self, n: Option<&Node>) -> BTreeMap<String, Option<String>> {
        let mut out = BTreeMap::new();
        if let Some(m) = n.and_then(Node::as_map) {
            for (k, e) in m {
                out.insert(k.clone(), e.node.scalar_text());
            }
        }
        out
    }

    fn string_list(&mut self, n: Option<&Node>) -> Vec<String> {
        match n.map(|n| &n.value) {
            Some(Value::Seq(items)) => items.iter().filter_map(Node::scalar_text).collect(),
            Some(_) => n.and_then(Node::scalar_text).into_iter().collect(),
            None => Vec::new(),
        }
    }

    fn service(&mut self, name: &str, span: Span, n: &Node) -> Service {
        let empty = Mapping::default();
        let m = n.as_map().unwrap_or(&empty);
        let get = |k: &str| m.get(k).map(|e| &e.node);
        let what = |k: &str| format!("`{k}` of service `{name}`");

        let image = get("image").and_then(|n| self.string(n, &what("image")));
        let build = get("build").map(|n| self.build(n));
        let command = get("command").and_then(|n| self.command(n, &what("command")));
        let entrypoint = get("entrypoint").and_then(|n| self.command(n, &what("entrypoint")));

        // As compose-go's `WithServicesEnvironmentResolved`: `environment` values declared without
        // one come from the project environment; the env files are read next (a variable in them
        // is looked up in the project environment, then in `environment`); `environment` is
        // applied over them.
        let declared: BTreeMap<String, Option<String>> = self
            .optional_string_map(get("environment"))
            .into_iter()
            .map(|(k, v)| {
                let v = v.or_else(|| self.env.get(&k).cloned());
                (k, v)
            })
            .collect();
        let mut environment: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut env_file_sources: BTreeMap<String, PathBuf> = BTreeMap::new();
        if let Some(Value::Seq(files)) = get("env_file").map(|n| &n.value) {
            for f in files {
                let read = self.env_file(name, f, &declared, &mut environment);
                if let Some(path) = f.get("path").and_then(Node::scalar_text) {
                    for k in read {
                        env_file_sources.insert(k, PathBuf::from(&path));
                    }
                }
            }
        }
        for k in declared.keys() {
            env_file_sources.remove(k);
        }
        environment.extend(declared);

        let ports = match get("ports").and_then(Node::as_seq) {
            Some(items) => items.iter().filter_map(|p| self.port(name, p)).collect(),
            None => Vec::new(),
        };
        let volumes = match get("volumes").and_then(Node::as_seq) {
            Some(items) => items
                .iter()
                .filter_map(|v| self.service_volume(name, v))
                .collect(),
            None => Vec::new(),
        };
        let mut depends_on = BTreeMap::new();
        if let Some(deps) = get("depends_on").and_then(Node::as_map) {
            for (dep, e) in deps {
                if let Some(d) = self.dependency(name, dep, e.key_span, &e.node) {
                    depends_on.insert(dep.clone(), d);
                }
            }
        }
        let healthcheck = get("healthcheck").map(|h| self.healthcheck(name, h));

        let network_mode = get("network_mode").and_then(|n| {
            let text = self.string(n, &what("network_mode"))?;
            Some(NetworkMode::parse(&text).unwrap_or(NetworkMode::Network(text)))
        });
        let mut networks = BTreeMap::new();
        if let Some(nets) = get("networks").and_then(Node::as_map) {
            for (net, e) in nets {
                networks.insert(net.clone(), self.service_network(&e.node));
            }
        } else if network_mode.is_none() {
            networks.insert("default".to_string(), None);
        }

        let deploy_replicas = get("deploy")
            .and_then(|d| d.get("replicas"))
            .and_then(|r| self.uint(r, &format!("`deploy.replicas` of service `{name}`")));
        let scale = get("scale").and_then(|r| self.uint(r, &what("scale")));
        if let (Some(a), Some(b)) = (deploy_replicas, scale)
            && a != b
        {
            self.errors.push(
                Diagnostic::error(
                    format!("service `{name}` sets `scale: {b}` and `deploy.replicas: {a}`"),
                    get("scale").map(|n| n.span).unwrap_or(span),
                )
                .with_help("keep one of the two, or give them the same value"),
            );
        }
        let replicas = deploy_replicas.or(scale).unwrap_or(1);
        let replicas = u32::try_from(replicas).unwrap_or(u32::MAX);

        let restart = self.restart(name, get("restart"), get("deploy"));
        let stop_signal = get("stop_signal").and_then(|n| self.string(n, &what("stop_signal")));
        let stop_grace_period =
            get("stop_grace_period").and_then(|n| self.duration(n, &what("stop_grace_period")));
        let labels = self.string_map(get("labels"));
        let secrets = self.file_refs(get("secrets"));
        let configs = self.file_refs(get("configs"));
        let profiles = self.string_list(get("profiles"));

        let mut extra = BTreeMap::new();
        for (k, e) in m {
            if !TYPED_KEYS.contains(&k.as_str()) {
                extra.insert(k.clone(), service_extra_json(k, &e.node));
            }
        }
        let mut key_spans: BTreeMap<String, Span> =
            m.iter().map(|(k, e)| (k.clone(), e.key_span)).collect();
        // Where each network was named, for messages about one of them.
        if let Some(nets) = get("networks").and_then(Node::as_map) {
            for (net, e) in nets {
                key_spans.insert(format!("networks.{net}"), e.key_span);
            }
        }

        Service {
            name: name.to_string(),
            span,
            key_spans,
            image,
            build,
            command,
            entrypoint,
            environment,
            env_file_sources,
            working_dir: get("working_dir").and_then(|n| self.string(n, &what("working_dir"))),
            user: get("user").and_then(|n| self.string(n, &what("user"))),
            ports,
            expose: self.string_list(get("expose")),
            volumes,
            depends_on,
            healthcheck,
            networks,
            network_mode,
            replicas,
            restart,
            stop_signal,
            stop_grace_period,
            labels,
            secrets,
            configs,
            profiles,
            hostname: get("hostname").and_then(|n| self.string(n, &what("hostname"))),
            container_name: get("container_name")
                .and_then(|n| self.string(n, &what("container_name"))),
            extra,
        }
    }

    fn env_file(
        &mut self,
        service: &str,
        f: &Node,
        declared: &BTreeMap<String, Option<String>>,
        environment: &mut BTreeMap<String, Option<String>>,
    ) -> Vec<String> {
        let Some(path) = f.get("path").and_then(Node::scalar_text) else {
            return Vec::new();
        };
        let required = f
            .get("required")
            .and_then(|r| self.boolean(r, "`required`"))
            .unwrap_or(true);
        // As the user would recognise it: relative to the working directory when below it.
        let shown = std::path::Path::new(&path)
            .strip_prefix(self.working_dir)
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| path.clone());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Vec::new(),
            Err(e) => {
                let reason = if e.kind() == std::io::ErrorKind::NotFound {
                    "not found".to_string()
                } else {
                    e.to_string()
                };
                self.errors.push(
                    Diagnostic::error(format!("env file {shown} of service `{service}`: {reason}"), f.span)
                        .with_help("create the file, fix the path (relative to the project directory), or mark it `required: false`"),
                );
                return Vec::new();
            }
        };
        let env = self.env;
        let earlier = &*environment;
        let lookup = |k: &str| {
            env.get(k)
                .or_else(|| declared.get(k).and_then(Option::as_ref))
                .or_else(|| earlier.get(k).and_then(Option::as_ref))
                .cloned()
        };
        // `format: raw` is docker/compose's `rawEnv` (values as written); compose-go refuses a
        // format nobody registered (`dotenv.ParseWithFormat`).
        let parsed = match f.get("format").and_then(Node::scalar_text).as_deref() {
            None => crate::dotenv::parse_dotenv(&text, &lookup),
            Some("raw") => crate::dotenv::parse_raw_env(&text, &lookup),
            Some(other) => {
                self.errors.push(
                    Diagnostic::error(
                        format!("env file {shown} of service `{service}`: unsupported format `{other}`"),
                        f.span,
                    )
                    .with_help("write `format: raw` to keep values as written, or leave `format` out for the .env syntax"),
                );
                return Vec::new();
            }
        };
        match parsed {
            Ok(pairs) => {
                // A bare `KEY` line that the environment does not define is dropped, as Docker
                // Compose does (unlike `environment: [KEY]`, which stays as a key without value).
                let mut read = Vec::new();
                for (k, v) in pairs {
                    if let Some(v) = v {
                        environment.insert(k.clone(), Some(v));
                        read.push(k);
                    }
                }
                read
            }
            Err(e) => {
                self.err(
                    format!(
                        "env file {shown} of service `{service}`, line {}: {}",
                        e.line, e.message
                    ),
                    f.span,
                );
                Vec::new()
            }
        }
    }

    fn build(&mut self, n: &Node) -> Build {
        let mut extra = BTreeMap::new();
        if let Some(m) = n.as_map() {
            for (k, e) in m {
                if !matches!(
                    k.as_str(),
                    "context" | "dockerfile" | "args" | "target" | "labels"
                ) {
                    extra.insert(k.clone(), to_json(&e.node));
                }
            }
        }
        Build {
            context: n
                .get("context")
                .and_then(Node::scalar_text)
                .unwrap_or_default(),
            dockerfile: n.get("dockerfile").and_then(Node::scalar_text),
            // An argument without a value takes the project environment's, and is left out
            // when that has none (compose-go's `resolve` with `keepEmpty` false).
            args: self
                .optional_string_map(n.get("args"))
                .into_iter()
                .filter_map(|(k, v)| {
                    let v = v.or_else(|| self.env.get(&k).cloned())?;
                    Some((k, Some(v)))
                })
                .collect(),
            target: n.get("target").and_then(Node::scalar_text),
            labels: self.string_map(n.get("labels")),
            extra,
        }
    }

    fn port(&mut self, service: &str, n: &Node) -> Option<Port> {
        let target_node = n.get("target")?;
        let target = self.uint(
            target_node,
            &format!("a port `target` of service `{service}`"),
        )?;
        let Ok(target) = u16::try_from(target) else {
            self.err(
                format!("port {target} of service `{service}` is out of range (1-65535)"),
                target_node.span,
            );
            return None;
        };
        let published = n
            .get("published")
            .and_then(Node::scalar_text)
            .filter(|s| !s.is_empty());
        if let Some(p) = &published {
            let valid = match p.split_once('-') {
                Some((a, b)) => a.parse::<u16>().is_ok() && b.parse::<u16>().is_ok(),
                None => p.parse::<u16>().is_ok(),
            };
            if !valid {
                self.err(
                    format!(
                        "published port `{p}` of service `{service}` is not a port number or range"
                    ),
                    n.get("published").map(|n| n.span).unwrap_or(n.span),
                );
                return None;
            }
        }
        Some(Port {
            mode: n
                .get("mode")
                .and_then(Node::scalar_text)
                .unwrap_or_else(|| "ingress".into()),
            host_ip: n.get("host_ip").and_then(Node::scalar_text),
            target,
            published,
            protocol: n
                .get("protocol")
                .and_then(Node::scalar_text)
                .unwrap_or_else(|| "tcp".into()),
            name: n.get("name").and_then(Node::scalar_text),
            app_protocol: n.get("app_protocol").and_then(Node::scalar_text),
            span: n.span,
        })
    }

    fn service_volume(&mut self, service: &str, n: &Node) -> Option<ServiceVolume> {
        let kind = match n.get("type").and_then(Node::as_str) {
            Some("bind") => VolumeType::Bind,
            Some("volume") => VolumeType::Volume,
            Some("tmpfs") => VolumeType::Tmpfs,
            Some("npipe") => VolumeType::Npipe,
            Some("cluster") => VolumeType::Cluster,
            Some("image") => VolumeType::Image,
            other => {
                self.err(
                    format!(
                        "volume of service `{service}` has type `{}`; use bind, volume, tmpfs, image, npipe or cluster",
                        other.unwrap_or("")
                    ),
                    n.span,
                );
                return None;
            }
        };
        let Some(target) = n.get("target").and_then(Node::scalar_text) else {
            self.err(
                format!("volume of service `{service}` has no `target`"),
                n.span,
            );
            return None;
        };
        // Docker Compose cleans the target lexically (`path.Clean`): `/data/` is `/data`.
        let target =
            crate::canonical::path_string(&crate::canonical::clean(std::path::Path::new(&target)));
        let read_only = n
            .get("read_only")
            .and_then(|r| self.boolean(r, "`read_only`"))
            .unwrap_or(false);
        let mut options = BTreeMap::new();
        if let Some(m) = n.as_map() {
            for (k, e) in m {
                if !matches!(k.as_str(), "type" | "source" | "target" | "read_only") {
                    options.insert(k.clone(), to_json(&e.node));
                }
            }
        }
        // `tmpfs.size` is a compose-go `UnitBytes`: printed as a string of bytes.
        if let Some(size) = options.get_mut("tmpfs").and_then(|t| t.get_mut("size")) {
            *size = unit_bytes(size);
        }
        Some(ServiceVolume {
            kind,
            source: n
                .get("source")
                .and_then(Node::scalar_text)
                .filter(|s| !s.is_empty()),
            target,
            read_only,
            options,
            span: n.span,
        })
    }

    fn dependency(
        &mut self,
        service: &str,
        dep: &str,
        key_span: Span,
        n: &Node,
    ) -> Option<Dependency> {
        let cond_node = n.get("condition");
        let condition = match cond_node
            .and_then(Node::as_str)
            .unwrap_or("service_started")
        {
            "service_started" => Condition::Started,
            "service_healthy" => Condition::Healthy,
            "service_completed_successfully" => Condition::CompletedSuccessfully,
            other => {
                let options = [
                    "service_started",
                    "service_healthy",
                    "service_completed_successfully",
                ];
                let mut d = Diagnostic::error(
                    format!(
                        "unknown condition `{other}` for the dependency of `{service}` on `{dep}`"
                    ),
                    cond_node.map(|c| c.span).unwrap_or(key_span),
                );
                d = match suggest(other, options) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(format!("use one of {}", options.join(", "))),
                };
                self.errors.push(d);
                return None;
            }
        };
        Some(Dependency {
            condition,
            restart: n
                .get("restart")
                .and_then(|r| self.boolean(r, "`restart`"))
                .unwrap_or(false),
            required: n
                .get("required")
                .and_then(|r| self.boolean(r, "`required`"))
                .unwrap_or(true),
            span: key_span,
        })
    }

    fn healthcheck(&mut self, service: &str, n: &Node) -> Healthcheck {
        let what = |k: &str| format!("`healthcheck.{k}` of service `{service}`");
        let test = n.get("test").and_then(|t| {
            let items: Vec<String> = t.as_seq()?.iter().filter_map(Node::scalar_text).collect();
            match items.first().map(String::as_str) {
                Some("NONE") => Some(HealthTest::None),
                Some("CMD") => Some(HealthTest::Cmd(items[1..].to_vec())),
                Some("CMD-SHELL") => Some(HealthTest::Shell(items[1..].join(" "))),
                _ => {
                    self.errors.push(
                        Diagnostic::error(
                            format!("`healthcheck.test` of service `{service}` must start with CMD, CMD-SHELL or NONE"),
                            t.span,
                        )
                        .with_help("write [\"CMD\", \"prog\", \"arg\"], [\"CMD-SHELL\", \"shell command\"] or a plain string"),
                    );
                    None
                }
            }
        });
        Healthcheck {
            test,
            interval: n
                .get("interval")
                .and_then(|v| self.duration(v, &what("interval"))),
            timeout: n
                .get("timeout")
                .and_then(|v| self.duration(v, &what("timeout"))),
            retries: n
                .get("retries")
                .and_then(|v| self.uint(v, &what("retries"))),
            start_period: n
                .get("start_period")
                .and_then(|v| self.duration(v, &what("start_period"))),
            start_interval: n
                .get("start_interval")
                .and_then(|v| self.duration(v, &what("start_interval"))),
            disable: n
                .get("disable")
                .and_then(|v| self.boolean(v, &what("disable")))
                .unwrap_or(false),
        }
    }

    fn service_network(&mut self, n: &Node) -> Option<ServiceNetwork> {
        let m = n.as_map()?;
        let mut extra = BTreeMap::new();
        for (k, e) in m {
            if !matches!(k.as_str(), "aliases" | "ipv4_address" | "ipv6_address") {
                extra.insert(k.clone(), to_json(&e.node));
            }
        }
        Some(ServiceNetwork {
            aliases: self.string_list(n.get("aliases")),
            ipv4_address: n.get("ipv4_address").and_then(Node::scalar_text),
            ipv6_address: n.get("ipv6_address").and_then(Node::scalar_text),
            extra,
        })
    }

    fn restart(
        &mut self,
        service: &str,
        restart: Option<&Node>,
        deploy: Option<&Node>,
    ) -> RestartPolicy {
        if let Some(n) = restart {
            let text = n.scalar_text().unwrap_or_default();
            let policy = match text.as_str() {
                "no" | "" => Some(RestartPolicy::No),
                "always" => Some(RestartPolicy::Always),
                "unless-stopped" => Some(RestartPolicy::UnlessStopped),
                "on-failure" => Some(RestartPolicy::OnFailure { max_retries: None }),
                other => other
                    .strip_prefix("on-failure:")
                    .and_then(|n| n.parse().ok())
                    .map(|n| RestartPolicy::OnFailure {
                        max_retries: Some(n),
                    }),
            };
            return match policy {
                Some(p) => p,
                None => {
                    let options = ["no", "always", "on-failure", "unless-stopped"];
                    let mut d = Diagnostic::error(
                        format!("unknown restart policy `{text}` for service `{service}`"),
                        n.span,
                    );
                    d = match suggest(&text, options) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(
                            "use no, always, on-failure, on-failure:N or unless-stopped",
                        ),
                    };
                    self.errors.push(d);
                    RestartPolicy::No
                }
            };
        }
        let Some(policy) = deploy.and_then(|d| d.get("restart_policy")) else {
            return RestartPolicy::No;
        };
        let max = policy.get("max_attempts").and_then(|m| {
            self.uint(
                m,
                &format!("`deploy.restart_policy.max_attempts` of service `{service}`"),
            )
        });
        match policy
            .get("condition")
            .and_then(Node::as_str)
            .unwrap_or("any")
        {
            "none" => RestartPolicy::No,
            "on-failure" => RestartPolicy::OnFailure { max_retries: max },
            _ => RestartPolicy::Always,
        }
    }

    fn file_refs(&mut self, n: Option<&Node>) -> Vec<FileReference> {
        let Some(items) = n.and_then(Node::as_seq) else {
            return Vec::new();
        };
        items
            .iter()
            .map(|i| FileReference {
                source: i
                    .get("source")
                    .and_then(Node::scalar_text)
                    .unwrap_or_default(),
                target: i.get("target").and_then(Node::scalar_text),
                uid: i.get("uid").and_then(Node::scalar_text),
                gid: i.get("gid").and_then(Node::scalar_text),
                mode: i.get("mode").and_then(|m| match &m.value {
                    Value::Int(i) => u32::try_from(*i).ok(),
                    Value::Str(s) => u32::from_str_radix(s.trim_start_matches("0o"), 8).ok(),
                    _ => None,
                }),
                span: i.span,
            })
            .collect()
    }

    fn external(&mut self, n: &Node) -> (bool, Option<String>) {
        match n.get("external") {
            Some(e) if e.as_map().is_some() => (true, e.get("name").and_then(Node::scalar_text)),
            Some(e) => (self.boolean(e, "`external`").unwrap_or(false), None),
            None => (false, None),
        }
    }

    fn object_name(&mut self, key: &str, n: &Node) -> (String, bool) {
        let (external, legacy_name) = self.external(n);
        // An empty name is no name, as in compose-go's `setNameFromKey` (`name: ${UNSET}`).
        let name = n
            .get("name")
            .and_then(Node::scalar_text)
            .filter(|s| !s.is_empty())
            .or(legacy_name.filter(|s| !s.is_empty()))
            .unwrap_or_else(|| {
                if external {
                    key.to_string()
                } else {
                    format!("{}_{key}", self.project)
                }
            });
        (name, external)
    }

    /// Refuses a name that breaks Docker's rule (it becomes a directory under the state
    /// directory, a bridge, an engine object): `name: /some/dir` or `../x` would walk out.
    fn check_object_name(&mut self, kind: &str, key: &str, name: &str, n: &Node) {
        if crate::names::is_valid_object_name(name) {
            return;
        }
        let span = n.get("name").map_or(n.span, |v| v.span);
        self.errors.push(
            Diagnostic::error(
                format!("{kind} `{key}`: `{name}` is not a valid {kind} name"),
                span,
            )
            .with_help(format!(
                "a {kind} name must match {}",
                crate::names::OBJECT_NAME_RULE
            )),
        );
    }

    fn network(&mut self, key: &str, n: &Node) -> Network {
        let (name, external) = self.object_name(key, n);
        self.check_object_name("network", key, &name, n);
        let subnets = n
            .get("ipam")
            .and_then(|i| i.get("config"))
            .and_then(Node::as_seq)
            .map(|c| {
                c.iter()
                    .filter_map(|e| e.get("subnet").and_then(Node::scalar_text))
                    .collect()
            })
            .unwrap_or_default();
        let internal = n
            .get("internal")
            .and_then(|v| self.boolean(v, "`internal`"))
            .unwrap_or(false);
        Network {
            name,
            external,
            internal,
            driver: n.get("driver").and_then(Node::scalar_text),
            subnets,
            labels: self.string_map(n.get("labels")),
            extra: extra_of(n, &["name", "external", "internal", "driver", "labels"]),
        }
    }

    fn volume(&mut self, key: &str, n: &Node) -> Volume {
        let (name, external) = self.object_name(key, n);
        self.check_object_name("volume", key, &name, n);
        Volume {
            name,
            external,
            driver: n.get("driver").and_then(Node::scalar_text),
            labels: self.string_map(n.get("labels")),
            extra: extra_of(n, &["name", "external", "driver", "labels"]),
        }
    }

    fn file_object(&mut self, kind: &str, key: &str, n: &Node) -> FileObject {
        let (name, external) = self.object_name(key, n);
        self.check_object_name(kind, key, &name, n);
        FileObject {
            name,
            external,
            file: n.get("file").and_then(Node::scalar_text).map(PathBuf::from),
            environment: n.get("environment").and_then(Node::scalar_text),
            content: n.get("content").and_then(Node::scalar_text),
            extra: extra_of(n, &["name", "external", "file", "environment", "content"]),
        }
    }
}

fn extra_of(n: &Node, typed: &[&str]) -> BTreeMap<String, Json> {
    let mut out = BTreeMap::new();
    if let Some(m) = n.as_map() {
        for (k, e) in m {
            if !typed.contains(&k.as_str()) {
                out.insert(k.clone(), to_json(&e.node));
            }
        }
    }
    out
}

/// A tree as JSON, as Docker Compose prints untyped values.
pub fn to_json(n: &Node) -> Json {
    match &n.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, e)| (k.clone(), to_json(&e.node)))
                .collect::<JsonMap<_, _>>(),
        ),
    }
}

/// Service keys without a typed field, with the type casts Docker Compose applies after
/// interpolation (a `"true"` string for a boolean key becomes `true`).
fn service_extra_json(key: &str, n: &Node) -> Json {
    const BOOLEANS: &[&str] = &[
        "init",
        "oom_kill_disable",
        "privileged",
        "read_only",
        "stdin_open",
        "tty",
    ];
    const INTEGERS: &[&str] = &[
        "cpu_count",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "oom_score_adj",
        "pids_limit",
        "scale",
    ];
    const FLOATS: &[&str] = &["cpus", "cpu_percent"];
    // compose-go's `UnitBytes` fields, written as a string of bytes.
    const BYTES: &[&str] = &[
        "mem_limit",
        "mem_reservation",
        "memswap_limit",
        "mem_swappiness",
        "shm_size",
    ];
    if BYTES.contains(&key) {
        return unit_bytes(&to_json(n));
    }
    if let Value::Str(s) = &n.value {
        if BOOLEANS.contains(&key)
            && let Ok(b) = s.to_ascii_lowercase().parse::<bool>()
        {
            return Json::Bool(b);
        }
        if INTEGERS.contains(&key)
            && let Ok(i) = s.parse::<i64>()
        {
            return Json::from(i);
        }
        if FLOATS.contains(&key)
            && let Some(f) = s.parse::<f64>().ok().and_then(serde_json::Number::from_f64)
        {
            return Json::Number(f);
        }
    }
    if key == "deploy" {
        let mut j = to_json(n);
        if let Some(r) = j.get_mut("replicas")
            && let Some(i) = r.as_str().and_then(|s| s.parse::<i64>().ok())
        {
            *r = Json::from(i);
        }
        return deploy_json(j);
    }
    to_json(n)
}

/// A compose-go `UnitBytes` value (`512m`, `1gb`, `1024`) as it prints one: the number of bytes as
/// a string. Anything that is not a byte size is kept as written.
pub(crate) fn unit_bytes(v: &Json) -> Json {
    let text = match v {
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        other => return other.clone(),
    };
    if let Ok(i) = text.parse::<i64>() {
        return Json::String(i.to_string());
    }
    match crate::byte_size::parse_bytes(&text) {
        Ok(b) => Json::String(b.to_string()),
        Err(_) => v.clone(),
    }
}

/// `deploy` as compose-go prints its `DeployConfig`: fields in struct order, byte sizes as strings
/// of bytes, CPUs as numbers, durations in Go's format.
fn deploy_json(j: Json) -> Json {
    fn ordered(j: Json, order: &[&str], each: &dyn Fn(&str, Json) -> Json) -> Json {
        let Json::Object(mut m) = j else {
            return j;
        };
        let mut out = JsonMap::new();
        for key in order {
            if let Some(v) = m.shift_remove(*key) {
                out.insert((*key).to_string(), each(key, v));
            }
        }
        out.extend(m);
        Json::Object(out)
    }
    fn duration(v: Json) -> Json {
        match v.as_str().map(crate::duration::parse_duration) {
            Some(Ok(d)) => Json::String(crate::duration::format_duration(d)),
            _ => v,
        }
    }
    let resource = |_: &str, v: Json| {
        ordered(
            v,
            &["cpus", "memory", "pids", "devices", "generic_resources"],
            &|k, v| match k {
                "memory" => unit_bytes(&v),
                "cpus" => match v
                    .as_str()
                    .and_then(|s| s.parse::<f64>().ok())
                    .and_then(serde_json::Number::from_f64)
                {
                    Some(n) => Json::Number(n),
                    None => v,
                },
                _ => v,
            },
        )
    };
    let update = |_: &str, v: Json| {
        let order = [
            "parallelism",
            "delay",
            "failure_action",
            "monitor",
            "max_failure_ratio",
            "order",
        ];
        ordered(v, &order, &|k, v| {
            if k == "delay" || k == "monitor" {
                duration(v)
            } else {
                v
            }
        })
    };
    let order = [
        "mode",
        "replicas",
        "labels",
        "update_config",
        "rollback_config",
        "resources",
        "restart_policy",
        "placement",
        "endpoint_mode",
    ];
    ordered(j, &order, &|k, v| match k {
        "update_config" | "rollback_config" => update(k, v),
        "resources" => ordered(v, &["limits", "reservations"], &resource),
        "restart_policy" => ordered(
            v,
            &["condition", "delay", "max_attempts", "window"],
            &|k, v| {
                if k == "delay" || k == "window" {
                    duration(v)
                } else {
                    v
                }
            },
        ),
        _ => v,
    })
}

/// Every reference from a service to another object resolves: other services (depends_on,
/// network_mode, volumes_from), networks, volumes, secrets and configs.
fn check_references(p: &Project, entries: &Mapping, errors: &mut Vec<Diagnostic>) {
    let all_services: Vec<&str> = entries.keys().map(String::as_str).collect();
    for s in p.services.values() {
        let key_span = |k: &str| s.key_spans.get(k).copied().unwrap_or(s.span);
        for (dep, d) in &s.depends_on {
            if p.services.contains_key(dep) {
                continue;
            }
            let message = if let Some(profiles) = p.disabled_services.get(dep) {
                format!(
                    "service `{}` depends on `{dep}`, which is disabled: its profiles ({}) are not active",
                    s.name,
                    profiles.join(", ")
                )
            } else {
                format!("service `{}` depends on undefined service `{dep}`", s.name)
            };
            let mut diag = if d.required {
                Diagnostic::error(message, d.span)
            } else {
                Diagnostic::warning(
                    format!("{message}; going on because it is `required: false`"),
                    d.span,
                )
            };
            diag = match (
                p.disabled_services.get(dep),
                suggest(dep, all_services.iter().copied()),
            ) {
                (Some(profiles), _) => {
                    diag.with_help(format!("enable it with --profile {}", profiles[0]))
                }
                (None, Some(s)) => diag.with_help(format!("did you mean `{s}`?")),
                (None, None) => diag,
            };
            errors.push(diag);
        }
        if let Some(mode) = &s.network_mode {
            if !s.networks.is_empty() && s.key_spans.contains_key("networks") {
                errors.push(
                    Diagnostic::error(
                        format!("service `{}` sets both `network_mode` and `networks`", s.name),
                        key_span("networks"),
                    )
                    .with_help(format!("`network_mode: {mode}` replaces the service's networks; remove one of the two")),
                );
            }
            if let NetworkMode::Service(x) = mode
                && !p.services.contains_key(x)
            {
                let mut d = Diagnostic::error(
                    format!(
                        "service `{}` uses `network_mode: service:{x}`, but service `{x}` is not defined",
                        s.name
                    ),
                    key_span("network_mode"),
                );
                if let Some(profiles) = p.disabled_services.get(x) {
                    d = d.with_help(format!(
                        "`{x}` is disabled; enable it with --profile {}",
                        profiles[0]
                    ));
                } else if let Some(sug) = suggest(x, all_services.iter().copied()) {
                    d = d.with_help(format!("did you mean `service:{sug}`?"));
                }
                errors.push(d);
            }
        }
        if s.key_spans.contains_key("networks") {
            for net in s.networks.keys() {
                if !p.networks.contains_key(net) {
                    let mut d = Diagnostic::error(
                        format!("service `{}` refers to undefined network `{net}`", s.name),
                        s.key_spans
                            .get(&format!("networks.{net}"))
                            .copied()
                            .unwrap_or_else(|| key_span("networks")),
                    );
                    d = match suggest(net, p.networks.keys().map(String::as_str)) {
                        Some(sug) => d.with_help(format!("did you mean `{sug}`?")),
                        None => d.with_help(format!(
                            "declare it under the top-level `networks:` as `{net}: {{}}`"
                        )),
                    };
                    errors.push(d);
                }
            }
        }
        for v in &s.volumes {
            if v.kind != VolumeType::Volume {
                continue;
            }
            if let Some(source) = &v.source
                && !p.volumes.contains_key(source)
            {
                let mut d = Diagnostic::error(
                    format!("service `{}` mounts undefined volume `{source}`", s.name),
                    v.span,
                );
                d = match suggest(source, p.volumes.keys().map(String::as_str)) {
                        Some(sug) => d.with_help(format!("did you mean `{sug}`?")),
                        None => d.with_help(format!(
                            "declare it under the top-level `volumes:`, or write `./{source}` for a directory of the project"
                        )),
                    };
                errors.push(d);
            }
        }
        for (kind, refs, defined) in [
            ("secret", &s.secrets, &p.secrets),
            ("config", &s.configs, &p.configs),
        ] {
            for r in refs {
                if !defined.contains_key(&r.source) {
                    let mut d = Diagnostic::error(
                        format!("service `{}` uses undefined {kind} `{}`", s.name, r.source),
                        r.span,
                    );
                    d = match suggest(&r.source, defined.keys().map(String::as_str)) {
                        Some(sug) => d.with_help(format!("did you mean `{sug}`?")),
                        None => d.with_help(format!("declare it under the top-level `{kind}s:`")),
                    };
                    errors.push(d);
                }
            }
        }
        if let Some(Json::Array(from)) = s.extra.get("volumes_from") {
            for f in from.iter().filter_map(Json::as_str) {
                let name = f.split(':').next().unwrap_or(f);
                if !name.starts_with("container") && !p.services.contains_key(name) {
                    errors.push(Diagnostic::error(
                        format!(
                            "service `{}` takes volumes from undefined service `{name}`",
                            s.name
                        ),
                        key_span("volumes_from"),
                    ));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::{LoadOptions, load};

    /// Loads `compose.yaml` with `files` beside it in a fresh directory.
    fn project(files: &[(&str, &str)], env: &[(&str, &str)]) -> Project {
        let dir = tempfile::tempdir().expect("a temporary directory");
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("written");
        }
        let options = LoadOptions {
            working_dir: dir.path().to_path_buf(),
            environment: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..LoadOptions::default()
        };
        match load(&options) {
            Ok(l) => l.project,
            Err(d) => panic!("{d}"),
        }
    }

    /// `down -v` removed `<state>/volumes/<name>`: a name that is a path walked out of it.
    #[test]
    fn names_that_are_paths_are_refused_at_their_line() {
        for (kind, name) in [
            ("volumes", "/some/dir"),
            ("volumes", "../x"),
            ("networks", "../x"),
            ("secrets", "/etc"),
        ] {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let text = format!(
                "services:\n  a: {{image: a}}\n{kind}:\n  data:\n    name: {name}\n    file: ./x\n"
            );
            let text = if kind == "secrets" {
                text
            } else {
                text.replace("    file: ./x\n", "")
            };
            std::fs::write(dir.path().join("compose.yaml"), text).expect("written");
            let options = LoadOptions {
                working_dir: dir.path().to_path_buf(),
                ..LoadOptions::default()
            };
            let shown = match load(&options) {
                Ok(_) => panic!("`{kind}` named `{name}` was accepted"),
                Err(d) => d.to_string(),
            };
            let singular = kind.trim_end_matches('s');
            assert!(
                shown.contains(&format!(
                    "{singular} `data`: `{name}` is not a valid {singular} name"
                )),
                "{shown}"
            );
            assert!(shown.contains("compose.yaml:5"), "{shown}");
            assert!(shown.contains("[a-zA-Z0-9][a-zA-Z0-9_.-]+"), "{shown}");
        }
    }

    #[test]
    fn shared_namespaces_links_and_volumes_from_imply_dependencies() {
        let p = project(
            &[(
                "compose.yaml",
                "services:\n  vpn: {image: v}\n  data: {image: d}\n  db: {image: p}\n  w:\n    image: w\n    network_mode: service:vpn\n    volumes_from: [data]\n    links: ['db:database']\n    depends_on:\n      vpn: {condition: service_healthy}\n",
            )],
            &[],
        );
        let deps = &p.services["w"].depends_on;
        assert_eq!(
            deps["vpn"].condition,
            Condition::Healthy,
            "an explicit entry wins"
        );
        assert!(!deps["vpn"].restart);
        assert!(deps["db"].restart && deps["db"].required);
        assert!(!deps["data"].restart && deps["data"].required);
    }

    #[test]
    fn resources_no_enabled_service_uses_are_left_out() {
        let p = project(
            &[(
                "compose.yaml",
                "services:\n  a: {image: a, volumes: ['used:/u'], networks: [front]}\n  b: {image: b, profiles: [dev], volumes: ['dev:/d'], networks: [tools]}\nnetworks: {front: {}, tools: {}, spare: {}}\nvolumes: {used: {}, dev: {}, spare: {}}\nsecrets: {s: {file: ./s}}\n",
            )],
            &[],
        );
        assert_eq!(p.networks.keys().collect::<Vec<_>>(), ["front"]);
        assert_eq!(p.volumes.keys().collect::<Vec<_>>(), ["used"]);
        assert!(p.secrets.is_empty());
    }

    #[test]
    fn env_file_variables_come_from_the_project_then_from_environment() {
        let p = project(
            &[
                (
                    "compose.yaml",
                    "services:\n  a:\n    image: a\n    env_file: a.env\n    environment: {HOST: db, PORT: '5432', USER: svc}\n",
                ),
                (
                    "a.env",
                    "URL=postgres://${USER}@${HOST}:${PORT}/x\nUSER=file\nBARE\n",
                ),
            ],
            &[("HOST", "from-process")],
        );
        let env = &p.services["a"].environment;
        assert_eq!(
            env["URL"].as_deref(),
            Some("postgres://svc@from-process:5432/x")
        );
        assert_eq!(
            env["USER"].as_deref(),
            Some("svc"),
            "`environment` wins over the env file"
        );
        assert!(
            !env.contains_key("BARE"),
            "a bare key with no value anywhere is left out"
        );
        let sources = &p.services["a"].env_file_sources;
        assert!(sources["URL"].ends_with("a.env"), "{sources:?}");
        assert!(
            !sources.contains_key("USER"),
            "a variable set again by `environment` did not come from the file"
        );
    }

    #[test]
    fn build_args_without_a_value_take_the_environment_or_are_left_out() {
        let p = project(
            &[(
                "compose.yaml",
                "services:\n  a:\n    build:\n      context: .\n      args: [VERSION=1, PROXY, MIRROR]\n",
            )],
            &[("PROXY", "http://proxy")],
        );
        let args = &p.services["a"].build.as_ref().expect("a build").args;
        assert_eq!(args.get("VERSION"), Some(&Some("1".to_string())));
        assert_eq!(args.get("PROXY"), Some(&Some("http://proxy".to_string())));
        assert!(!args.contains_key("MIRROR"));
    }

    #[test]
    fn volume_targets_are_cleaned() {
        let p = project(
            &[(
                "compose.yaml",
                "services:\n  a:\n    image: a\n    volumes: ['./x:/srv/data/', {type: tmpfs, target: /run//a/., tmpfs: {size: 1m}}]\n",
            )],
            &[],
        );
        let v = &p.services["a"].volumes;
        assert_eq!(v[0].target, "/srv/data");
        assert_eq!(v[1].target, "/run/a");
        assert_eq!(
            v[1].options["tmpfs"]["size"],
            Json::String("1048576".into())
        );
    }

    #[test]
    fn byte_sizes_and_deploy_print_as_compose_go_does() {
        let p = project(
            &[(
                "compose.yaml",
                "services:\n  a:\n    image: a\n    mem_limit: 512m\n    shm_size: 1073741824\n    deploy:\n      restart_policy: {window: 120s, condition: on-failure, delay: 5s}\n      resources: {limits: {memory: 1g, cpus: '0.5'}}\n      replicas: '2'\n",
            )],
            &[],
        );
        let s = &p.services["a"];
        assert_eq!(s.extra["mem_limit"], Json::String("536870912".into()));
        assert_eq!(s.extra["shm_size"], Json::String("1073741824".into()));
        let deploy = &s.extra["deploy"];
        let keys: Vec<&String> = deploy.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["replicas", "resources", "restart_policy"]);
        assert_eq!(
            deploy["resources"]["limits"]["memory"],
            Json::String("1073741824".into())
        );
        assert_eq!(
            deploy["resources"]["limits"]["cpus"],
            serde_json::json!(0.5)
        );
        let policy: Vec<&String> = deploy["restart_policy"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        assert_eq!(policy, ["condition", "delay", "window"]);
        assert_eq!(
            deploy["restart_policy"]["window"],
            Json::String("2m0s".into())
        );
    }
}
