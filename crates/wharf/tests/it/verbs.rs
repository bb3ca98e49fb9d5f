//! The verbs against a real daemon running real processes (sh, python3): `up -d --wait`, `ps`,
//! `logs`, `exec`, `stop`/`start`, `scale`, `down`, an attached `up` stopped by Ctrl-C, and a
//! daemon killed with SIGKILL that brings back what the restart policies say.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::stack::{Stack, alive, pids, signal, wait_gone};

const STACK: &str = r#"
name: itstack
services:
  setup:
    command: ["sh", "-c", "echo setup ran; touch \"$$WHARF_VOLUME_DATA/setup\""]
    volumes: [data:/data]
  web:
    command:
      - python3
      - -c
      - |
        import os, time
        for i in range(1, 4):
            print(f"web line {i}", flush=True)
        open(os.path.join(os.environ["WHARF_VOLUME_DATA"], "ready"), "w").close()
        while True:
            time.sleep(1)
    environment:
      GREETING: hello-from-web
    volumes: [data:/data]
    restart: always
    healthcheck:
      test: ["CMD-SHELL", "test -f \"$$WHARF_VOLUME_DATA/ready\""]
      interval: 30s
      start_period: 30s
      start_interval: 200ms
    depends_on:
      setup:
        condition: service_completed_successfully
  worker:
    command: ["sh", "-c", "while true; do echo tick; sleep 0.1; done"]
    restart: "no"
    depends_on:
      web:
        condition: service_healthy
volumes:
  data: {}
"#;

fn status(i: &Value) -> (&str, Option<&str>) {
    (i["status"].as_str().unwrap(), i["health"].as_str())
}

fn stdout(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.assert().success().get_output().stdout.clone();
    String::from_utf8(out).expect("UTF-8 output")
}

#[test]
fn a_stack_goes_up_and_down_through_the_verbs() {
    let stack = Stack::new(STACK);
    let started = Instant::now();
    stack
        .wharf()
        .args(["up", "-d", "--wait"])
        .assert()
        .success();
    // Health checks every 200 ms during the start period: ready long before the 30 s interval.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );

    // ps: the one-shot exited 0 (only with -a), web healthy, worker running.
    let running: Value =
        serde_json::from_str(&stdout(stack.wharf().args(["ps", "--format", "json"]))).unwrap();
    let names: Vec<&str> = running
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["itstack-web-1", "itstack-worker-1"]);
    let web = stack.instance("itstack-web-1").unwrap();
    assert_eq!(status(&web), ("running", Some("healthy")));
    let setup = stack.instance("itstack-setup-1").unwrap();
    assert_eq!(
        (status(&setup).0, setup["code"].as_i64()),
        ("exited", Some(0))
    );
    let table = stdout(stack.wharf().arg("ps"));
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("running (healthy)"), "{table}");
    let volume = stack.state().join("volumes/itstack_data");
    assert!(
        volume.join("setup").exists(),
        "the one-shot wrote into its volume"
    );

    // logs: the last lines of web, compose-style.
    let logs = stdout(stack.wharf().args(["logs", "--tail", "2", "web"]));
    assert_eq!(logs, "web-1 | web line 2\nweb-1 | web line 3\n");
    let logs = stdout(stack.wharf().args(["logs", "setup"]));
    assert_eq!(logs, "setup-1 | setup ran\n");

    // exec: the service's environment, and the command's exit status.
    let greeting = stdout(
        stack
            .wharf()
            .args(["exec", "web", "sh", "-c", "echo $GREETING"]),
    );
    assert_eq!(greeting, "hello-from-web\n");
    stack
        .wharf()
        .args(["exec", "web", "sh", "-c", "exit 7"])
        .assert()
        .code(7);

    // stop and start.
    stack.wharf().args(["stop", "worker"]).assert().success();
    let worker = stack.instance("itstack-worker-1").unwrap();
    assert_eq!(status(&worker).0, "exited");
    stack.wharf().args(["start", "worker"]).assert().success();
    let worker = stack.wait_for("itstack-worker-1", Duration::from_secs(20), |i| {
        i["status"] == "running"
    });
    assert!(worker["pid"].as_u64().is_some());

    // scale.
    stack.wharf().args(["scale", "web=2"]).assert().success();
    stack.wait_for("itstack-web-2", Duration::from_secs(20), |i| {
        i["status"] == "running" && i["health"] == "healthy"
    });

    // down -v: no instance process is left, and the volume's data is gone.
    let before = stack.ps();
    let pids = pids(&before);
    assert_eq!(pids.len(), 3, "web-1, web-2, worker-1: {before:?}");
    stack.wharf().args(["down", "-v"]).assert().success();
    for pid in pids {
        assert!(!alive(pid), "process {pid} survived `down`");
    }
    assert!(!volume.exists(), "`down -v` removes {}", volume.display());
    let err = stack
        .wharf()
        .arg("ps")
        .assert()
        .failure()
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(err).unwrap();
    assert!(err.contains("no project `itstack` here"), "{err}");
}

#[test]
fn a_failing_dependency_fails_up_with_the_reason() {
    let stack = Stack::new(
        r#"
name: itfail
services:
  migrate:
    command: ["sh", "-c", "echo cannot reach the database; exit 3"]
  app:
    command: ["sh", "-c", "sleep 60"]
    depends_on:
      migrate:
        condition: service_completed_successfully
"#,
    );
    let out = stack
        .wharf()
        .args(["up", "-d", "--wait"])
        .assert()
        .code(1)
        .get_output()
        .stderr
        .clone();
    let err = String::from_utf8(out).unwrap();
    assert!(err.contains("migrate"), "{err}");
    assert!(err.contains("service_completed_successfully"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
}

#[test]
fn ctrl_c_stops_an_attached_up() {
    let stack = Stack::new(
        r#"
name: itattached
services:
  talker:
    command: ["sh", "-c", "echo hello from talker; while true; do sleep 0.1; done"]
"#,
    );
    let mut up = Command::new(assert_cmd::cargo::cargo_bin("wharf"))
        .arg("up")
        .env_clear()
        .env("WHARF_STATE_DIR", stack.state())
        .current_dir(stack.app())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(up.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line of output").unwrap();
    assert_eq!(first, "talker-1 | hello from talker");
    signal(up.id(), Signal::SIGINT);
    let code = up.wait().unwrap();
    assert_eq!(code.code(), Some(130));
    // Stopped, not taken down: the instance is still known, as exited.
    let talker = stack.instance("itattached-talker-1").unwrap();
    assert_eq!(talker["status"], "exited");
}

#[test]
fn a_restarted_daemon_brings_back_what_the_restart_policies_say() {
    let stack = Stack::new(
        r#"
name: itrestore
services:
  keeper:
    command: ["sh", "-c", "while true; do sleep 0.1; done"]
    restart: always
  once:
    command: ["sh", "-c", "while true; do sleep 0.1; done"]
    restart: "no"
  migrate:
    command: ["sh", "-c", "echo ran >> migrations"]
    restart: on-failure
"#,
    );
    stack
        .wharf()
        .args(["up", "-d", "--wait"])
        .assert()
        .success();
    let before = stack.ps();
    let old = pids(&before);
    assert_eq!(old.len(), 2, "{before:?}");
    let daemon = stack.daemon_pid().expect("a daemon runs");

    // SIGKILL: the daemon cannot clean up; the no-orphan guarantee kills its instances.
    signal(daemon, Signal::SIGKILL);
    assert!(
        wait_gone(daemon, Duration::from_secs(10)),
        "the daemon survived SIGKILL"
    );
    for pid in &old {
        assert!(
            wait_gone(*pid, Duration::from_secs(10)),
            "instance process {pid} outlived its daemon"
        );
    }

    // Any verb starts a new daemon, which brings back `always` but not `no`.
    let keeper = stack.wait_for("itrestore-keeper-1", Duration::from_secs(20), |i| {
        i["status"] == "running"
    });
    assert_ne!(stack.daemon_pid(), Some(daemon));
    let pid = u32::try_from(keeper["pid"].as_u64().unwrap()).unwrap();
    assert!(!old.contains(&pid));
    assert!(alive(pid));
    let once = stack.instance("itrestore-once-1");
    assert!(
        once.as_ref().is_none_or(|i| i["status"] != "running"),
        "the `restart: \"no\"` service came back: {once:?}"
    );
    // An `on-failure` one-shot that completed is not run again.
    assert_eq!(
        stack.instance("itrestore-migrate-1"),
        None,
        "the completed one-shot came back"
    );
    let runs = std::fs::read_to_string(stack.app().join("migrations")).expect("it ran once");
    assert_eq!(runs, "ran\n");
}

/// docker/compose issue 8925: `logs -f` must go on after the instance restarts.
#[test]
fn following_logs_continues_across_a_restart() {
    let stack = Stack::new(
        r#"
name: itfollow
services:
  svc:
    # Counts its runs in a file of the project directory (its working directory).
    command: ["sh", "-c", "n=$$(($$(cat runs 2>/dev/null || echo 0) + 1)); echo $$n > runs; echo run $$n; while true; do sleep 0.1; done"]
"#,
    );
    stack
        .wharf()
        .args(["up", "-d", "--wait"])
        .assert()
        .success();
    let mut follow = Command::new(assert_cmd::cargo::cargo_bin("wharf"))
        .args(["logs", "-f", "svc"])
        .env_clear()
        .env("WHARF_STATE_DIR", stack.state())
        .current_dir(stack.app())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let out = follow.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    let next = || {
        rx.recv_timeout(Duration::from_secs(30))
            .expect("a line from `logs -f` within 30 s")
    };
    assert_eq!(next(), "svc-1 | run 1");
    stack.wharf().args(["restart", "svc"]).assert().success();
    assert_eq!(next(), "svc-1 | run 2");
    signal(follow.id(), Signal::SIGINT);
    assert!(follow.wait().unwrap().success());
}
