//! `Runtime::exec`, natively: a command in an instance's context (environment, working
//! directory, user, and its network: [`sandbox_of`]), forked by the daemon and entering that
//! context itself (`native/enter.rs`), in a session of its own. At its timeout, or when it
//! exits, its whole process group is SIGKILLed: an exec (a health check, mostly) leaves nothing
//! behind. `wharf exec` (interactive) goes through the shim in `exec` mode instead: the CLI
//! runs it with its own standard streams.

use std::collections::HashMap;
use std::ffi::{CString, OsString};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::libc;
use rustix::process::{WaitId, WaitIdOptions, waitid};
use tokio::io::AsyncReadExt;
use tokio::sync::oneshot;
use tokio::time::Instant;
use wharf_net::{Networking, Sandbox};

use super::builtin::Builtin;
use super::enter::Context;
use super::spawner::vfork_on_spawner_thread;
use super::start::OUTPUT_DRAIN_GRACE;
use super::vfork;
use super::{NativeConfig, describe, pidfd};
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
    contexts: &Contexts,
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
    let context = contexts.get(net, instance).await.map_err(&fail)?;
    let (out_read, out_write) =
        io::pipe().map_err(|e| fail(format!("cannot create a pipe: {}", describe(&e))))?;
    let path = spec.environment.get("PATH").map(String::as_str);
    let candidates = candidates(&program, path).map_err(&fail)?;
    let builtin = Builtin::compile(argv, || found(&candidates));
    let spawn = vfork::Spawn {
        context: Arc::clone(&context),
        candidates,
        builtin,
        argv: c_strings(argv.iter().cloned()).map_err(&fail)?,
        envp: c_strings(spec.environment.iter().map(|(k, v)| format!("{k}={v}"))).map_err(&fail)?,
        stdin: std::fs::File::open("/dev/null")
            .map(OwnedFd::from)
            .map_err(|e| fail(format!("cannot open /dev/null: {}", describe(&e))))?,
        output: OwnedFd::from(out_write),
    };
    let spawned = vfork_on_spawner_thread(spawn)
        .await
        .map_err(|e| fail(format!("cannot start the command: {}", describe(&e))))?;
    let vfork::Spawned { pid, pidfd } = match spawned {
        Ok(spawned) => spawned,
        Err(failure) => {
            let error = io::Error::from_raw_os_error(failure.errno);
            let step = (failure.step != 0).then_some(failure.step);
            return Err(fail(context.failure(step, &error, path, &program)));
        }
    };

    let (stop, stopped) = oneshot::channel();
    let mut collector = tokio::spawn(collect_tail(OwnedFd::from(out_read), stopped));
    let finished = tokio::time::timeout_at(deadline, exited(&pidfd))
        .await
        .is_ok();
    // The command is still unreaped (alive or a zombie): its pid is still its group's id.
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    exited(&pidfd).await;
    let status = reap(&pidfd);

    let tail = match tokio::time::timeout(OUTPUT_DRAIN_GRACE, &mut collector).await {
        Ok(joined) => joined.unwrap_or_default(),
        Err(_) => {
            let _ = stop.send(());
            collector.await.unwrap_or_default()
        }
    };
    let status = finished.then_some(ExitStatus::Code(status));
    Ok(ExecOutput {
        status,
        output: tail_text(&tail),
    })
}

/// The [`Context`] of each running instance, prepared at its first `exec` (a probe runs many
/// times: the namespace is opened and the user resolved once per run), forgotten when it exits.
#[derive(Debug, Default)]
pub(super) struct Contexts {
    /// Instance name -> the pid of the shim of the run it was prepared for, and the context.
    by_instance: Mutex<HashMap<String, (u32, Arc<Context>)>>,
}

impl Contexts {
    async fn get(
        &self,
        net: Option<&Networking>,
        instance: &dyn InstanceHandle,
    ) -> Result<Arc<Context>, String> {
        let spec = instance.spec();
        let pid = instance.pid();
        if let Some((run, context)) = self.lock().get(&spec.name)
            && Some(*run) == pid
        {
            return Ok(Arc::clone(context));
        }
        let sandbox = sandbox_of(net, instance).await;
        let workdir = spec.working_dir.clone();
        let user = spec.user.clone();
        let context = match user {
            // Only a user lookup (NSS: files, maybe a directory service) may block.
            Some(user) => tokio::task::spawn_blocking(move || {
                Context::prepare(sandbox.as_ref(), &workdir, Some(&user))
            })
            .await
            .map_err(|e| format!("cannot prepare the command: {e}"))??,
            None => Context::prepare(sandbox.as_ref(), &workdir, None)?,
        };
        let context = Arc::new(context);
        if let Some(pid) = pid {
            self.lock()
                .insert(spec.name.clone(), (pid, Arc::clone(&context)));
        }
        Ok(context)
    }

    /// The run of `instance` whose shim was `pid` ended.
    pub(super) fn forget(&self, instance: &str, pid: u32) {
        let mut map = self.lock();
        if map.get(instance).is_some_and(|(run, _)| *run == pid) {
            map.remove(instance);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (u32, Arc<Context>)>> {
        self.by_instance.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where `execvp` would look for `program` with this `PATH` (unset: the C library's default).
fn candidates(program: &str, path: Option<&str>) -> Result<Vec<CString>, String> {
    if program.contains('/') {
        return c_strings(std::iter::once(program.to_string()));
    }
    let dirs = path.unwrap_or("/bin:/usr/bin");
    c_strings(dirs.split(':').map(|dir| match dir {
        "" => program.to_string(),
        dir => format!("{}/{program}", dir.trim_end_matches('/')),
    }))
}

/// The first of `candidates` that is an executable file, as `execvp` would run it; `None` when
/// a relative candidate comes first (it resolves in the instance's directory, not the daemon's).
fn found(candidates: &[CString]) -> Option<String> {
    for c in candidates {
        let path = c.to_str().ok()?;
        if !path.starts_with('/') {
            return None;
        }
        let executable = rustix::fs::access(path, rustix::fs::Access::EXEC_OK).is_ok()
            && std::fs::metadata(path).is_ok_and(|m| m.is_file());
        if executable {
            return Some(path.to_string());
        }
    }
    None
}

fn c_strings(items: impl Iterator<Item = String>) -> Result<Vec<CString>, String> {
    items
        .map(|s| {
            CString::new(s).map_err(|e| {
                let text = String::from_utf8_lossy(&e.into_vec()).replace('\0', "\\0");
                format!("`{text}` contains a NUL byte")
            })
        })
        .collect()
}

/// Reaps an exited child: its exit code, or 128+N when signal N killed it.
fn reap(pidfd: &OwnedFd) -> i32 {
    match waitid(WaitId::PidFd(pidfd.as_fd()), WaitIdOptions::EXITED) {
        Ok(Some(status)) => status
            .exit_status()
            .or_else(|| status.terminating_signal().map(|n| 128 + n))
            .unwrap_or(super::UNKNOWN_EXIT),
        _ => super::UNKNOWN_EXIT,
    }
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
    let mut chunk = Vec::with_capacity(8192);
    loop {
        chunk.clear();
        tokio::select! {
            read = pipe.read_buf(&mut chunk) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    tail.extend_from_slice(&chunk);
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
    fn looks_the_program_up_in_path_as_execvp_does() {
        let names = |program: &str, path: Option<&str>| -> Vec<String> {
            candidates(program, path)
                .unwrap()
                .into_iter()
                .map(|c| c.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            names("test", Some("/usr/local/bin:/usr/bin/::rel")),
            ["/usr/local/bin/test", "/usr/bin/test", "test", "rel/test"]
        );
        assert_eq!(names("./check.sh", Some("/usr/bin")), ["./check.sh"]);
        assert_eq!(names("true", None), ["/bin/true", "/usr/bin/true"]);
        assert!(candidates("a\0b", Some("/bin")).is_err());
    }

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
