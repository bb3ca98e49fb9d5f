//! Each group of services (a service and those sharing its network stack) -> one Pod template in
//! a Deployment, a StatefulSet or a Job; each service -> a container of it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    Deployment, DeploymentSpec, DeploymentStrategy, StatefulSet, StatefulSetSpec,
};
use k8s_openapi::api::batch::v1::{Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EnvVar, EnvVarSource, HostAlias, PersistentVolumeClaim,
    PodSecurityContext, PodSpec, PodTemplateSpec, ResourceRequirements, Secret, SecretKeySelector,
    SecurityContext, Sysctl, Volume,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::Value as Json;
use wharf_model::project::{Condition, NetworkMode, RestartPolicy};

use crate::env::{escape_dollars, secret_reason};
use crate::report::Kind;
use crate::translate::{LABEL_NAME, Translator};
use crate::{Error, name, probe};

/// What the containers of one Pod add to it as they are built.
#[derive(Default)]
pub(crate) struct Pod {
    pub volumes: Vec<Volume>,
    pub claim_templates: Vec<PersistentVolumeClaim>,
    /// Some init container reads Jobs through the Kubernetes API.
    pub needs_api_access: bool,
}

impl Pod {
    /// Adds a volume (one already there with the same name and source is shared) and returns the
    /// name to mount it by.
    pub fn volume(&mut self, v: Volume) -> String {
        let base = v.name.clone();
        let mut candidate = v;
        for i in 2.. {
            match self.volumes.iter().find(|x| x.name == candidate.name) {
                None => {
                    let n = candidate.name.clone();
                    self.volumes.push(candidate);
                    return n;
                }
                Some(existing) if *existing == candidate => return candidate.name,
                Some(_) => candidate.name = name::join(&[&base, &i.to_string()]),
            }
        }
        unreachable!("some numbered name is free")
    }
}

/// What kind of workload a group runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WorkloadKind {
    Deployment,
    StatefulSet,
    Job,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::Job => "Job",
        }
    }
}

impl Translator<'_> {
    pub fn workload_kind(&self, root: &str) -> WorkloadKind {
        if self.jobs.contains(root) {
            WorkloadKind::Job
        } else if self.per_replica.contains_key(root) {
            WorkloadKind::StatefulSet
        } else {
            WorkloadKind::Deployment
        }
    }

    pub(crate) fn workload(&mut self, root: &str) -> Result<(), Error> {
        let members = self.groups[root].clone();
        let kind = self.workload_kind(root);
        let root_kube = self.kube(root);
        let root_svc = self.service(root);

        // A service that another of the group depends on runs as a sidecar (a restartable init
        // container): the containers after it start once it has started, or once its
        // startupProbe passed when they wait for it to be healthy.
        let mut sidecars = BTreeSet::new();
        let mut healthy_needed = BTreeSet::new();
        for m in &members {
            for (dep, d) in &self.service(m).depends_on {
                if dep != m && members.contains(dep) {
                    sidecars.insert(dep.clone());
                    if d.condition == Condition::Healthy {
                        healthy_needed.insert(dep.clone());
                    }
                }
            }
        }

        let mut pod = Pod::default();
        let mut init = self.waits(root, &members, &mut pod);
        let mut containers = Vec::new();
        for m in &members {
            let mut c = self.container(m, &mut pod, healthy_needed.contains(m))?;
            if sidecars.contains(m) {
                c.restart_policy = Some("Always".to_string());
                init.push(c);
            } else {
                containers.push(c);
            }
            if m != root {
                self.group_notes(root, m, kind, &sidecars);
            }
        }
        self.restart_findings(root, &members, kind);

        let mut spec = self.pod_spec(root, &members, &mut pod);
        spec.init_containers = (!init.is_empty()).then_some(init);
        spec.containers = containers;
        if kind == WorkloadKind::Job {
            spec.restart_policy = Some(self.job_restart(root).0.to_string());
        }

        let mut labels = self.selector(root);
        labels.insert(LABEL_NAME.to_string(), root_kube.clone());
        for net in self.pod_networks(root) {
            labels.insert(Self::network_label(&net), "true".to_string());
        }
        if self.internal_only(root) {
            labels.insert("wharf.io/egress".to_string(), "namespace".to_string());
        }
        let annotations = self.pod_annotations(root, &members);
        let template = PodTemplateSpec {
            metadata: Some(ObjectMeta {
                labels: Some(labels),
                annotations: (!annotations.is_empty()).then_some(annotations),
                ..ObjectMeta::default()
            }),
            spec: Some(spec),
        };
        let mut meta = self.meta(&root_kube, Some(&root_kube));
        if let Some(Json::Object(l)) = root_svc.extra.get("deploy").and_then(|d| d.get("labels")) {
            let a: BTreeMap<String, String> = l
                .iter()
                .filter(|(k, _)| is_qualified_name(k))
                .map(|(k, v)| (k.clone(), json_text(v)))
                .collect();
            meta.annotations = (!a.is_empty()).then_some(a);
        }
        let selector = LabelSelector {
            match_labels: Some(self.selector(root)),
            ..LabelSelector::default()
        };
        let replicas = i32::try_from(root_svc.replicas).unwrap_or(i32::MAX);
        match kind {
            WorkloadKind::Job => {
                let (_, backoff) = self.job_restart(root);
                let many = (replicas != 1).then_some(replicas);
                self.m.jobs.push(Job {
                    metadata: meta,
                    spec: Some(JobSpec {
                        backoff_limit: Some(backoff),
                        completions: many,
                        parallelism: many,
                        template,
                        ..JobSpec::default()
                    }),
                    ..Job::default()
                });
            }
            WorkloadKind::StatefulSet => {
                let vols: Vec<String> = self.per_replica[root].iter().cloned().collect();
                self.note(
                    root,
                    "volumes",
                    Kind::Approximate,
                    format!(
                        "StatefulSet `{root_kube}`: each of the {replicas} replicas gets its own {} (volumeClaimTemplates); Compose shares one volume among replicas",
                        vols.iter()
                            .map(|v| format!("`{v}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                );
                self.m.stateful_sets.push(StatefulSet {
                    metadata: meta,
                    spec: StatefulSetSpec {
                        replicas: Some(replicas),
                        selector,
                        service_name: Some(root_kube.clone()),
                        pod_management_policy: Some("Parallel".to_string()),
                        template,
                        volume_claim_templates: Some(std::mem::take(&mut pod.claim_templates)),
                        ..StatefulSetSpec::default()
                    },
                    ..StatefulSet::default()
                });
            }
            WorkloadKind::Deployment => {
                // A claim that only one node can mount cannot be handed over by a rolling update
                // (the new Pod may land on another node): stop the old Pod first.
                let single_node_claim = template
                    .spec
                    .as_ref()
                    .and_then(|s| s.volumes.as_ref())
                    .is_some_and(|vs| {
                        vs.iter().any(|v| {
                            v.persistent_volume_claim
                                .as_ref()
                                .is_some_and(|c| self.claim_is_single_node(&c.claim_name))
                        })
                    });
                self.m.deployments.push(Deployment {
                    metadata: meta,
                    spec: DeploymentSpec {
                        replicas: Some(replicas),
                        selector,
                        template,
                        strategy: single_node_claim.then(|| DeploymentStrategy {
                            type_: Some("Recreate".to_string()),
                            ..DeploymentStrategy::default()
                        }),
                        ..DeploymentSpec::default()
                    },
                    ..Deployment::default()
                });
            }
        }
        Ok(())
    }

    fn group_notes(
        &mut self,
        root: &str,
        member: &str,
        kind: WorkloadKind,
        sidecars: &BTreeSet<String>,
    ) {
        let root_kube = self.kube(root);
        let s = self.service(member);
        let role = if sidecars.contains(member) {
            "sidecar (restartable init container)"
        } else {
            "container"
        };
        self.note(
            member,
            "network_mode",
            Kind::Note,
            format!(
                "service:{root} -> runs as {role} `{}` of the Pods of {} `{root_kube}` (one network stack: they reach each other on localhost, as in Compose); its Service selects those Pods",
                self.kube(member),
                kind.as_str()
            ),
        );
        let root_replicas = self.service(root).replicas;
        if s.replicas != root_replicas {
            let key = if s.extra.contains_key("scale") {
                "scale"
            } else {
                "deploy.replicas"
            };
            self.note(
                member,
                key,
                Kind::Approximate,
                format!(
                    "{} replicas asked, but it runs in {root}'s Pods, which have {root_replicas}",
                    s.replicas
                ),
            );
        }
        for (dep, d) in &s.depends_on {
            if self.root_of.get(dep).map(String::as_str) == Some(root) && dep != member {
                let when = match d.condition {
                    Condition::Healthy => "once its startupProbe passes (healthy)",
                    _ => "once it has started",
                };
                self.note(
                    member,
                    &format!("depends_on.{dep}"),
                    Kind::Note,
                    format!(
                        "`{dep}` is a sidecar of the same Pod, started before `{}`; `{}` starts {when}",
                        self.kube(member),
                        self.kube(member)
                    ),
                );
            }
        }
    }

    /// The restart policy and backoffLimit of a Job.
    fn job_restart(&self, root: &str) -> (&'static str, i32) {
        match self.service(root).restart {
            RestartPolicy::No => ("Never", 0),
            RestartPolicy::OnFailure { max_retries } => (
                "OnFailure",
                max_retries.map_or(6, |n| i32::try_from(n).unwrap_or(i32::MAX)),
            ),
            RestartPolicy::Always | RestartPolicy::UnlessStopped => ("OnFailure", 6),
        }
    }

    fn restart_findings(&mut self, root: &str, members: &[String], kind: WorkloadKind) {
        for m in members {
            let s = self.service(m);
            let key = if s.extra.contains_key("restart") {
                "restart"
            } else if s
                .extra
                .get("deploy")
                .is_some_and(|d| d.get("restart_policy").is_some())
            {
                "deploy.restart_policy"
            } else {
                continue;
            };
            let message = match (kind, s.restart) {
                (WorkloadKind::Job, RestartPolicy::No) => continue,
                (WorkloadKind::Job, RestartPolicy::OnFailure { max_retries: Some(_) }) => continue,
                (WorkloadKind::Job, RestartPolicy::OnFailure { max_retries: None }) => {
                    "Compose retries a failed run without end; the Job gives up after 6 retries (backoffLimit)".to_string()
                }
                (WorkloadKind::Job, p) => format!(
                    "{p}: the service runs as a Job (something waits for it to complete), whose Pod is not started again after it succeeds"
                ),
                (_, RestartPolicy::Always | RestartPolicy::UnlessStopped) => continue,
                (_, p) => format!(
                    "{p}: a {}'s containers are restarted whatever their exit status (restartPolicy Always)",
                    self.workload_kind(root).as_str()
                ),
            };
            self.note(m, key, Kind::Approximate, message);
        }
    }

    fn pod_spec(&mut self, root: &str, members: &[String], pod: &mut Pod) -> PodSpec {
        let root_svc = self.service(root);
        let mut spec = PodSpec::default();
        let grace = members
            .iter()
            .filter_map(|m| self.service(m).stop_grace_period)
            .max();
        if let Some(g) = grace {
            let secs = g.as_millis().div_ceil(1000);
            spec.termination_grace_period_seconds = Some(i64::try_from(secs).unwrap_or(i64::MAX));
        }
        for m in members {
            if let Some(g) = self.service(m).stop_grace_period
                && g.subsec_nanos() != 0
            {
                self.note(
                    m,
                    "stop_grace_period",
                    Kind::Approximate,
                    format!(
                        "{} rounded up to {}s (terminationGracePeriodSeconds counts whole seconds)",
                        wharf_model::duration::format_duration(g),
                        g.as_millis().div_ceil(1000)
                    ),
                );
            }
            if let Some(g) = self.service(m).stop_grace_period
                && Some(g) != grace
            {
                self.note(
                    m,
                    "stop_grace_period",
                    Kind::Approximate,
                    "the Pod it shares has one grace period: the longest of its services'"
                        .to_string(),
                );
            }
        }
        if let Some(h) = &root_svc.hostname {
            if name::is_dns1123_label(h) {
                spec.hostname = Some(h.clone());
            } else {
                self.note(
                    root,
                    "hostname",
                    Kind::NotTranslated,
                    format!("`{h}` is not a valid Pod hostname (one DNS label): the Pod is named by Kubernetes"),
                );
            }
        }
        for m in &members[1..] {
            if self.service(m).hostname.is_some() {
                self.note(
                    m,
                    "hostname",
                    Kind::NotTranslated,
                    format!("a Pod has one hostname, and this service shares {root}'s Pod"),
                );
            }
        }
        match &root_svc.network_mode {
            Some(NetworkMode::Host) => {
                spec.host_network = Some(true);
                spec.dns_policy = Some("ClusterFirstWithHostNet".to_string());
                self.note(
                    root,
                    "network_mode",
                    Kind::Approximate,
                    "host -> hostNetwork: the Pod uses its node's network (NetworkPolicies do not apply to it); Service names still resolve (dnsPolicy ClusterFirstWithHostNet)".to_string(),
                );
            }
            Some(NetworkMode::None) => self.note(
                root,
                "network_mode",
                Kind::Approximate,
                format!(
                    "none -> a Pod always has a network; NetworkPolicy `{}` denies all its traffic",
                    name::join(&[&self.kube(root), "isolated"])
                ),
            ),
            Some(NetworkMode::Bridge) => self.note(
                root,
                "network_mode",
                Kind::Approximate,
                "bridge -> the cluster network, with no NetworkPolicy for this Pod".to_string(),
            ),
            Some(other @ (NetworkMode::Container(_) | NetworkMode::Network(_))) => self.note(
                root,
                "network_mode",
                Kind::NotTranslated,
                format!("{other}: a network outside the project has no Kubernetes counterpart; the Pod joins the cluster network"),
            ),
            Some(NetworkMode::Service(_)) | None => {}
        }

        let mut aliases: Vec<HostAlias> = Vec::new();
        let mut sysctls: Vec<Sysctl> = Vec::new();
        let mut groups: Vec<i64> = Vec::new();
        for m in members {
            let s = self.service(m);
            if let Some(v) = s.extra.get("extra_hosts") {
                for (host, ip) in extra_hosts(v) {
                    if ip == "host-gateway" {
                        self.note(
                            m,
                            "extra_hosts",
                            Kind::NotTranslated,
                            format!("{host}=host-gateway: a Pod has no fixed address for its node; use the node's address or a Service"),
                        );
                        continue;
                    }
                    match aliases.iter_mut().find(|a| a.ip == ip) {
                        Some(a) => a.hostnames.get_or_insert_with(Vec::new).push(host),
                        None => aliases.push(HostAlias {
                            ip,
                            hostnames: Some(vec![host]),
                        }),
                    }
                }
            }
            if let Some(v) = s.extra.get("sysctls") {
                for (k, val) in key_values(v) {
                    sysctls.push(Sysctl {
                        name: k,
                        value: val,
                    });
                }
                self.note(
                    m,
                    "sysctls",
                    Kind::Approximate,
                    "set for the whole Pod (securityContext.sysctls); the kubelet refuses sysctls outside its safe list unless allowed with --allowed-unsafe-sysctls".to_string(),
                );
            }
            if let Some(v) = s.extra.get("group_add") {
                for g in strings(v) {
                    match g.parse::<i64>() {
                        Ok(id) => groups.push(id),
                        Err(_) => self.note(
                            m,
                            "group_add",
                            Kind::NotTranslated,
                            format!("group `{g}` by name: Kubernetes needs numeric ids (supplementalGroups)"),
                        ),
                    }
                }
            }
        }
        spec.host_aliases = (!aliases.is_empty()).then_some(aliases);
        if !sysctls.is_empty() || !groups.is_empty() {
            groups.sort_unstable();
            groups.dedup();
            spec.security_context = Some(PodSecurityContext {
                sysctls: (!sysctls.is_empty()).then_some(sysctls),
                supplemental_groups: (!groups.is_empty()).then_some(groups),
                ..PodSecurityContext::default()
            });
        }
        if let Some(Json::String(platform)) = root_svc.extra.get("platform") {
            let mut parts = platform.split('/');
            let mut sel = BTreeMap::new();
            if let Some(os) = parts.next().filter(|s| !s.is_empty()) {
                sel.insert("kubernetes.io/os".to_string(), os.to_string());
            }
            if let Some(arch) = parts.next().filter(|s| !s.is_empty()) {
                sel.insert("kubernetes.io/arch".to_string(), arch.to_string());
            }
            self.note(
                root,
                "platform",
                Kind::Approximate,
                format!("{platform} -> nodeSelector: the Pods run on such nodes, and each node pulls its own variant of the image"),
            );
            spec.node_selector = Some(sel);
        }
        if pod.needs_api_access {
            spec.service_account_name = Some(crate::wait::JOB_WAITER.to_string());
            spec.automount_service_account_token = Some(false);
        }
        spec.volumes = (!pod.volumes.is_empty()).then(|| std::mem::take(&mut pod.volumes));
        spec
    }

    /// Compose labels (and `annotations`) of the group's services, as Pod annotations: they pass
    /// through unchanged, as they do to Docker.
    fn pod_annotations(&mut self, root: &str, members: &[String]) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for m in members {
            let s = self.service(m);
            let mut pairs: Vec<(String, String, &str)> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone(), "labels"))
                .collect();
            if let Some(v) = s.extra.get("annotations") {
                pairs.extend(
                    key_values(v)
                        .into_iter()
                        .map(|(k, v)| (k, v, "annotations")),
                );
            }
            for (k, v, key) in pairs {
                if !is_qualified_name(&k) {
                    self.note(
                        m,
                        &format!("{key}.{k}"),
                        Kind::NotTranslated,
                        "not a valid Kubernetes annotation key (at most 63 characters of letters, digits, `-`, `_`, `.`, after an optional DNS prefix and `/`)".to_string(),
                    );
                    continue;
                }
                if let Some(old) = out.insert(k.clone(), v.clone())
                    && old != v
                {
                    self.note(
                        m,
                        &format!("{key}.{k}"),
                        Kind::Approximate,
                        format!("another service of {root}'s Pod sets it too: the Pod has `{v}`"),
                    );
                }
            }
        }
        out
    }

    fn container(
        &mut self,
        name: &str,
        pod: &mut Pod,
        startup_required: bool,
    ) -> Result<Container, Error> {
        let s = self.service(name);
        let kube = self.kube(name);
        let image = self.image(name);
        let env = self.env(name);
        let ports: Vec<ContainerPort> = self
            .ports(name)
            .into_iter()
            .map(|p| ContainerPort {
                container_port: i32::from(p.port),
                protocol: Some(p.protocol.clone()),
                ..ContainerPort::default()
            })
            .collect();
        let mut c = Container {
            name: kube,
            image: Some(image),
            command: s
                .entrypoint
                .as_ref()
                .map(|e| e.iter().map(|a| escape_dollars(a)).collect()),
            args: s
                .command
                .as_ref()
                .map(|e| e.iter().map(|a| escape_dollars(a)).collect()),
            env: (!env.is_empty()).then_some(env),
            ports: (!ports.is_empty()).then_some(ports),
            working_dir: s.working_dir.clone(),
            resources: self.resources(name),
            security_context: self.security_context(name),
            ..Container::default()
        };
        if let Some(h) = &s.healthcheck {
            let p = probe::probes(h, startup_required);
            for (key, kind, message) in p.findings {
                self.note(name, &key, kind, message);
            }
            c.startup_probe = p.startup;
            c.readiness_probe = p.readiness;
            c.liveness_probe = p.liveness;
        }
        if let Some(sig) = &s.stop_signal {
            let sig = sig.to_ascii_uppercase();
            if sig != "SIGTERM" && sig != "TERM" && sig != "15" {
                self.note(
                    name,
                    "stop_signal",
                    Kind::NotTranslated,
                    format!("{sig}: Kubernetes stops containers with SIGTERM (lifecycle.stopSignal needs the ContainerStopSignals feature gate); give the image `STOPSIGNAL {sig}` or a preStop hook"),
                );
            }
        }
        match s.extra.get("pull_policy").and_then(Json::as_str) {
            Some("always") => c.image_pull_policy = Some("Always".to_string()),
            Some("never") => c.image_pull_policy = Some("Never".to_string()),
            Some("missing" | "if_not_present") => {
                c.image_pull_policy = Some("IfNotPresent".to_string())
            }
            Some(other) => {
                c.image_pull_policy = Some("Always".to_string());
                self.note(
                    name,
                    "pull_policy",
                    Kind::Approximate,
                    format!("{other} -> Always: Kubernetes has no periodic or build pull policy"),
                );
            }
            None => {}
        }
        if s.extra.get("tty").and_then(Json::as_bool) == Some(true) {
            c.tty = Some(true);
        }
        if s.extra.get("stdin_open").and_then(Json::as_bool) == Some(true) {
            c.stdin = Some(true);
        }
        let mounts = self.mounts(name, pod)?;
        c.volume_mounts = (!mounts.is_empty()).then_some(mounts);
        Ok(c)
    }

    fn image(&mut self, name: &str) -> String {
        let s = self.service(name);
        let default = format!("{}-{}:latest", self.p.name, name).to_ascii_lowercase();
        match (&s.image, &s.build) {
            (Some(i), None) => i.clone(),
            (Some(i), Some(_)) => {
                self.note(
                    name,
                    "build",
                    Kind::NotTranslated,
                    format!("the cluster cannot build images: build `{i}` and push it where the cluster pulls from"),
                );
                i.clone()
            }
            (None, Some(_)) => {
                self.note(
                    name,
                    "build",
                    Kind::NotTranslated,
                    format!("no `image`: the Pods use `{default}`; build it (`docker compose build`), push it where the cluster pulls from, and set `image`"),
                );
                default
            }
            (None, None) => {
                self.note(
                    name,
                    "image",
                    Kind::NotTranslated,
                    format!("no `image` or `build` (wharf runs it as a process on this machine): the Pods use `{default}`; build an image with its program and push it"),
                );
                default
            }
        }
    }

    /// Environment variables; values the rule of [`crate::env`] picks go into `<service>-env`.
    fn env(&mut self, name: &str) -> Vec<EnvVar> {
        let s = self.service(name);
        let kube = self.kube(name);
        let secret = name::join(&[&kube, "env"]);
        let mut data = BTreeMap::new();
        let mut in_secret = Vec::new();
        let mut out = Vec::new();
        for (k, v) in &s.environment {
            let Some(v) = v else {
                self.note(
                    name,
                    &format!("environment.{k}"),
                    Kind::Note,
                    "declared without a value and not set when exporting: left out, as Docker leaves it out".to_string(),
                );
                continue;
            };
            let from_file = s.env_file_sources.get(k).map(|p| p.as_path());
            if secret_reason(k, v, from_file).is_some() {
                let key = name::data_key(k);
                data.insert(key.clone(), ByteString(v.as_bytes().to_vec()));
                in_secret.push(k.clone());
                out.push(EnvVar {
                    name: k.clone(),
                    value_from: Some(EnvVarSource {
                        secret_key_ref: Some(SecretKeySelector {
                            name: secret.clone(),
                            key,
                            optional: None,
                        }),
                        ..EnvVarSource::default()
                    }),
                    ..EnvVar::default()
                });
            } else {
                out.push(EnvVar {
                    name: k.clone(),
                    value: Some(escape_dollars(v)),
                    ..EnvVar::default()
                });
            }
        }
        if !data.is_empty() {
            let key = if s.env_file_sources.keys().any(|k| in_secret.contains(k)) {
                "env_file"
            } else {
                "environment"
            };
            self.note(
                name,
                key,
                Kind::Note,
                format!(
                    "{} -> Secret `{secret}` (from a secret env file, a secret-sounding name, or a URL with a password: docs/kubernetes.md); base64, not encrypted: keep the manifests private",
                    in_secret.join(", ")
                ),
            );
            self.m.secrets.push(Secret {
                metadata: self.meta(&secret, Some(&kube)),
                type_: Some("Opaque".to_string()),
                data: Some(data),
                ..Secret::default()
            });
        }
        out
    }

    fn resources(&mut self, name: &str) -> Option<ResourceRequirements> {
        let s = self.service(name);
        let res = s.extra.get("deploy").and_then(|d| d.get("resources"));
        let pick = |section: &str, key: &str, fallback: &str| {
            res.and_then(|r| r.get(section))
                .and_then(|l| l.get(key))
                .or_else(|| s.extra.get(fallback))
                .cloned()
        };
        let mut limits = BTreeMap::new();
        let mut requests = BTreeMap::new();
        if let Some(q) = pick("limits", "cpus", "cpus").and_then(|v| cpu(&v)) {
            limits.insert("cpu".to_string(), q);
        }
        if let Some(q) = pick("limits", "memory", "mem_limit").and_then(|v| memory(&v)) {
            limits.insert("memory".to_string(), q);
        }
        if let Some(q) = pick("reservations", "cpus", "").and_then(|v| cpu(&v)) {
            requests.insert("cpu".to_string(), q);
        }
        if let Some(q) = pick("reservations", "memory", "mem_reservation").and_then(|v| memory(&v))
        {
            requests.insert("memory".to_string(), q);
        }
        if limits.is_empty() && requests.is_empty() {
            return None;
        }
        Some(ResourceRequirements {
            limits: (!limits.is_empty()).then_some(limits),
            requests: (!requests.is_empty()).then_some(requests),
            ..ResourceRequirements::default()
        })
    }

    fn security_context(&mut self, name: &str) -> Option<SecurityContext> {
        let s = self.service(name);
        let mut sc = SecurityContext::default();
        if let Some(u) = &s.user {
            let (user, group) = match u.split_once(':') {
                Some((a, b)) => (a, Some(b)),
                None => (u.as_str(), None),
            };
            match (user.parse::<i64>(), group.map(str::parse::<i64>)) {
                (Ok(uid), None) => sc.run_as_user = Some(uid),
                (Ok(uid), Some(Ok(gid))) => {
                    sc.run_as_user = Some(uid);
                    sc.run_as_group = Some(gid);
                }
                _ => self.note(
                    name,
                    "user",
                    Kind::NotTranslated,
                    format!("`{u}` by name: runAsUser/runAsGroup need numeric ids; find them with `docker run --rm --entrypoint id IMAGE {user}` and set `user: UID:GID`"),
                ),
            }
        }
        let caps = |key: &str| -> Option<Vec<String>> {
            s.extra.get(key).map(|v| {
                strings(v)
                    .into_iter()
                    .map(|c| c.trim_start_matches("CAP_").to_string())
                    .collect()
            })
        };
        let add = caps("cap_add");
        let drop = caps("cap_drop");
        if add.is_some() || drop.is_some() {
            sc.capabilities = Some(Capabilities { add, drop });
        }
        if s.extra.get("privileged").and_then(Json::as_bool) == Some(true) {
            sc.privileged = Some(true);
        }
        if s.extra.get("read_only").and_then(Json::as_bool) == Some(true) {
            sc.read_only_root_filesystem = Some(true);
        }
        (sc != SecurityContext::default()).then_some(sc)
    }
}

/// A CPU count as a Quantity: `2`, `500m`.
fn cpu(v: &Json) -> Option<Quantity> {
    let x = match v {
        Json::Number(n) => n.as_f64()?,
        Json::String(s) => s.parse().ok()?,
        _ => return None,
    };
    let millis = (x * 1000.0).round() as i64;
    if millis <= 0 {
        return None;
    }
    Some(Quantity(if millis % 1000 == 0 {
        (millis / 1000).to_string()
    } else {
        format!("{millis}m")
    }))
}

/// A byte count as a Quantity, with a binary suffix when exact: `512Mi`, `1500`.
pub(crate) fn memory(v: &Json) -> Option<Quantity> {
    let bytes: u64 = match v {
        Json::Number(n) => n.as_u64()?,
        Json::String(s) => s
            .parse()
            .ok()
            .or_else(|| wharf_model::byte_size::parse_bytes(s).ok())?,
        _ => return None,
    };
    if bytes == 0 {
        return None;
    }
    for (suffix, unit) in [("Gi", 1u64 << 30), ("Mi", 1 << 20), ("Ki", 1 << 10)] {
        if bytes.is_multiple_of(unit) {
            return Some(Quantity(format!("{}{suffix}", bytes / unit)));
        }
    }
    Some(Quantity(bytes.to_string()))
}

/// A string or a list of strings.
pub(crate) fn strings(v: &Json) -> Vec<String> {
    match v {
        Json::Array(a) => a.iter().map(json_text).collect(),
        Json::Null => Vec::new(),
        other => vec![json_text(other)],
    }
}

/// A mapping, or a list of `k=v` strings.
pub(crate) fn key_values(v: &Json) -> Vec<(String, String)> {
    match v {
        Json::Object(m) => m.iter().map(|(k, v)| (k.clone(), json_text(v))).collect(),
        Json::Array(a) => a
            .iter()
            .map(json_text)
            .map(|s| match s.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (s, String::new()),
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// `extra_hosts` entries: `host:ip`, `host=ip`, or a mapping to an address or a list of them.
fn extra_hosts(v: &Json) -> Vec<(String, String)> {
    match v {
        Json::Object(m) => m
            .iter()
            .flat_map(|(k, v)| strings(v).into_iter().map(move |ip| (k.clone(), ip)))
            .collect(),
        _ => strings(v)
            .into_iter()
            .filter_map(|s| {
                let (h, ip) = s.split_once('=').or_else(|| s.split_once(':'))?;
                Some((h.to_string(), ip.trim_matches(['[', ']']).to_string()))
            })
            .collect(),
    }
}

pub(crate) fn json_text(v: &Json) -> String {
    match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A valid label or annotation key: `[prefix/]name`, the name at most 63 characters of
/// `[A-Za-z0-9._-]` with alphanumerics at both ends, the prefix a DNS subdomain.
pub(crate) fn is_qualified_name(k: &str) -> bool {
    let (prefix, name) = match k.rsplit_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, k),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 63
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let prefix_ok = prefix.is_none_or(|p| {
        !p.is_empty()
            && p.len() <= 253
            && p.split('.').all(|l| {
                !l.is_empty()
                    && l.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            })
    });
    name_ok && prefix_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities() {
        assert_eq!(cpu(&Json::from(0.5)), Some(Quantity("500m".into())));
        assert_eq!(cpu(&Json::from(2.0)), Some(Quantity("2".into())));
        assert_eq!(cpu(&Json::from("1.25")), Some(Quantity("1250m".into())));
        assert_eq!(
            memory(&Json::from("536870912")),
            Some(Quantity("512Mi".into()))
        );
        assert_eq!(memory(&Json::from("1500")), Some(Quantity("1500".into())));
        assert_eq!(memory(&Json::from("1g")), Some(Quantity("1Gi".into())));
    }

    #[test]
    fn annotation_keys() {
        assert!(is_qualified_name("org.jbei.edd.role"));
        assert!(is_qualified_name("wharf.http.port"));
        assert!(is_qualified_name("example.org/role"));
        assert!(!is_qualified_name("a b"));
        assert!(!is_qualified_name(&"a".repeat(64)));
    }

    #[test]
    fn extra_hosts_forms() {
        assert_eq!(
            extra_hosts(&serde_json::json!(["db:10.0.0.5", "v6=::1"])),
            vec![
                ("db".to_string(), "10.0.0.5".to_string()),
                ("v6".to_string(), "::1".to_string())
            ]
        );
    }
}
