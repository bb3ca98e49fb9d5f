//! Each endpoint from the client through the server to the `Control` and back.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use wharf_api::message::{ErrorKind, EventKind, Status, UpRequest};
use wharf_api::{ApiError, Client};

use crate::fake::{FakeControl, entry, serve};

fn setup() -> (tempfile::TempDir, Arc<FakeControl>, Client) {
    let dir = tempfile::tempdir().unwrap();
    let control = Arc::new(FakeControl::default());
    let client = serve(dir.path(), Arc::clone(&control));
    (dir, control, client)
}

fn up_request() -> UpRequest {
    UpRequest {
        yaml: "name: p\n".into(),
        services: Some(vec!["web".into()]),
        wait: true,
        ..UpRequest::default()
    }
}

#[tokio::test]
async fn requests_and_answers_cross_the_socket() {
    let (_dir, control, client) = setup();
    assert_eq!(client.info().await.unwrap().pid, 7);
    assert_eq!(client.projects().await.unwrap()[0].instances, 2);

    let up = client.up("p", &up_request()).await.unwrap();
    assert_eq!(up.plan, "p: start web-1\n");
    assert_eq!(up.warnings, ["w"]);

    let ps = client.ps("p", false).await.unwrap();
    assert_eq!(ps.len(), 1);
    let ps = client.ps("p", true).await.unwrap();
    assert_eq!(ps[1].status, Status::Exited { code: 1 });

    client.start("p", None).await.unwrap();
    client.stop("p", Some(vec!["web".into()])).await.unwrap();
    client.restart("p", None).await.unwrap();
    client.kill("p", None).await.unwrap();
    client
        .scale("p", BTreeMap::from([("web".into(), 3)]))
        .await
        .unwrap();
    let ctx = client.exec_context("p", "web", 2).await.unwrap();
    assert_eq!(ctx.instance, "p-web-2");
    assert_eq!(ctx.environment["GREETING"], "hello");
    let down = client.down("p", true).await.unwrap();
    assert_eq!(down.removed_volumes.len(), 1);

    assert_eq!(
        control.calls(),
        [
            "up p Some([\"web\"]) wait=true",
            "start p None",
            "stop p Some([\"web\"])",
            "restart p None",
            "kill p None",
            "scale p {\"web\": 3}",
            "down p volumes=true",
        ]
    );
}

#[tokio::test]
async fn errors_keep_their_kind_and_message() {
    let (_dir, _control, client) = setup();
    let e = client.ps("nope", false).await.unwrap_err();
    assert_eq!(e, ApiError::not_found("no project `nope` here"));
    let empty = UpRequest::default();
    let e = client.up("p", &empty).await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::BadRequest);
    assert_eq!(e.message, "empty project");
}

#[tokio::test]
async fn nothing_listening_is_a_connect_error() {
    let dir = tempfile::tempdir().unwrap();
    let client = Client::new(dir.path().join("wharf.sock"));
    let e = client.info().await.unwrap_err();
    assert_eq!(e.kind, ErrorKind::Connect);
    assert!(e.message.contains("wharf.sock"), "{e}");
}

#[tokio::test]
async fn logs_stream_kept_lines_then_followed_ones() {
    let (_dir, control, client) = setup();
    let query = wharf_api::message::LogsQuery {
        services: Some("web,db".into()),
        tail: Some(5),
        follow: true,
    };
    let mut stream = client.logs("p", &query).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().line, "one");
    assert_eq!(stream.next().await.unwrap().unwrap().line, "two");
    let follower = control.follow.lock().unwrap().take().unwrap();
    follower.send(entry("three")).await.unwrap();
    assert_eq!(stream.next().await.unwrap().unwrap().line, "three");
    drop(follower);
    assert_eq!(stream.next().await.unwrap(), None);
    assert_eq!(control.calls(), ["logs p [\"web\", \"db\"] Some(5) true"]);

    // Without follow, the stream ends after the kept lines.
    let query = wharf_api::message::LogsQuery::default();
    let mut stream = client.logs("p", &query).await.unwrap();
    assert!(stream.next().await.unwrap().is_some());
    assert!(stream.next().await.unwrap().is_some());
    assert_eq!(stream.next().await.unwrap(), None);
}

#[tokio::test]
async fn events_stream() {
    let (_dir, control, client) = setup();
    let mut events = client.events(Some("p")).await.unwrap();
    let e = events.next().await.unwrap().unwrap();
    assert_eq!(e.kind, EventKind::Exited { code: 3 });
    assert_eq!(events.next().await.unwrap(), None);
    assert_eq!(control.calls(), ["events Some(\"p\")"]);
}

/// Ctrl-C of the CLI in the middle of `up` must not cancel the change half-done.
#[tokio::test]
async fn a_verb_completes_when_the_client_goes_away() {
    let (_dir, control, client) = setup();
    let request = up_request();
    let call = client.up("slow", &request);
    // The request reaches the daemon; then the client gives up (drops the call).
    tokio::select! {
        _ = call => panic!("`up` answered before it was released"),
        () = control.arrived.notified() => {}
    }
    control.release.notify_one();
    tokio::time::timeout(Duration::from_secs(10), control.finished.notified())
        .await
        .expect("the daemon finishes `up` without its client");
}
