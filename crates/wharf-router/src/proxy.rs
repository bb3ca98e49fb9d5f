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
//!
//! Plain-HTTP connections start on the HTTP/1.1 fast path (`src/http1.rs`), which takes the
//! same steps without hyper and hands a connection to [`Router::serve_stream`] when it meets
//! what it does not serve; TLS connections come here directly.
//!
//! Every answer, proxied or not, ends in [`Reply`], a body that counts its bytes and, when done
//! (or dropped, when the client goes away), records the request in the route's metrics and the
//! access log.

use std::collections::hash_map::RandomState;
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::uri::{self, PathAndQuery};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::{TcpListener, TcpStream};

use crate::access::{self, AuthQuestion, ForwardAuth};
use crate::access_log::{AccessLog, AccessRecord};
use crate::cidr::Cidr;
use crate::connection::{Activity, Admitted, Busy, ClientLimits};
use crate::error::{ProxyError, ProxyErrorKind};
use crate::forwarded;
use crate::http1::upstream::UpstreamPool;
use crate::metrics::{Denial, Metrics, RouteMetrics, UpstreamFailure};
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
    /// For a route's `forward_auth` service to answer.
    pub forward_auth_timeout: Duration,
    /// Where a line per request goes; `None`: no access log.
    pub access_log: Option<AccessLog>,
    /// Whether plain-HTTP connections take the HTTP/1.1 fast path (`src/http1.rs`), which hands
    /// what it does not serve to hyper; off: hyper serves every connection.
    pub http1_fast_path: bool,
    /// A connection served by hyper (h2c, h2 and HTTP/1.1 over TLS) with no request in progress
    /// is closed after this (an h2 connection with a GOAWAY). It also bounds an h2 client's
    /// handshake. nginx closes idle HTTP/2 connections after `keepalive_timeout`, 75 s.
    pub idle_timeout: Duration,
    /// An h2 connection is sent a PING this often; a peer that does not answer within
    /// `h2_keep_alive_timeout` is gone, and so is its connection.
    pub h2_keep_alive_interval: Duration,
    pub h2_keep_alive_timeout: Duration,
    /// For a TLS client to finish its handshake.
    pub tls_handshake_timeout: Duration,
    /// Connections one client address may hold open at once, on each listener's router
    /// (trusted proxies, which carry many clients, are not limited). A connection over the
    /// limit is closed as soon as it is accepted.
    pub max_connections_per_client: usize,
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
            forward_auth_timeout: Duration::from_secs(10),
            access_log: None,
            http1_fast_path: true,
            idle_timeout: Duration::from_secs(75),
            h2_keep_alive_interval: Duration::from_secs(30),
            h2_keep_alive_timeout: Duration::from_secs(20),
            tls_handshake_timeout: Duration::from_secs(10),
            // nginx sets no limit unless `limit_conn` is configured; 256 is far more than a
            // browser opens (6 per host over HTTP/1.1, 1 over h2) and far fewer than the
            // descriptors the daemon has.
            max_connections_per_client: 256,
        }
    }
}

/// The router: a table swapped atomically, the instances of every service, and the upstream
/// connection pool. Clones share all of it.
#[derive(Clone)]
pub struct Router {
    inner: Arc<Inner>,
    /// The keep-alive pool to instances. A clone shares it; each thread of
    /// [`Router::serve_on_threads`] has its own, so that a connection to an instance is always
    /// driven by the thread whose requests use it.
    client: Client<HttpConnector, ProxyBody>,
    /// The fast path's keep-alive connections to instances, per thread as `client`.
    upstreams: Arc<UpstreamPool>,
}

pub(crate) struct Inner {
    pub(crate) routing: ArcSwap<Routing>,
    pub(crate) pools: Pools,
    config: RouterConfig,
    id_prefix: u64,
    id_counter: AtomicU64,
    metrics: Metrics,
    /// ACME HTTP-01 answers and HTTPS redirects (src/tls.rs), off until `enable_https`.
    pub(crate) https: crate::tls::HttpsState,
    /// Open connections per client address (`max_connections_per_client`).
    limits: Arc<ClientLimits>,
}

/// A table and the counters of its routes (in the table's order), swapped in together so that a
/// request finds its route's counters without a lookup.
pub(crate) struct Routing {
    pub(crate) table: Arc<RouteTable>,
    pub(crate) metrics: Vec<Arc<RouteMetrics>>,
}

impl Routing {
    fn new(table: RouteTable, metrics: &Metrics) -> Routing {
        Routing {
            metrics: metrics.for_table(&table),
            table: Arc::new(table),
        }
    }
}

impl Router {
    pub fn new(table: RouteTable, config: RouterConfig) -> Router {
        let client = upstream_client(&config);
        let upstream_idle_timeout = config.upstream_idle_timeout;
        let metrics = Metrics::new(config.access_log.as_ref().map(|l| l.errors.clone()));
        let limits = ClientLimits::new(config.max_connections_per_client);
        Router {
            inner: Arc::new(Inner {
                routing: ArcSwap::from_pointee(Routing::new(table, &metrics)),
                pools: Pools::new(),
                config,
                id_prefix: RandomState::new().build_hasher().finish(),
                id_counter: AtomicU64::new(0),
                metrics,
                https: crate::tls::HttpsState::default(),
                limits,
            }),
            client,
            upstreams: Arc::new(UpstreamPool::new(upstream_idle_timeout)),
        }
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    pub(crate) fn upstreams(&self) -> &UpstreamPool {
        &self.upstreams
    }

    /// Replaces the route table; requests already routed and open WebSockets are unaffected.
    /// Routes keep their counters across swaps.
    pub fn set_table(&self, table: RouteTable) {
        let routing = Routing::new(table, &self.inner.metrics);
        self.inner.routing.store(Arc::new(routing));
    }

    pub fn table(&self) -> Arc<RouteTable> {
        self.inner.routing.load().table.clone()
    }

    /// Applies an instance event to the pools.
    pub fn apply(&self, event: &InstanceEvent) {
        self.inner.pools.apply(event);
    }

    pub fn pools(&self) -> &Pools {
        &self.inner.pools
    }

    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    pub(crate) fn https_state(&self) -> &crate::tls::HttpsState {
        &self.inner.https
    }

    /// Requests refused by a route's access rules (`allow_from`, `basic_auth`, `forward_auth`)
    /// since the router started.
    pub fn denied(&self, route: &str) -> u64 {
        self.inner
            .metrics
            .routes_named(route)
            .iter()
            .map(|m| m.denied())
            .sum()
    }

    /// The router's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Every counter in Prometheus's text exposition format, for a `/metrics` endpoint
    /// (`Content-Type: text/plain; version=0.0.4`).
    pub fn metrics_text(&self) -> String {
        self.inner.metrics.render()
    }

    /// Accepts connections on `listener` until `shutdown` completes; connections already open
    /// keep being served.
    pub async fn serve(&self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        let fast = self.inner.config.http1_fast_path;
        accept_until(listener, shutdown, |stream, peer| {
            let router = self.clone();
            async move {
                let Some(_admitted) = router.admit(peer) else {
                    return;
                };
                if fast {
                    crate::http1::serve(router, stream, peer).await;
                } else {
                    router.serve_stream(stream, peer, false).await;
                }
            }
        })
        .await;
    }

    /// Serves `listener` on `threads` threads of its own, each with a single-threaded runtime
    /// that accepts and serves its connections from start to end, as nginx's worker processes
    /// do: no task moves between threads and no thread wakes another, which on a small machine
    /// shared with the upstreams measured 1.5x the requests per second of the same number
    /// of workers of one multi-threaded runtime (bench/router.sh). Each thread has its own
    /// keep-alive pool to the instances. When `shutdown` changes or its sender is dropped, the
    /// threads stop accepting; each ends once its open connections have.
    pub fn serve_on_threads(
        &self,
        listener: std::net::TcpListener,
        threads: usize,
        shutdown: tokio::sync::watch::Receiver<()>,
    ) -> std::io::Result<Vec<std::thread::JoinHandle<()>>> {
        listener.set_nonblocking(true)?;
        let mut handles = Vec::new();
        for n in 0..threads.max(1) {
            let listener = listener.try_clone()?;
            let router = Router {
                inner: self.inner.clone(),
                client: upstream_client(&self.inner.config),
                upstreams: Arc::new(UpstreamPool::new(self.inner.config.upstream_idle_timeout)),
            };
            let mut shutdown = shutdown.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let handle = std::thread::Builder::new()
                .name(format!("wharf-router-{n}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let Ok(listener) = TcpListener::from_std(listener) else {
                            return;
                        };
                        router
                            .serve(listener, async move {
                                let _ = shutdown.changed().await;
                            })
                            .await;
                        // Open connections (WebSockets too) finish on their own; this thread's
                        // upstream pool goes with the last of them, and the thread with it.
                        drop(router);
                        let runtime = tokio::runtime::Handle::current();
                        while runtime.metrics().num_alive_tasks() > 0 {
                            tokio::time::sleep(Duration::from_millis(50)).await;
                        }
                    });
                })?;
            handles.push(handle);
        }
        Ok(handles)
    }

    /// Serves one client connection (plain, or TLS once its handshake is done: then requests
    /// are marked as having come over TLS, for the forwarded protocol and the redirects).
    pub(crate) async fn serve_stream<I>(self, io: I, peer: SocketAddr, via_tls: bool)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let config = &self.inner.config;
        let header_read_timeout = config.header_read_timeout;
        let idle_timeout = config.idle_timeout;
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(header_read_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(config.h2_keep_alive_interval)
            .keep_alive_timeout(config.h2_keep_alive_timeout);
        let activity = Activity::new();
        let requests = activity.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            if via_tls {
                req.extensions_mut().insert(crate::tls::ViaTls);
            }
            let router = self.clone();
            let busy = requests.begin();
            async move {
                let response = router.handle(req, peer).await;
                Ok::<_, Infallible>(response.map(|body| Busied { body, _busy: busy }))
            }
        });
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
        tokio::pin!(connection);
        // A client that goes away mid-request is its own business.
        tokio::select! {
            _ = connection.as_mut() => return,
            () = activity.idle_for(idle_timeout) => {}
        }
        // Idle for too long (or never past the h2 handshake): a GOAWAY, and the end.
        connection.as_mut().graceful_shutdown();
        let _ = tokio::time::timeout(idle_timeout, connection).await;
    }

    /// Answers one request from `peer`: proxied, or an error response that says why.
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<ProxyBody> {
        let start = Instant::now();
        let trusted = self.is_trusted(peer);
        let request_id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) if trusted => v.clone(),
            _ => self.next_request_id(),
        };
        let log = self.inner.config.access_log.as_ref().map(|log| {
            let record = AccessRecord {
                time: SystemTime::now(),
                client: peer,
                method: req.method().clone(),
                host: None,
                path: req
                    .uri()
                    .path_and_query()
                    .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string()),
                status: 0,
                bytes: 0,
                duration: Duration::ZERO,
                route: None,
                instance: None,
                request_id: request_id.to_str().unwrap_or("-").to_string(),
            };
            (log.clone(), record)
        });
        let mut served = Served::default();
        let response = match framing_error(&req) {
            // The connection cannot be trusted to carry another request.
            Some(e) => {
                let mut r = text(e.status(), format!("{e}\n"));
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                r
            }
            None => match self
                .proxy(req, peer, trusted, &request_id, &mut served)
                .await
            {
                Ok(r) => r,
                Err(e) => text(e.status(), format!("{e}\n")),
            },
        };
        let (mut parts, body) = response.into_parts();
        parts.headers.insert(X_REQUEST_ID, request_id);
        let log = log.map(|(log, mut record)| {
            record.host = served.host.take();
            record.route = served.entry.as_ref().map(|e| e.id.clone());
            record.instance = served.instance.as_ref().map(|u| u.instance.clone());
            (log, record)
        });
        let done = Done {
            start,
            status: parts.status.as_u16(),
            metrics: served
                .metrics
                .take()
                .unwrap_or_else(|| self.inner.metrics.unrouted_arc()),
            log,
            dropped: self.inner.metrics.access_log_dropped_arc(),
        };
        Response::from_parts(
            parts,
            Counted {
                inner: body,
                bytes: 0,
                done: Some(done),
            }
            .boxed(),
        )
    }

    /// Counts a new connection from `peer` against its address's limit; `None`: over it, and
    /// the connection is to be closed. Trusted proxies are not counted.
    pub(crate) fn admit(&self, peer: SocketAddr) -> Option<Option<Admitted>> {
        if self.is_trusted(peer) {
            return Some(None);
        }
        self.inner.limits.admit(peer.ip()).map(Some)
    }

    pub(crate) fn is_trusted(&self, peer: SocketAddr) -> bool {
        self.inner
            .config
            .trusted_proxies
            .iter()
            .any(|c| c.contains(peer.ip()))
    }

    fn next_request_id(&self) -> HeaderValue {
        let id = self.next_request_id_bytes();
        HeaderValue::from_bytes(&id).unwrap_or(HeaderValue::from_static("0"))
    }

    pub(crate) fn next_request_id_bytes(&self) -> [u8; 24] {
        // 16 hex digits of a per-process random prefix, then 8 of a counter (which wraps after
        // 2^32 requests: the pair stays unique for far longer than any request lives). Written
        // by hand: this runs for every request.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let n = self.inner.id_counter.fetch_add(1, Ordering::Relaxed);
        let prefix = self.inner.id_prefix;
        let mut id = [0u8; 24];
        for (i, digit) in id[..16].iter_mut().enumerate() {
            *digit = HEX[((prefix >> (60 - 4 * i)) & 0xf) as usize];
        }
        for (i, digit) in id[16..].iter_mut().enumerate() {
            *digit = HEX[((n >> (28 - 4 * i)) & 0xf) as usize];
        }
        id
    }

    async fn proxy(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
        trusted: bool,
        request_id: &HeaderValue,
        served: &mut Served,
    ) -> Result<Response<Reply>, ProxyError> {
        // The one normalisation of every transport (src/path.rs), before the route and its
        // access rules: from here on the request's path is the one matched and forwarded.
        normalise_path(&mut req)?;
        // ACME HTTP-01 validation, before any route (src/tls.rs).
        if let Some(answer) = self.inner.https.challenge(&req) {
            return Ok(answer.respond(text));
        }
        let proto = crate::tls::scheme(&req);
        let authority = match req.uri().authority() {
            Some(a) => HeaderValue::from_str(a.as_str()).ok(),
            None => req.headers().get(header::HOST).cloned(),
        }
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
                .as_bytes()
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(b));
        let host = match authority.to_str() {
            Ok(h) if valid => h,
            _ => {
                return Err(ProxyError::new(
                    ProxyErrorKind::Downstream,
                    None,
                    "the request's host is not a host name or address",
                ));
            }
        };
        if self.inner.config.access_log.is_some() {
            served.host = Some(host.to_string());
        }
        let routing = self.inner.routing.load_full();
        let Some(index) = routing.table.lookup(host, req.uri().path()).and_then(|e| {
            routing
                .table
                .routes()
                .iter()
                .position(|r| Arc::ptr_eq(r, e))
        }) else {
            return Ok(text(
                StatusCode::NOT_FOUND,
                format!(
                    "no route for host {} path {}\n",
                    normalise_host(host),
                    req.uri().path()
                ),
            ));
        };
        let entry = routing.table.routes()[index].clone();
        let metrics = routing.metrics[index].clone();
        drop(routing);
        served.entry = Some(entry.clone());
        served.metrics = Some(metrics.clone());
        if let Some(answer) = self.inner.https.redirect(&req, &entry.id, host) {
            return Ok(answer.respond(text));
        }
        let config = &self.inner.config;
        if !access::allowed(
            &entry,
            peer.ip(),
            &self.inner.pools,
            config.service_identities,
        ) {
            metrics.count_denied(Denial::AllowFrom);
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
            metrics.count_denied(Denial::BasicAuth);
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
        let mut granted = Vec::new();
        if let Some(url) = &entry.route.forward_auth {
            let question = AuthQuestion {
                method: req.method(),
                uri: req.uri(),
                headers: req.headers(),
                peer: peer.ip(),
                proto,
                host,
            };
            match access::forward_auth(&self.client, url, question, config.forward_auth_timeout)
                .await
            {
                ForwardAuth::Allowed(headers) => granted = headers,
                ForwardAuth::Denied(response) => {
                    metrics.count_denied(Denial::ForwardAuth);
                    let (mut parts, body) = response.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    return Ok(Response::from_parts(
                        parts,
                        Reply::Upstream {
                            body,
                            _in_flight: None,
                        },
                    ));
                }
                ForwardAuth::Unreachable(why) => {
                    metrics.count_denied(Denial::ForwardAuthUnreachable);
                    return Ok(text(
                        StatusCode::SERVICE_UNAVAILABLE,
                        format!("{}: {why}\n", entry.id),
                    ));
                }
            }
        }
        let path_and_query = match entry.upstream_path(req.uri().path()) {
            // The common case: the client's own path and query, shared, not copied.
            std::borrow::Cow::Borrowed(p) if p.len() == req.uri().path().len() => req
                .uri()
                .path_and_query()
                .cloned()
                .unwrap_or_else(|| PathAndQuery::from_static("/")),
            path => {
                let path = path.into_owned();
                let joined = match req.uri().query() {
                    Some(q) => format!("{path}?{q}"),
                    None => path,
                };
                PathAndQuery::try_from(joined).map_err(|e| internal(&entry, e))?
            }
        };
        let upgrade = upgrade_protocol(req.headers())
            .filter(|_| req.version() == Version::HTTP_11)
            .map(|protocol| (protocol, hyper::upgrade::on(&mut req)));
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        // Names with `_` are dropped, as nginx drops them (`underscores_in_headers off`): a
        // CGI-style server reads `X_Real_IP` as `X-Real-IP`.
        let underscored: Vec<HeaderName> = headers
            .keys()
            .filter(|n| n.as_str().contains('_'))
            .cloned()
            .collect();
        for name in underscored {
            headers.remove(name);
        }
        if entry.route.forward_auth.is_some() {
            // Only the auth service says who the user is.
            let spoofed: Vec<HeaderName> = headers
                .keys()
                .filter(|n| access::is_auth_header(n))
                .cloned()
                .collect();
            for name in spoofed {
                headers.remove(name);
            }
            for (name, value) in granted {
                headers.append(name, value);
            }
        }
        forwarded::set(&mut headers, peer.ip(), trusted, proto, &authority);
        headers.insert(X_REQUEST_ID, request_id.clone());
        headers.insert(header::HOST, authority.clone());
        let outgoing = Outgoing {
            method: parts.method,
            path_and_query,
            headers,
        };
        match upgrade {
            Some((protocol, client_side)) => {
                self.upgrade(&entry, &metrics, outgoing, protocol, client_side, served)
                    .await
            }
            _ => self.forward(&entry, &metrics, outgoing, body, served).await,
        }
    }

    async fn forward(
        &self,
        entry: &RouteEntry,
        metrics: &RouteMetrics,
        outgoing: Outgoing,
        body: Incoming,
        served: &mut Served,
    ) -> Result<Response<Reply>, ProxyError> {
        let config = &self.inner.config;
        let empty_body = body.is_end_stream();
        let idempotent = is_idempotent(&outgoing.method);
        let attempts = config.max_attempts.max(1);
        // A body is watched for the client's own errors (a 400, not a 502) and loses its
        // trailers; an empty one needs neither.
        let broken = (!empty_body).then(|| Arc::new(AtomicBool::new(false)));
        let mut body = Some(match &broken {
            Some(flag) => ClientBody {
                inner: body,
                broken: flag.clone(),
            }
            .boxed(),
            None => body.boxed(),
        });
        // Filled only on a failure: the common case allocates nothing here.
        let mut tried = Vec::new();
        let mut last_error = None;
        let mut outgoing = Some(outgoing);
        let mut attempt = 1;
        // Time spent waiting for starting instances, and the next wait when every instance was
        // tried and one that refused was starting (`ProxyError::retry_delay`): other instances
        // are tried first, as before.
        let mut waited = Duration::ZERO;
        let mut pending_wait: Option<Duration> = None;
        loop {
            let picked = if attempt <= attempts {
                self.inner
                    .pools
                    .pick(entry, &tried)
                    .map_err(|why| why.to_string())
            } else {
                Err("every attempt was made".to_string())
            };
            let upstream = match picked {
                Ok(u) => u,
                Err(why) => {
                    if let Some(wait) = pending_wait.take() {
                        // Not listening yet: the same request again shortly, afresh.
                        metrics.count_starting_retry();
                        waited += wait;
                        tokio::time::sleep(wait).await;
                        tried.clear();
                        attempt = 1;
                        continue;
                    }
                    return Err(last_error.unwrap_or_else(|| {
                        ProxyError::new(ProxyErrorKind::NoInstance, Some(&entry.id), why)
                    }));
                }
            };
            let addr = upstream.socket_addr(entry.route.port);
            let in_flight = upstream.begin();
            let body = match body.take() {
                Some(b) => b,
                None => Empty::new().map_err(|never| match never {}).boxed(),
            };
            // The last attempt (or the only one a request with a body gets) takes the rewritten
            // request itself; earlier ones, and any to an instance that may still be starting
            // (it may be waited for), send a copy.
            let starting = upstream.joined_ago() < crate::error::JUST_STARTED;
            let last = (attempt == attempts && !starting && pending_wait.is_none()) || !empty_body;
            let req = match (last, &outgoing) {
                (true, _) => outgoing.take().map(|o| o.into_request(addr, body, entry)),
                (false, Some(o)) => Some(o.clone().into_request(addr, body, entry)),
                (false, None) => None,
            }
            .ok_or_else(|| internal(entry, "the request was already sent"))??;
            let sent = tokio::time::timeout(config.response_timeout, self.client.request(req));
            let error = match sent.await {
                Err(_) => {
                    metrics.count_upstream_failure(UpstreamFailure::Timeout);
                    return Err(ProxyError::new(
                        ProxyErrorKind::UpstreamTimeout,
                        Some(&entry.id),
                        format!(
                            "instance {} did not answer within {:?}",
                            upstream.instance, config.response_timeout
                        ),
                    ));
                }
                Ok(Ok(response)) => {
                    served.instance = Some(upstream);
                    return Ok(tracked(response, in_flight));
                }
                Ok(Err(e)) => classify(&e, entry, &upstream),
            };
            if broken.as_ref().is_some_and(|b| b.load(Ordering::Relaxed)) {
                // The client's body broke (bad chunked framing, a reset): its fault, and said so,
                // as nginx answers 400.
                return Err(ProxyError::new(
                    ProxyErrorKind::Downstream,
                    Some(&entry.id),
                    format!("the request body broke off: {}", error.message),
                ));
            }
            drop(in_flight);
            if let Some(wait) =
                error.retry_delay(empty_body && idempotent, upstream.joined_ago(), waited)
            {
                pending_wait = Some(wait);
            } else {
                // A refusal is counted once, when no wait follows.
                metrics.count_upstream_failure(match error.kind {
                    ProxyErrorKind::UpstreamConnect => UpstreamFailure::Connect,
                    _ => UpstreamFailure::Protocol,
                });
            }
            tried.push(addr);
            // A request that may wait (`pending_wait`) may also be repeated.
            let again = empty_body && (error.is_retryable() || idempotent);
            if !again {
                return Err(error);
            }
            last_error = Some(error);
            attempt += 1;
        }
    }

    async fn upgrade(
        &self,
        entry: &RouteEntry,
        metrics: &Arc<RouteMetrics>,
        mut outgoing: Outgoing,
        protocol: HeaderValue,
        client_upgrade: hyper::upgrade::OnUpgrade,
        served: &mut Served,
    ) -> Result<Response<Reply>, ProxyError> {
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
                    metrics.count_upstream_failure(UpstreamFailure::Connect);
                    last_error = Some(ProxyError::new(
                        ProxyErrorKind::UpstreamConnect,
                        Some(&entry.id),
                        format!("instance {} ({addr}): {e}", upstream.instance),
                    ));
                }
                Err(_) => {
                    metrics.count_upstream_failure(UpstreamFailure::Connect);
                    last_error = Some(ProxyError::new(
                        ProxyErrorKind::UpstreamConnect,
                        Some(&entry.id),
                        format!("instance {} ({addr}): connect timed out", upstream.instance),
                    ));
                }
            }
        };
        served.instance = Some(upstream.clone());
        let in_flight = upstream.begin();
        let addr = upstream.socket_addr(entry.route.port);
        let _ = stream.set_nodelay(true);
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| {
                metrics.count_upstream_failure(UpstreamFailure::Protocol);
                classify_hyper(&e, entry, &upstream)
            })?;
        tokio::spawn(connection.with_upgrades());
        let req = outgoing.into_request(
            addr,
            Empty::new().map_err(|never| match never {}).boxed(),
            entry,
        )?;
        let mut response = tokio::time::timeout(config.response_timeout, sender.send_request(req))
            .await
            .map_err(|_| {
                metrics.count_upstream_failure(UpstreamFailure::Timeout);
                ProxyError::new(
                    ProxyErrorKind::UpstreamTimeout,
                    Some(&entry.id),
                    format!("instance {} did not answer the upgrade", upstream.instance),
                )
            })?
            .map_err(|e| {
                metrics.count_upstream_failure(UpstreamFailure::Protocol);
                classify_hyper(&e, entry, &upstream)
            })?;
        if response.status() != StatusCode::SWITCHING_PROTOCOLS {
            strip_hop_by_hop(response.headers_mut());
            return Ok(tracked(response, in_flight));
        }
        let upstream_upgrade = hyper::upgrade::on(&mut response);
        let websocket = metrics.websocket();
        tokio::spawn(async move {
            // Held until both sides are done: the instance counts this connection as outstanding,
            // the route as an open WebSocket.
            let _in_flight = in_flight;
            let _websocket = websocket;
            if let (Ok(client), Ok(upstream)) = tokio::join!(client_upgrade, upstream_upgrade) {
                let mut client = TokioIo::new(client);
                let mut upstream = TokioIo::new(upstream);
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            }
        });
        let (parts, _) = response.into_parts();
        Ok(Response::from_parts(parts, Reply::Local(None)))
    }
}

/// What the request path learnt about a request, for its metrics and access log line.
#[derive(Default)]
struct Served {
    host: Option<String>,
    entry: Option<Arc<RouteEntry>>,
    metrics: Option<Arc<RouteMetrics>>,
    instance: Option<Arc<Upstream>>,
}

/// A keep-alive connection pool to instances (HTTP/1.1 only: instances speak it).
fn upstream_client(config: &RouterConfig) -> Client<HttpConnector, ProxyBody> {
    let mut connector = HttpConnector::new();
    connector.set_connect_timeout(Some(config.connect_timeout));
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(config.upstream_idle_timeout)
        .build(connector)
}

/// A request rewritten for an upstream, re-sendable to another instance.
#[derive(Clone)]
struct Outgoing {
    method: Method,
    path_and_query: PathAndQuery,
    headers: HeaderMap,
}

impl Outgoing {
    fn into_request(
        self,
        addr: SocketAddr,
        body: ProxyBody,
        entry: &RouteEntry,
    ) -> Result<Request<ProxyBody>, ProxyError> {
        let mut uri = uri::Parts::default();
        uri.scheme = Some(uri::Scheme::HTTP);
        uri.authority =
            Some(uri::Authority::try_from(addr.to_string()).map_err(|e| internal(entry, e))?);
        uri.path_and_query = Some(self.path_and_query);
        let mut req = Request::new(body);
        *req.method_mut() = self.method;
        *req.uri_mut() = Uri::from_parts(uri).map_err(|e| internal(entry, e))?;
        *req.version_mut() = Version::HTTP_11;
        *req.headers_mut() = self.headers;
        Ok(req)
    }
}

/// Accepts connections on `listener` until `shutdown` completes, each served by `serve` on a
/// task of its own (with TCP_NODELAY); connections already open keep being served.
pub(crate) async fn accept_until<F, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
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
        tokio::spawn(serve(stream, peer));
    }
}

/// What an HTTP/1 request's framing headers say that nginx refuses (and so does the fast path,
/// which leaves these requests to this path): a transfer coding other than `chunked` alone is a
/// 501 (nginx: "client sent unknown Transfer-Encoding"; hyper would take `gzip, chunked` as
/// chunked and the coding would be lost), and a `Content-Length` with a list a 400. (Two equal
/// `Content-Length` lines are merged into one by hyper's parser before this sees them, so only
/// one goes on; the fast path refuses them with 400 as nginx does.)
fn framing_error<B>(req: &Request<B>) -> Option<ProxyError> {
    if req.version() >= Version::HTTP_2 {
        return None;
    }
    let headers = req.headers();
    let mut codings = headers.get_all(header::TRANSFER_ENCODING).iter();
    if let Some(first) = codings.next() {
        let chunked = first
            .as_bytes()
            .trim_ascii()
            .eq_ignore_ascii_case(b"chunked");
        if !chunked || codings.next().is_some() {
            return Some(ProxyError::new(
                ProxyErrorKind::Unsupported,
                None,
                format!(
                    "transfer coding `{}` is not implemented (only `chunked` is)",
                    String::from_utf8_lossy(first.as_bytes())
                ),
            ));
        }
    }
    let lengths = headers.get_all(header::CONTENT_LENGTH);
    if lengths.iter().count() > 1 || lengths.iter().any(|v| v.as_bytes().contains(&b',')) {
        return Some(ProxyError::new(
            ProxyErrorKind::Downstream,
            None,
            "the request has more than one Content-Length",
        ));
    }
    None
}

/// Replaces the request's path by its normal form (src/path.rs), the query kept as it is; a
/// path that cannot be normalised safely is a 400 that says why.
fn normalise_path<B>(req: &mut Request<B>) -> Result<(), ProxyError> {
    let normal = match crate::path::normalise(req.uri().path()) {
        Ok(std::borrow::Cow::Borrowed(_)) => return Ok(()),
        Ok(std::borrow::Cow::Owned(p)) => p,
        Err(e) => {
            return Err(ProxyError::new(
                ProxyErrorKind::Downstream,
                None,
                e.to_string(),
            ));
        }
    };
    let joined = match req.uri().query() {
        Some(q) => format!("{normal}?{q}"),
        None => normal,
    };
    let mut parts = req.uri().clone().into_parts();
    let refused = |e: &dyn std::fmt::Display| {
        ProxyError::new(
            ProxyErrorKind::Downstream,
            None,
            format!("the request's path cannot be normalised: {e}"),
        )
    };
    parts.path_and_query = Some(PathAndQuery::try_from(joined).map_err(|e| refused(&e))?);
    *req.uri_mut() = Uri::from_parts(parts).map_err(|e| refused(&e))?;
    Ok(())
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
    let mut refused = false;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        refused |= s
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused);
        source = s.source();
    }
    ProxyError::new(kind, Some(&entry.id), message).refused(refused && e.is_connect())
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
fn tracked(response: Response<Incoming>, in_flight: InFlight) -> Response<Reply> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(
        parts,
        Reply::Upstream {
            body,
            _in_flight: Some(in_flight),
        },
    )
}

/// A client's request body on its way to an instance: its trailers are dropped, as nginx drops
/// a request's trailers (they could carry `Content-Length`, `X-Forwarded-For` or anything else a
/// hop-by-hop filter removes from the head), and an error (the client's framing or connection)
/// is noted so that the answer is a 400 rather than a 502.
struct ClientBody {
    inner: Incoming,
    broken: Arc<AtomicBool>,
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        loop {
            return match Pin::new(&mut self.inner).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => continue,
                Poll::Ready(Some(Err(e))) => {
                    self.broken.store(true, Ordering::Relaxed);
                    Poll::Ready(Some(Err(e)))
                }
                other => other,
            };
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An answer's body that keeps its connection busy (not idle) until it is sent or dropped.
struct Busied {
    body: ProxyBody,
    _busy: Busy,
}

impl Body for Busied {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The body of an answer before it is counted: an upstream's (holding the instance's in-flight
/// count until done) or the router's own.
enum Reply {
    Upstream {
        body: Incoming,
        _in_flight: Option<InFlight>,
    },
    Local(Option<Bytes>),
}

impl Body for Reply {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            Reply::Upstream { body, .. } => Pin::new(body).poll_frame(cx),
            Reply::Local(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Reply::Upstream { body, .. } => body.is_end_stream(),
            Reply::Local(data) => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Reply::Upstream { body, .. } => body.size_hint(),
            Reply::Local(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
        }
    }
}

/// What to record when an answer is done.
pub(crate) struct Done {
    pub(crate) start: Instant,
    pub(crate) status: u16,
    pub(crate) metrics: Arc<RouteMetrics>,
    pub(crate) log: Option<(AccessLog, AccessRecord)>,
    pub(crate) dropped: Arc<AtomicU64>,
}

impl Done {
    pub(crate) fn record(self, bytes: u64) {
        let duration = self.start.elapsed();
        self.metrics.observe(self.status, duration);
        if let Some((log, mut record)) = self.log {
            record.status = self.status;
            record.bytes = bytes;
            record.duration = duration;
            if !log.send(record) {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// The body the client gets: counts its bytes, and records the request when it ends or is
/// dropped (the client went away).
struct Counted {
    inner: Reply,
    bytes: u64,
    done: Option<Done>,
}

impl Counted {
    fn finish(&mut self) {
        if let Some(done) = self.done.take() {
            done.record(self.bytes);
        }
    }
}

impl Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
                if this.inner.is_end_stream() {
                    this.finish();
                }
            }
            Poll::Ready(None | Some(Err(_))) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.finish();
    }
}

fn text(status: StatusCode, body: String) -> Response<Reply> {
    let mut r = Response::new(Reply::Local(Some(Bytes::from(body))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
