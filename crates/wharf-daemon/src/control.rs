//! The daemon's [`Control`]: each verb of the API carried out by the supervisor, with the
//! desired state kept in the store so that a restarted daemon knows what to bring back.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{broadcast, mpsc, watch};
use wharf_api::Control;
use wharf_api::message::{
    ActionResponse, ApiError, DaemonInfo, DownResponse, ErrorKind, Event, EventKind, ExecContext,
    InstanceState, LogEntry, LogStream, LogsQuery, ProjectSummary, RoutesQuery, RoutesResponse,
    UpRequest, UpResponse,
};
use wharf_model::Project;
use wharf_runtime::Runtime as _;
use wharf_supervisor::{Supervisor, SupervisorError, UpOptions, spec};

use crate::log_store::LogStore;
use crate::restore::services_to_restore;
use crate::state_dir::StateDir;
use crate::store::{Store, load_normalised};

/// How long a request waits for the projects of the previous daemon to come back before it
/// goes ahead anyway.
const RESTORE_WAIT: Duration = Duration::from_secs(30);

pub struct DaemonControl {
    pub(crate) supervisor: Supervisor,
    pub(crate) store: Arc<Store>,
    pub(crate) logs: LogStore,
    pub(crate) routing: Arc<crate::routing::Routing>,
    pub(crate) runtimes: Arc<crate::runtimes::Runtimes>,
    pub(crate) state_dir: StateDir,
    pub(crate) base_env: BTreeMap<String, String>,
    /// True once the stored projects were brought back.
    pub(crate) restored: watch::Receiver<bool>,
}

impl DaemonControl {
    /// Records every `on-failure` service whose instances all exited 0 as done, so that a daemon
    /// restart does not run a completed one-shot (a migration, say) again. Runs until the
    /// supervisor's event stream ends.
    pub(crate) async fn record_completions(&self) {
        let mut events = self.supervisor.events();
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Missed events: look at every on-failure service instead.
                    for name in self.supervisor.projects() {
                        let Some(project) = self.supervisor.project(&name) else {
                            continue;
                        };
                        for service in project.services.keys() {
                            self.record_if_completed(&name, service).await;
                        }
                    }
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if event.kind == (EventKind::Exited { code: 0 }) {
                self.record_if_completed(&event.project, &event.service)
                    .await;
            }
        }
    }

    /// Records `service` as done when it is `on-failure` and all its instances exited 0.
    async fn record_if_completed(&self, project_name: &str, service: &str) {
        let Some(project) = self.supervisor.project(project_name) else {
            return;
        };
        let on_failure = project.services.get(service).is_some_and(|s| {
            matches!(
                s.restart,
                wharf_model::project::RestartPolicy::OnFailure { .. }
            )
        });
        if !on_failure {
            return;
        }
        let completed = {
            let instances = self.supervisor.instances(project_name);
            let of_service: Vec<_> = instances.iter().filter(|i| i.service == service).collect();
            !of_service.is_empty()
                && of_service.iter().all(|i| {
                    i.finished && i.status == (wharf_supervisor::Status::Exited { code: 0 })
                })
        };
        if completed {
            let (name, services) = (project_name.to_string(), vec![service.to_string()]);
            if let Err(e) = self
                .with_store(move |s| s.set_stopped(&name, &services, true))
                .await
            {
                eprintln!(
                    "wharf daemon: cannot record that {project_name}/{service} completed: {}",
                    e.message
                );
            }
        }
    }

    /// Brings back the stored projects' services whose restart policy says so, all projects at
    /// once. Every project is known to the supervisor afterwards, even with nothing to start.
    pub async fn restore(&self) {
        let stored = match self.store.list() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("wharf daemon: cannot read the stored projects: {e}");
                return;
            }
        };
        let mut set = tokio::task::JoinSet::new();
        for (name, record) in stored {
            let project = match record.project() {
                Ok(p) => p,
                Err(e) => {
                    eprintln!(
                        "wharf daemon: cannot load the stored project `{name}` (bring it up again with `wharf up`):\n{e}"
                    );
                    continue;
                }
            };
            let services = services_to_restore(&project, &record.stopped);
            let mut scale = record.scale.clone();
            scale.retain(|s, _| project.services.contains_key(s));
            if let Err(e) = self.runtimes.select(&name, record.runtime).await {
                eprintln!(
                    "wharf daemon: project `{name}` runs on {:?}, which is not available: {e}",
                    record.runtime
                );
                continue;
            }
            if let Err(e) = self.routing.attach(&project).await {
                eprintln!(
                    "wharf daemon: project `{name}`: its routes are not served: {}",
                    e.message
                );
            }
            let supervisor = self.supervisor.clone();
            set.spawn(async move {
                let options = UpOptions {
                    services: Some(services.clone()),
                    scale,
                    ..UpOptions::default()
                };
                match supervisor.up(Arc::new(project), options).await {
                    Ok(_) if services.is_empty() => {
                        eprintln!("wharf daemon: project `{name}`: no service to bring back")
                    }
                    Ok(_) => eprintln!(
                        "wharf daemon: project `{name}`: brought back {}",
                        services.join(", ")
                    ),
                    Err(e) => {
                        eprintln!("wharf daemon: project `{name}`: cannot bring it back: {e}")
                    }
                }
            });
        }
        while set.join_next().await.is_some() {}
    }

    /// Stops every instance of every project (the daemon is shutting down); the desired state
    /// is kept, so the next daemon brings them back.
    pub async fn stop_everything(&self) {
        let mut set = tokio::task::JoinSet::new();
        for name in self.supervisor.projects() {
            let supervisor = self.supervisor.clone();
            set.spawn(async move {
                let _ = supervisor.stop(&name, None).await;
            });
        }
        while set.join_next().await.is_some() {}
    }

    async fn restored(&self) {
        let mut restored = self.restored.clone();
        let _ = tokio::time::timeout(RESTORE_WAIT, restored.wait_for(|r| *r)).await;
    }

    /// The runtime `up` runs the project on: `--runtime`, else `x-wharf.runtime`, else what it
    /// ran on before, else native; connected (the Docker Engine) and selected for the project.
    async fn runtime_kind(
        &self,
        project: &Project,
        requested: Option<&str>,
    ) -> Result<crate::runtimes::RuntimeKind, ApiError> {
        use crate::runtimes::RuntimeKind;
        let kind = match requested {
            Some(r) => RuntimeKind::parse(r).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "`--runtime {r}` is not a runtime of wharf: use native or docker"
                ))
            })?,
            None => match RuntimeKind::of_project(project)
                .map_err(|e| ApiError::bad_request(format!("project `{}`: {e}", project.name)))?
            {
                Some(k) => k,
                None => {
                    let owned = project.name.clone();
                    self.with_store(move |s| s.get(&owned))
                        .await?
                        .map(|r| r.runtime)
                        .unwrap_or_default()
                }
            },
        };
        let current = self.runtimes.kind(&project.name);
        let running = self
            .supervisor
            .instances(&project.name)
            .iter()
            .any(|i| !i.finished);
        if running && current != kind {
            return Err(ApiError::bad_request(format!(
                "project `{}` runs on the {current:?} runtime; take it down (`wharf down`) before bringing it up on {kind:?}",
                project.name
            )));
        }
        self.runtimes
            .select(&project.name, kind)
            .await
            .map_err(|e| ApiError::failed(format!("project `{}`: {e}", project.name)))?;
        Ok(kind)
    }

    /// Runs a store operation off the async threads (a commit syncs to disk).
    async fn with_store<T: Send + 'static>(
        &self,
        op: impl FnOnce(&Store) -> Result<T, crate::DaemonError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || op(&store))
            .await
            .map_err(|e| ApiError::internal(format!("the store's task failed: {e}")))?
            .map_err(|e| ApiError::internal(e.to_string()))
    }

    /// The project as the supervisor has it, or as stored.
    async fn project(&self, name: &str) -> Result<Arc<Project>, ApiError> {
        if let Some(p) = self.supervisor.project(name) {
            return Ok(p);
        }
        let owned = name.to_string();
        let stored = self.with_store(move |s| s.get(&owned)).await?;
        match stored {
            Some(record) => record
                .project()
                .map(Arc::new)
                .map_err(|e| ApiError::internal(format!("cannot load the stored project: {e}"))),
            None => Err(unknown_project(name)),
        }
    }

    /// `services`, checked against the project; `None` stays `None` (all).
    /// Records in the store which services the user stopped (or started again), after checking
    /// that they exist: a daemon restart must not bring back what the user stopped.
    async fn record_stopped(
        &self,
        name: &str,
        services: Option<&[String]>,
        stopped: bool,
    ) -> Result<(), ApiError> {
        self.restored().await;
        let project = self.project(name).await?;
        Self::check_services(&project, services)?;
        let list = Self::all_services(&project, services.map(<[String]>::to_vec));
        let owned = name.to_string();
        self.with_store(move |s| s.set_stopped(&owned, &list, stopped))
            .await
    }

    fn check_services(project: &Project, services: Option<&[String]>) -> Result<(), ApiError> {
        for s in services.into_iter().flatten() {
            if !project.services.contains_key(s) {
                let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
                return Err(ApiError::bad_request(format!(
                    "project `{}` has no service `{s}`; its services are: {}",
                    project.name,
                    known.join(", ")
                )));
            }
        }
        Ok(())
    }

    fn all_services(project: &Project, services: Option<Vec<String>>) -> Vec<String> {
        services.unwrap_or_else(|| project.services.keys().cloned().collect())
    }
}

fn unknown_project(name: &str) -> ApiError {
    ApiError::not_found(format!(
        "no project `{name}` here: bring it up with `wharf up` (or name another with -p)"
    ))
}

fn supervisor_error(e: SupervisorError) -> ApiError {
    match e {
        SupervisorError::UnknownProject(p) => unknown_project(&p),
        SupervisorError::Plan(e) => ApiError::bad_request(e.to_string()),
        SupervisorError::Config { message, help, .. } => {
            ApiError::bad_request(format!("{message}\n  help: {help}"))
        }
        e @ SupervisorError::Failed(_) => ApiError::failed(e.to_string()),
        e @ SupervisorError::Timeout(..) => ApiError::new(ErrorKind::Timeout, e.to_string()),
    }
}

fn action(
    report: Result<wharf_supervisor::UpReport, SupervisorError>,
) -> Result<ActionResponse, ApiError> {
    report
        .map(|r| ActionResponse {
            warnings: r.warnings,
        })
        .map_err(supervisor_error)
}

#[async_trait]
impl Control for DaemonControl {
    fn info(&self) -> DaemonInfo {
        DaemonInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            pid: std::process::id(),
            state_dir: self.state_dir.root().to_path_buf(),
            runtime: self.supervisor.runtime().name().to_string(),
        }
    }

    async fn projects(&self) -> Result<Vec<ProjectSummary>, ApiError> {
        self.restored().await;
        let stored = self.with_store(|s| s.list()).await?;
        let mut names: Vec<String> = self.supervisor.projects();
        names.extend(stored.keys().cloned());
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|name| {
                let instances = self.supervisor.instances(&name);
                ProjectSummary {
                    project_directory: stored.get(&name).map(|r| r.project_directory.clone()),
                    running: instances.iter().filter(|i| !i.finished).count(),
                    instances: instances.len(),
                    name,
                }
            })
            .collect())
    }

    async fn up(&self, name: &str, request: UpRequest) -> Result<UpResponse, ApiError> {
        self.restored().await;
        let project = load_normalised(&request.yaml, &request.project_directory).map_err(|e| {
            ApiError::bad_request(format!(
                "the daemon cannot load the project the CLI sent (are they of different versions? restart the daemon):\n{e}"
            ))
        })?;
        if project.name != name {
            return Err(ApiError::bad_request(format!(
                "the project sent is named `{}`, not `{name}`",
                project.name
            )));
        }
        Self::check_services(&project, request.services.as_deref())?;
        let kind = self
            .runtime_kind(&project, request.runtime.as_deref())
            .await?;
        // Routes are checked (and served) before anything is stored or started.
        self.routing.attach(&project).await?;
        let (owned, yaml, dir, services) = (
            name.to_string(),
            request.yaml.clone(),
            request.project_directory.clone(),
            request.services.clone(),
        );
        let stored = self
            .with_store(move |s| {
                s.record_up(&owned, &yaml, &dir, services.as_deref(), kind)?;
                s.get(&owned)
            })
            .await?;
        let mut scale = stored.map(|r| r.scale).unwrap_or_default();
        scale.retain(|s, _| project.services.contains_key(s));
        let options = UpOptions {
            services: request.services.clone(),
            force_recreate: request.force_recreate,
            no_recreate: request.no_recreate,
            scale,
            remove_orphans: request.remove_orphans,
        };
        // One deadline for the dependency waits, the starts and readiness (`up --wait`, or a
        // timeout given without it): the supervisor applies it to every state of every
        // instance, on every runtime.
        let timeout = match (request.wait, request.wait_timeout_ms) {
            (_, Some(ms)) => Some(ms),
            (true, None) => Some(wharf_api::message::DEFAULT_WAIT_TIMEOUT_MS),
            (false, None) => None,
        };
        let report = match timeout {
            Some(ms) => {
                let wait = wharf_supervisor::UpWait {
                    ready: request.wait,
                    timeout: Duration::from_millis(ms),
                };
                self.supervisor
                    .up_within(Arc::new(project), options, wait)
                    .await
            }
            None => self.supervisor.up(Arc::new(project), options).await,
        }
        .map_err(supervisor_error)?;
        let mut warnings = report.warnings;
        // A store moved aside is told in the daemon's log, and to the next `up`.
        warnings.extend(
            self.store
                .unreported_recoveries()
                .iter()
                .map(|r| format!("{}: {r}", self.state_dir.store().display())),
        );
        Ok(UpResponse {
            plan: report.plan.to_string(),
            warnings,
        })
    }

    async fn ps(&self, name: &str, all: bool) -> Result<Vec<InstanceState>, ApiError> {
        self.restored().await;
        self.project(name).await?;
        let mut instances = self.supervisor.instances(name);
        if !all {
            instances.retain(|i| !i.finished);
        }
        Ok(instances)
    }

    async fn logs(
        &self,
        name: &str,
        query: LogsQuery,
    ) -> Result<mpsc::Receiver<LogEntry>, ApiError> {
        self.restored().await;
        let services = query.service_list();
        match self.project(name).await {
            Ok(project) => Self::check_services(&project, Some(&services))?,
            // `up` (attached) follows a project before it exists, so that no line is missed.
            Err(e) if e.kind == ErrorKind::NotFound && query.follow => {}
            Err(e) => return Err(e),
        }
        // Lines the supervisor handed over before this request are on disk before it reads.
        self.logs.sync().await;
        let store = self.logs.clone();
        let (owned, wanted) = (name.to_string(), services.clone());
        let (kept, live) = tokio::task::spawn_blocking(move || {
            store.read(&owned, &wanted, query.tail, query.follow)
        })
        .await
        .map_err(|e| ApiError::internal(format!("the log reader failed: {e}")))?
        .map_err(|e| ApiError::internal(format!("cannot read the logs of `{name}`: {e}")))?;
        let (tx, rx) = mpsc::channel(256);
        let project = name.to_string();
        let supervisor = self.supervisor.clone();
        let mut events = self.supervisor.events();
        tokio::spawn(async move {
            for entry in kept {
                if tx.send(entry).await.is_err() {
                    return;
                }
            }
            let Some(mut live) = live else {
                return;
            };
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    event = events.recv() => match event {
                        // `down`: the project is gone, and so is the stream.
                        Ok(Event { kind: EventKind::Removed, project: p, .. })
                            if p == project && supervisor.project(&project).is_none() => return,
                        Err(broadcast::error::RecvError::Closed) => return,
                        _ => {}
                    },
                    entry = live.recv() => match entry {
                        Ok(e) => {
                            let wanted = e.project == project
                                && (services.is_empty() || services.contains(&e.service));
                            if wanted && tx.send(e).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(n)) => {
                            let marker = LogEntry {
                                project: project.clone(),
                                service: "wharf".into(),
                                instance: "wharf".into(),
                                time: wharf_api::timestamp::rfc3339_millis(std::time::SystemTime::now()),
                                stream: LogStream::Wharf,
                                line: format!("wharf: skipped {n} line(s) of every project's output: this reader fell behind (they are on disk: `wharf logs` shows them)"),
                            };
                            if tx.send(marker).await.is_err() {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
        Ok(rx)
    }

    async fn start(
        &self,
        name: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        self.record_stopped(name, services.as_deref(), false)
            .await?;
        action(self.supervisor.start(name, services.as_deref()).await)
    }

    async fn stop(
        &self,
        name: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        self.record_stopped(name, services.as_deref(), true).await?;
        self.supervisor
            .stop(name, services.as_deref())
            .await
            .map_err(supervisor_error)?;
        Ok(ActionResponse::default())
    }

    async fn restart(
        &self,
        name: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        self.record_stopped(name, services.as_deref(), false)
            .await?;
        action(self.supervisor.restart(name, services.as_deref()).await)
    }

    async fn kill(
        &self,
        name: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        let project = self.project(name).await?;
        Self::check_services(&project, services.as_deref())?;
        let mut warnings = Vec::new();
        for instance in self.supervisor.instances(name) {
            if services
                .as_ref()
                .is_some_and(|l| !l.contains(&instance.service))
            {
                continue;
            }
            if let Err(e) = self.runtimes.kill(&instance.name) {
                warnings.push(format!("cannot kill {}: {e}", instance.name));
            }
        }
        Ok(ActionResponse { warnings })
    }

    async fn scale(
        &self,
        name: &str,
        scale: BTreeMap<String, u32>,
    ) -> Result<ActionResponse, ApiError> {
        self.restored().await;
        let project = self.project(name).await?;
        let services: Vec<String> = scale.keys().cloned().collect();
        Self::check_services(&project, Some(&services))?;
        let (owned, stored_scale) = (name.to_string(), scale.clone());
        self.with_store(move |s| {
            s.set_scale(&owned, &stored_scale)?;
            s.set_stopped(&owned, &services, false)
        })
        .await?;
        action(self.supervisor.scale(name, scale).await)
    }

    async fn events(&self, project: Option<String>) -> Result<mpsc::Receiver<Event>, ApiError> {
        let mut events = self.supervisor.events();
        let (tx, rx) = mpsc::channel(256);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tx.closed() => return,
                    event = events.recv() => match event {
                        Ok(e) => {
                            if project.as_ref().is_none_or(|p| *p == e.project)
                                && tx.send(e).await.is_err()
                            {
                                return;
                            }
                        }
                        Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => return,
                    },
                }
            }
        });
        Ok(rx)
    }

    async fn exec_context(
        &self,
        name: &str,
        service: &str,
        index: u32,
    ) -> Result<ExecContext, ApiError> {
        self.restored().await;
        let project = self.project(name).await?;
        let service_list = [service.to_string()];
        Self::check_services(&project, Some(&service_list))?;
        let instance_name = spec::instance_name(name, service, index);
        let instances = self.supervisor.instances(name);
        let Some(state) = instances
            .iter()
            .find(|s| s.service == service && s.number == index)
        else {
            let count = instances.iter().filter(|s| s.service == service).count();
            return Err(ApiError::failed(format!(
                "{instance_name} does not exist: `{service}` has {count} instance(s); start it with `wharf up {service}` or pick another with --index"
            )));
        };
        let Some(pid) = state.pid else {
            return Err(ApiError::failed(format!(
                "{instance_name} is not running; start it with `wharf start {service}`"
            )));
        };
        let svc = &project.services[service];
        let spec = spec::instance_spec_for(
            self.runtimes.as_ref(),
            &project,
            svc,
            index,
            &self.base_env,
            &self.state_dir.volumes(),
        )
        .map_err(supervisor_error)?;
        let engine = self.runtimes.runs_images(name);
        let wrapper = match self.runtimes.handle(&spec.name) {
            Some(handle) => self
                .runtimes
                .interactive_command(handle.as_ref(), &[])
                .await
                .map(|c| {
                    c.into_iter()
                        .map(|a| a.to_string_lossy().into_owned())
                        .collect()
                }),
            None => None,
        };
        Ok(ExecContext {
            instance: spec.name,
            pid: Some(pid),
            environment: spec.environment,
            working_dir: spec.working_dir,
            user: spec.user,
            wrapper,
            engine,
        })
    }

    async fn routes(&self, query: RoutesQuery) -> Result<RoutesResponse, ApiError> {
        self.restored().await;
        if let Some(p) = &query.project {
            self.project(p).await?;
        }
        Ok(RoutesResponse {
            routes: self.routing.routes(query.project.as_deref()),
            explanations: query
                .explain
                .as_deref()
                .map(|url| self.routing.explain(url))
                .unwrap_or_default(),
        })
    }

    async fn metrics(&self) -> Result<String, ApiError> {
        Ok(self.routing.metrics())
    }

    async fn down(&self, name: &str, volumes: bool) -> Result<DownResponse, ApiError> {
        self.restored().await;
        let mut warnings = Vec::new();
        // A stored project that no longer loads (a store written before names were checked, or
        // damaged) is still forgotten: `down` is how the user gets rid of it.
        let project = match self.project(name).await {
            Ok(p) => Some(p),
            Err(e) if e.kind == ErrorKind::Internal => {
                warnings.push(format!(
                    "{}; the project is forgotten anyway and none of its volumes is removed",
                    e.message
                ));
                None
            }
            Err(e) => return Err(e),
        };
        // Every instance stops first; what the runtime cannot remove after that (an engine
        // network with a stale endpoint) is a warning, and the project is forgotten anyway.
        let engine_volumes = match self.supervisor.down_with(name, volumes).await {
            Ok(v) => v,
            Err(SupervisorError::Failed(problems)) => {
                warnings.extend(problems);
                Vec::new()
            }
            Err(SupervisorError::UnknownProject(_)) if project.is_none() => Vec::new(),
            Err(e) => return Err(supervisor_error(e)),
        };
        self.routing.detach(name);
        // The logs go first: on a full disk their space lets the store commit.
        self.logs.forget(name).await;
        let owned = name.to_string();
        if let Err(first) = self.with_store(move |s| s.remove(&owned)).await {
            // After an I/O error the store reopens its file on the next operation.
            let owned = name.to_string();
            self.with_store(move |s| s.remove(&owned))
                .await
                .map_err(|e| {
                    ApiError::internal(format!(
                        "the instances of `{name}` are stopped, but the store cannot forget the project ({}; then {}): free space in the state directory and run `wharf down` again",
                        first.message, e.message
                    ))
                })?;
        }
        let mut removed_volumes: Vec<PathBuf> =
            engine_volumes.into_iter().map(PathBuf::from).collect();
        let native = !self.runtimes.runs_images(name);
        for (key, volume) in project.iter().flat_map(|p| &p.volumes) {
            if !volumes || !native || volume.external {
                continue;
            }
            // Defense in depth: the loader refuses such names, but a store may hold one.
            let dir = match wharf_model::names::child_path(&self.state_dir.volumes(), &volume.name)
            {
                Ok(d) => d,
                Err(e) => {
                    warnings.push(format!("volume `{key}` is not removed: {e}"));
                    continue;
                }
            };
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => removed_volumes.push(dir),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(ApiError::internal(format!(
                        "cannot remove the data of volume `{key}` ({}): {e}",
                        dir.display()
                    )));
                }
            }
        }
        Ok(DownResponse {
            removed_volumes,
            warnings,
        })
    }
}
