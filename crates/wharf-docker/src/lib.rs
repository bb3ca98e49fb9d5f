//! wharf-docker: wharf's [`Runtime`] on the Docker Engine API.
//!
//! The same supervisor, planner and router run on containers: every instance is a container
//! named and labelled as Docker Compose names and labels it (`<project>-<service>-<n>`,
//! `com.docker.compose.project`, `.service`, `.container-number`, `.oneoff`, `.config-hash`), so
//! that `docker ps --filter label=com.docker.compose.project=X` finds them and a later wharf
//! (after a daemon restart) adopts the running ones instead of starting them again
//! ([`Runtime::existing`]). Networks are `<project>_<network>` and volumes `<project>_<volume>`,
//! labelled with `.network` / `.volume`.
//!
//! The Engine does what it does best: health checks run in the Engine (the supervisor follows
//! its `health_status` events through [`InstanceHandle::health`] instead of probing), restart
//! policies are given to the Engine as well (restarts happen while the daemon is down; the
//! supervisor re-attaches when its own policy says to start again), exits come from `die`
//! events with their exit code.
//!
//! [`InstanceHandle::health`]: wharf_runtime::InstanceHandle::health

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use bollard::Docker;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{
    ContainerSummaryStateEnum, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, RemoveContainerOptionsBuilder, StopContainerOptionsBuilder,
    UploadToContainerOptionsBuilder,
};
use futures_util::StreamExt;
use wharf_model::Project;
use wharf_runtime::{
    ExecOutput, ExistingInstance, ExitStatus, InstanceHandle, InstanceSpec, NetworkModeSpec,
    Runtime, RuntimeError, Started,
};

mod attach;
pub mod container;
pub mod context;
pub mod image;
pub mod labels;

pub use attach::ContainerHandle;
use attach::{LogMarks, Since};
use container::ApiVersion;

/// Where build and pull progress goes, one line at a time: the project, then the line (which
/// starts with the service's name).
pub type Progress = Arc<dyn Fn(&str, &str) + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error(
        "no Docker Engine answers at {host}: {reason}; start it (`systemctl start docker`) or point DOCKER_HOST at its socket"
    )]
    NoEngine { host: String, reason: String },
    #[error(
        "the Docker Engine at {host} speaks API {found}, older than the 1.41 (Docker 20.10) wharf needs; upgrade the Engine"
    )]
    TooOld { host: String, found: String },
    #[error("service `{service}`: {reason}")]
    Service { service: String, reason: String },
    #[error("cannot read the build context {}: {reason}", path.display())]
    Context { path: PathBuf, reason: String },
    #[error("{0}")]
    Engine(String),
}

impl From<DockerError> for RuntimeError {
    fn from(e: DockerError) -> Self {
        RuntimeError::Other(e.to_string())
    }
}

/// The `content:` secrets and configs of a container as a tar to extract at `/`.
fn files_tar(files: &[container::FileCopy]) -> std::io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for f in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(f.content.len() as u64);
        header.set_mode(f.mode);
        header.set_uid(f.uid);
        header.set_gid(f.gid);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(
            &mut header,
            f.path.trim_start_matches('/'),
            f.content.as_slice(),
        )?;
    }
    builder.into_inner()
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The Docker Engine runtime. Cheap to share (`Arc`).
pub struct DockerRuntime {
    docker: Docker,
    host: String,
    api: ApiVersion,
    /// Projects as `prepare` last saw them: `start` takes each service's configuration here.
    projects: Mutex<HashMap<String, Arc<Project>>>,
    marks: LogMarks,
    progress: Progress,
}

impl std::fmt::Debug for DockerRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerRuntime")
            .field("host", &self.host)
            .field("api", &self.api)
            .finish()
    }
}

impl DockerRuntime {
    /// Connects to the Engine that `DOCKER_HOST` names (else the local socket) and pins the API
    /// version to what both sides speak (1.41 on Docker 20.10).
    pub async fn connect() -> Result<DockerRuntime, DockerError> {
        let host = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock".to_string());
        let no_engine = |reason: String| DockerError::NoEngine {
            host: host.clone(),
            reason,
        };
        let docker = Docker::connect_with_defaults().map_err(|e| no_engine(e.to_string()))?;
        let docker = tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version())
            .await
            .map_err(|_| no_engine("it did not answer within 10 s".into()))?
            .map_err(|e| no_engine(e.to_string()))?;
        let v = docker.client_version();
        let api = (v.major_version, v.minor_version);
        if api < (1, 41) {
            return Err(DockerError::TooOld {
                host,
                found: format!("{}.{}", api.0, api.1),
            });
        }
        Ok(DockerRuntime {
            docker,
            host,
            api,
            projects: Mutex::new(HashMap::new()),
            marks: Arc::new(Mutex::new(HashMap::new())),
            progress: Arc::new(|_, _| {}),
        })
    }

    /// Sends build and pull progress to `progress`, one line at a time.
    pub fn with_progress(mut self, progress: Progress) -> Self {
        self.progress = progress;
        self
    }

    /// The API version in use, `(1, 41)` on Docker 20.10.
    pub fn api_version(&self) -> ApiVersion {
        self.api
    }

    /// The bollard client, for what the trait does not cover.
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The addresses of a container on its networks, by network name (what the router
    /// connects to, and what `allow_from: service:x` compares a peer's address with).
    pub async fn network_addresses(
        &self,
        instance: &str,
    ) -> Result<Vec<(String, IpAddr)>, RuntimeError> {
        let inspect = self
            .docker
            .inspect_container(instance, None)
            .await
            .map_err(|e| RuntimeError::Instance {
                instance: instance.to_string(),
                reason: format!("cannot inspect its container: {e}"),
            })?;
        let mut out: Vec<(String, IpAddr)> = inspect
            .network_settings
            .and_then(|n| n.networks)
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(name, e)| {
                let ip = e.ip_address.filter(|i| !i.is_empty())?.parse().ok()?;
                Some((name, ip))
            })
            .collect();
        out.sort();
        Ok(out)
    }

    fn project(&self, name: &str) -> Option<Arc<Project>> {
        self.projects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    async fn create_networks(&self, project: &Project) -> Result<(), DockerError> {
        for (key, network) in &project.networks {
            let exists = match self.docker.inspect_network(&network.name, None).await {
                Ok(_) => true,
                Err(e) if is_not_found(&e) => false,
                Err(e) => {
                    return Err(DockerError::Engine(format!(
                        "cannot inspect network {}: {e}",
                        network.name
                    )));
                }
            };
            if exists {
                continue;
            }
            if network.external {
                return Err(DockerError::Engine(format!(
                    "network {} is declared external but does not exist; create it with `docker network create {}`",
                    network.name, network.name
                )));
            }
            let ipam_config: Vec<IpamConfig> = network
                .subnets
                .iter()
                .map(|s| IpamConfig {
                    subnet: Some(s.clone()),
                    ..Default::default()
                })
                .collect();
            let options = container::string_map(network.extra.get("driver_opts"));
            let request = NetworkCreateRequest {
                name: network.name.clone(),
                driver: Some(network.driver.clone().unwrap_or_else(|| "bridge".into())),
                internal: Some(network.internal),
                attachable: network.extra.get("attachable").and_then(|a| a.as_bool()),
                enable_ipv6: network.extra.get("enable_ipv6").and_then(|a| a.as_bool()),
                ipam: (!ipam_config.is_empty()).then(|| Ipam {
                    driver: Some("default".into()),
                    config: Some(ipam_config),
                    ..Default::default()
                }),
                options,
                labels: Some(labels::resource_labels(
                    &project.name,
                    labels::NETWORK,
                    key,
                    &network.labels,
                )),
                ..Default::default()
            };
            match self.docker.create_network(request).await {
                Ok(_) => {}
                // Created meanwhile by another `up` of the same project.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 409, ..
                }) => {}
                Err(e) => {
                    return Err(DockerError::Engine(format!(
                        "cannot create network {} (`{key}` of project {}): {e}",
                        network.name, project.name
                    )));
                }
            }
        }
        Ok(())
    }

    async fn create_volumes(&self, project: &Project) -> Result<(), DockerError> {
        for (key, volume) in &project.volumes {
            match self.docker.inspect_volume(&volume.name).await {
                Ok(_) => continue,
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(DockerError::Engine(format!(
                        "cannot inspect volume {}: {e}",
                        volume.name
                    )));
                }
            }
            if volume.external {
                return Err(DockerError::Engine(format!(
                    "volume {} is declared external but does not exist; create it with `docker volume create {}`",
                    volume.name, volume.name
                )));
            }
            let driver_opts = container::string_map(volume.extra.get("driver_opts"));
            let request = VolumeCreateRequest {
                name: Some(volume.name.clone()),
                driver: volume.driver.clone(),
                driver_opts,
                labels: Some(labels::resource_labels(
                    &project.name,
                    labels::VOLUME,
                    key,
                    &volume.labels,
                )),
                ..Default::default()
            };
            self.docker.create_volume(request).await.map_err(|e| {
                DockerError::Engine(format!(
                    "cannot create volume {} (`{key}` of project {}): {e}",
                    volume.name, project.name
                ))
            })?;
        }
        Ok(())
    }

    /// Builds or pulls what the project's services need: builds first, so that a service that
    /// runs the image another one builds finds it.
    pub async fn ensure_images(&self, project: &Project) -> Result<(), DockerError> {
        let (built, others): (Vec<_>, Vec<_>) =
            project.services.values().partition(|s| s.build.is_some());
        for service in built.into_iter().chain(others) {
            image::ensure(&self.docker, project, service, &self.progress).await?;
        }
        Ok(())
    }

    async fn create(&self, project: &Project, spec: &InstanceSpec) -> Result<(), RuntimeError> {
        let service = project.services.get(&spec.service).ok_or_else(|| {
            RuntimeError::Other(format!(
                "service `{}` is not part of project {}",
                spec.service, spec.project
            ))
        })?;
        let image = image::ensure(&self.docker, project, service, &self.progress).await?;
        let network_of = match spec.network.as_ref().map(|n| &n.mode) {
            Some(NetworkModeSpec::Instance(name)) => Some(
                self.docker
                    .inspect_container(name, None)
                    .await
                    .ok()
                    .and_then(|i| i.id)
                    .ok_or_else(|| RuntimeError::Start {
                        instance: spec.name.clone(),
                        program: image.clone(),
                        reason: format!(
                            "network_mode service:{} needs container {name}, which does not exist; start that service first",
                            spec.service
                        ),
                    })?,
            ),
            _ => None,
        };
        let plan = container::plan(
            project,
            service,
            spec,
            &image,
            self.api,
            network_of.as_deref(),
        )?;
        let options = CreateContainerOptionsBuilder::default()
            .name(&spec.name)
            .build();
        let created = self
            .docker
            .create_container(Some(options), plan.body)
            .await
            .map_err(|e| RuntimeError::Start {
                instance: spec.name.clone(),
                program: image.clone(),
                reason: format!("the Engine refused to create the container: {e}"),
            })?;
        for (network, endpoint) in plan.more_networks {
            let request = NetworkConnectRequest {
                container: created.id.clone(),
                endpoint_config: Some(endpoint),
            };
            self.docker
                .connect_network(&network, request)
                .await
                .map_err(|e| RuntimeError::Start {
                    instance: spec.name.clone(),
                    program: image.clone(),
                    reason: format!("cannot connect it to network {network}: {e}"),
                })?;
        }
        if !plan.files.is_empty() {
            let tar = files_tar(&plan.files).map_err(|e| RuntimeError::Start {
                instance: spec.name.clone(),
                program: image.clone(),
                reason: format!("cannot pack its secrets and configs: {e}"),
            })?;
            let options = UploadToContainerOptionsBuilder::default().path("/").build();
            self.docker
                .upload_to_container(
                    &created.id,
                    Some(options),
                    bollard::body_full(bytes::Bytes::from(tar)),
                )
                .await
                .map_err(|e| RuntimeError::Start {
                    instance: spec.name.clone(),
                    program: image.clone(),
                    reason: format!("cannot copy its secrets and configs into it: {e}"),
                })?;
        }
        Ok(())
    }

    async fn list(
        &self,
        filters: HashMap<String, Vec<String>>,
    ) -> Result<Vec<bollard::models::ContainerSummary>, RuntimeError> {
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        self.docker
            .list_containers(Some(options))
            .await
            .map_err(|e| RuntimeError::Other(format!("cannot list containers: {e}")))
    }

    async fn stop_and_remove(&self, id: &str, name: &str) -> Result<(), RuntimeError> {
        let fail = |what: &str, e: bollard::errors::Error| RuntimeError::Instance {
            instance: name.to_string(),
            reason: format!("cannot {what} its container: {e}"),
        };
        // The container's own stop timeout (its stop_grace_period) applies.
        match self
            .docker
            .stop_container(id, Some(StopContainerOptionsBuilder::default().build()))
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => return Ok(()),
            // 304: already stopped.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 304, ..
            }) => {}
            Err(e) => return Err(fail("stop", e)),
        }
        match self
            .docker
            .remove_container(
                id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await
        {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            // 409: a removal is already in progress.
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => {}
            Err(e) => return Err(fail("remove", e)),
        }
        self.marks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        Ok(())
    }
}

#[async_trait]
impl Runtime for DockerRuntime {
    fn name(&self) -> &'static str {
        "docker"
    }

    fn runs_images(&self, _project: &str) -> bool {
        true
    }

    fn distinct_addresses(&self, _project: &str) -> bool {
        true
    }

    /// Attaches to the instance's container when it is running (adoption, or the Engine
    /// restarted it by its restart policy), starts it when it exists stopped, and creates it
    /// otherwise. Recreating is `remove` then `start`.
    async fn start(&self, spec: &InstanceSpec) -> Result<Started, RuntimeError> {
        let project = self.project(&spec.project).ok_or_else(|| {
            RuntimeError::Other(format!(
                "project {} was not prepared on the Docker runtime; bring it up with `up`",
                spec.project
            ))
        })?;
        let inspect = |name: String| async move {
            match self.docker.inspect_container(&name, None).await {
                Ok(i) => Ok(Some(i)),
                Err(e) if is_not_found(&e) => Ok(None),
                Err(e) => Err(RuntimeError::Instance {
                    instance: name,
                    reason: format!("cannot inspect its container: {e}"),
                }),
            }
        };
        let mut since = Since::RunStart;
        let mut current = inspect(spec.name.clone()).await?;
        // The Engine is between two runs (its restart policy's back-off): wait for the next.
        for _ in 0..600 {
            let restarting = current
                .as_ref()
                .and_then(|i| i.state.as_ref())
                .and_then(|s| s.restarting)
                == Some(true);
            if !restarting {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            current = inspect(spec.name.clone()).await?;
        }
        let running = current
            .as_ref()
            .and_then(|i| i.state.as_ref())
            .and_then(|s| s.running)
            == Some(true);
        if running {
            let id = current
                .as_ref()
                .and_then(|i| i.id.clone())
                .unwrap_or_default();
            let known = self
                .marks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&id);
            if !known {
                since = Since::Now;
            }
        } else {
            if current.is_none() {
                self.create(&project, spec).await?;
            }
            self.docker
                .start_container(&spec.name, None)
                .await
                .map_err(|e| RuntimeError::Start {
                    instance: spec.name.clone(),
                    program: spec
                        .argv
                        .first()
                        .cloned()
                        .unwrap_or_else(|| "its image's command".into()),
                    reason: format!("the Engine could not start the container: {e}"),
                })?;
            current = inspect(spec.name.clone()).await?;
        }
        let Some(current) = current else {
            return Err(RuntimeError::Instance {
                instance: spec.name.clone(),
                reason: "its container disappeared while it was starting".into(),
            });
        };
        if let Some(id) = &current.id {
            // Lines from now on are this runtime's to report.
            self.marks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .entry(id.clone())
                .or_insert(i64::MIN);
        }
        attach::attach(&self.docker, spec, &current, &self.marks, since)
    }

    async fn exec(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let name = instance.spec().name.clone();
        let fail = |reason: String| RuntimeError::Instance {
            instance: name.clone(),
            reason,
        };
        let exec = self
            .docker
            .create_exec(
                &name,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    cmd: Some(argv.to_vec()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| fail(format!("cannot exec {argv:?}: {e}")))?;
        let run = async {
            let mut output: Vec<u8> = Vec::new();
            if let StartExecResults::Attached {
                output: mut stream, ..
            } = self
                .docker
                .start_exec(&exec.id, None)
                .await
                .map_err(|e| fail(format!("cannot exec {argv:?}: {e}")))?
            {
                while let Some(Ok(chunk)) = stream.next().await {
                    output.extend_from_slice(&chunk.into_bytes());
                    if output.len() > 8192 {
                        output.drain(..output.len() - 4096);
                    }
                }
            }
            let code = self
                .docker
                .inspect_exec(&exec.id)
                .await
                .map_err(|e| fail(format!("cannot read how {argv:?} ended: {e}")))?
                .exit_code
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(255);
            Ok::<_, RuntimeError>((code, output))
        };
        match tokio::time::timeout(timeout, run).await {
            Ok(result) => {
                let (code, output) = result?;
                let start = output.len().saturating_sub(4096);
                Ok(ExecOutput {
                    status: Some(ExitStatus::Code(code)),
                    output: String::from_utf8_lossy(&output[start..]).into_owned(),
                })
            }
            Err(_) => Ok(ExecOutput {
                status: None,
                output: String::new(),
            }),
        }
    }

    /// `docker exec -i <container> argv`: the caller adds `-t` after `exec` when its standard
    /// input is a terminal.
    async fn interactive_command(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
    ) -> Option<Vec<std::ffi::OsString>> {
        let mut command: Vec<std::ffi::OsString> = vec![
            "docker".into(),
            "exec".into(),
            "-i".into(),
            instance.spec().name.clone().into(),
        ];
        command.extend(argv.iter().map(Into::into));
        Some(command)
    }

    async fn addresses(&self, instance: &dyn InstanceHandle) -> Vec<IpAddr> {
        self.network_addresses(&instance.spec().name)
            .await
            .map(|list| list.into_iter().map(|(_, ip)| ip).collect())
            .unwrap_or_default()
    }

    async fn prepare(&self, project: &Project) -> Result<Vec<String>, RuntimeError> {
        self.projects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(project.name.clone(), Arc::new(project.clone()));
        let mut warnings = Vec::new();
        if self.api < container::START_INTERVAL_API {
            let with: Vec<&str> = project
                .services
                .values()
                .filter(|s| {
                    s.healthcheck
                        .as_ref()
                        .is_some_and(|h| h.start_interval.is_some())
                })
                .map(|s| s.name.as_str())
                .collect();
            if !with.is_empty() {
                warnings.push(format!(
                    "the Docker Engine speaks API {}.{}, and health checks take start_interval from API 1.44 (Docker 25) on: {} probe every `interval` during start_period",
                    self.api.0,
                    self.api.1,
                    with.join(", ")
                ));
            }
        }
        warnings.extend(project.services.values().filter_map(container::not_mapped));
        // Images first: a missing one stops `up` before anything is created.
        self.ensure_images(project).await?;
        self.create_networks(project).await?;
        self.create_volumes(project).await?;
        Ok(warnings)
    }

    async fn existing(&self, project: &str) -> Result<Vec<ExistingInstance>, RuntimeError> {
        let mut filters = labels::project_filter(project);
        if let Some(l) = filters.get_mut("label") {
            l.push(format!("{}=False", labels::ONEOFF));
        }
        let mut out = Vec::new();
        for c in self.list(filters).await? {
            let l = c.labels.unwrap_or_default();
            let (Some(service), Some(number)) = (
                l.get(labels::SERVICE),
                l.get(labels::CONTAINER_NUMBER)
                    .and_then(|n| n.parse::<u32>().ok()),
            ) else {
                continue;
            };
            let name = c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            let running = matches!(
                c.state,
                Some(ContainerSummaryStateEnum::RUNNING | ContainerSummaryStateEnum::RESTARTING)
            );
            // "Exited (3) 2 minutes ago"
            let exit_code = c
                .status
                .as_deref()
                .and_then(|s| s.strip_prefix("Exited ("))
                .and_then(|s| s.split_once(')'))
                .and_then(|(code, _)| code.parse().ok());
            out.push(ExistingInstance {
                service: service.clone(),
                number,
                name,
                config_hash: l.get(labels::CONFIG_HASH).cloned().unwrap_or_default(),
                running,
                exit_code: if running { None } else { exit_code.or(Some(0)) },
            });
        }
        out.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
        Ok(out)
    }

    async fn remove(&self, project: &str, instance: &str) -> Result<(), RuntimeError> {
        let mut filters = labels::project_filter(project);
        filters.insert("name".into(), vec![format!("^/{instance}$")]);
        for c in self.list(filters).await? {
            if let Some(id) = c.id {
                self.stop_and_remove(&id, instance).await?;
            }
        }
        Ok(())
    }

    async fn remove_volumes(&self, project: &str) -> Result<Vec<String>, RuntimeError> {
        let options = ListVolumesOptionsBuilder::default()
            .filters(&labels::project_filter(project))
            .build();
        let volumes = self
            .docker
            .list_volumes(Some(options))
            .await
            .map_err(|e| RuntimeError::Other(format!("cannot list the volumes of {project}: {e}")))?
            .volumes
            .unwrap_or_default();
        let mut removed = Vec::new();
        for v in volumes {
            match self
                .docker
                .remove_volume(
                    &v.name,
                    None::<bollard::query_parameters::RemoveVolumeOptions>,
                )
                .await
            {
                Ok(()) => removed.push(v.name),
                Err(e) if is_not_found(&e) => {}
                Err(e) => {
                    return Err(RuntimeError::Other(format!(
                        "cannot remove volume {}: {e}",
                        v.name
                    )));
                }
            }
        }
        Ok(removed)
    }

    /// `down`: the project's containers (running ones are stopped with their grace period) and
    /// networks; volumes stay (`remove_volumes` is `down -v`).
    async fn release(&self, project: &str) -> Result<(), RuntimeError> {
        for c in self.list(labels::project_filter(project)).await? {
            let name = c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_default();
            if let Some(id) = c.id {
                self.stop_and_remove(&id, &name).await?;
            }
        }
        let options = ListNetworksOptionsBuilder::default()
            .filters(&labels::project_filter(project))
            .build();
        let networks = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| {
                RuntimeError::Other(format!("cannot list the networks of {project}: {e}"))
            })?;
        let mut failed = Vec::new();
        for n in networks {
            let Some(name) = n.name else { continue };
            // The Engine may still be releasing the endpoints of containers just removed.
            let mut attempts = 0;
            loop {
                match self.docker.remove_network(&name).await {
                    Ok(()) => break,
                    Err(e) if is_not_found(&e) => break,
                    Err(e) if e.to_string().contains("active endpoints") && attempts < 50 => {
                        attempts += 1;
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => {
                        failed.push(format!(
                            "cannot remove network {name}: {e} (`docker network inspect {name}` shows what is attached; an endpoint the Engine kept after its container went goes with an Engine restart)"
                        ));
                        break;
                    }
                }
            }
        }
        if !failed.is_empty() {
            return Err(RuntimeError::Other(failed.join("; ")));
        }
        self.projects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(project);
        Ok(())
    }

    /// Nothing to clean: containers outlive the daemon on purpose, and `up` adopts them.
    async fn recover(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(Vec::new())
    }
}
