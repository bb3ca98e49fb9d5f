//! A project of real processes in a temporary directory, with its own state directory (so its
//! own daemon, started on demand by the first verb), stopped by its own pid when the test ends.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;
use wharf_daemon::StateDir;

pub struct Stack {
    dir: tempfile::TempDir,
}

impl Stack {
    /// `compose.yaml` is `compose` with `{STATE}` replaced by the state directory.
    pub fn new(compose: &str) -> Stack {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::create_dir(dir.path().join("app")).unwrap();
        let stack = Stack { dir };
        let text = compose.replace("{STATE}", stack.state().to_str().unwrap());
        std::fs::write(stack.app().join("compose.yaml"), text).unwrap();
        stack
    }

    pub fn app(&self) -> PathBuf {
        self.dir.path().join("app")
    }

    pub fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// `wharf` in the project's directory, with only WHARF_STATE_DIR set.
    pub fn wharf(&self) -> assert_cmd::Command {
        let mut cmd = crate::wharf(&self.app());
        cmd.env("WHARF_STATE_DIR", self.state())
            .timeout(Duration::from_secs(60));
        cmd
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        StateDir::new(self.state()).daemon_pid()
    }

    /// `wharf ps -a --format json`, by instance name.
    pub fn ps(&self) -> Vec<Value> {
        let out = self
            .wharf()
            .args(["ps", "-a", "--format", "json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: Value = serde_json::from_slice(&out).expect("ps prints JSON");
        v.as_array().expect("a list of instances").clone()
    }

    /// The instance named `name` in `ps -a`.
    pub fn instance(&self, name: &str) -> Option<Value> {
        self.ps().into_iter().find(|i| i["name"] == name)
    }

    /// Waits (polling `ps`) until `check` holds for the instance, or fails after `within`.
    pub fn wait_for(&self, name: &str, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            if let Some(i) = self.instance(name).filter(|i| check(i)) {
                return i;
            }
            assert!(
                Instant::now() < deadline,
                "{name} did not reach the expected state within {within:?}: {:?}",
                self.ps()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Stack {
    /// Stops this test's daemon (SIGTERM: it stops its instances), by its pid.
    fn drop(&mut self) {
        let Some(pid) = self.daemon_pid() else {
            return;
        };
        signal(pid, Signal::SIGTERM);
        if !wait_gone(pid, Duration::from_secs(30)) {
            signal(pid, Signal::SIGKILL);
            wait_gone(pid, Duration::from_secs(5));
        }
    }
}

pub fn signal(pid: u32, signal: Signal) {
    let pid = Pid::from_raw(i32::try_from(pid).unwrap());
    // Already gone is fine.
    let _ = nix::sys::signal::kill(pid, signal);
}

/// Whether a process exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until `pid` is gone; false when it is still there after `within`.
pub fn wait_gone(pid: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    while alive(pid) {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

pub fn pids(instances: &[Value]) -> Vec<u32> {
    instances
        .iter()
        .filter_map(|i| i["pid"].as_u64())
        .map(|p| u32::try_from(p).unwrap())
        .collect()
}

/// A port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// One GET on a connection of its own: the status, or why there is none.
pub fn get(addr: SocketAddr, path: &str) -> Result<(u16, String), String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(10))
        .map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: app.test\r\nConnection: close\r\n\r\n"
    )
    .map_err(|e| format!("write: {e}"))?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| format!("read: {e}"))?;
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no status line in {answer:?}"))?;
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
}
