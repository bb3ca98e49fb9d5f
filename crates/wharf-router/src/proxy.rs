//! The proxy: a hyper server (HTTP/1.1 and h2c) that sends each request to an instance of its
//! route.
//!
//! The request path: find the route in the current table (one atomic load) -> pick an instance
//! ([`Pools::pick`]) -> rewrite the request (upstream path, hop-by-hop headers out, forwarding
//! headers and `X-Request-Id` in) -> send it on a pooled keep-alive connection and stream the
//! response back. A request whose body is empty is tried on another instance when the connection
//! fails (any method) or, for idempotent methods, when the exchange breaks before a response.
//! WebSocket upgrades get a connection of their own and a byte copy that holds no reference to
//! the table, so a table swap never touches them.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

use crate::access;
use crate::cidr::Cidr;
use crate::error::{ProxyError, ProxyErrorKind};
use crate::forwarded;
use crate::pool::{InFlight, InstanceEvent, Pools, Upstream};
use crate::table::{RouteEntry, RouteTable, normalise_host};

/// The body type of everything the router sends.
pub type ProxyBody = BoxBody<Bytes, hyper::Error>;

const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Settings of the proxy that are not per route.
#[derive(Clone, Debug)]
pub struct RouterConfig {
    /// Peers whose forwarding headers and request ids are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// To make a TCP connection to an instance.
    pub connect_timeout: Duration,
    /// From sending a request to an instance until its response headers.
    pub response_timeout: Duration,
    /// For a client to send a request's headers (slowloris).
    pub header_read_timeout: Duration,
    /// Instances tried for one request.
    pub max_attempts: usize,
    /// Idle keep-alive connections to instances are closed after this.
    pub upstream_idle_timeout: Duration,
    /// Whether every instance has an address of its own (isolated networking), so that a peer's
    /// address says which service it is. Without it, `allow_from: service:<name>` matches nobody
    /// (fail closed; the daemon should refuse such routes at config time).
    pub service_identities: bool,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            trusted_proxies: Vec::new(),
            connect_timeout: Duration::from_secs(5),
            response_timeout: Duration::from_secs(60),
            header_read_timeout: Duration::from_secs(30),
            max_attempts: 3,
            upstream_idle_timeout: Duration::from_secs(90),
            service_identities: false,
        }
    }
}

/// The router: a table swapped atomically, the instances of every service, and the upstream
/// connection pool. Clones share all of it.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
}

struct Inner {
    table: ArcSwap<RouteTable>,
    pools: Pools,
    client: Client<HttpConnector, ProxyBody>,
    config: RouterConfig,
    id_prefix: u64,
    id_counter: AtomicU64,
    /// Requests refused by access rules, per route id. Held for an increment, never across an
    /// await.
    denied: Mutex<BTreeMap<String, u64>>,
}

impl Router {
    pub fn new(table: RouteTable, config: RouterConfig) -> Router {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.connect_timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(config.upstream_idle_timeout)
            .build(connector);
        Router {
            inner: Arc::new(Inner {
                table: ArcSwap::from_pointee(table),
                pools: Pools::new(),
                client,
                config,
                id_prefix: RandomState::new().build_hasher().finish(),
                id_counter: AtomicU64::new(0),
                denied: Mutex::new(BTreeMap::new()),
            }),
        }
    }

    /// Replaces the route table; requests already routed and open WebSockets are unaffected.
    pub fn set_table(&self, table: RouteTable) {
        self.inner.table.store(Arc::new(table));
    }

    pub fn table(&self) -> Arc<RouteTable> {
        self.inner.table.load_full()
    }

    /// Applies an instance event to the pools.
    pub fn apply(&self, event: &InstanceEvent) {
        self.inner.pools.apply(event);
    }

    pub fn pools(&self) -> &Pools {
        &self.inner.pools
    }

    /// Requests refused by a route's access rules (403 and 401) since the router started.
    pub fn denied(&self, route: &str) -> u64 {
        self.inner
            .denied
            .lock()
            .map_or(0, |d| d.get(route).copied().unwrap_or(0))
    }

    fn count_denied(&self, route: &str) {
        if let Ok(mut d) = self.inner.denied.lock() {
            *d.entry(route.to_string()).or_default() += 1;
        }
    }

    /// Accepts connections on `listener` until `shutdown` completes; connections already open
    /// keep being served.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => return,
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    // Out of descriptors or a connection reset while queued: keep accepting,
                    // after a pause so that a persistent error does not spin.
                    Err(_) => {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(self.clone().serve_connection(stream, peer));
        }
    }

    async fn serve_connection(self, stream: TcpStream, peer: SocketAddr) {
        let header_read_timeout = self.inner.config.header_read_timeout;
        let service = hyper::service::service_fn(move |req| {
            let router = self.clone();
            async move { Ok::<_, Infallible>(router.handle(req, peer).await) }
        });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        builder.http2().timer(TokioTimer::new());
        // A client that goes away mid-request is its own business.
        let _ = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .await;
    }

    /// Answers one request from `peer`: proxied, or an error response that says why.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let trusted = self.is_trusted(peer);
        let request_id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if trusted => v.clone(),
            _ => self.next_request_id(),
        };
        let mut response = match self.proxy(req, peer, trusted, &request_id).await {
            Ok(r) => r,
            Err(e) => text(e.status(), format!("{e}\n")),
        };
        response.headers_mut().insert(X_REQUEST_ID, request_id);
        response
    }

    fn is_trusted(&self, peer: SocketAddr) -> bool {
        self.inner
            .config
            .trusted_proxies
            .iter()
            .any(|c| c.contains(peer.ip()))
    }

    fn next_request_id(&self) -> HeaderValue {
        let n = self.inner.id_counter.fetch_add(1, Ordering::Relaxed);
        let id = format!("{:016x}{:08x}", self.inner.id_prefix, n);
        HeaderValue::from_str(&id).unwrap_or(HeaderValue::from_static("0"))
    }

    async fn proxy(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        trusted: bool,
        request_id: &HeaderValue,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let authority = req
            .uri()
            .authority()
            .map(|a| a.as_str().to_string())
            .or_else(|| {
                req.headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .map(str::to_string)
            })
            .ok_or_else(|| {
                ProxyError::new(
                    ProxyErrorKind::Downstream,
                    None,
                    "the request names no host",
                )
            })?;
        // Strict, because the host is copied into `Forwarded` and `X-Forwarded-Host`.
        let valid = !authority.is_empty()
            && authority
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b));
        if !valid {
            return Err(ProxyError::new(
                ProxyErrorKind::Downstream,
                None,
                "the request's host is not a host name or address",
            ));
        }
        let host = normalise_host(&authority);
        let table = self.inner.table.load_full();
        let Some(entry) = table.lookup(&host, req.uri().path()).cloned() else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!("no route for host {host} path {}\n", req.uri().path()),
            ));
        };
        drop(table);
        let config = &self.inner.config;
        if !access::allowed(
            &entry,
            peer.ip(),
            &self.inner.pools,
            config.service_identities,
        ) {
            self.count_denied(&entry.id);
            return Ok(text(
                StatusCode::FORBIDDEN,
                format!(
                    "{}: {} is not allowed to use this route\n",
                    entry.id,
                    peer.ip()
                ),
            ));
        }
        if !access::authenticated(&entry, req.headers().get(header::AUTHORIZATION)).await {
            self.count_denied(&entry.id);
            let mut r = text(
                StatusCode::UNAUTHORIZED,
                format!("{}: a user and password are needed\n", entry.id),
            );
            let challenge = format!("Basic realm=\"{}\", charset=\"UTF-8\"", entry.id);
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
            return Ok(r);
        }
        let path_and_query = {
            let path = entry.upstream_path(req.uri().path());
            match req.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path.into_owned(),
            }
        };
        let upgrade = upgrade_protocol(req.headers())
            .filter(|_| req.version() == Version::HTTP_11)
            .map(|protocol| (protocol, hyper::upgrade::on(&mut req)));
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        forwarded::set(&mut headers, peer.ip(), trusted, "http", &authority);
        headers.insert(X_REQUEST_ID, request_id.clone());
        if let Ok(h) = HeaderValue::from_str(&authority) {
            headers.insert(header::HOST, h);
        }
        let outgoing = Outgoing {
            method: parts.method,
            path_and_query,
            headers,
        };
        match upgrade {
            Some((protocol, client_side)) => {
                self.upgrade(&entry, outgoing, protocol, client_side).await
            }
            _ => self.forward(&entry, outgoing, body).await,
        }
    }

    async fn forward(
        &self,
        entry: &RouteEntry,
        outgoing: Outgoing,
        body: Incoming,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let config = &self.inner.config;
        let empty_body = body.is_end_stream();
        let idempotent = is_idempotent(&outgoing.method);
        let mut body = Some(body.boxed());
        let mut tried = Vec::new();
        let mut last_error = None;
        for _ in 0..config.max_attempts.max(1) {
            let upstream = match self.inner.pools.pick(entry, &tried) {
                Ok(u) => u,
                Err(why) => {
                    return Err(last_error.unwrap_or_else(|| {
                        ProxyError::new(
                            ProxyErrorKind::NoInstance,
                            Some(&entry.id),
                            why.to_string(),
                        )
                    }));
                }
            };
            let addr = upstream.socket_addr(entry.route.port);
            tried.push(addr);
            let in_flight = upstream.begin();
            let body = match body.take() {
                Some(b) => b,
                None => Empty::new().map_err(|never| match never {}).boxed(),
            };
            let req = outgoing.request(addr, body, entry)?;
            let sent =
                tokio::time::timeout(config.response_timeout, self.inner.client.request(req));
            let error = match sent.await {
                Err(_) => {
                    return Err(ProxyError::new(
                        ProxyErrorKind::UpstreamTimeout,
                        Some(&entry.id),
                        format!(
                            "instance {} did not answer within {:?}",
                            upstream.instance, config.response_timeout
                        ),
                    ));
                }
                Ok(Ok(response)) => return Ok(tracked(response, in_flight)),
                Ok(Err(e)) => classify(&e, entry, &upstream),
            };
            let again = empty_body && (error.is_retryable() || idempotent);
            last_error = Some(error);
            if !again {
                break;
            }
        }
        Err(last_error.unwrap_or_else(|| {
            ProxyError::new(
                ProxyErrorKind::Internal,
                Some(&entry.id),
                "no attempt was made",
            )
        }))
    }

    async fn upgrade(
        &self,
        entry: &RouteEntry,
        mut outgoing: Outgoing,
        protocol: HeaderValue,
        client_upgrade: hyper::upgrade::OnUpgrade,
    ) -> Result<Response<ProxyBody>, ProxyError> {
        let config = &self.inner.config;
        outgoing
            .headers
            .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        outgoing.headers.insert(header::UPGRADE, protocol);
        let mut tried = Vec::new();
        let mut last_error = None;
        let (upstream, stream) = loop {
            if tried.len() >= config.max_attempts.max(1) {
                return Err(last_error.unwrap_or_else(|| {
                    ProxyError::new(ProxyErrorKind::Internal, Some(&entry.id), "no attempt")
                }));
            }
            let upstream = match self.inner.pools.pick(entry, &tried) {
                Ok(u) => u,
                Err(why) => {
                    return Err(last_error.unwrap_or_else(|| {
                        ProxyError::new(
                            ProxyErrorKind::NoInstance,
                            Some(&entry.id),
                            why.to_string(),
                        )
                    }));
                }
            };
            let addr = upstream.socket_addr(entry.route.port);
            tried.push(addr);
            match tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr)).await {
                Ok(Ok(stream)) => break (upstream, stream),
                Ok(Err(e)) => {
                    last_error = Some(ProxyError::new(
                        ProxyErrorKind::UpstreamConnect,
                        Some(&entry.id),
                        format!("instance {} ({addr}): {e}", upstream.instance),
                    ));
                }
                Err(_) => {
                    last_error = Some(ProxyError::new(
                        ProxyErrorKind::UpstreamConnect,
                        Some(&entry.id),
                        format!("instance {} ({addr}): connect timed out", upstream.instance),
                    ));
                }
            }
        };
        let in_flight = upstream.begin();
        let addr = upstream.socket_addr(entry.route.port);
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| classify_hyper(&e, entry, &upstream))?;
        tokio::spawn(connection.with_upgrades());
        let req = outgoing.request(
            addr,
            Empty::new().map_err(|never| match never {}).boxed(),
            entry,
        )?;
        let mut response = tokio::time::timeout(config.response_timeout, sender.send_request(req))
            .await
            .map_err(|_| {
                ProxyError::new(
                    ProxyErrorKind::UpstreamTimeout,
                    Some(&entry.id),
                    format!("instance {} did not answer the upgrade", upstream.instance),
                )
            })?
            .map_err(|e| classify_hyper(&e, entry, &upstream))?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            strip_hop_by_hop(response.headers_mut());
            return Ok(tracked(response, in_flight));
        }
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        tokio::spawn(async move {
            // Held until both sides are done: the instance counts this connection as outstanding.
            let _in_flight = in_flight;
            if let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) {
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
        let (parts, _) = response.into_parts();
        Ok(Response::from_parts(
            parts,
            Empty::new().map_err(|never| match never {}).boxed(),
        ))
    }
}

/// A request rewritten for an upstream, re-sendable to another instance.
struct Outgoing {
    method: Method,
    path_and_query: String,
    headers: HeaderMap,
}

impl Outgoing {
    fn request(
        &self,
        addr: SocketAddr,
        body: ProxyBody,
        entry: &RouteEntry,
    ) -> Result<Request<ProxyBody>, ProxyError> {
        let uri: Uri = format!("http://{addr}{}", self.path_and_query)
            .parse()
            .map_err(|e| internal(entry, e))?;
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = uri;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = self.headers.clone();
        Ok(req)
    }
}

fn internal(entry: &RouteEntry, e: impl std::fmt::Display) -> ProxyError {
    ProxyError::new(ProxyErrorKind::Internal, Some(&entry.id), e.to_string())
}

fn classify(
    e: &hyper_util::client::legacy::Error,
    entry: &RouteEntry,
    upstream: &Upstream,
) -> ProxyError {
    let kind = if e.is_connect() {
        ProxyErrorKind::UpstreamConnect
    } else {
        ProxyErrorKind::UpstreamProtocol
    };
    let mut message = format!("instance {}: {e}", upstream.instance);
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    ProxyError::new(kind, Some(&entry.id), message)
}

fn classify_hyper(e: &hyper::Error, entry: &RouteEntry, upstream: &Upstream) -> ProxyError {
    ProxyError::new(
        ProxyErrorKind::UpstreamProtocol,
        Some(&entry.id),
        format!("instance {}: {e}", upstream.instance),
    )
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    )
}

/// The protocol of an HTTP/1.1 upgrade request (`Connection: upgrade` + `Upgrade: x`).
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if asks {
        headers.get(header::UPGRADE).cloned()
    } else {
        None
    }
}

/// Removes the headers that describe one hop, including those a `Connection` header names.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// An upstream response whose body keeps the instance's in-flight count until it is done.
fn tracked(response: Response<Incoming>, in_flight: InFlight) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(
        parts,
        Tracked {
            inner: body,
            _in_flight: in_flight,
        }
        .boxed(),
    )
}

struct Tracked {
    inner: Incoming,
    _in_flight: InFlight,
}

impl Body for Tracked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn text(status: StatusCode, body: String) -> Response<ProxyBody> {
    let mut r = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
