use wharf_router::{Cidr, RouterConfig};

use crate::backend::{Backend, Client, start_router, table};

const SPOOFED: &[(&str, &str)] = &[
    ("x-forwarded-for", "6.6.6.6"),
    ("x-forwarded-proto", "https"),
    ("x-forwarded-host", "bank.test"),
    ("forwarded", "for=6.6.6.6;proto=https"),
    ("x-request-id", "chosen-by-client"),
];

#[tokio::test]
async fn forwarded_headers_are_not_spoofable() {
    let b = Backend::start("web-1").await;
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&b.up("web", 80, true));
    let a = Client::new(r.addr, false)
        .get("example.test", "/", SPOOFED)
        .await;
    assert_eq!(a.status.as_u16(), 200);
    assert_eq!(a.seen("x-forwarded-for"), ["127.0.0.1"]);
    assert_eq!(a.seen("x-forwarded-proto"), ["http"]);
    assert_eq!(a.seen("x-forwarded-host"), ["example.test"]);
    assert_eq!(
        a.seen("forwarded"),
        ["for=127.0.0.1;host=\"example.test\";proto=http"]
    );
    let id = a.seen("x-request-id");
    assert_eq!(id.len(), 1);
    assert_ne!(id[0], "chosen-by-client");
    assert_eq!(a.headers["x-request-id"], id[0].as_str());

    // A host that would break out of `Forwarded`'s quotes is refused.
    let a = Client::new(r.addr, false)
        .get("a\";for=6.6.6.6", "/", &[])
        .await;
    assert_eq!(a.status.as_u16(), 400);
}

#[tokio::test]
async fn a_trusted_proxy_is_believed_and_extended() {
    let b = Backend::start("web-1").await;
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    let config = RouterConfig {
        trusted_proxies: vec!["127.0.0.0/8".parse::<Cidr>().expect("cidr")],
        ..RouterConfig::default()
    };
    let r = start_router(t, config).await;
    r.router.apply(&b.up("web", 80, true));
    let a = Client::new(r.addr, false)
        .get("example.test", "/", SPOOFED)
        .await;
    assert_eq!(a.seen("x-forwarded-for"), ["6.6.6.6, 127.0.0.1"]);
    assert_eq!(a.seen("x-forwarded-proto"), ["https"]);
    assert_eq!(a.seen("x-forwarded-host"), ["bank.test"]);
    assert_eq!(
        a.seen("forwarded"),
        ["for=6.6.6.6;proto=https, for=127.0.0.1;host=\"example.test\";proto=http"]
    );
    assert_eq!(a.seen("x-request-id"), ["chosen-by-client"]);
}
