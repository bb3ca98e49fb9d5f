//! After a daemon restart (a new runtime and supervisor), `up` adopts the running containers
//! instead of starting them again, and follows their health and exits from then on.

use std::sync::Arc;

use wharf_supervisor::{Health, Status, UpOptions};

use crate::{Lines, READY, Stack, docker, engine};

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
    {
        let sup = stack.supervisor(first, Arc::new(Lines::default()));
        sup.up(stack.load(), UpOptions::default()).await.unwrap();
        sup.wait_ready(&n, None, READY).await.unwrap();
        // The daemon goes away without `down`: the containers keep running.
    }
    let db_before = started("db");
    let web_before = started("web");

    let second = engine().await.unwrap();
    let sup = stack.supervisor(second, Arc::new(Lines::default()));
    let report = sup.up(stack.load(), UpOptions::default()).await.unwrap();
    assert!(report.plan.is_empty(), "{}", report.plan);
    sup.wait_ready(&n, None, READY).await.unwrap();
    assert_eq!(started("db"), db_before, "db was not restarted");
    assert_eq!(started("web"), web_before, "web was not restarted");
    let states = sup.instances(&n);
    assert_eq!(states.len(), 2);
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
