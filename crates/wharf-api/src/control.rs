//! The narrow interface the API serves: what the daemon can be asked to do. The daemon
//! implements it over the supervisor and its stores; tests implement it with a fake.

use std::collections::BTreeMap;

use async_trait::async_trait;
use tokio::sync::mpsc;

use crate::message::{
    ActionResponse, ApiError, DaemonInfo, DownResponse, Event, ExecContext, InstanceState,
    LogEntry, LogsQuery, ProjectSummary, RoutesQuery, RoutesResponse, UpRequest, UpResponse,
};

/// Every verb of the control API. Streams are channels: the server sends what arrives until
/// the sender is dropped, and drops the receiver when the client goes away (so that an
/// implementation notices through `Sender::closed`).
#[async_trait]
pub trait Control: Send + Sync + 'static {
    fn info(&self) -> DaemonInfo;

    async fn projects(&self) -> Result<Vec<ProjectSummary>, ApiError>;

    /// Brings the project up (and, with `request.wait`, waits until it is ready).
    async fn up(&self, project: &str, request: UpRequest) -> Result<UpResponse, ApiError>;

    /// The project's instances; without `all`, only those not finished.
    async fn ps(&self, project: &str, all: bool) -> Result<Vec<InstanceState>, ApiError>;

    /// The kept lines (the last `tail` of each instance), merged by time, then, with `follow`,
    /// every new line until the receiver is dropped.
    async fn logs(
        &self,
        project: &str,
        query: LogsQuery,
    ) -> Result<mpsc::Receiver<LogEntry>, ApiError>;

    async fn start(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError>;

    async fn stop(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError>;

    async fn restart(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError>;

    /// Kills running instances at once (the second Ctrl-C of an attached `up`).
    async fn kill(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError>;

    async fn scale(
        &self,
        project: &str,
        scale: BTreeMap<String, u32>,
    ) -> Result<ActionResponse, ApiError>;

    /// Every event from now on (of one project, or of all).
    async fn events(&self, project: Option<String>) -> Result<mpsc::Receiver<Event>, ApiError>;

    /// What `wharf exec` needs to run a command as instance `index` of `service` runs.
    async fn exec_context(
        &self,
        project: &str,
        service: &str,
        index: u32,
    ) -> Result<ExecContext, ApiError>;

    /// The router's routes (of one project, or of all), and with `explain` which route a URL
    /// matches.
    async fn routes(&self, query: RoutesQuery) -> Result<RoutesResponse, ApiError>;

    /// The router's metrics, in Prometheus' text exposition format.
    async fn metrics(&self) -> Result<String, ApiError>;

    /// Stops and forgets the project (and, with `volumes`, deletes its named volumes' data).
    async fn down(&self, project: &str, volumes: bool) -> Result<DownResponse, ApiError>;
}
