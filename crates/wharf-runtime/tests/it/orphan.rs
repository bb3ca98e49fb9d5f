//! No orphans: when the process that supervises instances dies, even by SIGKILL, every process
//! of every instance dies too, grandchildren included (process-compose#49, #354, #520).
//!
//! The supervising process is this test binary run again (only `supervisor_process`, told what
//! to do by `WHARF_IT_SUPERVISOR`): it owns a `NativeRuntime`, starts an instance whose shell
//! starts two background sleeps, prints the shim's pid, and waits to be killed. The test
//! records the shim's process tree (shim, init, sh, both sleeps) from `/proc` (the pids the
//! shell itself would print are those of its PID namespace), SIGKILLs the supervisor, and checks
//! that the whole tree is gone within a deadline.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use wharf_runtime::Runtime;

use crate::support::*;

const ROLE: &str = "WHARF_IT_SUPERVISOR";
const SHIM_LINE: &str = "wharf-it-shim-pid ";

/// Not a test of its own: the supervising process of the tests below. Passes at once when run
/// directly.
#[test]
fn supervisor_process() {
    let Ok(role) = std::env::var(ROLE) else {
        return;
    };
    let tokio = tokio::runtime::Runtime::new().expect("tokio runtime");
    tokio.block_on(async {
        let rt = runtime(role == "pid-namespace");
        let mut started = rt
            .start(&sh("sleep 1000 & sleep 1000 & echo ready; wait"))
            .await
            .expect("start");
        wait_for_line(&mut started.output, "ready").await;
        println!("{SHIM_LINE}{}", started.handle.pid().expect("pid"));
        std::future::pending::<()>().await;
    });
}

async fn supervisor_sigkilled(pid_namespace: bool) {
    let role = if pid_namespace {
        "pid-namespace"
    } else {
        "no-pid-namespace"
    };
    let mut supervisor =
        tokio::process::Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "orphan::supervisor_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ROLE, role)
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("supervisor");
    let stdout = supervisor.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let shim: i32 = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            // libtest prints `test <name> ... ` on the same line first.
            if let Some(at) = line.find(SHIM_LINE) {
                return line[at + SHIM_LINE.len()..].trim().parse().expect("pid");
            }
        }
        panic!("the supervisor ended without starting the instance");
    })
    .await
    .expect("the supervisor did not start the instance in time");

    let procs = tree(shim);
    let names: Vec<String> = procs.iter().map(command_name).collect();
    // shim, init (with a namespace), sh, sleep, sleep
    let expected = if pid_namespace { 5 } else { 4 };
    assert_eq!(procs.len(), expected, "instance processes: {names:?}");

    supervisor.start_kill().expect("SIGKILL the supervisor");
    supervisor.wait().await.expect("reap the supervisor");
    let killed = Instant::now();
    let left = survivors(&procs, Duration::from_secs(10)).await;
    reap_leftovers(&left);
    eprintln!(
        "{role}: {} processes {names:?}; {} still running {:?} after the supervisor's SIGKILL",
        procs.len(),
        left.len(),
        killed.elapsed(),
    );
    assert!(left.is_empty(), "{role}: orphans survived: {left:?}");
}

#[tokio::test]
async fn no_orphans_when_the_supervisor_is_sigkilled_with_pid_namespace() {
    require_root!();
    supervisor_sigkilled(true).await;
}

#[tokio::test]
async fn no_orphans_when_the_supervisor_is_sigkilled_without_pid_namespace() {
    supervisor_sigkilled(false).await;
}
