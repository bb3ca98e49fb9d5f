//! The runtime of each project: native (the default) or the Docker Engine, chosen per project
//! with `wharf up --runtime docker` or the top-level `x-wharf: { runtime: docker }`. One
//! supervisor serves every project; this [`Runtime`] sends each call to the project's runtime.
//! The Docker runtime connects on first use, so a machine without an engine runs native projects
//! without noticing. It also remembers the handle of every instance it started, so that the
//! daemon can kill an instance at once (the second Ctrl-C of `wharf up`: the supervisor only
//! stops gracefully), find an instance's addresses for the router, and give `wharf exec` its
//! command line.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;
use wharf_model::Project;
use wharf_runtime::{
    ExecOutput, ExistingInstance, InstanceHandle, InstanceSpec, Runtime, RuntimeError, Started,
};

/// Which runtime runs a project.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    #[default]
    Native,
    Docker,
}

impl RuntimeKind {
    pub fn parse(s: &str) -> Option<RuntimeKind> {
        match s {
            "native" => Some(RuntimeKind::Native),
            "docker" => Some(RuntimeKind::Docker),
            _ => None,
        }
    }

    /// `x-wharf.runtime` of the project, if it says.
    pub fn of_project(project: &Project) -> Result<Option<RuntimeKind>, String> {
        let Some(value) = project
            .extensions
            .get("x-wharf")
            .and_then(|x| x.get("runtime"))
        else {
            return Ok(None);
        };
        value
            .as_str()
            .and_then(RuntimeKind::parse)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "x-wharf.runtime: `{value}` is not a runtime of wharf: use native or docker"
                )
            })
    }
}

/// Connects to the Docker Engine (the daemon passes [`wharf_docker::DockerRuntime::connect`]).
pub type DockerConnect = Box<
    dyn Fn() -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Arc<dyn Runtime>, String>> + Send>,
        > + Send
        + Sync,
>;

pub struct Runtimes {
    native: Arc<dyn Runtime>,
    docker: OnceCell<Arc<dyn Runtime>>,
    connect_docker: DockerConnect,
    projects: Mutex<HashMap<String, RuntimeKind>>,
    /// Instance name -> the handle of its current run (gone once the supervisor drops it).
    handles: Mutex<HashMap<String, Weak<dyn InstanceHandle>>>,
}

impl Runtimes {
    pub fn new(native: Arc<dyn Runtime>, connect_docker: DockerConnect) -> Runtimes {
        Runtimes {
            native,
            docker: OnceCell::new(),
            connect_docker,
            projects: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
        }
    }

    /// The handle of a running instance, by name.
    pub fn handle(&self, instance: &str) -> Option<Arc<dyn InstanceHandle>> {
        let handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        handles.get(instance).and_then(Weak::upgrade)
    }

    /// Kills the instance's current run, if it has one; `Ok(false)` when it has none.
    pub fn kill(&self, instance: &str) -> Result<bool, RuntimeError> {
        match self.handle(instance) {
            Some(h) => h.kill().map(|()| true),
            None => Ok(false),
        }
    }

    /// Runs `project` on `kind` from now on (connecting to the engine if needed). A project
    /// whose instances exist on another runtime must be taken down first.
    pub async fn select(&self, project: &str, kind: RuntimeKind) -> Result<(), String> {
        if kind == RuntimeKind::Docker {
            self.docker
                .get_or_try_init(|| (self.connect_docker)())
                .await?;
        }
        let mut projects = self.projects.lock().unwrap_or_else(|p| p.into_inner());
        projects.insert(project.to_string(), kind);
        Ok(())
    }

    /// The runtime `project` runs on.
    pub fn kind(&self, project: &str) -> RuntimeKind {
        self.projects
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(project)
            .copied()
            .unwrap_or_default()
    }

    fn of(&self, project: &str) -> &Arc<dyn Runtime> {
        match (self.kind(project), self.docker.get()) {
            (RuntimeKind::Docker, Some(docker)) => docker,
            _ => &self.native,
        }
    }
}

#[async_trait]
impl Runtime for Runtimes {
    fn name(&self) -> &'static str {
        self.native.name()
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<Started, RuntimeError> {
        let started = self.of(&spec.project).start(spec).await?;
        let mut handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        handles.retain(|_, h| h.strong_count() > 0);
        handles.insert(spec.name.clone(), Arc::downgrade(&started.handle));
        Ok(started)
    }

    async fn exec(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        self.of(&instance.spec().project)
            .exec(instance, argv, timeout)
            .await
    }

    async fn interactive_command(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
    ) -> Option<Vec<OsString>> {
        self.of(&instance.spec().project)
            .interactive_command(instance, argv)
            .await
    }

    async fn addresses(&self, instance: &dyn InstanceHandle) -> Vec<IpAddr> {
        self.of(&instance.spec().project).addresses(instance).await
    }

    fn distinct_addresses(&self, project: &str) -> bool {
        self.of(project).distinct_addresses(project)
    }

    fn runs_images(&self, project: &str) -> bool {
        self.of(project).runs_images(project)
    }

    async fn existing(&self, project: &str) -> Result<Vec<ExistingInstance>, RuntimeError> {
        self.of(project).existing(project).await
    }

    async fn remove(&self, project: &str, instance: &str) -> Result<(), RuntimeError> {
        self.of(project).remove(project, instance).await
    }

    async fn remove_volumes(&self, project: &str) -> Result<Vec<String>, RuntimeError> {
        self.of(project).remove_volumes(project).await
    }

    async fn prepare(&self, project: &Project) -> Result<Vec<String>, RuntimeError> {
        self.of(&project.name).prepare(project).await
    }

    async fn release(&self, project: &str) -> Result<(), RuntimeError> {
        self.of(project).release(project).await
    }

    /// The native runtime's leftovers; containers are left running for adoption.
    async fn recover(&self) -> Result<Vec<String>, RuntimeError> {
        self.native.recover().await
    }
}
