//! wharf-runtime: the one seam between wharf's supervisor and whatever runs service instances.
//!
//! The supervisor decides (what to start, when to stop, whether to restart); a [`Runtime`] only
//! acts: start an instance, signal it, report its output and its exit, and run a command in its
//! context (health checks). The native runtime runs instances as processes on this machine; the
//! Docker runtime (a later issue) implements the same trait; [`fake::FakeRuntime`] is a scriptable
//! double for tests.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};

pub mod fake;
pub mod native;
mod network;
pub mod shim;

pub use network::{
    AttachmentSpec, NetworkModeSpec, NetworkSpec, PortProtocol, PortSpec, ProjectNetworkSpec,
};
use wharf_model::Project;

/// Everything a runtime needs to start one instance of a service.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSpec {
    pub project: String,
    pub service: String,
    /// Replica number, from 1.
    pub number: u32,
    /// `<project>-<service>-<number>`.
    pub name: String,
    /// `entrypoint` followed by `command`, as exec'd.
    pub argv: Vec<String>,
    /// Absolute directory the instance starts in.
    pub working_dir: PathBuf,
    /// The complete environment of the instance (nothing is inherited from the daemon).
    pub environment: BTreeMap<String, String>,
    /// `user:` as written (`name`, `uid`, `uid:gid`, `name:group`).
    pub user: Option<String>,
    /// The signal that asks the instance to stop.
    pub stop_signal: Signal,
    /// Its networks, ports and names; `None` leaves it on the runtime's default (natively: the
    /// machine's network).
    pub network: Option<NetworkSpec>,
}

/// A signal number, parsed from Compose's `stop_signal` (`SIGTERM`, `TERM` or `15`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Signal(pub i32);

impl Signal {
    pub const HUP: Signal = Signal(1);
    pub const INT: Signal = Signal(2);
    pub const QUIT: Signal = Signal(3);
    pub const KILL: Signal = Signal(9);
    pub const USR1: Signal = Signal(10);
    pub const USR2: Signal = Signal(12);
    pub const TERM: Signal = Signal(15);

    const NAMES: [(&'static str, i32); 15] = [
        ("HUP", 1),
        ("INT", 2),
        ("QUIT", 3),
        ("ABRT", 6),
        ("KILL", 9),
        ("USR1", 10),
        ("USR2", 12),
        ("PIPE", 13),
        ("ALRM", 14),
        ("TERM", 15),
        ("CHLD", 17),
        ("CONT", 18),
        ("STOP", 19),
        ("TSTP", 20),
        ("WINCH", 28),
    ];

    /// Parses `SIGTERM`, `TERM`, `sigterm` or `15`.
    pub fn parse(s: &str) -> Option<Signal> {
        let t = s.trim();
        if let Ok(n) = t.parse::<i32>() {
            return (1..=64).contains(&n).then_some(Signal(n));
        }
        let upper = t.to_ascii_uppercase();
        let name = upper.strip_prefix("SIG").unwrap_or(&upper);
        Signal::NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| Signal(*v))
    }
}

impl fmt::Display for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Signal::NAMES.iter().find(|(_, v)| *v == self.0) {
            Some((n, _)) => write!(f, "SIG{n}"),
            None => write!(f, "signal {}", self.0),
        }
    }
}

/// How an instance (or an exec'd command) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    /// Exited with this code. A process killed by signal N reports 128+N, as Docker does.
    Code(i32),
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Code(c) => c,
        }
    }

    pub fn success(self) -> bool {
        self.code() == 0
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let code = self.code();
        if code > 128 && code <= 128 + 64 {
            write!(f, "exit code {code} ({})", Signal(code - 128))
        } else {
            write!(f, "exit code {code}")
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// One line an instance wrote, without its line ending.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputLine {
    pub stream: Stream,
    pub line: String,
    pub at: SystemTime,
}

/// A started instance.
pub struct Started {
    pub handle: Arc<dyn InstanceHandle>,
    /// Its output, line by line; closed when the instance's output ends.
    pub output: mpsc::Receiver<OutputLine>,
    /// Resolves once when the instance has exited (and everything it started is gone).
    pub exit: oneshot::Receiver<ExitStatus>,
}

/// What the supervisor can do to a running instance.
pub trait InstanceHandle: Send + Sync + fmt::Debug {
    fn spec(&self) -> &InstanceSpec;
    /// The process id on this machine, when there is one.
    fn pid(&self) -> Option<u32>;
    /// Sends `signal` to the instance's main process (and, natively, its process group).
    fn signal(&self, signal: Signal) -> Result<(), RuntimeError>;
    /// Kills the instance and everything it started, at once.
    fn kill(&self) -> Result<(), RuntimeError>;

    /// The instance's health as its runtime reports it (the Docker Engine runs the health check
    /// itself); `None` when the supervisor must probe it through [`Runtime::exec`]. The
    /// receiver's current value is the health now (an adopted instance may already be healthy).
    fn health(&self) -> Option<tokio::sync::watch::Receiver<ReportedHealth>> {
        None
    }
}

/// An instance's health as its runtime reports it ([`InstanceHandle::health`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportedHealth {
    /// Not healthy yet; with the output of the last failed check when one failed (the Docker
    /// Engine keeps its checks' log across restarts), so that a wait that times out can say why.
    Starting {
        last_failure: Option<String>,
    },
    Healthy,
    /// With the output of the last failed check.
    Unhealthy(String),
}

/// An instance that exists in the runtime, running or not, found by [`Runtime::existing`] (after
/// a daemon restart, or one that another run of wharf started).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExistingInstance {
    pub service: String,
    /// Replica number, from 1.
    pub number: u32,
    /// `<project>-<service>-<number>`.
    pub name: String,
    /// The configuration hash it was created with.
    pub config_hash: String,
    pub running: bool,
    /// How it ended, when it is not running.
    pub exit_code: Option<i32>,
}

/// The result of a command run in an instance's context.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecOutput {
    /// `None` when the command did not finish within its timeout (it was killed).
    pub status: Option<ExitStatus>,
    /// Its combined output, the last 4 KiB at most.
    pub output: String,
}

#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// A short name for messages (`native`, `docker`, `fake`).
    fn name(&self) -> &'static str;

    /// Starts an instance. Errors mean it did not start at all (the program does not exist,
    /// the user is unknown, ...).
    async fn start(&self, spec: &InstanceSpec) -> Result<Started, RuntimeError>;

    /// Runs `argv` in the context of a running instance (its environment, working directory,
    /// user and, natively when isolated, its namespaces), killing it after `timeout`.
    async fn exec(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError>;

    /// The command line that runs `argv` in the instance's context (environment excepted: the
    /// caller sets the instance's) with the caller's own standard streams, for `wharf exec`;
    /// `None` when plain `argv` in the instance's directory already is that.
    async fn interactive_command(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
    ) -> Option<Vec<std::ffi::OsString>> {
        let _ = (instance, argv);
        None
    }

    /// The addresses a running instance has on its networks, where a peer on this machine (the
    /// router) reaches it and where its own connections come from; empty when it shares the
    /// machine's network (reach it on 127.0.0.1).
    async fn addresses(&self, instance: &dyn InstanceHandle) -> Vec<std::net::IpAddr> {
        let _ = instance;
        Vec::new()
    }

    /// Whether every instance gets addresses of its own, so that the address a connection
    /// comes from says which instance made it (`allow_from: service:<name>` needs this).
    fn distinct_addresses(&self, project: &str) -> bool {
        let _ = project;
        false
    }

    /// Creates what the project's instances share (natively: a bridge per network and the
    /// firewall rules), before any of them starts. Idempotent: `up` calls it every time.
    /// Returns warnings for the user (natively without root: what host networking loses).
    async fn prepare(&self, project: &Project) -> Result<Vec<String>, RuntimeError> {
        let _ = project;
        Ok(Vec::new())
    }

    /// Whether the runtime runs images (an instance without `command` or `entrypoint` runs its
    /// image's own), rather than programs of this machine.
    fn runs_images(&self, project: &str) -> bool {
        let _ = project;
        false
    }

    /// The instances of `project` that exist in the runtime, running or stopped, with the
    /// configuration hash each was created with: `up` adopts them instead of starting them again
    /// ([`Runtime::start`] of a spec whose instance is running attaches to it). Natively none
    /// outlive the daemon.
    async fn existing(&self, project: &str) -> Result<Vec<ExistingInstance>, RuntimeError> {
        let _ = project;
        Ok(Vec::new())
    }

    /// Forgets a stopped instance (Docker: removes its container), so that the next start
    /// creates it anew from the current configuration (recreate, scale down, orphans). An
    /// instance still running is stopped first, with its stop signal and grace period.
    async fn remove(&self, project: &str, instance: &str) -> Result<(), RuntimeError> {
        let _ = (project, instance);
        Ok(())
    }

    /// Removes the project's named volumes (`down -v`); returns their names. Natively the daemon
    /// removes the volumes' directories itself.
    async fn remove_volumes(&self, project: &str) -> Result<Vec<String>, RuntimeError> {
        let _ = project;
        Ok(Vec::new())
    }

    /// Removes what `prepare` and the project's instances created, once the last of them has
    /// stopped (`down`).
    async fn release(&self, project: &str) -> Result<(), RuntimeError> {
        let _ = project;
        Ok(())
    }

    /// Removes what a previous run of this runtime left (natively: after a crash of the daemon,
    /// its bridges, veths, firewall rules and files, found by name). Call it once when the
    /// daemon starts, before any project comes up; at shutdown, after every instance stopped, it
    /// removes everything. Returns what it removed, for the log.
    async fn recover(&self) -> Result<Vec<String>, RuntimeError> {
        Ok(Vec::new())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("instance {instance}: cannot start `{program}`: {reason}")]
    Start {
        instance: String,
        program: String,
        reason: String,
    },
    #[error("instance {instance}: {reason}")]
    Instance { instance: String, reason: String },
    #[error("{0}")]
    Other(String),
}
