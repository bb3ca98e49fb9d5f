//! The desired state, in redb (`<state>/state.redb`): per project, the project normalised as
//! YAML (as `wharf config` prints it), the directory it was loaded from, the scale overrides and
//! the services the user stopped. Every change is one write transaction, so the store never
//! holds half a change, whatever happens to the daemon.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

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
    };
    wharf_model::load(&options)
        .map(|l| l.project)
        .map_err(|d| d.to_string())
}

pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (or creates) the store at `path`.
    pub fn open(path: &Path) -> Result<Self, DaemonError> {
        let db = Database::create(path).map_err(|e| store_error(path, e))?;
        let store = Store {
            db,
            path: path.to_path_buf(),
        };
        // Create the table, so that readers never meet a store without it.
        store.create_table()?;
        Ok(store)
    }

    /// Every stored project, by name.
    pub fn list(&self) -> Result<BTreeMap<String, StoredProject>, DaemonError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(PROJECTS).map_err(|e| self.error(e))?;
        let mut out = BTreeMap::new();
        for item in table.iter().map_err(|e| self.error(e))? {
            let (k, v) = item.map_err(|e| self.error(e))?;
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

    pub fn get(&self, project: &str) -> Result<Option<StoredProject>, DaemonError> {
        let read = self.db.begin_read().map_err(|e| self.error(e))?;
        let table = read.open_table(PROJECTS).map_err(|e| self.error(e))?;
        let value = table.get(project).map_err(|e| self.error(e))?;
        Ok(value.and_then(|v| serde_json::from_slice(v.value()).ok()))
    }

    /// Changes one project's record in one transaction: `change` gets the record (`None` when
    /// there is none) and may set it to `None` to remove it.
    pub fn update(
        &self,
        project: &str,
        change: impl FnOnce(&mut Option<StoredProject>),
    ) -> Result<(), DaemonError> {
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        {
            let mut table = write.open_table(PROJECTS).map_err(|e| self.error(e))?;
            let mut record: Option<StoredProject> = table
                .get(project)
                .map_err(|e| self.error(e))?
                .and_then(|v| serde_json::from_slice(v.value()).ok());
            change(&mut record);
            match record {
                Some(r) => {
                    let bytes = serde_json::to_vec(&r).map_err(|e| self.error(e))?;
                    table
                        .insert(project, bytes.as_slice())
                        .map_err(|e| self.error(e))?;
                }
                None => {
                    table.remove(project).map_err(|e| self.error(e))?;
                }
            }
        }
        write.commit().map_err(|e| self.error(e))
    }

    fn create_table(&self) -> Result<(), DaemonError> {
        let write = self.db.begin_write().map_err(|e| self.error(e))?;
        write.open_table(PROJECTS).map_err(|e| self.error(e))?;
        write.commit().map_err(|e| self.error(e))
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
