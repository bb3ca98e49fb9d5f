//! Faults and abuse (issue 12): path tricks against access rules, spoofed client headers,
//! framing nginx refuses, idle and slow connections, connection floods, and instances that are
//! not listening yet. Each case runs on the fast path and on hyper's path (`http1_fast_path:
//! false`), over h2c, and over TLS where it applies.

use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full};
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use wharf_router::{
    AccessLog, AccessLogFormat, AccessSink, Cidr, InstanceEvent, RouteTable, Router, RouterConfig,
    Tls, TlsSettings,
};

use crate::backend::{Backend, Client, RunningRouter, start_router, table};
use crate::tls::{https_get, roots, start_tls, test_pki};

/// A bound on waits that would otherwise hang a failing test for ever; never reached when the
/// router does its job, so it is no timing threshold.
const HANG: Duration = Duration::from_secs(60);

/// The router twice on `t`: the fast path, then hyper only.
async fn both(t: RouteTable, config: RouterConfig) -> [(&'static str, RunningRouter); 2] {
    let fast = RouterConfig {
        http1_fast_path: true,
        ..config.clone()
    };
    let hyper = RouterConfig {
        http1_fast_path: false,
        ..config
    };
    [
        ("fast path", start_router(t.clone(), fast).await),
        ("hyper", start_router(t, hyper).await),
    ]
}

/// Writes `request` and reads the answer until the router closes: (status, whole answer);
/// status 0 when nothing came back. The router may answer and close before the request is
/// written whole (a 414, a refused connection): what it sent is read all the same.
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request).await;
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(HANG, stream.read_to_end(&mut bytes)).await;
    assert!(read.is_ok(), "the router neither answered nor closed");
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

fn get(path: &str, extra: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: x.test\r\n{extra}connection: close\r\n\r\n").into_bytes()
}

/// `/admin` for 10.0.0.0/8 only, `/` for anyone, both to `b`.
fn admin_and_web() -> RouteTable {
    table(
        &[
            (
                "admin",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.path", "/admin"),
                    ("wharf.http.allow_from", "10.0.0.0/8"),
                ],
            ),
            (
                "web",
                &[("wharf.http.port", "80"), ("wharf.http.path", "/")],
            ),
        ],
        false,
        1,
    )
}

/// Item 1's probes, as `curl --path-as-is` sends them.
const TRICKS: &[&str] = &[
    "/admin/secret.txt",
    "/%61dmin/secret.txt",
    "//admin/secret.txt",
    "/x/../admin/secret.txt",
    "/./admin/secret.txt",
    "/%2e/admin/secret.txt",
    "/%2E%2E/admin/secret.txt",
    "/admin%2fsecret.txt",
    "/admin%5csecret.txt",
];

/// The restricted route's refusal, or a 400 for a path that cannot be normalised safely.
fn refused(status: u16, body: &str, trick: &str, how: &str) {
    assert!(
        (status == 403 && body.contains("admin: 127.0.0.1 is not allowed"))
            || (status == 400 && body.contains("the request's path")),
        "{how}: {trick} got {status}: {body}"
    );
}

#[tokio::test]
async fn path_tricks_cannot_walk_around_allow_from() {
    let b = Backend::start("b-1").await;
    for (how, r) in both(admin_and_web(), RouterConfig::default()).await {
        r.router.apply(&b.up("admin", 80, true));
        r.router.apply(&b.up("web", 80, true));
        for trick in TRICKS {
            let (status, text) = raw(r.addr, &get(trick, "")).await;
            refused(status, &text, trick, how);
        }
        // h2c, from hyper's client (which sends the path as given).
        let c = Client::new(r.addr, true);
        for trick in TRICKS {
            let a = c.get("x.test", trick, &[]).await;
            refused(a.status.as_u16(), &a.body, trick, "h2c");
        }
        // What the instance gets is what was matched.
        let (status, text) = raw(r.addr, &get("/x/..//%70ublic/./a%7e.txt?q=/../%2e", "")).await;
        assert_eq!(status, 200, "{how}: {text}");
        assert!(
            text.contains("b-1\n/public/a~.txt?q=/../%2e\n"),
            "{how}: {text}"
        );
    }
}

#[tokio::test]
async fn path_tricks_cannot_walk_around_allow_from_over_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, chain, key) = test_pki(&["x.test"]);
    let cert = dir.path().join("x.pem");
    let key_path = dir.path().join("x.key");
    std::fs::write(&cert, chain).expect("write");
    std::fs::write(&key_path, key).expect("write");
    let (cert, key_path) = (cert.to_string_lossy(), key_path.to_string_lossy());
    let tls_labels = [
        ("wharf.http.host", "x.test"),
        ("wharf.http.tls", "files"),
        ("wharf.http.tls.cert", &*cert),
        ("wharf.http.tls.key", &*key_path),
    ];
    let mut admin = vec![
        ("wharf.http.port", "80"),
        ("wharf.http.path", "/admin"),
        ("wharf.http.allow_from", "10.0.0.0/8"),
    ];
    admin.extend(tls_labels);
    let mut web = vec![("wharf.http.port", "80"), ("wharf.http.path", "/")];
    web.extend(tls_labels);
    let t = table(&[("admin", &admin), ("web", &web)], false, 1);
    let tls = Tls::new(TlsSettings::new(dir.path().join("state"))).expect("tls");
    tls.apply(&t).expect("certificates");
    let router = Router::new(t, RouterConfig::default());
    let b = Backend::start("b-1").await;
    router.apply(&b.up("admin", 80, true));
    router.apply(&b.up("web", 80, true));
    let server = start_tls(&router, &tls).await;
    for alpn in [&b"h2"[..], b"http/1.1"] {
        for trick in TRICKS {
            let a = https_get(server.addr, "x.test", trick, roots(&ca), &[alpn])
                .await
                .expect("an answer");
            let how = String::from_utf8_lossy(alpn);
            refused(a.status.as_u16(), &a.body, trick, &how);
        }
    }
}

/// Every client-address header of item 7, and one with `_`.
const SPOOFED: &[(&str, &str)] = &[
    ("x-real-ip", "6.6.6.6"),
    ("true-client-ip", "6.6.6.6"),
    ("x-client-ip", "6.6.6.6"),
    ("cf-connecting-ip", "6.6.6.6"),
    ("fastly-client-ip", "6.6.6.6"),
    ("x-cluster-client-ip", "6.6.6.6"),
    ("x-original-url", "/admin"),
    ("x-rewrite-url", "/admin"),
    ("x-forwarded-prefix", "/admin"),
    ("x_forwarded_for", "6.6.6.6"),
];

#[tokio::test]
async fn client_address_headers_from_untrusted_peers_are_gone() {
    let b = Backend::start("web-1").await;
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    for (how, r) in both(t.clone(), RouterConfig::default()).await {
        r.router.apply(&b.up("web", 80, true));
        for (via, c) in [
            (how, Client::new(r.addr, false)),
            ("h2c", Client::new(r.addr, true)),
        ] {
            let a = c.get("x.test", "/", SPOOFED).await;
            assert_eq!(a.status.as_u16(), 200, "{via}");
            assert_eq!(a.seen("x-real-ip"), ["127.0.0.1"], "{via}: {}", a.body);
            for (name, _) in &SPOOFED[1..] {
                assert!(a.seen(name).is_empty(), "{via}: {name} passed: {}", a.body);
            }
        }
    }
    // A trusted proxy's are believed (the one with `_` is still dropped).
    let trusted = RouterConfig {
        trusted_proxies: vec!["127.0.0.0/8".parse::<Cidr>().expect("cidr")],
        ..RouterConfig::default()
    };
    for (how, r) in both(t, trusted).await {
        r.router.apply(&b.up("web", 80, true));
        let a = Client::new(r.addr, false).get("x.test", "/", SPOOFED).await;
        assert_eq!(a.seen("x-real-ip"), ["6.6.6.6"], "{how}");
        assert_eq!(a.seen("x-original-url"), ["/admin"], "{how}");
        assert!(a.seen("x_forwarded_for").is_empty(), "{how}");
    }
}

/// An instance that reads the whole request body, then answers with it and its trailers (or
/// fails, when the body breaks).
async fn body_backend() -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async {
                        let collected = req.into_body().collect().await?;
                        let trailers = format!("{:?}", collected.trailers());
                        let mut body = collected.to_bytes().to_vec();
                        body.extend_from_slice(format!("\ntrailers: {trailers}\n").as_bytes());
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(body))))
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

fn web_up(addr: SocketAddr) -> InstanceEvent {
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

fn web_table() -> RouteTable {
    table(&[("web", &[("wharf.http.port", "80")])], false, 1)
}

#[tokio::test]
async fn framing_is_answered_as_nginx_answers_it() {
    let backend = body_backend().await;
    for (how, r) in both(web_table(), RouterConfig::default()).await {
        r.router.apply(&web_up(backend));
        // A transfer coding other than chunked: 501.
        let te = b"POST / HTTP/1.1\r\nhost: x.test\r\ntransfer-encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let (status, text) = raw(r.addr, te).await;
        assert_eq!(status, 501, "{how}: {text}");
        // Two equal Content-Length headers: 400 on the fast path, as nginx answers; hyper's
        // parser merges them into one, and only that one goes on.
        let cl = b"POST / HTTP/1.1\r\nhost: x.test\r\ncontent-length: 5\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello";
        let (status, text) = raw(r.addr, cl).await;
        if how == "fast path" {
            assert_eq!(status, 400, "{how}: {text}");
        } else {
            assert_eq!(status, 200, "{how}: {text}");
        }
        let (status, text) = raw(
            r.addr,
            b"POST / HTTP/1.1\r\nhost: x.test\r\ncontent-length: 5, 5\r\n\r\nhello",
        )
        .await;
        assert_eq!(status, 400, "{how}: {text}");
        // Trailers do not reach the instance.
        let trailers = b"POST / HTTP/1.1\r\nhost: x.test\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n5\r\nhello\r\n0\r\ncontent-length: 9\r\nx-forwarded-for: 6.6.6.6\r\n\r\n";
        let (status, text) = raw(r.addr, trailers).await;
        assert_eq!(status, 200, "{how}: {text}");
        assert!(text.contains("hello\ntrailers: None\n"), "{how}: {text}");
    }
    // A request line longer than a head may be: 414 (hyper alone would say 431).
    let [(_, fast), _] = both(web_table(), RouterConfig::default()).await;
    let long = format!("/{}", "a".repeat(1024 * 1024));
    let (status, text) = raw(fast.addr, &get(&long, "")).await;
    assert_eq!(status, 414, "{}", &text[..text.len().min(200)]);
}

/// Lines go to the test.
struct ToTest(mpsc::UnboundedSender<String>);

impl AccessSink for ToTest {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.0
            .send(line.to_string())
            .map_err(|_| io::Error::other("the test stopped listening"))
    }
}

/// An instance that says (on `heard`) when the first bytes of a request body reached it, then
/// reads the rest before answering.
async fn first_bytes_backend(heard: mpsc::UnboundedSender<()>) -> SocketAddr {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let heard = heard.clone();
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                        let heard = heard.clone();
                        async move {
                            let mut body = req.into_body();
                            if let Some(frame) = body.frame().await {
                                frame?;
                                let _ = heard.send(());
                            }
                            body.collect().await?;
                            Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from("whole\n"))))
                        }
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_chunk_error_after_part_of_the_body_is_a_400_and_logged_as_one() {
    let (heard_tx, mut heard) = mpsc::unbounded_channel();
    let backend = first_bytes_backend(heard_tx).await;
    for fast in [true, false] {
        let (tx, mut lines) = mpsc::unbounded_channel();
        let config = RouterConfig {
            http1_fast_path: fast,
            access_log: Some(AccessLog::new(AccessLogFormat::Plain, ToTest(tx))),
            ..RouterConfig::default()
        };
        let r = start_router(web_table(), config).await;
        r.router.apply(&web_up(backend));
        let mut stream = TcpStream::connect(r.addr).await.expect("connect");
        let head =
            b"POST / HTTP/1.1\r\nhost: x.test\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n";
        stream.write_all(head).await.expect("write");
        // The first chunk has reached the instance before the broken one comes.
        heard
            .recv()
            .await
            .expect("the instance heard the first chunk");
        stream.write_all(b"zz\r\n").await.expect("write");
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(HANG, stream.read_to_end(&mut bytes)).await;
        assert!(read.is_ok(), "fast: {fast}: neither answered nor closed");
        let text = String::from_utf8_lossy(&bytes);
        assert!(text.starts_with("HTTP/1.1 400 "), "fast: {fast}: {text}");
        let line = lines.recv().await.expect("a line");
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields[5], "400", "fast: {fast}: {line}");
    }
}

#[tokio::test]
async fn idle_h2c_connections_are_closed() {
    let b = Backend::start("web-1").await;
    let config = RouterConfig {
        idle_timeout: Duration::from_millis(200),
        ..RouterConfig::default()
    };
    for (how, r) in both(web_table(), config).await {
        r.router.apply(&b.up("web", 80, true));
        let stream = TcpStream::connect(r.addr).await.expect("connect");
        let (mut sender, conn) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .expect("h2c handshake");
        let conn = tokio::spawn(conn);
        let req = Request::builder()
            .uri("http://x.test/")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let response = sender.send_request(req).await.expect("response");
        assert_eq!(response.status().as_u16(), 200, "{how}");
        drop(response);
        // Then nothing: the router ends the connection (the client's task completes).
        let ended = tokio::time::timeout(HANG, conn).await;
        assert!(
            ended.is_ok(),
            "{how}: the idle h2c connection is still open"
        );
        assert!(sender.is_closed(), "{how}");

        // A client that sends the h2 preface and nothing more is cut too.
        let mut stream = TcpStream::connect(r.addr).await.expect("connect");
        stream
            .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .expect("write");
        let mut sink = Vec::new();
        let read = tokio::time::timeout(HANG, stream.read_to_end(&mut sink)).await;
        assert!(
            read.is_ok(),
            "{how}: a silent h2c client is still connected"
        );
    }
}

#[tokio::test]
async fn a_slow_tls_handshake_is_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tls = Tls::new(TlsSettings::new(dir.path().join("state"))).expect("tls");
    let config = RouterConfig {
        tls_handshake_timeout: Duration::from_millis(200),
        ..RouterConfig::default()
    };
    let router = Router::new(RouteTable::default(), config);
    let server = start_tls(&router, &tls).await;
    // Connected, and half a ClientHello record header: then nothing.
    let mut stream = TcpStream::connect(server.addr).await.expect("connect");
    stream.write_all(&[0x16, 0x03]).await.expect("write");
    let mut sink = Vec::new();
    let read = tokio::time::timeout(HANG, stream.read_to_end(&mut sink)).await;
    assert!(read.is_ok(), "the handshake was never cut");
}

#[tokio::test]
async fn one_client_cannot_hold_more_than_its_share_of_connections() {
    let b = Backend::start("web-1").await;
    let config = RouterConfig {
        max_connections_per_client: 2,
        ..RouterConfig::default()
    };
    for (how, r) in both(web_table(), config).await {
        r.router.apply(&b.up("web", 80, true));
        let keep = b"GET / HTTP/1.1\r\nhost: x.test\r\n\r\n";
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut s = TcpStream::connect(r.addr).await.expect("connect");
            s.write_all(keep).await.expect("write");
            let mut first = [0u8; 12];
            s.read_exact(&mut first).await.expect("an answer");
            assert_eq!(&first, b"HTTP/1.1 200", "{how}");
            held.push(s);
        }
        // The third is closed unanswered.
        let (status, text) = raw(r.addr, &get("/", "")).await;
        assert_eq!((status, text.as_str()), (0, ""), "{how}");
        // A connection given back makes room again.
        drop(held.pop());
        let mut answered = false;
        for _ in 0..500 {
            if raw(r.addr, &get("/", "")).await.0 == 200 {
                answered = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(answered, "{how}: no room after a connection closed");
    }
}

#[tokio::test]
async fn a_starting_instance_is_waited_for_on_safe_requests_only() {
    for fast in [true, false] {
        let config = RouterConfig {
            http1_fast_path: fast,
            ..RouterConfig::default()
        };
        let r = start_router(web_table(), config).await;
        // A port nothing listens on yet: the instance has just joined, and is still starting.
        let port = {
            let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
            l.local_addr().expect("addr").port()
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        r.router.apply(&web_up(addr));
        let metrics = r.router.metrics().routes_named("web").remove(0);

        // A POST with a body is not repeated: 502 at once.
        let post =
            b"POST / HTTP/1.1\r\nhost: x.test\r\ncontent-length: 2\r\nconnection: close\r\n\r\nhi";
        let (status, text) = raw(r.addr, post).await;
        assert_eq!(status, 502, "fast: {fast}: {text}");
        assert_eq!(metrics.starting_retries(), 0, "fast: {fast}");

        // A GET waits while the instance refuses, and gets its answer once it listens.
        let router_addr = r.addr;
        let get = tokio::spawn(async move { raw(router_addr, &get("/", "")).await });
        while metrics.starting_retries() == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let listener = TcpListener::bind(addr)
            .await
            .expect("bind the instance's port");
        let serve = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(|_req| async {
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from("late\n"))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let (status, text) = get.await.expect("the request task");
        assert_eq!(status, 200, "fast: {fast}: {text}");
        assert!(text.ends_with("late\n"), "fast: {fast}: {text}");
        assert!(metrics.starting_retries() >= 1);
        assert!(
            r.router
                .metrics_text()
                .contains("wharf_router_upstream_starting_retries_total{"),
            "fast: {fast}"
        );
        serve.abort();
    }
}

#[tokio::test]
async fn another_instance_is_tried_before_waiting_for_a_starting_one() {
    let live = Backend::start("web-2").await;
    for fast in [true, false] {
        let config = RouterConfig {
            http1_fast_path: fast,
            ..RouterConfig::default()
        };
        let r = start_router(web_table(), config).await;
        let port = {
            let l = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
            l.local_addr().expect("addr").port()
        };
        r.router
            .apply(&web_up(SocketAddr::from((Ipv4Addr::LOCALHOST, port))));
        r.router.apply(&live.up("web", 80, true));
        let metrics = r.router.metrics().routes_named("web").remove(0);
        for _ in 0..6 {
            let (status, text) = raw(r.addr, &get("/", "")).await;
            assert_eq!(status, 200, "fast: {fast}: {text}");
        }
        assert_eq!(metrics.starting_retries(), 0, "fast: {fast}");
    }
}
