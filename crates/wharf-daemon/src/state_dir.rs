//! The state directory: one daemon per directory, holding its socket, lock, log, desired-state
//! store, instance logs and named volumes.
//!
//! Which directory: `WHARF_STATE_DIR` when set; otherwise `/var/lib/wharf` for root and
//! `$XDG_STATE_HOME/wharf` (or `~/.local/state/wharf`) for anyone else.
//!
//! The directory is private: the store and the logs hold the services' environments, passwords
//! included, and the socket is the daemon's only access control. [`StateDir::prepare`] creates
//! it 0700 or tightens one found looser (the directory and `logs/`, `tls/` 0700, their files
//! 0600; `volumes/` is the instances' data and is left as they made it), and refuses one that
//! belongs to someone other than root or the user running the daemon: whoever created it first
//! could have planted a socket or a store.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::DaemonError;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateDir {
    root: PathBuf,
}

impl StateDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StateDir { root: root.into() }
    }

    /// The state directory of this process: see the module documentation.
    pub fn from_env() -> Result<Self, DaemonError> {
        StateDir::resolve(
            |k| std::env::var_os(k),
            rustix::process::geteuid().is_root(),
        )
    }

    /// The state directory for the environment `var` and the user (`root` or not).
    pub fn resolve(
        var: impl Fn(&str) -> Option<OsString>,
        root: bool,
    ) -> Result<Self, DaemonError> {
        let set = |k: &str| var(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        if let Some(dir) = set("WHARF_STATE_DIR") {
            return Ok(StateDir::new(dir));
        }
        if root {
            return Ok(StateDir::new("/var/lib/wharf"));
        }
        // The XDG specification ignores a relative XDG_STATE_HOME.
        if let Some(dir) = set("XDG_STATE_HOME").filter(|d| d.is_absolute()) {
            return Ok(StateDir::new(dir.join("wharf")));
        }
        match set("HOME") {
            Some(home) => Ok(StateDir::new(home.join(".local/state/wharf"))),
            None => Err(DaemonError::NoStateDir(
                "neither WHARF_STATE_DIR, XDG_STATE_HOME nor HOME is set; set WHARF_STATE_DIR to the directory wharf should keep its state in".into(),
            )),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The control API's socket (mode 0600).
    pub fn socket(&self) -> PathBuf {
        self.root.join("wharf.sock")
    }

    /// Locked by the running daemon; holds its pid.
    pub fn lock_file(&self) -> PathBuf {
        self.root.join("daemon.lock")
    }

    /// Where a daemon started on demand writes its standard output and error.
    pub fn daemon_log(&self) -> PathBuf {
        self.root.join("daemon.log")
    }

    /// The desired-state store.
    pub fn store(&self) -> PathBuf {
        self.root.join("state.redb")
    }

    /// `logs/<project>/<instance>.log`.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// Named volumes, one directory each.
    pub fn volumes(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The router's certificates: the local CA (`ca/`) and ACME's (`acme/`).
    pub fn tls(&self) -> PathBuf {
        self.root.join("tls")
    }

    /// Creates the directory (mode 0700: the socket inside is the daemon's only access control).
    pub fn create(&self) -> Result<(), DaemonError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.root)
            .map_err(|e| DaemonError::io("cannot create the state directory", &self.root, e))
    }

    /// Creates the directory or makes the one found private, after checking that it belongs to
    /// root or to the user running this process (see the module documentation).
    pub fn prepare(&self) -> Result<(), DaemonError> {
        self.create()?;
        self.check_owner(rustix::process::geteuid().as_raw())?;
        self.tighten()
    }

    /// Refuses a directory that neither root nor `uid` owns.
    pub fn check_owner(&self, uid: u32) -> Result<(), DaemonError> {
        // A symbolic link is followed: what is checked is the directory it leads to.
        let meta = fs::metadata(&self.root)
            .map_err(|e| DaemonError::io("cannot examine the state directory", &self.root, e))?;
        if !meta.is_dir() {
            return Err(DaemonError::UnsafeStateDir {
                dir: self.root.clone(),
                problem: "it is not a directory".into(),
            });
        }
        let owner = meta.uid();
        if owner != 0 && owner != uid {
            return Err(DaemonError::UnsafeStateDir {
                dir: self.root.clone(),
                problem: format!(
                    "it belongs to uid {owner}, neither root nor you (uid {uid}), so whoever owns it could have put a socket or a store there"
                ),
            });
        }
        Ok(())
    }

    /// Makes the directory 0700 and the files wharf keeps in it 0600: its own files, and the
    /// trees of `logs/` and `tls/` (symbolic links are not followed).
    pub fn tighten(&self) -> Result<(), DaemonError> {
        set_mode(&self.root, 0o700)?;
        for entry in fs::read_dir(&self.root)
            .map_err(|e| DaemonError::io("cannot read the state directory", &self.root, e))?
        {
            let entry = entry
                .map_err(|e| DaemonError::io("cannot read the state directory", &self.root, e))?;
            let path = entry.path();
            if path == self.volumes() {
                continue;
            }
            tighten_tree(&path)?;
        }
        Ok(())
    }

    /// Takes the daemon lock, or says which daemon holds it. The lock is released when the
    /// returned value is dropped or the process ends, however it ends.
    pub fn lock(&self) -> Result<DaemonLock, DaemonError> {
        let path = self.lock_file();
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| DaemonError::io("cannot open the daemon lock", &path, e))?;
        if let Err(e) =
            rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
        {
            if e == rustix::io::Errno::WOULDBLOCK {
                return Err(DaemonError::AlreadyRunning {
                    dir: self.root.clone(),
                    pid: read_pid(&mut file),
                });
            }
            return Err(DaemonError::io(
                "cannot lock the daemon lock",
                &path,
                e.into(),
            ));
        }
        let pid = std::process::id();
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{pid}"))
            .map_err(|e| DaemonError::io("cannot write the daemon lock", &path, e))?;
        Ok(DaemonLock { _file: file })
    }

    /// The pid of the daemon that holds the lock, if one does.
    pub fn daemon_pid(&self) -> Option<u32> {
        let mut file = File::open(self.lock_file()).ok()?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockShared) {
            // Nobody holds it: no daemon.
            Ok(()) => None,
            Err(_) => read_pid(&mut file),
        }
    }

    /// Makes `path` readable and writable by its owner only.
    pub fn restrict(path: &Path) -> Result<(), DaemonError> {
        fs::set_permissions(path, fs::Permissions::from_mode(0o600))
            .map_err(|e| DaemonError::io("cannot restrict the permissions of", path, e))
    }
}

/// `path` 0700 when a directory (and everything under it), 0600 when a file; the socket and
/// symbolic links are left alone.
fn tighten_tree(path: &Path) -> Result<(), DaemonError> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(DaemonError::io("cannot examine", path, e)),
    };
    let kind = meta.file_type();
    if kind.is_dir() {
        set_mode(path, 0o700)?;
        for entry in fs::read_dir(path).map_err(|e| DaemonError::io("cannot read", path, e))? {
            let entry = entry.map_err(|e| DaemonError::io("cannot read", path, e))?;
            tighten_tree(&entry.path())?;
        }
    } else if kind.is_file() && meta.mode() & 0o077 != 0 {
        set_mode(path, 0o600)?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), DaemonError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| DaemonError::io("cannot restrict the permissions of", path, e))
}

fn read_pid(file: &mut File) -> Option<u32> {
    let mut s = String::new();
    file.rewind().ok()?;
    file.read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

/// The daemon's hold on its state directory.
#[derive(Debug)]
pub struct DaemonLock {
    _file: File,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn the_state_directory_follows_the_environment_and_the_user() {
        let dir = |vars: &[(&str, &str)], root| StateDir::resolve(env(vars), root).unwrap();
        assert_eq!(
            dir(&[("WHARF_STATE_DIR", "/s"), ("HOME", "/h")], true).root(),
            Path::new("/s")
        );
        assert_eq!(
            dir(&[("HOME", "/h")], true).root(),
            Path::new("/var/lib/wharf")
        );
        assert_eq!(
            dir(&[("XDG_STATE_HOME", "/x"), ("HOME", "/h")], false).root(),
            Path::new("/x/wharf")
        );
        assert_eq!(
            dir(&[("XDG_STATE_HOME", "rel"), ("HOME", "/h")], false).root(),
            Path::new("/h/.local/state/wharf")
        );
        assert!(StateDir::resolve(env(&[]), false).is_err());
    }

    #[test]
    fn a_second_lock_names_the_first_daemon() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path().join("state"));
        dir.create().unwrap();
        assert_eq!(dir.daemon_pid(), None);
        let lock = dir.lock().unwrap();
        assert_eq!(dir.daemon_pid(), Some(std::process::id()));
        match dir.lock() {
            Err(DaemonError::AlreadyRunning { pid, .. }) => {
                assert_eq!(pid, Some(std::process::id()))
            }
            other => panic!("expected AlreadyRunning, got {other:?}"),
        }
        drop(lock);
        assert_eq!(dir.daemon_pid(), None);
        dir.lock().unwrap();
    }
}
