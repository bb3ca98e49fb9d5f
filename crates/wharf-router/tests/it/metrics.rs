//! Prometheus counters of real requests, checked in the exposition text, which a Prometheus
//! parser must accept.

use std::io::Write;
use std::process::{Command, Stdio};

use tokio::net::TcpListener;
use wharf_router::{InstanceEvent, RouterConfig};

use crate::backend::{Backend, Client, start_router, table, websocket_echo};

/// Parses the text with the Prometheus project's own Python parser (`prometheus_client`, from
/// PyPI) and returns `name{labels} value` per sample, as it understood them.
fn parse_with_prometheus_client(text: &str) -> String {
    const SCRIPT: &str = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
        print(f"{family.type} {s.name}{{{labels}}} {s.value:g}")
"#;
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs (apt-get install -y python3)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write the metrics");
    let out = child.wait_with_output().expect("python3 ends");
    assert!(
        out.status.success(),
        "prometheus_client refused the text (needs `pip install prometheus-client`): {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test]
async fn requests_are_counted_by_route_status_and_reason_and_prometheus_parses_them() {
    let web = Backend::start("web-1").await;
    let (echo, _echo_task) = websocket_echo().await;
    let gone = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr")
    };
    let t = table(
        &[
            (
                "web",
                &[("wharf.http.port", "80"), ("wharf.http.host", "web.test")],
            ),
            (
                "admin",
                &[
                    ("wharf.http.port", "80"),
                    ("wharf.http.host", "admin.test"),
                    ("wharf.http.allow_from", "10.0.0.0/8"),
                ],
            ),
            (
                "gone",
                &[("wharf.http.port", "80"), ("wharf.http.host", "gone.test")],
            ),
            (
                "ws",
                &[("wharf.http.port", "80"), ("wharf.http.path", "/ws")],
            ),
        ],
        false,
        1,
    );
    let r = start_router(t, RouterConfig::default()).await;
    r.router.apply(&web.up("web", 80, true));
    let at = |service: &str, instance: &str, addr: std::net::SocketAddr| InstanceEvent::Up {
        project: "p".into(),
        service: service.into(),
        instance: instance.into(),
        addr: addr.ip(),
        addresses: Vec::new(),
        ports: [(80, addr.port())].into(),
        healthy: true,
    };
    r.router.apply(&at("gone", "gone-1", gone));
    r.router.apply(&at("ws", "ws-1", echo));
    let c = Client::new(r.addr, false);
    for _ in 0..3 {
        assert_eq!(c.get("web.test", "/", &[]).await.status.as_u16(), 200);
    }
    assert_eq!(c.get("admin.test", "/", &[]).await.status.as_u16(), 403);
    assert_eq!(c.get("nobody.test", "/", &[]).await.status.as_u16(), 404);
    assert_eq!(c.get("gone.test", "/", &[]).await.status.as_u16(), 502);
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", r.addr))
        .await
        .expect("a WebSocket through the router");

    let text = r.router.metrics_text();
    let parsed = parse_with_prometheus_client(&text);
    for sample in [
        r#"counter wharf_router_requests_total{code="200",project="p",route="web"} 3"#,
        r#"counter wharf_router_requests_total{code="403",project="p",route="admin"} 1"#,
        r#"counter wharf_router_requests_total{code="404",project="",route=""} 1"#,
        r#"counter wharf_router_requests_total{code="502",project="p",route="gone"} 1"#,
        r#"histogram wharf_router_request_duration_seconds_count{project="p",route="web"} 3"#,
        r#"histogram wharf_router_request_duration_seconds_bucket{le="+Inf",project="p",route="web"} 3"#,
        r#"counter wharf_router_denied_total{project="p",reason="allow_from",route="admin"} 1"#,
        r#"counter wharf_router_denied_total{project="p",reason="allow_from",route="web"} 0"#,
        r#"counter wharf_router_upstream_errors_total{kind="connect",project="p",route="gone"} 1"#,
        r#"gauge wharf_router_websockets_active{project="p",route="ws"} 1"#,
        r#"counter wharf_router_websockets_total{project="p",route="ws"} 1"#,
    ] {
        assert!(
            parsed.lines().any(|l| l == sample),
            "{sample}\nnot in\n{parsed}"
        );
    }
    drop(ws);
}

#[tokio::test]
async fn several_routers_render_as_one_exposition_labelled_by_address() {
    let web = Backend::start("web-1").await;
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    let a = start_router(t.clone(), RouterConfig::default()).await;
    let b = start_router(t, RouterConfig::default()).await;
    for r in [&a, &b] {
        r.router.apply(&web.up("web", 80, true));
    }
    Client::new(a.addr, false).get("x.test", "/", &[]).await;
    for _ in 0..2 {
        Client::new(b.addr, false).get("x.test", "/", &[]).await;
    }
    let (la, lb) = (a.addr.to_string(), b.addr.to_string());
    let text = wharf_router::metrics::Metrics::render_all(&[
        (Some(&la), a.router.metrics()),
        (Some(&lb), b.router.metrics()),
    ]);
    // Each family once, as the format requires.
    assert_eq!(
        text.matches("# TYPE wharf_router_requests_total ").count(),
        1,
        "{text}"
    );
    let parsed = parse_with_prometheus_client(&text);
    for sample in [
        format!(
            r#"counter wharf_router_requests_total{{code="200",listen="{la}",project="p",route="web"}} 1"#
        ),
        format!(
            r#"counter wharf_router_requests_total{{code="200",listen="{lb}",project="p",route="web"}} 2"#
        ),
    ] {
        assert!(
            parsed.lines().any(|l| l == sample),
            "{sample}\nnot in\n{parsed}"
        );
    }
}
