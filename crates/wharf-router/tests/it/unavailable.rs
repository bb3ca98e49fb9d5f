use wharf_router::{InstanceEvent, RouterConfig};

use crate::backend::{Backend, Client, start_router, table};

#[tokio::test]
async fn nothing_healthy_is_a_503_naming_the_route_and_why() {
    let t = table(&[("web", &[("wharf.http.port", "80")])], true, 3);
    let r = start_router(t, RouterConfig::default()).await;
    let c = Client::new(r.addr, false);

    let a = c.get("example.test", "/", &[]).await;
    assert_eq!(a.status.as_u16(), 503);
    assert_eq!(a.body, "web: 0 of 3 instances healthy\n");

    // Running but not (yet) healthy: still no traffic.
    let mut backends = Vec::new();
    for i in 1..=3 {
        let b = Backend::start(&format!("web-{i}")).await;
        r.router.apply(&b.up("web", 80, false));
        backends.push(b);
    }
    let a = c.get("example.test", "/", &[]).await;
    assert_eq!(a.body, "web: 0 of 3 instances healthy\n");

    r.router.apply(&backends[1].up("web", 80, true));
    let a = c.get("example.test", "/", &[]).await;
    assert_eq!((a.status.as_u16(), a.backend()), (200, "web-2"));

    r.router.apply(&InstanceEvent::Draining {
        project: "p".into(),
        service: "web".into(),
        instance: "web-2".into(),
    });
    let a = c.get("example.test", "/", &[]).await;
    assert_eq!(a.status.as_u16(), 503);
    assert_eq!(a.body, "web: 0 of 3 instances healthy, 1 draining\n");
}

#[tokio::test]
async fn a_dead_only_instance_is_a_502() {
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    let r = start_router(t, RouterConfig::default()).await;
    let b = Backend::start("web-1").await;
    r.router.apply(&b.up("web", 80, true));
    b.kill().await;
    let a = Client::new(r.addr, false)
        .get("example.test", "/", &[])
        .await;
    assert_eq!(a.status.as_u16(), 502);
    assert!(a.body.starts_with("web: instance web-1: "), "{}", a.body);
}
