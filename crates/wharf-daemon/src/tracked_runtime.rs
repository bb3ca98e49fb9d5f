//! A [`Runtime`] that remembers the handle of every instance it started, so that the daemon
//! can kill instances at once (the second Ctrl-C of `wharf up`): the supervisor stops them
//! gracefully, with their grace periods, and has no "kill now".

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use wharf_runtime::{ExecOutput, InstanceHandle, InstanceSpec, Runtime, RuntimeError, Started};

pub struct TrackedRuntime {
    inner: Arc<dyn Runtime>,
    /// Instance name -> the handle of its current run (gone once the supervisor drops it).
    handles: Mutex<HashMap<String, Weak<dyn InstanceHandle>>>,
}

impl TrackedRuntime {
    pub fn new(inner: Arc<dyn Runtime>) -> Self {
        TrackedRuntime {
            inner,
            handles: Mutex::new(HashMap::new()),
        }
    }

    /// Kills the instance's current run, if it has one; `Ok(false)` when it has none.
    /// The handle of a running instance, by name.
    pub fn handle(&self, instance: &str) -> Option<Arc<dyn InstanceHandle>> {
        let handles = self.handles.lock().unwrap_or_else(|p| p.into_inner());
        handles.get(instance).and_then(Weak::upgrade)
    }

    pub fn kill(&self, instance: &str) -> Result<bool, RuntimeError> {
        let handle = self
            .handles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(instance)
            .and_then(Weak::upgrade);
        match handle {
            Some(h) => h.kill().map(|()| true),
            None => Ok(false),
        }
    }
}

#[async_trait]
impl Runtime for TrackedRuntime {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<Started, RuntimeError> {
        let started = self.inner.start(spec).await?;
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
        self.inner.exec(instance, argv, timeout).await
    }

    async fn addresses(&self, instance: &dyn InstanceHandle) -> Vec<std::net::IpAddr> {
        self.inner.addresses(instance).await
    }

    fn distinct_addresses(&self, project: &str) -> bool {
        self.inner.distinct_addresses(project)
    }

    fn runs_images(&self, project: &str) -> bool {
        self.inner.runs_images(project)
    }

    async fn existing(
        &self,
        project: &str,
    ) -> Result<Vec<wharf_runtime::ExistingInstance>, RuntimeError> {
        self.inner.existing(project).await
    }

    async fn remove(&self, project: &str, instance: &str) -> Result<(), RuntimeError> {
        self.inner.remove(project, instance).await
    }

    async fn remove_volumes(&self, project: &str) -> Result<Vec<String>, RuntimeError> {
        self.inner.remove_volumes(project).await
    }

    async fn prepare(&self, project: &wharf_model::Project) -> Result<Vec<String>, RuntimeError> {
        self.inner.prepare(project).await
    }

    async fn release(&self, project: &str) -> Result<(), RuntimeError> {
        self.inner.release(project).await
    }

    async fn recover(&self) -> Result<Vec<String>, RuntimeError> {
        self.inner.recover().await
    }

    async fn interactive_command(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
    ) -> Option<Vec<std::ffi::OsString>> {
        self.inner.interactive_command(instance, argv).await
    }
}
