//! wharf-router: the built-in HTTP and WebSocket router (issue 5).
//!
//! The data path, one step per module:
//! - [`path`]: the one normalisation of a request's path, before routing and access rules;
//! - [`route`]: `wharf.http.*` service labels -> [`route::Route`]s (shared with wharf-kube);
//! - [`table`]: a [`wharf_model::Project`]'s routes -> a [`RouteTable`] that finds the most
//!   specific route for a host and path, and [`RouteTable::explain`]s its choice;
//! - [`pool`]: [`InstanceEvent`]s -> per-service upstream instances, and the balancing choice;
//! - [`proxy`]: the [`Router`]: a hyper server (HTTP/1.1 and h2c) that forwards each request to an
//!   instance of its route, streaming both ways, with retries, forwarded headers and WebSockets;
//!   `http1`: the HTTP/1.1 fast path that serves plain-HTTP connections without hyper, handing
//!   it what it does not serve (h2c, upgrades, `Expect`, `forward_auth`, anything unusual);
//!   `access`: a route's `allow_from`, `basic_auth` and `forward_auth` rules, checked before
//!   anything is sent;
//! - [`metrics`]: per-route counters and latency histograms, as Prometheus text
//!   ([`Router::metrics_text`]); [`access_log`]: a line per request, written off the request path;
//! - [`tls`]: certificates (files, the local wharf CA, [`acme`]) chosen by SNI and swapped
//!   atomically, [`Router::serve_tls`] (h2 and HTTP/1.1 by ALPN), and on the plain listener
//!   ACME HTTP-01 answers and redirects to HTTPS ([`Router::enable_https`]).
//!
//! The router listens and never calls: the daemon feeds it a new table when the project changes
//! ([`Router::set_table`], an atomic swap) and the supervisor's instance events
//! ([`Router::apply`]). Open connections, WebSockets included, do not hold the table and outlive
//! every swap.

mod access;
pub mod access_log;
pub mod acme;
pub mod cidr;
mod connection;
pub mod error;
mod forwarded;
#[doc(hidden)]
pub mod fuzzing;
mod http1;
pub mod metrics;
pub mod path;
pub mod pool;
pub mod proxy;
pub mod route;
pub mod settings;
pub mod table;
pub mod tls;

pub use access_log::{AccessLog, AccessLogFormat, AccessRecord, AccessSink};
pub use cidr::Cidr;
pub use error::{ProxyError, ProxyErrorKind, RouterError};
pub use pool::{InstanceEvent, Pools};
pub use proxy::{Router, RouterConfig};
pub use settings::{AcmeSettings, RouterSettings, SettingsError};
pub use table::{Explanation, RouteTable};
pub use tls::{Tls, TlsError, TlsEvent, TlsSettings};
