//! The supervisor with the native runtime: real processes, real health checks, real signals.
//!
//! This binary is also the shim the native runtime starts (`it __shim ...`), hence its own `main`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use libtest_mimic::{Arguments, Failed, Trial};
use wharf_model::{LoadOptions, Project};
use wharf_runtime::native::{NativeConfig, NativeRuntime};
use wharf_supervisor::{
    Backoff, Event, EventKind, NoLogs, Status, Supervisor, SupervisorOptions, UpOptions,
};

mod bench;
mod native;
mod network;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.get(1).is_some_and(|a| a == "__shim") {
        std::process::exit(wharf_runtime::shim::main(args[2..].to_vec()));
    }
    // Helpers of the network tests and the isolation benchmark (see network.rs, bench.rs).
    match args.get(1).and_then(|a| a.to_str()) {
        Some("__hold") => network::hold(&args[2..]),
        Some("__serve") => bench::serve(&args[2..]),
        Some("__load") => bench::load(&args[2..]),
        _ => {}
    }
    let mut trials = native::trials();
    trials.extend(network::trials());
    trials.extend(bench::trials());
    libtest_mimic::run(&Arguments::from_args(), trials).exit();
}

pub(crate) fn trial(name: &'static str, f: fn(&Path) -> Result<(), Failed>) -> Trial {
    Trial::test(name, move || {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        f(dir.path())
    })
}

pub(crate) fn project(dir: &Path, yaml: &str) -> Arc<Project> {
    let options = LoadOptions {
        files: vec!["-".into()],
        working_dir: dir.to_path_buf(),
        project_name: Some("it".into()),
        stdin: Some(yaml.replace("$DIR", &dir.display().to_string())),
        environment: BTreeMap::new(),
        ..LoadOptions::default()
    };
    match wharf_model::load(&options) {
        Ok(l) => Arc::new(l.project),
        Err(d) => panic!("{d}"),
    }
}

pub(crate) fn supervisor(dir: &Path) -> Supervisor {
    let exe = std::env::current_exe().expect("own path");
    let runtime = NativeRuntime::new(NativeConfig::new(vec![exe.into(), "__shim".into()]));
    let base_env = std::env::vars().filter(|(k, _)| k == "PATH").collect();
    Supervisor::new(
        Arc::new(runtime),
        Arc::new(NoLogs),
        SupervisorOptions {
            base_env,
            volumes_dir: dir.join("volumes"),
            backoff: Backoff::default(),
        },
    )
}

pub(crate) fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Collects events until `done` says so, failing after a generous deadline (a hang, not a
/// timing assertion).
pub(crate) async fn events_until(
    rx: &mut tokio::sync::broadcast::Receiver<Event>,
    seen: &mut Vec<Event>,
    done: impl Fn(&[Event]) -> bool,
) -> Result<(), Failed> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !done(seen) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(e)) => seen.push(e),
            Ok(Err(e)) => return Err(format!("event stream: {e}").into()),
            Err(_) => {
                return Err(format!("no such event within 30 s; saw {:#?}", summary(seen)).into());
            }
        }
    }
    Ok(())
}

pub(crate) fn summary(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| format!("{} {:?}", e.instance, e.kind))
        .collect()
}

pub(crate) fn position(events: &[Event], instance: &str, kind: &EventKind) -> Option<usize> {
    events
        .iter()
        .position(|e| e.instance == instance && &e.kind == kind)
}

pub(crate) fn is_exited(s: &Status) -> bool {
    matches!(s, Status::Exited { .. })
}

pub(crate) fn up_options() -> UpOptions {
    UpOptions::default()
}
