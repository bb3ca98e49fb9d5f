//! A `Control` that answers from canned data and records what it was asked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::sync::{Notify, mpsc};
use wharf_api::message::{
    ActionResponse, ApiError, DaemonInfo, DownResponse, Event, EventKind, ExecContext,
    InstanceState, LogEntry, LogStream, LogsQuery, ProjectSummary, Status, UpRequest, UpResponse,
};
use wharf_api::{Client, Control};

#[derive(Default)]
pub struct FakeControl {
    pub calls: Mutex<Vec<String>>,
    /// `up` of project `slow` signals `arrived`, waits for `release`, then signals `finished`.
    pub arrived: Notify,
    pub release: Notify,
    pub finished: Notify,
    /// Lines sent to followers of `logs -f`.
    pub follow: Mutex<Option<mpsc::Sender<LogEntry>>>,
}

impl FakeControl {
    fn record(&self, call: String) {
        self.calls.lock().unwrap().push(call);
    }

    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

pub fn instance(name: &str, status: Status) -> InstanceState {
    InstanceState {
        project: "p".into(),
        service: "web".into(),
        number: 1,
        name: name.into(),
        status,
        health: None,
        pid: Some(42),
        restarts: 0,
        started_at: Some(SystemTime::UNIX_EPOCH),
        ever_started: true,
        finished: false,
        error: None,
        config_hash: "h".into(),
    }
}

pub fn entry(line: &str) -> LogEntry {
    LogEntry {
        project: "p".into(),
        service: "web".into(),
        instance: "p-web-1".into(),
        time: "2026-11-03T10:04:05.123Z".into(),
        stream: LogStream::Stdout,
        line: line.into(),
    }
}

fn known(project: &str) -> Result<(), ApiError> {
    if project == "p" || project == "slow" {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("no project `{project}` here")))
    }
}

#[async_trait]
impl Control for FakeControl {
    fn info(&self) -> DaemonInfo {
        DaemonInfo {
            version: "test".into(),
            pid: 7,
            state_dir: PathBuf::from("/state"),
            runtime: "fake".into(),
        }
    }

    async fn projects(&self) -> Result<Vec<ProjectSummary>, ApiError> {
        Ok(vec![ProjectSummary {
            name: "p".into(),
            project_directory: Some(PathBuf::from("/srv/p")),
            running: 1,
            instances: 2,
        }])
    }

    async fn up(&self, project: &str, request: UpRequest) -> Result<UpResponse, ApiError> {
        known(project)?;
        self.record(format!(
            "up {project} {:?} wait={}",
            request.services, request.wait
        ));
        if project == "slow" {
            self.arrived.notify_one();
            self.release.notified().await;
            self.finished.notify_one();
        }
        if request.yaml.is_empty() {
            return Err(ApiError::bad_request("empty project"));
        }
        Ok(UpResponse {
            plan: "p: start web-1\n".into(),
            warnings: vec!["w".into()],
        })
    }

    async fn ps(&self, project: &str, all: bool) -> Result<Vec<InstanceState>, ApiError> {
        known(project)?;
        let mut out = vec![instance("p-web-1", Status::Running)];
        if all {
            out.push(instance("p-web-2", Status::Exited { code: 1 }));
        }
        Ok(out)
    }

    async fn logs(
        &self,
        project: &str,
        query: LogsQuery,
    ) -> Result<mpsc::Receiver<LogEntry>, ApiError> {
        known(project)?;
        self.record(format!(
            "logs {project} {:?} {:?} {}",
            query.service_list(),
            query.tail,
            query.follow
        ));
        let (tx, rx) = mpsc::channel(16);
        tx.send(entry("one")).await.unwrap();
        tx.send(entry("two")).await.unwrap();
        if query.follow {
            *self.follow.lock().unwrap() = Some(tx);
        }
        Ok(rx)
    }

    async fn start(&self, p: &str, s: Option<Vec<String>>) -> Result<ActionResponse, ApiError> {
        known(p)?;
        self.record(format!("start {p} {s:?}"));
        Ok(ActionResponse::default())
    }

    async fn stop(&self, p: &str, s: Option<Vec<String>>) -> Result<ActionResponse, ApiError> {
        known(p)?;
        self.record(format!("stop {p} {s:?}"));
        Ok(ActionResponse::default())
    }

    async fn restart(&self, p: &str, s: Option<Vec<String>>) -> Result<ActionResponse, ApiError> {
        known(p)?;
        self.record(format!("restart {p} {s:?}"));
        Ok(ActionResponse::default())
    }

    async fn kill(&self, p: &str, s: Option<Vec<String>>) -> Result<ActionResponse, ApiError> {
        known(p)?;
        self.record(format!("kill {p} {s:?}"));
        Ok(ActionResponse::default())
    }

    async fn scale(
        &self,
        p: &str,
        scale: BTreeMap<String, u32>,
    ) -> Result<ActionResponse, ApiError> {
        known(p)?;
        self.record(format!("scale {p} {scale:?}"));
        Ok(ActionResponse::default())
    }

    async fn events(&self, project: Option<String>) -> Result<mpsc::Receiver<Event>, ApiError> {
        self.record(format!("events {project:?}"));
        let (tx, rx) = mpsc::channel(4);
        tx.send(Event {
            at: SystemTime::UNIX_EPOCH,
            project: "p".into(),
            service: "web".into(),
            instance: "p-web-1".into(),
            kind: EventKind::Exited { code: 3 },
        })
        .await
        .unwrap();
        Ok(rx)
    }

    async fn exec_context(
        &self,
        p: &str,
        service: &str,
        index: u32,
    ) -> Result<ExecContext, ApiError> {
        known(p)?;
        Ok(ExecContext {
            instance: format!("{p}-{service}-{index}"),
            pid: Some(42),
            environment: BTreeMap::from([("GREETING".into(), "hello".into())]),
            working_dir: PathBuf::from("/srv/p"),
            user: None,
            wrapper: None,
            engine: false,
        })
    }

    async fn routes(
        &self,
        query: wharf_api::message::RoutesQuery,
    ) -> Result<wharf_api::message::RoutesResponse, ApiError> {
        self.record(format!(
            "routes {:?} explain={:?}",
            query.project, query.explain
        ));
        Ok(wharf_api::message::RoutesResponse {
            routes: Vec::new(),
            explanations: query.explain.into_iter().collect(),
        })
    }

    async fn metrics(&self) -> Result<String, ApiError> {
        self.record("metrics".into());
        Ok("wharf_router_requests_total 0\n".into())
    }

    async fn down(&self, p: &str, volumes: bool) -> Result<DownResponse, ApiError> {
        known(p)?;
        self.record(format!("down {p} volumes={volumes}"));
        Ok(DownResponse {
            removed_volumes: vec![PathBuf::from("/state/volumes/p_data")],
            warnings: Vec::new(),
        })
    }
}

/// Serves `control` on a socket in `dir` and returns a client of it.
pub fn serve(dir: &Path, control: Arc<FakeControl>) -> Client {
    let socket = dir.join("wharf.sock");
    let listener = tokio::net::UnixListener::bind(&socket).unwrap();
    tokio::spawn(wharf_api::server::serve(listener, control));
    Client::new(socket)
}
