//! Following a container: its output line by line (`logs` with timestamps, so that a second
//! attachment after a restart neither loses nor repeats a line), its health and its exit from
//! the Engine's event stream (`health_status`, `die` with its exit code).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::container::LogOutput;
use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use bollard::query_parameters::{
    EventsOptionsBuilder, KillContainerOptionsBuilder, LogsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot, watch};
use wharf_runtime::{
    ExitStatus, InstanceHandle, InstanceSpec, OutputLine, ReportedHealth, RuntimeError, Signal,
    Started, Stream,
};

/// The last output line seen per container id (nanoseconds since the epoch).
pub type LogMarks = Arc<Mutex<HashMap<String, i64>>>;

/// A running container.
#[derive(Debug)]
pub struct ContainerHandle {
    pub spec: InstanceSpec,
    pub id: String,
    pub pid: Option<u32>,
    docker: Docker,
    /// Seconds the Engine waits after the stop signal before it kills.
    grace: Option<i32>,
    health: Option<watch::Receiver<ReportedHealth>>,
}

impl ContainerHandle {
    fn runtime() -> Result<tokio::runtime::Handle, RuntimeError> {
        tokio::runtime::Handle::try_current()
            .map_err(|_| RuntimeError::Other("the Docker runtime needs a tokio runtime".into()))
    }
}

impl InstanceHandle for ContainerHandle {
    fn spec(&self) -> &InstanceSpec {
        &self.spec
    }

    fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// The stop signal goes through the Engine's stop (which knows the container's stop signal
    /// and grace period, and keeps its restart policy from starting it again); other signals
    /// through kill.
    fn signal(&self, signal: Signal) -> Result<(), RuntimeError> {
        let docker = self.docker.clone();
        let id = self.id.clone();
        let name = self.spec.name.clone();
        if signal == self.spec.stop_signal {
            let mut options = StopContainerOptionsBuilder::default();
            if let Some(t) = self.grace {
                options = options.t(t);
            }
            let options = options.build();
            Self::runtime()?.spawn(async move {
                if let Err(e) = docker.stop_container(&id, Some(options)).await {
                    eprintln!("wharf: cannot stop container {name}: {e}");
                }
            });
        } else {
            let options = KillContainerOptionsBuilder::default()
                .signal(&signal.0.to_string())
                .build();
            Self::runtime()?.spawn(async move {
                if let Err(e) = docker.kill_container(&id, Some(options)).await {
                    eprintln!("wharf: cannot signal container {name}: {e}");
                }
            });
        }
        Ok(())
    }

    fn kill(&self) -> Result<(), RuntimeError> {
        let docker = self.docker.clone();
        let id = self.id.clone();
        Self::runtime()?.spawn(async move {
            let options = KillContainerOptionsBuilder::default()
                .signal("KILL")
                .build();
            let _ = docker.kill_container(&id, Some(options)).await;
        });
        Ok(())
    }

    fn health(&self) -> Option<watch::Receiver<ReportedHealth>> {
        self.health.clone()
    }
}

/// `2026-11-22T03:01:02.123456789Z` (or with an offset) as nanoseconds since the epoch.
pub fn parse_time(text: &str) -> Option<i64> {
    let (date, rest) = text.split_once('T')?;
    let mut d = date.split('-');
    let (y, m, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (clock, offset) = match rest.find(['Z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "Z"),
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut t = hms.split(':');
    let (hh, mm, ss): (i64, i64, i64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    let mut nanos: i64 = 0;
    for (i, c) in fraction.chars().take(9).enumerate() {
        nanos += i64::from(c.to_digit(10)?) * 10i64.pow(8 - i as u32);
    }
    let offset_secs = match offset.as_bytes().first() {
        Some(b'+') | Some(b'-') => {
            let sign = if offset.starts_with('-') { -1 } else { 1 };
            let (oh, om) = offset[1..].split_once(':')?;
            sign * (oh.parse::<i64>().ok()? * 3600 + om.parse::<i64>().ok()? * 60)
        }
        _ => 0,
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss - offset_secs;
    Some(secs * 1_000_000_000 + nanos)
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn reported(health: Option<&bollard::models::Health>) -> Option<ReportedHealth> {
    let h = health?;
    let last_output = || {
        h.log
            .as_ref()
            .and_then(|l| l.last())
            .and_then(|r| r.output.clone())
            .unwrap_or_default()
            .trim_end()
            .to_string()
    };
    match h.status? {
        HealthStatusEnum::STARTING => {
            let failed = h
                .log
                .as_ref()
                .and_then(|l| l.last())
                .is_some_and(|r| r.exit_code.is_some_and(|c| c != 0));
            Some(ReportedHealth::Starting {
                last_failure: failed.then(last_output),
            })
        }
        HealthStatusEnum::HEALTHY => Some(ReportedHealth::Healthy),
        HealthStatusEnum::UNHEALTHY => Some(ReportedHealth::Unhealthy(last_output())),
        _ => None,
    }
}

/// How an attachment reads the container's earlier output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// From the start of its current run (a container wharf started, or restarted).
    RunStart,
    /// From now on (a container adopted after a daemon restart: what it wrote before is in the
    /// previous daemon's logs).
    Now,
}

/// Attaches to the container `inspect` describes: its output, health and exit.
pub fn attach(
    docker: &Docker,
    spec: &InstanceSpec,
    inspect: &ContainerInspectResponse,
    marks: &LogMarks,
    since: Since,
) -> Result<Started, RuntimeError> {
    let fail = |reason: String| RuntimeError::Instance {
        instance: spec.name.clone(),
        reason,
    };
    let id = inspect
        .id
        .clone()
        .ok_or_else(|| fail("the Engine did not say the container's id".into()))?;
    let state = inspect.state.clone().unwrap_or_default();
    let started_at = state
        .started_at
        .as_deref()
        .and_then(parse_time)
        .unwrap_or_else(now_nanos);
    let pid = state
        .pid
        .and_then(|p| u32::try_from(p).ok())
        .filter(|p| *p > 0);
    let grace = inspect
        .config
        .as_ref()
        .and_then(|c| c.stop_timeout)
        .and_then(|t| i32::try_from(t).ok());
    let has_check = inspect
        .config
        .as_ref()
        .and_then(|c| c.healthcheck.as_ref())
        .and_then(|h| h.test.as_ref())
        .is_some_and(|t| t.first().is_some_and(|f| f != "NONE"));
    let (health_tx, health_rx) = watch::channel(
        reported(state.health.as_ref()).unwrap_or(ReportedHealth::Starting { last_failure: None }),
    );
    let (output_tx, output_rx) = mpsc::channel(1024);
    let (exit_tx, exit_rx) = oneshot::channel();

    // Output.
    let first = {
        let marks = marks.lock().unwrap_or_else(|p| p.into_inner());
        match (marks.get(&id), since) {
            (Some(mark), _) => *mark,
            (None, Since::RunStart) => started_at - 1,
            (None, Since::Now) => now_nanos(),
        }
    };
    let logs = docker.logs(
        &id,
        Some(
            LogsOptionsBuilder::default()
                .follow(true)
                .stdout(true)
                .stderr(true)
                .timestamps(true)
                .since(i32::try_from(first.div_euclid(1_000_000_000)).unwrap_or(0))
                .build(),
        ),
    );
    let log_marks = Arc::clone(marks);
    let log_id = id.clone();
    tokio::spawn(async move {
        let mut logs = std::pin::pin!(logs);
        let mut partial: HashMap<bool, String> = HashMap::new();
        while let Some(Ok(chunk)) = logs.next().await {
            let (stream, bytes) = match chunk {
                LogOutput::StdOut { message } | LogOutput::Console { message } => {
                    (Stream::Stdout, message)
                }
                LogOutput::StdErr { message } => (Stream::Stderr, message),
                LogOutput::StdIn { .. } => continue,
            };
            let key = stream == Stream::Stdout;
            let buffer = partial.entry(key).or_default();
            buffer.push_str(&String::from_utf8_lossy(&bytes));
            while let Some(end) = buffer.find('\n') {
                let line: String = buffer.drain(..=end).collect();
                let line = line.trim_end_matches(['\n', '\r']);
                let (at, text) = match line.split_once(' ') {
                    Some((ts, text)) if parse_time(ts).is_some() => (parse_time(ts), text),
                    _ => (None, line),
                };
                if let Some(at) = at {
                    if at <= first {
                        continue;
                    }
                    log_marks
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(log_id.clone(), at);
                }
                let at = at
                    .and_then(|n| u64::try_from(n).ok())
                    .map(|n| UNIX_EPOCH + Duration::from_nanos(n))
                    .unwrap_or_else(SystemTime::now);
                let line = OutputLine {
                    stream,
                    line: text.to_string(),
                    at,
                };
                if output_tx.send(line).await.is_err() {
                    return;
                }
            }
        }
    });

    // Health and exit, from the event stream since the run started (so that a die between
    // the inspection and the subscription is not missed).
    let events_docker = docker.clone();
    let events_id = id.clone();
    tokio::spawn(async move {
        let mut exit_tx = Some(exit_tx);
        loop {
            let filters = HashMap::from([
                ("type".to_string(), vec!["container".to_string()]),
                ("container".to_string(), vec![events_id.clone()]),
            ]);
            let options = EventsOptionsBuilder::default()
                .since(&started_at.div_euclid(1_000_000_000).to_string())
                .filters(&filters)
                .build();
            let mut events = std::pin::pin!(events_docker.events(Some(options)));
            while let Some(Ok(event)) = events.next().await {
                let at = event
                    .time_nano
                    .or(event.time.map(|t| t * 1_000_000_000))
                    .unwrap_or(0);
                if at < started_at {
                    continue;
                }
                let action = event.action.unwrap_or_default();
                let attributes = event.actor.and_then(|a| a.attributes).unwrap_or_default();
                if action == "die" {
                    let code = attributes
                        .get("exitCode")
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(255);
                    if let Some(tx) = exit_tx.take() {
                        let _ = tx.send(ExitStatus::Code(code));
                    }
                    return;
                }
                // The Engine runs each health check as an exec: a failed one while the
                // container is not healthy yet changes no status, but its output is the reason
                // a dependent's wait gives when it times out.
                if action == "exec_die"
                    && has_check
                    && attributes.get("exitCode").is_some_and(|c| c != "0")
                {
                    let inspect = events_docker.inspect_container(&events_id, None).await;
                    if let Some(
                        r @ ReportedHealth::Starting {
                            last_failure: Some(_),
                        },
                    ) = inspect
                        .ok()
                        .and_then(|i| i.state)
                        .and_then(|s| reported(s.health.as_ref()))
                    {
                        health_tx.send_replace(r);
                    }
                    continue;
                }
                if let Some(status) = action.strip_prefix("health_status") {
                    if !has_check {
                        continue;
                    }
                    let status = status.trim_start_matches(':').trim();
                    let next = match status {
                        "healthy" => ReportedHealth::Healthy,
                        "starting" => ReportedHealth::Starting { last_failure: None },
                        "unhealthy" => {
                            let inspect = events_docker.inspect_container(&events_id, None).await;
                            let output = inspect
                                .ok()
                                .and_then(|i| i.state)
                                .and_then(|s| reported(s.health.as_ref()));
                            match output {
                                Some(r @ ReportedHealth::Unhealthy(_)) => r,
                                _ => ReportedHealth::Unhealthy(String::new()),
                            }
                        }
                        _ => continue,
                    };
                    health_tx.send_replace(next);
                }
            }
            // The stream ended (the Engine restarted, or the connection broke): the container
            // may have exited meanwhile.
            match events_docker.inspect_container(&events_id, None).await {
                Ok(i) => {
                    let st = i.state.unwrap_or_default();
                    let same_run =
                        st.started_at.as_deref().and_then(parse_time) == Some(started_at);
                    if !same_run || st.running != Some(true) {
                        let code = if same_run {
                            st.exit_code
                                .and_then(|c| i32::try_from(c).ok())
                                .unwrap_or(255)
                        } else {
                            255
                        };
                        if let Some(tx) = exit_tx.take() {
                            let _ = tx.send(ExitStatus::Code(code));
                        }
                        return;
                    }
                }
                Err(_) => {
                    if let Some(tx) = exit_tx.take() {
                        let _ = tx.send(ExitStatus::Code(255));
                    }
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    });

    let handle = ContainerHandle {
        spec: spec.clone(),
        id,
        pid,
        docker: docker.clone(),
        grace,
        health: has_check.then_some(health_rx),
    };
    Ok(Started {
        handle: Arc::new(handle),
        output: output_rx,
        exit: exit_rx,
    })
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn engine_times_parse_to_nanoseconds() {
        assert_eq!(parse_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_time("2026-11-22T03:01:02.123456789Z"),
            Some(1_795_316_462_123_456_789)
        );
        assert_eq!(
            parse_time("2026-11-22T04:01:02.5+01:00"),
            Some(1_795_316_462_500_000_000)
        );
        assert_eq!(parse_time("garbage"), None);
    }
}
