use std::path::Path;
use std::time::Duration;

use libtest_mimic::{Failed, Trial};
use wharf_supervisor::{EventKind, Status};

use crate::*;

pub fn trials() -> Vec<Trial> {
    vec![
        trial("health_gated_start_order", health_gated_start_order),
        trial(
            "completed_successfully_runs_before_its_dependent",
            completed_successfully_runs_before_its_dependent,
        ),
        trial(
            "on_failure_gives_exactly_n_restarts",
            on_failure_gives_exactly_n_restarts,
        ),
        trial(
            "replicas_run_with_their_own_names",
            replicas_run_with_their_own_names,
        ),
        trial(
            "down_stops_dependents_first_with_their_stop_signal",
            down_stops_dependents_first_with_their_stop_signal,
        ),
        trial(
            "a_failing_dependency_is_reported_with_its_output",
            a_failing_dependency_is_reported_with_its_output,
        ),
    ]
}

fn health_gated_start_order(dir: &Path) -> Result<(), Failed> {
    let p = project(
        dir,
        r#"
services:
  db:
    command: ["sh", "-c", "sleep 0.3; touch $DIR/db.ready; exec sleep 1000"]
    healthcheck: {test: ["CMD", "test", "-f", "$DIR/db.ready"], interval: 30s, start_period: 30s, start_interval: 100ms}
  web:
    command: ["sh", "-c", "test -f $DIR/db.ready || exit 9; exec sleep 1000"]
    depends_on: {db: {condition: service_healthy}}
"#,
    );
    runtime().block_on(async {
        let sup = supervisor(dir);
        let mut rx = sup.events();
        sup.up(p, up_options()).await.map_err(|e| e.to_string())?;
        sup.wait_ready("it", None, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        events_until(&mut rx, &mut seen, |e| {
            position(e, "it-web-1", &EventKind::Starting).is_some()
        })
        .await?;
        let healthy = position(&seen, "it-db-1", &EventKind::Healthy).ok_or("db never healthy")?;
        let web = position(&seen, "it-web-1", &EventKind::Starting).ok_or("web never started")?;
        assert!(healthy < web, "{:#?}", summary(&seen));
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn completed_successfully_runs_before_its_dependent(dir: &Path) -> Result<(), Failed> {
    let p = project(
        dir,
        r#"
services:
  migrate:
    command: ["sh", "-c", "sleep 0.2; echo done > $DIR/migrated"]
  web:
    command: ["sh", "-c", "test -f $DIR/migrated || exit 9; exec sleep 1000"]
    depends_on: {migrate: {condition: service_completed_successfully}}
"#,
    );
    runtime().block_on(async {
        let sup = supervisor(dir);
        sup.up(p, up_options()).await.map_err(|e| e.to_string())?;
        sup.wait_ready("it", None, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        let states = sup.instances("it");
        let web = states.iter().find(|s| s.service == "web").ok_or("no web")?;
        assert_eq!(web.status, Status::Running);
        let migrate = states
            .iter()
            .find(|s| s.service == "migrate")
            .ok_or("no migrate")?;
        assert_eq!(migrate.status, Status::Exited { code: 0 });
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn on_failure_gives_exactly_n_restarts(dir: &Path) -> Result<(), Failed> {
    let p = project(
        dir,
        "services:\n  flaky:\n    command: [\"sh\", \"-c\", \"echo run >> $DIR/runs; exit 3\"]\n    restart: on-failure:2\n",
    );
    runtime().block_on(async {
        let sup = supervisor(dir);
        let mut rx = sup.events();
        sup.up(p, up_options()).await.map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        events_until(&mut rx, &mut seen, |e| {
            e.iter()
                .filter(|e| e.kind == EventKind::Exited { code: 3 })
                .count()
                == 3
        })
        .await?;
        // The third exit is final: its task ended, so no fourth start can come.
        assert!(
            sup.instances("it")[0].finished,
            "a restart after the third exit"
        );
        let runs = std::fs::read_to_string(dir.join("runs")).map_err(|e| e.to_string())?;
        assert_eq!(runs.lines().count(), 3, "1 run + 2 restarts");
        assert_eq!(sup.instances("it")[0].restarts, 2);
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}

fn replicas_run_with_their_own_names(dir: &Path) -> Result<(), Failed> {
    let p = project(
        dir,
        "services:\n  web:\n    command: [\"sh\", \"-c\", \"echo $$HOSTNAME > $DIR/$$HOSTNAME; exec sleep 1000\"]\n    deploy: {replicas: 3}\n",
    );
    runtime().block_on(async {
        let sup = supervisor(dir);
        let mut rx = sup.events();
        sup.up(p, up_options()).await.map_err(|e| e.to_string())?;
        let mut seen = Vec::new();
        events_until(&mut rx, &mut seen, |e| {
            e.iter()
                .filter(|e| matches!(e.kind, EventKind::Running { .. }))
                .count()
                == 3
        })
        .await?;
        for n in 1..=3 {
            let name = format!("it-web-{n}");
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            while !dir.join(&name).exists() {
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!("{name} never wrote its name").into());
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        let pids: Vec<u32> = sup.instances("it").iter().filter_map(|s| s.pid).collect();
        assert_eq!(pids.len(), 3);
        sup.down("it").await.map_err(|e| e.to_string())?;
        for pid in pids {
            assert!(
                !Path::new(&format!("/proc/{pid}")).exists(),
                "pid {pid} still there after down"
            );
        }
        Ok(())
    })
}

fn down_stops_dependents_first_with_their_stop_signal(dir: &Path) -> Result<(), Failed> {
    let p = project(
        dir,
        r#"
services:
  db:
    command: ["sh", "-c", "trap 'echo db >> $DIR/stopped; exit 0' TERM; touch $DIR/db.trap; while true; do sleep 0.05; done"]
    healthcheck: {test: ["CMD", "test", "-f", "$DIR/db.trap"], start_period: 30s, start_interval: 50ms}
  web:
    command: ["sh", "-c", "trap 'echo web >> $DIR/stopped; exit 0' INT; touch $DIR/web.trap; while true; do sleep 0.05; done"]
    # Healthy once the trap is set, so that the stop signal finds it.
    healthcheck: {test: ["CMD", "test", "-f", "$DIR/web.trap"], start_period: 30s, start_interval: 50ms}
    stop_signal: SIGINT
    depends_on: [db]
"#,
    );
    runtime().block_on(async {
        let sup = supervisor(dir);
        sup.up(p, up_options()).await.map_err(|e| e.to_string())?;
        sup.wait_ready("it", None, Duration::from_secs(30))
            .await
            .map_err(|e| e.to_string())?;
        sup.down("it").await.map_err(|e| e.to_string())?;
        let stopped = std::fs::read_to_string(dir.join("stopped")).map_err(|e| e.to_string())?;
        assert_eq!(stopped, "web\ndb\n");
        Ok(())
    })
}

fn a_failing_dependency_is_reported_with_its_output(dir: &Path) -> Result<(), Failed> {
    let p = project(
        dir,
        r#"
services:
  migrate:
    command: ["sh", "-c", "echo 'ERROR: relation users already exists' >&2; exit 1"]
  web:
    command: ["sleep", "1000"]
    depends_on: {migrate: {condition: service_completed_successfully}}
"#,
    );
    runtime().block_on(async {
        let sup = supervisor(dir);
        let err = match sup.up(p, up_options()).await {
            Ok(_) => return Err("up succeeded".into()),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("it-web-1 was not started"), "{err}");
        assert!(err.contains("dependency `migrate` (service_completed_successfully) failed: it-migrate-1 exited with code 1"), "{err}");
        assert!(err.contains("ERROR: relation users already exists"), "{err}");
        assert!(sup.instances("it").iter().all(|s| is_exited(&s.status) || s.status == Status::Created));
        sup.down("it").await.map_err(|e| e.to_string())?;
        Ok(())
    })
}
