//! Upstream instances per service, fed by [`InstanceEvent`]s, and the balancing choice.
//!
//! The membership is an immutable map swapped on every event (events are rare, requests are
//! many), so a request reads it without a lock. An [`Upstream`] keeps its identity across swaps:
//! its count of outstanding requests survives them, and a request in flight holds its `Arc`, so an
//! instance that leaves the pool (draining) still finishes what it started.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arc_swap::ArcSwap;

use crate::route::Balance;
use crate::table::RouteEntry;

/// What the router needs to hear about instances. The daemon translates the supervisor's events
/// into these; the router depends on nothing of the supervisor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InstanceEvent {
    /// The instance runs (again, or its health changed). `healthy` is its latest health check
    /// result; for a service without a health check it is ignored.
    Up {
        project: String,
        service: String,
        instance: String,
        /// Where the router connects to it.
        addr: IpAddr,
        /// Every address it has (on each of its networks): a connection from any of them is
        /// from this instance, for `allow_from: service:<name>`. Empty: `addr` only.
        addresses: Vec<IpAddr>,
        /// Where the instance really listens for a declared route port, when not on that port
        /// (a runtime that remaps ports; tests on ephemeral ports). Empty: the route's port.
        ports: BTreeMap<u16, u16>,
        healthy: bool,
    },
    /// The instance is about to be stopped: no new requests; those in flight finish.
    Draining {
        project: String,
        service: String,
        instance: String,
    },
    /// The instance is gone.
    Down {
        project: String,
        service: String,
        instance: String,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpstreamState {
    Up { healthy: bool },
    Draining,
}

/// One instance of a service, as the router sees it.
#[derive(Debug)]
pub struct Upstream {
    pub instance: String,
    pub addr: IpAddr,
    /// Every address of the instance (at least `addr`).
    pub addresses: Vec<IpAddr>,
    ports: BTreeMap<u16, u16>,
    state: UpstreamState,
    outstanding: Arc<AtomicUsize>,
    /// When the instance joined its pool (tokio's clock, so that paused time rules it).
    joined: tokio::time::Instant,
}

impl Upstream {
    /// Where to send requests for a route on `port`.
    pub fn socket_addr(&self, port: u16) -> SocketAddr {
        SocketAddr::new(self.addr, self.ports.get(&port).copied().unwrap_or(port))
    }

    pub fn state(&self) -> UpstreamState {
        self.state
    }

    /// How long ago the instance joined its pool (the retry window of a starting instance).
    pub fn joined_ago(&self) -> std::time::Duration {
        self.joined.elapsed()
    }

    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Relaxed)
    }

    fn takes_traffic(&self, has_healthcheck: bool) -> bool {
        match self.state {
            UpstreamState::Up { healthy } => healthy || !has_healthcheck,
            UpstreamState::Draining => false,
        }
    }

    /// Counts a request on this instance until the guard is dropped.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.outstanding.fetch_add(1, Ordering::Relaxed);
        InFlight {
            upstream: self.clone(),
        }
    }
}

/// A request (or WebSocket) in flight on an instance.
#[derive(Debug)]
pub struct InFlight {
    upstream: Arc<Upstream>,
}

impl InFlight {
    pub fn upstream(&self) -> &Arc<Upstream> {
        &self.upstream
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.upstream.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The instances of one service.
#[derive(Debug, Default)]
struct ServicePool {
    instances: Vec<Arc<Upstream>>,
    next: Arc<AtomicUsize>,
}

/// Every service's instances, by project then service.
#[derive(Debug, Default)]
pub struct Pools {
    services: ArcSwap<HashMap<String, HashMap<String, Arc<ServicePool>>>>,
}

/// Why a route has no instance to send to, for the 503's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoInstance {
    pub taking_traffic: usize,
    pub known: usize,
    pub draining: usize,
}

impl std::fmt::Display for NoInstance {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} of {} instances healthy",
            self.taking_traffic, self.known
        )?;
        if self.draining > 0 {
            write!(f, ", {} draining", self.draining)?;
        }
        Ok(())
    }
}

impl Pools {
    pub fn new() -> Pools {
        Pools::default()
    }

    /// Applies one event. Events of one instance must come in order; those of different
    /// instances may interleave.
    pub fn apply(&self, event: &InstanceEvent) {
        self.services.rcu(|current| {
            let mut next = HashMap::clone(current);
            let (project, service) = match event {
                InstanceEvent::Up {
                    project, service, ..
                }
                | InstanceEvent::Draining {
                    project, service, ..
                }
                | InstanceEvent::Down {
                    project, service, ..
                } => (project, service),
            };
            let services = next.entry(project.clone()).or_default();
            let old = services.get(service).cloned().unwrap_or_default();
            let instances: Vec<Arc<Upstream>> = match event {
                InstanceEvent::Up {
                    instance,
                    addr,
                    addresses,
                    ports,
                    healthy,
                    ..
                } => {
                    let mut instances = Vec::with_capacity(old.instances.len() + 1);
                    let mut outstanding = Arc::new(AtomicUsize::new(0));
                    let mut joined = tokio::time::Instant::now();
                    for u in &old.instances {
                        if &u.instance == instance {
                            outstanding = u.outstanding.clone();
                            joined = u.joined;
                        } else {
                            instances.push(u.clone());
                        }
                    }
                    let mut all = addresses.clone();
                    if !all.contains(addr) {
                        all.insert(0, *addr);
                    }
                    instances.push(Arc::new(Upstream {
                        instance: instance.clone(),
                        addr: *addr,
                        addresses: all,
                        ports: ports.clone(),
                        state: UpstreamState::Up { healthy: *healthy },
                        outstanding,
                        joined,
                    }));
                    instances.sort_by(|a, b| a.instance.cmp(&b.instance));
                    instances
                }
                InstanceEvent::Draining { instance, .. } => old
                    .instances
                    .iter()
                    .map(|u| {
                        if &u.instance == instance {
                            Arc::new(Upstream {
                                instance: u.instance.clone(),
                                addr: u.addr,
                                addresses: u.addresses.clone(),
                                ports: u.ports.clone(),
                                state: UpstreamState::Draining,
                                outstanding: u.outstanding.clone(),
                                joined: u.joined,
                            })
                        } else {
                            u.clone()
                        }
                    })
                    .collect(),
                InstanceEvent::Down { instance, .. } => old
                    .instances
                    .iter()
                    .filter(|u| &u.instance != instance)
                    .cloned()
                    .collect(),
            };
            if instances.is_empty() {
                services.remove(service);
                if services.is_empty() {
                    next.remove(project);
                }
            } else {
                services.insert(
                    service.clone(),
                    Arc::new(ServicePool {
                        instances,
                        next: old.next.clone(),
                    }),
                );
            }
            next
        });
    }

    /// Forgets every instance of a project (`down`).
    pub fn forget(&self, project: &str) {
        self.services.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.remove(project);
            next
        });
    }

    fn pool(&self, project: &str, service: &str) -> Option<Arc<ServicePool>> {
        self.services
            .load()
            .get(project)
            .and_then(|s| s.get(service))
            .cloned()
    }

    /// The instances of a service that take traffic now.
    pub fn ready(&self, route: &RouteEntry) -> Vec<Arc<Upstream>> {
        self.pool(&route.project, &route.service)
            .map(|p| {
                p.instances
                    .iter()
                    .filter(|u| u.takes_traffic(route.has_healthcheck))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every known instance of a project's service, in instance order.
    pub fn instances(&self, project: &str, service: &str) -> Vec<Arc<Upstream>> {
        self.pool(project, service)
            .map(|p| p.instances.clone())
            .unwrap_or_default()
    }

    /// The instance for the next request of a route, avoiding those in `tried`; `Err` says why
    /// there is none.
    pub fn pick(
        &self,
        route: &RouteEntry,
        tried: &[SocketAddr],
    ) -> Result<Arc<Upstream>, NoInstance> {
        let services = self.services.load();
        let pool = services
            .get(&route.project)
            .and_then(|s| s.get(&route.service));
        let (instances, counter) = match pool {
            Some(p) => (p.instances.as_slice(), Some(&p.next)),
            None => (&[][..], None),
        };
        let port = route.route.port;
        let ready: Vec<&Arc<Upstream>> = instances
            .iter()
            .filter(|u| u.takes_traffic(route.has_healthcheck))
            .filter(|u| !tried.contains(&u.socket_addr(port)))
            .collect();
        if ready.is_empty() || counter.is_none() {
            let draining = instances
                .iter()
                .filter(|u| u.state == UpstreamState::Draining)
                .count();
            return Err(NoInstance {
                taking_traffic: instances
                    .iter()
                    .filter(|u| u.takes_traffic(route.has_healthcheck))
                    .count(),
                known: instances.len().max(route.replicas as usize),
                draining,
            });
        }
        let turn = counter.map_or(0, |c| c.fetch_add(1, Ordering::Relaxed));
        let chosen = match route.route.balance {
            Balance::RoundRobin => ready[turn % ready.len()],
            Balance::LeastOutstanding => {
                // Least outstanding; ties go round, so that an idle pool still spreads load.
                let n = ready.len();
                (0..n)
                    .map(|i| ready[(turn + i) % n])
                    .min_by_key(|u| u.outstanding())
                    .unwrap_or(ready[0])
            }
        };
        Ok(chosen.clone())
    }
}

#[cfg(test)]
mod tests;
