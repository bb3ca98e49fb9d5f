//! What the supervisor holds on a native instance: its shim, by pidfd.

use std::io;
use std::os::fd::OwnedFd;

use nix::libc;

use super::{describe, pidfd};
use crate::{InstanceHandle, InstanceSpec, RuntimeError, Signal};

#[derive(Debug)]
pub(super) struct NativeHandle {
    pub(super) spec: InstanceSpec,
    pub(super) shim_pid: u32,
    pub(super) shim: OwnedFd,
    pub(super) kill: KillTarget,
}

/// What `kill()` SIGKILLs, so that the shim exits last, once everything else is gone.
#[derive(Debug)]
pub(super) enum KillTarget {
    /// With a PID namespace: its init. The kernel kills the rest of the namespace before the
    /// shim sees the init exit. (SIGKILLing the shim would empty the namespace too, through the
    /// init's death signal, but only after the shim had been reaped and `exit` had resolved.)
    Init { pidfd: OwnedFd },
    /// Without one: the program's process group, after which the shim kills what is left and
    /// exits (SIGKILLing the shim instead would orphan the program's children).
    ProgramGroup { pid: i32, pidfd: OwnedFd },
    /// When the shim named no process (it is exiting by itself): the shim.
    Shim,
}

impl NativeHandle {
    fn error(&self, reason: String) -> RuntimeError {
        RuntimeError::Instance {
            instance: self.spec.name.clone(),
            reason,
        }
    }

    fn failed(&self, what: &str, e: io::Error) -> RuntimeError {
        if e.raw_os_error() == Some(libc::ESRCH) {
            self.error("is not running".into())
        } else {
            self.error(format!("cannot {what}: {}", describe(&e)))
        }
    }
}

impl InstanceHandle for NativeHandle {
    fn spec(&self) -> &InstanceSpec {
        &self.spec
    }

    /// The shim's pid.
    fn pid(&self) -> Option<u32> {
        Some(self.shim_pid)
    }

    /// Signals the shim, which forwards the signal to the program's process group. SIGKILL is
    /// `kill()`; SIGSTOP cannot be forwarded (it would stop the shim).
    fn signal(&self, signal: Signal) -> Result<(), RuntimeError> {
        match signal.0 {
            libc::SIGKILL => self.kill(),
            libc::SIGSTOP => {
                Err(self.error("SIGSTOP cannot be forwarded to the program (use SIGTSTP)".into()))
            }
            n if !(1..=64).contains(&n) => Err(self.error(format!("invalid signal number {n}"))),
            n => pidfd::send(&self.shim, n).map_err(|e| self.failed(&format!("send {signal}"), e)),
        }
    }

    fn kill(&self) -> Result<(), RuntimeError> {
        match &self.kill {
            KillTarget::Shim => {
                pidfd::send(&self.shim, libc::SIGKILL).map_err(|e| self.failed("kill", e))
            }
            KillTarget::Init { pidfd: init } => {
                pidfd::send(&self.shim, 0).map_err(|e| self.failed("kill", e))?;
                let _ = pidfd::send(init, libc::SIGKILL);
                Ok(())
            }
            KillTarget::ProgramGroup {
                pid,
                pidfd: program,
            } => {
                pidfd::send(&self.shim, 0).map_err(|e| self.failed("kill", e))?;
                if pidfd::send(program, 0).is_ok() {
                    // The program exists (if only as a zombie), so its pid is still its
                    // group's id; for it to name another group before the kill lands, the shim
                    // would have to reap it and the kernel hand out every pid in between.
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(-*pid, libc::SIGKILL) };
                }
                let _ = pidfd::send(program, libc::SIGKILL);
                Ok(())
            }
        }
    }
}
