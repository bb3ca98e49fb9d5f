//! `wharf daemon`: the daemon in the foreground, until SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use wharf_daemon::{DaemonConfig, DaemonError, EXIT_ALREADY_RUNNING, StateDir};
use wharf_runtime::native::{NativeConfig, NativeRuntime};

pub fn run() -> anyhow::Result<ExitCode> {
    let state_dir = StateDir::from_env()?;
    let exe = std::env::current_exe().context("cannot find the wharf binary to run the shim")?;
    // As root, instances get the networks Compose describes (namespaces, bridges, names).
    let runtime = NativeRuntime::new(
        NativeConfig::new(wharf_runtime::native::shim_next_to(&exe)).isolated(state_dir.root()),
    );
    let base_env: BTreeMap<String, String> = ["PATH", "HOME", "LANG", "TZ"]
        .into_iter()
        .filter_map(|k| Some((k.to_string(), std::env::var(k).ok()?)))
        .collect();
    let config = DaemonConfig {
        log_floor: wharf_daemon::log_floor_from_env(state_dir.root()),
        state_dir,
        runtime: Arc::new(runtime),
        base_env,
        log_cap: wharf_daemon::log_store::DEFAULT_CAP,
    };
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    tokio.block_on(async {
        let mut interrupt = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
        let mut terminate = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
        let shutdown = async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        };
        match wharf_daemon::run(config, shutdown).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e @ DaemonError::AlreadyRunning { .. }) => {
                eprintln!("wharf daemon: {e}");
                Ok(ExitCode::from(EXIT_ALREADY_RUNNING))
            }
            Err(e) => Err(e.into()),
        }
    })
}
