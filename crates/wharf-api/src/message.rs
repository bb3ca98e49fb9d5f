//! Every request and response of the control API, in one place: the daemon serves them
//! ([`crate::server`]), the CLI sends them ([`crate::client`]). All are JSON; the two streams
//! (logs, events) are newline-delimited JSON, one value a line.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

pub use wharf_supervisor::{Event, EventKind, Health, InstanceState, Status};

/// Who answers on the socket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaemonInfo {
    pub version: String,
    /// The daemon's process id.
    pub pid: u32,
    pub state_dir: PathBuf,
    /// The runtime instances run on (`native`).
    pub runtime: String,
}

/// One project the daemon knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectSummary {
    pub name: String,
    pub project_directory: Option<PathBuf>,
    /// Instances not finished (starting, running, restarting).
    pub running: usize,
    pub instances: usize,
}

/// `wharf up`: the CLI loads the project itself (so that errors point at the user's files) and
/// sends it normalised.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpRequest {
    /// The project as `wharf config` prints it (YAML); loading it again gives the same project.
    pub yaml: String,
    /// The directory relative paths were resolved against.
    pub project_directory: PathBuf,
    /// Only these services (and their dependencies); `None` for all.
    pub services: Option<Vec<String>>,
    pub force_recreate: bool,
    pub no_recreate: bool,
    /// Answer only once every instance is ready (`--wait`).
    pub wait: bool,
    /// How long to wait for readiness (default: [`DEFAULT_WAIT_TIMEOUT_MS`]).
    pub wait_timeout_ms: Option<u64>,
    /// `native` or `docker` (`--runtime`); `None`: `x-wharf.runtime`, else what the project ran
    /// on before, else native.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Remove the instances of services the project no longer has (`--remove-orphans`).
    #[serde(default)]
    pub remove_orphans: bool,
}

/// How long `up --wait` waits when no timeout is given.
pub const DEFAULT_WAIT_TIMEOUT_MS: u64 = 300_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpResponse {
    /// The plan that was carried out, as printed by wharf-plan.
    pub plan: String,
    /// Dependencies that failed but were not required.
    pub warnings: Vec<String>,
}

/// `start`, `stop`, `restart`, `kill`: some services, or all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServicesRequest {
    pub services: Option<Vec<String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionResponse {
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScaleRequest {
    pub scale: BTreeMap<String, u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PsQuery {
    /// Also instances that have stopped or exited for good.
    #[serde(default)]
    pub all: bool,
}

/// `wharf logs`; a query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsQuery {
    /// Service names, comma-separated; none means every service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<String>,
    /// The last N lines of each instance; none means all that are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tail: Option<usize>,
    /// Keep streaming new lines (of restarted and new instances too).
    #[serde(default)]
    pub follow: bool,
}

impl LogsQuery {
    /// The services asked for; empty means all.
    pub fn service_list(&self) -> Vec<String> {
        self.services
            .iter()
            .flat_map(|s| s.split(','))
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

/// Which stream a log line came from; `wharf` marks lines the daemon wrote itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogStream {
    Stdout,
    Stderr,
    Wharf,
}

/// One line of an instance's output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub project: String,
    pub service: String,
    pub instance: String,
    /// RFC 3339, UTC, with milliseconds: `2026-11-03T10:04:05.123Z`.
    pub time: String,
    pub stream: LogStream,
    pub line: String,
}

/// `wharf events`; a query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventsQuery {
    /// Only this project's events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// `wharf exec`; a query string.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecContextQuery {
    pub service: String,
    /// The replica number, from 1.
    pub index: u32,
}

/// What a command run "in" an instance needs; the CLI runs the command itself, with its own
/// standard streams, so that a terminal just works.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecContext {
    pub instance: String,
    /// The instance's process id (its shim, natively).
    pub pid: Option<u32>,
    /// The instance's complete environment.
    pub environment: BTreeMap<String, String>,
    pub working_dir: PathBuf,
    /// `user:` as written in the service.
    pub user: Option<String>,
    /// When the instance is isolated: the command line that runs a command inside it (the shim,
    /// which joins its namespaces, user and directory); the command and its arguments are
    /// appended to it. Absent: run the command directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wrapper: Option<Vec<String>>,
    /// The wrapper is the engine's own client (`docker exec -i <container>`): it runs with the
    /// caller's environment (the engine sets the instance's), and gets `-t` after its second word
    /// when standard input is a terminal.
    #[serde(default)]
    pub engine: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownRequest {
    /// Also delete the data of the project's named volumes.
    pub volumes: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DownResponse {
    /// The directories of the volumes that were removed (the engine's volume names, on Docker).
    pub removed_volumes: Vec<PathBuf>,
    /// What could not be removed once every instance had stopped (an engine network that keeps
    /// an endpoint, say): the project is forgotten anyway.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

/// One route of the router, for `wharf routes`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteInfo {
    pub project: String,
    /// `web` or `web.admin`.
    pub route: String,
    /// The router's HTTP address.
    pub listen: String,
    /// Empty: any host.
    pub hosts: Vec<String>,
    pub path: String,
    pub strip_path: bool,
    pub service: String,
    pub port: u16,
    /// Instances taking traffic now.
    pub healthy: usize,
    /// Instances known (or asked for, when more).
    pub instances: usize,
    /// `allow_from ...`, `basic_auth <users>`, `forward_auth <url>`.
    pub access: Vec<String>,
    /// `files`, `self-signed` or `acme`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<String>,
    /// Requests refused by the access rules since the daemon started.
    pub denied: u64,
}

/// `wharf routes`; a query string.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutesQuery {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `--explain URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explain: Option<String>,
}

/// The answer of `GET /v1/routes`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutesResponse {
    pub routes: Vec<RouteInfo>,
    /// With `explain`: for each router, which route the URL matches and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub explanations: Vec<String>,
}

/// What went wrong, as the daemon tells it (and, for `Connect` and `Protocol`, as the client
/// found it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The request is wrong (an invalid project, an unknown service).
    BadRequest,
    /// No such project.
    NotFound,
    /// The request was valid, but carrying it out failed (a service did not start).
    Failed,
    /// Waiting for readiness timed out.
    Timeout,
    /// A bug or an I/O error in the daemon.
    Internal,
    /// Nothing answers on the socket.
    Connect,
    /// The answer could not be understood.
    Protocol,
}

/// The error of every API call; on the wire, the body of every non-2xx response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError {
            kind,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::NotFound, message)
    }

    pub fn failed(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Failed, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        ApiError::new(ErrorKind::Internal, message)
    }
}
