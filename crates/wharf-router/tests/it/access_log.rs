//! The access log: a line per request with what was asked, what was answered and by whom.

use std::io;

use tokio::sync::mpsc;
use wharf_router::{AccessLog, AccessLogFormat, AccessSink, RouterConfig};

use crate::backend::{Backend, Client, start_router, table};

/// Lines go to the test, which waits for each.
struct ToTest(mpsc::UnboundedSender<String>);

impl AccessSink for ToTest {
    fn write_line(&mut self, line: &str) -> io::Result<()> {
        self.0
            .send(line.to_string())
            .map_err(|_| io::Error::other("the test stopped listening"))
    }
}

#[tokio::test]
async fn plain_lines_name_the_route_instance_and_request_id() {
    let web = Backend::start("web-1").await;
    let (tx, mut lines) = mpsc::unbounded_channel();
    let config = RouterConfig {
        access_log: Some(AccessLog::new(AccessLogFormat::Plain, ToTest(tx))),
        ..RouterConfig::default()
    };
    let t = table(
        &[(
            "web",
            &[("wharf.http.port", "80"), ("wharf.http.host", "web.test")],
        )],
        false,
        1,
    );
    let r = start_router(t, config).await;
    r.router.apply(&web.up("web", 80, true));
    let c = Client::new(r.addr, false);
    let a = c.get("web.test:8080", "/a/b?c=d", &[]).await;
    let id = a.headers["x-request-id"].to_str().expect("id").to_string();
    let line = lines.recv().await.expect("a line");
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 11, "{line}");
    assert!(
        fields[0].ends_with('Z') && fields[0].contains('T'),
        "{line}"
    );
    assert!(fields[1].starts_with("127.0.0.1:"), "{line}");
    assert_eq!(
        &fields[2..6],
        ["GET", "web.test:8080", "/a/b?c=d", "200"],
        "{line}"
    );
    assert_eq!(fields[6], a.body.len().to_string(), "{line}");
    assert!(fields[7].parse::<f64>().is_ok(), "{line}");
    assert_eq!(&fields[8..], ["web", "web-1", id.as_str()], "{line}");

    // No route: no route nor instance, `-` for each.
    c.get("other.test", "/x", &[]).await;
    let line = lines.recv().await.expect("a line");
    assert!(line.contains(" GET other.test /x 404 "), "{line}");
    assert!(line.ends_with(&format!(
        " - - {}",
        line.rsplit(' ').next().unwrap_or_default()
    )));
}

#[tokio::test]
async fn json_lines_parse_and_carry_every_field() {
    let web = Backend::start("web-1").await;
    let (tx, mut lines) = mpsc::unbounded_channel();
    let config = RouterConfig {
        access_log: Some(AccessLog::new(AccessLogFormat::Json, ToTest(tx))),
        ..RouterConfig::default()
    };
    let t = table(&[("web", &[("wharf.http.port", "80")])], false, 1);
    let r = start_router(t, config).await;
    r.router.apply(&web.up("web", 80, true));
    let a = Client::new(r.addr, false).get("web.test", "/j", &[]).await;
    let line = lines.recv().await.expect("a line");
    let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(v["method"], "GET");
    assert_eq!(v["host"], "web.test");
    assert_eq!(v["path"], "/j");
    assert_eq!(v["status"], 200);
    assert_eq!(v["bytes"], a.body.len());
    assert_eq!(v["route"], "web");
    assert_eq!(v["instance"], "web-1");
    assert_eq!(
        v["request_id"],
        a.headers["x-request-id"].to_str().expect("id")
    );
    assert!(v["duration_seconds"].as_f64().is_some_and(|d| d >= 0.0));
    assert!(
        v["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("127.0.0.1:"))
    );
}
