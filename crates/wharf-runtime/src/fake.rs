//! A scriptable [`Runtime`] for tests: no processes, only `tokio::time`, so supervisor tests can run
//! with paused time and assert exact timings.
//!
//! Each service (or instance) gets a [`FakeScript`]: what each successive start does (run until
//! signalled, exit after a delay with a code, refuse to start, ignore the stop signal), when its
//! health check starts passing, and the lines it prints. Everything the supervisor did is
//! inspectable directly: starts, signals, kills, health-check calls, `prepare` and `release`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::{
    ExecOutput, ExitStatus, InstanceHandle, InstanceSpec, OutputLine, Runtime, RuntimeError,
    Signal, Started, Stream,
};

/// What one start of an instance does.
#[derive(Clone, Debug, PartialEq)]
pub enum Behavior {
    /// Runs until signalled; the stop signal makes it exit with `code_on_stop`.
    Run { code_on_stop: i32 },
    /// Exits by itself after `after` with `code` (or earlier, when signalled, like `Run`).
    ExitAfter { after: Duration, code: i32 },
    /// `start` fails with this reason.
    RefuseStart(String),
    /// Ignores every signal: only `kill` ends it.
    Hang,
}

/// When the health check of an instance passes, counted from each start.
#[derive(Clone, Debug, PartialEq)]
pub enum FakeHealth {
    /// Passes from this long after the start on.
    After(Duration),
    /// Never passes.
    Never,
    /// Passes `n` times after `after`, then fails for ever (a service that becomes unhealthy).
    ThenFail { after: Duration, passes: u32 },
}

#[derive(Clone, Debug, PartialEq)]
pub struct FakeScript {
    /// What the 1st, 2nd, ... start does; the last entry repeats.
    pub starts: Vec<Behavior>,
    pub health: FakeHealth,
    /// Printed on stdout right after each start.
    pub output: Vec<String>,
    /// How long a health-check exec takes.
    pub exec_latency: Duration,
}

impl Default for FakeScript {
    fn default() -> Self {
        FakeScript {
            starts: vec![Behavior::Run { code_on_stop: 0 }],
            health: FakeHealth::After(Duration::ZERO),
            output: Vec::new(),
            exec_latency: Duration::ZERO,
        }
    }
}

impl FakeScript {
    pub fn run() -> Self {
        FakeScript::default()
    }

    pub fn exit_after(after: Duration, code: i32) -> Self {
        FakeScript {
            starts: vec![Behavior::ExitAfter { after, code }],
            ..FakeScript::default()
        }
    }

    pub fn healthy_after(mut self, after: Duration) -> Self {
        self.health = FakeHealth::After(after);
        self
    }

    pub fn never_healthy(mut self) -> Self {
        self.health = FakeHealth::Never;
        self
    }

    pub fn with_output(mut self, lines: &[&str]) -> Self {
        self.output = lines.iter().map(|s| s.to_string()).collect();
        self
    }
}

/// What happened to one instance, for assertions.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FakeRecord {
    pub starts: u32,
    /// Start times, relative to the runtime's creation.
    pub started_at: Vec<Duration>,
    pub signals: Vec<Signal>,
    pub kills: u32,
    pub execs: u32,
    pub running: bool,
}

#[derive(Default)]
struct State {
    by_service: HashMap<String, FakeScript>,
    by_instance: HashMap<String, FakeScript>,
    records: HashMap<String, FakeRecord>,
    /// Health of the current run of each instance: script, start time, passes so far.
    live: HashMap<String, (FakeHealth, Instant, Duration, u32)>,
    /// Order in which instances were started, by name.
    start_order: Vec<String>,
    /// `prepare` and `release` calls, in order: `prepare <project>`, `release <project>`.
    project_calls: Vec<String>,
}

pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
    epoch: Instant,
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    // A test that panicked while holding the lock has failed already; keep going with the data.
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeRuntime {
    pub fn new() -> Arc<Self> {
        Arc::new(FakeRuntime {
            state: Arc::new(Mutex::new(State::default())),
            epoch: Instant::now(),
        })
    }

    /// Scripts every instance of `service`.
    pub fn script(&self, service: &str, script: FakeScript) {
        lock(&self.state)
            .by_service
            .insert(service.to_string(), script);
    }

    /// Scripts one instance, by its name (`<project>-<service>-<n>`).
    pub fn script_instance(&self, name: &str, script: FakeScript) {
        lock(&self.state)
            .by_instance
            .insert(name.to_string(), script);
    }

    pub fn record(&self, name: &str) -> FakeRecord {
        lock(&self.state)
            .records
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// Instance names in the order of their first start.
    pub fn start_order(&self) -> Vec<String> {
        lock(&self.state).start_order.clone()
    }

    /// Every `prepare` and `release`, in order, as `prepare <project>` / `release <project>`.
    pub fn project_calls(&self) -> Vec<String> {
        lock(&self.state).project_calls.clone()
    }

    /// Names of the instances running now, sorted.
    pub fn running(&self) -> Vec<String> {
        let mut v: Vec<String> = lock(&self.state)
            .records
            .iter()
            .filter(|(_, r)| r.running)
            .map(|(k, _)| k.clone())
            .collect();
        v.sort();
        v
    }

    fn script_for(&self, spec: &InstanceSpec) -> FakeScript {
        let st = lock(&self.state);
        st.by_instance
            .get(&spec.name)
            .or_else(|| st.by_service.get(&spec.service))
            .cloned()
            .unwrap_or_default()
    }
}

#[derive(Debug)]
enum Control {
    Signal(Signal),
    Kill,
}

#[derive(Debug)]
struct FakeHandle {
    spec: InstanceSpec,
    control: mpsc::UnboundedSender<Control>,
}

impl FakeHandle {
    fn send(&self, c: Control) -> Result<(), RuntimeError> {
        self.control.send(c).map_err(|_| RuntimeError::Instance {
            instance: self.spec.name.clone(),
            reason: "is not running".into(),
        })
    }
}

impl InstanceHandle for FakeHandle {
    fn spec(&self) -> &InstanceSpec {
        &self.spec
    }

    fn pid(&self) -> Option<u32> {
        None
    }

    fn signal(&self, signal: Signal) -> Result<(), RuntimeError> {
        self.send(Control::Signal(signal))
    }

    fn kill(&self) -> Result<(), RuntimeError> {
        self.send(Control::Kill)
    }
}

#[async_trait]
impl Runtime for FakeRuntime {
    fn name(&self) -> &'static str {
        "fake"
    }

    async fn prepare(&self, project: &wharf_model::Project) -> Result<Vec<String>, RuntimeError> {
        lock(&self.state)
            .project_calls
            .push(format!("prepare {}", project.name));
        Ok(Vec::new())
    }

    async fn release(&self, project: &str) -> Result<(), RuntimeError> {
        lock(&self.state)
            .project_calls
            .push(format!("release {project}"));
        Ok(())
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<Started, RuntimeError> {
        let script = self.script_for(spec);
        let n = {
            let mut st = lock(&self.state);
            let since = self.epoch.elapsed();
            if !st.start_order.contains(&spec.name) {
                st.start_order.push(spec.name.clone());
            }
            let rec = st.records.entry(spec.name.clone()).or_default();
            rec.starts += 1;
            rec.started_at.push(since);
            rec.starts as usize
        };
        let behavior = script
            .starts
            .get(n - 1)
            .or(script.starts.last())
            .cloned()
            .unwrap_or(Behavior::Run { code_on_stop: 0 });
        if let Behavior::RefuseStart(reason) = &behavior {
            return Err(RuntimeError::Start {
                instance: spec.name.clone(),
                program: spec.argv.first().cloned().unwrap_or_default(),
                reason: reason.clone(),
            });
        }
        {
            let mut st = lock(&self.state);
            st.records.entry(spec.name.clone()).or_default().running = true;
            st.live.insert(
                spec.name.clone(),
                (
                    script.health.clone(),
                    Instant::now(),
                    script.exec_latency,
                    0,
                ),
            );
        }

        let (control_tx, mut control_rx) = mpsc::unbounded_channel();
        let (out_tx, out_rx) = mpsc::channel(64);
        let (exit_tx, exit_rx) = oneshot::channel();
        let handle = Arc::new(FakeHandle {
            spec: spec.clone(),
            control: control_tx,
        });
        let name = spec.name.clone();
        let stop_signal = spec.stop_signal;
        let state = Arc::clone(&self.state);
        tokio::spawn(async move {
            for line in script.output {
                let _ = out_tx
                    .send(OutputLine {
                        stream: Stream::Stdout,
                        line,
                        at: SystemTime::now(),
                    })
                    .await;
            }
            let deadline = match behavior {
                Behavior::ExitAfter { after, .. } => Some(Instant::now() + after),
                _ => None,
            };
            let code = loop {
                let control = match deadline {
                    Some(d) => tokio::select! {
                        _ = tokio::time::sleep_until(d) => None,
                        c = control_rx.recv() => Some(c.unwrap_or(Control::Kill)),
                    },
                    None => Some(control_rx.recv().await.unwrap_or(Control::Kill)),
                };
                let mut st = lock(&state);
                let rec = st.records.entry(name.clone()).or_default();
                match (control, &behavior) {
                    (None, Behavior::ExitAfter { code, .. }) => break *code,
                    (None, _) => break 0,
                    (Some(Control::Kill), _) => {
                        rec.kills += 1;
                        break 128 + Signal::KILL.0;
                    }
                    (Some(Control::Signal(s)), b) => {
                        rec.signals.push(s);
                        match b {
                            Behavior::Hang => continue,
                            Behavior::Run { code_on_stop } if s == stop_signal => {
                                break *code_on_stop;
                            }
                            _ if s == stop_signal => break 128 + s.0,
                            _ => continue,
                        }
                    }
                }
            };
            {
                let mut st = lock(&state);
                st.records.entry(name.clone()).or_default().running = false;
                st.live.remove(&name);
            }
            drop(out_tx);
            let _ = exit_tx.send(ExitStatus::Code(code));
        });
        Ok(Started {
            handle,
            output: out_rx,
            exit: exit_rx,
        })
    }

    async fn exec(
        &self,
        instance: &dyn InstanceHandle,
        _argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        let name = &instance.spec().name;
        let live = {
            let mut st = lock(&self.state);
            st.records.entry(name.clone()).or_default().execs += 1;
            st.live.get(name).cloned()
        };
        let Some((health, started, latency, _)) = live else {
            return Err(RuntimeError::Instance {
                instance: name.clone(),
                reason: "is not running".into(),
            });
        };
        if latency > timeout {
            tokio::time::sleep(timeout).await;
            return Ok(ExecOutput {
                status: None,
                output: String::new(),
            });
        }
        tokio::time::sleep(latency).await;
        let elapsed = started.elapsed();
        let passes = {
            let mut st = lock(&self.state);
            let Some(entry) = st.live.get_mut(name) else {
                return Err(RuntimeError::Instance {
                    instance: name.clone(),
                    reason: "is not running".into(),
                });
            };
            let ok = match health {
                FakeHealth::After(d) => elapsed >= d,
                FakeHealth::Never => false,
                FakeHealth::ThenFail { after, passes } => elapsed >= after && entry.3 < passes,
            };
            if ok {
                entry.3 += 1;
            }
            ok
        };
        Ok(ExecOutput {
            status: Some(ExitStatus::Code(if passes { 0 } else { 1 })),
            output: if passes {
                "ok".into()
            } else {
                "not ready".into()
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> InstanceSpec {
        InstanceSpec {
            project: "p".into(),
            service: name.into(),
            number: 1,
            name: format!("p-{name}-1"),
            argv: vec!["x".into()],
            working_dir: "/".into(),
            environment: Default::default(),
            user: None,
            stop_signal: Signal::TERM,
            network: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn exits_after_its_delay_with_its_code() {
        let rt = FakeRuntime::new();
        rt.script("a", FakeScript::exit_after(Duration::from_secs(3), 4));
        let t0 = Instant::now();
        let started = rt.start(&spec("a")).await.unwrap();
        assert_eq!(started.exit.await.unwrap(), ExitStatus::Code(4));
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
        assert!(rt.running().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn stop_signal_ends_a_run_and_hang_needs_kill() {
        let rt = FakeRuntime::new();
        rt.script(
            "h",
            FakeScript {
                starts: vec![Behavior::Hang],
                ..FakeScript::default()
            },
        );
        let a = rt.start(&spec("a")).await.unwrap();
        a.handle.signal(Signal::TERM).unwrap();
        assert_eq!(a.exit.await.unwrap(), ExitStatus::Code(0));
        let h = rt.start(&spec("h")).await.unwrap();
        h.handle.signal(Signal::TERM).unwrap();
        h.handle.kill().unwrap();
        assert_eq!(h.exit.await.unwrap(), ExitStatus::Code(137));
        assert_eq!(rt.record("p-h-1").signals, vec![Signal::TERM]);
        assert_eq!(rt.record("p-h-1").kills, 1);
    }

    #[tokio::test(start_paused = true)]
    async fn health_passes_after_its_delay() {
        let rt = FakeRuntime::new();
        rt.script(
            "a",
            FakeScript::run().healthy_after(Duration::from_millis(500)),
        );
        let a = rt.start(&spec("a")).await.unwrap();
        let h = a.handle.as_ref();
        let early = rt.exec(h, &[], Duration::from_secs(1)).await.unwrap();
        assert_eq!(early.status, Some(ExitStatus::Code(1)));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let late = rt.exec(h, &[], Duration::from_secs(1)).await.unwrap();
        assert_eq!(late.status, Some(ExitStatus::Code(0)));
    }

    #[tokio::test]
    async fn refuse_start_is_an_error() {
        let rt = FakeRuntime::new();
        rt.script(
            "a",
            FakeScript {
                starts: vec![Behavior::RefuseStart("no such program".into())],
                ..FakeScript::default()
            },
        );
        let e = rt.start(&spec("a")).await.err().unwrap();
        assert_eq!(
            e.to_string(),
            "instance p-a-1: cannot start `x`: no such program"
        );
    }
}
