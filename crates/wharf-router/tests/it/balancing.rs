//! Load balancing: least outstanding requests (the default) and round robin, against backends
//! that hold a request until told to answer.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use wharf_router::{InstanceEvent, RouterConfig};

use crate::backend::{Client, start_router, table};

/// A backend that answers its name at once, except on `/hold`: then it reports the arrival and
/// answers when `release` is notified.
struct Gated {
    name: &'static str,
    addr: SocketAddr,
    _task: JoinHandle<()>,
}

async fn gated(
    name: &'static str,
    arrived: mpsc::UnboundedSender<&'static str>,
    release: Arc<Notify>,
) -> Gated {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        let mut connections = JoinSet::new();
        while let Ok((stream, _)) = listener.accept().await {
            let arrived = arrived.clone();
            let release = release.clone();
            connections.spawn(async move {
                let service = hyper::service::service_fn(move |req: Request<_>| {
                    let arrived = arrived.clone();
                    let release = release.clone();
                    async move {
                        if req.uri().path() == "/hold" {
                            let released = release.notified();
                            let _ = arrived.send(name);
                            released.await;
                        }
                        Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(format!(
                            "{name}\n"
                        )))))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    Gated {
        name,
        addr,
        _task: task,
    }
}

fn up(b: &Gated) -> InstanceEvent {
    InstanceEvent::Up {
        project: "p".into(),
        service: "web".into(),
        instance: b.name.into(),
        addr: b.addr.ip(),
        addresses: Vec::new(),
        ports: BTreeMap::from([(80, b.addr.port())]),
        healthy: true,
    }
}

/// Holds one request on whichever instance gets it, then sends 10 more one after the other:
/// returns the instance holding the request and who answered the 10.
async fn hold_one_then_ten(balance: &str) -> (&'static str, Vec<String>) {
    let (arrived_tx, mut arrived) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let a = gated("web-1", arrived_tx.clone(), release.clone()).await;
    let b = gated("web-2", arrived_tx, release.clone()).await;
    let t = table(
        &[(
            "web",
            &[("wharf.http.port", "80"), ("wharf.http.balance", balance)],
        )],
        false,
        2,
    );
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&up(&a));
    r.router.apply(&up(&b));
    let c = Client::new(r.addr, false);
    let held = tokio::spawn({
        let c = c.clone();
        async move { c.get("x.test", "/hold", &[]).await }
    });
    let holder = arrived.recv().await.expect("the held request arrives");
    let mut answered = Vec::new();
    for _ in 0..10 {
        answered.push(c.get("x.test", "/", &[]).await.backend().to_string());
    }
    release.notify_waiters();
    assert_eq!(held.await.expect("held request").status.as_u16(), 200);
    (holder, answered)
}

#[tokio::test]
async fn least_outstanding_avoids_the_busy_instance() {
    let (holder, answered) = hold_one_then_ten("least_outstanding").await;
    let other = if holder == "web-1" { "web-2" } else { "web-1" };
    assert!(
        answered.iter().all(|b| b == other),
        "{holder} busy: {answered:?}"
    );
}

#[tokio::test]
async fn round_robin_takes_turns_regardless() {
    let (holder, answered) = hold_one_then_ten("round_robin").await;
    let on_holder = answered.iter().filter(|b| *b == holder).count();
    assert_eq!(on_holder, 5, "{holder} busy: {answered:?}");
}
