//! `exec` in an instance's context: environment, working directory, user, output, timeout.

use std::time::Duration;

use wharf_runtime::{ExitStatus, Runtime, RuntimeError, Started};

use crate::support::*;

async fn running_instance(rt: &dyn Runtime, dir: &std::path::Path) -> Started {
    let mut spec = sh("echo ready; exec sleep 1000");
    spec.environment.insert("FOO".into(), "bar baz".into());
    spec.working_dir = dir.to_path_buf();
    if is_root() {
        spec.user = Some("nobody".into());
    }
    let mut started = rt.start(&spec).await.expect("start");
    wait_for_line(&mut started.output, "ready").await;
    started
}

#[tokio::test]
async fn exec_runs_with_the_instances_environment_directory_and_user() {
    let dir = temp_dir();
    let rt = runtime(is_root());
    let started = running_instance(&rt, dir.path()).await;
    let out = rt
        .exec(
            started.handle.as_ref(),
            &[
                "sh".into(),
                "-c".into(),
                "echo \"$FOO\"; pwd; id -un >&2; exit 4".into(),
            ],
            PATIENCE,
        )
        .await
        .expect("exec");
    let user = if is_root() { "nobody" } else { &*whoami() };
    assert_eq!(out.status, Some(ExitStatus::Code(4)));
    assert_eq!(
        out.output,
        format!("bar baz\n{}\n{user}\n", canonical(dir.path()))
    );
    started.handle.kill().expect("kill");
    finish(started).await;
}

fn whoami() -> String {
    let uid = nix::unistd::Uid::effective();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map_or(uid.to_string(), |u| u.name)
}

#[tokio::test]
async fn exec_timeout_kills_the_commands_process_group() {
    let dir = temp_dir();
    let rt = runtime(is_root());
    let started = running_instance(&rt, dir.path()).await;
    let out = rt
        .exec(
            started.handle.as_ref(),
            &[
                "sh".into(),
                "-c".into(),
                "echo $$; sleep 1000 & echo $!; sleep 1000".into(),
            ],
            Duration::from_millis(500),
        )
        .await
        .expect("exec");
    assert_eq!(out.status, None, "timed out");
    let procs: Vec<Proc> = out
        .output
        .lines()
        .map(|l| l.parse().expect("a pid"))
        .filter_map(proc)
        .collect();
    let left = survivors(&procs, PATIENCE).await;
    reap_leftovers(&left);
    assert!(left.is_empty(), "{left:?}");
    started.handle.kill().expect("kill");
    finish(started).await;
}

#[tokio::test]
async fn exec_keeps_the_end_of_long_output() {
    let rt = runtime(false);
    let started = running_instance(&rt, std::path::Path::new("/")).await;
    let script = "head -c 10000 /dev/zero | tr '\\0' a; echo; echo END";
    let out = rt
        .exec(
            started.handle.as_ref(),
            &["sh".into(), "-c".into(), script.into()],
            PATIENCE,
        )
        .await
        .expect("exec");
    assert_eq!(out.status, Some(ExitStatus::Code(0)));
    assert_eq!(out.output.len(), 4096);
    assert!(out.output.ends_with("aaa\nEND\n"));
    started.handle.kill().expect("kill");
    finish(started).await;
}

#[tokio::test]
async fn exec_of_a_missing_program_is_an_error() {
    let rt = runtime(false);
    let started = running_instance(&rt, std::path::Path::new("/")).await;
    let err = rt
        .exec(
            started.handle.as_ref(),
            &["wharf-no-such-check".into()],
            PATIENCE,
        )
        .await
        .expect_err("missing program");
    assert!(
        matches!(&err, RuntimeError::Start { program, reason, .. }
            if program == "wharf-no-such-check" && reason.starts_with("not found in PATH")),
        "{err}"
    );
    started.handle.kill().expect("kill");
    finish(started).await;
}

/// `test` and `[` are answered without an exec (`native/builtin.rs`), but in the instance's
/// directory and as its user, as the program would answer.
#[tokio::test]
async fn test_probes_answer_in_the_instances_directory_and_as_its_user() {
    use std::os::unix::fs::PermissionsExt;
    let dir = temp_dir();
    std::fs::write(dir.path().join("ready"), "yes").unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "root only").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let rt = runtime(is_root());
    let started = running_instance(&rt, dir.path()).await;
    let status = |argv: &[&str]| {
        let argv: Vec<String> = argv.iter().map(|s| s.to_string()).collect();
        let rt = &rt;
        let handle = started.handle.as_ref();
        async move { rt.exec(handle, &argv, PATIENCE).await.expect("exec").status }
    };
    let code = |n| Some(ExitStatus::Code(n));
    // Relative to the working directory.
    assert_eq!(status(&["test", "-f", "ready"]).await, code(0));
    assert_eq!(status(&["test", "-f", "missing"]).await, code(1));
    assert_eq!(status(&["[", "-s", "ready", "]"]).await, code(0));
    assert_eq!(status(&["/bin/sh", "-c", "test -d ."]).await, code(0));
    assert_eq!(status(&["/bin/sh", "-c", "[ ! -e ready ]"]).await, code(1));
    // As the instance's user: `nobody` cannot read a root-only file (root can).
    let readable = if is_root() { 1 } else { 0 };
    assert_eq!(status(&["test", "-r", "secret"]).await, code(readable));
    // What is not compiled still runs the program, with its own message.
    let out = rt
        .exec(
            started.handle.as_ref(),
            &["test".into(), "a".into(), "b".into()],
            PATIENCE,
        )
        .await
        .expect("exec");
    assert_eq!(out.status, code(2));
    assert!(out.output.starts_with("test: "), "{}", out.output);
    started.handle.kill().expect("kill");
    finish(started).await;
}
