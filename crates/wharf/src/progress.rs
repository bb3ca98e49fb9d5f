//! What `up` and `down` show while they work: one line per instance (waiting on X, starting,
//! healthy, ...) with the time since its first event. On a terminal the lines update in place
//! (indicatif); otherwise each change is a plain line on standard error.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use wharf_api::message::{Event, EventKind, Health, InstanceState, Status};
use wharf_model::Project;

pub struct Progress {
    multi: Option<MultiProgress>,
    lines: BTreeMap<String, Line>,
    /// Service -> the services it waits on.
    waits: BTreeMap<String, Vec<String>>,
    /// Services with a health check.
    checked: BTreeSet<String>,
    width: usize,
}

struct Line {
    bar: Option<ProgressBar>,
    since: Instant,
    /// Whether the last state shown is a resting one.
    resting: bool,
}

impl Progress {
    /// A display for `project` (its dependencies and health checks make the texts better).
    pub fn new(project: Option<&Project>) -> Self {
        let multi = std::io::stderr()
            .is_terminal()
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        let mut progress = Progress {
            multi,
            lines: BTreeMap::new(),
            waits: BTreeMap::new(),
            checked: BTreeSet::new(),
            width: 0,
        };
        if let Some(p) = project {
            for (name, s) in &p.services {
                progress
                    .waits
                    .insert(name.clone(), s.depends_on.keys().cloned().collect());
                if s.healthcheck
                    .as_ref()
                    .is_some_and(|h| h.is_enabled() && h.test.is_some())
                {
                    progress.checked.insert(name.clone());
                }
                let longest = format!("{}-{name}-{}", p.name, s.replicas.max(1));
                progress.width = progress.width.max(longest.chars().count());
            }
        }
        progress
    }

    /// What an event says about its instance, and whether that is a resting state.
    fn describe(&self, event: &Event) -> (String, bool) {
        match &event.kind {
            EventKind::Created => match self.waits.get(&event.service) {
                Some(w) if !w.is_empty() => (format!("waiting on {}", w.join(", ")), false),
                _ => ("created".into(), false),
            },
            EventKind::Starting => ("starting".into(), false),
            EventKind::Running { .. } if self.checked.contains(&event.service) => {
                ("running, health: starting".into(), false)
            }
            EventKind::Running { .. } => ("started".into(), true),
            EventKind::Healthy => ("healthy".into(), true),
            EventKind::Unhealthy { .. } => ("unhealthy".into(), true),
            EventKind::Exited { code } => (format!("exited ({code})"), true),
            EventKind::Restarting { attempt, .. } => {
                (format!("restarting (attempt {attempt})"), false)
            }
            EventKind::Stopping => ("stopping".into(), false),
            EventKind::Removed => ("removed".into(), true),
            EventKind::StartFailed { reason } => (format!("failed: {reason}"), true),
            EventKind::DependencyFailed {
                message,
                required: true,
            } => (format!("not started: {message}"), true),
            EventKind::DependencyFailed { message, .. } => (format!("warning: {message}"), false),
            EventKind::Progress { message } => (message.clone(), true),
        }
    }

    pub fn event(&mut self, event: &Event) {
        let (text, resting) = self.describe(event);
        self.width = self.width.max(event.instance.chars().count());
        let width = self.width;
        let line = self
            .lines
            .entry(event.instance.clone())
            .or_insert_with(|| Line {
                bar: self.multi.as_ref().map(|m| {
                    let bar = m.add(ProgressBar::new_spinner());
                    bar.set_prefix(event.instance.clone());
                    bar
                }),
                since: Instant::now(),
                resting: false,
            });
        line.resting = resting;
        let elapsed = seconds(line.since.elapsed());
        match &line.bar {
            Some(bar) => {
                if resting {
                    bar.disable_steady_tick();
                    bar.set_style(style(&format!("  {{prefix:<{width}}} {{msg}}")));
                    bar.set_message(format!("{text} ({elapsed})"));
                } else {
                    bar.set_style(style(&format!(
                        "{{spinner}} {{prefix:<{width}}} {{msg}} ({{elapsed}})"
                    )));
                    bar.set_message(text);
                    bar.enable_steady_tick(Duration::from_millis(100));
                }
            }
            None if resting => eprintln!("{:<width$} {text} ({elapsed})", event.instance),
            None => eprintln!("{:<width$} {text}", event.instance),
        }
    }

    /// Shows the state each instance is in now (events still on their way when the verb
    /// returned would otherwise be missing).
    pub fn settle(&mut self, states: &[InstanceState]) {
        let width = self.width;
        for s in states {
            // A resting state shown is accurate already (with the time it was reached).
            let Some(line) = self.lines.get(&s.name).filter(|l| !l.resting) else {
                continue;
            };
            let status = match s.status {
                // A dependency failed: it will not start.
                Status::Created if s.finished => "not started".to_string(),
                _ => status_text(s),
            };
            let text = format!("{status} ({})", seconds(line.since.elapsed()));
            match &line.bar {
                Some(bar) => {
                    bar.disable_steady_tick();
                    bar.set_style(style(&format!("  {{prefix:<{width}}} {{msg}}")));
                    bar.set_message(text);
                }
                None => eprintln!("{:<width$} {text}", s.name),
            }
        }
    }

    /// Ends the display, leaving the last state of each line on the screen.
    pub fn finish(&mut self) {
        for line in self.lines.values() {
            if let Some(bar) = &line.bar {
                bar.disable_steady_tick();
                bar.tick();
                bar.abandon();
            }
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn seconds(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// `running (healthy)`, `exited (1)`, `restarting`, ...
pub fn status_text(s: &InstanceState) -> String {
    match s.status {
        Status::Created => "created".into(),
        Status::Starting => "starting".into(),
        Status::Running => match s.health {
            None => "running".into(),
            Some(Health::Starting) => "running (health: starting)".into(),
            Some(Health::Healthy) => "running (healthy)".into(),
            Some(Health::Unhealthy) => "running (unhealthy)".into(),
        },
        Status::Stopping => "stopping".into(),
        Status::Exited { code } => format!("exited ({code})"),
        Status::Restarting { .. } => "restarting".into(),
    }
}
