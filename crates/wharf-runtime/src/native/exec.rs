//! `Runtime::exec`, natively: a command in an instance's context (environment, working
//! directory, user, and its network: [`sandbox_of`]), through the shim in `exec` mode,
//! in a session of its own. At its timeout, or when it exits, its whole process group is
//! SIGKILLed: an exec (a health check, mostly) leaves nothing behind.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::process::Stdio;
use std::time::Duration;

use nix::libc;
use rustix::process::{WaitId, WaitIdOptions, waitid};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::time::Instant;
use wharf_net::{Networking, Sandbox};

use super::spawner::{Launch, spawn_shim};
use super::start::OUTPUT_DRAIN_GRACE;
use super::{NativeConfig, describe, exit_code, pidfd, shim_failure};
use crate::shim::report::Report;
use crate::shim::{Mode, ShimArgs};
use crate::{ExecOutput, ExitStatus, InstanceHandle, RuntimeError};

/// How much of an exec's output is kept: its end.
const OUTPUT_TAIL: usize = 4096;

/// How an `exec` enters the instance's network: the namespace to join and the files to
/// bind-mount (its `/etc/hosts` and `/etc/resolv.conf`); nothing when it has no network of its own.
pub(super) async fn sandbox_of(
    net: Option<&Networking>,
    instance: &dyn InstanceHandle,
) -> Option<Sandbox> {
    net?.sandbox(&instance.spec().name).await
}

/// `wharf exec`: the shim in `exec` mode, so that the command joins the instance's network
/// namespace, sees its `/etc/hosts` and runs as its user in its directory, with the caller's
/// standard streams. `None` when the instance has no sandbox: the caller runs the command itself.
pub(super) async fn interactive_command(
    config: &NativeConfig,
    net: Option<&Networking>,
    instance: &dyn InstanceHandle,
    argv: &[String],
) -> Option<Vec<OsString>> {
    let sandbox = sandbox_of(net, instance).await?;
    let spec = instance.spec();
    let mut args = ShimArgs::new(
        &spec.name,
        Mode::Exec,
        argv.iter().map(OsString::from).collect(),
    );
    args.user = spec.user.clone();
    args.workdir = Some(spec.working_dir.clone());
    args.namespaces.push(sandbox.netns);
    args.binds = sandbox.binds;
    let mut command = config.shim.clone();
    command.extend(args.to_args());
    Some(command)
}

pub(super) async fn exec(
    config: &NativeConfig,
    net: Option<&Networking>,
    instance: &dyn InstanceHandle,
    argv: &[String],
    timeout: Duration,
) -> Result<ExecOutput, RuntimeError> {
    let deadline = Instant::now() + timeout;
    let spec = instance.spec();
    let program = argv.first().cloned().unwrap_or_default();
    let fail = |reason: String| RuntimeError::Start {
        instance: spec.name.clone(),
        program: program.clone(),
        reason,
    };
    if argv.is_empty() {
        return Err(fail("no command to run".into()));
    }
    let (out_read, out_write) =
        io::pipe().map_err(|e| fail(format!("cannot create a pipe: {}", describe(&e))))?;
    let out_write2 = out_write
        .try_clone()
        .map_err(|e| fail(format!("cannot duplicate a pipe: {}", describe(&e))))?;
    let mut args = ShimArgs::new(
        &spec.name,
        Mode::Exec,
        argv.iter().map(OsString::from).collect(),
    );
    args.user = spec.user.clone();
    args.workdir = Some(spec.working_dir.clone());
    if let Some(sandbox) = sandbox_of(net, instance).await {
        args.namespaces.push(sandbox.netns);
        args.binds = sandbox.binds;
    }
    let mut shim = spawn_shim(Launch {
        config,
        args,
        environment: &spec.environment,
        stdout: Stdio::from(out_write),
        stderr: Stdio::from(out_write2),
    })
    .await
    .map_err(|e| fail(shim_failure(config, &e, false)))?;

    let (stop, stopped) = oneshot::channel();
    let mut collector = tokio::spawn(collect_tail(OwnedFd::from(out_read), stopped));

    // The shim's report comes before the command runs: its time counts against the timeout.
    let reported = tokio::time::timeout_at(deadline, shim.reports()).await;
    let in_time = reported.is_ok();
    let error = match reported {
        Ok(Ok(reports)) => reports.into_iter().find_map(|r| match r {
            Report::Error(reason) => Some(reason),
            Report::ProcessPid(_) => None,
        }),
        Ok(Err(e)) => Some(format!("cannot read the shim's report: {}", describe(&e))),
        Err(_) => None,
    };
    let finished = error.is_some()
        || (in_time
            && tokio::time::timeout_at(deadline, exited(&shim.pidfd))
                .await
                .is_ok());
    let group = shim.pid as i32;
    // The command is still unreaped (alive or a zombie): its pid is still its group's id.
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(-group, libc::SIGKILL) };
    let status = shim.child.wait().await;
    if let Some(reason) = error {
        collector.abort();
        return Err(fail(reason));
    }

    let tail = match tokio::time::timeout(OUTPUT_DRAIN_GRACE, &mut collector).await {
        Ok(joined) => joined.unwrap_or_default(),
        Err(_) => {
            let _ = stop.send(());
            collector.await.unwrap_or_default()
        }
    };
    let status = finished.then(|| ExitStatus::Code(exit_code(status)));
    Ok(ExecOutput {
        status,
        output: tail_text(&tail),
    })
}

/// Waits for the command's exit without reaping it (so that its process group can still be
/// killed safely); falls back to polling when the pidfd cannot be watched.
async fn exited(pidfd: &OwnedFd) {
    if pidfd::exited(pidfd).await.is_ok() {
        return;
    }
    let options = WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT;
    while let Ok(None) = waitid(WaitId::PidFd(pidfd.as_fd()), options) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the combined output to its end (or until told to stop), keeping the last bytes.
async fn collect_tail(pipe: OwnedFd, mut stop: oneshot::Receiver<()>) -> Vec<u8> {
    let mut tail = Vec::new();
    let Ok(mut pipe) = tokio::net::unix::pipe::Receiver::from_owned_fd(pipe) else {
        return tail;
    };
    let mut chunk = vec![0u8; 8192];
    loop {
        tokio::select! {
            read = pipe.read(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    tail.extend_from_slice(&chunk[..n]);
                    if tail.len() > 2 * OUTPUT_TAIL {
                        tail.drain(..tail.len() - OUTPUT_TAIL);
                    }
                }
            },
            _ = &mut stop => break,
        }
    }
    tail
}

/// The last [`OUTPUT_TAIL`] bytes, starting at a character boundary, as text.
fn tail_text(bytes: &[u8]) -> String {
    let mut start = bytes.len().saturating_sub(OUTPUT_TAIL);
    let limit = (start + 3).min(bytes.len());
    while start < limit && bytes[start] & 0xC0 == 0x80 {
        start += 1;
    }
    String::from_utf8_lossy(&bytes[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_end_of_the_output_on_a_character_boundary() {
        assert_eq!(tail_text(b"short"), "short");
        let mut long = "é".repeat(OUTPUT_TAIL).into_bytes();
        long.extend(b"end");
        let text = tail_text(&long);
        assert!(text.ends_with("end"));
        assert!(!text.contains('\u{fffd}'));
        assert!(text.len() <= OUTPUT_TAIL);
    }
}
