//! The desired state, in redb (`<state>/state.redb`): per project, the project normalised as
//! YAML (as `wharf config` prints it), the directory it was loaded from, the scale overrides and
//! the services the user stopped. Every change is one write transaction, so the store never
//! holds half a change, whatever happens to the daemon.
//!
//! Bad luck is survived, never a crash:
//! - after an I/O error (a full disk), redb refuses every later operation ("Previous I/O error
//!   occurred") until the database is reopened: the store drops it, and the next operation
//!   opens the file again (redb repairs what a failed commit left);
//! - a damaged file (redb's integrity check fails, redb reports corruption, or panics inside
//!   the store, which are caught) is moved aside as `state.redb.damaged-<unix time>`, with a
//!   message naming it and the projects the daemon no longer knows, and a new store begun;
//! - an empty file is not taken for a new store (redb writes its header when it creates one,
//!   so an empty file was cut short): it is moved aside the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::PermissionsExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use wharf_model::config::{Format, render};
use wharf_model::{LoadOptions, Project};

use crate::DaemonError;

/// Project name -> [`StoredProject`] as JSON.
const PROJECTS: TableDefinition<&str, &[u8]> = TableDefinition::new("projects");

/// What the daemon must remember about one project.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProject {
    /// The project as `wharf_model::config::render(.., Format::Yaml)` prints it.
    pub yaml: String,
    /// The directory relative paths were resolved against.
    pub project_directory: PathBuf,
    /// `wharf scale` overrides.
    #[serde(default)]
    pub scale: BTreeMap<String, u32>,
    /// Services the user stopped (`wharf stop`), until started again.
    #[serde(default)]
    pub stopped: BTreeSet<String>,
    /// The runtime the project runs on.
    #[serde(default)]
    pub runtime: crate::runtimes::RuntimeKind,
}

impl StoredProject {
    /// Loads the stored YAML back into a project.
    pub fn project(&self) -> Result<Project, String> {
        load_normalised(&self.yaml, &self.project_directory)
    }
}

/// The normalised form of a project that the store keeps and the CLI sends: the YAML of
/// `wharf config`, with every `$` written `$$`. `render` prints values as they are after
/// interpolation (as `docker compose config` does), so a literal `$` (written `$$` by the user)
/// would otherwise be interpolated again when the text is loaded.
pub fn normalise(project: &Project) -> String {
    render(project, Format::Yaml).replace('$', "$$")
}

/// Loads a project from its [`normalise`]d YAML: everything is resolved already (paths
/// absolute, variables interpolated, disabled services left out), so nothing from the daemon's
/// environment gets in.
pub fn load_normalised(yaml: &str, project_directory: &Path) -> Result<Project, String> {
    let options = LoadOptions {
        files: vec![PathBuf::from("-")],
        project_name: None,
        project_directory: Some(project_directory.to_path_buf()),
        // Every service in the text was enabled when it was rendered.
        profiles: vec!["*".into()],
        env_files: Vec::new(),
        working_dir: project_directory.to_path_buf(),
        environment: BTreeMap::new(),
        stdin: Some(yaml.to_string()),
        ..LoadOptions::default()
    };
    wharf_model::load(&options)
        .map(|l| l.project)
        .map_err(|d| d.to_string())
}

/// A store file that was moved aside because it could not be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// Where the file was moved.
    pub moved_to: PathBuf,
    /// What was wrong with it.
    pub reason: String,
    /// The projects it held, as far as they are known (`known_projects` of [`Store::open_with`]).
    pub lost: Vec<String>,
}

impl std::fmt::Display for Recovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the state store was unusable ({}); it was moved to {} and a new one begun. ",
            self.reason,
            self.moved_to.display()
        )?;
        if self.lost.is_empty() {
            write!(f, "no project is known to have been lost")
        } else {
            write!(
                f,
                "wharf no longer knows these projects (their desired state, scale and stopped services): {}; bring each up again with `wharf up`",
                self.lost.join(", ")
            )
        }
    }
}

/// Why an operation failed, before it becomes a [`DaemonError`]: an I/O error or damage
/// means the database is dropped and reopened.
enum Failure {
    Redb(redb::Error),
    Encode(serde_json::Error),
}

impl<E: Into<redb::Error>> From<E> for Failure {
    fn from(e: E) -> Self {
        Failure::Redb(e.into())
    }
}

pub struct Store {
    path: PathBuf,
    /// `None` after an I/O error or damage: the next operation opens the file again.
    db: Mutex<Option<Database>>,
    /// Whether the file must be checked (and moved aside if damaged) when it is opened again.
    suspect: AtomicBool,
    /// The projects the daemon may know of besides the store (`logs/<project>/`), named when a
    /// damaged store is moved aside.
    known_projects: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    recoveries: Mutex<Vec<Recovery>>,
    /// How many of `recoveries` were handed to [`Store::unreported_recoveries`].
    reported: std::sync::atomic::AtomicUsize,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, DaemonError> {
        Store::open_with(path, Box::new(Vec::new))
    }

    /// Opens (or creates) the store at `path`; `known_projects` names the projects the daemon
    /// knows of otherwise (its log directories), for the message when a damaged store is moved
    /// aside and its content cannot be read.
    pub fn open_with(
        path: &Path,
        known_projects: Box<dyn Fn() -> Vec<String> + Send + Sync>,
    ) -> Result<Self, DaemonError> {
        let store = Store {
            path: path.to_path_buf(),
            db: Mutex::new(None),
            suspect: AtomicBool::new(true),
            known_projects,
            recoveries: Mutex::new(Vec::new()),
            reported: std::sync::atomic::AtomicUsize::new(0),
        };
        let db = store.open_db()?;
        *store.lock() = Some(db);
        Ok(store)
    }

    /// The store files moved aside since this store was opened (with the reason and what was
    /// lost), oldest first.
    pub fn recoveries(&self) -> Vec<Recovery> {
        self.recoveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The recoveries not handed out before (each is told to a user once, by the next `up`).
    pub fn unreported_recoveries(&self) -> Vec<Recovery> {
        let all = self.recoveries.lock().unwrap_or_else(|p| p.into_inner());
        let from = self
            .reported
            .swap(all.len(), Ordering::AcqRel)
            .min(all.len());
        all[from..].to_vec()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Database>> {
        self.db.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens the file, checking it first when it is suspect; a damaged or empty file is moved
    /// aside and a new store begun.
    fn open_db(&self) -> Result<Database, DaemonError> {
        let check = self.suspect.load(Ordering::Acquire);
        if check && std::fs::metadata(&self.path).is_ok_and(|m| m.is_file() && m.len() == 0) {
            self.move_aside(
                "the file is empty (0 bytes): a store redb made is never empty, so this one was cut short by a full disk or a crash",
                (self.known_projects)(),
            )?;
        }
        match catch_unwind(AssertUnwindSafe(|| self.try_open(check))) {
            Ok(Ok(db)) => {
                self.suspect.store(false, Ordering::Release);
                Ok(db)
            }
            // On opening, data redb cannot read (a wrong magic number) is damage too.
            Ok(Err(Failure::Redb(e)))
                if is_damage(&e)
                    || matches!(&e, redb::Error::Io(io) if io.kind() == std::io::ErrorKind::InvalidData) =>
            {
                self.replace_damaged(&e.to_string())
            }
            Ok(Err(Failure::Redb(e))) => Err(self.error(e)),
            Ok(Err(Failure::Encode(e))) => Err(self.error(e)),
            Err(panic) => self.replace_damaged(&panic_text(panic.as_ref())),
        }
    }

    /// Opens the database, runs redb's integrity check when `check`, makes sure the table
    /// exists and reads every record once (a damaged page is met here rather than later).
    fn try_open(&self, check: bool) -> Result<Database, Failure> {
        let mut db = Database::create(&self.path)?;
        // redb creates the file with the process's umask; the store holds the services'
        // environments.
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o600))
            .map_err(redb::Error::Io)?;
        if check && !db.check_integrity()? {
            eprintln!(
                "wharf daemon: the state store {} was not closed cleanly; redb repaired it",
                self.path.display()
            );
        }
        {
            let write = db.begin_write()?;
            write.open_table(PROJECTS)?;
            write.commit()?;
        }
        if check {
            list_in(&db)?;
        }
        Ok(db)
    }

    /// Moves the damaged file aside and begins a new store.
    fn replace_damaged(&self, reason: &str) -> Result<Database, DaemonError> {
        let lost = (self.known_projects)();
        self.move_aside(&format!("it is damaged: {reason}"), lost)?;
        match catch_unwind(AssertUnwindSafe(|| self.try_open(false))) {
            Ok(Ok(db)) => {
                self.suspect.store(false, Ordering::Release);
                Ok(db)
            }
            Ok(Err(Failure::Redb(e))) => Err(self.error(e)),
            Ok(Err(Failure::Encode(e))) => Err(self.error(e)),
            Err(panic) => Err(self.error(panic_text(panic.as_ref()))),
        }
    }

    fn move_aside(&self, reason: &str, lost: Vec<String>) -> Result<(), DaemonError> {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let mut aside = self.path.clone().into_os_string();
        aside.push(format!(".damaged-{stamp}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(&self.path, &aside).map_err(|e| {
            DaemonError::io(
                &format!(
                    "the state store is unusable ({reason}) and cannot be moved aside to {}",
                    aside.display()
                ),
                &self.path,
                e,
            )
        })?;
        let recovery = Recovery {
            moved_to: aside,
            reason: reason.to_string(),
            lost,
        };
        eprintln!("wharf daemon: {}: {recovery}", self.path.display());
        self.recoveries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(recovery);
        Ok(())
    }

    /// Runs `op` on the database (opened again first if an earlier operation failed). An I/O
    /// error drops the database, so that the next operation reopens it; damage or a panic also
    /// marks the file to be checked then.
    fn with_db<T>(
        &self,
        op: impl FnOnce(&Database) -> Result<T, Failure>,
    ) -> Result<T, DaemonError> {
        let mut guard = self.lock();
        if guard.is_none() {
            *guard = Some(self.open_db()?);
        }
        let db = guard.as_ref().expect("opened above");
        match catch_unwind(AssertUnwindSafe(|| op(db))) {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(Failure::Encode(e))) => Err(self.error(e)),
            Ok(Err(Failure::Redb(e))) => {
                if is_damage(&e) {
                    self.suspect.store(true, Ordering::Release);
                    *guard = None;
                } else if is_io(&e) {
                    *guard = None;
                }
                Err(self.error(e))
            }
            Err(panic) => {
                self.suspect.store(true, Ordering::Release);
                *guard = None;
                Err(self.error(format!(
                    "redb failed inside the store ({}); the file is checked when it is next used",
                    panic_text(panic.as_ref())
                )))
            }
        }
    }

    /// Every stored project, by name.
    pub fn list(&self) -> Result<BTreeMap<String, StoredProject>, DaemonError> {
        self.with_db(list_in)
    }

    pub fn get(&self, project: &str) -> Result<Option<StoredProject>, DaemonError> {
        self.with_db(|db| {
            let read = db.begin_read()?;
            let table = read.open_table(PROJECTS)?;
            let value = table.get(project)?;
            Ok(value.and_then(|v| serde_json::from_slice(v.value()).ok()))
        })
    }

    /// Changes one project's record in one transaction: `change` gets the record (`None` when
    /// there is none) and may set it to `None` to remove it.
    pub fn update(
        &self,
        project: &str,
        change: impl FnOnce(&mut Option<StoredProject>),
    ) -> Result<(), DaemonError> {
        self.with_db(|db| {
            let write = db.begin_write()?;
            {
                let mut table = write.open_table(PROJECTS)?;
                let mut record: Option<StoredProject> = table
                    .get(project)?
                    .and_then(|v| serde_json::from_slice(v.value()).ok());
                change(&mut record);
                match record {
                    Some(r) => {
                        let bytes = serde_json::to_vec(&r).map_err(Failure::Encode)?;
                        table.insert(project, bytes.as_slice())?;
                    }
                    None => {
                        table.remove(project)?;
                    }
                }
            }
            write.commit()?;
            Ok(())
        })
    }

    /// Records an `up`: the project as it is now, and the services it started as no longer
    /// stopped (all of them when `services` is `None`).
    pub fn record_up(
        &self,
        project: &str,
        yaml: &str,
        project_directory: &Path,
        services: Option<&[String]>,
        runtime: crate::runtimes::RuntimeKind,
    ) -> Result<(), DaemonError> {
        self.update(project, |record| {
            let r = record.get_or_insert_with(StoredProject::default);
            r.yaml = yaml.to_string();
            r.project_directory = project_directory.to_path_buf();
            r.runtime = runtime;
            match services {
                None => r.stopped.clear(),
                Some(list) => r.stopped.retain(|s| !list.contains(s)),
            }
        })
    }

    /// Marks services as stopped by the user, or as started again.
    pub fn set_stopped(
        &self,
        project: &str,
        services: &[String],
        stopped: bool,
    ) -> Result<(), DaemonError> {
        self.update(project, |record| {
            if let Some(r) = record {
                for s in services {
                    if stopped {
                        r.stopped.insert(s.clone());
                    } else {
                        r.stopped.remove(s);
                    }
                }
            }
        })
    }

    pub fn set_scale(
        &self,
        project: &str,
        scale: &BTreeMap<String, u32>,
    ) -> Result<(), DaemonError> {
        self.update(project, |record| {
            if let Some(r) = record {
                r.scale.extend(scale.iter().map(|(k, v)| (k.clone(), *v)));
            }
        })
    }

    pub fn remove(&self, project: &str) -> Result<(), DaemonError> {
        self.update(project, |record| *record = None)
    }

    fn error(&self, e: impl std::fmt::Display) -> DaemonError {
        store_error(&self.path, e)
    }
}

fn list_in(db: &Database) -> Result<BTreeMap<String, StoredProject>, Failure> {
    let read = db.begin_read()?;
    let table = read.open_table(PROJECTS)?;
    let mut out = BTreeMap::new();
    for item in table.iter()? {
        let (k, v) = item?;
        let name = k.value().to_string();
        match serde_json::from_slice::<StoredProject>(v.value()) {
            Ok(p) => {
                out.insert(name, p);
            }
            Err(e) => eprintln!(
                "wharf daemon: the stored state of project `{name}` is unreadable ({e}); bring it up again with `wharf up`"
            ),
        }
    }
    Ok(out)
}

/// Whether redb says the file is damaged.
fn is_damage(e: &redb::Error) -> bool {
    matches!(
        e,
        redb::Error::Corrupted(_) | redb::Error::UpgradeRequired(_)
    )
}

/// Whether redb met an I/O error (now or before): the database must be reopened.
fn is_io(e: &redb::Error) -> bool {
    matches!(e, redb::Error::Io(_) | redb::Error::PreviousIo)
}

fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    format!("redb panicked: {text}")
}

fn store_error(path: &Path, e: impl std::fmt::Display) -> DaemonError {
    DaemonError::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_kept_across_reopening() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("state.redb");
        {
            let store = Store::open(&path).unwrap();
            store
                .record_up(
                    "p",
                    "name: p\n",
                    Path::new("/srv/p"),
                    None,
                    Default::default(),
                )
                .unwrap();
            store
                .set_stopped("p", &["web".into(), "db".into()], true)
                .unwrap();
            store
                .set_scale("p", &BTreeMap::from([("web".into(), 3)]))
                .unwrap();
            store
                .record_up(
                    "q",
                    "name: q\n",
                    Path::new("/srv/q"),
                    None,
                    Default::default(),
                )
                .unwrap();
            store.remove("q").unwrap();
            // `up web` starts web again; db stays stopped.
            store
                .record_up(
                    "p",
                    "name: p\n",
                    Path::new("/srv/p"),
                    Some(&["web".into()]),
                    Default::default(),
                )
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let all = store.list().unwrap();
        assert_eq!(all.keys().collect::<Vec<_>>(), ["p"]);
        let p = &all["p"];
        assert_eq!(p.project_directory, Path::new("/srv/p"));
        assert_eq!(p.scale, BTreeMap::from([("web".into(), 3)]));
        assert_eq!(p.stopped, BTreeSet::from(["db".to_string()]));
        assert_eq!(store.get("q").unwrap(), None);
    }
}
