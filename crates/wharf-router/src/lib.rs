//! wharf-router: the built-in HTTP and WebSocket router (issue 5).
//!
//! The data path, one step per module:
//! - [`route`]: `wharf.http.*` service labels -> [`route::Route`]s (shared with wharf-kube);
//! - [`table`]: a [`wharf_model::Project`]'s routes -> a [`RouteTable`] that finds the most
//!   specific route for a host and path, and [`RouteTable::explain`]s its choice;
//! - [`pool`]: [`InstanceEvent`]s -> per-service upstream instances, and the balancing choice;
//! - [`proxy`]: the [`Router`]: a hyper server (HTTP/1.1 and h2c) that forwards each request to an
//!   instance of its route, streaming both ways, with retries, forwarded headers and WebSockets;
//!   `access`: a route's `allow_from` and `basic_auth` rules, checked before anything is sent.
//!
//! The router listens and never calls: the daemon feeds it a new table when the project changes
//! ([`Router::set_table`], an atomic swap) and the supervisor's instance events
//! ([`Router::apply`]). Open connections, WebSockets included, do not hold the table and outlive
//! every swap.

mod access;
pub mod cidr;
pub mod error;
mod forwarded;
pub mod pool;
pub mod proxy;
pub mod route;
pub mod table;

pub use cidr::Cidr;
pub use error::{ProxyError, ProxyErrorKind, RouterError};
pub use pool::{InstanceEvent, Pools};
pub use proxy::{Router, RouterConfig};
pub use table::{Explanation, RouteTable};
