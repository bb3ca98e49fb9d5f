//! The HTTP/1.1 fast path against raw sockets: every framing a response or request body can
//! have, keep-alive and its end, HTTP/1.0, instances that close pooled connections, slow or
//! oversized heads, and what it hands to hyper. Where both can serve a case, the fast path and
//! hyper (`http1_fast_path: false`) must give the client the same answer.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use wharf_router::{InstanceEvent, RouterConfig};

use crate::backend::{Backend, RunningRouter, start_router, table};

/// The router twice: on the fast path, and hyper only.
async fn both(config: RouterConfig) -> [RunningRouter; 2] {
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    let fast = start_router(
        t.clone(),
        RouterConfig {
            http1_fast_path: true,
            ..config.clone()
        },
    )
    .await;
    let hyper = start_router(
        t,
        RouterConfig {
            http1_fast_path: false,
            ..config
        },
    )
    .await;
    [fast, hyper]
}

fn up(addr: std::net::SocketAddr) -> InstanceEvent {
    InstanceEvent::Up {
        project: "p".into(),
        service: "web".into(),
        instance: "web-1".into(),
        addr: addr.ip(),
        addresses: Vec::new(),
        ports: [(80, addr.port())].into(),
        healthy: true,
    }
}

/// A backend speaking raw HTTP/1.1: each request (head only) is answered with the bytes
/// `answer` gives for its path; `close` ends the connection after every answer, without saying
/// so (as an instance that closes idle connections does), else only after `/close`. Counts its
/// connections.
struct RawBackend {
    addr: std::net::SocketAddr,
    connections: Arc<AtomicUsize>,
}

async fn raw_backend(answer: fn(&str) -> Vec<u8>, close: bool) -> RawBackend {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            counted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let Some(end) = find(&buf, b"\r\n\r\n") else {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    // A body, if any, is skipped by its length.
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_string)
                        })
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < end + 4 + length {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
                            _ => return,
                        }
                    }
                    buf.drain(..end + 4 + length);
                    // `/close` answers are delimited by the close.
                    if stream.write_all(&answer(&path)).await.is_err() || close || path == "/close"
                    {
                        return;
                    }
                }
            });
        }
    });
    RawBackend { addr, connections }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An HTTP backend that answers with the request's body as it arrives.
async fn echo_backend() -> std::net::SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async {
                        Ok::<_, Infallible>(Response::new(req.into_body()))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

/// Reads one response that has a `Content-Length`.
async fn read_one(stream: &mut TcpStream) -> RawResponse {
    let mut bytes = Vec::new();
    loop {
        if let Some(end) = find(&bytes, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length");
            if bytes.len() >= end + 4 + length {
                return parse_responses(&bytes, &[false]).remove(0);
            }
        }
        let mut chunk = [0u8; 1024];
        let n = stream.read(&mut chunk).await.expect("read");
        assert!(
            n > 0,
            "the router closed: {}",
            String::from_utf8_lossy(&bytes)
        );
        bytes.extend_from_slice(&chunk[..n]);
    }
}

#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Writes `request` (its last request should close the connection) and reads every response
/// until the router closes; `heads[i]`: response `i` answers a HEAD.
async fn exchange(addr: std::net::SocketAddr, request: &[u8], heads: &[bool]) -> Vec<RawResponse> {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes).await;
    parse_responses(&bytes, heads)
}

fn parse_responses(mut bytes: &[u8], heads: &[bool]) -> Vec<RawResponse> {
    let mut responses = Vec::new();
    while !bytes.is_empty() {
        let mut storage = [httparse::EMPTY_HEADER; 64];
        let mut res = httparse::Response::new(&mut storage);
        let Ok(httparse::Status::Complete(len)) = res.parse(bytes) else {
            panic!("not a response: {:?}", String::from_utf8_lossy(bytes));
        };
        let status = res.code.expect("status");
        let headers: Vec<(String, String)> = res
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_ascii_lowercase(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect();
        bytes = &bytes[len..];
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let head = heads.get(responses.len()).copied().unwrap_or(false);
        let body = if head || status == 204 || status == 304 || status < 200 {
            Vec::new()
        } else if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            let mut body = Vec::new();
            loop {
                let line = find(bytes, b"\r\n").expect("a chunk size line");
                let text = String::from_utf8_lossy(&bytes[..line]).into_owned();
                let size = usize::from_str_radix(text.split(';').next().unwrap_or(""), 16)
                    .expect("a chunk size");
                bytes = &bytes[line + 2..];
                if size == 0 {
                    // Trailers, up to an empty line.
                    loop {
                        let end = find(bytes, b"\r\n").expect("the end");
                        bytes = &bytes[end + 2..];
                        if end == 0 {
                            break;
                        }
                    }
                    break;
                }
                body.extend_from_slice(&bytes[..size]);
                bytes = &bytes[size + 2..];
            }
            body
        } else if let Some(n) = header("content-length") {
            let n: usize = n.parse().expect("a length");
            let body = bytes[..n].to_vec();
            bytes = &bytes[n..];
            body
        } else {
            let body = bytes.to_vec();
            bytes = &[];
            body
        };
        responses.push(RawResponse {
            status,
            headers,
            body,
        });
    }
    responses
}

fn scripted(path: &str) -> Vec<u8> {
    match path {
        "/length" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Seen: yes\r\n\r\nhello".to_vec(),
        "/chunked" => b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n".to_vec(),
        "/close" => b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end".to_vec(),
        "/204" => b"HTTP/1.1 204 No Content\r\nX-Seen: yes\r\n\r\n".to_vec(),
        "/304" => b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\n\r\n".to_vec(),
        "/early" => b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        "/hop" => b"HTTP/1.1 200 OK\r\nConnection: x-private\r\nX-Private: 1\r\nKeep-Alive: timeout=5\r\nX-Request-Id: upstream-id\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        "/bad" => b"HTTP/1.1 200 OK\r\nContent-Length: nope\r\n\r\n".to_vec(),
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    }
}

#[tokio::test]
async fn every_response_framing_reaches_the_client_as_hyper_would_send_it() {
    let backend = raw_backend(scripted, false).await;
    let cases: [(&str, &str, u16, &[u8]); 9] = [
        ("GET", "/length", 200, b"hello"),
        ("HEAD", "/length", 200, b""),
        ("GET", "/chunked", 200, b"hello world"),
        ("GET", "/close", 200, b"until the end"),
        ("GET", "/204", 204, b""),
        ("GET", "/304", 304, b""),
        ("GET", "/early", 200, b"ok"),
        ("GET", "/hop", 200, b"ok"),
        ("GET", "/bad", 502, b""),
    ];
    for r in both(RouterConfig::default()).await {
        r.router.apply(&up(backend.addr));
        for (method, path, status, body) in cases {
            let request =
                format!("{method} {path} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n");
            let got = exchange(r.addr, request.as_bytes(), &[method == "HEAD"]).await;
            assert_eq!(got.len(), 1, "{method} {path}: {got:?}");
            assert_eq!(got[0].status, status, "{method} {path}: {got:?}");
            if status != 502 {
                assert_eq!(got[0].body, body, "{method} {path}");
            }
            assert_eq!(got[0].header("x-request-id").map(str::len), Some(24));
            assert!(got[0].header("date").is_some());
        }
        let got = exchange(
            r.addr,
            b"HEAD /length HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            &[true],
        )
        .await;
        assert_eq!(got[0].header("content-length"), Some("5"));
        assert_eq!(got[0].header("x-seen"), Some("yes"));
        // Hop-by-hop headers stay with the hop; the router's request id replaces the instance's.
        let got = exchange(
            r.addr,
            b"GET /hop HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            &[false],
        )
        .await;
        assert_eq!(got[0].header("x-private"), None);
        assert_eq!(got[0].header("keep-alive"), None);
        assert_ne!(got[0].header("x-request-id"), Some("upstream-id"));
        // An HTTP/1.0 client gets a chunked body's data, delimited by the close.
        let got = exchange(
            r.addr,
            b"GET /chunked HTTP/1.0\r\nHost: a.test\r\n\r\n",
            &[false],
        )
        .await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].body, b"hello world");
    }
}

#[tokio::test]
async fn keep_alive_pipelining_and_the_end_of_a_connection() {
    let backend = raw_backend(scripted, false).await;
    for r in both(RouterConfig::default()).await {
        r.router.apply(&up(backend.addr));
        // Three requests in one write; the last one closes.
        let got = exchange(
            r.addr,
            b"GET /length HTTP/1.1\r\nHost: a.test\r\n\r\nGET /chunked HTTP/1.1\r\nHost: a.test\r\n\r\nHEAD /length HTTP/1.1\r\nHost: a.test\r\n\r\nGET /length HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            &[false, false, true, false],
        )
        .await;
        let bodies: Vec<&[u8]> = got.iter().map(|r| r.body.as_slice()).collect();
        assert_eq!(bodies, [&b"hello"[..], b"hello world", b"", b"hello"]);
        assert_eq!(got[3].header("connection"), Some("close"));
        // HTTP/1.0 keeps the connection only when asked.
        let got = exchange(
            r.addr,
            b"GET /length HTTP/1.0\r\nHost: a.test\r\nConnection: keep-alive\r\n\r\nGET /length HTTP/1.0\r\nHost: a.test\r\n\r\nGET /length HTTP/1.0\r\nHost: a.test\r\n\r\n",
            &[false, false, false],
        )
        .await;
        assert_eq!(got.len(), 2, "closed after the second: {got:?}");
        // A close-delimited answer: hyper re-chunks it, the fast path ends the client's
        // connection after it; either way the client gets all of it.
        let got = exchange(
            r.addr,
            b"GET /close HTTP/1.1\r\nHost: a.test\r\n\r\nGET /length HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            &[false, false],
        )
        .await;
        assert_eq!(got[0].body, b"until the end");
    }
}

#[tokio::test]
async fn request_bodies_stream_by_length_and_by_chunks() {
    let echo = echo_backend().await;
    for r in both(RouterConfig::default()).await {
        r.router.apply(&up(echo));
        let got = exchange(
            r.addr,
            b"POST /a HTTP/1.1\r\nHost: a.test\r\nContent-Length: 11\r\n\r\nhello worldPOST /b HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\nGET /c HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n",
            &[false, false, false],
        )
        .await;
        let bodies: Vec<&[u8]> = got.iter().map(|r| r.body.as_slice()).collect();
        assert_eq!(bodies, [&b"hello world"[..], b"abcdefg", b""]);

        // A body larger than any buffer, sent in pieces after the head.
        let mut stream = TcpStream::connect(r.addr).await.expect("connect");
        let size = 1 << 20;
        let head = format!(
            "PUT /big HTTP/1.1\r\nHost: a.test\r\nContent-Length: {size}\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("head");
        let (mut read, mut write) = stream.into_split();
        let sender = tokio::spawn(async move {
            let piece = vec![b'x'; 64 * 1024];
            for _ in 0..size / piece.len() {
                write.write_all(&piece).await.expect("body");
            }
            write
        });
        let mut bytes = Vec::new();
        read.read_to_end(&mut bytes).await.expect("read");
        let _write = sender.await.expect("sent");
        let got = parse_responses(&bytes, &[false]);
        assert_eq!(got[0].status, 200);
        assert_eq!(got[0].body.len(), size);
    }
}

#[tokio::test]
async fn a_broken_chunked_request_body_never_reaches_an_instance_as_valid() {
    let backend = raw_backend(scripted, false).await;
    for r in both(RouterConfig::default()).await {
        r.router.apply(&up(backend.addr));
        let got = exchange(
            r.addr,
            b"POST /length HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
            &[false],
        )
        .await;
        // Refused by the router (400) or by the instance's side of the exchange (502), or
        // closed; never the instance's answer to a whole request.
        assert!(
            got.iter().all(|g| g.status == 400 || g.status == 502),
            "refused or closed: {got:?}"
        );
    }
}

#[tokio::test]
async fn a_safe_request_answered_with_broken_framing_is_tried_on_another_instance() {
    fn broken(_: &str) -> Vec<u8> {
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec()
    }
    let bad = raw_backend(broken, false).await;
    let good = raw_backend(scripted, false).await;
    // The fast path only: it checks the framing read with the head before answering; hyper has
    // sent the head by the time its body breaks, and closes the connection.
    let [fast, _] = both(RouterConfig::default()).await;
    {
        let r = fast;
        r.router.apply(&up(bad.addr));
        r.router.apply(&InstanceEvent::Up {
            project: "p".into(),
            service: "web".into(),
            instance: "web-2".into(),
            addr: good.addr.ip(),
            addresses: Vec::new(),
            ports: [(80, good.addr.port())].into(),
            healthy: true,
        });
        // Every request gets the good instance's answer, also those tried on the bad one first.
        let mut stream = TcpStream::connect(r.addr).await.expect("connect");
        for _ in 0..4 {
            stream
                .write_all(b"GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n")
                .await
                .expect("write");
            let got = read_one(&mut stream).await;
            assert_eq!((got.status, got.body.as_slice()), (200, &b"hello"[..]));
        }
        let metrics = r.router.metrics().route("p", "web").expect("counters");
        assert!(metrics.upstream_failures(wharf_router::metrics::UpstreamFailure::Protocol) > 0);
    }
}

#[tokio::test]
async fn an_instance_that_hangs_up_on_a_streamed_body_is_a_502() {
    // Takes each connection and closes it at once, before any answer.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    for r in both(RouterConfig::default()).await {
        r.router.apply(&up(addr));
        // The head and part of the body (the rest would follow the answer), by length and
        // chunked: one 502 each.
        for request in [
            &b"POST /up HTTP/1.1\r\nHost: a.test\r\nContent-Length: 10\r\n\r\nhalf"[..],
            b"POST /up HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhalf\r\n",
        ] {
            let mut stream = TcpStream::connect(r.addr).await.expect("connect");
            stream.write_all(request).await.expect("write");
            let mut bytes = Vec::new();
            let _ = stream.read_to_end(&mut bytes).await;
            let got = parse_responses(&bytes, &[false]);
            assert_eq!(got.len(), 1, "{got:?}");
            assert_eq!(got[0].status, 502);
        }
    }
}

#[tokio::test]
async fn connections_the_instance_closed_while_idle_are_replaced() {
    // Closes after every answer without saying so: each pooled connection is dead when reused.
    let backend = raw_backend(scripted, true).await;
    let [r, _] = both(RouterConfig::default()).await;
    r.router.apply(&up(backend.addr));
    let mut stream = TcpStream::connect(r.addr).await.expect("connect");
    let requests: [&[u8]; 4] = [
        b"GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n",
        b"GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n",
        b"POST /length HTTP/1.1\r\nHost: a.test\r\nContent-Length: 3\r\n\r\nabc",
        b"DELETE /length HTTP/1.1\r\nHost: a.test\r\n\r\n",
    ];
    for request in requests {
        stream.write_all(request).await.expect("write");
        // One answer at a time, so that the instance's close comes before the next request.
        let got = read_one(&mut stream).await;
        assert_eq!(
            (got.status, got.body.as_slice()),
            (200, &b"hello"[..]),
            "{}",
            String::from_utf8_lossy(request)
        );
    }
    assert_eq!(backend.connections.load(Ordering::SeqCst), 4);
    let metrics = r.router.metrics().route("p", "web").expect("counters");
    assert_eq!(metrics.responses(200), 4);
    assert_eq!(
        metrics.upstream_failures(wharf_router::metrics::UpstreamFailure::Protocol),
        0
    );
}

#[tokio::test]
async fn a_slow_head_is_cut_off_by_the_header_timeout() {
    let backend = raw_backend(scripted, false).await;
    let config = RouterConfig {
        header_read_timeout: Duration::from_millis(100),
        ..RouterConfig::default()
    };
    for r in both(config).await {
        r.router.apply(&up(backend.addr));
        let mut stream = TcpStream::connect(r.addr).await.expect("connect");
        stream
            .write_all(b"GET /length HTTP/1.1\r\nHost: a.test\r\n")
            .await
            .expect("write");
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes).await;
        assert!(
            find(&bytes, b"hello").is_none(),
            "nothing was proxied: {}",
            String::from_utf8_lossy(&bytes)
        );
        // An idle kept-alive connection goes the same way.
        let mut stream = TcpStream::connect(r.addr).await.expect("connect");
        stream
            .write_all(b"GET /length HTTP/1.1\r\nHost: a.test\r\n\r\n")
            .await
            .expect("write");
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes).await;
        assert_eq!(parse_responses(&bytes, &[false])[0].body, b"hello");
    }
}

#[tokio::test]
async fn what_the_fast_path_leaves_to_hyper_is_answered_alike() {
    let echo = echo_backend().await;
    let mut statuses = Vec::new();
    for r in both(RouterConfig::default()).await {
        r.router.apply(&up(echo));
        let mut huge = b"GET / HTTP/1.1\r\nHost: a.test\r\nX-Big: ".to_vec();
        huge.resize(512 * 1024, b'a');
        huge.extend_from_slice(b"\r\n\r\n");
        let mut many = b"GET / HTTP/1.1\r\nHost: a.test\r\n".to_vec();
        for i in 0..120 {
            many.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let mut seen = Vec::new();
        for request in [
            huge,
            many,
            b"GET / HTTP/1.1\r\nHost a.test\r\n\r\n".to_vec(),
            b"GET http://a.test/abs HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n".to_vec(),
            b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n".to_vec(),
            b"GET /{x} HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n".to_vec(),
        ] {
            let got = exchange(r.addr, &request, &[false]).await;
            seen.push(got.first().map(|g| g.status));
        }
        // `Expect: 100-continue`: hyper's interim answer, then the body goes through.
        let mut stream = TcpStream::connect(r.addr).await.expect("connect");
        stream
            .write_all(b"POST /e HTTP/1.1\r\nHost: a.test\r\nExpect: 100-continue\r\nContent-Length: 4\r\nConnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut interim = Vec::new();
        while find(&interim, b"\r\n\r\n").is_none() {
            let mut chunk = [0u8; 256];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0);
            interim.extend_from_slice(&chunk[..n]);
        }
        assert!(interim.starts_with(b"HTTP/1.1 100 Continue\r\n"));
        stream.write_all(b"ping").await.expect("body");
        let mut bytes = Vec::new();
        let _ = stream.read_to_end(&mut bytes).await;
        let got = parse_responses(&bytes, &[false]);
        assert_eq!((got[0].status, got[0].body.as_slice()), (200, &b"ping"[..]));
        statuses.push(seen);
    }
    assert_eq!(
        statuses[0],
        [
            Some(431),
            Some(431),
            Some(400),
            Some(200),
            Some(400),
            Some(200)
        ]
    );
    assert_eq!(statuses[0], statuses[1]);
}

#[tokio::test]
async fn the_fast_path_routes_and_forwards_as_hyper_does() {
    let web = Backend::start("web-1").await;
    for r in both(RouterConfig::default()).await {
        r.router.apply(&web.up("web", 80, true));
        let got = exchange(
            r.addr,
            b"GET /x?q=1 HTTP/1.1\r\nHost: a.test\r\nX-Forwarded-For: 6.6.6.6\r\nConnection: close, x-secret\r\nX-Secret: s\r\nX-Kept: k\r\n\r\n",
            &[false],
        )
        .await;
        let body = String::from_utf8_lossy(&got[0].body).into_owned();
        let lines: Vec<&str> = body.lines().collect();
        assert_eq!(&lines[..2], ["web-1", "/x?q=1"]);
        for expected in [
            "host: a.test",
            "x-forwarded-for: 127.0.0.1",
            "x-forwarded-proto: http",
            "x-forwarded-host: a.test",
            "forwarded: for=127.0.0.1;host=\"a.test\";proto=http",
            "x-kept: k",
        ] {
            assert!(lines.contains(&expected), "{expected} in {body}");
        }
        assert!(!body.contains("x-secret"), "{body}");
        assert!(!body.contains("6.6.6.6"), "{body}");
        assert!(!body.contains("connection:"), "{body}");
        let id = format!(
            "x-request-id: {}",
            got[0].header("x-request-id").unwrap_or("-")
        );
        assert!(lines.contains(&id.as_str()), "{body}");
    }
}
