//! Process file descriptors: signals that can never reach a recycled pid.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::ptr;

use nix::libc;
use rustix::process::{Pid, PidfdFlags, pidfd_open};

pub(super) fn open(pid: u32) -> io::Result<OwnedFd> {
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| io::Error::from_raw_os_error(libc::ESRCH))?;
    Ok(pidfd_open(pid, PidfdFlags::empty())?)
}

/// `pidfd_send_signal` for any signal number; 0 only checks that the process exists (a zombie
/// does: it keeps its pid, and its process group id, until reaped).
pub(super) fn send(pidfd: &OwnedFd, signal: i32) -> io::Result<()> {
    // SAFETY: a valid pidfd, no siginfo, no flags.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            signal,
            ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Resolves when the process has exited (before it is reaped).
pub(super) async fn exited(pidfd: &OwnedFd) -> io::Result<()> {
    // SAFETY: the AsyncFd owns this duplicate, an open pidfd, until it is dropped here.
    let watched = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(
            pidfd.try_clone()?,
            tokio::io::Interest::READABLE,
        )
    }
    .map_err(io::Error::from)?;
    let _ready = watched.readable().await?;
    Ok(())
}
