//! Start order, health from the Engine, one-shots, logs, idempotent `up`.

use std::sync::Arc;

use wharf_plan::Op;
use wharf_supervisor::{Health, Status, UpOptions};

use crate::{Lines, READY, Stack, container_id, docker, drain_events, engine, position};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_gated_start_order_and_completed_one_shots() {
    let Some(runtime) = engine().await else {
        return;
    };
    let stack = Stack::new(
        "order",
        r#"
services:
  db:
    image: IMAGE
    command: ["sh", "-c", "echo db starting; sleep 1; touch /tmp/ready; echo db ready; exec httpd -f -p 80 -h /www"]
    healthcheck:
      test: ["CMD", "test", "-f", "/tmp/ready"]
      interval: 200ms
      timeout: 2s
      retries: 50
  migrate:
    image: IMAGE
    command: ["sh", "-c", "echo migrated"]
    depends_on:
      db: {condition: service_healthy}
  web:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    depends_on:
      db: {condition: service_healthy}
      migrate: {condition: service_completed_successfully}
"#,
    );
    let lines = Arc::new(Lines::default());
    let sup = stack.supervisor(runtime, Arc::clone(&lines));
    let mut events = sup.events();
    let project = stack.load();
    sup.up(Arc::clone(&project), UpOptions::default())
        .await
        .unwrap();
    sup.wait_ready(&stack.name, None, READY).await.unwrap();

    let events = drain_events(&mut events);
    let n = &stack.name;
    let db_healthy = position(&events, &format!("{n}-db-1 healthy"));
    let migrate_starting = position(&events, &format!("{n}-migrate-1 starting"));
    let migrate_exited = position(&events, &format!("{n}-migrate-1 exited"));
    let web_starting = position(&events, &format!("{n}-web-1 starting"));
    assert!(db_healthy < migrate_starting, "{events:#?}");
    assert!(migrate_exited < web_starting, "{events:#?}");

    let states = sup.instances(n);
    let db = states.iter().find(|s| s.service == "db").unwrap();
    assert_eq!(db.health, Some(Health::Healthy));
    let migrate = states.iter().find(|s| s.service == "migrate").unwrap();
    assert_eq!(migrate.status, Status::Exited { code: 0 });

    // Compose's bookkeeping: the labels `docker ps` filters on, and Compose's names.
    let listed = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("label=com.docker.compose.project={n}"),
        "--filter",
        "label=com.docker.compose.oneoff=False",
        "--format",
        "{{.Names}} {{.Label \"com.docker.compose.service\"}} {{.Label \"com.docker.compose.container-number\"}}",
    ]);
    let mut listed: Vec<&str> = listed.lines().collect();
    listed.sort();
    assert_eq!(
        listed,
        [
            format!("{n}-db-1 db 1"),
            format!("{n}-migrate-1 migrate 1"),
            format!("{n}-web-1 web 1")
        ]
    );
    let hash = docker(&[
        "inspect",
        "-f",
        "{{index .Config.Labels \"com.docker.compose.config-hash\"}}",
        &format!("{n}-web-1"),
    ]);
    assert_eq!(hash, wharf_plan::config_hash(&project.services["web"]));
    // The health check runs in the Engine.
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{.State.Health.Status}}",
            &format!("{n}-db-1")
        ]),
        "healthy"
    );
    // Output, line by line.
    let logged = lines.0.lock().unwrap().clone();
    assert_eq!(
        logged.get(&format!("{n}-db-1")).map(Vec::as_slice),
        Some(&["db starting".to_string(), "db ready".to_string()][..])
    );
    assert_eq!(
        logged.get(&format!("{n}-migrate-1")).map(Vec::as_slice),
        Some(&["migrated".to_string()][..])
    );

    sup.down_with(n, true).await.unwrap();
    assert_eq!(
        docker(&[
            "ps",
            "-aq",
            "--filter",
            &format!("label=com.docker.compose.project={n}")
        ]),
        ""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_one_shot_fails_its_dependents_with_its_exit_code_and_output() {
    let Some(runtime) = engine().await else {
        return;
    };
    let stack = Stack::new(
        "failing",
        r#"
services:
  migrate:
    image: IMAGE
    command: ["sh", "-c", "echo cannot reach the database; exit 3"]
  web:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    depends_on:
      migrate: {condition: service_completed_successfully}
"#,
    );
    let sup = stack.supervisor(runtime, Arc::new(Lines::default()));
    let err = sup
        .up(stack.load(), UpOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains("cannot reach the database"), "{err}");
    assert!(err.contains("migrate"), "{err}");
    sup.down_with(&stack.name, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_again_recreates_only_the_changed_service() {
    let Some(runtime) = engine().await else {
        return;
    };
    let compose = |greeting: &str| {
        format!(
            r#"
services:
  api:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
  worker:
    image: IMAGE
    command: ["sh", "-c", "echo $$GREETING; exec sleep 100000"]
    environment:
      GREETING: {greeting}
"#
        )
    };
    let stack = Stack::new("idempotent", &compose("hello"));
    let sup = stack.supervisor(runtime, Arc::new(Lines::default()));
    let n = stack.name.clone();
    sup.up(stack.load(), UpOptions::default()).await.unwrap();
    let api = container_id(&format!("{n}-api-1"));
    let worker = container_id(&format!("{n}-worker-1"));

    // Unchanged: nothing to do, nothing restarted.
    let report = sup.up(stack.load(), UpOptions::default()).await.unwrap();
    assert!(report.plan.is_empty(), "{}", report.plan);
    assert_eq!(container_id(&format!("{n}-worker-1")), worker);

    stack.write(&compose("bonjour"));
    let report = sup.up(stack.load(), UpOptions::default()).await.unwrap();
    let ops: Vec<(Op, &str)> = report
        .plan
        .steps
        .iter()
        .map(|s| (s.op.clone(), s.service.as_str()))
        .collect();
    assert_eq!(ops, [(Op::Recreate, "worker")], "{}", report.plan);
    assert_eq!(
        container_id(&format!("{n}-api-1")),
        api,
        "api was left alone"
    );
    assert_ne!(
        container_id(&format!("{n}-worker-1")),
        worker,
        "worker was recreated"
    );
    assert_eq!(
        docker(&[
            "inspect",
            "-f",
            "{{range .Config.Env}}{{println .}}{{end}}",
            &format!("{n}-worker-1")
        ])
        .lines()
        .find(|l| l.starts_with("GREETING="))
        .unwrap(),
        "GREETING=bonjour"
    );

    // --force-recreate recreates both; --no-recreate keeps what runs even when it changed.
    let forced = sup
        .up(
            stack.load(),
            UpOptions {
                force_recreate: true,
                ..UpOptions::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(forced.plan.steps.len(), 2, "{}", forced.plan);
    assert_ne!(container_id(&format!("{n}-api-1")), api);
    let worker = container_id(&format!("{n}-worker-1"));
    stack.write(&compose("hallo"));
    let kept = sup
        .up(
            stack.load(),
            UpOptions {
                no_recreate: true,
                ..UpOptions::default()
            },
        )
        .await
        .unwrap();
    assert!(kept.plan.is_empty(), "{}", kept.plan);
    assert_eq!(container_id(&format!("{n}-worker-1")), worker);
    sup.down_with(&n, true).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_container_carries_what_the_service_says() {
    let Some(runtime) = engine().await else {
        return;
    };
    let stack = Stack::new(
        "keys",
        r#"
services:
  web:
    image: IMAGE
    command: ["httpd", "-f", "-p", "80", "-h", "/www"]
    hostname: webhost
    user: "1000:1000"
    working_dir: /www
    labels: {team: edge}
    ports: ["127.0.0.1::80"]
    expose: ["9000"]
    cap_add: [NET_ADMIN]
    cap_drop: [MKNOD]
    ulimits:
      nofile: {soft: 1024, hard: 2048}
    extra_hosts: ["db.example:10.1.2.3"]
    tmpfs: [/run]
    shm_size: 32m
    stop_signal: SIGINT
    stop_grace_period: 3s
    restart: on-failure:4
    volumes:
      - type: tmpfs
        target: /scratch
"#,
    );
    let sup = stack.supervisor(runtime, Arc::new(Lines::default()));
    let n = stack.name.clone();
    sup.up(stack.load(), UpOptions::default()).await.unwrap();
    let web = format!("{n}-web-1");
    let show = |format: &str| docker(&["inspect", "-f", format, &web]);
    assert_eq!(
        show("{{.Config.Hostname}} {{.Config.User}} {{.Config.WorkingDir}}"),
        "webhost 1000:1000 /www"
    );
    assert_eq!(show("{{index .Config.Labels \"team\"}}"), "edge");
    assert_eq!(
        show("{{.HostConfig.CapAdd}} {{.HostConfig.CapDrop}}"),
        "[NET_ADMIN] [MKNOD]"
    );
    assert_eq!(
        show("{{range .HostConfig.Ulimits}}{{.Name}}={{.Soft}}:{{.Hard}}{{end}}"),
        "nofile=1024:2048"
    );
    assert_eq!(show("{{.HostConfig.ExtraHosts}}"), "[db.example:10.1.2.3]");
    assert_eq!(
        show("{{.HostConfig.ShmSize}} {{.HostConfig.Init}}"),
        "33554432 true"
    );
    assert_eq!(
        show("{{.Config.StopSignal}} {{.Config.StopTimeout}}"),
        "SIGINT 3"
    );
    assert_eq!(
        show("{{.HostConfig.RestartPolicy.Name}} {{.HostConfig.RestartPolicy.MaximumRetryCount}}"),
        "on-failure 4"
    );
    assert_eq!(
        show("{{range $k, $v := .HostConfig.Tmpfs}}{{$k}}{{end}}"),
        "/run"
    );
    assert_eq!(
        show("{{range .Mounts}}{{.Type}}:{{.Destination}}{{end}}"),
        "tmpfs:/scratch"
    );
    assert!(show("{{json .Config.ExposedPorts}}").contains("9000/tcp"));

    // The published port answers on the host's loopback (the Engine picked the port).
    let port = docker(&["port", &web, "80/tcp"]);
    let address = port.lines().next().unwrap().to_string();
    assert!(address.starts_with("127.0.0.1:"), "{address}");
    sup.wait_ready(&n, None, crate::READY).await.unwrap();
    let mut body = String::new();
    for _ in 0..100 {
        // httpd may not listen yet: a bounded number of attempts, each waiting on the socket.
        use std::io::{Read, Write};
        if let Ok(mut s) = std::net::TcpStream::connect(&address) {
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
            body.clear();
            let _ = s.read_to_string(&mut body);
            if body.starts_with("HTTP/1.") {
                break;
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The server answers (404: the user 1000 instance serves an empty root owned by root).
    assert!(
        body.starts_with("HTTP/1.0 404") || body.starts_with("HTTP/1.1 404"),
        "{body}"
    );
    sup.down_with(&n, true).await.unwrap();
}
