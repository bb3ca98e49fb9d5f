//! The router as a user meets it: routes from labels served by the daemon, fed by the
//! supervisor's events. Real upstreams (a small Python HTTP and WebSocket server), real clients
//! on loopback: no request fails while a 3-replica service is scaled down and up and while a
//! replica is killed with SIGKILL, a WebSocket stays open across scaling and route changes,
//! `allow_from: service:<name>` tells instances apart by their addresses (isolated networks:
//! root only), and a rule that cannot be enforced is refused before anything starts.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::stack::{Stack, free_port, get, signal};

/// An HTTP server that answers its host name, and echoes WebSocket text frames on `/ws`.
const APP: &str = r#"
import base64, hashlib, http.server, socket, struct, sys

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.headers.get("Upgrade", "").lower() == "websocket":
            return self.websocket()
        body = ("%s %s\n" % (socket.gethostname(), self.path)).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def websocket(self):
        key = self.headers["Sec-WebSocket-Key"]
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        while True:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode, length = head[0] & 0x0F, head[1] & 0x7F
            if length == 126:
                length = struct.unpack(">H", self.rfile.read(2))[0]
            mask = self.rfile.read(4)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(length)))
            if opcode == 8:
                return
            self.wfile.write(bytes([0x81, len(data)]) + data)
            self.wfile.flush()

http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), Handler).serve_forever()
"#;

/// Requests one after the other until stopped (at most 100,000); returns how many were made
/// and every failure.
struct Load {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<(usize, Vec<String>)>,
}

impl Load {
    fn start(addr: SocketAddr) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let (mut made, mut failures) = (0, Vec::new());
            while !flag.load(Ordering::Relaxed) && made < 100_000 {
                made += 1;
                match get(addr, "/") {
                    Ok((200, _)) => {}
                    Ok((status, body)) => failures.push(format!("{status} {body}")),
                    Err(e) => failures.push(e),
                }
            }
            (made, failures)
        });
        Load { stop, thread }
    }

    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the load thread")
    }
}

/// A WebSocket client that sends and reads small text frames.
struct WebSocket {
    stream: TcpStream,
}

impl WebSocket {
    fn open(addr: SocketAddr, path: &str) -> WebSocket {
        let mut stream = TcpStream::connect(addr).expect("connect to the router");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: app.test\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        .unwrap();
        // The response head, byte by byte, so that nothing after it is consumed.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).expect("the upgrade response");
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        assert!(
            head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="),
            "the accept key passes through: {head}"
        );
        WebSocket { stream }
    }

    fn echo(&mut self, text: &str) -> String {
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | u8::try_from(text.len()).unwrap()];
        frame.extend_from_slice(&mask);
        frame.extend(text.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        self.stream.write_all(&frame).expect("send a frame");
        let mut head = [0u8; 2];
        self.stream
            .read_exact(&mut head)
            .expect("the WebSocket is still open");
        let mut data = vec![0u8; usize::from(head[1] & 0x7F)];
        self.stream.read_exact(&mut data).expect("the echo");
        String::from_utf8(data).unwrap()
    }
}

fn compose(port: u16, replicas: u32, extra: &str) -> String {
    format!(
        r#"
name: routed
x-wharf:
  router:
    http: 127.0.0.1:{port}
services:
  web:
    command: ["python3", "{{APP}}/app.py", "8000"]
    deploy: {{ replicas: {replicas} }}
    stop_grace_period: 3s
    labels:
      wharf.http.port: "8000"
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/')"]
      interval: 30s
      start_period: 30s
      start_interval: 100ms
{extra}"#
    )
}

fn write_app(stack: &Stack, text: &str) {
    let text = text.replace("{APP}", stack.app().to_str().unwrap());
    std::fs::write(stack.app().join("app.py"), APP).unwrap();
    std::fs::write(stack.app().join("compose.yaml"), text).unwrap();
}

/// Waits until the router sends `route`'s requests to `n` instances (`wharf routes`).
fn wait_routed(stack: &Stack, route: &str, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let out = stack
            .wharf()
            .args(["routes", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let answer: Value = serde_json::from_slice(&out).expect("routes prints JSON");
        let healthy = answer["routes"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["route"] == route)
            .and_then(|r| r["healthy"].as_u64());
        if healthy == Some(n) {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "route {route} did not reach {n} instances: {answer}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `n` instances of web are healthy and nothing else of web is left.
fn wait_web(stack: &Stack, n: usize) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let ps = stack.ps();
        let web: Vec<&Value> = ps
            .iter()
            .filter(|i| i["service"] == "web" && i["status"] != "exited")
            .collect();
        if web.len() == n && web.iter().all(|i| i["health"] == "healthy") {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "web did not reach {n} healthy instances: {ps:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn no_request_fails_while_scaling_and_killing_and_a_websocket_stays_open() {
    let port = free_port();
    let router: SocketAddr = ([127, 0, 0, 1], port).into();
    let stack = Stack::new("services: {}\n");
    write_app(&stack, &compose(port, 1, ""));
    stack
        .wharf()
        .args(["up", "-d", "--wait"])
        .assert()
        .success();

    let routes = String::from_utf8(
        stack
            .wharf()
            .arg("routes")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(
        routes.contains(&format!("127.0.0.1:{port}")) && routes.contains("1/1"),
        "{routes}"
    );

    // The WebSocket lands on the only instance, web-1, which stays through what follows.
    let mut ws = WebSocket::open(router, "/ws");
    assert_eq!(ws.echo("first"), "first");

    let load = Load::start(router);
    stack.wharf().args(["scale", "web=3"]).assert().success();
    wait_web(&stack, 3);
    stack.wharf().args(["scale", "web=1"]).assert().success();
    wait_web(&stack, 1);
    assert_eq!(ws.echo("after scaling down"), "after scaling down");
    stack.wharf().args(["scale", "web=3"]).assert().success();
    wait_web(&stack, 3);

    // SIGKILL of one replica (its shim: the whole instance goes at once).
    let victim = stack.instance("routed-web-3").expect("web-3");
    let pid = u32::try_from(victim["pid"].as_u64().expect("web-3 runs")).unwrap();
    signal(pid, Signal::SIGKILL);
    stack.wait_for("routed-web-3", Duration::from_secs(20), |i| {
        i["status"] == "exited"
    });
    // A route change (another service with a route) swaps the table under the WebSocket.
    write_app(
        &stack,
        &compose(
            port,
            3,
            r#"  docs:
    command: ["python3", "{APP}/app.py", "9000"]
    labels:
      wharf.http.port: "9000"
      wharf.http.path: /docs
    healthcheck:
      test: ["CMD", "python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9000/')"]
      start_period: 30s
      start_interval: 100ms
"#,
        ),
    );
    stack
        .wharf()
        .args(["up", "-d", "--wait", "docs"])
        .assert()
        .success();
    let (made, failures) = load.finish();
    assert!(made > 0);
    assert!(
        failures.is_empty(),
        "{} of {made} requests failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(10)]
    );
    eprintln!(
        "{made} requests while scaling 1 -> 3 -> 1 -> 3, a SIGKILL and a route change: none failed"
    );
    assert_eq!(ws.echo("after a route change"), "after a route change");
    let (status, body) = get(router, "/docs/x").expect("a response");
    assert_eq!(status, 200, "{body}");
    assert!(body.ends_with(" /docs/x\n"), "{body}");

    // Nothing healthy: 503 with the reason.
    stack.wharf().args(["scale", "web=0"]).assert().success();
    let (status, body) = get(router, "/").expect("a response");
    assert_eq!(
        (status, body.trim()),
        (503, "web: 0 of 3 instances healthy")
    );

    let metrics = {
        let client = wharf_api::Client::new(stack.state().join("wharf.sock"));
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(client.metrics())
            .expect("the daemon's metrics")
    };
    assert!(
        metrics.contains(r#"wharf_router_requests_total{project="routed",route="web",code="200"}"#),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"wharf_router_requests_total{project="routed",route="web",code="503"} 1"#),
        "{metrics}"
    );

    stack.wharf().arg("down").assert().success();
    assert!(
        TcpStream::connect(router).is_err(),
        "the router stops listening with its last project"
    );
}

/// `allow_from: service:shell`: the shell's instance may call the API, another service's may
/// not, and neither may the machine itself. Needs isolated networks (root).
#[test]
fn service_identities_are_enforced_by_address() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "SKIPPED service_identities_are_enforced_by_address: isolated networks need root"
        );
        return;
    }
    let port = free_port();
    let stack = Stack::new("services: {}\n");
    let sleeper = r#"["python3", "-c", "import time; time.sleep(100000)"]"#;
    write_app(
        &stack,
        &format!(
            r#"
name: guarded
x-wharf:
  router:
    http: 0.0.0.0:{port}
services:
  manager:
    command: ["python3", "{{APP}}/app.py", "8000"]
    labels:
      wharf.http.port: "8000"
      wharf.http.path: /shell-server
      wharf.http.allow_from: service:shell
  shell:
    command: {sleeper}
  intruder:
    command: {sleeper}
"#
        ),
    );
    stack
        .wharf()
        .args(["up", "-d", "--wait"])
        .assert()
        .success();
    // The router learns of the instance from its events, just after `up` returns.
    wait_routed(&stack, "manager", 1);

    // From inside an instance: the router on its default gateway (the host's side of the bridge).
    let call = format!(
        r#"
import socket, struct, urllib.request, urllib.error
gw = next(socket.inet_ntoa(struct.pack("<L", int(f[2], 16)))
          for f in (l.split() for l in open("/proc/net/route").readlines()[1:]) if f[1] == "00000000")
try:
    print(urllib.request.urlopen("http://%s:{port}/shell-server/x" % gw, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
"#
    );
    let status_from = |service: &str| {
        let out = stack
            .wharf()
            .args(["exec", service, "python3", "-c", &call])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        String::from_utf8(out).unwrap().trim().to_string()
    };
    assert_eq!(status_from("shell"), "200");
    assert_eq!(status_from("intruder"), "403");
    let (status, _) = get(([127, 0, 0, 1], port).into(), "/shell-server/x").expect("a response");
    assert_eq!(status, 403);
    let routes = String::from_utf8(
        stack
            .wharf()
            .arg("routes")
            .assert()
            .success()
            .get_output()
            .stdout
            .clone(),
    )
    .unwrap();
    assert!(
        routes.contains("allow_from service:shell (2 denied)"),
        "{routes}"
    );
    stack.wharf().arg("down").assert().success();
}

/// A `service:` rule that addresses cannot enforce (host networking) is refused by `up`, with
/// the service and the label, before anything starts.
#[test]
fn an_unenforceable_service_rule_is_refused() {
    let port = free_port();
    let stack = Stack::new(&format!(
        r#"
name: refused
x-wharf:
  router:
    http: 127.0.0.1:{port}
services:
  api:
    command: ["sleep", "100000"]
    labels:
      wharf.http.port: "8000"
      wharf.http.allow_from: service:shell
  shell:
    command: ["sleep", "100000"]
    network_mode: host
"#
    ));
    let out = stack.wharf().args(["up", "-d"]).assert().failure();
    let err = String::from_utf8(out.get_output().stderr.clone()).unwrap();
    assert!(
        err.contains(
            "service `api`: label `wharf.http.allow_from`: `service:shell` cannot be enforced"
        ),
        "{err}"
    );
    // Nothing was stored or started: the daemon does not know the project.
    let ps = stack.wharf().args(["ps", "-a"]).assert().failure();
    let err = String::from_utf8(ps.get_output().stderr.clone()).unwrap();
    assert!(err.contains("no project `refused`"), "{err}");
}
