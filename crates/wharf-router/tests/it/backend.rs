//! Real servers and clients for the tests: HTTP backends that report what they received, a
//! WebSocket echo backend, the router on an ephemeral port, and a keep-alive client.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use wharf_router::table::RouteEntry;
use wharf_router::{InstanceEvent, RouteTable, Router, RouterConfig, route};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// An HTTP server whose answer is its name, the path it was asked for and the request's headers,
/// one per line. `kill` closes its listener and every connection at once.
pub struct Backend {
    pub name: String,
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Backend {
    pub async fn start(name: &str) -> Backend {
        let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let owned = name.to_string();
        let task = tokio::spawn(async move {
            // Dropped with this task: aborting it closes every connection.
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    break;
                };
                let name = owned.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<_>| {
                        let mut body = format!("{name}\n{}\n", req.uri());
                        for (k, v) in req.headers() {
                            body.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                        }
                        async move { Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body)))) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                // Reap finished connections so the set stays small.
                while connections.try_join_next().is_some() {}
            }
        });
        Backend {
            name: name.to_string(),
            addr,
            task,
        }
    }

    /// Like SIGKILL for the process: the port refuses connections and open ones are closed.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }

    /// The event the supervisor would send for this backend serving the route port `port`.
    pub fn up(&self, service: &str, port: u16, healthy: bool) -> InstanceEvent {
        InstanceEvent::Up {
            project: "p".into(),
            service: service.into(),
            instance: self.name.clone(),
            addr: LOCALHOST,
            addresses: Vec::new(),
            ports: BTreeMap::from([(port, self.addr.port())]),
            healthy,
        }
    }
}

/// A WebSocket server that echoes every message.
pub async fn websocket_echo() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                while let Some(Ok(msg)) = ws.next().await {
                    if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// A route table from `(service, labels)`; `healthcheck` says whether the services have one.
pub fn table(services: &[(&str, &[(&str, &str)])], healthcheck: bool, replicas: u32) -> RouteTable {
    let mut entries = Vec::new();
    for (service, labels) in services {
        let labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for r in route::parse(&labels).expect("valid labels") {
            entries.push(RouteEntry {
                id: r.id(service),
                project: "p".into(),
                service: service.to_string(),
                route: r,
                has_healthcheck: healthcheck,
                replicas,
            });
        }
    }
    RouteTable::new(entries).expect("no tie")
}

/// The router serving on an ephemeral port until dropped.
pub struct RunningRouter {
    pub router: Router,
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn start_router(table: RouteTable, config: RouterConfig) -> RunningRouter {
    let router = Router::new(table, config);
    let listener = TcpListener::bind((LOCALHOST, 0)).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let serving = router.clone();
    tokio::spawn(async move {
        serving
            .serve(listener, async {
                let _ = stopped.await;
            })
            .await;
    });
    RunningRouter {
        router,
        addr,
        _stop: stop,
    }
}

/// A keep-alive HTTP/1.1 client (or h2c with `http2_only`).
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpConnector, Empty<Bytes>>,
    router: SocketAddr,
}

pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The value of a header as the backend received it.
    pub fn seen(&self, name: &str) -> Vec<String> {
        let prefix = format!("{name}: ");
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix).map(str::to_string))
            .collect()
    }

    /// The backend that answered.
    pub fn backend(&self) -> &str {
        self.body.lines().next().unwrap_or("")
    }
}

impl Client {
    pub fn new(router: SocketAddr, http2_only: bool) -> Client {
        Client {
            inner: HyperClient::builder(TokioExecutor::new())
                .http2_only(http2_only)
                .build_http(),
            router,
        }
    }

    pub async fn get(&self, host: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
        self.try_get(host, path, headers).await.expect("request")
    }

    pub async fn try_get(
        &self,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
    ) -> Result<Answer, String> {
        let mut req = Request::builder()
            .uri(format!("http://{}{path}", self.router))
            .header("host", host);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = req.body(Empty::new()).map_err(|e| e.to_string())?;
        let res = self.inner.request(req).await.map_err(|e| e.to_string())?;
        let status = res.status();
        let headers = res.headers().clone();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok(Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        })
    }
}
