//! Forking the shim: the command line, the raw-syscall `pre_exec`, and the one long-lived thread
//! every fork happens on.
//!
//! `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits. A shim forked from a
//! tokio worker or blocking-pool thread would be killed when that thread retires (blocking
//! threads do after a few idle seconds) or when a test's runtime shuts down. So forks happen on
//! one thread that lives as long as the process: the death signal then means the daemon died.

use std::collections::BTreeMap;
use std::io::{self, PipeReader};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::AssertUnwindSafe;
use std::process::Stdio;
use std::sync::{OnceLock, mpsc};

use nix::libc;
use rustix::process::{Pid, Signal};
use rustix::thread::UnshareFlags;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use super::{NativeConfig, pidfd};
use crate::shim::report::{self, Report};
use crate::shim::{Mode, ShimArgs};

/// What to run the shim with.
pub(super) struct Launch<'a> {
    pub(super) config: &'a NativeConfig,
    pub(super) args: ShimArgs,
    pub(super) environment: &'a BTreeMap<String, String>,
    pub(super) stdout: Stdio,
    pub(super) stderr: Stdio,
}

/// A running shim, not yet reaped.
pub(super) struct ShimProcess {
    pub(super) child: Child,
    pub(super) pid: u32,
    pub(super) pidfd: OwnedFd,
    status: PipeReader,
}

impl ShimProcess {
    /// Reads the status pipe to its end: the program exec'd, or failed to (an `error` report),
    /// or the shim died.
    pub(super) async fn reports(&mut self) -> io::Result<Vec<Report>> {
        let fd = OwnedFd::from(self.status.try_clone()?);
        let mut pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(fd)?;
        let mut bytes = Vec::new();
        pipe.read_to_end(&mut bytes).await?;
        Ok(report::parse(&bytes))
    }
}

pub(super) async fn spawn_shim(launch: Launch<'_>) -> io::Result<ShimProcess> {
    let Launch {
        config,
        mut args,
        environment,
        stdout,
        stderr,
    } = launch;
    let (program, prefix) = config
        .shim
        .split_first()
        .ok_or_else(|| io::Error::other("no shim program is configured"))?;
    let (status_read, status_write) = io::pipe()?;
    let mut status_write = OwnedFd::from(status_write);
    if status_write.as_raw_fd() <= 2 {
        // The child's stdio is set up before `pre_exec` runs: keep clear of 0, 1 and 2.
        status_write = rustix::io::fcntl_dupfd_cloexec(&status_write, 3)?;
    }
    let daemon = rustix::process::getpid();
    args.status_fd = Some(status_write.as_raw_fd());
    args.parent = Some(daemon.as_raw_nonzero().get());

    let mut cmd = Command::new(program);
    cmd.args(prefix)
        .args(args.to_args())
        .env_clear()
        .envs(environment)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    // In reaper mode the shim must outlive the daemon long enough to sweep: a catchable signal.
    let death_signal = match args.mode {
        Mode::Reaper => Signal::TERM,
        Mode::Init | Mode::Exec => Signal::KILL,
    };
    let hook = shim_pre_exec(
        daemon,
        status_write.as_raw_fd(),
        death_signal,
        args.mode == Mode::Init,
    );
    // SAFETY: the hook only makes raw syscalls (async-signal-safe) and allocates nothing.
    unsafe { cmd.pre_exec(hook) };

    let (child, pidfd) = on_spawner_thread(cmd).await?;
    // Only the shim (and, until its exec, the program) may hold the write end now.
    drop(status_write);
    let pid = child
        .id()
        .ok_or_else(|| io::Error::other("the shim has no pid"))?;
    Ok(ShimProcess {
        child,
        pid,
        pidfd,
        status: status_read,
    })
}

/// Runs in the forked child, before exec: raw syscalls only.
fn shim_pre_exec(
    daemon: Pid,
    status_fd: RawFd,
    death_signal: Signal,
    new_pid_namespace: bool,
) -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
    move || {
        // Its own session and process group: the terminal's Ctrl-C reaches the daemon only.
        rustix::process::setsid()?;
        rustix::process::set_parent_process_death_signal(Some(death_signal))?;
        // The daemon may have died between fork and prctl: then no signal will ever come.
        if rustix::process::getppid() != Some(daemon) {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        if new_pid_namespace {
            // SAFETY: a new PID namespace for future children shares no memory or descriptors.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWPID)? };
        }
        // SAFETY: the descriptor is open in the parent, so in this copy of it too.
        let fd = unsafe { BorrowedFd::borrow_raw(status_fd) };
        rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
        Ok(())
    }
}

type Job = Box<dyn FnOnce() + Send>;

fn spawner() -> io::Result<&'static mpsc::Sender<Job>> {
    static SPAWNER: OnceLock<Result<mpsc::Sender<Job>, String>> = OnceLock::new();
    SPAWNER
        .get_or_init(|| {
            let (jobs, queue) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name("wharf-spawner".into())
                .spawn(move || {
                    for job in queue {
                        // A panicking job must not end the thread: every shim would die with it.
                        let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                    }
                })
                .map(|_| jobs)
                .map_err(|e| format!("cannot start the spawner thread: {e}"))
        })
        .as_ref()
        .map_err(|e| io::Error::other(e.clone()))
}

/// Spawns `cmd` on the spawner thread, registered with the caller's tokio runtime, and opens a
/// pidfd for it before anything can reap it.
pub(super) async fn on_spawner_thread(mut cmd: Command) -> io::Result<(Child, OwnedFd)> {
    let runtime = tokio::runtime::Handle::current();
    let (reply, replied) = oneshot::channel();
    let job: Job = Box::new(move || {
        let _entered = runtime.enter();
        let result = cmd.spawn().and_then(|mut child| {
            let opened = child
                .id()
                .ok_or_else(|| io::Error::other("the shim has no pid"))
                .and_then(pidfd::open);
            match opened {
                Ok(fd) => Ok((child, fd)),
                Err(e) => {
                    let _ = child.start_kill();
                    Err(e)
                }
            }
        });
        // Closes the command's copies of the child's pipe ends.
        drop(cmd);
        let _ = reply.send(result);
    });
    let gone = || io::Error::other("the spawner thread is gone");
    spawner()?.send(job).map_err(|_| gone())?;
    replied.await.map_err(|_| gone())?
}

/// Spawns a command with `clone(CLONE_VM | CLONE_VFORK)` on the spawner thread (see
/// `native/vfork.rs`); the outer error when it could not be tried at all.
pub(super) async fn vfork_on_spawner_thread(
    spawn: super::vfork::Spawn,
) -> io::Result<Result<super::vfork::Spawned, super::vfork::Failure>> {
    let daemon = rustix::process::getpid();
    let (reply, replied) = oneshot::channel();
    let job: Job = Box::new(move || {
        let result = super::vfork::spawn(&spawn, daemon);
        // Closes the parent's copies of the child's descriptors.
        drop(spawn);
        let _ = reply.send(result);
    });
    let gone = || io::Error::other("the spawner thread is gone");
    spawner()?.send(job).map_err(|_| gone())?;
    replied.await.map_err(|_| gone())?
}
