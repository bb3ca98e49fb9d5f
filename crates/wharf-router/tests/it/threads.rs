//! `Router::serve_on_threads`: the router on threads of its own, one runtime each.

use std::time::Duration;

use wharf_router::{Router, RouterConfig};

use crate::backend::{Backend, Client, table};

#[tokio::test]
async fn threads_serve_share_the_table_and_end_after_their_connections() {
    let b = Backend::start("web-1").await;
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    let router = Router::new(t, RouterConfig::default());
    router.apply(&b.up("web", 80, true));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::watch::channel(());
    let threads = router
        .serve_on_threads(listener, 2, stopped)
        .expect("threads start");
    assert_eq!(threads.len(), 2);

    // Several connections, so that both threads are likely to serve some; all see one table and
    // one set of counters.
    let clients: Vec<Client> = (0..4).map(|_| Client::new(addr, false)).collect();
    for c in &clients {
        for _ in 0..5 {
            let a = c.get("x.test", "/", &[]).await;
            assert_eq!((a.status.as_u16(), a.backend()), (200, "web-1"));
        }
    }
    // A request is counted once its answer is written, which the client may read first: the
    // last count can come a moment after the last answer.
    let counters = router
        .metrics()
        .route("p", "web")
        .expect("the route's counters");
    let counted = tokio::time::timeout(Duration::from_secs(60), async {
        while counters.responses(200) < 20 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    assert!(counted.is_ok(), "{} of 20 counted", counters.responses(200));
    assert_eq!(counters.responses(200), 20);

    // Stopped: no new connection is accepted once the open ones are gone, and the threads end.
    drop(clients);
    drop(stop);
    tokio::task::spawn_blocking(move || {
        for t in threads {
            t.join().expect("the thread ends without a panic");
        }
    })
    .await
    .expect("joined");
    assert!(std::net::TcpStream::connect(addr).is_err());
}
