//! The control API over HTTP/1 and JSON, served with axum on the daemon's Unix socket.
//!
//! | method and path | request | response |
//! |---|---|---|
//! | `GET /v1/info` | | [`DaemonInfo`] |
//! | `GET /v1/projects` | | `[`[`ProjectSummary`]`]` |
//! | `POST /v1/projects/{p}/up` | [`UpRequest`] | [`UpResponse`] |
//! | `GET /v1/projects/{p}/ps?all=` | | `[`[`InstanceState`](crate::message::InstanceState)`]` |
//! | `GET /v1/projects/{p}/logs?services=&tail=&follow=` | | [`LogEntry`](crate::message::LogEntry) lines (NDJSON) |
//! | `POST /v1/projects/{p}/start`, `stop`, `restart`, `kill` | [`ServicesRequest`] | [`ActionResponse`](crate::message::ActionResponse) |
//! | `POST /v1/projects/{p}/scale` | [`ScaleRequest`] | [`ActionResponse`](crate::message::ActionResponse) |
//! | `GET /v1/projects/{p}/exec-context?service=&index=` | | [`ExecContext`](crate::message::ExecContext) |
//! | `POST /v1/projects/{p}/down` | [`DownRequest`] | [`DownResponse`](crate::message::DownResponse) |
//! | `GET /v1/events?project=` | | [`Event`](crate::message::Event) lines (NDJSON) |
//! | `GET /v1/routes?project=&explain=` | | [`RoutesResponse`](crate::message::RoutesResponse) |
//! | `GET /metrics` | | the router's metrics (Prometheus text format) |
//!
//! Errors are an [`ApiError`] body with a status that matches its kind. Every verb runs on its
//! own task, so that a client that goes away half-way (Ctrl-C) never cancels a change half-done.
//!
//! Every `{p}` goes through one extractor, [`ProjectName`], which refuses (400) a name that breaks
//! Docker Compose's rule before any handler runs: a project name becomes a directory of the
//! state directory (`logs/<p>/`), and `..%2F..%2Fx` once read a file outside it.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixListener;
use tokio::sync::mpsc;

use crate::control::Control;
use crate::message::{
    ApiError, DaemonInfo, DownRequest, ErrorKind, EventsQuery, ExecContextQuery, LogsQuery,
    ProjectSummary, PsQuery, RoutesQuery, ScaleRequest, ServicesRequest, UpRequest,
};

/// The content type of the streaming endpoints.
pub const NDJSON: &str = "application/x-ndjson";

type Shared = State<Arc<dyn Control>>;

/// The API's routes over `control`.
pub fn router(control: Arc<dyn Control>) -> Router {
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/projects", get(projects))
        .route("/v1/projects/{project}/up", post(up))
        .route("/v1/projects/{project}/ps", get(ps))
        .route("/v1/projects/{project}/logs", get(logs))
        .route("/v1/projects/{project}/start", post(start))
        .route("/v1/projects/{project}/stop", post(stop))
        .route("/v1/projects/{project}/restart", post(restart))
        .route("/v1/projects/{project}/kill", post(kill))
        .route("/v1/projects/{project}/scale", post(scale))
        .route("/v1/projects/{project}/exec-context", get(exec_context))
        .route("/v1/projects/{project}/down", post(down))
        .route("/v1/events", get(events))
        .route("/v1/routes", get(routes))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(control)
}

/// The `{project}` of a route, checked with Docker Compose's rule for project names
/// (`wharf_model::names::PROJECT_NAME_RULE`) before any handler runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectName(pub String);

impl ProjectName {
    /// `name` when it is a valid project name; else the refusal the API answers with.
    pub fn parse(name: &str) -> Result<Self, ApiError> {
        if wharf_model::names::is_valid_project_name(name) {
            Ok(ProjectName(name.to_string()))
        } else {
            Err(ApiError::bad_request(format!(
                "`{name}` is not a valid project name: it must match {}",
                wharf_model::names::PROJECT_NAME_RULE
            )))
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ProjectName {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(name) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("invalid project in the path: {e}")))?;
        ProjectName::parse(&name)
    }
}

/// A `project=` of a query, checked as [`ProjectName`] checks the path's.
fn checked_project(project: Option<String>) -> Result<Option<String>, ApiError> {
    project
        .map(|p| ProjectName::parse(&p).map(|n| n.0))
        .transpose()
}

/// Serves the API on `listener` until the future is dropped.
pub async fn serve(listener: UnixListener, control: Arc<dyn Control>) -> std::io::Result<()> {
    axum::serve(listener, router(control)).await
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match self.kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Failed => StatusCode::CONFLICT,
            ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorKind::Internal | ErrorKind::Connect | ErrorKind::Protocol => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        (status, json(&self)).into_response()
    }
}

fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the answer: {e}"),
        )
            .into_response(),
    }
}

/// A JSON answer, or the error.
fn reply<T: Serialize>(result: Result<T, ApiError>) -> Response {
    match result {
        Ok(v) => json(&v),
        Err(e) => e.into_response(),
    }
}

/// Streams what arrives on `rx` as newline-delimited JSON, until the sender is dropped.
fn ndjson<T: Serialize + Send + 'static>(rx: mpsc::Receiver<T>) -> Response {
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        let item = rx.recv().await?;
        let mut line = serde_json::to_vec(&item).unwrap_or_default();
        line.push(b'\n');
        Some((Ok::<_, Infallible>(Bytes::from(line)), rx))
    });
    ([(header::CONTENT_TYPE, NDJSON)], Body::from_stream(stream)).into_response()
}

fn body<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid request body: {e}")))
}

fn query<T: DeserializeOwned>(raw: Option<String>) -> Result<T, ApiError> {
    serde_urlencoded::from_str(raw.as_deref().unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("invalid query string: {e}")))
}

/// Runs a verb on its own task: it completes even when the client goes away.
async fn detached<T, F>(future: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
{
    tokio::spawn(future)
        .await
        .map_err(|e| ApiError::internal(format!("the request's task failed: {e}")))?
}

async fn not_found() -> Response {
    ApiError::not_found("no such endpoint: is the wharf daemon of another version than this CLI? restart it with `wharf daemon`").into_response()
}

async fn info(State(c): Shared) -> Response {
    let info: DaemonInfo = c.info();
    json(&info)
}

async fn projects(State(c): Shared) -> Response {
    let r: Result<Vec<ProjectSummary>, ApiError> = c.projects().await;
    reply(r)
}

async fn up(State(c): Shared, ProjectName(project): ProjectName, bytes: Bytes) -> Response {
    let request: UpRequest = match body(&bytes) {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    reply(detached(async move { c.up(&project, request).await }).await)
}

async fn ps(
    State(c): Shared,
    ProjectName(project): ProjectName,
    RawQuery(q): RawQuery,
) -> Response {
    match query::<PsQuery>(q) {
        Ok(q) => reply(c.ps(&project, q.all).await),
        Err(e) => e.into_response(),
    }
}

async fn logs(
    State(c): Shared,
    ProjectName(project): ProjectName,
    RawQuery(q): RawQuery,
) -> Response {
    let q: LogsQuery = match query(q) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    match c.logs(&project, q).await {
        Ok(rx) => ndjson(rx),
        Err(e) => e.into_response(),
    }
}

fn services(bytes: &[u8]) -> Result<Option<Vec<String>>, ApiError> {
    if bytes.is_empty() {
        return Ok(None);
    }
    body::<ServicesRequest>(bytes).map(|r| r.services)
}

async fn start(State(c): Shared, ProjectName(project): ProjectName, bytes: Bytes) -> Response {
    match services(&bytes) {
        Ok(s) => reply(detached(async move { c.start(&project, s).await }).await),
        Err(e) => e.into_response(),
    }
}

async fn stop(State(c): Shared, ProjectName(project): ProjectName, bytes: Bytes) -> Response {
    match services(&bytes) {
        Ok(s) => reply(detached(async move { c.stop(&project, s).await }).await),
        Err(e) => e.into_response(),
    }
}

async fn restart(State(c): Shared, ProjectName(project): ProjectName, bytes: Bytes) -> Response {
    match services(&bytes) {
        Ok(s) => reply(detached(async move { c.restart(&project, s).await }).await),
        Err(e) => e.into_response(),
    }
}

async fn kill(State(c): Shared, ProjectName(project): ProjectName, bytes: Bytes) -> Response {
    match services(&bytes) {
        Ok(s) => reply(detached(async move { c.kill(&project, s).await }).await),
        Err(e) => e.into_response(),
    }
}

async fn scale(State(c): Shared, ProjectName(project): ProjectName, bytes: Bytes) -> Response {
    match body::<ScaleRequest>(&bytes) {
        Ok(r) => reply(detached(async move { c.scale(&project, r.scale).await }).await),
        Err(e) => e.into_response(),
    }
}

async fn exec_context(
    State(c): Shared,
    ProjectName(project): ProjectName,
    RawQuery(q): RawQuery,
) -> Response {
    match query::<ExecContextQuery>(q) {
        Ok(q) => reply(c.exec_context(&project, &q.service, q.index).await),
        Err(e) => e.into_response(),
    }
}

async fn down(State(c): Shared, ProjectName(project): ProjectName, bytes: Bytes) -> Response {
    let request = if bytes.is_empty() {
        DownRequest::default()
    } else {
        match body::<DownRequest>(&bytes) {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        }
    };
    reply(detached(async move { c.down(&project, request.volumes).await }).await)
}

async fn routes(State(c): Shared, RawQuery(q): RawQuery) -> Response {
    match query::<RoutesQuery>(q).and_then(|mut q| {
        q.project = checked_project(q.project)?;
        Ok(q)
    }) {
        Ok(q) => reply(c.routes(q).await),
        Err(e) => e.into_response(),
    }
}

async fn metrics(State(c): Shared) -> Response {
    match c.metrics().await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn events(State(c): Shared, RawQuery(q): RawQuery) -> Response {
    let q: EventsQuery = match query(q).and_then(|mut q: EventsQuery| {
        q.project = checked_project(q.project)?;
        Ok(q)
    }) {
        Ok(q) => q,
        Err(e) => return e.into_response(),
    };
    match c.events(q.project).await {
        Ok(rx) => ndjson(rx),
        Err(e) => e.into_response(),
    }
}
