//! wharf-supervisor: runs plans through a [`Runtime`], one task per instance.
//!
//! Each instance task owns an explicit state machine (created, starting, running, healthy or
//! unhealthy, exited with a code, restarting, stopping) and publishes every transition as an
//! [`Event`] on a broadcast channel that the CLI, the API and the router consume. Health checks
//! follow Docker's semantics exactly (`interval`, `timeout`, `retries`, `start_period`,
//! `start_interval`); restart policies back off exponentially from 100 ms, doubling to a cap, and
//! reset after the instance has stayed up for 10 s, as Docker does. Plans come from wharf-plan;
//! executing them waits on `depends_on` conditions and reports a failing dependency with the
//! service, the condition and the last lines of its output.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc, watch};
use wharf_model::Project;
use wharf_runtime::{OutputLine, Runtime};

mod adopt;
mod backoff;
mod execute;
mod health;
mod instance;
mod reported_health;
pub mod spec;

pub use backoff::Backoff;
pub use execute::{UpReport, UpWait};
pub use health::{ExecProbe, Probe, ProbeSettings};
pub use wharf_plan::UpOptions;

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum Status {
    /// Known and about to start (waiting on its dependencies).
    Created,
    Starting,
    Running,
    Stopping,
    /// Ended with this code (128+N when killed by signal N).
    Exited {
        code: i32,
    },
    /// Ended and will be started again after the back-off delay.
    Restarting {
        delay_ms: u64,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

/// The observed state of one instance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceState {
    pub project: String,
    pub service: String,
    pub number: u32,
    pub name: String,
    #[serde(flatten)]
    pub status: Status,
    /// `None` when the service has no (enabled) health check.
    pub health: Option<Health>,
    pub pid: Option<u32>,
    /// How many times it was started again by its restart policy.
    pub restarts: u32,
    /// When the current (or last) run started.
    pub started_at: Option<SystemTime>,
    /// Whether it started at least once since it was (re)created by a plan.
    pub ever_started: bool,
    /// Whether its task has ended for good (stopped, or exited without a restart to come).
    pub finished: bool,
    /// Why the last start failed, when it did.
    pub error: Option<String>,
    /// The configuration hash it was started with.
    pub config_hash: String,
}

impl InstanceState {
    /// Running and, when it has a health check, healthy.
    pub fn is_ready(&self) -> bool {
        self.status == Status::Running && matches!(self.health, None | Some(Health::Healthy))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum EventKind {
    Created,
    Starting,
    Running {
        pid: Option<u32>,
    },
    Healthy,
    Unhealthy {
        output: String,
    },
    Exited {
        code: i32,
    },
    Restarting {
        attempt: u32,
        delay_ms: u64,
    },
    Stopping,
    Removed,
    StartFailed {
        reason: String,
    },
    /// A dependency did not meet its condition (a warning when it is not required).
    DependencyFailed {
        message: String,
        required: bool,
    },
    /// A step of getting a service ready to run that is not an instance's (an image built or
    /// pulled); the event's instance is `<service> image`.
    Progress {
        message: String,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: SystemTime,
    pub project: String,
    pub service: String,
    pub instance: String,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// Receives every line every instance writes (the daemon writes them to disk).
pub trait LogSink: Send + Sync + 'static {
    fn line(&self, instance: &InstanceState, line: &OutputLine);
}

/// Told before an instance is stopped (on `stop`, `restart`, scaling down, `down`), so that
/// what sends it traffic (the router) takes it out and lets the requests in flight finish: the
/// stop signal follows when `drain` returns, which must be within `within` (the instance's stop
/// grace period).
pub trait Drain: Send + Sync + 'static {
    fn drain<'a>(
        &'a self,
        instance: &'a InstanceState,
        within: Duration,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send + 'a>>;
}

/// A sink that keeps nothing.
pub struct NoLogs;

impl LogSink for NoLogs {
    fn line(&self, _: &InstanceState, _: &OutputLine) {}
}

#[derive(Clone, Debug)]
pub struct SupervisorOptions {
    /// PATH, HOME, LANG and TZ for instances are taken from here.
    pub base_env: BTreeMap<String, String>,
    /// Where named volumes live natively (one directory per volume).
    pub volumes_dir: PathBuf,
    pub backoff: Backoff,
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("{message}")]
    Config {
        service: String,
        message: String,
        help: String,
    },
    #[error("{0}")]
    Plan(#[from] wharf_plan::PlanError),
    #[error("no project `{0}` is running here")]
    UnknownProject(String),
    #[error("{}", .0.join("\n"))]
    Failed(Vec<String>),
    #[error("timed out after {0:?} waiting for: {1}")]
    Timeout(Duration, String),
}

/// How many lines of each instance's output are kept for error messages.
const TAIL_LINES: usize = 10;

/// How many events the broadcast channel keeps for slow receivers.
const EVENTS: usize = 1024;

pub(crate) struct Slot {
    pub state: Arc<watch::Sender<InstanceState>>,
    pub control: Option<mpsc::UnboundedSender<instance::Control>>,
    pub tail: Arc<Mutex<VecDeque<String>>>,
    /// What the instance's last failed health check said, kept across its restarts and cleared
    /// when a check passes: the reason a dependent's wait names when it times out.
    pub last_check: LastCheck,
}

/// The output of an instance's last failed health check, `None` after a pass or before any
/// check failed.
pub(crate) type LastCheck = Arc<Mutex<Option<String>>>;

pub(crate) struct ProjectRun {
    pub project: Arc<Project>,
    pub slots: BTreeMap<(String, u32), Slot>,
    pub scale: BTreeMap<String, u32>,
}

pub(crate) struct Inner {
    pub runtime: Arc<dyn Runtime>,
    pub events: broadcast::Sender<Event>,
    pub logs: Arc<dyn LogSink>,
    pub options: SupervisorOptions,
    pub projects: Mutex<BTreeMap<String, ProjectRun>>,
    /// Bumped on every state change, so waiters re-check their conditions.
    pub changed: watch::Sender<u64>,
    /// Asked before every graceful stop ([`Supervisor::set_drain`]).
    pub drain: std::sync::OnceLock<Arc<dyn Drain>>,
}

impl Inner {
    pub fn lock(&self) -> MutexGuard<'_, BTreeMap<String, ProjectRun>> {
        self.projects.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn emit(&self, state: &InstanceState, kind: EventKind) {
        let _ = self.events.send(Event {
            at: SystemTime::now(),
            project: state.project.clone(),
            service: state.service.clone(),
            instance: state.name.clone(),
            kind,
        });
    }

    pub fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// The supervisor of every project of a daemon. Cheap to clone.
#[derive(Clone)]
pub struct Supervisor {
    pub(crate) inner: Arc<Inner>,
}

impl Supervisor {
    pub fn new(
        runtime: Arc<dyn Runtime>,
        logs: Arc<dyn LogSink>,
        options: SupervisorOptions,
    ) -> Self {
        // Each slot is allocated up front (about 150 bytes); a receiver that falls further
        // behind is told so (`Lagged`) and re-reads the instances' states.
        let (events, _) = broadcast::channel(EVENTS);
        let (changed, _) = watch::channel(0);
        Supervisor {
            inner: Arc::new(Inner {
                runtime,
                events,
                logs,
                options,
                projects: Mutex::new(BTreeMap::new()),
                changed,
                drain: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Tells the project's event listeners (`up`'s progress display, `wharf events`) about a
    /// step of preparing `service` (its image being built or pulled).
    pub fn announce(&self, project: &str, service: &str, message: &str) {
        let _ = self.inner.events.send(Event {
            at: SystemTime::now(),
            project: project.to_string(),
            service: service.to_string(),
            instance: format!("{service} image"),
            kind: EventKind::Progress {
                message: message.to_string(),
            },
        });
    }

    /// Sets what is asked before every graceful stop; once (later calls are ignored).
    pub fn set_drain(&self, drain: Arc<dyn Drain>) {
        let _ = self.inner.drain.set(drain);
    }

    /// Every transition of every instance from now on.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Names of the projects this supervisor knows.
    pub fn projects(&self) -> Vec<String> {
        self.inner.lock().keys().cloned().collect()
    }

    /// The project as last brought up.
    pub fn project(&self, name: &str) -> Option<Arc<Project>> {
        self.inner.lock().get(name).map(|p| Arc::clone(&p.project))
    }

    /// The state of every instance of a project, by service then number.
    pub fn instances(&self, project: &str) -> Vec<InstanceState> {
        self.inner
            .lock()
            .get(project)
            .map(|p| p.slots.values().map(|s| s.state.borrow().clone()).collect())
            .unwrap_or_default()
    }

    /// The last lines an instance wrote (kept in memory for error messages).
    pub fn tail(&self, project: &str, service: &str, number: u32) -> Vec<String> {
        self.inner
            .lock()
            .get(project)
            .and_then(|p| p.slots.get(&(service.to_string(), number)))
            .map(|s| {
                s.tail
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The runtime instances run on.
    pub fn runtime(&self) -> Arc<dyn Runtime> {
        Arc::clone(&self.inner.runtime)
    }
}

#[cfg(test)]
mod tests;
