//! `up --wait --wait-timeout N` returns at its deadline whatever the instances are doing, on both
//! runtimes, and says why: which instance waits on which, where that one is, its restarts and
//! what its last health check said.
//!
//! Pins the bug where `up --wait --wait-timeout 10` never returned when a service waited
//! (`service_healthy`) on a dependency that kept restarting and so never became healthy nor
//! unhealthy: natively it was still waiting at 45 s, on Docker it hung 6 min 40 s with
//! `--wait-timeout 300`, because the timeout was only applied once every instance had started.

use std::time::{Duration, Instant};

use crate::docker::{Cleanup, busybox_context, engine};
use crate::stack::Stack;

/// The `--wait-timeout` the tests give.
const TIMEOUT: &str = "10";

/// A bound for a 10 s timeout on a shared, noisy machine: what must not happen is a wait that
/// goes on (the bug: 45 s, 6 min 40 s), not a return a few seconds late.
const RETURNS_WITHIN: Duration = Duration::from_secs(60);

/// db crash-loops (up 2 s, exit 1, restarted by its policy) before its health check, which
/// always fails, could count enough failures to call it unhealthy; web waits for it to be
/// healthy. `{image}` is empty natively.
fn compose(project: &str, image: &str) -> String {
    format!(
        r#"
name: {project}
services:
  db:
    {image}
    command: ["sh", "-c", "echo db starting; sleep 2; echo db gives up; exit 1"]
    restart: always
    healthcheck:
      test: ["CMD-SHELL", "echo not ready yet; exit 1"]
      interval: 500ms
      retries: 1000
  web:
    {image}
    command: ["sleep", "600"]
    depends_on:
      db: {{condition: service_healthy}}
"#
    )
}

/// Runs `wharf <args>` (an `up` with `--wait-timeout 10`) and checks that it failed, well
/// before the bound, with the reason; returns its standard error.
fn up_times_out(stack: &Stack, project: &str, args: &[&str], env: &[(&str, String)]) -> String {
    let mut cmd = stack.wharf();
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.args(args).timeout(RETURNS_WITHIN * 2);
    let t0 = Instant::now();
    let out = cmd.output().expect("wharf runs");
    let took = t0.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        !out.status.success() && out.status.code().is_some(),
        "{args:?} did not fail with an exit code: {:?}\n{stderr}",
        out.status
    );
    assert!(took < RETURNS_WITHIN, "{args:?} took {took:?}\n{stderr}");
    for part in [
        "timed out after 10s".to_string(),
        format!("{project}-web-1, which waits for `db` (service_healthy): {project}-db-1 is"),
        "last health check: ".to_string(),
        "not ready yet".to_string(),
    ] {
        assert!(stderr.contains(&part), "no `{part}` in:\n{stderr}");
    }
    // The dependency's restart count as `ps` gives it, when the message was written or since.
    let db = stack
        .instance(&format!("{project}-db-1"))
        .expect("db is an instance");
    let restarts = db["restarts"].as_u64().expect("a restart count");
    let said: u64 = stderr
        .split("restarted ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no restart count in:\n{stderr}"));
    assert!(
        said >= 1 && said <= restarts,
        "said restarted {said} times, ps says {restarts}:\n{stderr}"
    );
    // web was never started.
    let web = stack
        .instance(&format!("{project}-web-1"))
        .expect("web is an instance");
    assert_eq!(web["pid"], serde_json::Value::Null, "{web}");
    stderr
}

#[test]
fn up_wait_timeout_returns_natively_when_a_dependency_restarts_for_ever() {
    let stack = Stack::new(&compose("waitnative", ""));
    let up = ["up", "-d", "--wait", "--wait-timeout", TIMEOUT];
    let stderr = up_times_out(&stack, "waitnative", &up, &[]);
    assert!(stderr.contains("| db gives up"), "{stderr}");
    stack.wharf().args(["down"]).assert().success();
}

#[test]
fn up_wait_timeout_without_wait_bounds_the_dependency_waits() {
    // As in Docker Compose, `--wait-timeout` without `--wait` bounds the waits for
    // dependencies' conditions (`up` would otherwise wait as long as db restarts).
    let stack = Stack::new(&compose("waitnowait", ""));
    up_times_out(
        &stack,
        "waitnowait",
        &["up", "-d", "--wait-timeout", TIMEOUT],
        &[],
    );
    stack.wharf().args(["down"]).assert().success();
}

#[test]
fn up_wait_timeout_returns_on_docker_when_a_dependency_restarts_for_ever() {
    if !engine("up_wait_timeout_returns_on_docker_when_a_dependency_restarts_for_ever") {
        return;
    }
    let project = format!("wharf-wait-{}", std::process::id());
    let image = format!("{project}-bb:test");
    let stack = Stack::new(&compose(
        &project,
        &format!("image: {image}\n    pull_policy: never"),
    ));
    let _cleanup = Cleanup {
        stack: &stack,
        project: project.clone(),
        images: vec![image.clone()],
    };
    // The image is built before the clock starts (the timeout does not bound a build).
    let context = stack.app().join("bb");
    busybox_context(&context);
    let built = std::process::Command::new("docker")
        .args(["build", "-q", "-t", &image])
        .arg(&context)
        .output()
        .expect("the docker CLI runs");
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let env: Vec<(&str, String)> = ["PATH", "DOCKER_HOST"]
        .into_iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k, v)))
        .collect();
    let up = [
        "up",
        "-d",
        "--wait",
        "--wait-timeout",
        TIMEOUT,
        "--runtime",
        "docker",
    ];
    up_times_out(&stack, &project, &up, &env);
}
