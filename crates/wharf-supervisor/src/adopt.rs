//! Instances that outlive the supervisor: a runtime whose instances keep running without wharf
//! (the Docker Engine) reports them with [`Runtime::existing`], and `up` adopts them instead of
//! starting them again: after a daemon restart, or when another run of wharf created them.
//!
//! Adoption only records what exists, as the planner's observed state (each instance with the
//! configuration hash it was created with); the planner decides, as for any other instance,
//! which to keep, restart, recreate or remove. The instances it keeps running get a task that
//! attaches to them ([`Runtime::start`] of a running instance attaches), and those it recreates
//! or removes are forgotten by the runtime ([`Runtime::remove`]) once stopped.
//!
//! [`Runtime::existing`]: wharf_runtime::Runtime::existing
//! [`Runtime::start`]: wharf_runtime::Runtime::start
//! [`Runtime::remove`]: wharf_runtime::Runtime::remove

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};
use wharf_model::Project;
use wharf_plan::{Op, Plan, UpOptions};

use crate::instance::InstanceTask;
use crate::spec::instance_spec_for;
use crate::{Health, InstanceState, ProjectRun, Slot, Status, Supervisor, SupervisorError};

/// What [`Supervisor::adopt`] found.
#[derive(Default)]
pub(crate) struct Adoption {
    /// The running instances adopted, by service and number.
    pub running: BTreeSet<(String, u32)>,
    pub warnings: Vec<String>,
}

impl Supervisor {
    /// Records the instances of `project` that the runtime has and the supervisor does not know
    /// yet. Orphans (instances of services no longer in the project) are recorded only with
    /// `remove_orphans`, so that the plan removes them; otherwise they are named in a warning.
    pub(crate) async fn adopt(
        &self,
        project: &Arc<Project>,
        options: &UpOptions,
    ) -> Result<Adoption, SupervisorError> {
        let existing = self
            .inner
            .runtime
            .existing(&project.name)
            .await
            .map_err(|e| {
                SupervisorError::Failed(vec![format!(
                    "cannot list the existing instances of project {}: {e}",
                    project.name
                )])
            })?;
        let mut adoption = Adoption::default();
        if existing.is_empty() {
            return Ok(adoption);
        }
        let mut orphans = Vec::new();
        let mut projects = self.inner.lock();
        let run = projects
            .entry(project.name.clone())
            .or_insert_with(|| ProjectRun {
                project: Arc::clone(project),
                slots: BTreeMap::new(),
                scale: BTreeMap::new(),
            });
        for found in existing {
            let key = (found.service.clone(), found.number);
            if run.slots.contains_key(&key) {
                continue;
            }
            let known = project.services.get(&found.service);
            if known.is_none() && !options.remove_orphans {
                orphans.push(found.name.clone());
                continue;
            }
            let has_check = known
                .and_then(|s| s.healthcheck.as_ref())
                .is_some_and(|h| h.is_enabled() && h.test.is_some());
            let state = InstanceState {
                project: project.name.clone(),
                service: found.service.clone(),
                number: found.number,
                name: found.name.clone(),
                status: match (found.running, found.exit_code) {
                    (true, _) => Status::Running,
                    (false, code) => Status::Exited {
                        code: code.unwrap_or(0),
                    },
                },
                health: (found.running && has_check).then_some(Health::Starting),
                pid: None,
                restarts: 0,
                started_at: None,
                ever_started: true,
                finished: !found.running,
                error: None,
                config_hash: found.config_hash.clone(),
            };
            if found.running {
                adoption.running.insert(key.clone());
            }
            let (tx, _) = watch::channel(state);
            run.slots.insert(
                key,
                Slot {
                    state: Arc::new(tx),
                    control: None,
                    tail: Arc::new(Mutex::new(VecDeque::new())),
                    last_check: Arc::new(Mutex::new(None)),
                },
            );
        }
        drop(projects);
        if !orphans.is_empty() {
            adoption.warnings.push(format!(
                "found orphan instances for services no longer in project {}: {}; remove them with `up --remove-orphans`",
                project.name,
                orphans.join(", ")
            ));
        }
        self.inner.bump();
        Ok(adoption)
    }

    /// Attaches a task to every adopted running instance that the plan leaves alone.
    pub(crate) fn attach_adopted(&self, project: &Arc<Project>, plan: &Plan, adoption: &Adoption) {
        let planned: BTreeSet<(String, u32)> = plan
            .steps
            .iter()
            .map(|s| (s.service.clone(), s.number))
            .collect();
        let inner = &self.inner;
        let mut projects = inner.lock();
        let Some(run) = projects.get_mut(&project.name) else {
            return;
        };
        for key in adoption.running.difference(&planned) {
            let Some(service) = project.services.get(&key.0) else {
                continue;
            };
            let Ok(spec) = instance_spec_for(
                inner.runtime.as_ref(),
                project,
                service,
                key.1,
                &inner.options.base_env,
                &inner.options.volumes_dir,
            ) else {
                continue;
            };
            let Some(slot) = run.slots.get_mut(key) else {
                continue;
            };
            let (control_tx, control_rx) = mpsc::unbounded_channel();
            slot.control = Some(control_tx);
            let task = InstanceTask {
                inner: Arc::clone(inner),
                project: Arc::clone(project),
                spec,
                state: Arc::clone(&slot.state),
                tail: Arc::clone(&slot.tail),
                last_check: Arc::clone(&slot.last_check),
            };
            tokio::spawn(task.run(control_rx));
        }
    }

    /// Has the runtime forget the instances that the plan stopped to recreate or remove them.
    pub(crate) async fn forget_stopped(&self, project: &str, plan: &Plan) -> Vec<String> {
        let mut problems = Vec::new();
        for step in plan
            .steps
            .iter()
            .filter(|s| matches!(s.op, Op::Remove | Op::Recreate))
        {
            let name = crate::spec::instance_name(project, &step.service, step.number);
            if let Err(e) = self.inner.runtime.remove(project, &name).await {
                problems.push(format!("cannot remove {name}: {e}"));
            }
        }
        problems
    }

    /// `down`, and with `volumes` (`down -v`) the runtime's named volumes of the project too;
    /// returns the volumes removed.
    pub async fn down_with(
        &self,
        project: &str,
        volumes: bool,
    ) -> Result<Vec<String>, SupervisorError> {
        match self.down(project).await {
            Ok(()) | Err(SupervisorError::UnknownProject(_)) => {}
            Err(e) => return Err(e),
        }
        // What the runtime has of the project without this supervisor knowing it (adopted
        // nothing yet after a daemon restart) goes too.
        // Volumes go even when a network could not: each problem is reported.
        let mut problems = Vec::new();
        if let Err(e) = self.inner.runtime.release(project).await {
            problems.push(format!("cannot release project {project}: {e}"));
        }
        let mut removed = Vec::new();
        if volumes {
            match self.inner.runtime.remove_volumes(project).await {
                Ok(v) => removed = v,
                Err(e) => problems.push(format!(
                    "cannot remove the volumes of project {project}: {e}"
                )),
            }
        }
        if problems.is_empty() {
            Ok(removed)
        } else {
            Err(SupervisorError::Failed(problems))
        }
    }
}
