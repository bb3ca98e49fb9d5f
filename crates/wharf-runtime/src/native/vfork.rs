//! Spawning a command without copying the daemon: `clone(CLONE_VM | CLONE_VFORK)`, as the C
//! library's `posix_spawn` does, with [`Context`]'s steps in the child.
//!
//! A `fork` of the daemon copies its page tables and then makes every page it writes a
//! copy-on-write fault with a TLB shootdown on the other cores; with health probes every few
//! milliseconds (`start_interval`) that was a sizeable part of the daemon's CPU time. A child that
//! shares the daemon's memory until it execs costs none of that. The price is the discipline of
//! `posix_spawn`: the child runs on a stack of its own, makes raw syscalls only (the same steps
//! as a `pre_exec` hook), and every signal is blocked on the spawning thread around the clone so
//! that no handler of the daemon runs in the child before it resets them all to their defaults.
//! The spawning thread is suspended until the child has exec'd or exited (`CLONE_VFORK`), so the
//! stack and everything the child reads stay valid.

use std::ffi::{CString, c_int, c_void};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use nix::libc;
use rustix::process::Pid;

use super::enter::Context;

/// The child's stack: the steps are a few frames of raw syscalls.
const STACK_SIZE: usize = 64 * 1024;

/// What the child execs, prepared (allocated) by the parent.
pub(super) struct Spawn {
    pub(super) context: Arc<Context>,
    /// Paths to try in order (`PATH` already searched, as `execvp` would).
    pub(super) candidates: Vec<CString>,
    /// Answered by the child itself instead of an exec (`native/builtin.rs`).
    pub(super) builtin: Option<super::builtin::Builtin>,
    pub(super) argv: Vec<CString>,
    pub(super) envp: Vec<CString>,
    pub(super) stdin: OwnedFd,
    /// Standard output and error (the same pipe).
    pub(super) output: OwnedFd,
}

/// A child that is running (or has exited, not yet reaped).
pub(super) struct Spawned {
    pub(super) pid: u32,
    pub(super) pidfd: OwnedFd,
}

/// Why a child did not exec: the step that failed (0: the exec itself) and the errno.
pub(super) struct Failure {
    pub(super) step: u8,
    pub(super) errno: i32,
}

struct ChildArgs<'a> {
    spawn: &'a Spawn,
    hook: &'a mut (dyn FnMut() -> io::Result<()> + Send + Sync),
    argv: &'a [*const libc::c_char],
    envp: &'a [*const libc::c_char],
    failure: RawFd,
}

/// Spawns on the calling thread (the spawner thread: the child's parent death signal is armed
/// against it). Returns the child, or why it did not exec (the child is then reaped).
pub(super) fn spawn(spawn: &Spawn, daemon: Pid) -> io::Result<Result<Spawned, Failure>> {
    let (failure_read, failure_write) = super::enter::failure_pipe()?;
    let mut hook = Arc::clone(&spawn.context).pre_exec(daemon, failure_write.as_raw_fd());
    let argv: Vec<*const libc::c_char> = spawn
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let envp: Vec<*const libc::c_char> = spawn
        .envp
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect();
    let mut args = ChildArgs {
        spawn,
        hook: &mut hook,
        argv: &argv,
        envp: &envp,
        failure: failure_write.as_raw_fd(),
    };
    // Not zeroed (a stack needs no initial contents): a probe touches only the pages it uses.
    let mut stack: Vec<u8> = Vec::with_capacity(STACK_SIZE);
    // SAFETY: the stack grows down from the (16-byte aligned) end of its allocation.
    let top = unsafe { stack.as_mut_ptr().add(STACK_SIZE) };
    let top = (top as usize & !15) as *mut c_void;

    let mut pidfd: c_int = -1;
    let all = nix::sys::signal::SigSet::all();
    let mut previous = nix::sys::signal::SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&all),
        Some(&mut previous),
    )?;
    // SAFETY: `child` runs on `stack` while this thread is suspended (CLONE_VFORK) until it
    // execs or exits; it only reads `args` and makes raw syscalls.
    let pid = unsafe {
        libc::clone(
            child,
            top,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_PIDFD | libc::SIGCHLD,
            (&mut args as *mut ChildArgs<'_>).cast(),
            &mut pidfd as *mut c_int,
        )
    };
    let clone_error = io::Error::last_os_error();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&previous),
        None,
    );
    drop(stack);
    drop(failure_write);
    if pid < 0 {
        return Err(clone_error);
    }
    // SAFETY: CLONE_PIDFD stored a new descriptor that nothing else owns.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    let mut record = [0u8; 5];
    let n = rustix::io::read(&failure_read, &mut record).unwrap_or(0);
    if n == record.len() {
        // It exited without exec'ing: reap it.
        let _ = rustix::process::waitid(
            rustix::process::WaitId::PidFd(std::os::fd::AsFd::as_fd(&pidfd)),
            rustix::process::WaitIdOptions::EXITED,
        );
        let errno = i32::from_le_bytes([record[1], record[2], record[3], record[4]]);
        return Ok(Err(Failure {
            step: record[0],
            errno,
        }));
    }
    Ok(Ok(Spawned {
        pid: pid as u32,
        pidfd,
    }))
}

/// The child: raw syscalls only, on its own stack, sharing the daemon's memory.
extern "C" fn child(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive while the parent is suspended.
    let args = unsafe { &mut *arg.cast::<ChildArgs<'_>>() };
    let report = |step_written: bool, errno: i32| -> c_int {
        let mut record = [0u8; 5];
        record[1..].copy_from_slice(&errno.to_le_bytes());
        // SAFETY: write(2) of a local buffer; the hook already wrote the step byte when it
        // failed.
        unsafe {
            if step_written {
                libc::write(args.failure, record[1..].as_ptr().cast(), 4);
            } else {
                libc::write(args.failure, record.as_ptr().cast(), 5);
            }
            libc::_exit(127)
        }
    };
    let s = args.spawn;
    // SAFETY: dup2(2) of descriptors the parent holds open.
    unsafe {
        if libc::dup2(s.stdin.as_raw_fd(), 0) < 0
            || libc::dup2(s.output.as_raw_fd(), 1) < 0
            || libc::dup2(s.output.as_raw_fd(), 2) < 0
        {
            return report(false, *libc::__errno_location());
        }
    }
    if let Err(e) = (args.hook)() {
        return report(true, e.raw_os_error().unwrap_or(libc::EINVAL));
    }
    // SAFETY: an empty mask: the handlers are back to their defaults (the hook reset them).
    unsafe {
        let mut empty: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut empty);
        libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    }
    if let Some(builtin) = &s.builtin {
        // SAFETY: ends the child; the failure pipe closes empty, as at an exec.
        unsafe { libc::_exit(builtin.status()) }
    }
    // As execvp: the first error that is not "not there" wins, else EACCES if one was seen.
    let mut errno = libc::ENOENT;
    let mut denied = false;
    for path in &s.candidates {
        // SAFETY: NUL-terminated arrays of C strings the parent keeps alive.
        unsafe { libc::execve(path.as_ptr(), args.argv.as_ptr(), args.envp.as_ptr()) };
        // SAFETY: reading errno right after the failed call.
        let e = unsafe { *libc::__errno_location() };
        match e {
            libc::ENOENT | libc::ENOTDIR | libc::ESTALE | libc::ENODEV | libc::ETIMEDOUT => {}
            libc::EACCES => denied = true,
            other => {
                errno = other;
                denied = false;
                break;
            }
        }
    }
    if denied {
        errno = libc::EACCES;
    }
    report(false, errno)
}
