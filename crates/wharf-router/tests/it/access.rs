use wharf_router::{InstanceEvent, RouterConfig};

use crate::backend::{Backend, Client, start_router, table};

#[tokio::test]
async fn allow_from_cidrs_refuses_others_and_counts() {
    let b = Backend::start("admin-1").await;
    let t = table(
        &[
            (
                "open",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.path", "/open"),
                    ("wharf.http.allow_from", "10.0.0.0/8, 127.0.0.0/8"),
                ],
            ),
            (
                "closed",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.path", "/closed"),
                    ("wharf.http.allow_from", "10.0.0.0/8, ::1"),
                ],
            ),
        ],
        false,
        1,
    );
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&b.up("open", 80, true));
    r.router.apply(&b.up("closed", 80, true));
    let c = Client::new(r.addr, false);
    assert_eq!(c.get("x.test", "/open", &[]).await.status.as_u16(), 200);
    let a = c.get("x.test", "/closed", &[]).await;
    assert_eq!(a.status.as_u16(), 403);
    assert_eq!(
        a.body,
        "closed: 127.0.0.1 is not allowed to use this route\n"
    );
    // A spoofed X-Forwarded-For from an untrusted peer changes nothing.
    let a = c
        .get("x.test", "/closed", &[("x-forwarded-for", "10.1.1.1")])
        .await;
    assert_eq!(a.status.as_u16(), 403);
    assert_eq!((r.router.denied("closed"), r.router.denied("open")), (2, 0));
}

#[tokio::test]
async fn allow_from_service_needs_isolated_addresses() {
    let b = Backend::start("manager-1").await;
    let t = table(
        &[(
            "manager",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.allow_from", "service:shell"),
            ],
        )],
        false,
        1,
    );
    // The calling "shell" instance is this test, on 127.0.0.1.
    let shell = InstanceEvent::Up {
        project: "p".into(),
        service: "shell".into(),
        instance: "shell-1".into(),
        addr: [127, 0, 0, 1].into(),
        addresses: Vec::new(),
        ports: Default::default(),
        healthy: true,
    };
    for (isolated, status) in [(false, 403), (true, 200)] {
        let config = RouterConfig {
            service_identities: isolated,
            ..RouterConfig::default()
        };
        let r = start_router(t.clone(), config).await;
        r.router.apply(&b.up("manager", 80, true));
        r.router.apply(&shell);
        let a = Client::new(r.addr, false).get("x.test", "/", &[]).await;
        assert_eq!(a.status.as_u16(), status, "isolated: {isolated}");
    }
}

#[tokio::test]
async fn basic_auth_asks_for_a_password() {
    use base64::Engine;

    let b = Backend::start("admin-1").await;
    // As `htpasswd -nB admin` writes it (a low cost keeps the test fast).
    let entry = format!(
        "admin:{}",
        bcrypt::hash("s3cret", 4)
            .expect("hash")
            .replacen("$2b$", "$2y$", 1)
    );
    let labels = [
        ("wharf.http.port", "80"),
        ("wharf.http.basic_auth", entry.as_str()),
    ];
    let t = table(&[("admin", &labels)], false, 1);
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&b.up("admin", 80, true));
    let c = Client::new(r.addr, false);
    let basic = |cred: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(cred)
        )
    };

    let a = c.get("x.test", "/", &[]).await;
    assert_eq!(a.status.as_u16(), 401);
    assert_eq!(
        a.headers["www-authenticate"],
        "Basic realm=\"admin\", charset=\"UTF-8\""
    );
    let wrong = basic("admin:guess");
    let a = c.get("x.test", "/", &[("authorization", &wrong)]).await;
    assert_eq!(a.status.as_u16(), 401);
    let right = basic("admin:s3cret");
    let a = c.get("x.test", "/", &[("authorization", &right)]).await;
    assert_eq!((a.status.as_u16(), a.backend()), (200, "admin-1"));
    assert_eq!(r.router.denied("admin"), 2);
}
