//! `Runtime::start`, natively: the shim, its reports, the output readers and the exit watcher.

use std::ffi::OsString;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use nix::libc;
use tokio::sync::{mpsc, oneshot};

use wharf_net::Networking;

use super::exec::Contexts;
use super::handle::{KillTarget, NativeHandle};
use super::network::instance_def;
use super::output::forward_lines;
use super::spawner::{Launch, ShimProcess, spawn_shim};
use super::{NativeConfig, describe, exit_code, pidfd, shim_failure};
use crate::shim::report::Report;
use crate::shim::{Mode, ShimArgs};
use crate::{ExitStatus, InstanceSpec, RuntimeError, Started, Stream};

/// How long the shim may take to say whether the program started (it resolves the user and
/// forks twice; only a hung NSS lookup would take this long).
pub(super) const REPORT_TIMEOUT: Duration = Duration::from_secs(30);

/// After the shim exits, how long `exit` waits for the output readers to reach the end of the
/// pipes. Normally immediate (every process of the instance is gone); a process that escaped
/// while holding the pipe (see the gap) must not delay the exit for ever: the readers then go on
/// alone and `output` closes when they finish.
pub(super) const OUTPUT_DRAIN_GRACE: Duration = Duration::from_secs(1);

/// Lines buffered between the readers and the supervisor; a full buffer pushes back on the
/// instance's writes.
const OUTPUT_BUFFER: usize = 1024;

pub(super) async fn start(
    config: &NativeConfig,
    net: Option<&Arc<Networking>>,
    contexts: &Arc<Contexts>,
    spec: &InstanceSpec,
) -> Result<Started, RuntimeError> {
    let program = spec.argv.first().cloned().unwrap_or_default();
    let fail = |reason: String| RuntimeError::Start {
        instance: spec.name.clone(),
        program: program.clone(),
        reason,
    };
    if spec.argv.is_empty() {
        return Err(fail(
            "no command to run (the entrypoint and command are empty)".into(),
        ));
    }
    let mode = if config.pid_namespace {
        Mode::Init
    } else {
        Mode::Reaper
    };
    let mut args = ShimArgs::new(
        &spec.name,
        mode,
        spec.argv.iter().map(OsString::from).collect(),
    );
    args.user = spec.user.clone();
    args.workdir = Some(spec.working_dir.clone());
    // Its network, before anything runs: the program starts with its names and addresses.
    let net = match (net, instance_def(spec).map_err(&fail)?) {
        (Some(net), Some(def)) => {
            let sandbox = net.attach(&def).await.map_err(|e| fail(e.to_string()))?;
            args.namespaces.push(sandbox.netns);
            args.binds = sandbox.binds;
            Some(Arc::clone(net))
        }
        _ => None,
    };
    let detach = || async {
        if let Some(net) = &net {
            net.detach(&spec.name).await;
        }
    };
    let mut shim = match spawn_shim(Launch {
        config,
        args,
        environment: &spec.environment,
        stdout: Stdio::piped(),
        stderr: Stdio::piped(),
    })
    .await
    {
        Ok(shim) => shim,
        Err(e) => {
            detach().await;
            return Err(fail(shim_failure(config, &e, mode == Mode::Init)));
        }
    };

    let reports = match tokio::time::timeout(REPORT_TIMEOUT, shim.reports()).await {
        Ok(Ok(reports)) => reports,
        Ok(Err(e)) => {
            abandon(shim);
            detach().await;
            return Err(fail(format!(
                "cannot read the shim's report: {}",
                describe(&e)
            )));
        }
        Err(_) => {
            abandon(shim);
            detach().await;
            return Err(fail(format!(
                "the shim did not report within {}s whether the program started",
                REPORT_TIMEOUT.as_secs()
            )));
        }
    };
    if let Some(reason) = reports.iter().find_map(|r| match r {
        Report::Error(reason) => Some(reason.clone()),
        Report::ProcessPid(_) => None,
    }) {
        abandon(shim);
        detach().await;
        return Err(fail(reason));
    }
    let kill = reports
        .iter()
        .find_map(|r| match r {
            Report::ProcessPid(pid) => Some(*pid),
            Report::Error(_) => None,
        })
        .and_then(|pid| {
            // Fails only when that process is already gone; the shim then exits by itself.
            let pidfd = pidfd::open(pid).ok()?;
            Some(match mode {
                Mode::Init | Mode::Exec => KillTarget::Init { pidfd },
                Mode::Reaper => KillTarget::ProgramGroup {
                    pid: i32::try_from(pid).ok()?,
                    pidfd,
                },
            })
        })
        .unwrap_or(KillTarget::Shim);

    let (lines, output) = mpsc::channel(OUTPUT_BUFFER);
    let mut readers = Vec::new();
    if let Some(stdout) = shim.child.stdout.take() {
        readers.push(tokio::spawn(forward_lines(
            stdout,
            Stream::Stdout,
            lines.clone(),
        )));
    }
    if let Some(stderr) = shim.child.stderr.take() {
        readers.push(tokio::spawn(forward_lines(stderr, Stream::Stderr, lines)));
    }

    let (exited, exit) = oneshot::channel();
    let name = spec.name.clone();
    let ShimProcess {
        mut child,
        pid,
        pidfd,
        ..
    } = shim;
    let contexts = Arc::clone(contexts);
    tokio::spawn(async move {
        let code = exit_code(child.wait().await);
        contexts.forget(&name, pid);
        let drained = async {
            for reader in readers {
                let _ = reader.await;
            }
        };
        let _ = tokio::time::timeout(OUTPUT_DRAIN_GRACE, drained).await;
        // Before the exit is known: a restart attaches again after this.
        if let Some(net) = net {
            net.detach(&name).await;
        }
        let _ = exited.send(ExitStatus::Code(code));
    });

    Ok(Started {
        handle: Arc::new(NativeHandle {
            spec: spec.clone(),
            shim_pid: pid,
            shim: pidfd,
            kill,
        }),
        output,
        exit,
    })
}

/// A shim that failed to start the program (or to report): make sure it is gone, and reap it.
fn abandon(shim: ShimProcess) {
    let ShimProcess {
        mut child, pidfd, ..
    } = shim;
    let _ = pidfd::send(&pidfd, libc::SIGKILL);
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
}
