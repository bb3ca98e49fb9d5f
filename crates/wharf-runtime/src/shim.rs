//! The shim: a small single-threaded process that the native runtime puts between the daemon and
//! each instance (and each `exec`), so that no process of an instance outlives the daemon.
//!
//! Why a separate process: the daemon is multi-threaded (tokio), and after `fork` in a threaded
//! process the child may only make async-signal-safe calls until it execs. The daemon therefore
//! only forks and execs the shim (its `pre_exec` makes raw syscalls only: session, parent death
//! signal, PID namespace); everything that needs more (user lookups, an init that forks, waits
//! and forwards) happens here, in a fresh process with one thread.
//!
//! `main` takes the arguments after the shim's own argv prefix (see [`crate::native`]), and is
//! called by `src/bin/wharf-shim.rs` (the small program the daemon runs when it is installed
//! next to `wharf`: [`crate::native::shim_next_to`]; this crate's tests) and by `wharf __shim`. It must run
//! before the calling program starts any thread; it refuses to run otherwise.
//!
//! Three modes (`--mode`):
//!
//! - `init`: the daemon created a PID namespace for the shim's children. The shim forks an init,
//!   PID 1 of that namespace, as tini / docker-init are: it forks the program, forwards every
//!   catchable signal to the program's process group, reaps every orphan, and exits with the
//!   program's status (128+N when killed by signal N) when the program exits; its exit makes the
//!   kernel SIGKILL everything left in the namespace. The shim outside forwards signals to the
//!   init and exits with its status. Death signals (`PR_SET_PDEATHSIG`, SIGKILL) chain daemon ->
//!   shim -> init, so the daemon's death, even by SIGKILL, empties the namespace.
//! - `reaper`: no namespace (not root). The shim is a child subreaper, forks the program into its
//!   own session, forwards signals to its process group, and when the program exits, or the
//!   daemon dies (its death signal is a catchable SIGTERM here, told apart from a forwarded one
//!   by the shim's parent having changed), SIGKILLs the program's group and every remaining
//!   descendant (see `shim/reaper.rs`) before exiting. What can still escape is documented in
//!   [`crate::native`].
//! - `exec`: become the command (no fork), for `wharf exec` (`Runtime::interactive_command`);
//!   `Runtime::exec` takes the same steps without the shim (`native/enter.rs`).
//!
//! The program is started with: a new session (`setsid`), the namespaces given by `--setns`, the
//! files given by `--bind` mounted over theirs in a private mount namespace, the working
//! directory, the user (only when running as root), a parent death signal (SIGKILL, armed after
//! the user switch, which clears it), default signal dispositions and an empty signal mask, then
//! `execvp` with the environment the shim itself received. Whether that worked is
//! reported on the status pipe (`shim/report.rs`).

mod args;
mod program;
mod reaper;
pub(crate) mod report;
pub(crate) mod user;

use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::prctl;
use nix::sys::signal::Signal as NixSignal;
use nix::unistd::{ForkResult, fork, getppid, pipe2};

pub(crate) use args::{Mode, ShimArgs};
use program::{Become, Program};
use reaper::{Target, Wake};
use report::Reporter;

/// Runs the shim; returns its exit status: the program's (128+N when killed by signal N), 127 when
/// the program could not be started, 2 for a bad command line.
pub fn main(args: Vec<OsString>) -> i32 {
    let args = match ShimArgs::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("wharf shim: {e}");
            return 2;
        }
    };
    let reporter = Reporter::new(args.status_fd);
    if let Err(reason) = single_threaded() {
        reporter.error(&reason);
        return 2;
    }
    let program = match Program::prepare(&args) {
        Ok(p) => p,
        Err(reason) => {
            reporter.error(&reason);
            return 127;
        }
    };
    match args.mode {
        Mode::Exec => {
            let (code, reason) = program.exec(&Become {
                new_session: false,
                parent: args.parent,
            });
            reporter.error(&reason);
            code
        }
        Mode::Reaper => run_reaper(&args, &program, reporter),
        Mode::Init => run_outside_namespace(&args, &program, reporter),
    }
}

/// `fork` is only sound here because this process has one thread.
fn single_threaded() -> Result<(), String> {
    match std::fs::read_dir("/proc/self/task").map(Iterator::count) {
        Ok(1) => Ok(()),
        Ok(_) => Err("the shim must run in a single-threaded process".into()),
        Err(e) => Err(format!("cannot read /proc/self/task: {e}")),
    }
}

/// Whether the daemon already died (before its death signal could be caught).
fn parent_gone(parent: Option<i32>) -> bool {
    parent.is_some_and(|p| getppid().as_raw() != p)
}

/// An errno as a lowercase reason.
pub(crate) fn describe(e: nix::Error) -> String {
    let desc = e.desc();
    let mut chars = desc.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => format!("error {}", e as i32),
    }
}

/// The forked program: returns only through `_exit`.
fn become_program(program: &Program, reporter: &Reporter, parent: i32) -> ! {
    let (code, reason) = program.exec(&Become {
        new_session: true,
        parent: Some(parent),
    });
    reporter.error(&reason);
    // SAFETY: ends this forked child without running the parent's exit handlers twice.
    unsafe { libc::_exit(code) }
}

fn run_reaper(args: &ShimArgs, program: &Program, mut reporter: Reporter) -> i32 {
    let blocked = match reaper::block_signals() {
        Ok(set) => set,
        Err(e) => {
            reporter.error(&format!("cannot block signals: {}", describe(e)));
            return 127;
        }
    };
    if parent_gone(args.parent) {
        return 127;
    }
    if let Err(e) = prctl::set_child_subreaper(true) {
        reporter.error(&format!("cannot become a subreaper: {}", describe(e)));
        return 127;
    }
    let me = std::process::id() as i32;
    // SAFETY: this process is single-threaded (checked in `main`).
    match unsafe { fork() } {
        Err(e) => {
            reporter.error(&format!("cannot fork: {}", describe(e)));
            127
        }
        Ok(ForkResult::Child) => become_program(program, &reporter, me),
        Ok(ForkResult::Parent { child }) => {
            reporter.process_pid(child.as_raw());
            reporter.close();
            let wake =
                reaper::forward_until_exit(&blocked, Target::Group(child.as_raw()), args.parent);
            reaper::sweep(child.as_raw());
            match wake {
                Wake::Exited(code) => code,
                Wake::ParentDied => 128 + libc::SIGKILL,
            }
        }
    }
}

fn run_outside_namespace(args: &ShimArgs, program: &Program, mut reporter: Reporter) -> i32 {
    let blocked = match reaper::block_signals() {
        Ok(set) => set,
        Err(e) => {
            reporter.error(&format!("cannot block signals: {}", describe(e)));
            return 127;
        }
    };
    if parent_gone(args.parent) {
        return 127;
    }
    // The init's way to tell that this process died before the init armed its death signal
    // (its parent pid, outside its namespace, reads as 0).
    let (anchor_read, anchor_write) = match pipe2(OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            reporter.error(&format!("cannot create a pipe: {}", describe(e)));
            return 127;
        }
    };
    // SAFETY: this process is single-threaded (checked in `main`).
    match unsafe { fork() } {
        Err(e) => {
            reporter.error(&format!("cannot fork: {}", describe(e)));
            127
        }
        Ok(ForkResult::Child) => {
            drop(anchor_write);
            run_init(program, reporter, anchor_read, &blocked)
        }
        Ok(ForkResult::Parent { child }) => {
            drop(anchor_read);
            reporter.process_pid(child.as_raw());
            reporter.close();
            let wake =
                reaper::forward_until_exit(&blocked, Target::Process(child.as_raw()), args.parent);
            drop(anchor_write);
            match wake {
                Wake::Exited(code) => code,
                Wake::ParentDied => {
                    // Unreachable in practice (this process's death signal is SIGKILL); make
                    // sure anyway that the namespace dies with us.
                    // SAFETY: kill(2) has no memory-safety preconditions.
                    unsafe { libc::kill(child.as_raw(), libc::SIGKILL) };
                    128 + libc::SIGKILL
                }
            }
        }
    }
}

/// PID 1 of the instance's namespace.
fn run_init(
    program: &Program,
    mut reporter: Reporter,
    anchor: OwnedFd,
    blocked: &nix::sys::signal::SigSet,
) -> ! {
    let exit = |code: i32| -> ! {
        // SAFETY: ends this forked child; the kernel then kills the rest of the namespace.
        unsafe { libc::_exit(code) }
    };
    if prctl::set_pdeathsig(NixSignal::SIGKILL).is_err() || anchor_broken(&anchor) {
        exit(128 + libc::SIGKILL);
    }
    drop(anchor);
    let me = std::process::id() as i32;
    // SAFETY: this process is single-threaded (a fork of the single-threaded shim).
    match unsafe { fork() } {
        Err(e) => {
            reporter.error(&format!("cannot fork: {}", describe(e)));
            exit(127)
        }
        Ok(ForkResult::Child) => become_program(program, &reporter, me),
        Ok(ForkResult::Parent { child }) => {
            // Only the program's exec (or its error report) may end the status stream now.
            reporter.close();
            match reaper::forward_until_exit(blocked, Target::Group(child.as_raw()), None) {
                Wake::Exited(code) => exit(code),
                Wake::ParentDied => exit(128 + libc::SIGKILL),
            }
        }
    }
}

/// Whether the write end held by the outer shim is closed, i.e. the outer shim is gone.
fn anchor_broken(anchor: &OwnedFd) -> bool {
    let mut fds = [libc::pollfd {
        fd: std::os::fd::AsRawFd::as_raw_fd(&anchor.as_fd()),
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: `fds` is a valid array of one pollfd.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    n != 0 && fds[0].revents & (libc::POLLHUP | libc::POLLIN | libc::POLLERR) != 0
}
