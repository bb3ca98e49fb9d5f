//! Signals and kill: forwarded through the shim, exit statuses as Docker reports them.

use std::time::Duration;

use wharf_runtime::{ExitStatus, Runtime, RuntimeError, Signal};

use crate::support::*;

#[tokio::test]
async fn exit_by_signal_is_128_plus_n() {
    for ns in modes() {
        let rt = runtime(ns);
        let (_, status) = finish(rt.start(&sh("kill -USR1 $$")).await.expect("start")).await;
        assert_eq!(status, ExitStatus::Code(128 + 10), "pid_namespace={ns}");

        let mut started = rt
            .start(&sh("echo ready; exec sleep 1000"))
            .await
            .expect("start");
        wait_for_line(&mut started.output, "ready").await;
        started.handle.signal(Signal::TERM).expect("signal");
        let (_, status) = finish(started).await;
        assert_eq!(status, ExitStatus::Code(143));
        assert_eq!(status.to_string(), "exit code 143 (SIGTERM)");
    }
}

#[tokio::test]
async fn the_stop_signal_reaches_a_trap() {
    for ns in modes() {
        let spec = sh(r#"trap "echo bye; exit 3" TERM; echo ready; sleep 1000 & wait"#);
        let mut started = runtime(ns).start(&spec).await.expect("start");
        wait_for_line(&mut started.output, "ready").await;
        started.handle.signal(spec.stop_signal).expect("signal");
        let (lines, status) = finish(started).await;
        assert_eq!(status, ExitStatus::Code(3), "pid_namespace={ns}");
        assert_eq!(lines.last().map(|l| l.line.as_str()), Some("bye"));
    }
}

#[tokio::test]
async fn kill_ends_a_program_that_ignores_term_and_all_it_started() {
    for ns in modes() {
        let mut started = runtime(ns)
            .start(&sh(
                r#"trap "" TERM; sleep 1000 & setsid sleep 1000 & echo ready; wait"#,
            ))
            .await
            .expect("start");
        wait_for_line(&mut started.output, "ready").await;
        let procs = tree(started.handle.pid().expect("pid") as i32);
        started.handle.kill().expect("kill");
        let handle = started.handle.clone();
        let (_, status) = finish(started).await;
        assert_eq!(status, ExitStatus::Code(137), "pid_namespace={ns}");
        let left = survivors(&procs, Duration::ZERO).await;
        reap_leftovers(&left);
        assert!(left.is_empty(), "pid_namespace={ns}: {left:?}");

        let err = handle.signal(Signal::TERM).expect_err("signal after exit");
        assert!(
            matches!(&err, RuntimeError::Instance { reason, .. } if reason == "is not running")
        );
        assert!(handle.kill().is_err());
    }
}

/// The parent death signal follows the *thread* that forked: an instance started from a thread
/// that then exits must keep running.
#[test]
fn instances_outlive_the_thread_that_started_them() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    for ns in modes() {
        let handle = tokio.handle().clone();
        let starter = std::thread::spawn(move || {
            let spec = sh(r#"trap "echo alive; exit 0" USR1; echo ready; sleep 1000 & wait"#);
            let started = handle.block_on(runtime(ns).start(&spec)).expect("start");
            (nix::unistd::gettid().as_raw(), started)
        });
        let (tid, mut started) = starter.join().expect("starter thread");
        tokio.block_on(async {
            let task = format!("/proc/self/task/{tid}");
            let deadline = std::time::Instant::now() + PATIENCE;
            while std::path::Path::new(&task).exists() {
                assert!(std::time::Instant::now() < deadline, "thread {tid} lingers");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            // The thread is gone (its death signals were sent). A reply proves the shim lives.
            wait_for_line(&mut started.output, "ready").await;
            started.handle.signal(Signal::USR1).expect("signal");
            let (lines, status) = finish(started).await;
            assert_eq!(status, ExitStatus::Code(0), "pid_namespace={ns}");
            assert_eq!(lines.last().map(|l| l.line.as_str()), Some("alive"));
        });
    }
}
