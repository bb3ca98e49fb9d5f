use std::collections::BTreeMap;

use super::*;

/// A table of `(service, labels)`.
pub(crate) fn table(services: &[(&str, &[(&str, &str)])]) -> Result<RouteTable, RouterError> {
    let mut entries = Vec::new();
    for (service, labels) in services {
        let labels: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for route in route::parse(&labels).expect("valid labels") {
            entries.push(RouteEntry {
                id: route.id(service),
                project: "p".into(),
                service: service.to_string(),
                route,
                has_healthcheck: false,
                replicas: 1,
            });
        }
    }
    RouteTable::new(entries)
}

fn chosen(t: &RouteTable, host: &str, path: &str) -> Option<String> {
    t.lookup(host, path).map(|e| e.id.clone())
}

#[test]
fn most_specific_route_wins() {
    let t = table(&[
        ("any", &[("wharf.http.port", "80")]),
        (
            "api",
            &[("wharf.http.port", "80"), ("wharf.http.path", "/api")],
        ),
        (
            "apiv2",
            &[("wharf.http.port", "80"), ("wharf.http.path", "/api/v2")],
        ),
        (
            "wild",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.host", "*.example.org"),
            ],
        ),
        (
            "deep",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.host", "*.eu.example.org"),
            ],
        ),
        (
            "exact",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.host", "shop.example.org"),
                ("wharf.http.admin.port", "81"),
                ("wharf.http.admin.host", "shop.example.org"),
                ("wharf.http.admin.path", "/admin/"),
            ],
        ),
    ])
    .expect("no tie");
    assert_eq!(chosen(&t, "other.net", "/").as_deref(), Some("any"));
    assert_eq!(chosen(&t, "other.net", "/api").as_deref(), Some("api"));
    assert_eq!(chosen(&t, "other.net", "/api/v1").as_deref(), Some("api"));
    assert_eq!(chosen(&t, "other.net", "/apix").as_deref(), Some("any"));
    assert_eq!(
        chosen(&t, "other.net", "/api/v2/x").as_deref(),
        Some("apiv2")
    );
    // Host first: a wildcard host beats "any host" with a longer path.
    assert_eq!(chosen(&t, "a.example.org", "/api").as_deref(), Some("wild"));
    assert_eq!(chosen(&t, "a.eu.example.org", "/").as_deref(), Some("deep"));
    assert_eq!(chosen(&t, "example.org", "/").as_deref(), Some("any"));
    assert_eq!(
        chosen(&t, "Shop.Example.org:8080", "/").as_deref(),
        Some("exact")
    );
    assert_eq!(
        chosen(&t, "shop.example.org", "/admin/users").as_deref(),
        Some("exact.admin")
    );
}

#[test]
fn no_route_without_a_match() {
    let t = table(&[(
        "web",
        &[
            ("wharf.http.port", "80"),
            ("wharf.http.host", "example.org"),
        ],
    )])
    .expect("no tie");
    assert_eq!(chosen(&t, "example.net", "/"), None);
    let e = t.explain("http://example.net/x");
    assert_eq!(e.chosen, None);
    assert_eq!(
        e.to_string(),
        "host example.net path /x: no route matches\n  web (example.org /): host example.net is not example.org\n"
    );
}

#[test]
fn ties_are_errors_naming_both() {
    let e = table(&[
        (
            "web",
            &[
                ("wharf.http.port", "80"),
                ("wharf.http.host", "a.org, b.org"),
            ],
        ),
        (
            "blog",
            &[("wharf.http.port", "80"), ("wharf.http.host", "b.org")],
        ),
    ])
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "routes `blog` and `web` both match host b.org and path /: give one of them another host or path"
    );
}

#[test]
fn explain_says_why() {
    let t = table(&[
        ("web", &[("wharf.http.port", "80")]),
        (
            "api",
            &[("wharf.http.port", "80"), ("wharf.http.path", "/api")],
        ),
    ])
    .expect("no tie");
    assert_eq!(
        t.explain("example.org/api/x?q=1").to_string(),
        "host example.org path /api/x: route `api`\n  \
         api (any host /api): matches (any host, path prefix /api): the most specific\n  \
         web (any host /): matches (any host, path prefix /) but a more specific route wins\n"
    );
}

#[test]
fn strip_path() {
    let t = table(&[(
        "api",
        &[
            ("wharf.http.port", "80"),
            ("wharf.http.path", "/api/"),
            ("wharf.http.strip_path", "true"),
        ],
    )])
    .expect("no tie");
    let e = t.lookup("x", "/api/v1").expect("a route");
    assert_eq!(e.upstream_path("/api/v1"), "/v1");
    assert_eq!(e.upstream_path("/api/"), "/");
}

#[test]
fn from_project_reads_labels_and_health() {
    let yaml = "services:\n  web:\n    image: x\n    deploy: { replicas: 3 }\n    labels:\n      wharf.http.port: \"8000\"\n    healthcheck:\n      test: [\"CMD\", \"true\"]\n  bad:\n    image: x\n    labels:\n      wharf.http.host: example.org\n";
    let loaded = wharf_model::load(&wharf_model::LoadOptions {
        files: vec!["-".into()],
        project_name: Some("t".into()),
        working_dir: std::env::temp_dir(),
        stdin: Some(yaml.into()),
        ..Default::default()
    })
    .expect("loads");
    let e = RouteTable::from_project(&loaded.project).unwrap_err();
    assert_eq!(
        e.to_string(),
        "service `bad`: label `wharf.http.port`: a route needs the port its service listens on: add this label"
    );
    let mut project = loaded.project;
    project.services.remove("bad");
    let t = RouteTable::from_project(&project).expect("valid");
    let web = t.lookup("x", "/").expect("a route");
    assert!(web.has_healthcheck);
    assert_eq!(web.replicas, 3);
}
