//! Bad luck and hostile neighbours at the daemon's state directory (issue 12): a directory
//! found too open or owned by someone else, a damaged or empty store, a full disk, names that
//! lead out of the log directory.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use wharf_daemon::log_store::LogStore;
use wharf_daemon::store::Store;
use wharf_daemon::{DaemonError, StateDir};

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o777
}

fn write_with_mode(path: &Path, text: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Item 3: an existing state directory kept 0755 and the store and logs (the services'
/// environments, passwords included) 0644.
#[test]
fn an_existing_state_dir_and_its_files_are_made_private() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state");
    let dir = StateDir::new(&root);
    fs::create_dir_all(root.join("logs/p")).unwrap();
    fs::create_dir_all(root.join("tls/ca")).unwrap();
    fs::create_dir_all(root.join("volumes/p_data")).unwrap();
    for d in [
        "",
        "logs",
        "logs/p",
        "tls",
        "tls/ca",
        "volumes",
        "volumes/p_data",
    ] {
        fs::set_permissions(root.join(d), fs::Permissions::from_mode(0o755)).unwrap();
    }
    drop(Store::open(&dir.store()).unwrap());
    fs::set_permissions(dir.store(), fs::Permissions::from_mode(0o644)).unwrap();
    write_with_mode(&root.join("daemon.log"), "x", 0o644);
    write_with_mode(&root.join("logs/p/p-web-1.log"), "{}", 0o644);
    write_with_mode(&root.join("logs/router-access.log"), "x", 0o644);
    write_with_mode(&root.join("tls/ca/key.pem"), "k", 0o644);
    write_with_mode(&root.join("tls/ca/cert.pem"), "c", 0o644);
    write_with_mode(&root.join("volumes/p_data/file"), "data", 0o644);

    dir.prepare().unwrap();

    assert_eq!(mode(&root), 0o700);
    for d in ["logs", "logs/p", "tls", "tls/ca"] {
        assert_eq!(mode(&root.join(d)), 0o700, "{d}");
    }
    for f in [
        "state.redb",
        "daemon.log",
        "logs/p/p-web-1.log",
        "logs/router-access.log",
        "tls/ca/key.pem",
        "tls/ca/cert.pem",
    ] {
        assert_eq!(mode(&root.join(f)), 0o600, "{f}");
    }
    // The instances' data is theirs.
    assert_eq!(mode(&root.join("volumes/p_data")), 0o755);
    assert_eq!(mode(&root.join("volumes/p_data/file")), 0o644);

    // Files the daemon makes from then on are private too.
    let logs = LogStore::open(root.join("logs"), 1 << 20).unwrap();
    logs.append(
        "q",
        "web",
        "q-web-1",
        std::time::SystemTime::now(),
        wharf_api::message::LogStream::Stdout,
        "secret=1",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(logs.sync());
    assert_eq!(mode(&root.join("logs/q")), 0o700);
    assert_eq!(mode(&root.join("logs/q/q-web-1.log")), 0o600);
    let fresh = tmp.path().join("fresh.redb");
    drop(Store::open(&fresh).unwrap());
    assert_eq!(mode(&fresh), 0o600);
}

/// Item 3: a state directory another user could have created first (and planted a socket or a
/// store in) is refused, naming the directory, its owner and what to do.
#[test]
fn a_state_dir_owned_by_another_user_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("state");
    let dir = StateDir::new(&root);
    dir.create().unwrap();
    let owner = fs::metadata(&root).unwrap().uid();
    if is_root() {
        rustix::fs::chown(
            &root,
            Some(rustix::fs::Uid::from_raw(65534)),
            Some(rustix::fs::Gid::from_raw(65534)),
        )
        .unwrap();
        let e = dir.prepare().unwrap_err();
        check_refusal(&e, &root, 65534);
        // Nothing was changed in it.
        assert!(!dir.store().exists());
    } else {
        // Not root: the directory is ours; someone else (neither root nor its owner) is refused.
        let e = dir.check_owner(owner + 1).unwrap_err();
        check_refusal(&e, &root, owner);
    }
    // Its owner may use it.
    let me = rustix::process::geteuid().as_raw();
    if !is_root() {
        dir.check_owner(me).unwrap();
    }
}

fn check_refusal(e: &DaemonError, root: &Path, owner: u32) {
    assert!(matches!(e, DaemonError::UnsafeStateDir { .. }), "{e:?}");
    let text = e.to_string();
    assert!(text.contains(root.to_str().unwrap()), "{text}");
    assert!(text.contains(&format!("uid {owner}")), "{text}");
    assert!(text.contains("WHARF_STATE_DIR"), "{text}");
}

/// A store holding projects `alpha` and `beta`, closed.
fn store_with_projects(path: &Path) {
    let store = Store::open(path).unwrap();
    for name in ["alpha", "beta"] {
        let yaml = format!("name: {name}\n# MARKER-{name}-{}\n", "x".repeat(3000));
        store
            .record_up(name, &yaml, Path::new("/srv"), None, Default::default())
            .unwrap();
    }
}

fn known() -> Box<dyn Fn() -> Vec<String> + Send + Sync> {
    Box::new(|| vec!["alpha".to_string(), "beta".to_string()])
}

/// Opens a damaged store and checks it was moved aside with a message naming the file and the
/// projects lost, and that a new, working store took its place.
fn check_moved_aside(path: &Path, reason: &str) {
    let store = Store::open_with(path, known()).expect("a damaged store is not an error");
    let recoveries = store.recoveries();
    assert_eq!(recoveries.len(), 1, "{recoveries:?}");
    let r = &recoveries[0];
    assert!(
        r.moved_to
            .to_str()
            .unwrap()
            .starts_with(&format!("{}.damaged-", path.display())),
        "{r:?}"
    );
    assert!(r.moved_to.exists(), "{r:?}");
    let text = r.to_string();
    assert!(text.contains(reason), "{text}");
    assert!(text.contains(r.moved_to.to_str().unwrap()), "{text}");
    assert!(text.contains("alpha, beta"), "{text}");
    assert!(text.contains("wharf up"), "{text}");
    assert_eq!(store.unreported_recoveries(), recoveries);
    assert!(store.unreported_recoveries().is_empty());
    assert!(store.list().unwrap().is_empty());
    store
        .record_up(
            "gamma",
            "name: gamma\n",
            Path::new("/srv"),
            None,
            Default::default(),
        )
        .unwrap();
    drop(store);
    let again = Store::open(path).unwrap();
    assert!(again.recoveries().is_empty());
    assert_eq!(again.list().unwrap().keys().collect::<Vec<_>>(), ["gamma"]);
}

/// Item 6: a zeroed page made redb panic (`entered unreachable code`, exit 101).
#[test]
fn a_zeroed_page_in_the_store_is_moved_aside_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("state.redb");
    store_with_projects(&path);
    let mut bytes = fs::read(&path).unwrap();
    let at = bytes
        .windows(13)
        .position(|w| w == b"MARKER-alpha-")
        .expect("the record is in the file");
    let page = at / 4096 * 4096;
    let end = (page + 4096).min(bytes.len());
    bytes[page..end].fill(0);
    fs::write(&path, bytes).unwrap();
    check_moved_aside(&path, "damaged");
}

#[test]
fn a_store_of_random_bytes_is_moved_aside_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("state.redb");
    // A fixed xorshift sequence: the same bytes every run.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    fs::write(&path, bytes).unwrap();
    check_moved_aside(&path, "damaged");
}

/// Item 6: an empty file was taken silently for "no projects".
#[test]
fn an_empty_store_file_is_moved_aside_with_a_message() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("state.redb");
    fs::File::create(&path).unwrap();
    check_moved_aside(&path, "empty (0 bytes)");
}

/// A tmpfs of 2 MiB mounted on a fresh directory, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount() -> SmallDisk {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(status.success(), "cannot mount a tmpfs on {:?}", dir.path());
        SmallDisk { dir }
    }

    fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// Writes a file until the disk is full.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut f = fs::File::create(&filler).unwrap();
        let chunk = vec![7u8; 64 * 1024];
        loop {
            match f.write_all(&chunk) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

/// Item 5: after one ENOSPC, redb answered "Previous I/O error occurred" to everything until the
/// daemon restarted, even once space was freed.
#[test]
fn the_store_works_again_once_a_full_disk_has_space() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let disk = SmallDisk::mount();
    let path = disk.path().join("state.redb");
    let store = Store::open(&path).unwrap();
    store
        .record_up(
            "small",
            "name: small\n",
            Path::new("/srv"),
            None,
            Default::default(),
        )
        .unwrap();
    let filler = disk.fill();
    let big = format!("name: big\n# {}\n", "y".repeat(512 * 1024));
    let e = store
        .record_up("big", &big, Path::new("/srv"), None, Default::default())
        .expect_err("a full disk refuses the commit");
    assert!(
        e.to_string().contains(path.to_str().unwrap()),
        "the error names the store: {e}"
    );
    fs::remove_file(&filler).unwrap();
    store
        .record_up("big", &big, Path::new("/srv"), None, Default::default())
        .expect("the store works again once there is space");
    let names: Vec<String> = store.list().unwrap().into_keys().collect();
    assert_eq!(names, ["big", "small"]);
    drop(store);
    let reopened = Store::open(&path).unwrap();
    assert!(
        reopened.recoveries().is_empty(),
        "{:?}",
        reopened.recoveries()
    );
    assert_eq!(reopened.list().unwrap().len(), 2);
}

/// Item 8: a project name read logs outside the log directory.
#[test]
fn the_log_store_never_reads_outside_its_directory() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir_all(tmp.path().join("trav")).unwrap();
    fs::write(
        tmp.path().join("trav/x.log"),
        "{\"time\":\"t\",\"stream\":\"stdout\",\"line\":\"outside\"}\n",
    )
    .unwrap();
    let logs = LogStore::open(tmp.path().join("logs"), 1 << 20).unwrap();
    for name in ["../trav", "..", "/etc", "a/../../trav"] {
        let e = logs.read(name, &[], None, false).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{name}: {e}");
        assert!(logs.path(name, "x").is_none(), "{name}");
    }
    assert!(logs.path("p", "../x").is_none());
    assert_eq!(
        logs.path("p", "p-web-1").unwrap(),
        tmp.path().join("logs/p/p-web-1.log")
    );
}

/// Item 4: the open-files soft limit is raised to the hard limit.
#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let before = getrlimit(Resource::Nofile);
    let lowered = Rlimit {
        current: Some(256.min(before.maximum.unwrap_or(256))),
        maximum: before.maximum,
    };
    setrlimit(Resource::Nofile, lowered).unwrap();
    let now = wharf_daemon::raise_open_files_limit();
    assert_eq!(now, before.maximum);
    assert_eq!(getrlimit(Resource::Nofile).current, before.maximum);
}

/// Item 5: logs were neither rotated nor trimmed before the disk filled. Under the floor, the
/// oldest log files go first, until the floor is reached again, and the warning names them.
#[test]
fn logs_are_trimmed_oldest_first_when_free_space_falls_under_the_floor() {
    if !is_root() {
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    let disk = SmallDisk::mount();
    let dir = disk.path().join("logs");
    let old: Vec<PathBuf> = (1..=3)
        .map(|i| dir.join(format!("old/old-web-{i}.log")))
        .collect();
    let recent = dir.join("new/new-web-1.log");
    let now = std::time::SystemTime::now();
    for (i, path) in old.iter().enumerate() {
        write_with_mode(path, &"o".repeat(200 * 1024), 0o600);
        let age = std::time::Duration::from_secs(300 - 100 * i as u64);
        fs::File::options()
            .write(true)
            .open(path)
            .unwrap()
            .set_modified(now - age)
            .unwrap();
    }
    write_with_mode(&recent, &"n".repeat(50 * 1024), 0o600);
    let logs = LogStore::open(dir.clone(), 1 << 20).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    // Free space is under 64 KiB once the disk is filled (it is filled 64 KiB at a time):
    // deleting one old file (200 KiB) is not enough, two are.
    logs.set_floor(300 * 1024, move |t| {
        let _ = tx.send(t.clone());
    });
    let _filler = disk.fill();

    logs.append(
        "new",
        "web",
        "new-web-1",
        now,
        wharf_api::message::LogStream::Stdout,
        "a line that needs room",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(logs.sync());

    let trimmed = rx.try_recv().expect("a warning was given");
    assert_eq!(trimmed.files, old[..2], "{trimmed:?}");
    assert!(!old[0].exists() && !old[1].exists());
    assert!(old[2].exists(), "no more than needed is deleted");
    assert!(recent.exists(), "the live log is kept");
    assert!(trimmed.free_before < trimmed.floor && trimmed.free_after >= trimmed.floor);
    assert_eq!(trimmed.projects(&dir), ["old"]);
    let text = trimmed.to_string();
    assert!(text.starts_with("warning:"), "{text}");
    assert!(text.contains(old[0].to_str().unwrap()), "{text}");
    // The line was written.
    assert!(
        fs::read_to_string(&recent)
            .unwrap()
            .contains("a line that needs room")
    );
}

/// A state directory reached through a symbolic link is checked and tightened where it leads.
#[test]
fn a_state_dir_behind_a_symbolic_link_is_checked_where_it_leads() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    fs::create_dir(&real).unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o755)).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    StateDir::new(&link).prepare().unwrap();
    assert_eq!(mode(&real), 0o700);
    // A file is no state directory.
    let file = tmp.path().join("file");
    fs::write(&file, "").unwrap();
    let e = StateDir::new(&file).check_owner(0).unwrap_err();
    assert!(e.to_string().contains("not a directory"), "{e}");
}
