//! Volumes, secrets and configs: named volumes -> PersistentVolumeClaims (or StatefulSet claim
//! templates), bind mounts -> hostPath only when allowed, tmpfs -> memory-backed emptyDirs,
//! secrets and configs -> Secrets and ConfigMaps mounted where Compose mounts them.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapVolumeSource, EmptyDirVolumeSource, HostPathVolumeSource, KeyToPath,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PersistentVolumeClaimVolumeSource, Secret,
    SecretVolumeSource, Volume, VolumeMount, VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::Value as Json;
use wharf_model::project::{FileObject, FileReference, VolumeType};

use crate::report::{Kind, Section};
use crate::translate::Translator;
use crate::workload::{Pod, is_qualified_name, json_text, strings};
use crate::{Error, name};

/// What a claim asks for: Compose volumes have no size.
pub const CLAIM_SIZE: &str = "1Gi";

impl Translator<'_> {
    /// The claim a named volume is mounted from.
    pub fn claim_name(&self, volume: &str) -> String {
        match self.p.volumes.get(volume) {
            Some(v) if v.external => name::label(&v.name),
            _ => name::label(volume),
        }
    }

    /// Whether a claim this export writes can be mounted by one node only (ReadWriteOnce).
    pub fn claim_is_single_node(&self, claim: &str) -> bool {
        self.volume_users.iter().any(|(v, users)| {
            self.claim_name(v) == claim
                && users.len() == 1
                && !self.p.volumes.get(v).is_some_and(|t| t.external)
        })
    }

    fn claim(&self, volume: &str, claim: &str, mode: &str) -> PersistentVolumeClaim {
        let mut meta = self.meta(claim, None);
        if let Some(top) = self.p.volumes.get(volume) {
            let a: BTreeMap<String, String> = top
                .labels
                .iter()
                .filter(|(k, _)| is_qualified_name(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            meta.annotations = (!a.is_empty()).then_some(a);
        }
        PersistentVolumeClaim {
            metadata: meta,
            spec: Some(PersistentVolumeClaimSpec {
                access_modes: Some(vec![mode.to_string()]),
                resources: Some(VolumeResourceRequirements {
                    requests: Some(BTreeMap::from([(
                        "storage".to_string(),
                        Quantity(CLAIM_SIZE.to_string()),
                    )])),
                    ..VolumeResourceRequirements::default()
                }),
                ..PersistentVolumeClaimSpec::default()
            }),
            ..PersistentVolumeClaim::default()
        }
    }

    /// The mounts of one service's container; the volumes they need are added to `pod`.
    pub(crate) fn mounts(
        &mut self,
        service: &str,
        pod: &mut Pod,
    ) -> Result<Vec<VolumeMount>, Error> {
        let s = self.service(service);
        let kube = self.kube(service);
        let root = self.root_of[service].clone();
        let mut mounts = Vec::new();
        for (i, v) in s.volumes.iter().enumerate() {
            let index = (i + 1).to_string();
            let sub_path = v
                .options
                .get("volume")
                .and_then(|o| o.get("subpath"))
                .and_then(Json::as_str)
                .map(str::to_string);
            let vol_name = match (v.kind, &v.source) {
                (VolumeType::Volume, Some(src)) => {
                    if self
                        .per_replica
                        .get(&root)
                        .is_some_and(|set| set.contains(src))
                    {
                        let claim = name::label(src);
                        if !pod
                            .claim_templates
                            .iter()
                            .any(|c| c.metadata.name.as_deref() == Some(claim.as_str()))
                        {
                            let mut t = self.claim(src, &claim, "ReadWriteOnce");
                            t.metadata.labels = None;
                            pod.claim_templates.push(t);
                        }
                        claim
                    } else {
                        pod.volume(Volume {
                            name: name::label(src),
                            persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                                claim_name: self.claim_name(src),
                                read_only: None,
                            }),
                            ..Volume::default()
                        })
                    }
                }
                (VolumeType::Volume, None) => {
                    self.note(
                        service,
                        "volumes",
                        Kind::Approximate,
                        format!("anonymous volume at {}: an emptyDir, which lives as long as the Pod (Docker keeps it until the container is removed)", v.target),
                    );
                    pod.volume(Volume {
                        name: name::join(&[&kube, "anon", &index]),
                        empty_dir: Some(EmptyDirVolumeSource::default()),
                        ..Volume::default()
                    })
                }
                (VolumeType::Bind, Some(src)) => {
                    let shown = self.shown_path(src);
                    if !self.o.allow_host_paths {
                        self.note(
                            service,
                            "volumes",
                            Kind::NotTranslated,
                            format!("bind mount {shown} -> {}: left out, a Pod cannot see this machine's files; put them in the image, a ConfigMap or a volume, or export with --allow-host-paths to mount the same path of the node (hostPath)", v.target),
                        );
                        continue;
                    }
                    self.note(
                        service,
                        "volumes",
                        Kind::Approximate,
                        format!("bind mount {shown} -> {}: hostPath {src}, the file or directory of whichever node runs the Pod, which must have it", v.target),
                    );
                    let create = v
                        .options
                        .get("bind")
                        .and_then(|b| b.get("create_host_path"))
                        .and_then(Json::as_bool)
                        == Some(true);
                    pod.volume(Volume {
                        name: name::join(&[&kube, "host", &index]),
                        host_path: Some(HostPathVolumeSource {
                            path: src.clone(),
                            type_: create.then(|| "DirectoryOrCreate".to_string()),
                        }),
                        ..Volume::default()
                    })
                }
                (VolumeType::Tmpfs, _) => {
                    let size = v
                        .options
                        .get("tmpfs")
                        .and_then(|t| t.get("size"))
                        .and_then(byte_quantity);
                    if v.options.get("tmpfs").and_then(|t| t.get("mode")).is_some() {
                        self.note(
                            service,
                            "volumes",
                            Kind::NotTranslated,
                            format!(
                                "tmpfs mode at {}: an emptyDir's mode is set by Kubernetes",
                                v.target
                            ),
                        );
                    }
                    pod.volume(memory_volume(name::join(&[&kube, "tmpfs", &index]), size))
                }
                (kind, _) => {
                    self.note(
                        service,
                        "volumes",
                        Kind::NotTranslated,
                        format!(
                            "{} mount at {}: no Kubernetes counterpart",
                            kind.as_str(),
                            v.target
                        ),
                    );
                    continue;
                }
            };
            for (group, opts) in &v.options {
                let handled: &[&str] = match group.as_str() {
                    "volume" => &["nocopy", "subpath"],
                    "tmpfs" => &["size", "mode"],
                    "bind" => &["create_host_path"],
                    _ => &[],
                };
                let keys: Vec<String> = match opts {
                    Json::Object(m) => m.keys().cloned().collect(),
                    _ => vec![String::new()],
                };
                for k in keys.iter().filter(|k| !handled.contains(&k.as_str())) {
                    let what = if k.is_empty() {
                        group.clone()
                    } else {
                        format!("{group}.{k}")
                    };
                    self.note(
                        service,
                        "volumes",
                        Kind::NotTranslated,
                        format!(
                            "option `{what}` of the mount at {}: no Kubernetes counterpart",
                            v.target
                        ),
                    );
                }
            }
            mounts.push(VolumeMount {
                name: vol_name,
                mount_path: v.target.clone(),
                read_only: v.read_only.then_some(true),
                sub_path,
                ..VolumeMount::default()
            });
        }
        if let Some(t) = s.extra.get("tmpfs") {
            for (i, entry) in strings(t).into_iter().enumerate() {
                let (path, opts) = entry.split_once(':').unwrap_or((entry.as_str(), ""));
                let size = opts
                    .split(',')
                    .find_map(|o| o.strip_prefix("size="))
                    .and_then(|s| byte_quantity(&Json::String(s.to_string())));
                let vol = pod.volume(memory_volume(
                    name::join(&[&kube, "tmp", &(i + 1).to_string()]),
                    size,
                ));
                mounts.push(VolumeMount {
                    name: vol,
                    mount_path: path.to_string(),
                    ..VolumeMount::default()
                });
            }
        }
        if let Some(size) = s.extra.get("shm_size").and_then(byte_quantity) {
            self.note(
                service,
                "shm_size",
                Kind::Approximate,
                format!("a memory-backed emptyDir of {} at /dev/shm, counted against the container's memory limit", size.0),
            );
            let vol = pod.volume(memory_volume(name::join(&[&kube, "shm"]), Some(size)));
            mounts.push(VolumeMount {
                name: vol,
                mount_path: "/dev/shm".to_string(),
                ..VolumeMount::default()
            });
        }
        for r in &s.secrets {
            let target = match &r.target {
                None => format!("/run/secrets/{}", r.source),
                Some(t) if t.starts_with('/') => t.clone(),
                Some(t) => format!("/run/secrets/{t}"),
            };
            let top = self.p.secrets.get(&r.source);
            let object = match top {
                Some(t) if t.external => name::label(&t.name),
                _ => name::label(&r.source),
            };
            let key = name::data_key(&r.source);
            let vol = pod.volume(Volume {
                name: name::join(&["secret", &r.source]),
                secret: Some(SecretVolumeSource {
                    secret_name: Some(object),
                    items: Some(vec![item(&key, r)]),
                    ..SecretVolumeSource::default()
                }),
                ..Volume::default()
            });
            mounts.push(file_mount(vol, target, key));
            self.owner_note(service, "secrets", r);
        }
        for r in &s.configs {
            let target = match &r.target {
                None => format!("/{}", r.source),
                Some(t) => t.clone(),
            };
            let top = self.p.configs.get(&r.source);
            let object = match top {
                Some(t) if t.external => name::label(&t.name),
                _ => name::label(&r.source),
            };
            let key = name::data_key(&r.source);
            let vol = pod.volume(Volume {
                name: name::join(&["config", &r.source]),
                config_map: Some(ConfigMapVolumeSource {
                    name: object,
                    items: Some(vec![item(&key, r)]),
                    ..ConfigMapVolumeSource::default()
                }),
                ..Volume::default()
            });
            mounts.push(file_mount(vol, target, key));
            self.owner_note(service, "configs", r);
        }
        Ok(mounts)
    }

    /// A host path as the user wrote it: relative to the project directory when below it.
    fn shown_path(&self, path: &str) -> String {
        match std::path::Path::new(path).strip_prefix(&self.p.working_dir) {
            Ok(rest) => format!("./{}", rest.display()),
            Err(_) => path.to_string(),
        }
    }

    fn owner_note(&mut self, service: &str, key: &str, r: &FileReference) {
        if r.uid.is_some() || r.gid.is_some() {
            let owner: Vec<String> = [("uid", &r.uid), ("gid", &r.gid)]
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} {v}")))
                .collect();
            self.note(
                service,
                key,
                Kind::NotTranslated,
                format!("{} of {}: the files of Secret and ConfigMap volumes belong to root (a Pod-wide securityContext.fsGroup can give a group access)", owner.join(", "), r.source),
            );
        }
    }

    /// PersistentVolumeClaims, Secrets and ConfigMaps of the project's volumes, secrets and
    /// configs (those the exported services use).
    pub(crate) fn storage(&mut self) -> Result<(), Error> {
        for (vol, users) in self.volume_users.clone() {
            let section = Section::Volume(vol.clone());
            let Some(top) = self.p.volumes.get(&vol) else {
                continue;
            };
            if top.external {
                self.report.add(
                    section.clone(),
                    "external",
                    Kind::Note,
                    format!(
                        "expects an existing PersistentVolumeClaim `{}` in the namespace",
                        self.claim_name(&vol)
                    ),
                );
            } else if users
                .iter()
                .all(|r| self.per_replica.get(r).is_some_and(|s| s.contains(&vol)))
            {
                self.report.add(
                    section.clone(),
                    "size",
                    Kind::Approximate,
                    format!("no size in Compose: each replica's claim asks for {CLAIM_SIZE} of the default StorageClass; edit volumeClaimTemplates[].spec.resources.requests.storage"),
                );
            } else {
                let mode = if users.len() > 1 {
                    let names: Vec<String> = users.iter().map(|u| self.kube(u)).collect();
                    self.report.add(
                        section.clone(),
                        "access",
                        Kind::Approximate,
                        format!("mounted by the Pods of {}: its claim asks for ReadWriteMany, which needs a StorageClass that supports it (NFS, CephFS, ...)", names.join(", ")),
                    );
                    "ReadWriteMany"
                } else {
                    "ReadWriteOnce"
                };
                let claim = self.claim(&vol, &self.claim_name(&vol), mode);
                self.m.persistent_volume_claims.push(claim);
                self.report.add(
                    section.clone(),
                    "size",
                    Kind::Approximate,
                    format!("no size in Compose: the claim asks for {CLAIM_SIZE} of the default StorageClass; edit spec.resources.requests.storage"),
                );
            }
            if let Some(d) = &top.driver
                && d != "local"
            {
                self.report.add(
                    section.clone(),
                    "driver",
                    Kind::NotTranslated,
                    format!("`{d}`: choose a StorageClass that provides such storage (spec.storageClassName)"),
                );
            }
            for k in top.extra.keys() {
                if k.starts_with("x-") {
                    continue;
                }
                self.report.add(
                    section.clone(),
                    k,
                    Kind::NotTranslated,
                    "no PersistentVolumeClaim counterpart: set the StorageClass's parameters instead".to_string(),
                );
            }
        }

        for (key, top) in self.p.secrets.clone() {
            let section = Section::Secret(key.clone());
            if top.external {
                self.report.add(
                    section,
                    "external",
                    Kind::Note,
                    format!(
                        "expects an existing Secret `{}` with the key `{}`",
                        name::label(&top.name),
                        name::data_key(&key)
                    ),
                );
                continue;
            }
            let bytes = self.contents(&format!("secret `{key}`"), &top)?;
            self.m.secrets.push(Secret {
                metadata: self.meta(&name::label(&key), None),
                type_: Some("Opaque".to_string()),
                data: Some(BTreeMap::from([(name::data_key(&key), ByteString(bytes))])),
                ..Secret::default()
            });
            self.report.add(
                section.clone(),
                "file",
                Kind::Note,
                format!("its contents are in Secret `{}` (base64, not encrypted): keep the manifests private, or mark it `external: true` and create the Secret in the cluster", name::label(&key)),
            );
            self.object_extra(&section, &top);
        }
        for (key, top) in self.p.configs.clone() {
            let section = Section::Config(key.clone());
            if top.external {
                self.report.add(
                    section,
                    "external",
                    Kind::Note,
                    format!(
                        "expects an existing ConfigMap `{}` with the key `{}`",
                        name::label(&top.name),
                        name::data_key(&key)
                    ),
                );
                continue;
            }
            let bytes = self.contents(&format!("config `{key}`"), &top)?;
            let k = name::data_key(&key);
            let (data, binary_data) = match String::from_utf8(bytes) {
                Ok(text) => (Some(BTreeMap::from([(k, text)])), None),
                Err(e) => (
                    None,
                    Some(BTreeMap::from([(k, ByteString(e.into_bytes()))])),
                ),
            };
            self.m.config_maps.push(ConfigMap {
                metadata: self.meta(&name::label(&key), None),
                data,
                binary_data,
                ..ConfigMap::default()
            });
            self.object_extra(&section, &top);
        }
        Ok(())
    }

    fn object_extra(&mut self, section: &Section, top: &FileObject) {
        for k in top.extra.keys() {
            if k.starts_with("x-") || k == "name" {
                continue;
            }
            self.report.add(
                section.clone(),
                k,
                Kind::NotTranslated,
                "no Kubernetes counterpart".to_string(),
            );
        }
    }

    fn contents(&self, what: &str, top: &FileObject) -> Result<Vec<u8>, Error> {
        if let Some(path) = &top.file {
            return std::fs::read(path).map_err(|source| Error::Read {
                what: format!("the file of {what}"),
                path: path.clone(),
                help: "fix the path, or mark it `external: true` and create it in the cluster",
                source,
            });
        }
        if let Some(var) = &top.environment {
            return self
                .o
                .environment
                .get(var)
                .map(|v| v.as_bytes().to_vec())
                .ok_or_else(|| Error::MissingVariable {
                    what: what.to_string(),
                    variable: var.clone(),
                });
        }
        Ok(top.content.clone().unwrap_or_default().into_bytes())
    }
}

fn item(key: &str, r: &FileReference) -> KeyToPath {
    KeyToPath {
        key: key.to_string(),
        path: key.to_string(),
        mode: r.mode.and_then(|m| i32::try_from(m).ok()),
        ..KeyToPath::default()
    }
}

fn file_mount(volume: String, target: String, key: String) -> VolumeMount {
    VolumeMount {
        name: volume,
        mount_path: target,
        sub_path: Some(key),
        read_only: Some(true),
        ..VolumeMount::default()
    }
}

fn memory_volume(name: String, size: Option<Quantity>) -> Volume {
    Volume {
        name,
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: size,
            ..EmptyDirVolumeSource::default()
        }),
        ..Volume::default()
    }
}

fn byte_quantity(v: &Json) -> Option<Quantity> {
    crate::workload::memory(&Json::String(json_text(v)))
}
