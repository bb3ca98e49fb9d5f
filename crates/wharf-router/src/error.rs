//! The router's errors: [`RouterError`] for configuration, [`ProxyError`] for a request that could
//! not be proxied, classified by what failed so that it maps to a status and a retry decision.

use std::fmt;
use std::time::Duration;

use hyper::StatusCode;

use crate::route::{RouteError, Tie};

/// A project whose routes cannot be served, or a listener that cannot be opened.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    #[error("service `{service}`: {source}")]
    Label {
        service: String,
        #[source]
        source: RouteError,
    },
    #[error("{0}")]
    Tie(Tie),
    #[error("trusted proxy {entry}: {message}")]
    TrustedProxy { entry: String, message: String },
    #[error("router listener {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// What failed while proxying a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyErrorKind {
    /// No instance of the route's service may take traffic.
    NoInstance,
    /// The connection to an instance could not be made (refused, reset before the request went
    /// out): safe to try another instance.
    UpstreamConnect,
    /// The instance did not send response headers in time.
    UpstreamTimeout,
    /// The instance broke the exchange after the request went out.
    UpstreamProtocol,
    /// The client sent something unusable (no host, a bad URI).
    Downstream,
    /// The client used what the router does not implement (a transfer coding other than
    /// `chunked`): 501, as nginx answers.
    Unsupported,
    /// A bug or resource problem on our side.
    Internal,
}

/// A request the router could not proxy: which route, what failed and whether another instance
/// may be tried.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyError {
    pub kind: ProxyErrorKind,
    /// The route id, when one was chosen.
    pub route: Option<String>,
    pub message: String,
    /// The instance refused the connection (nothing listens on its port yet, or any more).
    pub refused: bool,
}

/// How long, at most, a request waits in all for an instance that has just joined its pool and
/// refuses connections: Caddy's `lb_try_duration` idea (issue 12, item 11). A service without a
/// health check takes traffic the moment it runs, usually a few milliseconds before it listens.
pub const STARTING_RETRY_WINDOW: Duration = Duration::from_secs(2);
/// An instance counts as just started for this long after it joined its pool.
pub const JUST_STARTED: Duration = Duration::from_secs(10);
/// The first wait; each next one doubles, up to [`MAX_RETRY_WAIT`].
const FIRST_RETRY_WAIT: Duration = Duration::from_millis(5);
const MAX_RETRY_WAIT: Duration = Duration::from_millis(250);

impl ProxyError {
    pub fn new(kind: ProxyErrorKind, route: Option<&str>, message: impl Into<String>) -> Self {
        ProxyError {
            kind,
            route: route.map(str::to_string),
            message: message.into(),
            refused: false,
        }
    }

    /// Marks the error as a refused connection.
    pub fn refused(mut self, refused: bool) -> Self {
        self.refused = refused;
        self
    }

    /// The one retry decision both request paths take after an instance failed (as pingora
    /// carries the retry decision on its error): `Some(wait)` when, once the other instances
    /// were tried, the request should be tried afresh after `wait`, because the instance refused
    /// the connection, joined its pool `joined_ago` ago (it is most likely starting), the request may
    /// be sent again (`safe`: an idempotent method whose body was not consumed) and less than
    /// [`STARTING_RETRY_WINDOW`] was `waited` so far. The waits double from 5 ms to 250 ms.
    pub fn retry_delay(
        &self,
        safe: bool,
        joined_ago: Duration,
        waited: Duration,
    ) -> Option<Duration> {
        if !(self.refused && safe && joined_ago < JUST_STARTED && waited < STARTING_RETRY_WINDOW) {
            return None;
        }
        let wait = waited.clamp(FIRST_RETRY_WAIT, MAX_RETRY_WAIT);
        Some(wait.min(STARTING_RETRY_WINDOW - waited))
    }

    /// Whether the request may go to another instance: only when it never reached one (and the
    /// caller still checks that the request itself may be repeated).
    pub fn is_retryable(&self) -> bool {
        self.kind == ProxyErrorKind::UpstreamConnect
    }

    /// Whose fault: `upstream`, `downstream` or `internal`.
    pub fn side(&self) -> &'static str {
        match self.kind {
            ProxyErrorKind::NoInstance
            | ProxyErrorKind::UpstreamConnect
            | ProxyErrorKind::UpstreamTimeout
            | ProxyErrorKind::UpstreamProtocol => "upstream",
            ProxyErrorKind::Downstream | ProxyErrorKind::Unsupported => "downstream",
            ProxyErrorKind::Internal => "internal",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self.kind {
            ProxyErrorKind::NoInstance => StatusCode::SERVICE_UNAVAILABLE,
            ProxyErrorKind::UpstreamConnect | ProxyErrorKind::UpstreamProtocol => {
                StatusCode::BAD_GATEWAY
            }
            ProxyErrorKind::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ProxyErrorKind::Downstream => StatusCode::BAD_REQUEST,
            ProxyErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
            ProxyErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl fmt::Display for ProxyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.route {
            Some(r) => write!(f, "{r}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for ProxyError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_status_and_retry() {
        let e = ProxyError::new(
            ProxyErrorKind::NoInstance,
            Some("web"),
            "0 of 3 instances healthy",
        );
        assert_eq!(
            (e.status().as_u16(), e.is_retryable(), e.side()),
            (503, false, "upstream")
        );
        assert_eq!(e.to_string(), "web: 0 of 3 instances healthy");
        let e = ProxyError::new(ProxyErrorKind::UpstreamConnect, Some("web"), "refused");
        assert_eq!((e.status().as_u16(), e.is_retryable()), (502, true));
        let e = ProxyError::new(ProxyErrorKind::UpstreamTimeout, Some("web"), "slow");
        assert_eq!((e.status().as_u16(), e.is_retryable()), (504, false));
        let e = ProxyError::new(ProxyErrorKind::Downstream, None, "no host");
        assert_eq!((e.status().as_u16(), e.side()), (400, "downstream"));
        let e = ProxyError::new(ProxyErrorKind::Unsupported, None, "gzip");
        assert_eq!((e.status().as_u16(), e.side()), (501, "downstream"));
    }

    #[test]
    fn a_refusal_by_a_starting_instance_is_waited_for_within_the_window() {
        let ms = Duration::from_millis;
        let refused =
            ProxyError::new(ProxyErrorKind::UpstreamConnect, Some("web"), "refused").refused(true);
        // Doubling waits that add up to the window, and no more.
        let mut waited = Duration::ZERO;
        let mut waits = Vec::new();
        while let Some(w) = refused.retry_delay(true, ms(100), waited) {
            waits.push(w);
            waited += w;
        }
        assert_eq!(&waits[..4], &[ms(5), ms(5), ms(10), ms(20)]);
        assert_eq!(waited, STARTING_RETRY_WINDOW);
        assert!(waits.iter().all(|w| *w <= MAX_RETRY_WAIT));
        // Not for an unsafe request, an old instance, or another failure.
        assert_eq!(refused.retry_delay(false, ms(100), Duration::ZERO), None);
        assert_eq!(
            refused.retry_delay(true, JUST_STARTED, Duration::ZERO),
            None
        );
        let reset = ProxyError::new(ProxyErrorKind::UpstreamConnect, Some("web"), "reset");
        assert_eq!(reset.retry_delay(true, ms(100), Duration::ZERO), None);
    }
}
