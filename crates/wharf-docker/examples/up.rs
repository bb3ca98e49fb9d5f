//! `up` (and `down`) of a compose file on the Docker runtime through the supervisor, without the
//! daemon: what bench/docker-up.sh times against docker-compose. Each run is a fresh process, so
//! a second `up` adopts the running containers as a restarted daemon does.
//!
//! ```text
//! cargo run --release -p wharf-docker --example up -- compose.yaml [--down]
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use wharf_docker::DockerRuntime;
use wharf_supervisor::{Backoff, NoLogs, Supervisor, SupervisorOptions, UpOptions};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(file) = args.first() else {
        eprintln!("usage: up <compose.yaml> [--down]");
        std::process::exit(2);
    };
    let file = PathBuf::from(file);
    let options = wharf_model::LoadOptions {
        files: vec![file.clone()],
        working_dir: std::env::current_dir().unwrap_or_default(),
        environment: std::env::vars().collect(),
        ..Default::default()
    };
    let project = match wharf_model::load(&options) {
        Ok(l) => Arc::new(l.project),
        Err(d) => {
            eprintln!("{}: {d:?}", file.display());
            std::process::exit(1);
        }
    };
    let runtime = match DockerRuntime::connect().await {
        Ok(r) => r.with_progress(Arc::new(|line| eprintln!("{line}"))),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let sup = Supervisor::new(
        Arc::new(runtime),
        Arc::new(NoLogs),
        SupervisorOptions {
            base_env: BTreeMap::new(),
            volumes_dir: std::env::temp_dir(),
            backoff: Backoff::default(),
        },
    );
    if args.iter().any(|a| a == "--down") {
        match sup.down_with(&project.name, true).await {
            Ok(_) => return,
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(1);
            }
        }
    }
    match sup.up(Arc::clone(&project), UpOptions::default()).await {
        Ok(report) => eprint!("{}", report.plan),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = sup
        .wait_ready(&project.name, None, Duration::from_secs(300))
        .await
    {
        eprintln!("{e}");
        std::process::exit(1);
    }
}
