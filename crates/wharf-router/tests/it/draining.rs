//! A steady stream of requests loses none while one of three instances drains and leaves, and
//! while another dies without warning (its connections refused, the requests retried elsewhere).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::watch;
use wharf_router::{InstanceEvent, RouterConfig};

use crate::backend::{Backend, Client, start_router, table};

const WORKERS: usize = 4;
/// Per worker: the test ends long before, this only bounds the loop.
const MAX_REQUESTS: usize = 5_000;
const STEP: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_failed_request_while_draining_and_killing() {
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 3);
    let r = start_router(t, RouterConfig::default()).await;
    let mut backends = Vec::new();
    for i in 1..=3 {
        let b = Backend::start(&format!("web-{i}")).await;
        r.router.apply(&b.up("web", 80, true));
        backends.push(b);
    }
    let web3 = backends.pop().expect("three");
    let web2 = backends.pop().expect("two");

    let (done_tx, done) = watch::channel(0usize);
    let done_tx = Arc::new(done_tx);
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..WORKERS {
        let client = Client::new(r.addr, false);
        let done_tx = done_tx.clone();
        let stop = stop.clone();
        workers.push(tokio::spawn(async move {
            let mut failures = Vec::new();
            let mut served_by = Vec::new();
            for _ in 0..MAX_REQUESTS {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                match client.try_get("example.test", "/", &[]).await {
                    Ok(a) if a.status.is_success() => served_by.push(a.backend().to_string()),
                    Ok(a) => failures.push(format!("{}: {}", a.status, a.body)),
                    Err(e) => failures.push(e),
                }
                done_tx.send_modify(|n| *n += 1);
            }
            (failures, served_by)
        }));
    }
    let mut done = done;
    let mut wait_for = async |n: usize| {
        done.wait_for(|d| *d >= n).await.expect("workers run");
    };

    wait_for(STEP).await;
    // Drain web-3: no new requests; those in flight finish; then it stops and is gone.
    r.router.apply(&InstanceEvent::Draining {
        project: "p".into(),
        service: "web".into(),
        instance: "web-3".into(),
    });
    let drained = async {
        loop {
            let busy = r
                .router
                .pools()
                .instances("p", "web")
                .iter()
                .any(|u| u.instance == "web-3" && u.outstanding() > 0);
            if !busy {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(10), drained)
        .await
        .expect("web-3 drains");
    web3.kill().await;
    r.router.apply(&InstanceEvent::Down {
        project: "p".into(),
        service: "web".into(),
        instance: "web-3".into(),
    });
    wait_for(2 * STEP).await;

    // web-2 dies with no event: its port refuses connections until the supervisor notices.
    web2.kill().await;
    wait_for(4 * STEP).await;
    stop.store(true, Ordering::Relaxed);

    let mut failures = Vec::new();
    let mut served_by = Vec::new();
    for w in workers {
        let (f, s) = w.await.expect("worker");
        failures.extend(f);
        served_by.extend(s);
    }
    assert!(
        failures.is_empty(),
        "{} failed: {failures:?}",
        failures.len()
    );
    assert!(served_by.len() >= 4 * STEP);
    for name in ["web-1", "web-2", "web-3"] {
        assert!(served_by.iter().any(|s| s == name), "{name} served nothing");
    }
    // Once both were gone, web-1 took everything.
    assert!(served_by.iter().rev().take(WORKERS).all(|s| s == "web-1"));
}
