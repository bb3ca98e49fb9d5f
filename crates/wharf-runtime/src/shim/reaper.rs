//! What the shim and its init do while the program runs: wait for signals (all catchable ones
//! are blocked and taken with `sigwaitinfo`, so no handler ever runs), forward them, reap
//! children, and notice the daemon's death. Plus the sweep that kills whatever a program left
//! behind when there is no PID namespace to do it.

use std::ptr;

use nix::libc;
use nix::sys::signal::{SigSet, SigmaskHow, Signal as NixSignal, sigprocmask};
use nix::unistd::getppid;

/// Signals the shim never blocks: the uncatchable ones, and faults, which must kill the shim
/// rather than be forwarded.
const UNBLOCKED: [NixSignal; 9] = [
    NixSignal::SIGKILL,
    NixSignal::SIGSTOP,
    NixSignal::SIGSEGV,
    NixSignal::SIGBUS,
    NixSignal::SIGFPE,
    NixSignal::SIGILL,
    NixSignal::SIGTRAP,
    NixSignal::SIGSYS,
    NixSignal::SIGABRT,
];

/// Blocks every other signal (before the first fork, so none is lost) and returns the set to
/// wait on.
pub(super) fn block_signals() -> nix::Result<SigSet> {
    let mut set = SigSet::all();
    for s in UNBLOCKED {
        set.remove(s);
    }
    sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None)?;
    Ok(set)
}

/// In the forked program, just before exec: default dispositions (the Rust runtime ignores
/// SIGPIPE, and ignored signals survive exec) and an empty mask.
pub(super) fn restore_signals() {
    for sig in 1..=libc::SIGRTMAX() {
        if sig != libc::SIGKILL && sig != libc::SIGSTOP {
            // SAFETY: resetting a disposition to its default; fails harmlessly for signals the
            // C library reserves.
            unsafe { libc::signal(sig, libc::SIG_DFL) };
        }
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// Where forwarded signals go.
#[derive(Clone, Copy)]
pub(super) enum Target {
    /// The init (its own forwarding reaches the program's group).
    Process(i32),
    /// The program and its process group.
    Group(i32),
}

impl Target {
    fn pid(self) -> i32 {
        match self {
            Target::Process(pid) | Target::Group(pid) => pid,
        }
    }

    fn send(self, sig: i32) {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            match self {
                Target::Process(pid) => {
                    libc::kill(pid, sig);
                }
                Target::Group(pid) => {
                    if libc::kill(-pid, sig) != 0 {
                        libc::kill(pid, sig);
                    }
                }
            }
        }
    }
}

pub(super) enum Wake {
    /// The target exited; its status as an exit code (128+N when killed by signal N).
    Exited(i32),
    /// The daemon died (this process was reparented).
    ParentDied,
}

/// Forwards every signal to `target` and reaps every child until `target` exits, or until the
/// parent `parent` is gone.
pub(super) fn forward_until_exit(blocked: &SigSet, target: Target, parent: Option<i32>) -> Wake {
    loop {
        // Reap before waiting: covers a child that exited before we got here.
        if let Some(code) = reap(target.pid()) {
            return Wake::Exited(code);
        }
        let sig = wait_signal(blocked);
        if sig == libc::SIGCHLD {
            continue;
        }
        if parent.is_some_and(|p| getppid().as_raw() != p) {
            return Wake::ParentDied;
        }
        target.send(sig);
    }
}

fn wait_signal(set: &SigSet) -> i32 {
    loop {
        // SAFETY: `set` is a valid signal set; no siginfo is asked for.
        let sig = unsafe { libc::sigwaitinfo(set.as_ref(), ptr::null_mut()) };
        if sig > 0 {
            return sig;
        }
        if nix::errno::Errno::last() != nix::errno::Errno::EINTR {
            // Cannot happen with a valid set; reaping is always a safe thing to try.
            return libc::SIGCHLD;
        }
    }
}

/// Reaps every child that has exited; returns `child`'s status if it was one of them.
fn reap(child: i32) -> Option<i32> {
    let mut exited = None;
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return exited;
        }
        if pid == child {
            exited = Some(exit_code(status));
        }
    }
}

/// A wait status as Docker reports it: the exit code, or 128+N for a process killed by signal N.
pub(super) fn exit_code(status: i32) -> i32 {
    if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        255
    }
}

/// Without a PID namespace, what the kernel would otherwise do for us: SIGKILL the program's
/// process group and then every child of this (subreaper) process, again and again as orphans
/// are reparented to us, until there is no child left. Only ever kills our own descendants.
pub(super) fn sweep(program: i32) {
    let me = std::process::id() as i32;
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(-program, libc::SIGKILL);
        libc::kill(program, libc::SIGKILL);
    }
    let mut chld = SigSet::empty();
    chld.add(NixSignal::SIGCHLD);
    let pause = libc::timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    loop {
        for pid in children_of(me) {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
        loop {
            let mut status = 0;
            // SAFETY: `status` is a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid == 0 {
                break; // children left, none exited yet
            }
            if pid < 0 {
                return; // ECHILD: nothing left
            }
        }
        // Reparenting raises no SIGCHLD: bound the wait and scan again.
        // SAFETY: valid set and timeout; no siginfo is asked for.
        unsafe { libc::sigtimedwait(chld.as_ref(), ptr::null_mut(), &pause) };
    }
}

/// The pids whose parent is `parent`, from `/proc/<pid>/stat`.
fn children_of(parent: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|entry| {
        let pid: i32 = entry.ok()?.file_name().to_str()?.parse().ok()?;
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        (parent_in_stat(&stat)? == parent).then_some(pid)
    })
    .collect()
}

/// The 4th field of `/proc/<pid>/stat`, after the command name (which may contain anything).
fn parent_in_stat(stat: &str) -> Option<i32> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_parent_from_stat() {
        assert_eq!(parent_in_stat("12 (sh) S 7 12 12 0 -1"), Some(7));
        assert_eq!(parent_in_stat("12 (a) (b) c) R 99 1"), Some(99));
        assert_eq!(parent_in_stat("garbage"), None);
    }

    #[test]
    fn maps_wait_statuses_like_docker() {
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(libc::SIGKILL), 137);
        assert_eq!(exit_code(libc::SIGTERM), 143);
    }
}
