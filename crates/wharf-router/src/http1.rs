//! The HTTP/1.1 fast path for plain-HTTP client connections.
//!
//! One task per client connection reads request heads itself (httparse, into a buffer reused
//! for the connection's life), routes them exactly as the hyper path does (same table, same
//! pools and balancing, same in-flight accounting, access rules, forwarding headers, request
//! ids, metrics and access log) and relays each exchange over a keep-alive connection to the
//! instance, checked out of the serving thread's own pool ([`upstream::UpstreamPool`]): no
//! channel between tasks, no task per upstream connection, no header map. A request head and
//! the body bytes that came with it go out in one `writev`; a response's head (rewritten) and
//! the body bytes read with it go to the client in one `writev`. Bodies stream both ways, never
//! buffered whole; chunked bodies pass through unchanged while a [`chunked::ChunkTracker`] finds
//! where they end.
//!
//! What the fast path does not serve goes to hyper for the rest of the connection, with the
//! bytes read so far ([`prefixed::Prefixed`]): the h2c preface, upgrades (WebSockets), `Expect`,
//! routes with `forward_auth`, ACME challenges and HTTPS redirects, and anything unusual or
//! malformed (absolute-form targets, odd characters, conflicting framing, too many or too large
//! headers), which hyper answers as it always has.

pub(crate) mod chunked;
pub(crate) mod head;
mod prefixed;
pub(crate) mod upstream;

use std::borrow::Cow;
use std::future::{Future, poll_fn};
use std::io::{self, IoSlice};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, SystemTime};

use hyper::StatusCode;
use hyper::header::HeaderValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::access;
use crate::access_log::AccessRecord;
use crate::error::{ProxyError, ProxyErrorKind};
use crate::metrics::{Denial, RouteMetrics, UpstreamFailure};
use crate::proxy::{Done, Router};
use crate::table::{RouteEntry, normalise_host};
use chunked::ChunkTracker;
use head::{Framing, Parsed, RequestHead, ResponseHead, Role};
use upstream::{READ_BUFFER, UpstreamConn};

/// Client bytes read at once.
const CLIENT_BUFFER: usize = 8 * 1024;
/// A request buffer that grew past this (a large head) is given back after the exchange.
const KEEP_BUFFER: usize = 64 * 1024;
/// How long, and how many bytes, a refused request's rest is read before its connection closes.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// Serves a plain-HTTP client connection on the fast path, handing it to hyper when needed.
pub(crate) async fn serve(router: Router, stream: TcpStream, peer: SocketAddr) {
    let mut conn = ClientConn {
        peer_text: peer.ip().to_string(),
        peer,
        buf: Vec::with_capacity(CLIENT_BUFFER),
        head: RequestHead::default(),
        head_request: false,
        out: Vec::with_capacity(1024),
        reply: Vec::with_capacity(1024),
        response: ResponseHead::default(),
        header_timer: Timer::default(),
        response_timer: Timer::default(),
    };
    let mut stream = stream;
    let header_read_timeout = router.config().header_read_timeout;
    loop {
        // The header read timeout also bounds how long a kept-alive connection may idle.
        let deadline = Instant::now() + header_read_timeout;
        loop {
            if !conn.buf.is_empty() {
                match head::parse_request(&conn.buf, &mut conn.head) {
                    Parsed::Complete => break,
                    Parsed::Hyper => return conn.hand_to_hyper(router, stream).await,
                    Parsed::Reject { status, reason } => {
                        conn.reject(&router, &mut stream, status, reason).await;
                        return;
                    }
                    Parsed::Partial => {}
                }
            }
            if conn.buf.capacity() - conn.buf.len() < 1024 {
                conn.buf.reserve(CLIENT_BUFFER);
            }
            match conn
                .header_timer
                .run(deadline, stream.read_buf(&mut conn.buf))
                .await
            {
                Some(Ok(n)) if n > 0 => {}
                // Timed out, closed (between requests, or within a head: nothing to answer) or
                // broken.
                _ => return,
            }
        }
        match conn.exchange(&router, &mut stream).await {
            Next::KeepAlive => {
                if conn.buf.capacity() > KEEP_BUFFER && conn.buf.len() < CLIENT_BUFFER {
                    conn.buf.shrink_to(CLIENT_BUFFER);
                }
            }
            Next::Close => {
                let _ = stream.shutdown().await;
                return;
            }
            Next::Hyper => return conn.hand_to_hyper(router, stream).await,
        }
    }
}

/// What follows an exchange.
enum Next {
    KeepAlive,
    Close,
    /// The request at the start of the buffer is for hyper, and so is the rest.
    Hyper,
}

struct ClientConn {
    peer: SocketAddr,
    peer_text: String,
    /// Bytes from the client not yet used: the current request's head (and any body bytes that
    /// came with it), then whatever follows.
    buf: Vec<u8>,
    head: RequestHead,
    /// The current request is a HEAD.
    head_request: bool,
    /// The request head for the instance (kept for a retry), or the router's own answer.
    out: Vec<u8>,
    /// The response head for the client.
    reply: Vec<u8>,
    response: ResponseHead,
    header_timer: Timer,
    response_timer: Timer,
}

/// What an exchange with an instance came to.
enum Failure {
    /// Nothing came back before the connection failed: on a reused connection, most likely the
    /// instance closed it while idle. `written`: the request went out whole.
    Silent { written: bool, why: String },
    /// No response head within the response timeout.
    Timeout,
    /// The instance answered something unusable, or broke the exchange.
    Protocol(String),
    /// The client went away: nothing more to do.
    Client,
    /// The client's chunked body broke after part of it went to the instance: a 400 if no
    /// response has started (as nginx answers), else the connection is closed.
    BadBody(String),
}

/// A relayed response.
struct Relayed {
    status: u16,
    bytes: u64,
    /// The client connection can take another request.
    client_keep: bool,
    /// The instance connection can take another request.
    upstream_keep: bool,
}

impl ClientConn {
    async fn hand_to_hyper(self, router: Router, stream: TcpStream) {
        let ClientConn { peer, buf, .. } = self;
        router
            .serve_stream(prefixed::Prefixed::new(buf, stream), peer, false)
            .await;
    }

    /// Answers a request refused before its head could be used (its line too long, its framing
    /// ambiguous), and closes: what follows cannot be told apart from the rest of it.
    async fn reject(&mut self, router: &Router, stream: &mut TcpStream, status: u16, reason: &str) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
        let body = format!("{reason}\n");
        let ledger = Ledger {
            start: std::time::Instant::now(),
            request_id: router.next_request_id_bytes().to_vec(),
            metrics: None,
            log: None,
        };
        self.head = RequestHead::default();
        self.head.close = true;
        self.head_request = false;
        let _ = self
            .answer(router, stream, status, &body, None, ledger)
            .await;
        let _ = stream.shutdown().await;
        // A lingering close, as nginx's `lingering_close`: closing with the rest of the request
        // unread would reset the connection, and the client could lose the answer before
        // reading it. What is still coming is read and dropped, for a bounded time and size.
        let mut scratch = [0u8; 8192];
        let mut left = LINGER_BYTES;
        let _ = tokio::time::timeout(LINGER_TIME, async {
            while let Ok(n @ 1..) = stream.read(&mut scratch).await {
                left = left.saturating_sub(n);
                if left == 0 {
                    break;
                }
            }
        })
        .await;
    }

    /// Serves the request whose head is parsed in `self.head`.
    async fn exchange(&mut self, router: &Router, stream: &mut TcpStream) -> Next {
        // The one clock read of the request (tokio's, so that paused time rules its deadlines).
        let now = Instant::now();
        let start = now.into_std();
        self.head_request = self.head.method(&self.buf) == b"HEAD";
        let inner = router.inner();
        let config = router.config();
        let trusted = router.is_trusted(self.peer);
        let request_id: Vec<u8> = match self.head.first(&self.buf, Role::RequestId) {
            Some(v) if trusted => v.to_vec(),
            _ => router.next_request_id_bytes().to_vec(),
        };
        let mut ledger = Ledger {
            start,
            request_id,
            metrics: None,
            log: None,
        };
        let request_id = &ledger.request_id;
        if let Some(log) = &config.access_log {
            let method = hyper::Method::from_bytes(self.head.method(&self.buf))
                .unwrap_or(hyper::Method::GET);
            ledger.log = Some((
                log.clone(),
                AccessRecord {
                    time: SystemTime::now(),
                    client: self.peer,
                    method,
                    host: None,
                    path: String::from_utf8_lossy(self.head.target.of(&self.buf)).into_owned(),
                    status: 0,
                    bytes: 0,
                    duration: Duration::ZERO,
                    route: None,
                    instance: None,
                    request_id: String::from_utf8_lossy(request_id).into_owned(),
                },
            ));
        }

        // The host, strictly (it is copied into `Forwarded` and `X-Forwarded-Host`).
        let Some(host_span) = self.head.host else {
            return self
                .refuse(router, stream, "the request names no host", ledger)
                .await;
        };
        let authority = host_span.of(&self.buf);
        let valid = !authority.is_empty()
            && authority
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(b));
        if !valid {
            let reason = "the request's host is not a host name or address";
            return self.refuse(router, stream, reason, ledger).await;
        }
        let authority = authority.to_vec();
        let host = std::str::from_utf8(&authority).unwrap_or_default();
        // The one normalisation of every transport (src/path.rs), before the route and its
        // access rules; an already normal path is not copied.
        let normal = match crate::path::normalise(self.head.path(&self.buf)) {
            Ok(Cow::Borrowed(_)) => None,
            Ok(Cow::Owned(p)) => Some(p),
            Err(e) => {
                let reason = e.to_string();
                return self.refuse(router, stream, &reason, ledger).await;
            }
        };
        let path = normal
            .as_deref()
            .unwrap_or_else(|| self.head.path(&self.buf));
        if inner.https.answers_path(path) {
            return Next::Hyper;
        }
        if let Some((_, record)) = &mut ledger.log {
            record.host = Some(host.to_string());
        }
        let found = {
            let routing = inner.routing.load();
            routing.table.lookup(host, path).and_then(|e| {
                let index = routing
                    .table
                    .routes()
                    .iter()
                    .position(|r| Arc::ptr_eq(r, e))?;
                Some((e.clone(), routing.metrics[index].clone()))
            })
        };
        let Some((entry, metrics)) = found else {
            let body = format!("no route for host {} path {}\n", normalise_host(host), path);
            return self
                .answer(router, stream, StatusCode::NOT_FOUND, &body, None, ledger)
                .await;
        };
        if let Some((_, record)) = &mut ledger.log {
            record.route = Some(entry.id.clone());
        }
        ledger.metrics = Some(metrics.clone());
        if entry.route.forward_auth.is_some() || inner.https.redirects(&entry.id) {
            return Next::Hyper;
        }
        if !access::allowed(
            &entry,
            self.peer.ip(),
            &inner.pools,
            config.service_identities,
        ) {
            metrics.count_denied(Denial::AllowFrom);
            let body = format!(
                "{}: {} is not allowed to use this route\n",
                entry.id,
                self.peer.ip()
            );
            return self
                .answer(router, stream, StatusCode::FORBIDDEN, &body, None, ledger)
                .await;
        }
        if !entry.route.basic_auth.is_empty() {
            let header = self
                .head
                .first(&self.buf, Role::Authorization)
                .and_then(|v| HeaderValue::from_bytes(v).ok());
            if !access::authenticated(&entry, header.as_ref()).await {
                metrics.count_denied(Denial::BasicAuth);
                let body = format!("{}: a user and password are needed\n", entry.id);
                let challenge = format!("Basic realm=\"{}\", charset=\"UTF-8\"", entry.id);
                return self
                    .answer(
                        router,
                        stream,
                        StatusCode::UNAUTHORIZED,
                        &body,
                        Some(("www-authenticate", challenge.as_bytes())),
                        ledger,
                    )
                    .await;
            }
        }

        // The request for the instance.
        let framing = self.head.framing();
        let mut tracker = ChunkTracker::default();
        // `send_end`: the bytes of the buffer to send now (a streamed body's trailers are not).
        // `cut`: a whole chunked body's trailers, cut out of the buffer once the head is
        // written, so that every attempt sends the body without them.
        let (mut body_end, send_end, complete, cut) = match framing {
            Framing::Empty | Framing::Close => (self.head.len, self.head.len, true, None),
            Framing::Length(n) => {
                let available = (self.buf.len() - self.head.len) as u64;
                let taken = available.min(n);
                let end = self.head.len + taken as usize;
                (end, end, taken == n, None)
            }
            Framing::Chunked => match tracker.feed(&self.buf[self.head.len..], |_| {}) {
                Ok(used) if tracker.is_done() => {
                    let kept = self.head.len + tracker.kept(used);
                    let end = self.head.len + used;
                    let cut = kept..end - tracker.end().len();
                    (end, end, true, Some(cut))
                }
                Ok(used) => (
                    self.head.len + used,
                    self.head.len + tracker.kept(used),
                    false,
                    None,
                ),
                Err(e) => {
                    let e = ProxyError::new(ProxyErrorKind::Downstream, None, e.to_string());
                    let body = format!("{e}\n");
                    self.head.close = true;
                    return self
                        .answer(router, stream, e.status(), &body, None, ledger)
                        .await;
                }
            },
        };
        write_request_head(
            &mut self.out,
            &self.buf,
            &self.head,
            path,
            &entry,
            self.peer.ip(),
            &self.peer_text,
            trusted,
            &authority,
            request_id,
        );
        if let Some(cut) = cut.filter(|c| !c.is_empty()) {
            body_end -= cut.len();
            self.buf.drain(cut);
        }
        let head_request = self.head_request;
        let empty_body = framing == Framing::Empty;
        let idempotent = self.head.is_idempotent(&self.buf);
        let attempts = config.max_attempts.max(1);
        let mut tried: Vec<SocketAddr> = Vec::new();
        let mut last_error: Option<ProxyError> = None;
        let mut waited = Duration::ZERO;
        let mut pending_wait: Option<Duration> = None;
        let upstreams = router.upstreams();
        'waits: loop {
            'instances: for _ in 0..attempts {
                let upstream = match inner.pools.pick(&entry, &tried) {
                    Ok(u) => u,
                    Err(why) => {
                        last_error.get_or_insert_with(|| {
                            ProxyError::new(
                                ProxyErrorKind::NoInstance,
                                Some(&entry.id),
                                why.to_string(),
                            )
                        });
                        break;
                    }
                };
                let addr = upstream.socket_addr(entry.route.port);
                let in_flight = upstream.begin();
                // A pooled connection first; a fresh one if it turns out to have been closed.
                let mut pooled = true;
                loop {
                    let conn = if pooled {
                        pooled = false;
                        match upstreams.checkout(addr, now) {
                            // A request that could not be sent again is only sent on a connection
                            // that is still open as far as anyone can tell.
                            Some(c) if (complete && idempotent) || c.looks_alive() => Some(c),
                            _ => None,
                        }
                    } else {
                        None
                    };
                    let mut conn = match conn {
                        Some(c) => c,
                        None => match connect(addr, config.connect_timeout).await {
                            Ok(c) => c,
                            Err((why, refused)) => {
                                let error = ProxyError::new(
                                    ProxyErrorKind::UpstreamConnect,
                                    Some(&entry.id),
                                    format!(
                                        "instance {}: connect to {addr}: {why}",
                                        upstream.instance
                                    ),
                                )
                                .refused(refused);
                                // The request is whole in the buffer: once every instance was
                                // tried, it may wait for one that is still starting (one decision
                                // for both paths).
                                if let Some(wait) = error.retry_delay(
                                    complete && idempotent,
                                    upstream.joined_ago(),
                                    waited,
                                ) {
                                    pending_wait = Some(wait);
                                } else {
                                    // Counted once, when no wait follows.
                                    metrics.count_upstream_failure(UpstreamFailure::Connect);
                                }
                                tried.push(addr);
                                last_error = Some(error);
                                if empty_body {
                                    continue 'instances;
                                }
                                break 'instances;
                            }
                        },
                    };
                    // From the request's start (a few microseconds stricter than from sending it).
                    let deadline = now + config.response_timeout;
                    let exchange = Exchange {
                        head_request,
                        http10: self.head.http10,
                        close: self.head.close,
                        request_id: &ledger.request_id,
                        deadline,
                    };
                    let result = if complete {
                        self.relay_whole(stream, &mut conn, body_end, exchange)
                            .await
                    } else {
                        self.relay_streaming(stream, &mut conn, send_end, exchange, tracker.clone())
                            .await
                    };
                    match result {
                        Ok(relayed) => {
                            drop(in_flight);
                            if relayed.upstream_keep {
                                upstreams.checkin(addr, conn);
                            }
                            if let Some((_, record)) = &mut ledger.log {
                                record.instance = Some(upstream.instance.clone());
                            }
                            ledger.finish(relayed.status, relayed.bytes, router);
                            if !relayed.client_keep {
                                return Next::Close;
                            }
                            if complete {
                                self.buf.drain(..body_end);
                            }
                            return Next::KeepAlive;
                        }
                        Err(Failure::Client) => {
                            // The client broke off its own request: nothing can be answered.
                            ledger.finish(StatusCode::BAD_REQUEST.as_u16(), 0, router);
                            return Next::Close;
                        }
                        Err(Failure::BadBody(why)) => {
                            drop(in_flight);
                            self.head.close = true;
                            if self.reply.is_empty() {
                                // No response started: the client is told, and the log says what
                                // it was told.
                                return self.refuse(router, stream, &why, ledger).await;
                            }
                            // The instance's answer had started: it is cut, and logged as what
                            // the client got.
                            ledger.finish(self.response.status, 0, router);
                            return Next::Close;
                        }
                        Err(Failure::Silent { written, .. })
                            if conn.reused && complete && (idempotent || !written) =>
                        {
                            // Closed by the instance while idle: once more on a fresh connection.
                            continue;
                        }
                        Err(Failure::Timeout) => {
                            metrics.count_upstream_failure(UpstreamFailure::Timeout);
                            last_error = Some(ProxyError::new(
                                ProxyErrorKind::UpstreamTimeout,
                                Some(&entry.id),
                                format!(
                                    "instance {} did not answer within {:?}",
                                    upstream.instance, config.response_timeout
                                ),
                            ));
                            break 'instances;
                        }
                        Err(Failure::Silent { why, .. } | Failure::Protocol(why)) => {
                            metrics.count_upstream_failure(UpstreamFailure::Protocol);
                            tried.push(addr);
                            last_error = Some(ProxyError::new(
                                ProxyErrorKind::UpstreamProtocol,
                                Some(&entry.id),
                                format!("instance {}: {why}", upstream.instance),
                            ));
                            if empty_body && idempotent && complete {
                                continue 'instances;
                            }
                            break 'instances;
                        }
                    }
                }
            }
            if let Some(wait) = pending_wait.take() {
                // An instance that refused is starting: the request again shortly, afresh.
                metrics.count_starting_retry();
                waited += wait;
                tokio::time::sleep(wait).await;
                tried.clear();
                continue 'waits;
            }
            break;
        }
        let e = last_error.unwrap_or_else(|| {
            ProxyError::new(
                ProxyErrorKind::Internal,
                Some(&entry.id),
                "no attempt was made",
            )
        });
        if !complete {
            // Part of the body may be gone to an instance (and the buffer reused for it): the
            // rest cannot be skipped reliably.
            self.head.close = true;
        }
        let body = format!("{e}\n");
        self.answer(router, stream, e.status(), &body, None, ledger)
            .await
    }

    /// Sends a request that is whole in the buffer (`..body_end`) and relays the answer.
    async fn relay_whole(
        &mut self,
        stream: &mut TcpStream,
        conn: &mut UpstreamConn,
        body_end: usize,
        exchange: Exchange<'_>,
    ) -> Result<Relayed, Failure> {
        let (mut up_read, mut up_write) = conn.stream.split();
        let body = &self.buf[self.head.len..body_end];
        if let Err(e) = write_all_vectored(&mut up_write, &self.out, body).await {
            return Err(Failure::Silent {
                written: false,
                why: e.to_string(),
            });
        }
        let mut relayed = relay_response(
            &mut up_read,
            &mut conn.buf,
            stream,
            &mut self.reply,
            &mut self.response,
            &mut self.response_timer,
            exchange,
        )
        .await?;
        relayed.client_keep &= !self.head.close;
        Ok(relayed)
    }

    /// Sends a request whose body is still coming, streaming it while the answer is relayed:
    /// the buffer's bytes up to `send_end` first, then the rest from the client (a chunked
    /// body's framing followed by `tracker`, which has seen the buffer's bytes).
    async fn relay_streaming(
        &mut self,
        stream: &mut TcpStream,
        conn: &mut UpstreamConn,
        send_end: usize,
        exchange: Exchange<'_>,
        tracker: ChunkTracker,
    ) -> Result<Relayed, Failure> {
        let framing = self.head.framing();
        let sent_already = (send_end - self.head.len) as u64;
        let (mut up_read, mut up_write) = conn.stream.split();
        let body = &self.buf[self.head.len..send_end];
        if let Err(e) = write_all_vectored(&mut up_write, &self.out, body).await {
            return Err(Failure::Silent {
                written: false,
                why: e.to_string(),
            });
        }
        self.buf.clear();
        // Empty until a response head is written for the client (see `Failure::BadBody`).
        self.reply.clear();
        let (mut client_read, mut client_write) = stream.split();
        let send = copy_request_body(
            &mut client_read,
            &mut up_write,
            &mut self.buf,
            framing,
            sent_already,
            tracker,
        );
        let relay = relay_response(
            &mut up_read,
            &mut conn.buf,
            &mut client_write,
            &mut self.reply,
            &mut self.response,
            &mut self.response_timer,
            exchange,
        );
        let mut send = std::pin::pin!(send);
        let mut relay = std::pin::pin!(relay);
        // `None`: still sending; `Some(true)`: the body went out whole.
        let mut sent: Option<bool> = None;
        let relayed = poll_fn(|cx| {
            if sent.is_none()
                && let Poll::Ready(r) = send.as_mut().poll(cx)
            {
                match r {
                    Ok(()) => sent = Some(true),
                    Err(Side::Client) => return Poll::Ready(Err(Failure::Client)),
                    Err(Side::Framing(e)) => {
                        return Poll::Ready(Err(Failure::BadBody(e.to_string())));
                    }
                    // The instance stopped reading: its answer may still come.
                    Err(Side::Upstream) => sent = Some(false),
                }
            }
            relay.as_mut().poll(cx)
        })
        .await;
        let mut relayed = relayed?;
        if sent != Some(true) {
            // The answer came before the whole body: neither side's framing can be trusted.
            relayed.client_keep = false;
            relayed.upstream_keep = false;
        }
        relayed.client_keep &= !self.head.close;
        Ok(relayed)
    }

    /// Writes the router's own answer; the connection stays open when the request's body (if
    /// any) was read whole and the client did not ask to close. With `self.head.close` set, the
    /// buffer is not looked at (a streamed body may have reused it).
    /// Answers a request the client got wrong (a 400 that says why).
    async fn refuse(
        &mut self,
        router: &Router,
        stream: &mut TcpStream,
        reason: &str,
        ledger: Ledger,
    ) -> Next {
        let e = ProxyError::new(ProxyErrorKind::Downstream, None, reason);
        self.answer(router, stream, e.status(), &format!("{e}\n"), None, ledger)
            .await
    }

    async fn answer(
        &mut self,
        router: &Router,
        stream: &mut TcpStream,
        status: StatusCode,
        body: &str,
        extra: Option<(&str, &[u8])>,
        ledger: Ledger,
    ) -> Next {
        let whole = match self.head.framing() {
            _ if self.head.close => None,
            Framing::Empty | Framing::Close => Some(self.head.len),
            Framing::Length(n) => {
                let end = self.head.len as u64 + n;
                (end <= self.buf.len() as u64).then_some(end as usize)
            }
            Framing::Chunked => {
                let mut tracker = ChunkTracker::default();
                match tracker.feed(&self.buf[self.head.len..], |_| {}) {
                    Ok(used) if tracker.is_done() => Some(self.head.len + used),
                    _ => None,
                }
            }
        };
        let close = self.head.close || whole.is_none();
        let out = &mut self.out;
        out.clear();
        write_status_line(out, status.as_u16(), b"");
        out.extend_from_slice(b"content-type: text/plain; charset=utf-8\r\ncontent-length: ");
        out.extend_from_slice(body.len().to_string().as_bytes());
        out.extend_from_slice(b"\r\nx-request-id: ");
        out.extend_from_slice(&ledger.request_id);
        out.extend_from_slice(b"\r\ndate: ");
        out.extend_from_slice(&http_date());
        out.extend_from_slice(b"\r\n");
        if let Some((name, value)) = extra {
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value);
            out.extend_from_slice(b"\r\n");
        }
        if close {
            out.extend_from_slice(b"connection: close\r\n");
        } else if self.head.http10 {
            out.extend_from_slice(b"connection: keep-alive\r\n");
        }
        out.extend_from_slice(b"\r\n");
        let body_bytes = if self.head_request {
            &b""[..]
        } else {
            body.as_bytes()
        };
        let written = write_all_vectored(stream, &self.out, body_bytes).await;
        ledger.finish(status.as_u16(), body_bytes.len() as u64, router);
        match (written, whole) {
            (Ok(()), Some(end)) if !close => {
                self.buf.drain(..end);
                Next::KeepAlive
            }
            _ => Next::Close,
        }
    }
}

/// What the response relay needs to know of the request.
struct Exchange<'a> {
    head_request: bool,
    http10: bool,
    /// The client asked to close after this exchange.
    close: bool,
    request_id: &'a [u8],
    /// For the response head.
    deadline: Instant,
}

/// Which side of a streamed request body failed.
enum Side {
    /// Closed or broken by the client.
    Client,
    /// A chunked body's framing was broken.
    Framing(chunked::ChunkError),
    Upstream,
}

/// Copies the rest of a request body (after `sent` bytes, or after what `tracker` has seen)
/// from the client to the instance. A chunked body's last read may hold the start of the next
/// request: it stays in `buf`.
async fn copy_request_body<R, W>(
    client: &mut R,
    up: &mut W,
    buf: &mut Vec<u8>,
    framing: Framing,
    sent: u64,
    mut tracker: ChunkTracker,
) -> Result<(), Side>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    match framing {
        Framing::Length(n) => {
            let mut remaining = n.saturating_sub(sent);
            while remaining > 0 {
                buf.clear();
                buf.reserve(CLIENT_BUFFER);
                let k = (&mut *client)
                    .take(remaining)
                    .read_buf(buf)
                    .await
                    .map_err(|_| Side::Client)?;
                if k == 0 {
                    return Err(Side::Client);
                }
                up.write_all(&buf[..k]).await.map_err(|_| Side::Upstream)?;
                remaining -= k as u64;
            }
            buf.clear();
        }
        Framing::Chunked => {
            while !tracker.is_done() {
                buf.clear();
                buf.reserve(CLIENT_BUFFER);
                if client.read_buf(buf).await.map_err(|_| Side::Client)? == 0 {
                    return Err(Side::Client);
                }
                let used = tracker.feed(buf, |_| {}).map_err(Side::Framing)?;
                up.write_all(&buf[..tracker.kept(used)])
                    .await
                    .map_err(|_| Side::Upstream)?;
                up.write_all(tracker.end())
                    .await
                    .map_err(|_| Side::Upstream)?;
                if tracker.is_done() {
                    buf.drain(..used);
                }
            }
        }
        Framing::Empty | Framing::Close => {}
    }
    Ok(())
}

/// Reads the instance's response head and relays the response to the client. Fails only before
/// anything was written to the client; a break after that ends the exchange with both
/// connections closed.
async fn relay_response<R, W>(
    up: &mut R,
    rbuf: &mut Vec<u8>,
    client: &mut W,
    out: &mut Vec<u8>,
    response: &mut ResponseHead,
    timer: &mut Timer,
    exchange: Exchange<'_>,
) -> Result<Relayed, Failure>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    rbuf.clear();
    let mut heard = false;
    loop {
        if !rbuf.is_empty() {
            match head::parse_response(rbuf, exchange.head_request, response) {
                Ok(Some(())) if response.status == 101 => {
                    return Err(Failure::Protocol(
                        "switched protocols without being asked to".into(),
                    ));
                }
                // Informational answers (103 Early Hints, a stray 100) are not passed on.
                Ok(Some(())) if response.status < 200 => {
                    rbuf.drain(..response.len);
                    continue;
                }
                Ok(Some(())) => break,
                Ok(None) => {}
                Err(bad) => return Err(Failure::Protocol(bad.0.into())),
            }
        }
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(READ_BUFFER);
        }
        match timer.run(exchange.deadline, up.read_buf(rbuf)).await {
            None => return Err(Failure::Timeout),
            Some(Ok(n)) if n > 0 => heard = true,
            Some(result) => {
                let why = match result {
                    Err(e) => e.to_string(),
                    Ok(_) => "connection closed before message completed".to_string(),
                };
                return Err(if heard {
                    Failure::Protocol(why)
                } else {
                    Failure::Silent { written: true, why }
                });
            }
        }
    }
    let framing = response.framing.unwrap_or(Framing::Close);
    // An HTTP/1.0 client cannot take chunks: it gets the data, to the close.
    let decode = exchange.http10 && framing == Framing::Chunked;
    let keep = !exchange.close && framing != Framing::Close && !decode;
    write_response_head(
        out,
        rbuf,
        response,
        exchange.request_id,
        keep,
        exchange.http10,
        decode,
    );
    let status = response.status;
    let start = response.len;
    let mut relayed = Relayed {
        status,
        bytes: 0,
        client_keep: keep,
        upstream_keep: response.keep_alive,
    };
    // From here on, a failure on either side ends the exchange: the client has (part of) an
    // answer.
    let broken = |mut r: Relayed| {
        r.client_keep = false;
        r.upstream_keep = false;
        Ok(r)
    };
    match framing {
        Framing::Empty => {
            relayed.upstream_keep &= rbuf.len() == start;
            if client.write_all(out).await.is_err() {
                return broken(relayed);
            }
        }
        Framing::Length(n) => {
            let available = (rbuf.len() - start) as u64;
            let first = available.min(n) as usize;
            relayed.upstream_keep &= available <= n;
            if write_all_vectored(client, out, &rbuf[start..start + first])
                .await
                .is_err()
            {
                return broken(relayed);
            }
            relayed.bytes = first as u64;
            let mut remaining = n - first as u64;
            while remaining > 0 {
                rbuf.clear();
                let k = match (&mut *up).take(remaining).read_buf(rbuf).await {
                    Ok(k) if k > 0 => k,
                    _ => return broken(relayed),
                };
                if client.write_all(&rbuf[..k]).await.is_err() {
                    return broken(relayed);
                }
                remaining -= k as u64;
                relayed.bytes += k as u64;
            }
        }
        Framing::Chunked => {
            let mut tracker = ChunkTracker::default();
            let mut data = 0u64;
            let mut decoded = Vec::new();
            let used = match tracker.feed(&rbuf[start..], |d| {
                data += d.len() as u64;
                if decode {
                    decoded.extend_from_slice(d);
                }
            }) {
                Ok(used) => used,
                // Nothing is written yet: a 502.
                Err(e) => return Err(Failure::Protocol(e.to_string())),
            };
            relayed.upstream_keep &= start + used == rbuf.len();
            let first = if decode {
                &decoded[..]
            } else {
                &rbuf[start..start + used]
            };
            if write_all_vectored(client, out, first).await.is_err() {
                return broken(relayed);
            }
            while !tracker.is_done() {
                rbuf.clear();
                decoded.clear();
                if rbuf.capacity() < READ_BUFFER {
                    rbuf.reserve(READ_BUFFER);
                }
                match up.read_buf(rbuf).await {
                    Ok(k) if k > 0 => {}
                    _ => return broken(relayed),
                }
                let used = match tracker.feed(rbuf, |d| {
                    data += d.len() as u64;
                    if decode {
                        decoded.extend_from_slice(d);
                    }
                }) {
                    Ok(used) => used,
                    Err(_) => return broken(relayed),
                };
                relayed.upstream_keep &= used == rbuf.len();
                let next = if decode { &decoded[..] } else { &rbuf[..used] };
                if client.write_all(next).await.is_err() {
                    return broken(relayed);
                }
            }
            relayed.bytes = data;
        }
        Framing::Close => {
            relayed.upstream_keep = false;
            relayed.client_keep = false;
            if write_all_vectored(client, out, &rbuf[start..])
                .await
                .is_err()
            {
                return broken(relayed);
            }
            relayed.bytes = (rbuf.len() - start) as u64;
            loop {
                rbuf.clear();
                if rbuf.capacity() < READ_BUFFER {
                    rbuf.reserve(READ_BUFFER);
                }
                match up.read_buf(rbuf).await {
                    Ok(k) if k > 0 => {}
                    _ => break,
                }
                if client.write_all(rbuf).await.is_err() {
                    return broken(relayed);
                }
                relayed.bytes += rbuf.len() as u64;
            }
        }
    }
    Ok(relayed)
}

/// The request head for the instance: the client's method, the route's upstream path (of the
/// normalised `path`) and the client's query, over HTTP/1.1; the client's headers minus hop-by-hop ones; `Host`, the
/// forwarding headers and `X-Request-Id` as the hyper path sets them (see `forwarded`).
#[allow(clippy::too_many_arguments)]
fn write_request_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    head: &RequestHead,
    path: &str,
    entry: &RouteEntry,
    peer: IpAddr,
    peer_text: &str,
    trusted: bool,
    authority: &[u8],
    request_id: &[u8],
) {
    out.clear();
    out.extend_from_slice(head.method(buf));
    out.push(b' ');
    match entry.upstream_path(path) {
        Cow::Borrowed(p) => out.extend_from_slice(p.as_bytes()),
        Cow::Owned(p) => out.extend_from_slice(p.as_bytes()),
    }
    out.extend_from_slice(head.query(buf));
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(authority);
    out.extend_from_slice(b"\r\n");
    let mut has_proto = false;
    let mut has_host = false;
    let mut has_real_ip = false;
    for h in &head.headers {
        let pass = match h.role {
            Role::Other | Role::Authorization | Role::Date | Role::ContentLength => true,
            Role::ForwardedProto if trusted => {
                has_proto = true;
                true
            }
            Role::ForwardedHost if trusted => {
                has_host = true;
                true
            }
            Role::RealIp if trusted => {
                has_real_ip = true;
                true
            }
            Role::Client => trusted,
            _ => false,
        };
        if pass {
            write_header(out, h.name.of(buf), h.value.of(buf));
        }
    }
    if head.framing() == Framing::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    let earlier = |out: &mut Vec<u8>, role: Role| {
        if trusted {
            for h in head.headers.iter().filter(|h| h.role == role) {
                out.extend_from_slice(h.value.of(buf));
                out.extend_from_slice(b", ");
            }
        }
    };
    out.extend_from_slice(b"x-forwarded-for: ");
    earlier(out, Role::ForwardedFor);
    out.extend_from_slice(peer_text.as_bytes());
    out.extend_from_slice(b"\r\nforwarded: ");
    earlier(out, Role::Forwarded);
    crate::forwarded::write_element(out, peer, peer_text, authority, "http");
    out.extend_from_slice(b"\r\n");
    if !has_proto {
        out.extend_from_slice(b"x-forwarded-proto: http\r\n");
    }
    if !has_host {
        write_header(out, b"x-forwarded-host", authority);
    }
    if !has_real_ip {
        write_header(out, b"x-real-ip", peer_text.as_bytes());
    }
    write_header(out, b"x-request-id", request_id);
    out.extend_from_slice(b"\r\n");
}

/// The response head for the client: the instance's status and headers minus hop-by-hop ones,
/// our `X-Request-Id`, a `Date` when the instance sent none, and `Connection` as needed.
fn write_response_head(
    out: &mut Vec<u8>,
    buf: &[u8],
    response: &ResponseHead,
    request_id: &[u8],
    keep: bool,
    http10: bool,
    decode: bool,
) {
    out.clear();
    write_status_line(out, response.status, response.reason.of(buf));
    for h in &response.headers {
        match h.role {
            Role::HopByHop | Role::Connection | Role::RequestId => {}
            // The body goes on as it came, so does its coding (unless decoded for HTTP/1.0).
            Role::TransferEncoding if decode => {}
            _ => write_header(out, h.name.of(buf), h.value.of(buf)),
        }
    }
    write_header(out, b"x-request-id", request_id);
    if !response.has_date {
        write_header(out, b"date", &http_date());
    }
    if !keep {
        out.extend_from_slice(b"connection: close\r\n");
    } else if http10 {
        out.extend_from_slice(b"connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn write_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

fn write_status_line(out: &mut Vec<u8>, status: u16, reason: &[u8]) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(&[
        b'0' + (status / 100 % 10) as u8,
        b'0' + (status / 10 % 10) as u8,
        b'0' + (status % 10) as u8,
        b' ',
    ]);
    if reason.is_empty() {
        let canonical = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("");
        out.extend_from_slice(canonical.as_bytes());
    } else {
        out.extend_from_slice(reason);
    }
    out.extend_from_slice(b"\r\n");
}

/// The `Date` header's value, formatted once a second per thread.
fn http_date() -> [u8; 29] {
    thread_local! {
        static DATE: std::cell::Cell<(u64, [u8; 29])> = const { std::cell::Cell::new((0, [0; 29])) };
    }
    let now = SystemTime::now();
    let second = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    DATE.with(|cell| {
        let (cached, text) = cell.get();
        if cached == second && text[0] != 0 {
            return text;
        }
        let mut fresh = [0u8; 29];
        let formatted = httpdate::fmt_http_date(now);
        if formatted.len() == fresh.len() {
            fresh.copy_from_slice(formatted.as_bytes());
        }
        cell.set((second, fresh));
        fresh
    })
}

/// Writes `a` then `b`, with one `writev` when the socket takes it all.
async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut a: &[u8],
    mut b: &[u8],
) -> io::Result<()> {
    while !a.is_empty() || !b.is_empty() {
        let n = if a.is_empty() {
            w.write(b).await?
        } else if b.is_empty() {
            w.write(a).await?
        } else {
            w.write_vectored(&[IoSlice::new(a), IoSlice::new(b)])
                .await?
        };
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        let from_a = n.min(a.len());
        a = &a[from_a..];
        b = &b[n - from_a..];
    }
    Ok(())
}

/// A fresh connection to an instance, or why not and whether it was refused.
async fn connect(addr: SocketAddr, timeout: Duration) -> Result<UpstreamConn, (String, bool)> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            let _ = stream.set_nodelay(true);
            Ok(UpstreamConn::new(stream))
        }
        Ok(Err(e)) => Err((e.to_string(), e.kind() == io::ErrorKind::ConnectionRefused)),
        Err(_) => Err((format!("connect timed out after {timeout:?}"), false)),
    }
}

/// A deadline for one kind of wait, on a timer made once per connection: moving the deadline
/// later (every request) costs nothing; the timer is re-armed only when it fires early.
#[derive(Default)]
struct Timer {
    sleep: Option<Pin<Box<Sleep>>>,
}

impl Timer {
    /// `fut`'s output, or `None` when `deadline` passes first.
    async fn run<F: Future>(&mut self, deadline: Instant, fut: F) -> Option<F::Output> {
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        let mut fut = std::pin::pin!(fut);
        poll_fn(|cx| {
            if let Poll::Ready(v) = fut.as_mut().poll(cx) {
                return Poll::Ready(Some(v));
            }
            loop {
                match sleep.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) if Instant::now() >= deadline => return Poll::Ready(None),
                    Poll::Ready(()) => sleep.as_mut().reset(deadline),
                }
            }
        })
        .await
    }
}

/// What a request is recorded as once answered: its route's counters and its access log line.
struct Ledger {
    start: std::time::Instant,
    /// The request's id: the trusted client's, or a new one.
    request_id: Vec<u8>,
    metrics: Option<Arc<RouteMetrics>>,
    log: Option<(crate::AccessLog, AccessRecord)>,
}

impl Ledger {
    fn finish(self, status: u16, bytes: u64, router: &Router) {
        if self.log.is_none() {
            let duration = self.start.elapsed();
            match &self.metrics {
                Some(m) => m.observe(status, duration),
                None => router.metrics().unrouted_arc().observe(status, duration),
            }
            return;
        }
        Done {
            start: self.start,
            status,
            metrics: self
                .metrics
                .unwrap_or_else(|| router.metrics().unrouted_arc()),
            log: self.log,
            dropped: router.metrics().access_log_dropped_arc(),
        }
        .record(bytes);
    }
}
