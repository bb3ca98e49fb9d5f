//! Commands run in an instance's context straight from the daemon (`Runtime::exec`, so every
//! health probe): fork, enter the instance's network, files, directory and user with raw
//! syscalls, exec the command. No shim in between: a probe costs one fork and one exec of the
//! command itself, where going through the shim cost an exec of the whole wharf binary too.
//!
//! Everything that is not a raw syscall happens before the fork, once per run of the instance
//! ([`Context::prepare`]): the namespace is opened, the user resolved (NSS lookups, on a
//! blocking thread), the paths turned into C strings. The forked child ([`Context::pre_exec`])
//! then only makes async-signal-safe calls, in this order, as the shim's `exec` mode did:
//! session, parent death signal (and a check that the daemon did not die meanwhile), network
//! namespace, a private mount namespace with the instance's `/etc/hosts` and `/etc/resolv.conf`
//! bound over the machine's, working directory, user, parent death signal again (a user switch
//! clears it), default signal dispositions. When a step fails, the child writes which one on a
//! pipe before it reports the error, so that the message says what failed.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::libc;
use rustix::process::Pid;
use rustix::thread::{LinkNameSpaceType, UnshareFlags};
use wharf_net::Sandbox;

use crate::shim::user::{self, Credentials};

/// What a forked child needs to enter one run of an instance.
#[derive(Debug)]
pub(super) struct Context {
    netns: Option<(PathBuf, OwnedFd)>,
    /// `(source, target)`: the files bound in a private mount namespace (targets the machine
    /// does not have are left out, as the shim leaves them alone).
    binds: Vec<(PathBuf, CString, PathBuf, CString)>,
    workdir: (PathBuf, CString),
    /// `None` without a `user:`, or when the daemon does not run as root.
    credentials: Option<(String, Ids)>,
}

/// Credentials as the raw syscalls take them.
#[derive(Debug)]
struct Ids {
    uid: rustix::process::Uid,
    gid: rustix::process::Gid,
    groups: Vec<rustix::process::Gid>,
}

impl From<Credentials> for Ids {
    fn from(c: Credentials) -> Ids {
        Ids {
            uid: rustix::process::Uid::from_raw(c.uid.as_raw()),
            gid: rustix::process::Gid::from_raw(c.gid.as_raw()),
            groups: c
                .groups
                .iter()
                .map(|g| rustix::process::Gid::from_raw(g.as_raw()))
                .collect(),
        }
    }
}

/// The steps of [`Context::pre_exec`], as written on the failure pipe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Step {
    Session = 1,
    DeathSignal,
    DaemonGone,
    Netns,
    MountNamespace,
    PrivateMounts,
    Bind,
    Workdir,
    User,
}

impl Step {
    fn from_byte(b: u8) -> Option<(Step, usize)> {
        let steps = [
            Step::Session,
            Step::DeathSignal,
            Step::DaemonGone,
            Step::Netns,
            Step::MountNamespace,
            Step::PrivateMounts,
            Step::Bind,
            Step::Workdir,
            Step::User,
        ];
        // The low nibble is the step, the high one which bind failed.
        let step = steps.into_iter().find(|s| *s as u8 == b & 0x0f)?;
        Some((step, usize::from(b >> 4)))
    }
}

fn c_path(path: &Path, what: &str) -> Result<CString, String> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| format!("{what} {} contains a NUL byte", path.display()))
}

impl Context {
    /// Opens and resolves what the child will need. Blocking (user lookups): run it on a
    /// blocking thread.
    pub(super) fn prepare(
        sandbox: Option<&Sandbox>,
        workdir: &Path,
        user_spec: Option<&str>,
    ) -> Result<Context, String> {
        let netns = match sandbox {
            Some(s) => {
                let file = std::fs::File::open(&s.netns)
                    .map_err(|e| format!("cannot open namespace {}: {e}", s.netns.display()))?;
                Some((s.netns.clone(), OwnedFd::from(file)))
            }
            None => None,
        };
        let mut binds = Vec::new();
        for (source, target) in sandbox.map(|s| s.binds.as_slice()).unwrap_or_default() {
            // Each bind carries its index in the high nibble of a failure byte.
            if binds.len() >= 15 {
                return Err("too many files to bind into the instance".into());
            }
            if target.exists() {
                binds.push((
                    source.clone(),
                    c_path(source, "file")?,
                    target.clone(),
                    c_path(target, "file")?,
                ));
            }
        }
        let credentials = match user_spec {
            Some(u) if !u.is_empty() && rustix::process::geteuid().is_root() => {
                Some((u.to_string(), Ids::from(user::resolve(u)?)))
            }
            _ => None,
        };
        Ok(Context {
            netns,
            binds,
            workdir: (workdir.to_path_buf(), c_path(workdir, "working directory")?),
            credentials,
        })
    }

    /// The hook that runs in the forked child, before exec: raw syscalls only, no allocation.
    /// `failure` is the write end of a close-on-exec pipe that gets one byte when a step fails.
    pub(super) fn pre_exec(
        self: std::sync::Arc<Self>,
        daemon: Pid,
        failure: RawFd,
    ) -> impl FnMut() -> io::Result<()> + Send + Sync + 'static {
        move || {
            let fail = |step: Step, index: usize, e: io::Error| {
                let byte = [step as u8 | ((index as u8) << 4)];
                // SAFETY: the descriptor is open in the parent, so in this copy of it too.
                let fd = unsafe { BorrowedFd::borrow_raw(failure) };
                let _ = rustix::io::write(fd, &byte);
                e
            };
            let step = |step: Step, r: rustix::io::Result<()>| {
                r.map_err(|e| fail(step, 0, io::Error::from(e)))
            };
            // Its own session: its whole process group is killed after it (and at its timeout).
            step(Step::Session, rustix::process::setsid().map(|_| ()))?;
            step(
                Step::DeathSignal,
                rustix::process::set_parent_process_death_signal(Some(
                    rustix::process::Signal::KILL,
                )),
            )?;
            let daemon_alive = || {
                if rustix::process::getppid() == Some(daemon) {
                    Ok(())
                } else {
                    Err(rustix::io::Errno::SRCH)
                }
            };
            step(Step::DaemonGone, daemon_alive())?;
            if let Some((_, ns)) = &self.netns {
                step(
                    Step::Netns,
                    rustix::thread::move_into_link_name_space(
                        ns.as_fd(),
                        Some(LinkNameSpaceType::Network),
                    ),
                )?;
            }
            if !self.binds.is_empty() {
                // SAFETY: a new mount namespace for this (single-threaded) child only.
                step(Step::MountNamespace, unsafe {
                    rustix::thread::unshare_unsafe(UnshareFlags::NEWNS)
                })?;
                // Mounts of the machine still propagate in, none out (as `ip netns exec`).
                // SAFETY: plain mount(2) with valid C strings.
                let r = unsafe {
                    libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_SLAVE,
                        std::ptr::null(),
                    )
                };
                if r != 0 {
                    return Err(fail(Step::PrivateMounts, 0, io::Error::last_os_error()));
                }
                for (index, (_, source, _, target)) in self.binds.iter().enumerate() {
                    // SAFETY: plain mount(2) with valid C strings.
                    let r = unsafe {
                        libc::mount(
                            source.as_ptr(),
                            target.as_ptr(),
                            std::ptr::null(),
                            libc::MS_BIND,
                            std::ptr::null(),
                        )
                    };
                    if r != 0 {
                        return Err(fail(Step::Bind, index, io::Error::last_os_error()));
                    }
                }
            }
            step(
                Step::Workdir,
                rustix::process::chdir(self.workdir.1.as_c_str()),
            )?;
            if let Some((_, c)) = &self.credentials {
                let (uid, gid, groups) = (c.uid, c.gid, c.groups.as_slice());
                step(
                    Step::User,
                    rustix::thread::set_thread_groups(groups)
                        .and_then(|()| rustix::thread::set_thread_gid(gid))
                        .and_then(|()| rustix::thread::set_thread_uid(uid)),
                )?;
                // Cleared by the credential change: armed again, and checked again.
                step(
                    Step::DeathSignal,
                    rustix::process::set_parent_process_death_signal(Some(
                        rustix::process::Signal::KILL,
                    )),
                )?;
                step(Step::DaemonGone, daemon_alive())?;
            }
            for sig in 1..=libc::SIGRTMAX() {
                if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                    // SAFETY: resetting a disposition to its default (the daemon may ignore
                    // some); fails harmlessly for the signals the C library reserves.
                    unsafe { libc::signal(sig, libc::SIG_DFL) };
                }
            }
            Ok(())
        }
    }

    /// Why the child did not run the command: from the byte it wrote on the failure pipe
    /// (`None`: no step failed, the exec itself did) and the error `spawn` returned.
    pub(super) fn failure(
        &self,
        byte: Option<u8>,
        error: &io::Error,
        path: Option<&str>,
        program: &str,
    ) -> String {
        let reason = super::describe(error);
        let Some((step, index)) = byte.and_then(Step::from_byte) else {
            return exec_failure(error, path, program);
        };
        match step {
            Step::Session => format!("cannot create a session: {reason}"),
            Step::DeathSignal => format!("cannot set the parent death signal: {reason}"),
            Step::DaemonGone => "the daemon exited before the command started".into(),
            Step::Netns => {
                let path = self.netns.as_ref().map(|(p, _)| p.display().to_string());
                format!(
                    "cannot join namespace {}: {reason}",
                    path.unwrap_or_default()
                )
            }
            Step::MountNamespace => format!("cannot create a mount namespace: {reason}"),
            Step::PrivateMounts => format!("cannot make the mounts private: {reason}"),
            Step::Bind => match self.binds.get(index) {
                Some((source, _, target, _)) => format!(
                    "cannot bind {} over {}: {reason}",
                    source.display(),
                    target.display()
                ),
                None => format!("cannot bind a file: {reason}"),
            },
            Step::Workdir => format!("working directory {}: {reason}", self.workdir.0.display()),
            Step::User => {
                let user = self.credentials.as_ref().map(|(u, _)| u.as_str());
                format!(
                    "cannot switch to user `{}`: {reason}",
                    user.unwrap_or_default()
                )
            }
        }
    }
}

/// Why exec failed, as the shim says it (`path`: the command's `PATH`).
fn exec_failure(error: &io::Error, path: Option<&str>, program: &str) -> String {
    match error.raw_os_error() {
        Some(libc::ENOENT) if !program.contains('/') => match path {
            Some(path) => format!("not found in PATH ({path})"),
            None => "not found (PATH is not set)".into(),
        },
        Some(libc::ENOENT) => "no such file or directory (or its interpreter is missing)".into(),
        Some(libc::EACCES) => "permission denied (is it executable?)".into(),
        _ => super::describe(error),
    }
}

/// A pipe for the failing step's byte (and, from `native/vfork.rs`, the errno): the read end
/// non-blocking, both close-on-exec.
pub(super) fn failure_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = io::pipe()?;
    let read = OwnedFd::from(read);
    rustix::fs::fcntl_setfl(&read, rustix::fs::OFlags::NONBLOCK)?;
    Ok((read, OwnedFd::from(write)))
}
