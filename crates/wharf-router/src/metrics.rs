//! The router's counters, and their Prometheus text exposition ([`Router::metrics_text`]).
//!
//! Lock-free on the request path: each route's [`RouteMetrics`] is a block of atomics created
//! when a table naming the route is swapped in, and a request finds it by the position of its
//! route in that table, never by looking its name up. A route keeps its counters across table
//! swaps (Prometheus counters only go up), also when it leaves the table and comes back.
//!
//! [`Router::metrics_text`]: crate::Router::metrics_text

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::table::RouteTable;

/// Upper bounds of the latency histogram, in seconds: Prometheus's default buckets.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Why a request was refused by a route's access rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denial {
    /// `allow_from` did not list the client (403).
    AllowFrom,
    /// `basic_auth` found no valid user and password (401).
    BasicAuth,
    /// `forward_auth` answered something else than 2xx.
    ForwardAuth,
    /// `forward_auth` could not be asked (503).
    ForwardAuthUnreachable,
}

impl Denial {
    const ALL: [Denial; 4] = [
        Denial::AllowFrom,
        Denial::BasicAuth,
        Denial::ForwardAuth,
        Denial::ForwardAuthUnreachable,
    ];

    fn label(self) -> &'static str {
        match self {
            Denial::AllowFrom => "allow_from",
            Denial::BasicAuth => "basic_auth",
            Denial::ForwardAuth => "forward_auth",
            Denial::ForwardAuthUnreachable => "forward_auth_unreachable",
        }
    }
}

/// Why a request to an instance failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamFailure {
    /// No connection could be made (refused, timed out, reset before the request went out).
    Connect,
    /// No response headers within the response timeout.
    Timeout,
    /// The exchange broke after the request went out.
    Protocol,
}

impl UpstreamFailure {
    const ALL: [UpstreamFailure; 3] = [
        UpstreamFailure::Connect,
        UpstreamFailure::Timeout,
        UpstreamFailure::Protocol,
    ];

    fn label(self) -> &'static str {
        match self {
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::Timeout => "timeout",
            UpstreamFailure::Protocol => "protocol",
        }
    }
}

/// The counters of one route.
#[derive(Debug)]
pub struct RouteMetrics {
    /// Responses by status code, index `status - 100`.
    statuses: Box<[AtomicU64]>,
    /// Non-cumulative counts per latency bucket; the last one is `+Inf`.
    latency: [AtomicU64; LATENCY_BUCKETS.len() + 1],
    latency_sum_micros: AtomicU64,
    upstream_failures: [AtomicU64; 3],
    /// Connections refused by an instance that had just joined its pool, tried again.
    starting_retries: AtomicU64,
    denied: [AtomicU64; 4],
    websockets_active: AtomicI64,
    websockets_total: AtomicU64,
}

impl Default for RouteMetrics {
    fn default() -> Self {
        RouteMetrics {
            statuses: (100..600).map(|_| AtomicU64::new(0)).collect(),
            latency: Default::default(),
            latency_sum_micros: AtomicU64::new(0),
            upstream_failures: Default::default(),
            starting_retries: AtomicU64::new(0),
            denied: Default::default(),
            websockets_active: AtomicI64::new(0),
            websockets_total: AtomicU64::new(0),
        }
    }
}

impl RouteMetrics {
    /// Counts a finished request: its status and how long it took, body included.
    pub fn observe(&self, status: u16, duration: Duration) {
        let index = usize::from(status.clamp(100, 599) - 100);
        self.statuses[index].fetch_add(1, Ordering::Relaxed);
        let seconds = duration.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&le| seconds <= le)
            .unwrap_or(LATENCY_BUCKETS.len());
        self.latency[bucket].fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(duration.as_micros()).unwrap_or(u64::MAX);
        self.latency_sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    pub fn count_denied(&self, why: Denial) {
        self.denied[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count_upstream_failure(&self, what: UpstreamFailure) {
        self.upstream_failures[what as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A connection refused by an instance that had just joined its pool, about to be tried
    /// again (see `ProxyError::retry_delay`).
    pub fn count_starting_retry(&self) {
        self.starting_retries.fetch_add(1, Ordering::Relaxed);
    }

    pub fn starting_retries(&self) -> u64 {
        self.starting_retries.load(Ordering::Relaxed)
    }

    /// Requests refused by the route's access rules, for every reason.
    pub fn denied(&self) -> u64 {
        self.denied.iter().map(|d| d.load(Ordering::Relaxed)).sum()
    }

    pub fn denied_for(&self, why: Denial) -> u64 {
        self.denied[why as usize].load(Ordering::Relaxed)
    }

    pub fn upstream_failures(&self, what: UpstreamFailure) -> u64 {
        self.upstream_failures[what as usize].load(Ordering::Relaxed)
    }

    /// Responses with this status so far.
    pub fn responses(&self, status: u16) -> u64 {
        match status {
            100..=599 => self.statuses[usize::from(status - 100)].load(Ordering::Relaxed),
            _ => 0,
        }
    }

    pub fn websockets_active(&self) -> i64 {
        self.websockets_active.load(Ordering::Relaxed)
    }

    /// Counts an open WebSocket until the guard is dropped.
    pub fn websocket(self: &Arc<Self>) -> WebSocketGuard {
        self.websockets_active.fetch_add(1, Ordering::Relaxed);
        self.websockets_total.fetch_add(1, Ordering::Relaxed);
        WebSocketGuard {
            metrics: self.clone(),
        }
    }
}

/// An open WebSocket, counted in `wharf_router_websockets_active` while it lives.
#[derive(Debug)]
pub struct WebSocketGuard {
    metrics: Arc<RouteMetrics>,
}

impl Drop for WebSocketGuard {
    fn drop(&mut self) {
        self.metrics
            .websockets_active
            .fetch_sub(1, Ordering::Relaxed);
    }
}

/// Every route's counters, and those of requests that matched no route.
#[derive(Debug, Default)]
pub struct Metrics {
    /// By project and route id; only touched when a table is swapped in and when the text is
    /// rendered.
    routes: Mutex<BTreeMap<(String, String), Arc<RouteMetrics>>>,
    /// Requests that matched no route (404) or named no usable host (400), by status.
    unrouted: Arc<RouteMetrics>,
    access_log_dropped: Arc<AtomicU64>,
    /// The access log writer's count of lines its sink failed to write.
    access_log_errors: Arc<AtomicU64>,
}

impl Metrics {
    /// Counters starting at zero; `access_log_errors` is the access log writer's error count,
    /// if there is an access log.
    pub fn new(access_log_errors: Option<Arc<AtomicU64>>) -> Metrics {
        Metrics {
            access_log_errors: access_log_errors.unwrap_or_default(),
            ..Metrics::default()
        }
    }

    pub(crate) fn unrouted_arc(&self) -> Arc<RouteMetrics> {
        self.unrouted.clone()
    }

    pub(crate) fn access_log_dropped_arc(&self) -> Arc<AtomicU64> {
        self.access_log_dropped.clone()
    }

    /// Access log lines lost because the writer fell behind.
    pub fn access_log_dropped(&self) -> u64 {
        self.access_log_dropped.load(Ordering::Relaxed)
    }

    /// The counters of each route of `table`, in the table's order: created for routes never seen,
    /// the same ones for routes already counted.
    pub fn for_table(&self, table: &RouteTable) -> Vec<Arc<RouteMetrics>> {
        let mut routes = self
            .routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        table
            .routes()
            .iter()
            .map(|e| {
                routes
                    .entry((e.project.clone(), e.id.clone()))
                    .or_default()
                    .clone()
            })
            .collect()
    }

    /// The counters of a project's route, if a table ever had it.
    pub fn route(&self, project: &str, id: &str) -> Option<Arc<RouteMetrics>> {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&(project.to_string(), id.to_string()))
            .cloned()
    }

    /// The counters of every project's routes with this id.
    pub fn routes_named(&self, id: &str) -> Vec<Arc<RouteMetrics>> {
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter(|((_, i), _)| i == id)
            .map(|(_, m)| m.clone())
            .collect()
    }

    pub fn unrouted(&self) -> &RouteMetrics {
        &self.unrouted
    }

    /// Everything in Prometheus's text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        Metrics::render_all(&[(None, self)])
    }

    /// The counters of several routers (one per listen address) in one exposition: each family
    /// once, as the format requires, and each series labelled `listen="ADDR"` when an address is
    /// given.
    pub fn render_all(sets: &[(Option<&str>, &Metrics)]) -> String {
        // `listen="a",project="p",route="web"`, rendered once per route.
        let mut routes: Vec<(String, Arc<RouteMetrics>)> = Vec::new();
        let mut unrouted: Vec<(String, Arc<RouteMetrics>)> = Vec::new();
        let (mut dropped, mut errors) = (0, 0);
        for (listen, metrics) in sets {
            let prefix = listen.map_or(String::new(), |l| {
                format!("listen=\"{}\",", escape_label(l))
            });
            let known = metrics
                .routes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((project, id), m) in known.iter() {
                let labels = format!(
                    "{prefix}project=\"{}\",route=\"{}\"",
                    escape_label(project),
                    escape_label(id)
                );
                routes.push((labels, m.clone()));
            }
            drop(known);
            let labels = format!("{prefix}project=\"\",route=\"\"");
            unrouted.push((labels, metrics.unrouted.clone()));
            dropped += metrics.access_log_dropped.load(Ordering::Relaxed);
            errors += metrics.access_log_errors.load(Ordering::Relaxed);
        }
        let all: Vec<&(String, Arc<RouteMetrics>)> = routes.iter().chain(&unrouted).collect();
        let mut out = String::new();

        family(
            &mut out,
            "wharf_router_requests_total",
            "counter",
            "Requests answered, by project, route (empty: no route matched) and status code.",
        );
        for (labels, m) in &all {
            for (i, n) in m.statuses.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "wharf_router_requests_total{{{labels},code=\"{}\"}} {n}",
                        i + 100
                    );
                }
            }
        }

        family(
            &mut out,
            "wharf_router_request_duration_seconds",
            "histogram",
            "Time from a request's arrival to the end of its response body, by route.",
        );
        for (labels, m) in &all {
            let mut cumulative = 0;
            for (i, n) in m.latency.iter().enumerate() {
                cumulative += n.load(Ordering::Relaxed);
                let le = LATENCY_BUCKETS
                    .get(i)
                    .map_or("+Inf".to_string(), |b| b.to_string());
                let _ = writeln!(
                    out,
                    "wharf_router_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}"
                );
            }
            let sum = m.latency_sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(
                out,
                "wharf_router_request_duration_seconds_sum{{{labels}}} {sum}"
            );
            let _ = writeln!(
                out,
                "wharf_router_request_duration_seconds_count{{{labels}}} {cumulative}"
            );
        }

        family(
            &mut out,
            "wharf_router_upstream_errors_total",
            "counter",
            "Requests to an instance that failed, by route and what failed (connect, timeout, protocol).",
        );
        for (labels, m) in &routes {
            for what in UpstreamFailure::ALL {
                let _ = writeln!(
                    out,
                    "wharf_router_upstream_errors_total{{{labels},kind=\"{}\"}} {}",
                    what.label(),
                    m.upstream_failures(what)
                );
            }
        }

        family(
            &mut out,
            "wharf_router_upstream_starting_retries_total",
            "counter",
            "Connections refused by an instance that had just joined its pool, tried again after a short wait, by route.",
        );
        for (labels, m) in &routes {
            let _ = writeln!(
                out,
                "wharf_router_upstream_starting_retries_total{{{labels}}} {}",
                m.starting_retries()
            );
        }

        family(
            &mut out,
            "wharf_router_denied_total",
            "counter",
            "Requests refused by a route's access rules, by route and rule.",
        );
        for (labels, m) in &routes {
            for why in Denial::ALL {
                let _ = writeln!(
                    out,
                    "wharf_router_denied_total{{{labels},reason=\"{}\"}} {}",
                    why.label(),
                    m.denied_for(why)
                );
            }
        }

        family(
            &mut out,
            "wharf_router_websockets_active",
            "gauge",
            "WebSockets open through the router, by route.",
        );
        for (labels, m) in &routes {
            let _ = writeln!(
                out,
                "wharf_router_websockets_active{{{labels}}} {}",
                m.websockets_active()
            );
        }
        family(
            &mut out,
            "wharf_router_websockets_total",
            "counter",
            "WebSockets opened through the router, by route.",
        );
        for (labels, m) in &routes {
            let _ = writeln!(
                out,
                "wharf_router_websockets_total{{{labels}}} {}",
                m.websockets_total.load(Ordering::Relaxed)
            );
        }

        family(
            &mut out,
            "wharf_router_access_log_dropped_total",
            "counter",
            "Access log lines dropped because the writer fell behind.",
        );
        let _ = writeln!(out, "wharf_router_access_log_dropped_total {dropped}");
        family(
            &mut out,
            "wharf_router_access_log_errors_total",
            "counter",
            "Access log lines the sink failed to write.",
        );
        let _ = writeln!(out, "wharf_router_access_log_errors_total {errors}");
        out
    }
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the exposition format wants it: `\`, `"` and newlines escaped.
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_lands_in_the_first_bucket_that_holds_it() {
        let m = RouteMetrics::default();
        m.observe(200, Duration::from_millis(3));
        m.observe(200, Duration::from_millis(5));
        m.observe(503, Duration::from_millis(30));
        m.observe(200, Duration::from_secs(60));
        let counts: Vec<u64> = m
            .latency
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .collect();
        assert_eq!(counts, [2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            (m.responses(200), m.responses(503), m.responses(42)),
            (3, 1, 0)
        );
        assert_eq!(m.latency_sum_micros.load(Ordering::Relaxed), 60_038_000);
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
