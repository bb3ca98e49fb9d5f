//! The objects of an export and their YAML: one stream (`---` between documents) or one file per
//! kind, numbered so that `kubectl apply -f DIR` creates them in a working order (the namespace
//! first, what Pods need before the Pods).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, PersistentVolumeClaim, Secret, Service, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value as Json;

use crate::Error;

/// Every object of an export, by kind; each list sorted by name.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Manifests {
    pub namespaces: Vec<Namespace>,
    pub service_accounts: Vec<ServiceAccount>,
    pub roles: Vec<Role>,
    pub role_bindings: Vec<RoleBinding>,
    pub secrets: Vec<Secret>,
    pub config_maps: Vec<ConfigMap>,
    pub persistent_volume_claims: Vec<PersistentVolumeClaim>,
    pub services: Vec<Service>,
    pub network_policies: Vec<NetworkPolicy>,
    pub jobs: Vec<Job>,
    pub deployments: Vec<Deployment>,
    pub stateful_sets: Vec<StatefulSet>,
    pub ingresses: Vec<Ingress>,
}

/// One object, serialised.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub kind: &'static str,
    pub name: String,
    pub value: Json,
}

/// Calls `$f!(field, "Kind", "file-name")` for each kind, in the order of application.
macro_rules! each_kind {
    ($f:ident) => {
        $f!(namespaces, "Namespace", "00-namespace");
        $f!(service_accounts, "ServiceAccount", "10-serviceaccount");
        $f!(roles, "Role", "11-role");
        $f!(role_bindings, "RoleBinding", "12-rolebinding");
        $f!(secrets, "Secret", "20-secret");
        $f!(config_maps, "ConfigMap", "21-configmap");
        $f!(
            persistent_volume_claims,
            "PersistentVolumeClaim",
            "22-persistentvolumeclaim"
        );
        $f!(services, "Service", "30-service");
        $f!(network_policies, "NetworkPolicy", "31-networkpolicy");
        $f!(jobs, "Job", "40-job");
        $f!(deployments, "Deployment", "41-deployment");
        $f!(stateful_sets, "StatefulSet", "42-statefulset");
        $f!(ingresses, "Ingress", "50-ingress");
    };
}

/// The files `-o DIR` may write; others in the directory are left alone.
pub const FILE_NAMES: &[&str] = &[
    "00-namespace.yaml",
    "10-serviceaccount.yaml",
    "11-role.yaml",
    "12-rolebinding.yaml",
    "20-secret.yaml",
    "21-configmap.yaml",
    "22-persistentvolumeclaim.yaml",
    "30-service.yaml",
    "31-networkpolicy.yaml",
    "40-job.yaml",
    "41-deployment.yaml",
    "42-statefulset.yaml",
    "50-ingress.yaml",
];

fn name_of(meta: &ObjectMeta) -> String {
    meta.name.clone().unwrap_or_default()
}

impl Manifests {
    /// Sorts every list by name, so that output does not depend on the order of translation.
    pub(crate) fn sort(&mut self) {
        macro_rules! sort {
            ($field:ident, $kind:literal, $file:literal) => {
                self.$field.sort_by_key(|o| name_of(&o.metadata));
            };
        }
        each_kind!(sort);
    }

    /// Sets the namespace of every namespaced object.
    pub(crate) fn set_namespace(&mut self, ns: &str) {
        macro_rules! set {
            ($field:ident, $kind:literal, $file:literal) => {
                if $kind != "Namespace" {
                    for o in &mut self.$field {
                        o.metadata.namespace = Some(ns.to_string());
                    }
                }
            };
        }
        each_kind!(set);
    }

    /// Two objects of one kind with one name.
    pub(crate) fn first_duplicate(&self) -> Option<(&'static str, String)> {
        let mut found = None;
        macro_rules! check {
            ($field:ident, $kind:literal, $file:literal) => {
                if found.is_none() {
                    let mut names: Vec<String> =
                        self.$field.iter().map(|o| name_of(&o.metadata)).collect();
                    names.sort();
                    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
                        found = Some(($kind, w[0].clone()));
                    }
                }
            };
        }
        each_kind!(check);
        found
    }

    /// How many objects of each kind, in the order of application.
    pub fn counts(&self) -> Vec<(&'static str, usize)> {
        let mut out = Vec::new();
        macro_rules! count {
            ($field:ident, $kind:literal, $file:literal) => {
                out.push(($kind, self.$field.len()));
            };
        }
        each_kind!(count);
        out
    }

    /// Every object in the order of application.
    pub fn objects(&self) -> Vec<Object> {
        self.by_file().into_iter().flat_map(|(_, o)| o).collect()
    }

    fn by_file(&self) -> Vec<(&'static str, Vec<Object>)> {
        let mut out = Vec::new();
        macro_rules! collect {
            ($field:ident, $kind:literal, $file:literal) => {
                let objects: Vec<Object> = self
                    .$field
                    .iter()
                    .map(|o| Object {
                        kind: $kind,
                        name: name_of(&o.metadata),
                        value: serde_json::to_value(o).expect("Kubernetes objects serialise"),
                    })
                    .collect();
                out.push(($file, objects));
            };
        }
        each_kind!(collect);
        out
    }

    /// One YAML stream, every document after a `---` line.
    pub fn to_yaml(&self, header: &str) -> String {
        documents(header, &self.objects())
    }

    /// One file per kind that has objects: `(file name, contents)`.
    pub fn files(&self, header: &str) -> Vec<(String, String)> {
        self.by_file()
            .into_iter()
            .filter(|(_, objects)| !objects.is_empty())
            .map(|(file, objects)| (format!("{file}.yaml"), documents(header, &objects)))
            .collect()
    }

    /// Writes one file per kind into `dir` (created if missing), removing the files of kinds
    /// this export no longer has so that `kubectl apply -f DIR` sees only this export.
    pub fn write_dir(&self, dir: &std::path::Path, header: &str) -> Result<Vec<String>, Error> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let files = self.files(header);
        for stale in FILE_NAMES {
            if !files.iter().any(|(n, _)| n == stale) {
                let path = dir.join(stale);
                match std::fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(source) => return Err(Error::Write { path, source }),
                }
            }
        }
        for (name, text) in &files {
            let path = dir.join(name);
            std::fs::write(&path, text).map_err(|source| Error::Write { path, source })?;
        }
        Ok(files.into_iter().map(|(n, _)| n).collect())
    }
}

fn documents(header: &str, objects: &[Object]) -> String {
    let mut out = String::new();
    for line in header.lines() {
        out.push_str("# ");
        out.push_str(line);
        out.push('\n');
    }
    for o in objects {
        out.push_str("---\n");
        out.push_str(&wharf_model::config::to_yaml(&o.value));
    }
    out
}
