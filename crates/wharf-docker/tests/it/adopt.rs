//! After a daemon restart (a new runtime and supervisor), `up` adopts the running containers
//! instead of starting them again, and follows their health and exits from then on.

use std::sync::Arc;

use futures_util::StreamExt;

use wharf_supervisor::{Health, Status, UpOptions};

use crate::{Lines, READY, Stack, container_id, docker, engine};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_supervisor_adopts_running_containers_without_restarting_them() {
    let Some(first) = engine().await else { return };
    let stack = Stack::new(
        "adopt",
        r#"
services:
  db:
    image: IMAGE
    command: ["sh", "-c", "touch /tmp/ready; exec httpd -f -p 80 -h /www"]
    restart: always
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      retries: 50
  web:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    restart: unless-stopped
    depends_on:
      db: {condition: service_healthy}
  worker:
    image: IMAGE
    command: ["sh", "-c", "[ -f /tmp/crashed ] && exec sleep 100000; while [ ! -f /tmp/crash ]; do sleep 0.1; done; touch /tmp/crashed; exit 1"]
    restart: always
"#,
    );
    let n = stack.name.clone();
    let started = |service: &str| {
        docker(&[
            "inspect",
            "-f",
            "{{.Id}} {{.State.StartedAt}}",
            &format!("{n}-{service}-1"),
        ])
    };
    // The first daemon: its own tokio runtime, shut down (every task of it gone, as when the
    // daemon's process ends) without `down`. The containers keep running.
    drop(first);
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let daemon = tokio::runtime::Runtime::new().unwrap();
                daemon.block_on(async {
                    let runtime = engine().await.unwrap();
                    let sup = stack.supervisor(runtime, Arc::new(Lines::default()));
                    sup.up(stack.load(), UpOptions::default()).await.unwrap();
                    sup.wait_ready(&n, None, READY).await.unwrap();
                });
                daemon.shutdown_background();
            })
            .join()
            .unwrap();
    });
    let db_before = started("db");
    let web_before = started("web");

    // While no supervisor runs, the worker crashes: the Engine's restart policy brings it back.
    let second = engine().await.unwrap();
    let worker = format!("{n}-worker-1");
    let filters = std::collections::HashMap::from([
        ("container".to_string(), vec![worker.clone()]),
        ("event".to_string(), vec!["start".to_string()]),
    ]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    let t0 = i64::try_from(now.as_nanos()).unwrap();
    let since = now.as_secs().to_string();
    let options = bollard::query_parameters::EventsOptionsBuilder::default()
        .since(&since)
        .filters(&filters)
        .build();
    let mut starts = std::pin::pin!(second.client().events(Some(options)));
    docker(&["exec", &worker, "touch", "/tmp/crash"]);
    // Only a start after the crash counts (`since` is in whole seconds).
    loop {
        let event = starts.next().await.unwrap().unwrap();
        if event.time_nano.unwrap_or(0) >= t0 {
            break;
        }
    }
    assert_eq!(
        docker(&["inspect", "-f", "{{.RestartCount}}", &worker]),
        "1"
    );
    let worker_before = started("worker");
    let sup = stack.supervisor(second, Arc::new(Lines::default()));
    let report = sup.up(stack.load(), UpOptions::default()).await.unwrap();
    assert!(report.plan.is_empty(), "{}", report.plan);
    sup.wait_ready(&n, None, READY).await.unwrap();
    assert_eq!(started("db"), db_before, "db was not restarted");
    assert_eq!(started("web"), web_before, "web was not restarted");
    assert_eq!(
        started("worker"),
        worker_before,
        "worker was not restarted again"
    );
    let states = sup.instances(&n);
    assert_eq!(states.len(), 3);
    let db = states.iter().find(|s| s.service == "db").unwrap();
    assert_eq!(
        (db.status, db.health),
        (Status::Running, Some(Health::Healthy))
    );

    // The adopted instance's exit reaches the new supervisor: the Engine kills it, the
    // supervisor sees it exit, and `restart: always` brings it back.
    let mut changed = sup.events();
    docker(&["kill", &format!("{n}-web-1")]);
    loop {
        let e = changed.recv().await.unwrap();
        if e.instance == format!("{n}-web-1")
            && matches!(e.kind, wharf_supervisor::EventKind::Exited { .. })
        {
            break;
        }
    }
    sup.down_with(&n, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphans_stay_with_a_warning_unless_remove_orphans() {
    let Some(runtime) = engine().await else {
        return;
    };
    let both = r#"
services:
  kept:
    image: IMAGE
    command: ["sleep", "100000"]
  gone:
    image: IMAGE
    command: ["sleep", "100000"]
"#;
    let stack = Stack::new("orphans", both);
    let n = stack.name.clone();
    stack
        .supervisor(runtime, Arc::new(Lines::default()))
        .up(stack.load(), UpOptions::default())
        .await
        .unwrap();
    let gone = format!("{n}-gone-1");
    let kept = container_id(&format!("{n}-kept-1"));

    // A later wharf (a restarted daemon) with `gone` no longer in the project.
    stack.write(&both[..both.find("  gone:").unwrap()]);
    let sup = stack.supervisor(engine().await.unwrap(), Arc::new(Lines::default()));
    let report = sup.up(stack.load(), UpOptions::default()).await.unwrap();
    assert!(report.plan.is_empty(), "{}", report.plan);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains(&gone) && w.contains("--remove-orphans")),
        "{:?}",
        report.warnings
    );
    assert_eq!(container_id(&gone).len(), 64, "the orphan is left alone");

    let report = sup
        .up(
            stack.load(),
            UpOptions {
                remove_orphans: true,
                ..UpOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        report.plan.to_string().trim(),
        "remove   gone-1  (no longer in the project)"
    );
    assert_eq!(
        docker(&["ps", "-aq", "--filter", &format!("name=^/{gone}$")]),
        ""
    );
    assert_eq!(container_id(&format!("{n}-kept-1")), kept);
    sup.down_with(&n, true).await.unwrap();
}
