//! One task per instance: start it, watch its health, stop it on request, and start it again when
//! its restart policy says so.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use wharf_model::Project;
use wharf_model::project::{Condition, RestartPolicy};
use wharf_runtime::{ExitStatus, InstanceHandle, InstanceSpec, Started};

use crate::health::{self, ExecProbe, HealthChange, ProbeSettings};
use crate::{EventKind, Health, Inner, InstanceState, LastCheck, Status, TAIL_LINES};

/// How long an exit waits for the instance's last output lines.
const OUTPUT_DRAIN: Duration = Duration::from_millis(200);

pub(crate) enum Control {
    /// Stop gracefully; the task ends.
    Stop { reply: oneshot::Sender<i32> },
    /// Stop gracefully and start again at once.
    Restart { reply: oneshot::Sender<i32> },
}

pub(crate) struct InstanceTask {
    pub inner: Arc<Inner>,
    pub project: Arc<Project>,
    pub spec: InstanceSpec,
    pub state: Arc<watch::Sender<InstanceState>>,
    pub tail: Arc<Mutex<VecDeque<String>>>,
    pub last_check: LastCheck,
}

enum Outcome {
    Exited(i32),
    Stopped(i32, Option<oneshot::Sender<i32>>),
    Restart(i32, oneshot::Sender<i32>),
}

impl InstanceTask {
    /// Lets whoever sends the instance traffic (the router) take it out and wait, up to
    /// `within`, for what is in flight, before the stop signal.
    async fn drain(&self, within: Duration) {
        let Some(drain) = self.inner.drain.get() else {
            return;
        };
        let snapshot = self.state.borrow().clone();
        drain.drain(&snapshot, within).await;
    }

    fn update(&self, f: impl FnOnce(&mut InstanceState), event: Option<EventKind>) {
        self.state.send_modify(f);
        if let Some(kind) = event {
            let snapshot = self.state.borrow().clone();
            self.inner.emit(&snapshot, kind);
        }
        self.inner.bump();
    }

    fn service(&self) -> Option<&wharf_model::project::Service> {
        self.project.services.get(&self.spec.service)
    }

    pub async fn run(self, mut control: mpsc::UnboundedReceiver<Control>) {
        let Some(service) = self.service().cloned() else {
            return;
        };
        let healthcheck = service
            .healthcheck
            .clone()
            .filter(|h| h.is_enabled())
            .and_then(|h| {
                h.test
                    .as_ref()
                    .and_then(ExecProbe::argv)
                    .map(|argv| (argv, ProbeSettings::from(&h)))
            });
        let grace = service
            .stop_grace_period
            .unwrap_or(crate::spec::DEFAULT_STOP_GRACE);
        let mut previous_delay: Option<Duration> = None;
        let mut runs: u32 = 0;
        loop {
            runs += 1;
            self.update(
                |s| {
                    s.status = Status::Starting;
                    s.error = None;
                    s.health = healthcheck.as_ref().map(|_| Health::Starting);
                },
                Some(EventKind::Starting),
            );
            let started = match self.inner.runtime.start(&self.spec).await {
                Ok(s) => s,
                Err(e) => {
                    let reason = e.to_string();
                    let error = reason.clone();
                    self.update(
                        |s| {
                            s.status = Status::Exited { code: 127 };
                            s.error = Some(error);
                            s.health = None;
                            s.finished = true;
                        },
                        Some(EventKind::StartFailed { reason }),
                    );
                    answer_pending(&mut control, 127);
                    return;
                }
            };
            let Started {
                handle,
                mut output,
                mut exit,
            } = started;
            let run_start = Instant::now();
            let pid = handle.pid();
            self.update(
                |s| {
                    s.status = Status::Running;
                    s.pid = pid;
                    s.started_at = Some(SystemTime::now());
                    s.ever_started = true;
                },
                Some(EventKind::Running { pid }),
            );
            if runs > 1 {
                self.restart_dependents(Condition::Started);
            }

            // Output, line by line, to the log sink and the in-memory tail.
            let logs = Arc::clone(&self.inner.logs);
            let tail = Arc::clone(&self.tail);
            let state = self.state.subscribe();
            let mut pump = tokio::spawn(async move {
                while let Some(line) = output.recv().await {
                    logs.line(&state.borrow(), &line);
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() == TAIL_LINES {
                        t.pop_front();
                    }
                    t.push_back(line.line);
                }
            });

            let (health_tx, mut health_rx) = mpsc::channel::<HealthChange>(4);
            let prober = healthcheck.as_ref().map(|(argv, settings)| {
                // A runtime that runs the check itself (Docker) reports it; nothing to probe.
                if let Some(reported) = handle.health() {
                    return tokio::spawn(crate::reported_health::follow(
                        reported,
                        health_tx.clone(),
                        Arc::clone(&self.last_check),
                    ));
                }
                let probe = Arc::new(ExecProbe {
                    runtime: Arc::clone(&self.inner.runtime),
                    instance: Arc::clone(&handle),
                    argv: argv.clone(),
                });
                tokio::spawn(health::run(
                    probe,
                    *settings,
                    health_tx.clone(),
                    Arc::clone(&self.last_check),
                ))
            });
            drop(health_tx);
            let mut healthy_once = false;

            let outcome = loop {
                tokio::select! {
                    status = &mut exit => break Outcome::Exited(exit_code(status)),
                    Some(change) = health_rx.recv() => {
                        let kind = match change.health {
                            Health::Healthy => EventKind::Healthy,
                            Health::Unhealthy => EventKind::Unhealthy { output: change.output.clone() },
                            Health::Starting => continue,
                        };
                        self.update(|s| s.health = Some(change.health), Some(kind));
                        if change.health == Health::Healthy && !healthy_once {
                            healthy_once = true;
                            if runs > 1 {
                                self.restart_dependents(Condition::Healthy);
                            }
                        }
                    }
                    command = control.recv() => {
                        self.update(|s| s.status = Status::Stopping, Some(EventKind::Stopping));
                        self.drain(grace).await;
                        let code = stop(handle.as_ref(), &self.spec, grace, &mut exit).await;
                        break match command {
                            Some(Control::Restart { reply }) => Outcome::Restart(code, reply),
                            Some(Control::Stop { reply }) => Outcome::Stopped(code, Some(reply)),
                            None => Outcome::Stopped(code, None),
                        };
                    }
                }
            };
            if let Some(p) = prober {
                p.abort();
            }
            // The last lines come before the exit in the logs and in failure messages; a
            // grandchild that keeps the pipe open must not hold the exit back for long.
            let _ = tokio::time::timeout(OUTPUT_DRAIN, &mut pump).await;

            match outcome {
                Outcome::Stopped(code, reply) => {
                    self.exited(code, true);
                    if let Some(r) = reply {
                        let _ = r.send(code);
                    }
                    return;
                }
                Outcome::Restart(code, reply) => {
                    self.exited(code, false);
                    let _ = reply.send(code);
                    previous_delay = None;
                    continue;
                }
                Outcome::Exited(code) => {
                    let restarts = self.state.borrow().restarts;
                    let again = match service.restart {
                        RestartPolicy::No => false,
                        RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
                        RestartPolicy::OnFailure { max_retries } => {
                            code != 0 && max_retries.is_none_or(|m| u64::from(restarts) < m)
                        }
                    };
                    self.exited(code, !again);
                    if !again {
                        answer_pending(&mut control, code);
                        return;
                    }
                    let delay = self
                        .inner
                        .options
                        .backoff
                        .next(previous_delay, run_start.elapsed());
                    previous_delay = Some(delay);
                    let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
                    self.update(
                        |s| {
                            s.status = Status::Restarting { delay_ms };
                            s.restarts += 1;
                        },
                        Some(EventKind::Restarting {
                            attempt: restarts + 1,
                            delay_ms,
                        }),
                    );
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        command = control.recv() => match command {
                            Some(Control::Restart { reply }) => {
                                let _ = reply.send(code);
                            }
                            Some(Control::Stop { reply }) => {
                                self.exited(code, true);
                                let _ = reply.send(code);
                                return;
                            }
                            None => {
                                self.exited(code, true);
                                return;
                            }
                        },
                    }
                }
            }
        }
    }

    fn exited(&self, code: i32, finished: bool) {
        self.update(
            |s| {
                s.status = Status::Exited { code };
                s.pid = None;
                s.health = None;
                s.finished = finished;
            },
            Some(EventKind::Exited { code }),
        );
    }

    /// `depends_on: {x: {restart: true}}`: when this instance came back, the services that
    /// declared it restart too (also when wharf restarted it after a crash, which Docker Compose
    /// does not do, docker/compose issue 12477).
    fn restart_dependents(&self, reached: Condition) {
        let dependents: Vec<String> = self
            .project
            .services
            .values()
            .filter(|s| {
                s.depends_on
                    .get(&self.spec.service)
                    .is_some_and(|d| d.restart && d.condition == reached)
            })
            .map(|s| s.name.clone())
            .collect();
        if dependents.is_empty() {
            return;
        }
        let controls: Vec<mpsc::UnboundedSender<Control>> = {
            let projects = self.inner.lock();
            let Some(run) = projects.get(&self.spec.project) else {
                return;
            };
            run.slots
                .iter()
                .filter(|((service, _), _)| dependents.contains(service))
                .filter_map(|(_, slot)| slot.control.clone())
                .collect()
        };
        for c in controls {
            let (reply, _) = oneshot::channel();
            let _ = c.send(Control::Restart { reply });
        }
    }
}

fn exit_code(status: Result<ExitStatus, oneshot::error::RecvError>) -> i32 {
    status.map(ExitStatus::code).unwrap_or(255)
}

/// Sends the stop signal, waits up to the grace period, then kills.
async fn stop(
    handle: &dyn InstanceHandle,
    spec: &InstanceSpec,
    grace: Duration,
    exit: &mut oneshot::Receiver<ExitStatus>,
) -> i32 {
    if handle.signal(spec.stop_signal).is_err() {
        return exit_code(exit.await);
    }
    match tokio::time::timeout(grace, &mut *exit).await {
        Ok(status) => exit_code(status),
        Err(_) => {
            let _ = handle.kill();
            exit_code(exit.await)
        }
    }
}

/// Answers stop requests that arrived while the instance was ending by itself.
fn answer_pending(control: &mut mpsc::UnboundedReceiver<Control>, code: i32) {
    while let Ok(c) = control.try_recv() {
        match c {
            Control::Stop { reply } | Control::Restart { reply } => {
                let _ = reply.send(code);
            }
        }
    }
}
