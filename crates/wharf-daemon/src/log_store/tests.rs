use std::time::{Duration, UNIX_EPOCH};

use super::*;

fn at(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(1_793_700_245_000 + ms)
}

fn lines(entries: &[LogEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.line.as_str()).collect()
}

/// Each stored line of `line-NN` is 71 bytes.
const LINE: u64 = 71;

#[tokio::test]
async fn a_full_file_rotates_to_dot_1_and_only_one_old_file_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LogStore::open(tmp.path().to_path_buf(), 10 * LINE).unwrap();
    for i in 0..25 {
        let line = format!("line-{i:02}");
        store.append("p", "web", "p-web-1", at(i), LogStream::Stdout, &line);
    }
    store.sync().await;
    let current = store.path("p", "p-web-1").unwrap();
    let previous = tmp.path().join("p/p-web-1.log.1");
    assert_eq!(fs::metadata(&current).unwrap().len(), 5 * LINE);
    assert_eq!(fs::metadata(&previous).unwrap().len(), 10 * LINE);
    assert!(!tmp.path().join("p/p-web-1.log.2").exists());
    let first = fs::read_to_string(&current).unwrap();
    assert_eq!(
        first.lines().next().unwrap(),
        r#"{"time":"2026-11-03T10:04:05.020Z","stream":"stdout","line":"line-20"}"#
    );

    // Everything kept: the rotated file, then the current one.
    let (all, _) = store.read("p", &[], None, false).unwrap();
    let expected: Vec<String> = (10..25).map(|i| format!("line-{i:02}")).collect();
    assert_eq!(lines(&all), expected);
    assert_eq!(all[0].service, "web");
    assert_eq!(all[0].instance, "p-web-1");

    // A tail longer than the current file reaches into the rotated one.
    let (tail, _) = store.read("p", &[], Some(7), false).unwrap();
    assert_eq!(
        lines(&tail),
        [
            "line-18", "line-19", "line-20", "line-21", "line-22", "line-23", "line-24"
        ]
    );
    let (tail, _) = store.read("p", &[], Some(2), false).unwrap();
    assert_eq!(lines(&tail), ["line-23", "line-24"]);
}

#[tokio::test]
async fn logs_of_instances_merge_by_time_and_filter_by_service() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LogStore::open(tmp.path().to_path_buf(), DEFAULT_CAP).unwrap();
    store.append("p", "web", "p-web-1", at(1), LogStream::Stdout, "w1");
    store.append("p", "db", "p-db-1", at(2), LogStream::Stderr, "d2");
    store.append("p", "web", "p-web-2", at(3), LogStream::Stdout, "w3");
    store.append(
        "q",
        "web",
        "q-web-1",
        at(4),
        LogStream::Stdout,
        "other project",
    );
    store.sync().await;
    let (all, _) = store.read("p", &[], None, false).unwrap();
    assert_eq!(lines(&all), ["w1", "d2", "w3"]);
    assert_eq!(all[1].stream, LogStream::Stderr);
    let (web, _) = store.read("p", &["web".into()], Some(1), false).unwrap();
    assert_eq!(lines(&web), ["w1", "w3"]);
    let (none, _) = store.read("nothing", &[], None, false).unwrap();
    assert!(none.is_empty());

    store.forget("p").await;
    assert!(!tmp.path().join("p").exists());
    let (q, _) = store.read("q", &[], None, false).unwrap();
    assert_eq!(lines(&q), ["other project"]);
}

#[tokio::test]
async fn a_follower_gets_every_line_once() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LogStore::open(tmp.path().to_path_buf(), DEFAULT_CAP).unwrap();
    store.append("p", "web", "p-web-1", at(1), LogStream::Stdout, "before");
    store.sync().await;
    let (kept, live) = store.read("p", &[], None, true).unwrap();
    let mut live = live.unwrap();
    assert_eq!(lines(&kept), ["before"]);
    store.append("p", "web", "p-web-1", at(2), LogStream::Stdout, "after");
    assert_eq!(live.recv().await.unwrap().line, "after");
    assert!(live.try_recv().is_err());
}

#[tokio::test]
async fn lines_dropped_under_backpressure_are_counted_in_a_marker() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LogStore::with_channel(tmp.path().to_path_buf(), DEFAULT_CAP, 1).unwrap();
    let total = 20;
    {
        // The writer cannot write while the gate is held: the channel (of 1) fills up.
        let _gate = store.shared.gate();
        for i in 0..total {
            let line = format!("line-{i}");
            store.append("p", "web", "p-web-1", at(i), LogStream::Stdout, &line);
        }
    }
    // Room again: the marker is written before the next line.
    store.sync().await;
    store.append("p", "web", "p-web-1", at(100), LogStream::Stdout, "last");
    store.sync().await;
    let (all, _) = store.read("p", &[], None, false).unwrap();
    let markers: Vec<&LogEntry> = all
        .iter()
        .filter(|e| e.stream == LogStream::Wharf)
        .collect();
    assert_eq!(markers.len(), 1, "{all:?}");
    let dropped: u64 = markers[0]
        .line
        .strip_prefix("wharf: ")
        .and_then(|l| l.split_once(' '))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap();
    let kept = all
        .iter()
        .filter(|e| e.stream == LogStream::Stdout && e.line != "last")
        .count() as u64;
    assert!(dropped > 0);
    assert_eq!(kept + dropped, total);
    assert_eq!(all.last().unwrap().line, "last");
}

#[test]
fn the_service_is_read_from_the_instance_name() {
    assert_eq!(service_of("p", "p-web-1"), "web");
    assert_eq!(service_of("my-app", "my-app-db-main-12"), "db-main");
}
