//! The control API served on a thread of its own, apart from the runtime that runs the router's
//! accept loops and the supervisor, so that `wharf ps` answers while the router is saturated
//! (issue 12: a few hundred idle router connections made `wharf ps` hang).
//!
//! The thread runs a single-threaded runtime that accepts on the socket and speaks HTTP.
//! Questions that only read (`info`, `projects`, `ps`, `routes`, `metrics`) are answered there;
//! verbs that change something or stream (`up`, `down`, `logs`, `events`, ...) are handed to
//! the daemon's runtime, where the supervisor's tasks live, and their answers come back.

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use wharf_api::Control;
use wharf_api::message::{
    ActionResponse, ApiError, DaemonInfo, DownResponse, Event, ExecContext, InstanceState,
    LogEntry, LogsQuery, ProjectSummary, RoutesQuery, RoutesResponse, UpRequest, UpResponse,
};

/// The API served on its own thread; dropping it (or [`ControlSocket::stop`]) stops serving.
pub struct ControlSocket {
    stop: Option<oneshot::Sender<()>>,
    done: oneshot::Receiver<io::Result<()>>,
}

impl ControlSocket {
    /// Serves `control` on `listener` from a new thread; verbs run on `main`.
    pub fn spawn(
        listener: std::os::unix::net::UnixListener,
        control: Arc<dyn Control>,
        main: Handle,
    ) -> io::Result<ControlSocket> {
        listener.set_nonblocking(true)?;
        let (stop, stopped) = oneshot::channel::<()>();
        let (finished, done) = oneshot::channel();
        let control: Arc<dyn Control> = Arc::new(OnMain {
            inner: control,
            main,
        });
        std::thread::Builder::new()
            .name("wharf-control".into())
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|runtime| {
                        runtime.block_on(async move {
                            let listener = tokio::net::UnixListener::from_std(listener)?;
                            tokio::select! {
                                r = wharf_api::server::serve(listener, control) => r,
                                _ = stopped => Ok(()),
                            }
                        })
                    });
                let _ = finished.send(result);
            })?;
        Ok(ControlSocket {
            stop: Some(stop),
            done,
        })
    }

    /// Resolves when serving ends by itself (an error of the listener).
    pub async fn ended(&mut self) -> io::Result<()> {
        (&mut self.done).await.unwrap_or(Ok(()))
    }

    /// Stops serving.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A [`Control`] that answers reads where it is called and runs the other verbs on `main`.
struct OnMain {
    inner: Arc<dyn Control>,
    main: Handle,
}

impl OnMain {
    async fn on_main<T: Send + 'static>(
        &self,
        verb: impl FnOnce(
            Arc<dyn Control>,
        )
            -> std::pin::Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send>>,
    ) -> Result<T, ApiError> {
        self.main
            .spawn(verb(Arc::clone(&self.inner)))
            .await
            .map_err(|e| ApiError::internal(format!("the daemon's task failed: {e}")))?
    }
}

#[async_trait]
impl Control for OnMain {
    fn info(&self) -> DaemonInfo {
        self.inner.info()
    }

    async fn projects(&self) -> Result<Vec<ProjectSummary>, ApiError> {
        self.inner.projects().await
    }

    async fn up(&self, project: &str, request: UpRequest) -> Result<UpResponse, ApiError> {
        let p = project.to_string();
        self.on_main(move |c| Box::pin(async move { c.up(&p, request).await }))
            .await
    }

    async fn ps(&self, project: &str, all: bool) -> Result<Vec<InstanceState>, ApiError> {
        self.inner.ps(project, all).await
    }

    async fn logs(
        &self,
        project: &str,
        query: LogsQuery,
    ) -> Result<mpsc::Receiver<LogEntry>, ApiError> {
        let p = project.to_string();
        self.on_main(move |c| Box::pin(async move { c.logs(&p, query).await }))
            .await
    }

    async fn start(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        let p = project.to_string();
        self.on_main(move |c| Box::pin(async move { c.start(&p, services).await }))
            .await
    }

    async fn stop(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        let p = project.to_string();
        self.on_main(move |c| Box::pin(async move { c.stop(&p, services).await }))
            .await
    }

    async fn restart(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        let p = project.to_string();
        self.on_main(move |c| Box::pin(async move { c.restart(&p, services).await }))
            .await
    }

    async fn kill(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        let p = project.to_string();
        self.on_main(move |c| Box::pin(async move { c.kill(&p, services).await }))
            .await
    }

    async fn scale(
        &self,
        project: &str,
        scale: BTreeMap<String, u32>,
    ) -> Result<ActionResponse, ApiError> {
        let p = project.to_string();
        self.on_main(move |c| Box::pin(async move { c.scale(&p, scale).await }))
            .await
    }

    async fn events(&self, project: Option<String>) -> Result<mpsc::Receiver<Event>, ApiError> {
        self.on_main(move |c| Box::pin(async move { c.events(project).await }))
            .await
    }

    async fn exec_context(
        &self,
        project: &str,
        service: &str,
        index: u32,
    ) -> Result<ExecContext, ApiError> {
        let (p, s) = (project.to_string(), service.to_string());
        self.on_main(move |c| Box::pin(async move { c.exec_context(&p, &s, index).await }))
            .await
    }

    async fn routes(&self, query: RoutesQuery) -> Result<RoutesResponse, ApiError> {
        self.inner.routes(query).await
    }

    async fn metrics(&self) -> Result<String, ApiError> {
        self.inner.metrics().await
    }

    async fn down(&self, project: &str, volumes: bool) -> Result<DownResponse, ApiError> {
        let p = project.to_string();
        self.on_main(move |c| Box::pin(async move { c.down(&p, volumes).await }))
            .await
    }
}
