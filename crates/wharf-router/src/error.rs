//! The router's errors: [`RouterError`] for configuration, [`ProxyError`] for a request that could
//! not be proxied, classified by what failed so that it maps to a status and a retry decision.

use std::fmt;

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
}

impl ProxyError {
    pub fn new(kind: ProxyErrorKind, route: Option<&str>, message: impl Into<String>) -> Self {
        ProxyError {
            kind,
            route: route.map(str::to_string),
            message: message.into(),
        }
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
            ProxyErrorKind::Downstream => "downstream",
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
    }
}
