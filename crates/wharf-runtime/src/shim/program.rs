//! The program to run, prepared before any fork (strings converted, user resolved, namespace
//! files opened), and the last steps of a forked child that turns into it.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::errno::Errno;
use nix::mount::{MsFlags, mount};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::prctl;
use nix::sys::signal::Signal as NixSignal;
use nix::unistd::{Uid, chdir, execvp, getppid, setgid, setgroups, setsid, setuid};

use super::args::ShimArgs;
use super::describe;
use super::user::{Credentials, resolve};

pub(super) struct Program {
    argv: Vec<CString>,
    workdir: Option<(PathBuf, CString)>,
    /// `None` when no user is given, or when the shim does not run as root.
    credentials: Option<(String, Credentials)>,
    namespaces: Vec<(PathBuf, File)>,
    /// `(source, target)` files to bind-mount in a private mount namespace.
    binds: Vec<(PathBuf, PathBuf)>,
}

/// How the child becomes the program.
pub(super) struct Become {
    /// `setsid` first: the program leads its own process group, which signals are forwarded to.
    pub(super) new_session: bool,
    /// The pid the child's parent had before the fork: if it changed, the parent died before
    /// the death signal was armed.
    pub(super) parent: Option<i32>,
}

fn c_string(s: &OsStr, what: &str) -> Result<CString, String> {
    CString::new(s.as_bytes()).map_err(|_| format!("{what} {s:?} contains a NUL byte"))
}

impl Program {
    pub(super) fn prepare(args: &ShimArgs) -> Result<Program, String> {
        let argv = args
            .argv
            .iter()
            .map(|a| c_string(a, "argument"))
            .collect::<Result<Vec<_>, _>>()?;
        if argv.is_empty() {
            return Err("no program given".into());
        }
        let workdir = match &args.workdir {
            Some(dir) => Some((dir.clone(), c_string(dir.as_os_str(), "working directory")?)),
            None => None,
        };
        let credentials = match &args.user {
            Some(user) if !user.is_empty() && Uid::effective().is_root() => {
                Some((user.clone(), resolve(user)?))
            }
            _ => None,
        };
        let namespaces = args
            .namespaces
            .iter()
            .map(|path| {
                File::open(path)
                    .map(|f| (path.clone(), f))
                    .map_err(|e| format!("cannot open namespace {}: {e}", path.display()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Program {
            argv,
            workdir,
            credentials,
            namespaces,
            binds: args.binds.clone(),
        })
    }

    /// Turns this process into the program. Returns only when that failed: the exit code (127
    /// when nothing could be run, 126 when the program exists but cannot be executed) and why.
    pub(super) fn exec(&self, how: &Become) -> (i32, String) {
        if how.new_session
            && let Err(e) = setsid()
        {
            return (127, format!("cannot create a session: {}", describe(e)));
        }
        for (path, ns) in &self.namespaces {
            if let Err(e) = setns(ns.as_fd(), CloneFlags::empty()) {
                let reason = format!("cannot join namespace {}: {}", path.display(), describe(e));
                return (127, reason);
            }
        }
        if let Err(reason) = self.bind_files() {
            return (127, reason);
        }
        if let Some((path, dir)) = &self.workdir
            && let Err(e) = chdir(dir.as_c_str())
        {
            return (
                127,
                format!("working directory {}: {}", path.display(), describe(e)),
            );
        }
        if let Some((user, c)) = &self.credentials {
            let switched = setgroups(&c.groups)
                .and_then(|()| setgid(c.gid))
                .and_then(|()| setuid(c.uid));
            if let Err(e) = switched {
                return (
                    127,
                    format!("cannot switch to user `{user}`: {}", describe(e)),
                );
            }
        }
        // Cleared by fork and by the credential change above: arm it last.
        if let Err(e) = prctl::set_pdeathsig(NixSignal::SIGKILL) {
            return (
                127,
                format!("cannot set the parent death signal: {}", describe(e)),
            );
        }
        if let Some(parent) = how.parent
            && getppid().as_raw() != parent
        {
            return (127, "the shim exited before the program started".into());
        }
        super::reaper::restore_signals();
        let Err(e) = execvp(&self.argv[0], &self.argv);
        self.exec_failure(e)
    }

    /// In a mount namespace of its own (mounts of the machine still propagate into it, none
    /// out), each bind file over its target, as `ip netns exec` does with `/etc/netns/<name>/`.
    /// A target the machine does not have is left alone.
    fn bind_files(&self) -> Result<(), String> {
        if self.binds.is_empty() {
            return Ok(());
        }
        unshare(CloneFlags::CLONE_NEWNS)
            .map_err(|e| format!("cannot create a mount namespace: {}", describe(e)))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_SLAVE,
            None::<&str>,
        )
        .map_err(|e| format!("cannot make the mounts private: {}", describe(e)))?;
        for (source, target) in &self.binds {
            if !target.exists() {
                continue;
            }
            mount(
                Some(source.as_path()),
                target.as_path(),
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| {
                format!(
                    "cannot bind {} over {}: {}",
                    source.display(),
                    target.display(),
                    describe(e)
                )
            })?;
        }
        Ok(())
    }

    fn exec_failure(&self, e: Errno) -> (i32, String) {
        let program = self.argv[0].to_string_lossy();
        match e {
            Errno::ENOENT if !program.contains('/') => match std::env::var("PATH") {
                Ok(path) => (127, format!("not found in PATH ({path})")),
                Err(_) => (127, "not found (PATH is not set)".into()),
            },
            Errno::ENOENT => (
                127,
                "no such file or directory (or its interpreter is missing)".into(),
            ),
            Errno::EACCES => (126, "permission denied (is it executable?)".into()),
            e => (126, describe(e)),
        }
    }
}
