//! Hostile input at the API's edge: project names that are paths, and a socket served by
//! another user.

use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use wharf_api::client::trusted_daemon;
use wharf_api::{Client, ErrorKind};

use crate::fake::{FakeControl, serve};

/// Sends one raw HTTP/1.1 request on the socket and returns the answer's status code.
async fn status_of(socket: &std::path::Path, method: &str, target: &str) -> u16 {
    let mut stream = tokio::net::UnixStream::connect(socket).await.unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nhost: wharf\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {text}"))
}

/// Issue 12, item 8: `GET /v1/projects/..%2F..%2Ftrav/logs?follow=true` read a file outside the
/// state directory (the follow branch skipped the project lookup). Every route that takes a
/// project now refuses such a name before the `Control` is asked anything.
#[tokio::test]
async fn a_project_name_that_is_a_path_is_refused_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let control = Arc::new(FakeControl::default());
    let client = serve(dir.path(), Arc::clone(&control));
    let socket = client.socket().to_path_buf();
    for name in [
        "..%2F..%2Ftrav",
        "..",
        "%2Fetc",
        "a%2F..%2F..%2Fb",
        "Upper",
        "-x",
    ] {
        for (method, verb) in [
            ("GET", "logs?follow=true"),
            ("GET", "logs"),
            ("GET", "ps"),
            ("POST", "up"),
            ("POST", "start"),
            ("POST", "stop"),
            ("POST", "restart"),
            ("POST", "kill"),
            ("POST", "scale"),
            ("GET", "exec-context?service=web&index=1"),
            ("POST", "down"),
        ] {
            let target = format!("/v1/projects/{name}/{verb}");
            assert_eq!(status_of(&socket, method, &target).await, 400, "{target}");
        }
    }
    for target in ["/v1/events?project=..%2Fx", "/v1/routes?project=%2Fetc"] {
        assert_eq!(status_of(&socket, "GET", target).await, 400, "{target}");
    }
    assert!(control.calls().is_empty(), "{:?}", control.calls());

    // A valid name goes through, and the refusal says what a name must be.
    assert_eq!(status_of(&socket, "GET", "/v1/projects/p/ps").await, 200);
    let e = client.ps("Upper", false).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert!(
        e.message.contains("`Upper` is not a valid project name"),
        "{e}"
    );
    assert!(e.message.contains("[a-z0-9][a-z0-9_-]*"), "{e}");
}

#[test]
fn only_root_or_the_user_is_a_trusted_daemon() {
    let socket = std::path::Path::new("/run/wharf.sock");
    assert!(trusted_daemon(0, 1000, socket).is_ok());
    assert!(trusted_daemon(1000, 1000, socket).is_ok());
    assert!(trusted_daemon(0, 0, socket).is_ok());
    let e = trusted_daemon(1001, 1000, socket).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Protocol);
    assert!(e.message.contains("/run/wharf.sock"), "{e}");
    assert!(e.message.contains("uid 1001"), "{e}");
    let e = trusted_daemon(1000, 0, socket).unwrap_err();
    assert!(e.message.contains("uid 1000"), "{e}");
}

/// Issue 12, item 3: a socket in a state directory another user created first must not be
/// trusted; the CLI runs what `exec-context` answers. A listener run as `nobody` (uid 65534)
/// is refused before any request is sent; the same check passes for our own daemon.
#[tokio::test]
async fn the_client_refuses_a_socket_served_by_another_user() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a listener as another user");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let socket = dir.path().join("wharf.sock");
    let ready = dir.path().join("ready");
    let script = format!(
        "import socket, os\ns = socket.socket(socket.AF_UNIX)\ns.bind({sock:?})\ns.listen(8)\nopen({ready:?}, 'w').close()\nwhile True:\n    c, _ = s.accept()\n    c.sendall(b'HTTP/1.1 200 OK\\r\\ncontent-type: application/json\\r\\ncontent-length: 2\\r\\n\\r\\n{{}}')\n",
        sock = socket.to_str().unwrap(),
        ready = ready.to_str().unwrap(),
    );
    let mut child = std::process::Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .env_clear()
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .spawn()
        .expect("python3 starts as nobody");
    // The listener is ready once it wrote `ready` (or it died: then the test fails below).
    while !ready.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the listener exited: {status}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let e = Client::new(&socket).info().await.unwrap_err();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(e.kind, ErrorKind::Protocol, "{e}");
    assert!(e.message.contains("uid 65534"), "{e}");
    assert!(e.message.contains(socket.to_str().unwrap()), "{e}");

    // Our own listener (root here) is trusted and answers.
    let own = tempfile::tempdir().unwrap();
    let client = serve(own.path(), Arc::new(FakeControl::default()));
    assert_eq!(client.info().await.unwrap().pid, 7);
}
