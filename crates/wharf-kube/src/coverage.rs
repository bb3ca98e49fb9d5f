//! Nothing is dropped without a word: every key present on a service (typed or in `extra`) is
//! checked against the keys the translation handles. A key that is not handled, and that no step
//! reported, lands in the report as not translated, also a key nobody here has heard of.

use std::collections::BTreeSet;

use serde_json::Value as Json;

use crate::report::{Kind, Section};
use crate::translate::Translator;

/// Service keys the translation acts on; each step reports what it translated approximately.
pub const HANDLED: &[&str] = &[
    "annotations",
    "build",
    "cap_add",
    "cap_drop",
    "command",
    "configs",
    "cpus",
    "depends_on",
    "deploy",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "extends",
    "extra_hosts",
    "group_add",
    "healthcheck",
    "hostname",
    "image",
    "labels",
    "mem_limit",
    "mem_reservation",
    "network_mode",
    "networks",
    "platform",
    "ports",
    "privileged",
    "profiles",
    "pull_policy",
    "read_only",
    "restart",
    "scale",
    "secrets",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tmpfs",
    "tty",
    "user",
    "volumes",
    "working_dir",
];

/// `deploy` keys the translation acts on.
const DEPLOY_HANDLED: &[&str] = &["labels", "mode", "replicas", "resources", "restart_policy"];

/// What to say about keys known to have no counterpart.
fn advice(key: &str) -> Option<&'static str> {
    Some(match key {
        "container_name" => {
            "Pods are named by their workload; other services reach it by its Service name"
        }
        "logging" => {
            "containers log to standard output; the cluster's log collector decides where logs go"
        }
        "init" => {
            "Kubernetes runs no init process in the container: use an image with one (tini) or shareProcessNamespace"
        }
        "links" => "every service has a Service named after it; link aliases are not made",
        "external_links" => "containers outside the project are not reachable by these names",
        "volumes_from" => "mount the same volumes explicitly",
        "dns" | "dns_search" | "dns_opt" => {
            "the cluster's DNS is used (a Pod's dnsConfig can add to it)"
        }
        "ulimits" => {
            "Kubernetes sets no per-container ulimits: set them in the image or the container runtime"
        }
        "security_opt" => {
            "set the matching securityContext fields (seccompProfile, appArmorProfile, seLinuxOptions) by hand"
        }
        "devices" => "use a device plugin and its resource limits",
        "gpus" => "use a device plugin's resource (nvidia.com/gpu) in resources.limits",
        "pid" | "ipc" | "uts" | "userns_mode" | "cgroup" | "cgroup_parent" => {
            "namespace and cgroup settings are the kubelet's"
        }
        "oom_score_adj" | "oom_kill_disable" => {
            "the kubelet sets OOM scores from the Pod's QoS class"
        }
        "runtime" => "choose a RuntimeClass (runtimeClassName)",
        "post_start" | "pre_stop" => {
            "lifecycle hooks are not translated: add lifecycle.postStart/preStop by hand"
        }
        "develop" => "development settings (watch, sync) do not apply to a cluster",
        "domainname" => "Pods use the cluster's domain",
        "mac_address" => "Pods get their addresses from the cluster",
        "attach" => "use kubectl logs",
        _ => return None,
    })
}

impl Translator<'_> {
    pub(crate) fn coverage(&mut self, service: &str) {
        let s = self.service(service);
        let section = Section::Service(service.to_string());
        let present: BTreeSet<String> = s
            .key_spans
            .keys()
            .filter(|k| !k.contains('.'))
            .cloned()
            .chain(s.extra.keys().cloned())
            .collect();
        for key in present {
            // Extension keys: Compose ignores them too.
            if key.starts_with("x-") {
                continue;
            }
            if key == "deploy" {
                if let Some(Json::Object(d)) = s.extra.get("deploy") {
                    self.deploy_coverage(service, d);
                }
                continue;
            }
            if HANDLED.contains(&key.as_str()) || self.report.mentions(&section, &key) {
                continue;
            }
            let message = match advice(&key) {
                Some(a) => a.to_string(),
                None => "wharf knows no Kubernetes counterpart: check that the service does not rely on it".to_string(),
            };
            self.note(service, &key, Kind::NotTranslated, message);
        }
    }

    fn deploy_coverage(&mut self, service: &str, deploy: &serde_json::Map<String, Json>) {
        let section = Section::Service(service.to_string());
        for (k, v) in deploy {
            let key = format!("deploy.{k}");
            if self.report.mentions(&section, &key) {
                continue;
            }
            match k.as_str() {
                "mode" if v.as_str().is_some_and(|m| m != "replicated") => self.note(
                    service,
                    &key,
                    Kind::NotTranslated,
                    format!("{}: one replica per node would be a DaemonSet; exported as a Deployment", v.as_str().unwrap_or_default()),
                ),
                "resources" => {
                    let Json::Object(sections) = v else { continue };
                    for (sec, r) in sections {
                        let handled = matches!(sec.as_str(), "limits" | "reservations");
                        let keys: Vec<String> = match r {
                            Json::Object(m) if handled => m.keys().cloned().collect(),
                            _ => vec![String::new()],
                        };
                        for rk in keys {
                            if ["cpus", "memory"].contains(&rk.as_str()) {
                                continue;
                            }
                            let full = if rk.is_empty() {
                                format!("{key}.{sec}")
                            } else {
                                format!("{key}.{sec}.{rk}")
                            };
                            let message = match rk.as_str() {
                                "pids" => "Kubernetes limits process ids per node (the kubelet's podPidsLimit), not per container",
                                "devices" | "generic_resources" => "use a device plugin and its resource (nvidia.com/gpu) in resources.limits",
                                _ => "no counterpart in resources",
                            };
                            self.note(service, &full, Kind::NotTranslated, message.to_string());
                        }
                    }
                }
                "restart_policy" => {
                    let Json::Object(p) = v else { continue };
                    for rk in p.keys() {
                        if rk == "delay" || rk == "window" {
                            self.note(
                                service,
                                &format!("{key}.{rk}"),
                                Kind::NotTranslated,
                                "the kubelet's back-off applies (10s, doubling up to 5 minutes)".to_string(),
                            );
                        }
                    }
                }
                _ if DEPLOY_HANDLED.contains(&k.as_str()) => {}
                "placement" => self.note(
                    service,
                    &key,
                    Kind::NotTranslated,
                    "Swarm placement: use nodeSelector, affinity or topologySpreadConstraints".to_string(),
                ),
                "update_config" | "rollback_config" => self.note(
                    service,
                    &key,
                    Kind::NotTranslated,
                    "use the Deployment's strategy (maxSurge, maxUnavailable) and `kubectl rollout undo`".to_string(),
                ),
                _ => self.note(
                    service,
                    &key,
                    Kind::NotTranslated,
                    "wharf knows no Kubernetes counterpart: check that the service does not rely on it".to_string(),
                ),
            }
        }
    }

    /// Findings about the project as a whole.
    pub(crate) fn project_findings(&mut self) {
        if !self.p.disabled_services.is_empty() {
            let names: Vec<String> = self.p.disabled_services.keys().cloned().collect();
            self.report.add(
                Section::Project,
                "profiles",
                Kind::Note,
                format!(
                    "services of inactive profiles are not exported: {} (activate profiles with --profile or COMPOSE_PROFILES to include them)",
                    names.join(", ")
                ),
            );
        }
    }
}
