//! A Compose healthcheck as Kubernetes probes.
//!
//! With I = interval (30s), T = timeout (30s), R = retries (3), S = start_period (0) and
//! SI = start_interval (5s), Docker's defaults in brackets, each rounded up to whole seconds
//! (Kubernetes counts in seconds, at least 1):
//! - readinessProbe: every I, timeout T, not ready after R failures in a row, ready after 1
//!   success: Docker's `healthy`/`unhealthy`, which is what `service_healthy` waits for;
//! - livenessProbe: the same timings, restarting the container after R failures (Docker only
//!   marks it unhealthy: the report says so);
//! - startupProbe, when S > 0 (or when a sidecar must be healthy before the containers after it
//!   start): every SI, timeout T, and failureThreshold = ceil((S + R × I) / SI), so that a
//!   container that never becomes healthy is given up at the moment Docker would first call it
//!   unhealthy (S of grace, then R failed checks I apart). Liveness and readiness start after it.
//!
//! The test runs with exec: `CMD a b` as `[a, b]`, `CMD-SHELL x` as `[/bin/sh, -c, x]` (Docker
//! runs CMD-SHELL with `/bin/sh -c` as well).

use std::time::Duration;

use k8s_openapi::api::core::v1::{ExecAction, Probe};
use wharf_model::project::{HealthTest, Healthcheck};

use crate::report::Kind;

/// The probes of one container, with what to report about them.
#[derive(Default)]
pub struct Probes {
    pub startup: Option<Probe>,
    pub readiness: Option<Probe>,
    pub liveness: Option<Probe>,
    /// `(key, kind, message)` for the report.
    pub findings: Vec<(String, Kind, String)>,
}

/// Whole seconds, rounded up, at least 1; and whether that changed the value.
fn seconds(d: Duration) -> (i32, bool) {
    let ms = d.as_millis();
    let s = ms.div_ceil(1000).max(1);
    let s = i32::try_from(s).unwrap_or(i32::MAX);
    (s, ms != u128::from(s.unsigned_abs()) * 1000)
}

pub fn probes(h: &Healthcheck, startup_required: bool) -> Probes {
    let mut out = Probes::default();
    if !h.is_enabled() {
        return out;
    }
    let Some(test) = &h.test else {
        out.findings.push((
            "healthcheck".to_string(),
            Kind::NotTranslated,
            "no `test`: the timings apply to the image's own HEALTHCHECK, which Kubernetes does not run; give the service a `test` to get probes".to_string(),
        ));
        return out;
    };
    let command = match test {
        HealthTest::Cmd(args) => args.clone(),
        HealthTest::Shell(cmd) => vec!["/bin/sh".to_string(), "-c".to_string(), cmd.clone()],
        HealthTest::None => return out,
    };
    let interval = h.interval.unwrap_or(Healthcheck::DEFAULT_INTERVAL);
    let timeout = h.timeout.unwrap_or(Healthcheck::DEFAULT_TIMEOUT);
    let retries = match h.retries {
        Some(0) | None => Healthcheck::DEFAULT_RETRIES,
        Some(r) => r,
    };
    let start_period = h.start_period.unwrap_or(Duration::ZERO);
    let start_interval = h
        .start_interval
        .unwrap_or(Healthcheck::DEFAULT_START_INTERVAL);

    let mut rounded = |key: &str, d: Duration| {
        let (s, changed) = seconds(d);
        if changed {
            out.findings.push((
                format!("healthcheck.{key}"),
                Kind::Approximate,
                format!(
                    "{} rounded up to {s}s (Kubernetes counts probe times in whole seconds)",
                    wharf_model::duration::format_duration(d)
                ),
            ));
        }
        s
    };
    let period = rounded("interval", interval);
    let timeout_s = rounded("timeout", timeout);
    let start_period_s = if start_period > Duration::ZERO || startup_required {
        Some(rounded("start_interval", start_interval))
    } else {
        None
    };
    let retries_i = i32::try_from(retries).unwrap_or(i32::MAX);
    let exec = Some(ExecAction {
        command: Some(command),
    });
    let probe = |period: i32, failures: i32| Probe {
        exec: exec.clone(),
        period_seconds: Some(period),
        timeout_seconds: Some(timeout_s),
        failure_threshold: Some(failures),
        success_threshold: Some(1),
        ..Probe::default()
    };
    out.readiness = Some(probe(period, retries_i));
    out.liveness = Some(probe(period, retries_i));
    if let Some(si) = start_period_s {
        // The deadline Docker has: the start period, then R checks an interval apart.
        let window_ms = start_period.as_millis() + u128::from(retries) * interval.as_millis();
        let threshold = window_ms
            .div_ceil(u128::from(si.unsigned_abs()) * 1000)
            .max(1);
        out.startup = Some(probe(si, i32::try_from(threshold).unwrap_or(i32::MAX)));
    }
    out.findings.push((
        "healthcheck".to_string(),
        Kind::Approximate,
        format!(
            "after {retries} failed checks the container is restarted (livenessProbe) as well as taken out of its Service (readinessProbe); Docker only marks it unhealthy"
        ),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(
        test: HealthTest,
        interval: u64,
        timeout: u64,
        retries: u64,
        start_period: u64,
    ) -> Healthcheck {
        Healthcheck {
            test: Some(test),
            interval: Some(Duration::from_secs(interval)),
            timeout: Some(Duration::from_secs(timeout)),
            retries: Some(retries),
            start_period: (start_period > 0).then(|| Duration::from_secs(start_period)),
            start_interval: None,
            disable: false,
        }
    }

    #[test]
    fn openvpn_timings() {
        // interval 30s, timeout 10s, retries 30, start_period 90s.
        let h = check(
            HealthTest::Cmd(vec!["pgrep".into(), "-f".into(), "openvpn".into()]),
            30,
            10,
            30,
            90,
        );
        let p = probes(&h, false);
        let r = p.readiness.expect("readiness");
        assert_eq!(r.period_seconds, Some(30));
        assert_eq!(r.timeout_seconds, Some(10));
        assert_eq!(r.failure_threshold, Some(30));
        let s = p.startup.expect("startup");
        assert_eq!(s.period_seconds, Some(5));
        // (90 + 30 × 30) / 5
        assert_eq!(s.failure_threshold, Some(198));
        assert_eq!(
            s.exec.and_then(|e| e.command),
            Some(vec!["pgrep".into(), "-f".into(), "openvpn".into()])
        );
    }

    #[test]
    fn shell_tests_run_with_sh_and_sub_second_times_round_up() {
        let mut h = check(HealthTest::Shell("pg_isready".into()), 10, 5, 5, 30);
        h.start_interval = Some(Duration::from_millis(500));
        let p = probes(&h, false);
        assert_eq!(
            p.liveness.and_then(|l| l.exec).and_then(|e| e.command),
            Some(vec!["/bin/sh".into(), "-c".into(), "pg_isready".into()])
        );
        let s = p.startup.expect("startup");
        assert_eq!(s.period_seconds, Some(1));
        assert_eq!(s.failure_threshold, Some(80), "(30 + 5 × 10) / 1");
        assert!(
            p.findings
                .iter()
                .any(|(k, kind, m)| k == "healthcheck.start_interval"
                    && *kind == Kind::Approximate
                    && m.contains("500ms rounded up to 1s")),
            "{:?}",
            p.findings
        );
    }

    #[test]
    fn no_start_period_no_startup_probe_unless_required() {
        let h = check(HealthTest::Cmd(vec!["true".into()]), 10, 5, 3, 0);
        assert!(probes(&h, false).startup.is_none());
        let s = probes(&h, true).startup.expect("a sidecar's startup probe");
        assert_eq!(s.failure_threshold, Some(6), "(0 + 3 × 10) / 5");
    }

    #[test]
    fn disabled_checks_make_no_probes() {
        let mut h = check(HealthTest::None, 10, 5, 3, 0);
        assert!(probes(&h, false).readiness.is_none());
        h.test = Some(HealthTest::Cmd(vec!["true".into()]));
        h.disable = true;
        let p = probes(&h, false);
        assert!(p.readiness.is_none() && p.findings.is_empty());
    }
}
