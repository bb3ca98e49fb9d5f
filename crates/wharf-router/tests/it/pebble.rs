//! ACME against a real Pebble (Debian's `pebble`), started by the test on loopback ports, its
//! validation ports pointed at the router's listeners and its DNS at a responder of the test
//! that answers 127.0.0.1 for every name. Pebble validates for real (no
//! `PEBBLE_VA_ALWAYS_VALID`): HTTP-01 through the plain listener, TLS-ALPN-01 through the TLS
//! listener. Without the pebble binary the tests say so and pass, unless
//! `WHARF_REQUIRE_PEBBLE=1`, where they fail.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;

use hyper::StatusCode;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use wharf_router::acme::ChallengeKind;
use wharf_router::settings::AcmeSettings;
use wharf_router::{Router, RouterConfig, Tls, TlsSettings};

use crate::backend::{Backend, start_router, table};
use crate::tls::{https_get, installed, roots, start_tls, test_pki};

/// The pebble binary, or `None` after saying loudly why the test does not run.
fn pebble() -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("pebble"))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        let why = "SKIPPED: the `pebble` binary is not installed (apt-get install -y pebble); the ACME tests did not run";
        // Past the test harness's capture, so that a passing run still shows it.
        let _ = std::io::Write::write_all(&mut std::io::stderr(), format!("{why}\n").as_bytes());
        if std::env::var("WHARF_REQUIRE_PEBBLE").as_deref() == Ok("1") {
            panic!("{why}, and WHARF_REQUIRE_PEBBLE=1");
        }
    }
    found
}

/// A DNS server on 127.0.0.1 that answers every A question with 127.0.0.1 and every other
/// question with no answer. Stops when dropped.
struct Dns {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for Dns {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn dns_responder() -> Dns {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = socket.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        loop {
            let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
                return;
            };
            if let Some(answer) = dns_answer(&buf[..n]) {
                let _ = socket.send_to(&answer, peer).await;
            }
        }
    });
    Dns { addr, task }
}

/// The answer to one query (RFC 1035 section 4): the question echoed, and an A record of
/// 127.0.0.1 when the question asks for A.
fn dns_answer(query: &[u8]) -> Option<Vec<u8>> {
    if query.len() < 12 || u16::from_be_bytes([query[4], query[5]]) != 1 {
        return None;
    }
    let mut i = 12;
    while *query.get(i)? != 0 {
        i += 1 + usize::from(query[i]);
    }
    let question_end = i + 5;
    let question = query.get(12..question_end)?;
    let qtype = u16::from_be_bytes([query[i + 1], query[i + 2]]);
    let is_a = qtype == 1;
    let mut out = Vec::with_capacity(question_end + 16);
    out.extend_from_slice(&query[0..2]); // id
    out.extend_from_slice(&[0x81, 0x80]); // response, recursion desired and available, no error
    out.extend_from_slice(&[0, 1, 0, u8::from(is_a), 0, 0, 0, 0]);
    out.extend_from_slice(question);
    if is_a {
        out.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 127, 0, 0, 1]);
    }
    Some(out)
}

/// A loopback port free a moment ago (Pebble takes addresses, not listeners).
async fn free_port() -> u16 {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    l.local_addr().expect("addr").port()
}

/// Pebble, running until dropped (killed by its own handle).
struct Pebble {
    directory: String,
    management: SocketAddr,
    /// The CA of Pebble's own HTTPS certificate (not of what it issues).
    tls_ca: PathBuf,
    _child: Child,
    _dns: Dns,
}

async fn start_pebble(binary: &Path, dir: &Path, http_port: u16, tls_port: u16) -> Pebble {
    let (ca, chain, key) = test_pki(&["localhost", "127.0.0.1"]);
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).expect("write");
        p
    };
    let tls_ca = write("pebble-ca.pem", &ca);
    let cert = write("pebble.pem", &chain);
    let key = write("pebble.key", &key);
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().await));
    let management = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port().await));
    let config = serde_json::json!({
        "pebble": {
            "listenAddress": listen.to_string(),
            "managementListenAddress": management.to_string(),
            "certificate": cert,
            "privateKey": key,
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false
        }
    });
    let config_path = write("pebble-config.json", &config.to_string());
    let dns = dns_responder().await;
    let mut child = Command::new(binary)
        .arg("-config")
        .arg(&config_path)
        .arg("-dnsserver")
        .arg(dns.addr.to_string())
        .arg("-strict=false")
        .env("PEBBLE_VA_NOSLEEP", "1")
        .env_remove("PEBBLE_VA_ALWAYS_VALID")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start pebble");
    let (lines_tx, mut lines) = mpsc::unbounded_channel::<String>();
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    for reader in [
        Box::new(stdout) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
        Box::new(stderr),
    ] {
        let tx = lines_tx.clone();
        tokio::spawn(async move {
            let mut r = BufReader::new(reader).lines();
            while let Ok(Some(line)) = r.next_line().await {
                eprintln!("pebble: {line}");
                let _ = tx.send(line);
            }
        });
    }
    drop(lines_tx);
    // Ready when it says where its directory is; if it exits first, its output says why.
    let mut seen = Vec::new();
    loop {
        match lines.recv().await {
            Some(line) if line.contains("ACME directory available at") => break,
            Some(line) => seen.push(line),
            None => panic!("pebble exited before serving:\n{}", seen.join("\n")),
        }
    }
    // Keep draining its output (it is echoed above).
    tokio::spawn(async move { while lines.recv().await.is_some() {} });
    Pebble {
        directory: format!("https://{listen}/dir"),
        management,
        tls_ca,
        _child: child,
        _dns: dns,
    }
}

/// Pebble's root of the certificates it issues (new at every start), from its management API.
async fn pebble_root(p: &Pebble) -> String {
    let ca = std::fs::read_to_string(&p.tls_ca).expect("Pebble's TLS CA");
    let a = https_get(
        p.management,
        "127.0.0.1",
        "/roots/0",
        roots(&ca),
        &[b"http/1.1"],
    )
    .await
    .expect("GET /roots/0");
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    a.body
}

/// A route with `tls: acme` for `host` on a router with both listeners, Pebble validating
/// against them; returns after a client that trusts Pebble's root got an answer over TLS.
async fn issue(kind: ChallengeKind, host: &str) {
    let Some(binary) = pebble() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let web = Backend::start("web-1").await;
    let routes = || {
        table(
            &[(
                "web",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.host", host),
                    ("wharf.http.tls", "acme"),
                ][..],
            )],
            false,
            1,
        )
    };
    let plain = start_router(routes(), RouterConfig::default()).await;
    let router: Router = plain.router.clone();
    router.apply(&web.up("web", 80, true));
    // The TLS listener needs a `Tls`; Pebble needs both ports before the settings exist, so
    // the listener is bound first and the `Tls` made for it.
    let pebble_dir = dir.path().join("pebble");
    std::fs::create_dir_all(&pebble_dir).expect("dir");
    let tls_listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let tls_addr = tls_listener.local_addr().expect("addr");
    let p = start_pebble(&binary, &pebble_dir, plain.addr.port(), tls_addr.port()).await;
    let settings = || TlsSettings {
        acme: AcmeSettings {
            email: Some("ops@wharf.example.com".into()),
            directory: p.directory.clone(),
            ca_roots: Some(p.tls_ca.clone()),
        },
        acme_challenge: kind,
        ..TlsSettings::new(&state)
    };
    let tls = Tls::new(settings()).expect("tls");
    router.enable_https(&tls, tls_addr.port());
    let serving = router.clone();
    let serving_tls = tls.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        serving
            .serve_tls(tls_listener, &serving_tls, async {
                let _ = stopped.await;
            })
            .await;
    });
    let mut events = tls.events();
    tls.apply(&routes()).expect("certificates");
    installed(&mut events, "web").await;

    let root = pebble_root(&p).await;
    let a = https_get(
        tls_addr,
        host,
        "/issued",
        roots(&root),
        &[b"h2", b"http/1.1"],
    )
    .await
    .expect("a client that trusts Pebble's root");
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.starts_with("web-1\n/issued\n"), "{}", a.body);
    assert!(a.body.contains("x-forwarded-proto: https\n"), "{}", a.body);
    let first = a.peer_certificate;

    // A restart reuses the stored certificate (Pebble is not asked again: same leaf).
    drop(stop);
    drop(tls);
    let again = Tls::new(settings()).expect("tls");
    let mut events = again.events();
    again.apply(&routes()).expect("certificates");
    installed(&mut events, "web").await;
    let server = start_tls(&router, &again).await;
    let a = https_get(server.addr, host, "/", roots(&root), &[b"h2"])
        .await
        .expect("after a restart");
    assert_eq!(a.peer_certificate, first);
    let account_keys: Vec<PathBuf> = walk(&state.join("acme"))
        .into_iter()
        .filter(|p| p.ends_with("account.key"))
        .collect();
    assert_eq!(account_keys.len(), 1, "{account_keys:?}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&account_keys[0])
            .expect("key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn pebble_issues_through_http_01() {
    issue(ChallengeKind::Http01, "http01.wharf.example.com").await;
}

#[tokio::test]
async fn pebble_issues_through_tls_alpn_01() {
    issue(ChallengeKind::TlsAlpn01, "alpn.wharf.example.com").await;
}

#[test]
fn the_dns_responder_answers_a_with_loopback() {
    // id 0x1234, one question: `a.test` A IN.
    let q = [
        0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, b'a', 4, b't', b'e', b's', b't', 0, 0,
        1, 0, 1,
    ];
    let a = dns_answer(&q).expect("answer");
    assert_eq!(&a[0..2], &[0x12, 0x34]);
    assert_eq!(&a[6..8], &[0, 1], "one answer");
    assert_eq!(&a[a.len() - 4..], &[127, 0, 0, 1]);
    assert_eq!(dns_answer(&q[..5]), None);
}
