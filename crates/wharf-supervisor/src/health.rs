//! Health checks: a small [`Probe`] trait and the loop that runs it with Docker's semantics.
//!
//! Docker's rules, followed exactly: the first probe runs one period after the start; during
//! `start_period` the period is `start_interval` and failures do not count; once a probe passes
//! (during the start period or after), every failure counts; `retries` consecutive failures make
//! the instance unhealthy, one pass makes it healthy again; a probe that exceeds `timeout` fails.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::mpsc;
use tokio::time::Instant;
use wharf_model::project::{HealthTest, Healthcheck};
use wharf_runtime::{InstanceHandle, Runtime};

use crate::{Health, LastCheck};

/// One check of an instance's health.
#[async_trait]
pub trait Probe: Send + Sync {
    /// `Ok(())` when healthy; `Err(output)` with what the check said otherwise.
    async fn check(&self, timeout: Duration) -> Result<(), String>;
}

/// A `healthcheck.test` command run in the instance's context.
pub struct ExecProbe {
    pub runtime: Arc<dyn Runtime>,
    pub instance: Arc<dyn InstanceHandle>,
    pub argv: Vec<String>,
}

impl ExecProbe {
    /// The argv of a test: `CMD` as is, `CMD-SHELL` through `/bin/sh -c`; `None` for `NONE`.
    pub fn argv(test: &HealthTest) -> Option<Vec<String>> {
        match test {
            HealthTest::Cmd(args) => Some(args.clone()),
            HealthTest::Shell(cmd) => Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()]),
            HealthTest::None => None,
        }
    }
}

#[async_trait]
impl Probe for ExecProbe {
    async fn check(&self, timeout: Duration) -> Result<(), String> {
        match self
            .runtime
            .exec(self.instance.as_ref(), &self.argv, timeout)
            .await
        {
            Ok(out) => match out.status {
                Some(s) if s.success() => Ok(()),
                Some(s) => Err(format!("{s}: {}", out.output.trim_end())),
                None => Err(format!(
                    "timed out after {}",
                    wharf_model::duration::format_duration(timeout)
                )),
            },
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The thresholds of a health check, with Docker's defaults filled in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProbeSettings {
    pub interval: Duration,
    pub timeout: Duration,
    pub retries: u64,
    pub start_period: Duration,
    pub start_interval: Duration,
}

impl ProbeSettings {
    pub fn from(h: &Healthcheck) -> Self {
        let positive =
            |d: Option<Duration>, default: Duration| d.filter(|d| !d.is_zero()).unwrap_or(default);
        ProbeSettings {
            interval: positive(h.interval, Healthcheck::DEFAULT_INTERVAL),
            timeout: positive(h.timeout, Healthcheck::DEFAULT_TIMEOUT),
            retries: h
                .retries
                .filter(|r| *r > 0)
                .unwrap_or(Healthcheck::DEFAULT_RETRIES),
            start_period: h.start_period.unwrap_or_default(),
            start_interval: positive(h.start_interval, Healthcheck::DEFAULT_START_INTERVAL),
        }
    }
}

/// A change of health, with the probe's output when it failed.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HealthChange {
    pub health: Health,
    pub output: String,
}

/// Probes until the receiver is dropped, sending each change of health; every result goes to
/// `last_check` (the output of a failure, `None` for a pass), including the failures that change
/// nothing yet (inside the start period, or fewer than `retries`).
pub(crate) async fn run(
    probe: Arc<dyn Probe>,
    settings: ProbeSettings,
    tx: mpsc::Sender<HealthChange>,
    last_check: LastCheck,
) {
    let started = Instant::now();
    let mut health = Health::Starting;
    let mut failures: u64 = 0;
    loop {
        let in_start_period =
            health == Health::Starting && started.elapsed() < settings.start_period;
        let period = if in_start_period {
            settings.start_interval
        } else {
            settings.interval
        };
        tokio::time::sleep(period).await;
        let result = probe.check(settings.timeout).await;
        *last_check.lock().unwrap_or_else(|p| p.into_inner()) = result.clone().err();
        let next = match result {
            Ok(()) => {
                failures = 0;
                Some((Health::Healthy, String::new()))
            }
            Err(output) => {
                // Failures inside the start period do not count, until a probe has passed.
                let counts =
                    !(health == Health::Starting && started.elapsed() < settings.start_period);
                if counts {
                    failures += 1;
                }
                (failures >= settings.retries).then_some((Health::Unhealthy, output))
            }
        };
        if let Some((h, output)) = next
            && h != health
        {
            health = h;
            if tx.send(HealthChange { health, output }).await.is_err() {
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Fails until `passes_from`, then passes; records when it was called.
    struct Scripted {
        passes_from: Duration,
        fails_from: Option<Duration>,
        epoch: Instant,
        calls: Mutex<Vec<Duration>>,
    }

    #[async_trait]
    impl Probe for Scripted {
        async fn check(&self, _timeout: Duration) -> Result<(), String> {
            let t = self.epoch.elapsed();
            self.calls.lock().unwrap().push(t);
            let failing = self.fails_from.is_some_and(|f| t >= f);
            if t >= self.passes_from && !failing {
                Ok(())
            } else {
                Err("no".into())
            }
        }
    }

    fn settings(
        interval: u64,
        retries: u64,
        start_period: u64,
        start_interval: u64,
    ) -> ProbeSettings {
        ProbeSettings {
            interval: Duration::from_millis(interval),
            timeout: Duration::from_secs(1),
            retries,
            start_period: Duration::from_millis(start_period),
            start_interval: Duration::from_millis(start_interval),
        }
    }

    #[tokio::test(start_paused = true)]
    async fn start_interval_makes_a_ready_service_healthy_quickly() {
        let probe = Arc::new(Scripted {
            passes_from: Duration::from_millis(450),
            fails_from: None,
            epoch: Instant::now(),
            calls: Mutex::new(Vec::new()),
        });
        let (tx, mut rx) = mpsc::channel(8);
        let t0 = Instant::now();
        tokio::spawn(run(
            probe.clone(),
            settings(30_000, 3, 10_000, 200),
            tx,
            LastCheck::default(),
        ));
        let change = rx.recv().await.unwrap();
        assert_eq!(change.health, Health::Healthy);
        // Probes at 200, 400 (fail, not counted), 600 ms (pass): healthy at 600 ms, not after 30 s.
        assert_eq!(t0.elapsed(), Duration::from_millis(600));
        assert_eq!(probe.calls.lock().unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn retries_consecutive_failures_make_it_unhealthy() {
        let probe = Arc::new(Scripted {
            passes_from: Duration::ZERO,
            fails_from: Some(Duration::from_millis(1500)),
            epoch: Instant::now(),
            calls: Mutex::new(Vec::new()),
        });
        let (tx, mut rx) = mpsc::channel(8);
        let t0 = Instant::now();
        tokio::spawn(run(
            probe,
            settings(1000, 3, 0, 5000),
            tx,
            LastCheck::default(),
        ));
        assert_eq!(rx.recv().await.unwrap().health, Health::Healthy);
        assert_eq!(t0.elapsed(), Duration::from_secs(1));
        let change = rx.recv().await.unwrap();
        assert_eq!(change.health, Health::Unhealthy);
        // Failures at 2, 3 and 4 s: unhealthy at the third.
        assert_eq!(t0.elapsed(), Duration::from_secs(4));
        assert_eq!(change.output, "no");
    }

    #[tokio::test(start_paused = true)]
    async fn failures_in_the_start_period_do_not_count() {
        let probe = Arc::new(Scripted {
            passes_from: Duration::from_secs(100),
            fails_from: None,
            epoch: Instant::now(),
            calls: Mutex::new(Vec::new()),
        });
        let (tx, mut rx) = mpsc::channel(8);
        let t0 = Instant::now();
        let last = LastCheck::default();
        tokio::spawn(run(
            probe,
            settings(1000, 2, 5000, 500),
            tx,
            Arc::clone(&last),
        ));
        tokio::time::sleep(Duration::from_millis(600)).await;
        // A failure that does not count is still what the last check said.
        assert_eq!(*last.lock().unwrap(), Some("no".to_string()));
        assert_eq!(rx.recv().await.unwrap().health, Health::Unhealthy);
        // Probes every 500 ms before 5 s do not count; the one at 5 s (the period is over) is the
        // first failure, the next one, 1 s later, the second.
        assert_eq!(t0.elapsed(), Duration::from_secs(6));
    }
}
