//! `depends_on` -> init containers that wait, before the Pod's containers start:
//! - `service_started` and `service_healthy`: until the dependency's headless Service has a
//!   ready endpoint (DNS answers for a headless Service list only ready Pods), with busybox's
//!   `nslookup`;
//! - `service_completed_successfully`: the dependency runs as a Job, and the init container asks
//!   the Kubernetes API until the Job is Complete (or fails when it Failed), with curl and a
//!   token of the ServiceAccount `wharf-job-waiter`, which may only `get` those Jobs. The token is
//!   mounted into the waiting init container only.

use k8s_openapi::api::core::v1::{
    ConfigMapProjection, Container, DownwardAPIProjection, DownwardAPIVolumeFile, KeyToPath,
    ObjectFieldSelector, ProjectedVolumeSource, ServiceAccount, ServiceAccountTokenProjection,
    Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use wharf_model::project::Condition;

use crate::report::Kind;
use crate::translate::Translator;
use crate::workload::Pod;
use crate::{env, name};

/// The image of the readiness waits: a shell and `nslookup`, nothing else.
pub const WAIT_IMAGE: &str = "busybox:1.37";
/// The image of the Job waits: a shell and curl.
pub const JOB_WAIT_IMAGE: &str = "curlimages/curl:8.11.1";
/// The ServiceAccount (and Role, RoleBinding) whose token reads the waited-for Jobs.
pub const JOB_WAITER: &str = "wharf-job-waiter";
const API_VOLUME: &str = "wharf-api-access";
const API_DIR: &str = "/var/run/secrets/wharf";

/// The shell script that waits until `service` (a headless Service) has a ready endpoint. It
/// looks the name up fully qualified (the first `search` domain of the Pod is
/// `<namespace>.svc.<cluster domain>`), as busybox's nslookup does not use search domains
/// reliably.
pub fn readiness_script(service: &str, what: &str) -> String {
    format!(
        r#"while read -r key domain rest; do [ "$key" = search ] && break; done < /etc/resolv.conf
until nslookup "{service}.$domain." 2>/dev/null | grep -q '^Name:'; do
  echo "waiting for {what}: Service {service} has no ready endpoint yet"
  sleep 2
done
"#
    )
}

/// The shell script that waits until Job `job` is complete, and fails when the Job failed.
pub fn job_script(job: &str) -> String {
    format!(
        r#"dir={API_DIR}
url=https://kubernetes.default.svc/apis/batch/v1/namespaces/`cat $dir/namespace`/jobs/{job}
while :; do
  token=`cat $dir/token`
  status=`curl -sS --cacert $dir/ca.crt -H "Authorization: Bearer $token" "$url" | tr -d ' \n'`
  case "$status" in
    *'"type":"Complete","status":"True"'*) exit 0 ;;
    *'"type":"Failed","status":"True"'*) echo "job {job} failed: see kubectl logs job/{job}" >&2; exit 1 ;;
  esac
  echo "waiting for job {job} to complete"
  sleep 2
done
"#
    )
}

impl Translator<'_> {
    /// The wait containers of a group's Pod: one per dependency outside the group, in the order
    /// the group's services name them.
    pub(crate) fn waits(
        &mut self,
        root: &str,
        members: &[String],
        pod: &mut Pod,
    ) -> Vec<Container> {
        let mut deps: Vec<(String, Condition)> = Vec::new();
        for m in members {
            let s = self.service(m);
            for (dep, d) in &s.depends_on {
                if members.contains(dep) {
                    continue;
                }
                let key = format!("depends_on.{dep}");
                if !self.p.services.contains_key(dep) {
                    self.note(
                        m,
                        &key,
                        Kind::NotTranslated,
                        format!("`{dep}` is not exported (its profile is not active): nothing waits for it"),
                    );
                    continue;
                }
                if d.restart {
                    self.note(
                        m,
                        &format!("{key}.restart"),
                        Kind::NotTranslated,
                        format!("Kubernetes does not restart these Pods when `{dep}` restarts"),
                    );
                }
                if !d.required {
                    self.note(
                        m,
                        &format!("{key}.required"),
                        Kind::Approximate,
                        format!("false: the Pod still waits for `{dep}`, without end"),
                    );
                }
                let condition = if self.jobs.contains(&self.root_of[dep])
                    && d.condition == Condition::CompletedSuccessfully
                {
                    Condition::CompletedSuccessfully
                } else if d.condition == Condition::CompletedSuccessfully {
                    Condition::Healthy
                } else {
                    d.condition
                };
                let wait = name::join(&["wait-for", dep]);
                let message = match condition {
                    Condition::CompletedSuccessfully => format!(
                        "{} -> init container `{wait}` waits until Job `{}` is complete, through the Kubernetes API (ServiceAccount {JOB_WAITER})",
                        d.condition.as_str(),
                        self.kube(&self.root_of[dep])
                    ),
                    _ => format!(
                        "{} -> init container `{wait}` waits until Service `{}` has a ready endpoint",
                        d.condition.as_str(),
                        self.readiness_service(dep)
                    ),
                };
                self.note(m, &key, Kind::Note, message);
                let dep_has_check = self
                    .service(dep)
                    .healthcheck
                    .as_ref()
                    .is_some_and(|h| h.is_enabled() && h.test.is_some());
                if d.condition == Condition::Started && dep_has_check {
                    self.note(
                        m,
                        &key,
                        Kind::Approximate,
                        format!("service_started, but `{dep}` has a healthcheck, so its Pods are ready only once healthy: this waits longer than Compose does"),
                    );
                }
                if let Some(existing) = deps.iter_mut().find(|(d, _)| d == dep) {
                    if existing.1 == Condition::Started {
                        existing.1 = condition;
                    }
                } else {
                    deps.push((dep.clone(), condition));
                }
            }
        }
        let mut out = Vec::new();
        for (dep, condition) in deps {
            let wait = name::join(&["wait-for", &dep]);
            if condition == Condition::CompletedSuccessfully {
                let job = self.kube(&self.root_of[&dep]);
                pod.needs_api_access = true;
                let vol = pod.volume(api_volume());
                out.push(Container {
                    name: wait.clone(),
                    image: Some(JOB_WAIT_IMAGE.to_string()),
                    command: Some(vec![
                        "sh".to_string(),
                        "-c".to_string(),
                        env::escape_dollars(&job_script(&job)),
                    ]),
                    volume_mounts: Some(vec![VolumeMount {
                        name: vol,
                        mount_path: API_DIR.to_string(),
                        read_only: Some(true),
                        ..VolumeMount::default()
                    }]),
                    ..Container::default()
                });
                if self.internal_only(root) {
                    self.note(
                        root,
                        "networks",
                        Kind::Approximate,
                        format!("its networks are all internal, so NetworkPolicy internal-egress keeps `{wait}` from the Kubernetes API: admit your API server's address there"),
                    );
                }
            } else {
                let what = match condition {
                    Condition::Healthy => format!("{dep} to be healthy"),
                    _ => format!("{dep} to start"),
                };
                out.push(Container {
                    name: wait,
                    image: Some(WAIT_IMAGE.to_string()),
                    command: Some(vec![
                        "sh".to_string(),
                        "-c".to_string(),
                        env::escape_dollars(&readiness_script(
                            &self.readiness_service(&dep),
                            &what,
                        )),
                    ]),
                    ..Container::default()
                });
            }
        }
        out
    }

    /// The ServiceAccount, Role and RoleBinding of the Job waits.
    pub(crate) fn job_access(&mut self) {
        if self.waited_jobs.is_empty() {
            return;
        }
        let mut jobs: Vec<String> = self
            .waited_jobs
            .iter()
            .map(|j| self.kube(&self.root_of[j]))
            .collect();
        jobs.sort();
        jobs.dedup();
        self.m.service_accounts.push(ServiceAccount {
            metadata: self.meta(JOB_WAITER, None),
            automount_service_account_token: Some(false),
            ..ServiceAccount::default()
        });
        self.m.roles.push(Role {
            metadata: self.meta(JOB_WAITER, None),
            rules: Some(vec![PolicyRule {
                api_groups: Some(vec!["batch".to_string()]),
                resources: Some(vec!["jobs".to_string()]),
                verbs: vec!["get".to_string()],
                resource_names: Some(jobs),
                ..PolicyRule::default()
            }]),
        });
        self.m.role_bindings.push(RoleBinding {
            metadata: self.meta(JOB_WAITER, None),
            role_ref: RoleRef {
                api_group: Some("rbac.authorization.k8s.io".to_string()),
                kind: "Role".to_string(),
                name: JOB_WAITER.to_string(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".to_string(),
                name: JOB_WAITER.to_string(),
                namespace: Some(self.ns.clone()),
                ..Subject::default()
            }]),
        });
    }
}

/// The token, CA certificate and namespace that a Job wait reads, projected for it alone.
fn api_volume() -> Volume {
    Volume {
        name: API_VOLUME.to_string(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![
                VolumeProjection {
                    service_account_token: Some(ServiceAccountTokenProjection {
                        path: "token".to_string(),
                        expiration_seconds: Some(3600),
                        ..ServiceAccountTokenProjection::default()
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    config_map: Some(ConfigMapProjection {
                        name: "kube-root-ca.crt".to_string(),
                        items: Some(vec![KeyToPath {
                            key: "ca.crt".to_string(),
                            path: "ca.crt".to_string(),
                            ..KeyToPath::default()
                        }]),
                        optional: None,
                    }),
                    ..VolumeProjection::default()
                },
                VolumeProjection {
                    downward_api: Some(DownwardAPIProjection {
                        items: Some(vec![DownwardAPIVolumeFile {
                            path: "namespace".to_string(),
                            field_ref: Some(ObjectFieldSelector {
                                field_path: "metadata.namespace".to_string(),
                                api_version: None,
                            }),
                            ..DownwardAPIVolumeFile::default()
                        }]),
                    }),
                    ..VolumeProjection::default()
                },
            ]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}
