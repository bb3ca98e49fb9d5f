//! Reaching the daemon: connect to `<state>/wharf.sock`, and when nothing answers, start
//! `wharf daemon` detached (its own session, output to `<state>/daemon.log`) and wait for its
//! socket, within a deadline.

use std::fs::OpenOptions;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Child, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::Instant;
use wharf_api::{Client, ErrorKind};
use wharf_daemon::{EXIT_ALREADY_RUNNING, StateDir};

/// How long a daemon started on demand may take to answer (it brings back stored projects
/// while requests wait, so this only covers its start).
const START_DEADLINE: Duration = Duration::from_secs(20);

/// A client of this user's daemon, started if needed.
pub async fn connect() -> anyhow::Result<Client> {
    let state = StateDir::from_env()?;
    let client = Client::new(state.socket());
    match client.info().await {
        Ok(_) => return Ok(client),
        Err(e) if e.kind == ErrorKind::Connect => {}
        Err(e) => return Err(e.into()),
    }
    let mut child = start_daemon(&state).with_context(|| {
        format!(
            "cannot start the wharf daemon for {}",
            state.root().display()
        )
    })?;
    let deadline = Instant::now() + START_DEADLINE;
    let mut lost_the_race = false;
    loop {
        match client.info().await {
            Ok(_) => return Ok(client),
            Err(e) if e.kind == ErrorKind::Connect => {}
            Err(e) => return Err(e.into()),
        }
        let exited = if lost_the_race {
            None
        } else {
            child
                .try_wait()
                .context("cannot wait for the wharf daemon")?
        };
        if let Some(status) = exited {
            // Another CLI started a daemon at the same time: that one will answer.
            if status.code() == Some(i32::from(EXIT_ALREADY_RUNNING)) {
                lost_the_race = true;
            } else {
                bail!(
                    "the wharf daemon stopped at once ({status}); the end of {}:\n{}",
                    state.daemon_log().display(),
                    log_tail(&state)
                );
            }
        }
        if Instant::now() >= deadline {
            bail!(
                "the wharf daemon did not answer on {} within {} s; see {} (or run `wharf daemon` in a terminal to see what it says)",
                state.socket().display(),
                START_DEADLINE.as_secs(),
                state.daemon_log().display()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn start_daemon(state: &StateDir) -> io::Result<Child> {
    state.create().map_err(io::Error::other)?;
    // Nothing is written in a directory someone else owns (the daemon would refuse it too).
    state
        .check_owner(nix::unistd::geteuid().as_raw())
        .map_err(io::Error::other)?;
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(state.daemon_log())?;
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command
        .arg("daemon")
        .env("WHARF_STATE_DIR", state.root())
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    // SAFETY: setsid(2) is async-signal-safe and touches no memory of the parent.
    unsafe {
        command.pre_exec(|| nix::unistd::setsid().map(|_| ()).map_err(io::Error::from));
    }
    command.spawn()
}

/// The last lines of the daemon's log, for an error message.
fn log_tail(state: &StateDir) -> String {
    let Ok(mut file) = std::fs::File::open(state.daemon_log()) else {
        return "  (no log)".into();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(2000)));
    let mut bytes = Vec::new();
    let _ = file.read_to_end(&mut bytes);
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..]
        .iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
