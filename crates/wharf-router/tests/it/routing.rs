use wharf_router::RouterConfig;

use crate::backend::{Backend, Client, start_router, table};

#[tokio::test]
async fn host_and_path_pick_the_most_specific_route() {
    let web = Backend::start("web-1").await;
    let api = Backend::start("api-1").await;
    let shop = Backend::start("shop-1").await;
    let tenant = Backend::start("tenant-1").await;
    let t = table(
        &[
            ("web", &[("wharf.http.port", "80")]),
            (
                "api",
                &[
                    ("wharf.http.port", "81"),
                    ("wharf.http.path", "/api"),
                    ("wharf.http.strip_path", "true"),
                ],
            ),
            (
                "shop",
                &[
                    ("wharf.http.port", "82"),
                    ("wharf.http.host", "shop.example.test"),
                ],
            ),
            (
                "tenant",
                &[
                    ("wharf.http.port", "83"),
                    ("wharf.http.host", "*.example.test"),
                ],
            ),
        ],
        false,
        1,
    );
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&web.up("web", 80, true));
    r.router.apply(&api.up("api", 81, true));
    r.router.apply(&shop.up("shop", 82, true));
    r.router.apply(&tenant.up("tenant", 83, true));
    let c = Client::new(r.addr, false);

    let a = c.get("other.test", "/", &[]).await;
    assert_eq!((a.status.as_u16(), a.backend()), (200, "web-1"));
    let a = c.get("other.test", "/api/users?page=2", &[]).await;
    assert_eq!(a.backend(), "api-1");
    // strip_path: the backend sees the path under the prefix, with the query.
    assert_eq!(a.body.lines().nth(1), Some("/users?page=2"));
    let a = c.get("other.test", "/apiary", &[]).await;
    assert_eq!(a.backend(), "web-1");
    let a = c.get("SHOP.example.test:8080", "/api", &[]).await;
    assert_eq!(a.backend(), "shop-1");
    // The backend sees the host the client asked for.
    assert_eq!(a.seen("host"), ["SHOP.example.test:8080"]);
    let a = c.get("eu.example.test", "/", &[]).await;
    assert_eq!(a.backend(), "tenant-1");

    // h2c from the client, HTTP/1.1 to the backend.
    let h2 = Client::new(r.addr, true);
    let a = h2.get("ignored", "/api/x", &[]).await;
    assert_eq!((a.status.as_u16(), a.backend()), (200, "api-1"));
}

#[tokio::test]
async fn no_route_is_a_404_that_says_so() {
    let t = table(
        &[(
            "web",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.host", "example.test"),
            ],
        )],
        false,
        1,
    );
    let r = start_router(t, RouterConfig::default()).await;
    let a = Client::new(r.addr, false).get("nope.test", "/x", &[]).await;
    assert_eq!(a.status.as_u16(), 404);
    assert_eq!(a.body, "no route for host nope.test path /x\n");
    assert!(a.headers.contains_key("x-request-id"));
}
