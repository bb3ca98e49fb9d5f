//! Building runtimes and specs, reading output, and looking at processes through `/proc`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use wharf_runtime::native::{NativeConfig, NativeRuntime};
use wharf_runtime::{ExitStatus, InstanceSpec, OutputLine, Signal, Started, Stream};

/// Generous bound on anything a test waits for; reaching it is a failure, not a pass.
pub const PATIENCE: Duration = Duration::from_secs(30);

pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Returns from the test (a pass), loudly, when not running as root.
macro_rules! require_root {
    () => {
        if !crate::support::is_root() {
            eprintln!(
                "SKIPPED {}:{}: needs root (CI runs these tests as root)",
                module_path!(),
                line!()
            );
            return;
        }
    };
}

pub fn runtime(pid_namespace: bool) -> NativeRuntime {
    NativeRuntime::new(NativeConfig {
        shim: vec![env!("CARGO_BIN_EXE_wharf-shim").into()],
        pid_namespace,
        network: None,
    })
}

/// The `pid_namespace` settings this machine can test: both as root, none-only otherwise.
pub fn modes() -> Vec<bool> {
    if is_root() {
        vec![true, false]
    } else {
        eprintln!("pid_namespace=true not tested: needs root");
        vec![false]
    }
}

pub fn spec(argv: &[&str]) -> InstanceSpec {
    InstanceSpec {
        project: "it".into(),
        service: "svc".into(),
        number: 1,
        name: "it-svc-1".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
        working_dir: "/".into(),
        environment: BTreeMap::from([("PATH".into(), "/usr/bin:/bin".into())]),
        user: None,
        stop_signal: Signal::TERM,
        network: None,
    }
}

pub fn sh(script: &str) -> InstanceSpec {
    spec(&["sh", "-c", script])
}

/// Reads every line until the output closes, then the exit status.
pub async fn finish(started: Started) -> (Vec<OutputLine>, ExitStatus) {
    let Started {
        mut output, exit, ..
    } = started;
    let run = async {
        let mut lines = Vec::new();
        while let Some(line) = output.recv().await {
            lines.push(line);
        }
        (lines, exit.await.expect("exit status"))
    };
    tokio::time::timeout(PATIENCE, run)
        .await
        .expect("the instance did not finish in time")
}

pub fn texts(lines: &[OutputLine], stream: Stream) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.stream == stream)
        .map(|l| l.line.clone())
        .collect()
}

/// Waits for a line equal to `want`; returns the lines before it.
pub async fn wait_for_line(output: &mut mpsc::Receiver<OutputLine>, want: &str) -> Vec<String> {
    let wait = async {
        let mut before = Vec::new();
        loop {
            match output.recv().await {
                Some(l) if l.line == want => return before,
                Some(l) => before.push(l.line),
                None => panic!("output closed before `{want}`; got {before:?}"),
            }
        }
    };
    tokio::time::timeout(PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("no line `{want}` in time"))
}

/// A process, identified by pid and start time (so that a recycled pid is not mistaken for it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    start_time: u64,
}

struct Stat {
    ppid: i32,
    state: char,
    start_time: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = text[text.rfind(')')? + 2..].split_whitespace().collect();
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

pub fn proc(pid: i32) -> Option<Proc> {
    stat(pid).map(|s| Proc {
        pid,
        start_time: s.start_time,
    })
}

/// Running (a zombie has exited: it only waits for its parent to reap it).
pub fn alive(p: &Proc) -> bool {
    stat(p.pid).is_some_and(|s| s.start_time == p.start_time && s.state != 'Z')
}

/// `root` and every process below it.
pub fn tree(root: i32) -> Vec<Proc> {
    let mut children: HashMap<i32, Vec<i32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        if let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok())
            && let Some(s) = stat(pid)
        {
            children.entry(s.ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut todo = vec![root];
    while let Some(pid) = todo.pop() {
        if let Some(p) = proc(pid).filter(alive) {
            out.push(p);
        }
        todo.extend(children.get(&pid).into_iter().flatten());
    }
    out
}

pub fn command_name(p: &Proc) -> String {
    std::fs::read_to_string(format!("/proc/{}/comm", p.pid))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// Polls until none of `procs` runs or `within` passes; returns those still running then.
pub async fn survivors(procs: &[Proc], within: Duration) -> Vec<Proc> {
    let deadline = Instant::now() + within;
    loop {
        let left: Vec<Proc> = procs.iter().filter(|p| alive(p)).copied().collect();
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// SIGKILLs what a failed test left behind.
pub fn reap_leftovers(procs: &[Proc]) {
    for p in procs.iter().filter(|p| alive(p)) {
        // SAFETY: kill(2); the start time was checked just above.
        unsafe { nix::libc::kill(p.pid, nix::libc::SIGKILL) };
    }
}

pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

pub fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path)
        .expect("canonical path")
        .display()
        .to_string()
}
