//! TLS termination: certificates from files and from the local wharf CA, served by SNI to real
//! rustls clients over h2 and HTTP/1.1, and the plain listener's redirect to HTTPS.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use rustls::RootCertStore;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use wharf_router::{RouteTable, Router, RouterConfig, Tls, TlsEvent, TlsSettings};

use crate::backend::{Backend, Client, start_router, table};

/// What a TLS client saw.
pub struct TlsAnswer {
    pub alpn: Option<Vec<u8>>,
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: String,
    pub peer_certificate: CertificateDer<'static>,
}

/// Roots from PEM text.
pub fn roots(pem: &str) -> RootCertStore {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.expect("PEM certificate")).expect("a root");
    }
    roots
}

/// One GET over TLS to `addr` with SNI `host`, offering `alpn`, trusting `roots` only.
pub async fn https_get(
    addr: SocketAddr,
    host: &str,
    path: &str,
    roots: RootCertStore,
    alpn: &[&[u8]],
) -> Result<TlsAnswer, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_string()).map_err(|e| e.to_string())?;
    let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (_, conn) = stream.get_ref();
    let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
    let peer_certificate = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or("no peer certificate")?;
    let io = TokioIo::new(stream);
    let response = if alpn.as_deref() == Some(b"h2") {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(format!("https://{host}{path}"))
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender.send_request(req).await.map_err(|e| e.to_string())?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let req = Request::builder()
            .uri(path)
            .header("host", host)
            .body(Empty::<Bytes>::new())
            .map_err(|e| e.to_string())?;
        sender.send_request(req).await.map_err(|e| e.to_string())?
    };
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok(TlsAnswer {
        alpn,
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        peer_certificate,
    })
}

/// The router serving TLS on an ephemeral port until dropped.
pub struct RunningTls {
    pub addr: SocketAddr,
    _stop: oneshot::Sender<()>,
}

pub async fn start_tls(router: &Router, tls: &Tls) -> RunningTls {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = oneshot::channel::<()>();
    let router = router.clone();
    let tls = tls.clone();
    tokio::spawn(async move {
        router
            .serve_tls(listener, &tls, async {
                let _ = stopped.await;
            })
            .await;
    });
    RunningTls { addr, _stop: stop }
}

/// Waits for the certificate of `route` to be installed; a failure is the test's failure.
pub async fn installed(events: &mut tokio::sync::broadcast::Receiver<TlsEvent>, route: &str) {
    loop {
        match events.recv().await.expect("TLS events") {
            TlsEvent::Installed { route: r, .. } if r == route => return,
            TlsEvent::Failed {
                route: r, error, ..
            } if r == route => panic!("certificate of {route} failed: {error}"),
            _ => {}
        }
    }
}

/// A test CA and a leaf for `hosts` signed by it: (CA PEM, leaf chain PEM, leaf key PEM).
pub fn test_pki(hosts: &[&str]) -> (String, String, String) {
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().expect("key");
    let leaf = CertificateParams::new(hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>())
        .expect("params")
        .signed_by(&leaf_key, &issuer)
        .expect("leaf");
    (ca.pem(), leaf.pem(), leaf_key.serialize_pem())
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write");
    path.to_string_lossy().into_owned()
}

#[tokio::test]
async fn certificate_files_are_served_over_h2_and_http1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, chain, key) = test_pki(&["files.wharf.test"]);
    let cert_path = write(dir.path(), "site.pem", &chain);
    let key_path = write(dir.path(), "site.key", &key);
    let web = Backend::start("web-1").await;
    let t = table(
        &[(
            "web",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.host", "files.wharf.test"),
                ("wharf.http.tls", "files"),
                ("wharf.http.tls.cert", &cert_path),
                ("wharf.http.tls.key", &key_path),
            ],
        )],
        false,
        1,
    );
    let tls = Tls::new(TlsSettings::new(dir.path().join("state"))).expect("tls");
    tls.apply(&t).expect("certificates");
    let router = Router::new(t, RouterConfig::default());
    router.apply(&web.up("web", 80, true));
    let server = start_tls(&router, &tls).await;

    let a = https_get(
        server.addr,
        "files.wharf.test",
        "/h2",
        roots(&ca),
        &[b"h2", b"http/1.1"],
    )
    .await
    .expect("h2 over TLS");
    assert_eq!(a.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.starts_with("web-1\n/h2\n"), "{}", a.body);
    assert!(a.body.contains("x-forwarded-proto: https\n"), "{}", a.body);
    assert!(a.body.contains("proto=https"), "{}", a.body);
    assert!(a.headers.contains_key("x-request-id"));

    let a = https_get(
        server.addr,
        "files.wharf.test",
        "/one",
        roots(&ca),
        &[b"http/1.1"],
    )
    .await
    .expect("HTTP/1.1 over TLS");
    assert_eq!(a.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("x-forwarded-proto: https\n"), "{}", a.body);

    // A client that trusts another CA refuses the certificate.
    let (other_ca, _, _) = test_pki(&["files.wharf.test"]);
    let refused = https_get(
        server.addr,
        "files.wharf.test",
        "/",
        roots(&other_ca),
        &[b"h2"],
    )
    .await;
    assert!(refused.is_err());
}

#[tokio::test]
async fn certificate_file_mistakes_name_the_route_and_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, chain, _) = test_pki(&["a.wharf.test"]);
    let (_, _, other_key) = test_pki(&["a.wharf.test"]);
    let cert_path = write(dir.path(), "a.pem", &chain);
    let wrong_key = write(dir.path(), "wrong.key", &other_key);
    let missing = dir
        .path()
        .join("missing.key")
        .to_string_lossy()
        .into_owned();
    let tls = Tls::new(TlsSettings::new(dir.path().join("state"))).expect("tls");
    let with_key = |key: &str| -> RouteTable {
        table(
            &[(
                "web",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.host", "a.wharf.test"),
                    ("wharf.http.tls", "files"),
                    ("wharf.http.tls.cert", &cert_path),
                    ("wharf.http.tls.key", key),
                ],
            )],
            false,
            1,
        )
    };
    let e = tls
        .apply(&with_key(&missing))
        .expect_err("missing key")
        .to_string();
    assert!(
        e.contains("route `web`") && e.contains("missing.key"),
        "{e}"
    );
    let e = tls
        .apply(&with_key(&wrong_key))
        .expect_err("wrong key")
        .to_string();
    assert!(
        e.contains("route `web`") && e.contains("wrong.key") && e.contains("does not match"),
        "{e}"
    );
    let e = tls
        .apply(&with_key("relative.key"))
        .expect_err("relative")
        .to_string();
    assert!(e.contains("absolute"), "{e}");
}

#[tokio::test]
async fn the_local_ca_is_kept_across_restarts_and_its_leaves_are_trusted() {
    let state = tempfile::tempdir().expect("tempdir");
    let web = Backend::start("web-1").await;
    let t = || {
        table(
            &[(
                "web",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.host", "dev.wharf.test, *.dev.wharf.test"),
                    ("wharf.http.tls", "self-signed"),
                ],
            )],
            false,
            1,
        )
    };
    let mut exported = Vec::new();
    for start in 0..2 {
        let tls = Tls::new(TlsSettings::new(state.path())).expect("tls");
        let mut events = tls.events();
        tls.apply(&t()).expect("certificates");
        installed(&mut events, "web").await;
        // What `wharf ca` prints.
        exported.push(Tls::ca_certificate_pem(state.path()).expect("CA"));
        let router = Router::new(t(), RouterConfig::default());
        router.apply(&web.up("web", 80, true));
        let server = start_tls(&router, &tls).await;
        // The CA exported by the first start is trusted by the second's leaves too.
        for host in ["dev.wharf.test", "api.dev.wharf.test"] {
            let a = https_get(server.addr, host, "/", roots(&exported[0]), &[b"h2"])
                .await
                .unwrap_or_else(|e| panic!("start {start}, {host}: {e}"));
            assert_eq!(a.status, StatusCode::OK, "start {start}, {host}");
            assert_eq!(a.alpn.as_deref(), Some(&b"h2"[..]));
        }
    }
    assert_eq!(exported[0], exported[1], "the CA is created once");
    let key = state.path().join("ca/ca.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&key).expect("key").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn certificates_change_without_dropping_open_connections() {
    let state = tempfile::tempdir().expect("tempdir");
    let web = Backend::start("web-1").await;
    let with_host = |host: &str| {
        table(
            &[(
                "web",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.host", host),
                    ("wharf.http.tls", "self-signed"),
                ],
            )],
            false,
            1,
        )
    };
    let tls = Tls::new(TlsSettings::new(state.path())).expect("tls");
    let mut events = tls.events();
    tls.apply(&with_host("one.wharf.test"))
        .expect("certificates");
    installed(&mut events, "web").await;
    // The router's own table routes any host to `web`: what changes here is the certificates.
    let any_host = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    let router = Router::new(any_host, RouterConfig::default());
    router.apply(&web.up("web", 80, true));
    let server = start_tls(&router, &tls).await;
    let ca = Tls::ca_certificate_pem(state.path()).expect("CA");

    // An h2 connection opened before the change.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots(&ca))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let tcp = TcpStream::connect(server.addr).await.expect("connect");
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("one.wharf.test").expect("name"), tcp)
        .await
        .expect("handshake");
    let (mut sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .expect("h2");
    tokio::spawn(conn);

    // one.wharf.test goes away, two.wharf.test comes.
    tls.apply(&with_host("two.wharf.test"))
        .expect("certificates");
    installed(&mut events, "web").await;
    assert!(tls.certificate_for(Some("one.wharf.test")).is_none());
    let a = https_get(server.addr, "two.wharf.test", "/", roots(&ca), &[b"h2"])
        .await
        .expect("the new host");
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        https_get(server.addr, "one.wharf.test", "/", roots(&ca), &[b"h2"])
            .await
            .is_err(),
        "no certificate for the old host on a new connection"
    );
    // The open connection still works.
    let req = Request::builder()
        .uri("https://one.wharf.test/still")
        .body(Empty::<Bytes>::new())
        .expect("request");
    let res = sender.send_request(req).await.expect("the open connection");
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn plain_http_redirects_to_https_for_tls_routes_only() {
    let state = tempfile::tempdir().expect("tempdir");
    let web = Backend::start("web-1").await;
    let docs = Backend::start("docs-1").await;
    let t = || {
        table(
            &[
                (
                    "web",
                    &[
                        ("wharf.http.port", "80"),
                        ("wharf.http.host", "secure.wharf.test"),
                        ("wharf.http.tls", "self-signed"),
                    ][..],
                ),
                (
                    "docs",
                    &[
                        ("wharf.http.port", "81"),
                        ("wharf.http.host", "plain.wharf.test"),
                    ][..],
                ),
            ],
            false,
            1,
        )
    };
    let tls = Tls::new(TlsSettings::new(state.path())).expect("tls");
    tls.apply(&t()).expect("certificates");
    let plain = start_router(t(), RouterConfig::default()).await;
    plain.router.apply(&web.up("web", 80, true));
    plain.router.apply(&docs.up("docs", 81, true));
    let c = Client::new(plain.addr, false);

    // Before HTTPS is on, nothing is redirected.
    let a = c.get("secure.wharf.test", "/x", &[]).await;
    assert_eq!(a.status, StatusCode::OK);

    plain.router.enable_https(&tls, 8443);
    let a = c.get("secure.wharf.test:8080", "/x/y?q=1", &[]).await;
    assert_eq!(a.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        a.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("https://secure.wharf.test:8443/x/y?q=1")
    );
    // A route without TLS is proxied as before.
    let a = c.get("plain.wharf.test", "/", &[]).await;
    assert_eq!((a.status, a.backend()), (StatusCode::OK, "docs-1"));
    assert!(a.body.contains("x-forwarded-proto: http\n"), "{}", a.body);
    // An ACME token the router did not publish is the route's business, not a challenge.
    let a = c
        .get(
            "secure.wharf.test",
            "/.well-known/acme-challenge/unknown",
            &[],
        )
        .await;
    assert_eq!(a.status, StatusCode::PERMANENT_REDIRECT);

    plain.router.enable_https(&tls, 443);
    let a = c.get("secure.wharf.test", "/", &[]).await;
    assert_eq!(
        a.headers.get("location").and_then(|v| v.to_str().ok()),
        Some("https://secure.wharf.test/")
    );
}

#[tokio::test]
async fn conflicting_tls_settings_for_one_host_are_refused() {
    let state = tempfile::tempdir().expect("tempdir");
    let t = table(
        &[
            (
                "web",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.host", "x.wharf.test"),
                    ("wharf.http.tls", "self-signed"),
                ][..],
            ),
            (
                "api",
                &[
                    ("wharf.http.port", "81"),
                    ("wharf.http.host", "x.wharf.test"),
                    ("wharf.http.path", "/api"),
                    ("wharf.http.tls", "acme"),
                ][..],
            ),
        ],
        false,
        1,
    );
    let tls = Tls::new(TlsSettings::new(state.path())).expect("tls");
    let e = tls.apply(&t).expect_err("conflict").to_string();
    assert!(
        e.contains("`api`") && e.contains("`web`") && e.contains("x.wharf.test"),
        "{e}"
    );
    let wildcard = table(
        &[(
            "web",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.host", "*.wharf.test"),
                ("wharf.http.tls", "acme"),
            ][..],
        )],
        false,
        1,
    );
    let e = tls.apply(&wildcard).expect_err("wildcard").to_string();
    assert!(e.contains("DNS-01"), "{e}");
}
