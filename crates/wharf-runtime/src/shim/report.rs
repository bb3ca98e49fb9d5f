//! The status pipe: how a shim tells the daemon whether the program started.
//!
//! The daemon passes the write end (`--status-fd`); the shim marks it close-on-exec, so every copy
//! closes by itself when the program's `execve` succeeds. The daemon reads it to end of file:
//!
//! - `pid <n>`: the pid, as the daemon sees it, of the process whose death ends the instance
//!   with everything it started: the program in reaper mode (the shim then sweeps), the init in
//!   init mode (the kernel then empties the namespace);
//! - `error <reason>`: the program did not start (unknown user, missing working directory, exec
//!   failure, ...); the shim then exits without running anything.
//!
//! End of file with no `error` line means the program is running (or ran).

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Report {
    /// See the module documentation.
    ProcessPid(u32),
    Error(String),
}

/// Parses everything read from the status pipe. Unknown lines are ignored.
pub(crate) fn parse(bytes: &[u8]) -> Vec<Report> {
    String::from_utf8_lossy(bytes)
        .lines()
        .filter_map(|line| {
            if let Some(pid) = line.strip_prefix("pid ") {
                pid.trim().parse().ok().map(Report::ProcessPid)
            } else {
                line.strip_prefix("error ")
                    .map(|reason| Report::Error(reason.to_string()))
            }
        })
        .collect()
}

/// The shim's end of the status pipe. Without one (a shim run by hand), errors go to stderr.
pub(crate) struct Reporter {
    fd: Option<OwnedFd>,
}

impl Reporter {
    pub(crate) fn new(fd: Option<RawFd>) -> Reporter {
        // Never take over stdin, stdout or stderr, and only take a descriptor that is open.
        let fd = fd.filter(|fd| *fd > 2).filter(|fd| {
            // SAFETY: only used to ask whether the descriptor is open.
            rustix::io::fcntl_getfd(unsafe { BorrowedFd::borrow_raw(*fd) }).is_ok()
        });
        // SAFETY: the daemon opened this descriptor for us; nothing else in this process owns it.
        let fd = fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
        if let Some(fd) = &fd {
            // Closed by the program's successful exec: that is the "started" signal.
            let _ = rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC);
        }
        Reporter { fd }
    }

    pub(crate) fn process_pid(&self, pid: i32) {
        self.write(&format!("pid {pid}\n"));
    }

    pub(crate) fn error(&self, reason: &str) {
        let line = format!("error {}\n", reason.replace('\n', " "));
        if self.fd.is_some() {
            self.write(&line);
        } else {
            let _ = write!(std::io::stderr(), "wharf shim: {}", &line["error ".len()..]);
        }
    }

    /// Drops this process's copy, so that only the program's exec (or its failure) ends the stream.
    pub(crate) fn close(&mut self) {
        self.fd = None;
    }

    fn write(&self, line: &str) {
        let Some(fd) = &self.fd else { return };
        let mut rest = line.as_bytes();
        while !rest.is_empty() {
            match rustix::io::write(fd.as_fd(), rest) {
                Ok(0) => return,
                Ok(n) => rest = &rest[n..],
                Err(rustix::io::Errno::INTR) => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_reports() {
        assert_eq!(
            parse(b"pid 12\nerror working directory /x: no such file or directory\n"),
            vec![
                Report::ProcessPid(12),
                Report::Error("working directory /x: no such file or directory".into())
            ]
        );
        assert_eq!(parse(b""), vec![]);
        assert_eq!(parse(b"noise\npid x\n"), vec![]);
    }
}
