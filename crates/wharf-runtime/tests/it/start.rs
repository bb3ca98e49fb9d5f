//! Starting instances: output, exit codes, environment, working directory, start errors, and
//! what is left when the program exits.

use std::time::{Duration, SystemTime};

use wharf_runtime::{ExitStatus, Runtime, RuntimeError, Signal, Stream};

use crate::support::*;

#[tokio::test]
async fn output_lines_and_exit_code() {
    for ns in modes() {
        let before = SystemTime::now();
        let started = runtime(ns)
            .start(&sh("echo out; echo err >&2; printf partial; exit 7"))
            .await
            .expect("start");
        let (lines, status) = finish(started).await;
        assert_eq!(status, ExitStatus::Code(7), "pid_namespace={ns}");
        assert_eq!(texts(&lines, Stream::Stdout), ["out", "partial"]);
        assert_eq!(texts(&lines, Stream::Stderr), ["err"]);
        assert!(
            lines
                .iter()
                .all(|l| l.at >= before && l.at <= SystemTime::now())
        );
    }
}

#[tokio::test]
async fn environment_is_exactly_the_spec_and_working_dir_is_used() {
    let dir = temp_dir();
    for ns in modes() {
        let mut spec = spec(&["env"]);
        spec.environment
            .insert("GREETING".into(), "hello world".into());
        let (lines, status) = finish(runtime(ns).start(&spec).await.expect("start")).await;
        assert_eq!(status, ExitStatus::Code(0));
        assert_eq!(
            texts(&lines, Stream::Stdout),
            ["GREETING=hello world", "PATH=/usr/bin:/bin"],
            "nothing inherited from the daemon (pid_namespace={ns})"
        );

        let mut spec = crate::support::spec(&["pwd"]);
        spec.working_dir = dir.path().to_path_buf();
        let (lines, _) = finish(runtime(ns).start(&spec).await.expect("start")).await;
        assert_eq!(texts(&lines, Stream::Stdout), [canonical(dir.path())]);
    }
}

#[tokio::test]
async fn long_lines_are_split_and_bytes_that_are_not_utf8_replaced() {
    let started = runtime(false)
        .start(&sh(concat!(
            "head -c 70000 /dev/zero | tr '\\0' a; echo; ",
            "printf '\\377ok\\r\\n'; printf 'no newline'"
        )))
        .await
        .expect("start");
    let (lines, status) = finish(started).await;
    assert_eq!(status, ExitStatus::Code(0));
    let out = texts(&lines, Stream::Stdout);
    let lens: Vec<usize> = out.iter().map(String::len).collect();
    assert_eq!(lens[..2], [65536, 70000 - 65536]);
    assert_eq!(out[2..], ["\u{fffd}ok", "no newline"]);
}

#[tokio::test]
async fn a_missing_program_or_working_dir_is_a_start_error() {
    for ns in modes() {
        let rt = runtime(ns);
        let cases = [
            (
                spec(&["/nonexistent/wharf-prog"]),
                "no such file or directory",
            ),
            (
                spec(&["wharf-no-such-program"]),
                "not found in PATH (/usr/bin:/bin)",
            ),
            (
                {
                    let mut s = spec(&["true"]);
                    s.working_dir = "/nonexistent/dir".into();
                    s
                },
                "working directory /nonexistent/dir: no such file or directory",
            ),
            (spec(&[]), "no command to run"),
        ];
        for (spec, reason_part) in cases {
            let err = match rt.start(&spec).await {
                Err(e) => e,
                Ok(_) => panic!("{:?} started (pid_namespace={ns})", spec.argv),
            };
            let RuntimeError::Start {
                instance,
                program,
                reason,
            } = &err
            else {
                panic!("not a start error: {err:?}");
            };
            assert_eq!(instance, "it-svc-1");
            assert_eq!(program, spec.argv.first().map_or("", String::as_str));
            assert!(
                reason.contains(reason_part),
                "{reason:?} lacks {reason_part:?}"
            );
            assert!(
                err.to_string()
                    .starts_with("instance it-svc-1: cannot start `")
            );
        }
    }
}

/// `exit` resolves when everything the instance started is gone, even a process that left the
/// program's process group and session.
#[tokio::test]
async fn exit_comes_after_everything_the_instance_started_is_gone() {
    for ns in modes() {
        let started = runtime(ns)
            .start(&sh(
                "trap 'exit 0' USR1; setsid sh -c 'echo detached; exec sleep 1000' & wait",
            ))
            .await
            .expect("start");
        let mut started = started;
        wait_for_line(&mut started.output, "detached").await;
        let shim = started.handle.pid().expect("pid") as i32;
        let procs = tree(shim);
        let expected = if ns { 4 } else { 3 }; // shim, (init), sh, the detached one
        assert_eq!(procs.len(), expected, "pid_namespace={ns}: {procs:?}");
        started.handle.signal(Signal::USR1).expect("signal");
        let (_, status) = finish(started).await;
        assert_eq!(status, ExitStatus::Code(0));
        let left = survivors(&procs, Duration::ZERO).await;
        reap_leftovers(&left);
        assert!(
            left.is_empty(),
            "still running after exit (pid_namespace={ns}): {left:?}"
        );
    }
}
