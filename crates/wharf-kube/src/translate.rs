//! The walk of one export: decide (names, Pod groups, which services are Jobs or StatefulSets,
//! which volumes are per replica), then build each kind of object, then check that every key was
//! looked at.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use wharf_model::Project;
use wharf_model::project::{Condition, NetworkMode, Service, VolumeType};

use crate::report::{Kind, Report, Section};
use crate::{Error, Manifests, Options, Translation, name};
use wharf_router::route::{self, Route};

pub const LABEL_NAME: &str = "app.kubernetes.io/name";
pub const LABEL_PART_OF: &str = "app.kubernetes.io/part-of";
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";
pub const LABEL_SERVICE: &str = "wharf.io/service";

pub(crate) struct Translator<'a> {
    pub p: &'a Project,
    pub o: &'a Options,
    pub ns: String,
    /// Whether the namespace is the project's (and a Namespace object is written).
    pub own_namespace: bool,
    /// Compose service name -> Kubernetes name.
    pub names: BTreeMap<String, String>,
    /// Compose service -> the service whose network stack it joins (itself when none).
    pub root_of: BTreeMap<String, String>,
    /// Group root -> its services, root first, then in dependency order.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Roots that run as Jobs (something waits for them to complete).
    pub jobs: BTreeSet<String>,
    /// Root -> named volumes it gets one of per replica (StatefulSet volumeClaimTemplates).
    pub per_replica: BTreeMap<String, BTreeSet<String>>,
    /// Named volume -> the roots whose Pods mount it.
    pub volume_users: BTreeMap<String, BTreeSet<String>>,
    /// Compose service -> its routes.
    pub routes: BTreeMap<String, Vec<Route>>,
    /// Services that some init container waits for (by readiness).
    pub wait_targets: BTreeSet<String>,
    /// Jobs that some init container waits for.
    pub waited_jobs: BTreeSet<String>,
    pub m: Manifests,
    pub report: Report,
}

impl<'a> Translator<'a> {
    pub fn new(p: &'a Project, o: &'a Options) -> Result<Self, Error> {
        let (ns, own_namespace) = match &o.namespace {
            Some(ns) if name::is_label(ns) => (ns.clone(), false),
            Some(ns) => return Err(Error::Namespace(ns.clone())),
            None => (name::label(&p.name), true),
        };

        let mut names = BTreeMap::new();
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        for s in p.services.keys() {
            let k = name::label(s);
            if let Some(first) = taken.insert(k.clone(), s.clone()) {
                return Err(Error::NameClash {
                    name: k,
                    first,
                    second: s.clone(),
                });
            }
            names.insert(s.clone(), k);
        }

        let mut root_of = BTreeMap::new();
        for s in p.services.keys() {
            let mut root = s.clone();
            let mut seen = BTreeSet::new();
            while let Some(NetworkMode::Service(x)) = &p.services[&root].network_mode {
                if !p.services.contains_key(x) || !seen.insert(root.clone()) {
                    break;
                }
                root = x.clone();
            }
            root_of.insert(s.clone(), root);
        }
        let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for s in p.services_in_dependency_order() {
            groups
                .entry(root_of[s].clone())
                .or_default()
                .push(s.to_string());
        }
        for (root, members) in &mut groups {
            members.retain(|m| m != root);
            members.insert(0, root.clone());
        }

        let mut routes = BTreeMap::new();
        for (n, s) in &p.services {
            let r = route::parse(&s.labels).map_err(|source| Error::Route {
                service: n.clone(),
                source,
            })?;
            if !r.is_empty() {
                routes.insert(n.clone(), r);
            }
        }
        let all: Vec<(&str, &Route)> = routes
            .iter()
            .flat_map(|(s, rs)| rs.iter().map(move |r| (s.as_str(), r)))
            .collect();
        if let Some(tie) = route::find_tie(&all) {
            return Err(Error::RouteTie(tie));
        }

        let mut jobs = BTreeSet::new();
        let mut wait_targets = BTreeSet::new();
        let mut waited_jobs = BTreeSet::new();
        for (n, s) in &p.services {
            for (dep, d) in &s.depends_on {
                if !p.services.contains_key(dep) || root_of[dep] == root_of[n] {
                    continue;
                }
                if d.condition == Condition::CompletedSuccessfully {
                    jobs.insert(root_of[dep].clone());
                    waited_jobs.insert(dep.clone());
                } else {
                    wait_targets.insert(dep.clone());
                }
            }
        }

        let mut volume_users: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (n, s) in &p.services {
            for v in &s.volumes {
                if let (VolumeType::Volume, Some(src)) = (v.kind, &v.source) {
                    volume_users
                        .entry(src.clone())
                        .or_default()
                        .insert(root_of[n].clone());
                }
            }
        }
        let mut per_replica: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (root, members) in &groups {
            if p.services[root].replicas <= 1 || jobs.contains(root) {
                continue;
            }
            for m in members {
                for v in &p.services[m].volumes {
                    if let (VolumeType::Volume, Some(src)) = (v.kind, &v.source) {
                        let external = p.volumes.get(src).is_some_and(|t| t.external);
                        if !external && volume_users[src].len() == 1 {
                            per_replica
                                .entry(root.clone())
                                .or_default()
                                .insert(src.clone());
                        }
                    }
                }
            }
        }

        Ok(Translator {
            p,
            o,
            ns,
            own_namespace,
            names,
            root_of,
            groups,
            jobs,
            per_replica,
            volume_users,
            routes,
            wait_targets,
            waited_jobs,
            m: Manifests::default(),
            report: Report::default(),
        })
    }

    pub fn run(mut self) -> Result<Translation, Error> {
        let roots: Vec<String> = self
            .p
            .services_in_dependency_order()
            .into_iter()
            .filter(|s| self.root_of[*s] == *s)
            .map(str::to_string)
            .collect();
        for root in &roots {
            self.workload(root)?;
        }
        self.services();
        self.storage()?;
        self.network_policies();
        self.ingresses()?;
        self.job_access();
        if self.own_namespace {
            self.m.namespaces.push(Namespace {
                metadata: ObjectMeta {
                    name: Some(self.ns.clone()),
                    labels: Some(self.common_labels()),
                    ..ObjectMeta::default()
                },
                ..Namespace::default()
            });
        }
        self.project_findings();
        for name in self.p.services.keys() {
            self.coverage(name);
        }

        self.m.sort();
        self.m.set_namespace(&self.ns);
        if let Some((kind, name)) = self.m.first_duplicate() {
            return Err(Error::DuplicateObject { kind, name });
        }
        self.report.title = format!(
            "wharf export kubernetes: project {} -> namespace {} (Kubernetes {})",
            self.p.name, self.ns, self.o.kube_version
        );
        self.report.counts = self.m.counts();
        Ok(Translation {
            namespace: self.ns,
            manifests: self.m,
            report: self.report,
        })
    }

    /// The Kubernetes name of a Compose service.
    pub fn kube(&self, service: &str) -> String {
        self.names
            .get(service)
            .cloned()
            .unwrap_or_else(|| name::label(service))
    }

    pub fn service(&self, name: &str) -> &'a Service {
        &self.p.services[name]
    }

    pub fn note(&mut self, service: &str, key: &str, kind: Kind, message: String) {
        self.report
            .add(Section::Service(service.to_string()), key, kind, message);
    }

    pub fn common_labels(&self) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_PART_OF.to_string(), name::label_value(&self.p.name)),
            (LABEL_MANAGED_BY.to_string(), "wharf".to_string()),
        ])
    }

    /// The labels of an object that belongs to a service (Kubernetes name `kube`).
    pub fn service_labels(&self, kube: &str) -> BTreeMap<String, String> {
        let mut l = self.common_labels();
        l.insert(LABEL_NAME.to_string(), kube.to_string());
        l.insert(LABEL_SERVICE.to_string(), kube.to_string());
        l
    }

    /// Metadata with a name and labels; `service` is a Kubernetes service name.
    pub fn meta(&self, name: &str, service: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(match service {
                Some(s) => self.service_labels(s),
                None => self.common_labels(),
            }),
            ..ObjectMeta::default()
        }
    }

    /// The labels that select the Pods of a group root's workload.
    pub fn selector(&self, root: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            (LABEL_PART_OF.to_string(), name::label_value(&self.p.name)),
            (LABEL_SERVICE.to_string(), self.kube(root)),
        ])
    }

    /// The label that marks the Pods on a Compose network.
    pub fn network_label(network: &str) -> String {
        format!("wharf.io/network-{}", name::label(network))
    }

    /// The networks of a group's Pods (its root's; the others share its stack).
    pub fn pod_networks(&self, root: &str) -> Vec<String> {
        let s = self.service(root);
        match &s.network_mode {
            None | Some(NetworkMode::Bridge) => s.networks.keys().cloned().collect(),
            _ => Vec::new(),
        }
    }

    /// Whether every network of a group's Pods is `internal: true`.
    pub fn internal_only(&self, root: &str) -> bool {
        let nets = self.pod_networks(root);
        !nets.is_empty()
            && nets
                .iter()
                .all(|n| self.p.networks.get(n).is_some_and(|n| n.internal))
    }
}
