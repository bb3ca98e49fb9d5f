//! wharf-plan: decide, purely, what to do to bring a project to its desired state.
//!
//! `plan_up(project, observed, options)` compares the enabled services and their replica counts
//! with the instances that exist now and returns a [`Plan`]: the instances to start, recreate (their
//! configuration changed) and stop (scaled down or removed), each with what it must wait for.
//! Starts wait on the `depends_on` conditions of their service (and on the service whose network
//! they join); stops wait until the instances that depend on them are stopped. Everything not
//! waiting on something runs at once, so independent branches of the graph start in parallel.
//! The executor (wharf-supervisor) carries no decision logic: it runs the steps as their waits are
//! met. A plan prints itself (`Display`), and is tested as golden text.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use wharf_model::Project;
use wharf_model::project::{Condition, NetworkMode, Service};

/// An instance that exists now (running or exited), as the supervisor or the engine reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedInstance {
    pub service: String,
    pub number: u32,
    /// The [`config_hash`] of the service configuration it was started with.
    pub config_hash: String,
    pub running: bool,
    /// How it ended, when it is not running.
    pub exit_code: Option<i32>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub struct UpOptions {
    /// Only these services and what they depend on (`wharf up web`); `None` is every service.
    pub services: Option<Vec<String>>,
    /// Recreate instances even when their configuration did not change.
    pub force_recreate: bool,
    /// Never recreate an existing instance, even when its configuration changed.
    pub no_recreate: bool,
    /// Replica counts that override the project's (`wharf scale web=3`, `up --scale`).
    pub scale: BTreeMap<String, u32>,
    /// Remove instances that the runtime still has of services no longer in the project
    /// (`up --remove-orphans`); without it they are left alone with a warning, as Docker Compose
    /// does. Instances the supervisor started itself are removed either way.
    pub remove_orphans: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// Start a new instance.
    Start,
    /// Start an instance that exists but is not running, unchanged.
    Restart,
    /// Stop the existing instance and start a new one (its configuration changed).
    Recreate,
    /// Stop and remove the instance (scaled down, or its service is gone).
    Remove,
}

/// Something a step waits for before it runs.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Wait {
    /// Every instance of `service` meets `condition`.
    Dependency {
        service: String,
        condition: ConditionKind,
        /// `false`: a failure of the dependency is a warning, the step goes on.
        required: bool,
    },
    /// The instance `service-number` has been stopped.
    Stopped { service: String, number: u32 },
}

/// [`Condition`] with an order, for printing plans deterministically; `NetworkOf` is the wait of
/// `network_mode: service:x` (x started).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConditionKind {
    Started,
    Healthy,
    CompletedSuccessfully,
}

impl From<Condition> for ConditionKind {
    fn from(c: Condition) -> Self {
        match c {
            Condition::Started => ConditionKind::Started,
            Condition::Healthy => ConditionKind::Healthy,
            Condition::CompletedSuccessfully => ConditionKind::CompletedSuccessfully,
        }
    }
}

impl fmt::Display for ConditionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConditionKind::Started => "started",
            ConditionKind::Healthy => "healthy",
            ConditionKind::CompletedSuccessfully => "completed successfully",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub op: Op,
    pub service: String,
    pub number: u32,
    pub waits: Vec<Wait>,
    /// Why, for `Recreate` and `Remove` ("configuration changed", "scaled to 1").
    pub reason: Option<String>,
}

/// What to do, in an order where every step comes after what it waits for.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub project: String,
    pub steps: Vec<Step>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.steps.is_empty()
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("no such service: {0}")]
    UnknownService(String),
}

/// A stable hash of a service's configuration: the instance is recreated when it changes.
/// FNV-1a over the normalised configuration as `wharf config --format json` prints it.
pub fn config_hash(service: &Service) -> String {
    let text = wharf_model::config::service_value(service).to_string();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The services a service waits for: its `depends_on` and the service whose network it joins.
fn dependencies(service: &Service) -> Vec<Wait> {
    let mut waits: Vec<Wait> = service
        .depends_on
        .iter()
        .map(|(name, d)| Wait::Dependency {
            service: name.clone(),
            condition: d.condition.into(),
            required: d.required,
        })
        .collect();
    if let Some(NetworkMode::Service(x)) = &service.network_mode
        && !service.depends_on.contains_key(x)
    {
        waits.push(Wait::Dependency {
            service: x.clone(),
            condition: ConditionKind::Started,
            required: true,
        });
    }
    waits.sort();
    waits
}

/// `services` and everything they depend on, transitively.
pub fn with_dependencies(
    project: &Project,
    services: &[String],
) -> Result<BTreeSet<String>, PlanError> {
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = services.to_vec();
    while let Some(name) = todo.pop() {
        let Some(s) = project.services.get(&name) else {
            return Err(PlanError::UnknownService(name));
        };
        if out.insert(name) {
            for w in dependencies(s) {
                if let Wait::Dependency { service, .. } = w
                    && project.services.contains_key(&service)
                {
                    todo.push(service);
                }
            }
        }
    }
    Ok(out)
}

/// The plan that brings `project` up, given what exists now.
pub fn plan_up(
    project: &Project,
    observed: &[ObservedInstance],
    options: &UpOptions,
) -> Result<Plan, PlanError> {
    let selected: BTreeSet<String> = match &options.services {
        Some(list) => with_dependencies(project, list)?,
        None => project.services.keys().cloned().collect(),
    };
    for name in options.scale.keys() {
        if !project.services.contains_key(name) {
            return Err(PlanError::UnknownService(name.clone()));
        }
    }
    let mut starts = Vec::new();
    let mut removes = Vec::new();
    for name in project.services_in_dependency_order() {
        if !selected.contains(name) {
            continue;
        }
        let service = &project.services[name];
        let replicas = options.scale.get(name).copied().unwrap_or(service.replicas);
        let hash = config_hash(service);
        let waits = dependencies(service);
        let existing: BTreeMap<u32, &ObservedInstance> = observed
            .iter()
            .filter(|o| o.service == name)
            .map(|o| (o.number, o))
            .collect();
        for number in 1..=replicas {
            let step = |op: Op, reason: Option<String>| Step {
                op,
                service: name.to_string(),
                number,
                waits: waits.clone(),
                reason,
            };
            match existing.get(&number) {
                None => starts.push(step(Op::Start, None)),
                Some(o) => {
                    let changed = o.config_hash != hash;
                    if options.force_recreate || (changed && !options.no_recreate) {
                        let reason = if options.force_recreate {
                            "forced"
                        } else {
                            "configuration changed"
                        };
                        starts.push(step(Op::Recreate, Some(reason.into())));
                    } else if !o.running {
                        // A one-shot that completed is not run again for a service that only
                        // depends on it (`wharf start web` after `migrate` exited 0).
                        let dependency_only = options
                            .services
                            .as_ref()
                            .is_some_and(|l| !l.iter().any(|s| s == name));
                        if !(dependency_only && o.exit_code == Some(0)) {
                            starts.push(step(Op::Restart, None));
                        }
                    }
                }
            }
        }
        for (number, _) in existing.range(replicas + 1..) {
            removes.push(Step {
                op: Op::Remove,
                service: name.to_string(),
                number: *number,
                waits: Vec::new(),
                reason: Some(format!("scaled to {replicas}")),
            });
        }
    }
    // Instances of services that are no longer in the project (or disabled) go too, but only on
    // a full `up`; `up web` leaves other services alone.
    if options.services.is_none() {
        let mut gone: Vec<&ObservedInstance> = observed
            .iter()
            .filter(|o| !project.services.contains_key(&o.service))
            .collect();
        gone.sort_by(|a, b| (&a.service, a.number).cmp(&(&b.service, b.number)));
        for o in gone {
            removes.push(Step {
                op: Op::Remove,
                service: o.service.clone(),
                number: o.number,
                waits: Vec::new(),
                reason: Some("no longer in the project".into()),
            });
        }
    }
    let mut steps = removes;
    steps.extend(starts);
    Ok(Plan {
        project: project.name.clone(),
        steps,
    })
}

/// The plan that stops the given instances: an instance waits until every instance that
/// depends on it (directly, among those stopped) is stopped. `project` gives the dependency graph;
/// instances of services it does not know stop first, waiting on nothing.
pub fn plan_stop(project: &Project, instances: &[(String, u32)], op: Op) -> Plan {
    let mut ordered: Vec<&(String, u32)> = instances.iter().collect();
    let order = project.services_in_dependency_order();
    let rank = |s: &str| order.iter().position(|n| *n == s);
    // Dependents first: reverse dependency order, services the project does not know first of all.
    ordered.sort_by(|a, b| {
        let key = |s: &str| rank(s).unwrap_or(usize::MAX);
        key(&b.0)
            .cmp(&key(&a.0))
            .then(a.0.cmp(&b.0))
            .then(b.1.cmp(&a.1))
    });
    let steps = ordered
        .iter()
        .map(|(service, number)| {
            let mut waits = Vec::new();
            for (other, other_number) in instances {
                let depends = project.services.get(other).is_some_and(|s| {
                    dependencies(s)
                        .iter()
                        .any(|w| matches!(w, Wait::Dependency { service: d, .. } if d == service))
                });
                if depends {
                    waits.push(Wait::Stopped {
                        service: other.clone(),
                        number: *other_number,
                    });
                }
            }
            waits.sort();
            Step {
                op: op.clone(),
                service: service.clone(),
                number: *number,
                waits,
                reason: None,
            }
        })
        .collect();
    Plan {
        project: project.name.clone(),
        steps,
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.steps.is_empty() {
            return writeln!(f, "{}: nothing to do", self.project);
        }
        let width = self
            .steps
            .iter()
            .map(|s| s.service.len() + 1 + s.number.to_string().len())
            .max()
            .unwrap_or(0);
        for s in &self.steps {
            let op = match s.op {
                Op::Start => "start",
                Op::Restart => "restart",
                Op::Recreate => "recreate",
                Op::Remove => "remove",
            };
            let name = format!("{}-{}", s.service, s.number);
            let mut line = format!("{op:<8} {name:<width$}");
            if !s.waits.is_empty() {
                let waits: Vec<String> = s
                    .waits
                    .iter()
                    .map(|w| match w {
                        Wait::Dependency {
                            service,
                            condition,
                            required,
                        } => {
                            let optional = if *required { "" } else { ", optional" };
                            format!("{service} {condition}{optional}")
                        }
                        Wait::Stopped { service, number } => format!("{service}-{number} stopped"),
                    })
                    .collect();
                line.push_str(&format!("  after {}", waits.join(", ")));
            }
            if let Some(r) = &s.reason {
                line.push_str(&format!("  ({r})"));
            }
            writeln!(f, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
