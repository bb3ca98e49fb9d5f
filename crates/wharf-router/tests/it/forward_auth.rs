//! `wharf.http.forward_auth`: a real auth service decides, the router obeys.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};
use wharf_router::RouterConfig;

use crate::backend::{Backend, Client, start_router, table};

/// An auth service: `Bearer good` is alice (200 with `X-Auth-User` and `Remote-User`), `Bearer
/// banned` is refused (403), anyone else must log in (401 with a challenge). Every answer's body
/// lists the `x-forwarded-*` and `cookie` headers it was asked with.
async fn auth_service() -> (SocketAddr, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            connections.spawn(async move {
                let service = hyper::service::service_fn(|req: Request<_>| async move {
                    let mut seen = String::new();
                    for (k, v) in req.headers() {
                        if k.as_str().starts_with("x-forwarded-") || k == "cookie" {
                            seen.push_str(&format!("{k}: {}\n", v.to_str().unwrap_or("?")));
                        }
                    }
                    let who = req
                        .headers()
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("");
                    let answer = match who {
                        "Bearer good" => Response::builder()
                            .status(StatusCode::OK)
                            .header("x-auth-user", "alice")
                            .header("remote-user", "alice")
                            .header("x-other", "not passed on")
                            .body(Full::new(Bytes::new())),
                        "Bearer banned" => Response::builder()
                            .status(StatusCode::FORBIDDEN)
                            .body(Full::new(Bytes::from(format!("banned\n{seen}")))),
                        _ => Response::builder()
                            .status(StatusCode::UNAUTHORIZED)
                            .header("www-authenticate", "Bearer realm=\"test\"")
                            .body(Full::new(Bytes::from(format!("who are you?\n{seen}")))),
                    };
                    Ok::<_, Infallible>(answer.expect("response"))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn the_auth_service_decides_and_its_answers_reach_the_client() {
    let app = Backend::start("app-1").await;
    let (auth, _auth_task) = auth_service().await;
    let url = format!("http://{auth}/check");
    let t = table(
        &[(
            "app",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.host", "app.test"),
                ("wharf.http.forward_auth", url.as_str()),
            ],
        )],
        false,
        1,
    );
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&app.up("app", 80, true));
    let c = Client::new(r.addr, false);

    // No credentials: the auth service's 401, its challenge and body, as they are.
    let a = c
        .get("app.test", "/private/x?y=1", &[("cookie", "session=s1")])
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.headers["www-authenticate"], "Bearer realm=\"test\"");
    assert!(a.body.starts_with("who are you?\n"), "{}", a.body);
    // What the auth service was told about the request.
    for line in [
        "x-forwarded-method: GET",
        "x-forwarded-proto: http",
        "x-forwarded-host: app.test",
        "x-forwarded-uri: /private/x?y=1",
        "x-forwarded-for: 127.0.0.1",
        "cookie: session=s1",
    ] {
        assert!(a.body.lines().any(|l| l == line), "{line} in {}", a.body);
    }

    // Refused: 403 with the auth service's body.
    let a = c
        .get("app.test", "/", &[("authorization", "Bearer banned")])
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert!(a.body.starts_with("banned\n"), "{}", a.body);

    // Allowed: the upstream gets the user from the auth service, not the one the client claims.
    let a = c
        .get(
            "app.test",
            "/",
            &[
                ("authorization", "Bearer good"),
                ("x-auth-user", "mallory"),
                ("remote-user", "mallory"),
            ],
        )
        .await;
    assert_eq!((a.status, a.backend()), (StatusCode::OK, "app-1"));
    assert_eq!(a.seen("x-auth-user"), ["alice"]);
    assert_eq!(a.seen("remote-user"), ["alice"]);
    assert!(a.seen("x-other").is_empty());

    assert_eq!(r.router.denied("app"), 2);
}

#[tokio::test]
async fn an_unreachable_auth_service_is_a_503_that_says_so() {
    let app = Backend::start("app-1").await;
    // A port that nothing listens on any more.
    let closed = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let url = format!("http://{closed}/check");
    let t = table(
        &[(
            "app",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.forward_auth", url.as_str()),
            ],
        )],
        false,
        1,
    );
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&app.up("app", 80, true));
    let a = Client::new(r.addr, false).get("x.test", "/", &[]).await;
    assert_eq!(a.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        a.body
            .starts_with(&format!("app: forward_auth {url} cannot be reached")),
        "{}",
        a.body
    );
    assert_eq!(r.router.denied("app"), 1);
    assert!(
        r.router
            .metrics_text()
            .contains("reason=\"forward_auth_unreachable\"} 1\n")
    );
}
