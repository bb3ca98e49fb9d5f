//! Issue 12 through the binary, as a user (or an attacker, or bad luck) meets it: names that are
//! paths, a state directory found too open or owned by someone else, a damaged store, and a
//! router flooded with idle connections while `wharf ps` must still answer.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::time::Duration;

use wharf_daemon::store::Store;

use crate::stack::{Stack, free_port};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn stderr(cmd: &mut assert_cmd::Command) -> (bool, String) {
    let out = cmd.output().expect("wharf runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

/// Item 2: `down -v` removed whatever directory a volume's `name` pointed at.
#[test]
fn a_volume_named_as_a_path_is_refused_at_load() {
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("precious"), "data").unwrap();
    for name in [victim.path().to_str().unwrap().to_string(), "../x".into()] {
        let stack = Stack::new(&format!(
            "name: named\nservices:\n  a:\n    command: [\"sleep\", \"100\"]\n    volumes: [data:/data]\nvolumes:\n  data:\n    name: {name}\n"
        ));
        let (ok, text) = stderr(stack.wharf().args(["up", "-d"]));
        assert!(!ok, "{text}");
        assert!(
            text.contains(&format!(
                "volume `data`: `{name}` is not a valid volume name"
            )),
            "{text}"
        );
        assert!(text.contains("compose.yaml:8"), "{text}");
        let (ok, text) = stderr(stack.wharf().args(["down", "-v"]));
        assert!(!ok, "{text}");
    }
    assert!(victim.path().join("precious").exists());
}

/// Item 2, defense in depth: a store written before names were checked may hold such a name;
/// `down -v` forgets the project and removes nothing outside the volumes folder.
#[test]
fn down_v_never_removes_what_a_stored_name_points_at() {
    let victim = tempfile::tempdir().unwrap();
    std::fs::write(victim.path().join("precious"), "data").unwrap();
    let stack = Stack::new("name: unused\nservices: {}\n");
    std::fs::create_dir_all(stack.state()).unwrap();
    let yaml = format!(
        "name: evil\nservices:\n  a:\n    command: [\"true\"]\n    volumes: [data:/data]\nvolumes:\n  data:\n    name: {}\n",
        victim.path().display()
    );
    Store::open(&stack.state().join("state.redb"))
        .unwrap()
        .record_up("evil", &yaml, &stack.app(), None, Default::default())
        .unwrap();

    let (ok, text) = stderr(stack.wharf().args(["-p", "evil", "down", "-v"]));
    assert!(ok, "{text}");
    assert!(text.contains("forgotten anyway"), "{text}");
    assert!(text.contains("not a valid volume name"), "{text}");
    assert!(victim.path().join("precious").exists(), "{text}");
    // Forgotten: a second `down` finds nothing.
    let (ok, text) = stderr(stack.wharf().args(["-p", "evil", "down", "-v"]));
    assert!(ok, "{text}");
    assert!(text.contains("nothing to take down"), "{text}");
}

/// Item 3: an existing state directory (0755, files 0644) is made private before it is used.
#[test]
fn an_existing_state_dir_is_made_private() {
    let stack = Stack::new("name: private\nservices:\n  a:\n    command: [\"sleep\", \"100\"]\n");
    let state = stack.state();
    std::fs::create_dir_all(state.join("logs/old")).unwrap();
    for (file, text) in [("daemon.log", "x"), ("logs/old/old-a-1.log", "{}")] {
        std::fs::write(state.join(file), text).unwrap();
        std::fs::set_permissions(state.join(file), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    for dir in ["", "logs", "logs/old"] {
        std::fs::set_permissions(state.join(dir), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    stack.wharf().args(["up", "-d"]).assert().success();
    assert_eq!(mode(&state), 0o700);
    for dir in ["logs", "logs/old"] {
        assert_eq!(mode(&state.join(dir)), 0o700, "{dir}");
    }
    for file in [
        "daemon.log",
        "state.redb",
        "daemon.lock",
        "wharf.sock",
        "logs/old/old-a-1.log",
    ] {
        assert_eq!(mode(&state.join(file)), 0o600, "{file}");
    }
}

/// Item 3: a state directory someone else owns (they could have planted a socket or a store)
/// is refused with its name, its owner and what to do.
#[test]
fn a_state_dir_owned_by_another_user_is_refused() {
    if !is_root() {
        eprintln!("skipped: needs root to give the directory to another user");
        return;
    }
    let stack = Stack::new("name: theirs\nservices:\n  a:\n    command: [\"sleep\", \"100\"]\n");
    std::fs::create_dir_all(stack.state()).unwrap();
    std::os::unix::fs::chown(stack.state(), Some(65534), Some(65534)).unwrap();
    let (ok, text) = stderr(stack.wharf().args(["ps"]));
    assert!(!ok, "{text}");
    assert!(text.contains("refuses the state directory"), "{text}");
    assert!(text.contains(stack.state().to_str().unwrap()), "{text}");
    assert!(text.contains("uid 65534"), "{text}");
    assert!(!stack.state().join("state.redb").exists());
    assert!(!stack.state().join("daemon.log").exists());
    assert_eq!(stack.daemon_pid(), None);
}

/// Item 6: a damaged store made the daemon panic (exit 101, a backtrace in the CLI); an empty
/// one was taken silently for "no projects". Now the file is moved aside, the daemon says so
/// in its log, and it serves.
#[test]
fn a_damaged_or_empty_store_is_moved_aside_and_the_daemon_serves() {
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let random: Vec<u8> = (0..32 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    for (content, reason) in [(random, "damaged"), (Vec::new(), "empty (0 bytes)")] {
        let stack = Stack::new("name: hurt\nservices:\n  a:\n    command: [\"sleep\", \"100\"]\n");
        std::fs::create_dir_all(stack.state().join("logs/lost")).unwrap();
        std::fs::write(stack.state().join("state.redb"), content).unwrap();
        let (ok, text) = stderr(stack.wharf().args(["up", "-d"]));
        assert!(ok, "{text}");
        // The user is told by `up`, once.
        assert!(text.contains("warning: "), "{text}");
        assert!(text.contains("state.redb.damaged-"), "{text}");
        assert!(text.contains("stopped services): lost;"), "{text}");
        let (ok, text) = stderr(stack.wharf().args(["up", "-d"]));
        assert!(ok, "{text}");
        assert!(!text.contains("damaged-"), "{text}");
        let log = std::fs::read_to_string(stack.state().join("daemon.log")).unwrap();
        assert!(log.contains(reason), "{log}");
        assert!(log.contains("state.redb.damaged-"), "{log}");
        assert!(log.contains("no longer knows these projects"), "{log}");
        assert!(log.contains("lost"), "{log}");
        assert!(!log.contains("panicked"), "{log}");
        let aside = std::fs::read_dir(stack.state())
            .unwrap()
            .filter_map(Result::ok)
            .any(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with("state.redb.damaged-")
            });
        assert!(aside);
        assert_eq!(stack.ps().len(), 1);
    }
}

/// Item 4: a few hundred idle connections to the router starved the daemon of file descriptors
/// (soft limit 1024) and `wharf ps` hung. The daemon is started here with a soft limit of 128
/// (under the router's 256 connections per client address, so that the limit is what is
/// tested), which it raises to the hard limit; 600 idle connections later `ps` answers.
#[test]
fn ps_answers_while_the_router_holds_many_idle_connections() {
    let port = free_port();
    let stack = Stack::new(&format!(
        "name: flooded\nx-wharf:\n  router:\n    http: 127.0.0.1:{port}\nservices:\n  web:\n    command: [\"sleep\", \"1000\"]\n    labels:\n      wharf.http.port: \"8000\"\n"
    ));
    let mut up = std::process::Command::new(assert_cmd::cargo::cargo_bin("wharf"));
    up.env_clear()
        .current_dir(stack.app())
        .env("WHARF_STATE_DIR", stack.state())
        .args(["up", "-d"]);
    // SAFETY: setrlimit(2) is async-signal-safe; the closure touches no shared memory.
    unsafe {
        up.pre_exec(|| {
            let mut limit = nix::libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if nix::libc::getrlimit(nix::libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            limit.rlim_cur = 128.min(limit.rlim_max);
            if nix::libc::setrlimit(nix::libc::RLIMIT_NOFILE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let status = up.status().expect("wharf up runs");
    assert!(status.success());
    let daemon = stack.daemon_pid().expect("a daemon runs");
    let limits = std::fs::read_to_string(format!("/proc/{daemon}/limits")).unwrap();
    let open_files: Vec<&str> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("a limit of open files")
        .split_whitespace()
        .collect();
    assert_eq!(open_files[3], open_files[4], "soft == hard: {limits}");
    assert_ne!(open_files[3], "128", "{limits}");

    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut idle = Vec::new();
    for _ in 0..600 {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(10)) {
            Ok(s) => idle.push(s),
            Err(e) => panic!("connection {} to the router: {e}", idle.len()),
        }
    }
    let out = stack
        .wharf()
        .args(["ps", "--format", "json"])
        .timeout(Duration::from_secs(60))
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let ps: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(ps.as_array().map(Vec::len), Some(1), "{ps}");
    drop(idle);
}

/// Item 5: `down` on a full disk stopped the instances but did not forget the project, which
/// came back after a restart of the daemon. The state directory is a 4 MiB tmpfs here, filled
/// to ENOSPC before `down`.
#[test]
fn down_forgets_the_project_on_a_full_disk() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let stack = Stack::new(
        "name: full\nservices:\n  chatty:\n    command: [\"sh\", \"-c\", \"yes 'a line of output' | head -n 20000; sleep 1000\"]\n    restart: always\n",
    );
    std::fs::create_dir_all(stack.state()).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs"])
        .arg(stack.state())
        .status()
        .expect("mount runs");
    assert!(mounted.success());
    /// Stops the daemon (its lock file is on the tmpfs) and unmounts, also when the test fails.
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            if let Some(pid) = wharf_daemon::StateDir::new(&self.0).daemon_pid() {
                crate::stack::signal(pid, nix::sys::signal::Signal::SIGTERM);
                if !crate::stack::wait_gone(pid, Duration::from_secs(30)) {
                    crate::stack::signal(pid, nix::sys::signal::Signal::SIGKILL);
                    crate::stack::wait_gone(pid, Duration::from_secs(5));
                }
            }
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.0)
                .status();
        }
    }
    let _unmount = Unmount(stack.state());

    stack
        .wharf()
        .args(["up", "-d", "--wait"])
        .assert()
        .success();
    // Its output is on disk (20,000 lines).
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while stack.ps().is_empty()
        || std::fs::metadata(stack.state().join("logs/full/full-chatty-1.log"))
            .map_or(true, |m| m.len() < 200_000)
    {
        assert!(std::time::Instant::now() < deadline, "no output on disk");
        std::thread::sleep(Duration::from_millis(50));
    }
    let filler = stack.state().join("filler");
    {
        use std::io::Write as _;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![1u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
    }

    let (ok, text) = stderr(stack.wharf().args(["down"]));
    assert!(ok, "{text}");

    // A new daemon does not bring the project back.
    let daemon = stack.daemon_pid().expect("a daemon runs");
    crate::stack::signal(daemon, nix::sys::signal::Signal::SIGTERM);
    assert!(crate::stack::wait_gone(daemon, Duration::from_secs(30)));
    std::fs::remove_file(&filler).unwrap();
    let (ok, text) = stderr(stack.wharf().args(["ps"]));
    assert!(!ok, "{text}");
    assert!(text.contains("no project `full`"), "{text}");
    let daemon = stack.daemon_pid().expect("a daemon runs");
    crate::stack::signal(daemon, nix::sys::signal::Signal::SIGTERM);
    assert!(crate::stack::wait_gone(daemon, Duration::from_secs(30)));
}

/// Item 8: `GET /v1/projects/..%2F..%2Ftrav/logs?follow=true` read a file outside the state
/// directory (that branch skipped the project lookup). The real daemon refuses the name.
#[test]
fn the_logs_of_a_project_name_that_is_a_path_are_refused() {
    use std::io::{Read as _, Write as _};
    let stack = Stack::new("name: trav\nservices:\n  a:\n    command: [\"sleep\", \"100\"]\n");
    stack.wharf().args(["up", "-d"]).assert().success();
    // `<state>/logs/../../trav/` is the stack's own temporary directory's `trav/`.
    let outside = stack.state().join("../trav");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(
        outside.join("trav-a-1.log"),
        "{\"time\":\"2026-01-01T00:00:00.000Z\",\"stream\":\"stdout\",\"line\":\"SECRET-OUTSIDE\"}\n",
    )
    .unwrap();
    for target in [
        "/v1/projects/..%2F..%2Ftrav/logs?follow=true",
        "/v1/projects/..%2F..%2Ftrav/logs",
    ] {
        let mut socket =
            std::os::unix::net::UnixStream::connect(stack.state().join("wharf.sock")).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        write!(
            socket,
            "GET {target} HTTP/1.1\r\nhost: wharf\r\nconnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{target}: {answer}");
        assert!(answer.contains("not a valid project name"), "{answer}");
        assert!(!answer.contains("SECRET-OUTSIDE"), "{answer}");
    }
}
