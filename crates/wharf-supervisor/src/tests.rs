//! Supervisor behaviour against the FakeRuntime, with paused time: orders, timings and restart
//! counts are exact.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use wharf_model::{LoadOptions, Project};
use wharf_runtime::fake::{Behavior, FakeRuntime, FakeScript};
use wharf_runtime::{ExitStatus, Signal};

use super::*;

fn project(yaml: &str) -> Arc<Project> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = LoadOptions {
        files: vec!["-".into()],
        working_dir: dir.path().to_path_buf(),
        project_name: Some("p".into()),
        stdin: Some(yaml.to_string()),
        environment: BTreeMap::new(),
        ..LoadOptions::default()
    };
    match wharf_model::load(&options) {
        Ok(l) => Arc::new(l.project),
        Err(d) => panic!("{d}"),
    }
}

fn supervisor(rt: &Arc<FakeRuntime>) -> Supervisor {
    let runtime: Arc<dyn wharf_runtime::Runtime> = rt.clone();
    Supervisor::new(
        runtime,
        Arc::new(NoLogs),
        SupervisorOptions {
            base_env: BTreeMap::new(),
            volumes_dir: std::env::temp_dir().join("wharf-supervisor-tests"),
            backoff: Backoff::default(),
        },
    )
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const HEALTH_GATED: &str = r#"
services:
  db:
    command: db
    healthcheck: {test: "check", interval: 30s, start_period: 10s, start_interval: 200ms}
  web:
    command: web
    depends_on: {db: {condition: service_healthy}}
"#;

#[tokio::test(start_paused = true)]
async fn health_gated_start_waits_for_the_dependency_and_no_longer() {
    let rt = FakeRuntime::new();
    rt.script("db", FakeScript::run().healthy_after(ms(700)));
    let sup = supervisor(&rt);
    let t0 = Instant::now();
    sup.up(project(HEALTH_GATED), UpOptions::default())
        .await
        .unwrap();
    // db ready at 700 ms, probed every 200 ms: healthy at 800 ms, and web starts right then.
    assert_eq!(t0.elapsed(), ms(800));
    assert_eq!(rt.start_order(), ["p-db-1", "p-web-1"]);
    assert_eq!(rt.record("p-web-1").started_at, vec![ms(800)]);
    sup.wait_ready("p", None, Duration::from_secs(1))
        .await
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_dependency_that_never_gets_healthy_stops_its_dependents_with_the_reason() {
    let rt = FakeRuntime::new();
    rt.script(
        "db",
        FakeScript::run()
            .never_healthy()
            .with_output(&["FATAL: password authentication failed"]),
    );
    let sup = supervisor(&rt);
    let yaml = HEALTH_GATED.replace("start_period: 10s", "start_period: 1s, retries: 2");
    let err = sup
        .up(project(&yaml), UpOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("p-web-1 was not started"), "{err}");
    assert!(
        err.contains("dependency `db` (service_healthy) failed: p-db-1 is unhealthy"),
        "{err}"
    );
    assert!(
        err.contains("| FATAL: password authentication failed"),
        "{err}"
    );
    assert_eq!(rt.record("p-web-1").starts, 0);
}

/// A dependency that crash-loops before its health check can call it unhealthy: never healthy,
/// never failed for good.
const CRASH_LOOPING_DEPENDENCY: &str = r#"
services:
  db:
    command: db
    restart: always
    healthcheck: {test: "check", interval: 1s, retries: 3}
  web:
    command: web
    depends_on: {db: {condition: service_healthy}}
"#;

/// The instance's restart count, from the supervisor's own state.
fn restarts(sup: &Supervisor, name: &str) -> u32 {
    sup.instances("p")
        .iter()
        .find(|s| s.name == name)
        .map(|s| s.restarts)
        .unwrap_or_else(|| panic!("{name} is not an instance"))
}

// Pins the bug where `up --wait --wait-timeout 10` never returned (still waiting at 45 s
// natively, 6 min 40 s on Docker) when a service waited `service_healthy` on a dependency that
// kept restarting: the timeout was only applied once every instance had started.
#[tokio::test(start_paused = true)]
async fn the_wait_timeout_bounds_a_dependent_of_a_crash_looping_dependency_and_says_why() {
    let rt = FakeRuntime::new();
    rt.script(
        "db",
        FakeScript::exit_after(ms(1500), 1)
            .never_healthy()
            .with_output(&["FATAL: the data directory is locked"]),
    );
    let sup = supervisor(&rt);
    let t0 = Instant::now();
    let wait = UpWait {
        ready: true,
        timeout: Duration::from_secs(10),
    };
    let err = sup
        .up_within(
            project(CRASH_LOOPING_DEPENDENCY),
            UpOptions::default(),
            wait,
        )
        .await
        .unwrap_err();
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    assert!(matches!(err, SupervisorError::Timeout(..)), "{err:?}");
    let err = err.to_string();
    let db_restarts = restarts(&sup, "p-db-1");
    assert!(db_restarts >= 3, "p-db-1 restarted {db_restarts} times");
    assert!(
        err.starts_with("timed out after 10s waiting for: "),
        "{err}"
    );
    assert!(
        err.contains("p-web-1, which waits for `db` (service_healthy): p-db-1 is restarting"),
        "{err}"
    );
    assert!(
        err.contains(&format!("restarted {db_restarts} times")),
        "{err}"
    );
    assert!(
        err.contains("last health check: exit code 1: not ready"),
        "{err}"
    );
    assert!(
        err.contains("| FATAL: the data directory is locked"),
        "{err}"
    );
    assert_eq!(rt.record("p-web-1").starts, 0);
    // The dependent says why it was not started; the dependency goes on restarting.
    let web = sup
        .instances("p")
        .into_iter()
        .find(|s| s.service == "web")
        .unwrap();
    assert!(web.finished);
    assert_eq!(
        web.error.as_deref(),
        Some("timed out after 10s waiting for `db` (service_healthy)")
    );
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(restarts(&sup, "p-db-1") > db_restarts);
}

#[tokio::test(start_paused = true)]
async fn the_wait_timeout_bounds_readiness_and_counts_from_the_start_of_up() {
    // db alone, crash-looping: `up` returns at once, readiness gets what is left of the 10 s.
    let yaml = CRASH_LOOPING_DEPENDENCY.split("  web:").next().unwrap();
    let rt = FakeRuntime::new();
    rt.script("db", FakeScript::exit_after(ms(1500), 1).never_healthy());
    let sup = supervisor(&rt);
    let t0 = Instant::now();
    let wait = UpWait {
        ready: true,
        timeout: Duration::from_secs(10),
    };
    let err = sup
        .up_within(project(yaml), UpOptions::default(), wait)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(t0.elapsed(), Duration::from_secs(10));
    assert!(
        err.starts_with("timed out after 10s waiting for: p-db-1 is restarting (restarted "),
        "{err}"
    );
    assert!(
        err.contains("last health check: exit code 1: not ready"),
        "{err}"
    );

    // Without `ready`, the same deadline bounds only the starts: a healthy chain returns when
    // web has started, well inside it.
    let rt = FakeRuntime::new();
    rt.script("db", FakeScript::run().healthy_after(ms(700)));
    let sup = supervisor(&rt);
    let t0 = Instant::now();
    let wait = UpWait {
        ready: false,
        timeout: Duration::from_secs(10),
    };
    sup.up_within(project(HEALTH_GATED), UpOptions::default(), wait)
        .await
        .unwrap();
    assert_eq!(t0.elapsed(), ms(800));
    assert_eq!(rt.record("p-web-1").starts, 1);
}

#[tokio::test(start_paused = true)]
async fn a_zero_or_huge_wait_timeout_is_no_deadline() {
    // As Docker Compose's `--wait-timeout 0`; a timeout past the clock's range must not panic.
    for timeout in [Duration::ZERO, Duration::MAX] {
        let rt = FakeRuntime::new();
        rt.script(
            "db",
            FakeScript::run().healthy_after(Duration::from_secs(3600)),
        );
        let sup = supervisor(&rt);
        let t0 = Instant::now();
        let wait = UpWait {
            ready: true,
            timeout,
        };
        let yaml = HEALTH_GATED.replace("start_period: 10s", "start_period: 10s, retries: 1000");
        sup.up_within(project(&yaml), UpOptions::default(), wait)
            .await
            .unwrap();
        // db passes its check after an hour (probed every 200 ms during its start period of
        // 10 s, every 30 s after): nothing gave up before.
        assert!(
            t0.elapsed() >= Duration::from_secs(3600),
            "{:?}",
            t0.elapsed()
        );
        assert_eq!(rt.record("p-web-1").starts, 1);
    }
}

#[tokio::test(start_paused = true)]
async fn completed_successfully_gates_and_a_failing_one_shot_is_reported() {
    let yaml = r#"
services:
  migrate:
    command: migrate
  web:
    command: web
    depends_on: {migrate: {condition: service_completed_successfully}}
"#;
    let rt = FakeRuntime::new();
    rt.script("migrate", FakeScript::exit_after(Duration::from_secs(2), 0));
    let sup = supervisor(&rt);
    let t0 = Instant::now();
    sup.up(project(yaml), UpOptions::default()).await.unwrap();
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    sup.wait_ready("p", None, Duration::from_secs(1))
        .await
        .unwrap();

    let rt = FakeRuntime::new();
    rt.script(
        "migrate",
        FakeScript::exit_after(Duration::from_secs(1), 3)
            .with_output(&["relation \"users\" already exists"]),
    );
    let sup = supervisor(&rt);
    let err = sup
        .up(project(yaml), UpOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("dependency `migrate` (service_completed_successfully) failed: p-migrate-1 exited with code 3"),
        "{err}"
    );
    assert!(err.contains("relation \"users\" already exists"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn on_failure_gives_exactly_n_restarts_with_doubling_back_off() {
    let yaml = "services:\n  w:\n    command: w\n    restart: on-failure:3\n";
    let rt = FakeRuntime::new();
    rt.script("w", FakeScript::exit_after(ms(10), 1));
    let sup = supervisor(&rt);
    let mut events = sup.events();
    sup.up(project(yaml), UpOptions::default()).await.unwrap();
    loop {
        let e = events.recv().await.unwrap();
        if e.kind == (EventKind::Exited { code: 1 }) && sup.instances("p")[0].finished {
            break;
        }
    }
    let rec = rt.record("p-w-1");
    assert_eq!(rec.starts, 4, "1 start + 3 restarts");
    // Each run lasts 10 ms, then waits 100, 200, 400 ms.
    assert_eq!(rec.started_at, vec![ms(0), ms(110), ms(320), ms(730)]);
    let st = &sup.instances("p")[0];
    assert_eq!(st.restarts, 3);
    assert_eq!(st.status, Status::Exited { code: 1 });
    assert!(
        sup.wait_ready("p", None, Duration::from_secs(1))
            .await
            .is_err()
    );
}

#[tokio::test(start_paused = true)]
async fn always_restarts_and_back_off_resets_after_a_long_run() {
    let yaml = "services:\n  w:\n    command: w\n    restart: always\n";
    let rt = FakeRuntime::new();
    rt.script(
        "w",
        FakeScript {
            starts: vec![
                Behavior::ExitAfter {
                    after: ms(10),
                    code: 0,
                },
                Behavior::ExitAfter {
                    after: ms(10),
                    code: 0,
                },
                Behavior::ExitAfter {
                    after: Duration::from_secs(20),
                    code: 1,
                },
                Behavior::Run { code_on_stop: 0 },
            ],
            ..FakeScript::default()
        },
    );
    let sup = supervisor(&rt);
    sup.up(project(yaml), UpOptions::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(30)).await;
    let rec = rt.record("p-w-1");
    // 0: run 10 ms, wait 100; 110: run 10, wait 200; 320: run 20 s, wait 100 (reset).
    assert_eq!(rec.started_at, vec![ms(0), ms(110), ms(320), ms(20_420)]);
}

#[tokio::test(start_paused = true)]
async fn replicas_get_compose_names_and_scale_adds_and_removes() {
    let yaml = "services:\n  web:\n    command: web\n    deploy: {replicas: 3}\n";
    let rt = FakeRuntime::new();
    let sup = supervisor(&rt);
    let p = project(yaml);
    sup.up(Arc::clone(&p), UpOptions::default()).await.unwrap();
    assert_eq!(rt.running(), ["p-web-1", "p-web-2", "p-web-3"]);
    sup.scale("p", [("web".to_string(), 1)].into())
        .await
        .unwrap();
    assert_eq!(rt.running(), ["p-web-1"]);
    sup.scale("p", [("web".to_string(), 2)].into())
        .await
        .unwrap();
    assert_eq!(rt.running(), ["p-web-1", "p-web-2"]);
    // A later `up` keeps the scale the user asked for.
    sup.up(p, UpOptions::default()).await.unwrap();
    assert_eq!(rt.running(), ["p-web-1", "p-web-2"]);
}

#[tokio::test(start_paused = true)]
async fn down_stops_dependents_first_and_kills_after_the_grace_period() {
    let yaml = r#"
services:
  db:
    command: db
  web:
    command: web
    depends_on: [db]
    stop_grace_period: 2s
"#;
    let rt = FakeRuntime::new();
    rt.script(
        "web",
        FakeScript {
            starts: vec![Behavior::Hang],
            ..FakeScript::default()
        },
    );
    let sup = supervisor(&rt);
    sup.up(project(yaml), UpOptions::default()).await.unwrap();
    let mut events = sup.events();
    let t0 = Instant::now();
    sup.down("p").await.unwrap();
    assert_eq!(
        t0.elapsed(),
        Duration::from_secs(2),
        "web ignores SIGTERM: killed after its grace"
    );
    let mut exits = Vec::new();
    while let Ok(e) = events.try_recv() {
        if let EventKind::Exited { code } = e.kind {
            exits.push((e.instance, code));
        }
    }
    assert_eq!(
        exits,
        [("p-web-1".to_string(), 137), ("p-db-1".to_string(), 0)]
    );
    assert_eq!(rt.record("p-web-1").signals, vec![Signal::TERM]);
    assert!(rt.running().is_empty());
    assert!(sup.projects().is_empty());
}

#[tokio::test(start_paused = true)]
async fn an_optional_dependency_that_fails_is_a_warning() {
    let yaml = r#"
services:
  cache:
    command: cache
  web:
    command: web
    depends_on: {cache: {condition: service_started, required: false}}
"#;
    let rt = FakeRuntime::new();
    rt.script(
        "cache",
        FakeScript {
            starts: vec![Behavior::RefuseStart("no such file or directory".into())],
            ..FakeScript::default()
        },
    );
    let sup = supervisor(&rt);
    let report = sup.up(project(yaml), UpOptions::default()).await.unwrap();
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].contains("no such file or directory"),
        "{:?}",
        report.warnings
    );
    assert_eq!(rt.running(), ["p-web-1"]);
}

#[tokio::test(start_paused = true)]
async fn restart_true_restarts_dependents_when_wharf_restarts_a_crashed_dependency() {
    let yaml = r#"
services:
  db:
    command: db
    restart: always
  web:
    command: web
    depends_on: {db: {condition: service_started, restart: true}}
"#;
    let rt = FakeRuntime::new();
    rt.script(
        "db",
        FakeScript {
            starts: vec![
                Behavior::ExitAfter {
                    after: Duration::from_secs(1),
                    code: 1,
                },
                Behavior::Run { code_on_stop: 0 },
            ],
            ..FakeScript::default()
        },
    );
    let sup = supervisor(&rt);
    sup.up(project(yaml), UpOptions::default()).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(rt.record("p-db-1").starts, 2);
    assert_eq!(
        rt.record("p-web-1").starts,
        2,
        "web restarted after db came back"
    );
    assert_eq!(rt.record("p-web-1").signals, vec![Signal::TERM]);
}

#[tokio::test(start_paused = true)]
async fn a_service_with_an_image_and_no_command_cannot_run_natively() {
    let yaml = "services:\n  redis:\n    image: redis:7\n";
    let rt = FakeRuntime::new();
    let sup = supervisor(&rt);
    let err = sup
        .up(project(yaml), UpOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("service `redis` has image `redis:7` but no `command` or `entrypoint`: the native runtime runs programs, not images"),
        "{err}"
    );
    assert!(err.contains("--runtime docker"), "{err}");
    assert!(rt.start_order().is_empty());
}

#[tokio::test(start_paused = true)]
async fn second_up_changes_nothing_and_a_changed_service_is_recreated() {
    let rt = FakeRuntime::new();
    let sup = supervisor(&rt);
    let yaml = "services:\n  a:\n    command: a\n  b:\n    command: b\n";
    sup.up(project(yaml), UpOptions::default()).await.unwrap();
    let report = sup.up(project(yaml), UpOptions::default()).await.unwrap();
    assert!(report.plan.is_empty(), "{}", report.plan);
    let changed = yaml.replace("command: b", "command: b2");
    let report = sup
        .up(project(&changed), UpOptions::default())
        .await
        .unwrap();
    assert_eq!(
        report.plan.to_string(),
        "recreate b-1  (configuration changed)\n"
    );
    assert_eq!(rt.record("p-a-1").starts, 1);
    assert_eq!(rt.record("p-b-1").starts, 2);
}

#[tokio::test(start_paused = true)]
async fn stop_then_start_keeps_the_instances() {
    let rt = FakeRuntime::new();
    let sup = supervisor(&rt);
    sup.up(
        project("services:\n  a:\n    command: a\n"),
        UpOptions::default(),
    )
    .await
    .unwrap();
    sup.stop("p", None).await.unwrap();
    let st = &sup.instances("p")[0];
    assert_eq!((st.status, st.finished), (Status::Exited { code: 0 }, true));
    sup.start("p", None).await.unwrap();
    assert_eq!(rt.running(), ["p-a-1"]);
    assert_eq!(rt.record("p-a-1").starts, 2);
}

#[tokio::test(start_paused = true)]
async fn events_follow_the_state_machine() {
    let rt = FakeRuntime::new();
    rt.script("db", FakeScript::run().healthy_after(Duration::ZERO));
    let sup = supervisor(&rt);
    let mut events = sup.events();
    sup.up(project(HEALTH_GATED), UpOptions::default())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(e) = events.try_recv() {
        seen.push(format!("{} {:?}", e.instance, e.kind));
    }
    assert_eq!(
        seen,
        [
            "p-db-1 Created",
            "p-web-1 Created",
            "p-db-1 Starting",
            "p-db-1 Running { pid: None }",
            "p-db-1 Healthy",
            "p-web-1 Starting",
            "p-web-1 Running { pid: None }",
        ]
    );
    let _ = ExitStatus::Code(0);
}

#[tokio::test(start_paused = true)]
async fn up_prepares_the_project_before_any_start_and_down_releases_it_after_the_last_stop() {
    let rt = FakeRuntime::new();
    let sup = supervisor(&rt);
    sup.up(project(HEALTH_GATED), UpOptions::default())
        .await
        .unwrap();
    assert_eq!(rt.project_calls(), ["prepare p"]);
    assert_eq!(rt.start_order(), ["p-db-1", "p-web-1"]);
    sup.down("p").await.unwrap();
    assert_eq!(rt.project_calls(), ["prepare p", "release p"]);
    assert!(!rt.record("p-db-1").running && !rt.record("p-web-1").running);
}

#[test]
fn instances_get_their_networks_ports_and_network_modes() {
    use wharf_runtime::{NetworkModeSpec, PortProtocol};
    let p = project(
        r#"
services:
  proxy:
    command: proxy
    networks: [front]
    ports: ["127.0.0.1:8080-8090:80", "53:53/udp"]
  app:
    command: app
    hostname: app.local
    networks:
      front: {}
      back: {aliases: [api], ipv4_address: 172.16.238.10}
  worker:
    command: worker
    network_mode: service:app
  offline:
    command: offline
    network_mode: none
networks:
  front: {}
  back:
    internal: true
    ipam: {config: [{subnet: 172.16.238.0/24}]}
"#,
    );
    let spec = |s: &str| {
        crate::spec::instance_spec(&p, &p.services[s], 1, &BTreeMap::new(), "/v".as_ref())
            .unwrap()
            .network
            .unwrap()
    };
    let proxy = spec("proxy");
    assert_eq!(proxy.ports.len(), 2);
    assert_eq!(proxy.ports[0].host_ip, Some("127.0.0.1".parse().unwrap()));
    assert_eq!(proxy.ports[0].published, Some((8080, 8090)));
    assert_eq!(proxy.ports[1].published, Some((53, 53)));
    assert_eq!(proxy.ports[1].protocol, PortProtocol::Udp);
    let app = spec("app");
    assert_eq!(app.hostname.as_deref(), Some("app.local"));
    let NetworkModeSpec::Attached(nets) = &app.mode else {
        panic!("{app:?}")
    };
    assert_eq!(nets.len(), 2);
    assert_eq!(nets[0].network.key, "back");
    assert_eq!(nets[0].network.name, "p_back");
    assert!(nets[0].network.internal);
    assert_eq!(nets[0].network.subnet.as_deref(), Some("172.16.238.0/24"));
    assert_eq!(nets[0].aliases, ["api"]);
    assert_eq!(nets[0].ipv4_address, Some("172.16.238.10".parse().unwrap()));
    assert_eq!(nets[1].network.name, "p_front");
    assert_eq!(
        spec("worker").mode,
        NetworkModeSpec::Instance("p-app-1".into())
    );
    assert_eq!(spec("offline").mode, NetworkModeSpec::None);
}
