//! The CLI's side of the control API: one HTTP/1 connection per call over the daemon's Unix
//! socket, JSON in and out, and [`JsonStream`] for the streaming endpoints.
//!
//! Before it sends anything, the client checks who listens on the socket (its peer
//! credentials, `SO_PEERCRED`): the daemon must run as root or as the user running the CLI.
//! The CLI acts on the answers (`exec` runs what `exec-context` says, as root when the CLI is
//! root), so a socket another user made in a state directory they created first must not be
//! trusted.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, header};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::message::{
    ActionResponse, ApiError, DaemonInfo, DownRequest, DownResponse, ErrorKind, Event, EventsQuery,
    ExecContext, ExecContextQuery, InstanceState, LogEntry, LogsQuery, ProjectSummary, PsQuery,
    RoutesQuery, RoutesResponse, ScaleRequest, ServicesRequest, UpRequest, UpResponse,
};

/// A client of the daemon listening on `socket`.
#[derive(Clone, Debug)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Self {
        Client {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    pub async fn info(&self) -> Result<DaemonInfo, ApiError> {
        self.call(Method::GET, "/v1/info", None::<&()>).await
    }

    pub async fn projects(&self) -> Result<Vec<ProjectSummary>, ApiError> {
        self.call(Method::GET, "/v1/projects", None::<&()>).await
    }

    pub async fn up(&self, project: &str, request: &UpRequest) -> Result<UpResponse, ApiError> {
        self.call(Method::POST, &path(project, "up"), Some(request))
            .await
    }

    pub async fn ps(&self, project: &str, all: bool) -> Result<Vec<InstanceState>, ApiError> {
        let q = encode(&PsQuery { all })?;
        self.call(
            Method::GET,
            &format!("{}?{q}", path(project, "ps")),
            None::<&()>,
        )
        .await
    }

    pub async fn logs(
        &self,
        project: &str,
        query: &LogsQuery,
    ) -> Result<JsonStream<LogEntry>, ApiError> {
        let q = encode(query)?;
        self.stream(&format!("{}?{q}", path(project, "logs"))).await
    }

    pub async fn start(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        self.services_call(project, "start", services).await
    }

    pub async fn stop(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        self.services_call(project, "stop", services).await
    }

    pub async fn restart(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        self.services_call(project, "restart", services).await
    }

    pub async fn kill(
        &self,
        project: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        self.services_call(project, "kill", services).await
    }

    pub async fn scale(
        &self,
        project: &str,
        scale: BTreeMap<String, u32>,
    ) -> Result<ActionResponse, ApiError> {
        self.call(
            Method::POST,
            &path(project, "scale"),
            Some(&ScaleRequest { scale }),
        )
        .await
    }

    pub async fn exec_context(
        &self,
        project: &str,
        service: &str,
        index: u32,
    ) -> Result<ExecContext, ApiError> {
        let q = encode(&ExecContextQuery {
            service: service.to_string(),
            index,
        })?;
        let p = format!("{}?{q}", path(project, "exec-context"));
        self.call(Method::GET, &p, None::<&()>).await
    }

    pub async fn down(&self, project: &str, volumes: bool) -> Result<DownResponse, ApiError> {
        self.call(
            Method::POST,
            &path(project, "down"),
            Some(&DownRequest { volumes }),
        )
        .await
    }

    /// Every event from now on, of `project` or of all projects.
    pub async fn events(&self, project: Option<&str>) -> Result<JsonStream<Event>, ApiError> {
        let q = encode(&EventsQuery {
            project: project.map(str::to_string),
        })?;
        self.stream(&format!("/v1/events?{q}")).await
    }

    /// The router's routes; with `query.explain`, also which route that URL matches.
    pub async fn routes(&self, query: &RoutesQuery) -> Result<RoutesResponse, ApiError> {
        let q = encode(query)?;
        self.call(Method::GET, &format!("/v1/routes?{q}"), None::<&()>)
            .await
    }

    /// The router's metrics, in Prometheus' text format.
    pub async fn metrics(&self) -> Result<String, ApiError> {
        let response = self.send(Method::GET, "/metrics", Vec::new()).await?;
        let bytes = collect(response.into_body()).await?;
        String::from_utf8(bytes.to_vec()).map_err(|e| {
            ApiError::new(
                ErrorKind::Protocol,
                format!("the daemon's metrics are not UTF-8: {e}"),
            )
        })
    }

    async fn services_call(
        &self,
        project: &str,
        verb: &str,
        services: Option<Vec<String>>,
    ) -> Result<ActionResponse, ApiError> {
        self.call(
            Method::POST,
            &path(project, verb),
            Some(&ServicesRequest { services }),
        )
        .await
    }

    async fn call<T: DeserializeOwned, B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> Result<T, ApiError> {
        let body = match body {
            Some(b) => serde_json::to_vec(b).map_err(|e| {
                ApiError::new(
                    ErrorKind::Protocol,
                    format!("cannot encode the request: {e}"),
                )
            })?,
            None => Vec::new(),
        };
        let response = self.send(method, path, body).await?;
        let bytes = collect(response.into_body()).await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                ErrorKind::Protocol,
                format!("cannot understand the daemon's answer to {path}: {e}"),
            )
        })
    }

    async fn stream<T: DeserializeOwned>(&self, path: &str) -> Result<JsonStream<T>, ApiError> {
        let response = self.send(Method::GET, path, Vec::new()).await?;
        Ok(JsonStream {
            body: response.into_body(),
            buf: Vec::new(),
            done: false,
            item: PhantomData,
        })
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Vec<u8>,
    ) -> Result<hyper::Response<Incoming>, ApiError> {
        let stream = UnixStream::connect(&self.socket).await.map_err(|e| {
            ApiError::new(
                ErrorKind::Connect,
                format!(
                    "cannot connect to the wharf daemon at {}: {e}",
                    self.socket.display()
                ),
            )
        })?;
        let peer = stream.peer_cred().map_err(|e| {
            ApiError::new(
                ErrorKind::Protocol,
                format!(
                    "cannot learn who listens on {} (its peer credentials): {e}",
                    self.socket.display()
                ),
            )
        })?;
        trusted_daemon(
            peer.uid(),
            rustix::process::geteuid().as_raw(),
            &self.socket,
        )?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(lost)?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, "wharf")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ApiError::new(ErrorKind::Protocol, format!("invalid request: {e}")))?;
        let response = sender.send_request(request).await.map_err(lost)?;
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let bytes = collect(response.into_body()).await?;
        Err(
            serde_json::from_slice::<ApiError>(&bytes).unwrap_or_else(|_| {
                ApiError::new(
                    ErrorKind::Protocol,
                    format!(
                        "the daemon answered {status}: {}",
                        String::from_utf8_lossy(&bytes).trim()
                    ),
                )
            }),
        )
    }
}

/// Whether a daemon running as `peer_uid` may be trusted by a CLI running as `own_uid`: root's
/// or the user's own, nobody else's.
pub fn trusted_daemon(peer_uid: u32, own_uid: u32, socket: &Path) -> Result<(), ApiError> {
    if peer_uid == 0 || peer_uid == own_uid {
        return Ok(());
    }
    Err(ApiError::new(
        ErrorKind::Protocol,
        format!(
            "the process listening on {} runs as uid {peer_uid}, neither root nor you (uid {own_uid}), so wharf does not trust its answers; another user may have created this state directory: remove it (or set WHARF_STATE_DIR to a directory of yours) and run again",
            socket.display()
        ),
    ))
}

fn path(project: &str, verb: &str) -> String {
    format!("/v1/projects/{project}/{verb}")
}

fn encode<T: Serialize>(query: &T) -> Result<String, ApiError> {
    serde_urlencoded::to_string(query)
        .map_err(|e| ApiError::new(ErrorKind::Protocol, format!("cannot encode the query: {e}")))
}

fn lost(e: hyper::Error) -> ApiError {
    ApiError::new(
        ErrorKind::Protocol,
        format!("lost the connection to the wharf daemon: {e}"),
    )
}

async fn collect(body: Incoming) -> Result<Bytes, ApiError> {
    Ok(body.collect().await.map_err(lost)?.to_bytes())
}

/// A stream of newline-delimited JSON values (log lines, events). `next` is cancel-safe: it
/// may be raced in `select!` without losing data.
pub struct JsonStream<T> {
    body: Incoming,
    buf: Vec<u8>,
    done: bool,
    item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> JsonStream<T> {
    /// The next value; `None` once the daemon ended the stream.
    pub async fn next(&mut self) -> Result<Option<T>, ApiError> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = &line[..end];
                if line.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                return serde_json::from_slice(line).map(Some).map_err(|e| {
                    ApiError::new(
                        ErrorKind::Protocol,
                        format!("cannot understand a line the daemon streamed: {e}"),
                    )
                });
            }
            if self.done {
                return Ok(None);
            }
            match self.body.frame().await {
                None => self.done = true,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
                Some(Err(e)) => return Err(lost(e)),
            }
        }
    }
}
