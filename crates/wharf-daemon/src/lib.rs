//! wharf-daemon: the daemon behind the CLI. One per state directory ([`state_dir`]), it owns a
//! supervisor, serves the control API on `<state>/wharf.sock`, keeps every instance's output
//! ([`log_store`]) and each project's desired state ([`store`]), and on start brings back
//! what the previous daemon ran ([`restore`]).

use std::collections::BTreeMap;
use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::watch;
use wharf_runtime::Runtime;
use wharf_supervisor::{Backoff, Supervisor, SupervisorOptions};

pub mod control;
pub mod control_socket;
pub mod log_store;
pub mod restore;
pub mod routing;
pub mod runtimes;
pub mod state_dir;
pub mod store;

pub use control::DaemonControl;
pub use state_dir::StateDir;

/// The exit status of `wharf daemon` when another daemon already holds the state directory
/// (the CLI that started this one then talks to that one).
pub const EXIT_ALREADY_RUNNING: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cannot find a state directory: {0}")]
    NoStateDir(String),
    #[error("another wharf daemon{} already uses {}", pid_text(*.pid), .dir.display())]
    AlreadyRunning { dir: PathBuf, pid: Option<u32> },
    #[error("{what} {}: {source}", .path.display())]
    Io {
        what: String,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the state store {}: {message} (if it is damaged, move it away and bring the projects up again)", .path.display())]
    Store { path: PathBuf, message: String },
    #[error("wharf refuses the state directory {}: {problem}; remove it (or set WHARF_STATE_DIR to a directory of yours) and run again", .dir.display())]
    UnsafeStateDir { dir: PathBuf, problem: String },
}

fn pid_text(pid: Option<u32>) -> String {
    pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
}

impl DaemonError {
    pub(crate) fn io(what: &str, path: &Path, source: io::Error) -> Self {
        DaemonError::Io {
            what: what.to_string(),
            path: path.to_path_buf(),
            source,
        }
    }
}

/// Raises the soft limit of open files to the hard limit: every routed connection is one or two
/// descriptors, and at the usual soft limit (1024) a few hundred idle clients starved the
/// router and the control socket (`wharf ps` hung). Returns the limit now in force.
pub fn raise_open_files_limit() -> Option<u64> {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if limit.current == limit.maximum {
        return limit.current;
    }
    let raised = rustix::process::Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => limit.maximum,
        Err(e) => {
            eprintln!(
                "wharf daemon: cannot raise the open-files limit from {:?} to {:?}: {e}",
                limit.current, limit.maximum
            );
            limit.current
        }
    }
}

/// The names of the directories in `dir` (the projects with logs).
fn project_dirs(dir: &Path) -> Vec<String> {
    let Ok(listing) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = listing
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

pub struct DaemonConfig {
    pub state_dir: StateDir,
    /// What runs instances (natively: the shim-based [`wharf_runtime::native::NativeRuntime`]).
    pub runtime: Arc<dyn Runtime>,
    /// PATH, HOME, LANG and TZ for instances.
    pub base_env: BTreeMap<String, String>,
    /// The size cap of one instance's log file.
    pub log_cap: u64,
    /// The free space kept in the state directory's filesystem by trimming logs (see
    /// [`log_floor_from_env`]).
    pub log_floor: u64,
}

/// The log floor: `WHARF_LOG_FLOOR_BYTES` when set to a number (0: never trim); else
/// [`log_store::DEFAULT_FLOOR`], but at most a twentieth of the filesystem that holds `dir`
/// (the nearest existing ancestor), so that a small disk is not trimmed all the time.
pub fn log_floor_from_env(dir: &Path) -> u64 {
    if let Some(floor) = std::env::var("WHARF_LOG_FLOOR_BYTES")
        .ok()
        .and_then(|v| v.trim().parse().ok())
    {
        return floor;
    }
    let size = dir
        .ancestors()
        .find_map(|d| rustix::fs::statvfs(d).ok())
        .map(|st| st.f_blocks.saturating_mul(st.f_frsize));
    match size {
        Some(size) => log_store::DEFAULT_FLOOR.min(size / 20),
        None => log_store::DEFAULT_FLOOR,
    }
}

/// Runs the daemon until `shutdown` resolves: takes the state directory's lock, brings back the
/// stored projects and serves the API. On shutdown every instance is stopped (gracefully) and the
/// desired state is kept, so the next daemon brings the projects back.
pub async fn run(
    config: DaemonConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let state_dir = config.state_dir;
    state_dir.prepare()?;
    let _lock = state_dir.lock()?;
    raise_open_files_limit();
    // When a damaged store is moved aside, the projects it held are named from their log
    // directories (the store itself cannot be read).
    let logs_dir = state_dir.logs();
    let store = Arc::new(store::Store::open_with(
        &state_dir.store(),
        Box::new(move || project_dirs(&logs_dir)),
    )?);
    let logs = log_store::LogStore::open(state_dir.logs(), config.log_cap)
        .map_err(|e| DaemonError::io("cannot open the log directory", &state_dir.logs(), e))?;
    let logs_dir = state_dir.logs();
    // Build and pull progress goes to the log and to the project's event listeners, through
    // the supervisor made below.
    let announcer: Arc<std::sync::OnceLock<Supervisor>> = Arc::new(std::sync::OnceLock::new());
    let announcing = Arc::clone(&announcer);
    let runtimes = Arc::new(runtimes::Runtimes::new(
        config.runtime,
        Box::new(move || {
            let announcing = Arc::clone(&announcing);
            Box::pin(async move {
                let progress: wharf_docker::Progress =
                    Arc::new(move |project: &str, line: &str| {
                        eprintln!("wharf daemon: project `{project}`: {line}");
                        if let Some(supervisor) = announcing.get() {
                            let (service, text) = line.split_once(": ").unwrap_or(("", line));
                            supervisor.announce(project, service, text);
                        }
                    });
                wharf_docker::DockerRuntime::connect()
                    .await
                    .map(|d| Arc::new(d.with_progress(progress)) as Arc<dyn Runtime>)
                    .map_err(|e| e.to_string())
            })
        }),
    ));
    let supervisor = Supervisor::new(
        Arc::clone(&runtimes) as Arc<dyn Runtime>,
        Arc::new(logs.clone()),
        SupervisorOptions {
            base_env: config.base_env.clone(),
            volumes_dir: state_dir.volumes(),
            backoff: Backoff::default(),
        },
    );
    let _ = announcer.set(supervisor.clone());
    // Logs are trimmed before they fill the disk; each project whose logs went is told.
    let warned = supervisor.clone();
    logs.set_floor(config.log_floor, move |trimmed| {
        for project in trimmed.projects(&logs_dir) {
            warned.announce(&project, "wharf", &trimmed.to_string());
        }
    });
    let routing = Arc::new(routing::Routing::new(
        Arc::clone(&runtimes),
        supervisor.clone(),
        state_dir.tls(),
    ));
    supervisor.set_drain(Arc::clone(&routing) as Arc<dyn wharf_supervisor::Drain>);
    tokio::spawn(Arc::clone(&routing).follow());
    let (restored_tx, restored) = watch::channel(false);
    let control = Arc::new(DaemonControl {
        supervisor,
        store,
        logs: logs.clone(),
        routing,
        runtimes,
        state_dir: state_dir.clone(),
        base_env: config.base_env,
        restored,
    });

    // Holding the lock, any socket file left is a dead daemon's.
    let socket = state_dir.socket();
    match std::fs::remove_file(&socket) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(DaemonError::io(
                "cannot remove the stale socket",
                &socket,
                e,
            ));
        }
    }
    let listener = std::os::unix::net::UnixListener::bind(&socket)
        .map_err(|e| DaemonError::io("cannot listen on", &socket, e))?;
    StateDir::restrict(&socket)?;
    eprintln!(
        "wharf daemon {} (pid {}) listening on {}",
        env!("CARGO_PKG_VERSION"),
        std::process::id(),
        socket.display()
    );

    // What a crashed daemon left (bridges, rules, files) goes before anything starts again.
    match control.runtimes.recover().await {
        Ok(removed) => {
            for r in removed {
                eprintln!("wharf daemon: removed leftover {r}");
            }
        }
        Err(e) => eprintln!("wharf daemon: cannot remove leftovers of a previous run: {e}"),
    }

    let recording = Arc::clone(&control);
    tokio::spawn(async move { recording.record_completions().await });

    let restoring = Arc::clone(&control);
    tokio::spawn(async move {
        restoring.restore().await;
        let _ = restored_tx.send(true);
    });

    let mut served = control_socket::ControlSocket::spawn(
        listener,
        Arc::clone(&control) as Arc<dyn wharf_api::Control>,
        tokio::runtime::Handle::current(),
    )
    .map_err(|e| DaemonError::io("cannot start serving on", &socket, e))?;
    let served = tokio::select! {
        r = served.ended() => r,
        () = shutdown => {
            served.stop();
            Ok(())
        }
    };
    let _ = std::fs::remove_file(&socket);
    eprintln!("wharf daemon: stopping every instance");
    control.stop_everything().await;
    let _ = control.runtimes.recover().await;
    logs.sync().await;
    served.map_err(|e| DaemonError::io("cannot serve on", &socket, e))
}
