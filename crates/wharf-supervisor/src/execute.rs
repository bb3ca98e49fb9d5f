//! Carrying out plans: the verbs `up`, `stop`, `start`, `restart`, `scale`, `down`, and waiting
//! for readiness (`up --wait`). No decision is taken here that the plan did not take; this only
//! runs its steps as their waits are met.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use wharf_model::Project;
use wharf_model::project::Condition;
use wharf_plan::{ConditionKind, ObservedInstance, Op, Plan, Step, UpOptions, Wait};

use crate::instance::{Control, InstanceTask};
use crate::spec::instance_spec_for;
use crate::{
    EventKind, Health, Inner, InstanceState, ProjectRun, Slot, Status, Supervisor, SupervisorError,
};

/// An instance of a project: its service and number.
type InstanceKey = (String, u32);

/// What `up` did.
#[derive(Clone, Debug, PartialEq)]
pub struct UpReport {
    pub plan: Plan,
    /// Dependencies that failed but were not required.
    pub warnings: Vec<String>,
}

/// What `up` waits for before it returns, and how long it may take in all (`up --wait
/// --wait-timeout`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UpWait {
    /// Also wait until the instances are ready (`--wait`), not only started.
    pub ready: bool,
    /// One deadline for every state of every instance: the waits for dependencies' conditions,
    /// the starts and then readiness; zero for none (Docker Compose's `--wait-timeout 0`). Its clock starts once the project is prepared (images
    /// built or pulled): Docker Compose's `--wait-timeout` likewise bounds the start and its
    /// dependency waits (docker/compose `pkg/compose/convergence.go`, `waitDependencies`), not
    /// the image pulls.
    pub timeout: Duration,
}

/// When a bounded `up` gives up, and the timeout it was given (for the message).
#[derive(Clone, Copy, Debug)]
struct Deadline {
    at: Instant,
    timeout: Duration,
}

impl Deadline {
    /// `timeout` from now. Zero means none, as Docker Compose's `--wait-timeout 0`; so does a
    /// timeout too large to add to the clock (30 years stand for them, as in tokio).
    fn after(timeout: Duration) -> Deadline {
        const FAR: Duration = Duration::from_secs(86_400 * 365 * 30);
        let now = Instant::now();
        let at = match timeout.is_zero() {
            true => now + FAR,
            false => now.checked_add(timeout).unwrap_or(now + FAR),
        };
        Deadline { at, timeout }
    }
}

/// Why a step did not start its instance.
enum StepError {
    /// A dependency failed, or the instance could not be started.
    Failed(String),
    /// The deadline passed first; the text says what was waited for and where it was.
    TimedOut(String),
}

impl Supervisor {
    /// Brings `project` to its desired state and returns once every planned instance has
    /// started (each after its dependencies met their conditions). Fails, naming the service, the
    /// condition and the last lines of output, when a required dependency fails. Without a
    /// deadline it waits on dependencies for as long as they take (see [`Supervisor::up_within`]).
    pub async fn up(
        &self,
        project: Arc<Project>,
        options: UpOptions,
    ) -> Result<UpReport, SupervisorError> {
        self.up_until(project, options, None).await.map(|(r, _)| r)
    }

    /// [`Supervisor::up`] within `wait.timeout`, then, with `wait.ready`, waiting within the same
    /// deadline until the instances are ready ([`Supervisor::wait_ready`]; of
    /// `options.services` and their dependencies when given). Whatever an instance is doing when
    /// the deadline passes (waiting on a dependency that restarts for ever, starting, not healthy
    /// yet), this returns [`SupervisorError::Timeout`] saying which instance waits on which and
    /// where that one is: its state, its restarts and its last failed health check.
    pub async fn up_within(
        &self,
        project: Arc<Project>,
        options: UpOptions,
        wait: UpWait,
    ) -> Result<UpReport, SupervisorError> {
        let name = project.name.clone();
        let services = options.services.clone();
        let (report, deadline) = self.up_until(project, options, Some(wait.timeout)).await?;
        if wait.ready
            && let Some(deadline) = deadline
        {
            self.wait_ready_until(&name, services.as_deref(), deadline)
                .await?;
        }
        Ok(report)
    }

    /// `up`, with a deadline `timeout` after the project is prepared when one is given; returns
    /// that deadline.
    async fn up_until(
        &self,
        project: Arc<Project>,
        options: UpOptions,
        timeout: Option<Duration>,
    ) -> Result<(UpReport, Option<Deadline>), SupervisorError> {
        let inner = &self.inner;
        let adoption = self.adopt(&project, &options).await?;
        let plan = {
            let mut projects = inner.lock();
            let run = projects
                .entry(project.name.clone())
                .or_insert_with(|| ProjectRun {
                    project: Arc::clone(&project),
                    slots: BTreeMap::new(),
                    scale: BTreeMap::new(),
                });
            run.project = Arc::clone(&project);
            for (s, n) in &options.scale {
                run.scale.insert(s.clone(), *n);
            }
            run.scale.retain(|s, _| project.services.contains_key(s));
            let mut options = options;
            options.scale = run.scale.clone();
            let observed: Vec<ObservedInstance> = run
                .slots
                .iter()
                .map(|((service, number), slot)| {
                    let st = slot.state.borrow();
                    ObservedInstance {
                        service: service.clone(),
                        number: *number,
                        config_hash: st.config_hash.clone(),
                        running: !st.finished,
                        exit_code: match st.status {
                            Status::Exited { code } if st.finished => Some(code),
                            _ => None,
                        },
                    }
                })
                .collect();
            wharf_plan::plan_up(&project, &observed, &options)?
        };

        // Every instance to start must be startable: report all problems before doing anything.
        let mut problems = Vec::new();
        for step in plan.steps.iter().filter(|s| s.op != Op::Remove) {
            let service = &project.services[&step.service];
            if let Err(e) = instance_spec_for(
                inner.runtime.as_ref(),
                &project,
                service,
                step.number,
                &inner.options.base_env,
                &inner.options.volumes_dir,
            ) {
                let text = match &e {
                    SupervisorError::Config { message, help, .. } => {
                        format!("{message}\n  help: {help}")
                    }
                    other => other.to_string(),
                };
                if !problems.contains(&text) {
                    problems.push(text);
                }
            }
        }
        if !problems.is_empty() {
            return Err(SupervisorError::Failed(problems));
        }
        // What the instances share (natively: the networks), before any of them starts.
        let prepared = inner.runtime.prepare(&project).await.map_err(|e| {
            SupervisorError::Failed(vec![format!(
                "cannot prepare project {}: {e}",
                project.name
            )])
        })?;
        self.attach_adopted(&project, &plan, &adoption);
        let deadline = timeout.map(Deadline::after);

        // Removals and the old halves of recreations first, dependents before dependencies.
        let to_stop: Vec<(String, u32)> = plan
            .steps
            .iter()
            .filter(|s| matches!(s.op, Op::Remove | Op::Recreate))
            .map(|s| (s.service.clone(), s.number))
            .collect();
        let removed: BTreeSet<(String, u32)> = plan
            .steps
            .iter()
            .filter(|s| s.op == Op::Remove)
            .map(|s| (s.service.clone(), s.number))
            .collect();
        if !to_stop.is_empty() {
            let stop_plan = wharf_plan::plan_stop(&project, &to_stop, Op::Remove);
            self.run_stops(&project.name, &stop_plan, |key| removed.contains(key))
                .await;
            let problems = self.forget_stopped(&project.name, &plan).await;
            if !problems.is_empty() {
                return Err(SupervisorError::Failed(problems));
            }
        }

        // Fresh slots for every instance about to start, before any step looks at them, so
        // that a dependent never mistakes the previous run of a dependency for this one.
        let starts: Vec<&Step> = plan.steps.iter().filter(|s| s.op != Op::Remove).collect();
        {
            let mut projects = inner.lock();
            if let Some(run) = projects.get_mut(&project.name) {
                for step in &starts {
                    let service = &project.services[&step.service];
                    let hash = wharf_plan::config_hash(service);
                    let key = (step.service.clone(), step.number);
                    let restarts = run
                        .slots
                        .get(&key)
                        .map(|s| s.state.borrow().restarts)
                        .unwrap_or(0);
                    let state = InstanceState {
                        project: project.name.clone(),
                        service: step.service.clone(),
                        number: step.number,
                        name: crate::spec::instance_name(&project.name, &step.service, step.number),
                        status: Status::Created,
                        health: None,
                        pid: None,
                        restarts,
                        started_at: None,
                        ever_started: false,
                        finished: false,
                        error: None,
                        config_hash: hash,
                    };
                    inner.emit(&state, EventKind::Created);
                    let (tx, _) = watch::channel(state);
                    let tail = run
                        .slots
                        .get(&key)
                        .map(|s| Arc::clone(&s.tail))
                        .unwrap_or_else(|| Arc::new(Mutex::new(VecDeque::new())));
                    let last_check = run
                        .slots
                        .get(&key)
                        .map(|s| Arc::clone(&s.last_check))
                        .unwrap_or_default();
                    run.slots.insert(
                        key,
                        Slot {
                            state: Arc::new(tx),
                            control: None,
                            tail,
                            last_check,
                        },
                    );
                }
            }
        }
        inner.bump();

        let mut set = JoinSet::new();
        for step in starts {
            let inner = Arc::clone(inner);
            let project = Arc::clone(&project);
            let step = step.clone();
            set.spawn(async move { start_step(inner, project, step, deadline).await });
        }
        let mut failures = Vec::new();
        let mut timeouts = Vec::new();
        let mut warnings = Vec::new();
        while let Some(result) = set.join_next().await {
            match result {
                Ok(Ok(w)) => warnings.extend(w),
                Ok(Err(StepError::Failed(e))) => failures.push(e),
                Ok(Err(StepError::TimedOut(e))) => timeouts.push(e),
                Err(e) => failures.push(format!("internal error: {e}")),
            }
        }
        timeouts.sort();
        if let (true, Some(d)) = (failures.is_empty() && !timeouts.is_empty(), deadline) {
            return Err(SupervisorError::Timeout(d.timeout, timeouts.join("\n")));
        }
        if failures.is_empty() {
            let warnings = prepared
                .into_iter()
                .chain(adoption.warnings)
                .chain(warnings)
                .collect();
            Ok((UpReport { plan, warnings }, deadline))
        } else {
            failures.extend(timeouts.into_iter().map(|t| format!("timed out: {t}")));
            failures.sort();
            failures.dedup();
            Err(SupervisorError::Failed(failures))
        }
    }

    /// Waits until every instance of the project is ready: running and, where it has a health
    /// check, healthy; a one-shot that exited 0 counts as done. Fails at once when an instance
    /// failed (exited non-zero for good, unhealthy, could not start).
    ///
    /// With `services`, only those and what they depend on are waited for (`up --wait web`).
    pub async fn wait_ready(
        &self,
        project: &str,
        services: Option<&[String]>,
        timeout: Duration,
    ) -> Result<(), SupervisorError> {
        let deadline = Deadline::after(timeout);
        self.wait_ready_until(project, services, deadline).await
    }

    async fn wait_ready_until(
        &self,
        project: &str,
        services: Option<&[String]>,
        deadline: Deadline,
    ) -> Result<(), SupervisorError> {
        let mut changed = self.inner.changed.subscribe();
        let scope: Option<BTreeSet<String>> = match (services, self.project(project)) {
            (Some(list), Some(p)) => Some(wharf_plan::with_dependencies(&p, list)?),
            _ => None,
        };
        loop {
            let mut states = self.instances(project);
            if let Some(scope) = &scope {
                states.retain(|s| scope.contains(&s.service));
            }
            if states.is_empty() && !self.projects().iter().any(|p| p == project) {
                return Err(SupervisorError::UnknownProject(project.to_string()));
            }
            let mut failed = Vec::new();
            let mut waiting = Vec::new();
            for s in &states {
                match (s.status, s.health, s.finished) {
                    (Status::Exited { code: 0 }, _, true) => {}
                    (Status::Exited { code }, _, true) => {
                        failed.push(failure_text(self, s, &format!("exited with code {code}")))
                    }
                    (_, Some(Health::Unhealthy), _) => {
                        failed.push(failure_text(self, s, "is unhealthy"))
                    }
                    _ if s.is_ready() => {}
                    _ => waiting.push(self.describe(s)),
                }
            }
            if !failed.is_empty() {
                return Err(SupervisorError::Failed(failed));
            }
            if waiting.is_empty() {
                return Ok(());
            }
            tokio::select! {
                r = changed.changed() => if r.is_err() { return Err(SupervisorError::Failed(vec!["the supervisor stopped".into()])) },
                _ = tokio::time::sleep_until(deadline.at) => return Err(SupervisorError::Timeout(deadline.timeout, waiting.join("\n"))),
            }
        }
    }

    /// Stops running instances (all, or those of `services`), dependents first. They stay known,
    /// as exited, until `down`.
    pub async fn stop(
        &self,
        project: &str,
        services: Option<&[String]>,
    ) -> Result<(), SupervisorError> {
        let (p, targets) = self.targets(project, services, |s| !s.finished)?;
        let plan = wharf_plan::plan_stop(&p, &targets, Op::Remove);
        self.run_stops(project, &plan, |_| false).await;
        Ok(())
    }

    /// Starts stopped instances again (all, or those of `services` and their dependencies).
    pub async fn start(
        &self,
        project: &str,
        services: Option<&[String]>,
    ) -> Result<UpReport, SupervisorError> {
        let p = self
            .project(project)
            .ok_or_else(|| SupervisorError::UnknownProject(project.into()))?;
        let options = UpOptions {
            services: services.map(<[String]>::to_vec),
            no_recreate: true,
            ..UpOptions::default()
        };
        self.up(p, options).await
    }

    /// Stops and starts instances (all, or those of `services`).
    pub async fn restart(
        &self,
        project: &str,
        services: Option<&[String]>,
    ) -> Result<UpReport, SupervisorError> {
        self.stop(project, services).await?;
        self.start(project, services).await
    }

    /// Sets the number of instances of services, starting or removing instances.
    pub async fn scale(
        &self,
        project: &str,
        scale: BTreeMap<String, u32>,
    ) -> Result<UpReport, SupervisorError> {
        let p = self
            .project(project)
            .ok_or_else(|| SupervisorError::UnknownProject(project.into()))?;
        let options = UpOptions {
            services: Some(scale.keys().cloned().collect()),
            no_recreate: true,
            scale,
            ..UpOptions::default()
        };
        self.up(p, options).await
    }

    /// Stops every instance, dependents first, and forgets the project.
    pub async fn down(&self, project: &str) -> Result<(), SupervisorError> {
        let (p, targets) = self.targets(project, None, |_| true)?;
        let plan = wharf_plan::plan_stop(&p, &targets, Op::Remove);
        self.run_stops(project, &plan, |_| true).await;
        self.inner.lock().remove(project);
        self.inner.bump();
        // Every instance has stopped: what `prepare` and the instances created can go.
        self.inner.runtime.release(project).await.map_err(|e| {
            SupervisorError::Failed(vec![format!("cannot release project {project}: {e}")])
        })
    }

    fn targets(
        &self,
        project: &str,
        services: Option<&[String]>,
        keep: impl Fn(&InstanceState) -> bool,
    ) -> Result<(Arc<Project>, Vec<InstanceKey>), SupervisorError> {
        let projects = self.inner.lock();
        let run = projects
            .get(project)
            .ok_or_else(|| SupervisorError::UnknownProject(project.into()))?;
        if let Some(list) = services {
            for s in list {
                if !run.project.services.contains_key(s) && !run.slots.keys().any(|(n, _)| n == s) {
                    return Err(SupervisorError::Plan(
                        wharf_plan::PlanError::UnknownService(s.clone()),
                    ));
                }
            }
        }
        let targets = run
            .slots
            .iter()
            .filter(|((s, _), _)| services.is_none_or(|l| l.contains(s)))
            .filter(|(_, slot)| keep(&slot.state.borrow()))
            .map(|(k, _)| k.clone())
            .collect();
        Ok((Arc::clone(&run.project), targets))
    }

    /// Runs stop steps, each after the steps it waits for; `remove` says which instances are
    /// forgotten once stopped.
    async fn run_stops(&self, project: &str, plan: &Plan, remove: impl Fn(&(String, u32)) -> bool) {
        let mut senders: BTreeMap<(String, u32), watch::Sender<bool>> = BTreeMap::new();
        let mut receivers: BTreeMap<(String, u32), watch::Receiver<bool>> = BTreeMap::new();
        for s in &plan.steps {
            let (tx, rx) = watch::channel(false);
            senders.insert((s.service.clone(), s.number), tx);
            receivers.insert((s.service.clone(), s.number), rx);
        }
        let mut set = JoinSet::new();
        for step in &plan.steps {
            let key = (step.service.clone(), step.number);
            let waits: Vec<watch::Receiver<bool>> = step
                .waits
                .iter()
                .filter_map(|w| match w {
                    Wait::Stopped { service, number } => {
                        receivers.get(&(service.clone(), *number)).cloned()
                    }
                    Wait::Dependency { .. } => None,
                })
                .collect();
            let control = {
                let projects = self.inner.lock();
                projects
                    .get(project)
                    .and_then(|r| r.slots.get(&key))
                    .and_then(|s| s.control.clone())
            };
            let signal_done = senders.remove(&key);
            set.spawn(async move {
                for mut w in waits {
                    let _ = w.wait_for(|v| *v).await;
                }
                if let Some(c) = control {
                    let (reply, answer) = oneshot::channel();
                    if c.send(Control::Stop { reply }).is_ok() {
                        let _ = answer.await;
                    }
                }
                if let Some(d) = signal_done {
                    d.send_replace(true);
                }
                key
            });
        }
        while let Some(r) = set.join_next().await {
            if let Ok(key) = r
                && remove(&key)
            {
                let mut projects = self.inner.lock();
                if let Some(run) = projects.get_mut(project)
                    && let Some(slot) = run.slots.remove(&key)
                {
                    let st = slot.state.borrow().clone();
                    self.inner.emit(&st, EventKind::Removed);
                }
            }
        }
        self.inner.bump();
    }
}

/// Waits for a step's dependencies, then starts its instance. `Ok` carries warnings.
async fn start_step(
    inner: Arc<Inner>,
    project: Arc<Project>,
    step: Step,
    deadline: Option<Deadline>,
) -> Result<Vec<String>, StepError> {
    let mut warnings = Vec::new();
    let key = (step.service.clone(), step.number);
    let name = crate::spec::instance_name(&project.name, &step.service, step.number);
    for wait in &step.waits {
        let Wait::Dependency {
            service,
            condition,
            required,
        } = wait
        else {
            continue;
        };
        let outcome = wait_condition(&inner, &project, service, *condition, deadline).await;
        if let Err(failure) = outcome {
            let condition = condition_text(*condition);
            // `message` goes to the instance's state and events, `failure` to `up`'s answer. A
            // dependency still not there at the deadline fails the step whether it is required
            // or not, as in Docker Compose ("timeout waiting for dependencies").
            let (message, text, timed_out) = match failure {
                StepError::Failed(message) => {
                    let text = format!("{name} was not started: {message}");
                    (message, text, false)
                }
                StepError::TimedOut(status) => {
                    let message = match deadline {
                        Some(d) => format!(
                            "timed out after {} waiting for `{service}` ({condition})",
                            wharf_model::duration::format_duration(d.timeout)
                        ),
                        None => format!("timed out waiting for `{service}` ({condition})"),
                    };
                    let text =
                        format!("{name}, which waits for `{service}` ({condition}): {status}");
                    (message, text, true)
                }
            };
            let required = *required || timed_out;
            let state = inner
                .lock()
                .get(&project.name)
                .and_then(|r| r.slots.get(&key))
                .map(|s| s.state.borrow().clone());
            if let Some(st) = &state {
                inner.emit(
                    st,
                    EventKind::DependencyFailed {
                        message: message.clone(),
                        required,
                    },
                );
            }
            if required {
                if let Some(slot) = inner
                    .lock()
                    .get(&project.name)
                    .and_then(|r| r.slots.get(&key))
                {
                    slot.state.send_modify(|s| {
                        s.finished = true;
                        s.error = Some(message.clone());
                    });
                }
                inner.bump();
                return Err(if timed_out {
                    StepError::TimedOut(text)
                } else {
                    StepError::Failed(text)
                });
            }
            warnings.push(
                format!("{text} (going on: the dependency is `required: false`)")
                    .replace(" was not started: ", ": "),
            );
        }
    }
    let service = &project.services[&step.service];
    let spec = instance_spec_for(
        inner.runtime.as_ref(),
        &project,
        service,
        step.number,
        &inner.options.base_env,
        &inner.options.volumes_dir,
    )
    .map_err(|e| StepError::Failed(e.to_string()))?;
    for v in service
        .volumes
        .iter()
        .filter(|_| !inner.runtime.runs_images(&project.name))
    {
        if v.kind == wharf_model::project::VolumeType::Volume
            && let Some(source) = &v.source
        {
            let dir = crate::spec::volume_dir(&inner.options.volumes_dir, &project, source)
                .map_err(|e| StepError::Failed(format!("volume `{source}`: {e}")))?;
            std::fs::create_dir_all(&dir).map_err(|e| {
                StepError::Failed(format!(
                    "cannot create the directory of volume `{source}` ({}): {e}",
                    dir.display()
                ))
            })?;
        }
    }
    let (control_tx, control_rx) = mpsc::unbounded_channel();
    let (state, tail, last_check) = {
        let mut projects = inner.lock();
        let Some(slot) = projects
            .get_mut(&project.name)
            .and_then(|r| r.slots.get_mut(&key))
        else {
            return Err(StepError::Failed(format!(
                "{}: the project went away while starting",
                spec.name
            )));
        };
        slot.control = Some(control_tx);
        (
            Arc::clone(&slot.state),
            Arc::clone(&slot.tail),
            Arc::clone(&slot.last_check),
        )
    };
    let task_state = Arc::clone(&state);
    let task = InstanceTask {
        inner: Arc::clone(&inner),
        project: Arc::clone(&project),
        spec,
        state,
        tail,
        last_check,
    };
    let mut started = task.state.subscribe();
    tokio::spawn(task.run(control_rx));
    // `up` returns once the instance runs (or ended trying), so that what it reports is true;
    // an instance whose start outlasts the deadline (an engine that does not answer) is left to
    // its task.
    let started = started.wait_for(|s| s.ever_started || s.finished);
    match deadline {
        None => {
            let _ = started.await;
        }
        Some(d) => {
            if tokio::time::timeout_at(d.at, started).await.is_err() {
                let st = task_state.borrow().clone();
                return Err(StepError::TimedOut(describe_instance(&st, None)));
            }
        }
    }
    Ok(warnings)
}

enum Verdict {
    Met,
    Pending,
    Failed(String),
}

/// Waits until every instance of `service` meets `condition`, or fails saying why.
/// Waits until every instance of `service` meets `condition`, or fails saying why; with a
/// deadline, gives up when it passes, saying where each instance of `service` is.
async fn wait_condition(
    inner: &Arc<Inner>,
    project: &Arc<Project>,
    service: &str,
    condition: ConditionKind,
    deadline: Option<Deadline>,
) -> Result<(), StepError> {
    let mut changed = inner.changed.subscribe();
    let expired = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d.at).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(expired);
    loop {
        match evaluate(inner, project, service, condition) {
            Verdict::Met => return Ok(()),
            Verdict::Failed(m) => return Err(StepError::Failed(m)),
            Verdict::Pending => {}
        }
        tokio::select! {
            r = changed.changed() => if r.is_err() {
                return Err(StepError::Failed("the supervisor stopped".into()));
            },
            _ = &mut expired => return Err(StepError::TimedOut(service_status(inner, project, service))),
        }
    }
}

/// Where each instance of `service` is, for a wait on it that timed out: state, restarts, last
/// failed health check and last lines of output.
fn service_status(inner: &Arc<Inner>, project: &Project, service: &str) -> String {
    let projects = inner.lock();
    let Some(run) = projects.get(&project.name) else {
        return "the project was taken down".into();
    };
    let texts: Vec<String> = run
        .slots
        .iter()
        .filter(|((s, _), _)| s == service)
        .map(|(_, slot)| {
            let st = slot.state.borrow().clone();
            let check = slot
                .last_check
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            let lines: Vec<String> = slot
                .tail
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .cloned()
                .collect();
            format!(
                "{}{}",
                describe_instance(&st, check.as_deref()),
                output_tail(&st.name, &lines)
            )
        })
        .collect();
    if texts.is_empty() {
        format!("`{service}` has no instance yet")
    } else {
        texts.join("; ")
    }
}

/// Where an instance is, in words: its state, how often it was restarted, and what its last
/// failed health check said (`p-db-1 is restarting (restarted 4 times; last health check: exit
/// status 1: not ready)`).
fn describe_instance(s: &InstanceState, last_check: Option<&str>) -> String {
    let state = match (s.status, s.health) {
        (Status::Created, _) if s.finished => "was not started".to_string(),
        (Status::Created, _) => "has not started yet".to_string(),
        (Status::Starting, _) => "is starting".to_string(),
        (Status::Running, Some(Health::Starting)) => "is running but not healthy yet".to_string(),
        (Status::Running, Some(Health::Unhealthy)) => "is unhealthy".to_string(),
        (Status::Running, _) => "is running".to_string(),
        (Status::Stopping, _) => "is stopping".to_string(),
        (Status::Exited { code }, _) => format!("exited with code {code}"),
        (Status::Restarting { .. }, _) => "is restarting".to_string(),
    };
    let mut notes = Vec::new();
    if s.restarts > 0 {
        notes.push(format!(
            "restarted {} time{}",
            s.restarts,
            if s.restarts == 1 { "" } else { "s" }
        ));
    }
    if let Some(check) = last_check {
        let check = check.trim();
        notes.push(format!(
            "last health check: {}",
            if check.is_empty() { "failed" } else { check }
        ));
    }
    if let Some(e) = &s.error {
        notes.push(e.clone());
    }
    if notes.is_empty() {
        format!("{} {state}", s.name)
    } else {
        format!("{} {state} ({})", s.name, notes.join("; "))
    }
}

/// The last lines of an instance's output, indented under a heading; empty without lines.
fn output_tail(name: &str, lines: &[String]) -> String {
    if lines.is_empty() {
        return String::new();
    }
    format!(
        "\n  last output of {name}:\n{}",
        lines
            .iter()
            .map(|l| format!("    | {l}"))
            .collect::<Vec<_>>()
            .join("\n")
    )
}

fn condition_text(condition: ConditionKind) -> &'static str {
    match condition {
        ConditionKind::Started => Condition::Started.as_str(),
        ConditionKind::Healthy => Condition::Healthy.as_str(),
        ConditionKind::CompletedSuccessfully => Condition::CompletedSuccessfully.as_str(),
    }
}

fn evaluate(
    inner: &Arc<Inner>,
    project: &Arc<Project>,
    service: &str,
    condition: ConditionKind,
) -> Verdict {
    let Some(svc) = project.services.get(service) else {
        return Verdict::Failed(format!("service `{service}` is not part of the project"));
    };
    let projects = inner.lock();
    let Some(run) = projects.get(&project.name) else {
        return Verdict::Failed("the project was taken down".into());
    };
    let replicas = run.scale.get(service).copied().unwrap_or(svc.replicas);
    if replicas == 0 {
        return Verdict::Met;
    }
    let states: Vec<InstanceState> = (1..=replicas)
        .filter_map(|n| {
            run.slots
                .get(&(service.to_string(), n))
                .map(|s| s.state.borrow().clone())
        })
        .collect();
    if states.len() < replicas as usize {
        return Verdict::Pending;
    }
    let tail = |s: &InstanceState| -> String {
        let lines: Vec<String> = run
            .slots
            .get(&(s.service.clone(), s.number))
            .map(|slot| {
                slot.tail
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .iter()
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if lines.is_empty() {
            String::new()
        } else {
            format!(
                "\n  last output of {}:\n{}",
                s.name,
                lines
                    .iter()
                    .map(|l| format!("    | {l}"))
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        }
    };
    let condition_text = condition_text(condition);
    for s in &states {
        if s.finished && !s.ever_started {
            let why = s.error.clone().unwrap_or_else(|| "it did not start".into());
            return Verdict::Failed(format!(
                "dependency `{service}` ({condition_text}) failed: {why}{}",
                tail(s)
            ));
        }
    }
    match condition {
        ConditionKind::Started => {
            if states.iter().all(|s| s.ever_started) {
                Verdict::Met
            } else {
                Verdict::Pending
            }
        }
        ConditionKind::Healthy => {
            let has_check = svc
                .healthcheck
                .as_ref()
                .is_some_and(|h| h.is_enabled() && h.test.is_some());
            if !has_check {
                return Verdict::Failed(format!(
                    "dependency `{service}` ({condition_text}) can never be met: `{service}` has no health check; add one, or use condition: service_started"
                ));
            }
            for s in &states {
                if s.health == Some(Health::Unhealthy) {
                    return Verdict::Failed(format!(
                        "dependency `{service}` ({condition_text}) failed: {} is unhealthy{}",
                        s.name,
                        tail(s)
                    ));
                }
                if let (Status::Exited { code }, true) = (s.status, s.finished) {
                    return Verdict::Failed(format!(
                        "dependency `{service}` ({condition_text}) failed: {} exited with code {code} before it was healthy{}",
                        s.name,
                        tail(s)
                    ));
                }
            }
            if states
                .iter()
                .all(|s| s.status == Status::Running && s.health == Some(Health::Healthy))
            {
                Verdict::Met
            } else {
                Verdict::Pending
            }
        }
        ConditionKind::CompletedSuccessfully => {
            for s in &states {
                if let (Status::Exited { code }, true) = (s.status, s.finished)
                    && code != 0
                {
                    return Verdict::Failed(format!(
                        "dependency `{service}` ({condition_text}) failed: {} exited with code {code}{}",
                        s.name,
                        tail(s)
                    ));
                }
            }
            if states
                .iter()
                .all(|s| s.ever_started && s.status == Status::Exited { code: 0 })
            {
                Verdict::Met
            } else {
                Verdict::Pending
            }
        }
    }
}

fn failure_text(sup: &Supervisor, s: &InstanceState, what: &str) -> String {
    let lines = sup.tail(&s.project, &s.service, s.number);
    let mut text = format!("{} {what}", s.name);
    if let Some(e) = &s.error {
        text.push_str(&format!(": {e}"));
    }
    if !lines.is_empty() {
        text.push_str(&format!(
            "\n  last output of {}:\n{}",
            s.name,
            lines
                .iter()
                .map(|l| format!("    | {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ));
    }
    text
}

impl Supervisor {
    /// An instance that `up --wait` is still waiting for, in words (see [`describe_instance`]).
    fn describe(&self, s: &InstanceState) -> String {
        let check = self
            .inner
            .lock()
            .get(&s.project)
            .and_then(|r| r.slots.get(&(s.service.clone(), s.number)))
            .and_then(|slot| {
                slot.last_check
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone()
            });
        describe_instance(s, check.as_deref())
    }
}
