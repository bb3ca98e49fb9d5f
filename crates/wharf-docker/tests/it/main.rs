//! The Docker runtime against this machine's Docker Engine, through the supervisor.
//!
//! Images are built locally (no registry is reached): FROM scratch with the static busybox of
//! Debian's `busybox-static`, whose `httpd`, `nc`, `wget` and `sh` stand in for web servers,
//! workers and health checks. Every test uses its own project name and removes every container,
//! network, volume and image it created, also when it fails.
//!
//! Without an engine the tests skip with a loud message; with `WHARF_REQUIRE_DOCKER=1` they
//! fail instead.

mod adopt;
mod lifecycle;
mod network;
mod volume;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use wharf_docker::DockerRuntime;
use wharf_model::{LoadOptions, Project};
use wharf_runtime::OutputLine;
use wharf_supervisor::{Backoff, Event, InstanceState, LogSink, Supervisor, SupervisorOptions};

/// How long a test waits for a stack to be ready before it fails (a bound, not a measurement).
pub const READY: Duration = Duration::from_secs(120);

/// The busybox binary the test images are built from.
const BUSYBOX: &str = "/bin/busybox";

/// The engine, or `None` (after saying so loudly) when none answers.
pub async fn engine() -> Option<DockerRuntime> {
    match DockerRuntime::connect().await {
        Ok(r) => Some(r),
        Err(e) => {
            if std::env::var("WHARF_REQUIRE_DOCKER").as_deref() == Ok("1") {
                panic!("WHARF_REQUIRE_DOCKER=1 but {e}");
            }
            // Straight to the standard error, which the test harness does not capture: a skip
            // must be seen even when the test "passes".
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! SKIPPED: wharf-docker integration test: {e}\n\
                 !!! (set WHARF_REQUIRE_DOCKER=1 to make this a failure)\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            None
        }
    }
}

/// Lines every instance wrote, by instance name.
#[derive(Default)]
pub struct Lines(pub Mutex<BTreeMap<String, Vec<String>>>);

impl LogSink for Lines {
    fn line(&self, instance: &InstanceState, line: &OutputLine) {
        self.0
            .lock()
            .unwrap()
            .entry(instance.name.clone())
            .or_default()
            .push(line.line.clone());
    }
}

/// One test's project: its directory (with the compose file and the busybox build context), a
/// unique name, and the cleanup of everything the Engine holds for it.
pub struct Stack {
    pub name: String,
    pub dir: tempfile::TempDir,
    pub image: String,
}

impl Stack {
    /// A project named `wharf-it-<case>-<pid>` whose compose file is `compose` with `IMAGE`
    /// replaced by the test image (every service builds it from `./bb`) and `init: true` (so
    /// that busybox gets the stop signal it has no handler for as PID 1).
    pub fn new(case: &str, compose: &str) -> Stack {
        let name = format!("wharf-it-{case}-{}", std::process::id());
        let image = format!("{name}-bb:test");
        let dir = tempfile::tempdir().unwrap();
        let bb = dir.path().join("bb");
        std::fs::create_dir(&bb).unwrap();
        std::fs::copy(BUSYBOX, bb.join("busybox")).unwrap_or_else(|e| {
            panic!("cannot copy {BUSYBOX} (apt-get install -y busybox-static): {e}")
        });
        std::fs::write(
            bb.join("Dockerfile"),
            "FROM scratch\n\
             COPY busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
             RUN [\"/bin/busybox\", \"mkdir\", \"-p\", \"/www\", \"/tmp\", \"/data\"]\n",
        )
        .unwrap();
        std::fs::write(bb.join(".dockerignore"), "*.log\n").unwrap();
        std::fs::write(bb.join("big.log"), "left out of the build context\n").unwrap();
        let stack = Stack { name, dir, image };
        stack.write(compose);
        stack
    }

    /// Replaces the compose file.
    pub fn write(&self, compose: &str) {
        let text = compose.replace(
            "IMAGE",
            &format!(
                "{}\n    build: {}\n    init: true",
                self.image,
                self.dir.path().join("bb").display()
            ),
        );
        std::fs::write(self.dir.path().join("compose.yaml"), text).unwrap();
    }

    pub fn load(&self) -> Arc<Project> {
        let options = LoadOptions {
            files: vec![self.dir.path().join("compose.yaml")],
            project_name: Some(self.name.clone()),
            working_dir: self.dir.path().to_path_buf(),
            ..LoadOptions::default()
        };
        match wharf_model::load(&options) {
            Ok(loaded) => Arc::new(loaded.project),
            Err(d) => panic!("the test's compose file does not load: {d:?}"),
        }
    }

    pub fn volumes_dir(&self) -> PathBuf {
        self.dir.path().join("volumes")
    }

    pub fn supervisor(&self, runtime: DockerRuntime, logs: Arc<Lines>) -> Supervisor {
        Supervisor::new(
            Arc::new(runtime),
            logs,
            SupervisorOptions {
                base_env: BTreeMap::new(),
                volumes_dir: self.volumes_dir(),
                backoff: Backoff::default(),
            },
        )
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let label = format!("label=com.docker.compose.project={}", self.name);
        let script = format!(
            "docker ps -aq --filter {label} | xargs -r docker rm -f >/dev/null; \
             docker network ls -q --filter {label} | xargs -r docker network rm >/dev/null; \
             docker volume ls -q --filter {label} | xargs -r docker volume rm >/dev/null; \
             docker rmi -f {} >/dev/null 2>&1; true",
            self.image
        );
        let _ = std::process::Command::new("sh")
            .arg("-c")
            .arg(script)
            .status();
    }
}

/// `docker <args>`, its standard output trimmed; panics when it fails.
pub fn docker(args: &[&str]) -> String {
    let out = std::process::Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs");
    assert!(
        out.status.success(),
        "docker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `docker exec <container> argv`: whether it succeeded, and its output.
pub fn exec(container: &str, argv: &[&str]) -> (bool, String) {
    let out = std::process::Command::new("docker")
        .arg("exec")
        .arg(container)
        .args(argv)
        .output()
        .expect("the docker CLI runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// The container id of an instance.
pub fn container_id(name: &str) -> String {
    docker(&["inspect", "-f", "{{.Id}}", name])
}

/// Every event until the receiver lags or closes, as `instance kind` lines.
pub fn drain_events(rx: &mut tokio::sync::broadcast::Receiver<Event>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        let kind = serde_json::to_value(&e.kind).unwrap()["kind"]
            .as_str()
            .unwrap()
            .to_string();
        out.push(format!("{} {kind}", e.instance));
    }
    out
}

pub fn position(events: &[String], wanted: &str) -> usize {
    events
        .iter()
        .position(|e| e == wanted)
        .unwrap_or_else(|| panic!("no event `{wanted}` in {events:#?}"))
}
