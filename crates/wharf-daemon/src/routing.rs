//! The daemon's side of the router: one [`Router`] per listen address, serving the routes of
//! every project that uses that address, fed by the supervisor's events.
//!
//! - `up` calls [`Routing::attach`] before any instance starts: the project's routes and
//!   `x-wharf.router` settings are checked (a mistake fails the `up` with its service and label),
//!   the listener is bound (an address in use fails it too), and the merged table of the
//!   address's projects is swapped in;
//! - [`Routing::follow`] turns instance events into the pools' [`InstanceEvent`]s: running (and
//!   healthy, where there is a health check) -> `Up` with the instance's addresses from the
//!   runtime; stopping -> `Draining`; exited, removed, failed -> `Down`;
//! - before every graceful stop the supervisor asks [`Drain`]: the instance leaves its pool at
//!   once and the stop signal waits, up to the stop grace period, for its requests in flight and
//!   open WebSockets;
//! - `down` calls [`Routing::detach`]; the listener closes with its last project.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{broadcast, oneshot};
use wharf_api::message::{ApiError, EventKind, RouteInfo};
use wharf_model::Project;
use wharf_router::route::Source;
use wharf_router::route::Tls as Tls_;
use wharf_router::table::RouteEntry;
use wharf_router::{
    AccessLog, AccessSink, InstanceEvent, RouteTable, Router, RouterConfig, RouterSettings, Tls,
    TlsEvent, TlsSettings,
};
use wharf_runtime::Runtime as _;
use wharf_supervisor::{Drain, Health, InstanceState, Supervisor};

use crate::runtimes::Runtimes;

/// How often draining looks at an instance's requests in flight.
const DRAIN_POLL: Duration = Duration::from_millis(5);

pub struct Routing {
    runtime: Arc<Runtimes>,
    supervisor: Supervisor,
    root: bool,
    /// Where the local CA and ACME certificates live (`<state>/tls`).
    tls_dir: std::path::PathBuf,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Project -> its routes and the address they are served on.
    projects: BTreeMap<String, Attached>,
    listeners: BTreeMap<SocketAddr, Listener>,
}

struct Attached {
    http: SocketAddr,
    table: RouteTable,
}

struct Listener {
    router: Router,
    /// The certificates and the HTTPS address, once a route asks for TLS (or `https` is set).
    tls: Option<(Tls, SocketAddr)>,
    /// Dropped to stop accepting (HTTP, then HTTPS); open connections finish on their own.
    _stops: Vec<Box<dyn std::any::Any + Send>>,
}

/// The size of the access log at which it is moved to `router-access.log.1` (replacing the
/// previous one) and started anew.
const ACCESS_LOG_CAP: u64 = 32 << 20;

/// The access log's file, rotated at a size cap so that it never fills the disk.
struct RotatingFile {
    path: std::path::PathBuf,
    cap: u64,
    file: Option<std::io::BufWriter<std::fs::File>>,
    written: u64,
}

impl RotatingFile {
    fn new(path: std::path::PathBuf, cap: u64) -> RotatingFile {
        RotatingFile {
            path,
            cap,
            file: None,
            written: 0,
        }
    }

    fn open(&mut self) -> std::io::Result<&mut std::io::BufWriter<std::fs::File>> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            // Client addresses and paths: private, as the rest of the state directory.
            let file = std::os::unix::fs::OpenOptionsExt::mode(
                std::fs::OpenOptions::new().create(true).append(true),
                0o600,
            )
            .open(&self.path)?;
            self.written = file.metadata()?.len();
            self.file = Some(std::io::BufWriter::new(file));
        }
        Ok(self.file.as_mut().expect("opened above"))
    }
}

impl AccessSink for RotatingFile {
    fn write_line(&mut self, line: &str) -> std::io::Result<()> {
        use std::io::Write as _;
        if self.written >= self.cap {
            if let Some(mut f) = self.file.take() {
                f.flush()?;
            }
            let mut old = self.path.clone().into_os_string();
            old.push(".1");
            std::fs::rename(&self.path, old)?;
        }
        let file = self.open()?;
        file.write_all(line.as_bytes())?;
        file.write_all(b"\n")?;
        self.written += line.len() as u64 + 1;
        Ok(())
    }

    fn idle(&mut self) -> std::io::Result<()> {
        use std::io::Write as _;
        match &mut self.file {
            Some(f) => f.flush(),
            None => Ok(()),
        }
    }
}

/// Serves `router` on `listener` (with TLS when given) until the returned guard is dropped.
/// Plain HTTP runs on threads of its own, one single-threaded runtime per core, as nginx's
/// workers do ([`Router::serve_on_threads`]); TLS on the daemon's runtime.
fn spawn_listener(
    router: &Router,
    listener: TcpListener,
    tls: Option<Tls>,
) -> std::io::Result<Box<dyn std::any::Any + Send>> {
    match tls {
        Some(tls) => {
            let (stop, stopped) = oneshot::channel::<()>();
            let serving = router.clone();
            tokio::spawn(async move {
                serving
                    .serve_tls(listener, &tls, async move {
                        let _ = stopped.await;
                    })
                    .await
            });
            Ok(Box::new(stop))
        }
        None => {
            let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
            let (stop, stopped) = tokio::sync::watch::channel(());
            router.serve_on_threads(listener.into_std()?, threads, stopped)?;
            Ok(Box::new(stop))
        }
    }
}

/// `wharf.http.tls.cert`/`.key` relative to the project directory, made absolute.
fn resolve_tls_files(table: RouteTable, dir: &std::path::Path) -> RouteTable {
    let entries: Vec<RouteEntry> = table
        .routes()
        .iter()
        .map(|e| {
            let mut e = RouteEntry::clone(e);
            if let Some(Tls_::Files { cert, key }) = &mut e.route.tls {
                for path in [cert, key] {
                    if !std::path::Path::new(path.as_str()).is_absolute() {
                        *path = dir.join(&*path).to_string_lossy().into_owned();
                    }
                }
            }
            e
        })
        .collect();
    // The same routes: no tie appears.
    RouteTable::new(entries).unwrap_or(table)
}

impl Routing {
    pub fn new(
        runtime: Arc<Runtimes>,
        supervisor: Supervisor,
        tls_dir: std::path::PathBuf,
    ) -> Routing {
        Routing {
            runtime,
            supervisor,
            root: rustix::process::geteuid().is_root(),
            tls_dir,
            state: Mutex::new(State::default()),
        }
    }

    /// `<state>/logs/router-access.log`.
    fn access_log_path(&self) -> std::path::PathBuf {
        self.tls_dir
            .parent()
            .map_or_else(|| self.tls_dir.clone(), |p| p.join("logs"))
            .join("router-access.log")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Checks the project's routes and serves them (replacing what the project had). A project
    /// without routes is detached.
    pub async fn attach(&self, project: &Project) -> Result<(), ApiError> {
        let settings = RouterSettings::from_project(project, self.root)
            .map_err(|e| ApiError::bad_request(format!("project `{}`: {e}", project.name)))?;
        let table = RouteTable::from_project(project)
            .map_err(|e| ApiError::bad_request(format!("project `{}`: {e}", project.name)))?;
        self.check_identities(project, &table)?;
        if table.is_empty() {
            self.detach(&project.name);
            return Ok(());
        }
        let table = resolve_tls_files(table, &project.working_dir);
        let addr = settings.http;
        let wants_tls = settings.https_set || table.routes().iter().any(|e| e.route.tls.is_some());
        let cannot_listen = |what: &str, addr: SocketAddr, e: std::io::Error| {
            ApiError::failed(format!(
                "project `{}`: the router cannot listen on {addr}: {e} (set another address with `x-wharf: {{router: {{{what}: \"127.0.0.1:PORT\"}}}}`)",
                project.name
            ))
        };
        // Bind outside the lock; listeners already there are reused.
        let (has_http, has_tls) = {
            let state = self.lock();
            let l = state.listeners.get(&addr);
            (l.is_some(), l.is_some_and(|l| l.tls.is_some()))
        };
        let bound_http = match has_http {
            false => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| cannot_listen("http", addr, e))?,
            ),
            true => None,
        };
        let bound_https = match wants_tls && !has_tls {
            true => Some(
                TcpListener::bind(settings.https)
                    .await
                    .map_err(|e| cannot_listen("https", settings.https, e))?,
            ),
            false => None,
        };
        let router = {
            let mut state = self.lock();
            let merged = RouteTable::merge(
                state
                    .projects
                    .iter()
                    .filter(|(name, a)| a.http == addr && **name != project.name)
                    .map(|(_, a)| &a.table)
                    .chain(std::iter::once(&table)),
            )
            .map_err(|e| ApiError::bad_request(format!("project `{}`: {e}", project.name)))?;
            let listener = match state.listeners.entry(addr) {
                std::collections::btree_map::Entry::Occupied(o) => o.into_mut(),
                std::collections::btree_map::Entry::Vacant(v) => {
                    let Some(listener) = bound_http else {
                        // Another attach bound it meanwhile and then detached.
                        return Err(ApiError::failed(format!(
                            "project `{}`: the router on {addr} was closing; run the command again",
                            project.name
                        )));
                    };
                    let access_log = settings.access_log.map(|format| {
                        AccessLog::new(
                            format,
                            RotatingFile::new(self.access_log_path(), ACCESS_LOG_CAP),
                        )
                    });
                    let config = RouterConfig {
                        access_log,
                        trusted_proxies: settings.trusted_proxies.clone(),
                        service_identities: self.runtime.distinct_addresses(&project.name),
                        max_connections_per_client: settings.max_connections_per_client,
                        ..RouterConfig::default()
                    };
                    let router = Router::new(RouteTable::default(), config);
                    let stop = spawn_listener(&router, listener, None).map_err(|e| {
                        ApiError::failed(format!(
                            "project `{}`: the router cannot serve {addr}: {e}",
                            project.name
                        ))
                    })?;
                    eprintln!("wharf daemon: router listening on http://{addr}");
                    v.insert(Listener {
                        router,
                        tls: None,
                        _stops: vec![stop],
                    })
                }
            };
            if let (None, Some(https)) = (&listener.tls, bound_https) {
                let tls = Tls::new(TlsSettings {
                    state_dir: self.tls_dir.clone(),
                    acme: settings.acme.clone(),
                    acme_challenge: settings.challenge,
                    acme_for_public_hosts: settings.https_set,
                })
                .map_err(|e| ApiError::failed(format!("project `{}`: {e}", project.name)))?;
                log_tls_events(&tls);
                listener.router.enable_https(&tls, settings.https.port());
                let stop =
                    spawn_listener(&listener.router, https, Some(tls.clone())).map_err(|e| {
                        ApiError::failed(format!(
                            "project `{}`: the router cannot serve {}: {e}",
                            project.name, settings.https
                        ))
                    })?;
                listener._stops.push(stop);
                eprintln!(
                    "wharf daemon: router listening on https://{}",
                    settings.https
                );
                listener.tls = Some((tls, settings.https));
            }
            // Certificates first: when they cannot be had, nothing changes.
            if let Some((tls, _)) = &listener.tls {
                tls.apply(&merged).map_err(|e| {
                    ApiError::bad_request(format!("project `{}`: {e}", project.name))
                })?;
            }
            let router = listener.router.clone();
            router.set_table(merged);
            let previous = state
                .projects
                .insert(project.name.clone(), Attached { http: addr, table });
            if let Some(previous) = previous.filter(|p| p.http != addr) {
                // The project moved to another address: the old one forgets it.
                rebuild(&mut state, previous.http);
            }
            router
        };
        // Instances already running (an `up` that changes only routes) join the new pools.
        for instance in self.supervisor.instances(&project.name) {
            if let Some(event) = self
                .instance_event(&instance, &instance_kind(&instance))
                .await
            {
                router.apply(&event);
            }
        }
        Ok(())
    }

    /// Stops serving the project's routes.
    pub fn detach(&self, project: &str) {
        let mut state = self.lock();
        if let Some(previous) = state.projects.remove(project) {
            if let Some(l) = state.listeners.get(&previous.http) {
                l.router.pools().forget(project);
            }
            rebuild(&mut state, previous.http);
        }
    }

    /// `allow_from: service:<name>` needs every instance to have an address of its own, and the
    /// named service to exist.
    fn check_identities(&self, project: &Project, table: &RouteTable) -> Result<(), ApiError> {
        for entry in table.routes() {
            for source in &entry.route.allow_from {
                let Source::Service(name) = source else {
                    continue;
                };
                let Some(service) = project.services.get(name) else {
                    return Err(ApiError::bad_request(format!(
                        "service `{}`: label `{}`: no service `{name}` in project `{}`",
                        entry.service,
                        entry.route.label("allow_from"),
                        project.name
                    )));
                };
                let host = service.network_mode == Some(wharf_model::project::NetworkMode::Host);
                if host || !self.runtime.distinct_addresses(&project.name) {
                    let why = if host {
                        format!("service `{name}` uses network_mode: host")
                    } else {
                        format!(
                            "the {} runtime runs instances on the machine's network here (isolation needs root)",
                            self.runtime.name()
                        )
                    };
                    return Err(ApiError::bad_request(format!(
                        "service `{}`: label `{}`: `service:{name}` cannot be enforced: {why}, so the address a request comes from does not say which service sent it\n  help: run the daemon as root for isolated networks, or allow an address block instead",
                        entry.service,
                        entry.route.label("allow_from"),
                    )));
                }
            }
        }
        Ok(())
    }

    fn router_of(&self, project: &str) -> Option<Router> {
        let state = self.lock();
        let attached = state.projects.get(project)?;
        state
            .listeners
            .get(&attached.http)
            .map(|l| l.router.clone())
    }

    /// What the pools hear of an instance event; `None` for events that change nothing.
    async fn instance_event(
        &self,
        instance: &InstanceState,
        kind: &EventKind,
    ) -> Option<InstanceEvent> {
        let (project, service, name) = (
            instance.project.clone(),
            instance.service.clone(),
            instance.name.clone(),
        );
        match kind {
            EventKind::Running { .. } | EventKind::Healthy | EventKind::Unhealthy { .. } => {
                // An event read late, of an instance stopping by now: it stays out.
                if instance.status != wharf_supervisor::Status::Running {
                    return None;
                }
                let handle = self.runtime.handle(&instance.name)?;
                let addresses = self.runtime.addresses(handle.as_ref()).await;
                let addr = addresses
                    .first()
                    .copied()
                    .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
                Some(InstanceEvent::Up {
                    project,
                    service,
                    instance: name,
                    addr,
                    addresses,
                    ports: BTreeMap::new(),
                    healthy: instance.health == Some(Health::Healthy),
                })
            }
            EventKind::Stopping => Some(InstanceEvent::Draining {
                project,
                service,
                instance: name,
            }),
            EventKind::Exited { .. }
            | EventKind::Removed
            | EventKind::StartFailed { .. }
            | EventKind::Restarting { .. } => Some(InstanceEvent::Down {
                project,
                service,
                instance: name,
            }),
            EventKind::Created
            | EventKind::Starting
            | EventKind::DependencyFailed { .. }
            | EventKind::Progress { .. } => None,
        }
    }

    /// Applies the supervisor's events to the pools until its event stream ends.
    pub async fn follow(self: Arc<Self>) {
        let mut events = self.supervisor.events();
        loop {
            let event = match events.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!(
                        "wharf daemon: the router missed {n} instance events; re-reading every instance"
                    );
                    self.resync().await;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let Some(router) = self.router_of(&event.project) else {
                continue;
            };
            // The state now, not as of the event: a health change that follows is applied by
            // its own event.
            let Some(state) = self
                .supervisor
                .instances(&event.project)
                .into_iter()
                .find(|i| i.name == event.instance)
            else {
                // Gone from the supervisor (scaled down, down): out of the pool.
                router.apply(&InstanceEvent::Down {
                    project: event.project.clone(),
                    service: event.service.clone(),
                    instance: event.instance.clone(),
                });
                continue;
            };
            if let Some(e) = self.instance_event(&state, &event.kind).await {
                router.apply(&e);
            }
        }
    }

    /// After missed events: every instance of every routed project, as it is now.
    async fn resync(&self) {
        let projects: Vec<String> = self.lock().projects.keys().cloned().collect();
        for project in projects {
            let Some(router) = self.router_of(&project) else {
                continue;
            };
            for instance in self.supervisor.instances(&project) {
                if let Some(e) = self
                    .instance_event(&instance, &instance_kind(&instance))
                    .await
                {
                    router.apply(&e);
                }
            }
        }
    }

    /// The route table of every project (or of one), with its instances.
    pub fn routes(&self, project: Option<&str>) -> Vec<RouteInfo> {
        let state = self.lock();
        let mut out = Vec::new();
        for (name, attached) in &state.projects {
            if project.is_some_and(|p| p != name) {
                continue;
            }
            let router = state.listeners.get(&attached.http).map(|l| &l.router);
            for entry in attached.table.routes() {
                let (healthy, known) = router.map_or((0, 0), |r| {
                    let ready = r.pools().ready(entry).len();
                    let known = r.pools().instances(name, &entry.service).len();
                    (ready, known)
                });
                let r = &entry.route;
                let mut access: Vec<String> = Vec::new();
                if !r.allow_from.is_empty() {
                    access.push(format!(
                        "allow_from {}",
                        r.allow_from
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join(",")
                    ));
                }
                if !r.basic_auth.is_empty() {
                    let users: Vec<&str> = r
                        .basic_auth
                        .iter()
                        .filter_map(|e| e.split(':').next())
                        .collect();
                    access.push(format!("basic_auth {}", users.join(",")));
                }
                if let Some(url) = &r.forward_auth {
                    access.push(format!("forward_auth {url}"));
                }
                out.push(RouteInfo {
                    project: name.clone(),
                    route: entry.id.clone(),
                    listen: attached.http.to_string(),
                    hosts: r.hosts.iter().map(ToString::to_string).collect(),
                    path: r.path.clone(),
                    strip_path: r.strip_path,
                    service: entry.service.clone(),
                    port: r.port,
                    healthy,
                    instances: known.max(entry.replicas as usize),
                    access,
                    tls: r.tls.as_ref().map(|t| {
                        match t {
                            Tls_::Files { .. } => "files",
                            Tls_::SelfSigned => "self-signed",
                            Tls_::Acme => "acme",
                        }
                        .to_string()
                    }),
                    denied: router.map_or(0, |r| r.denied(&entry.id)),
                });
            }
        }
        out
    }

    /// The routers' metrics in Prometheus' text format: every family once, each series labelled
    /// with its router's listen address when there are several.
    pub fn metrics(&self) -> String {
        let state = self.lock();
        let addrs: Vec<String> = state.listeners.keys().map(ToString::to_string).collect();
        let several = addrs.len() > 1;
        let sets: Vec<(Option<&str>, &wharf_router::metrics::Metrics)> = state
            .listeners
            .values()
            .zip(&addrs)
            .map(|(l, a)| (several.then_some(a.as_str()), l.router.metrics()))
            .collect();
        wharf_router::metrics::Metrics::render_all(&sets)
    }

    /// Which route a URL matches on each listener, and why.
    pub fn explain(&self, url: &str) -> Vec<String> {
        let state = self.lock();
        state
            .listeners
            .iter()
            .map(|(addr, l)| format!("router on {addr}: {}", l.router.table().explain(url)))
            .collect()
    }
}

/// Swaps in the merged table of the projects on `addr`, or closes it when none is left.
fn rebuild(state: &mut State, addr: SocketAddr) {
    let tables: Vec<&RouteTable> = state
        .projects
        .values()
        .filter(|a| a.http == addr)
        .map(|a| &a.table)
        .collect();
    if tables.is_empty() {
        if state.listeners.remove(&addr).is_some() {
            eprintln!("wharf daemon: router on http://{addr} closed (no routes left)");
        }
        return;
    }
    // The remaining tables did not tie together before, so they do not now.
    if let Ok(merged) = RouteTable::merge(tables)
        && let Some(l) = state.listeners.get(&addr)
    {
        if let Some((tls, _)) = &l.tls
            && let Err(e) = tls.apply(&merged)
        {
            eprintln!("wharf daemon: router on {addr}: {e}");
        }
        l.router.set_table(merged);
    }
}

/// Writes what happens to certificates to the daemon's log.
fn log_tls_events(tls: &Tls) {
    let mut events = tls.events();
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(TlsEvent::Installed {
                    route,
                    hosts,
                    source,
                    ..
                }) => eprintln!(
                    "wharf daemon: route `{route}`: serving a {source} certificate for {}",
                    hosts.join(", ")
                ),
                Ok(TlsEvent::Failed {
                    route,
                    hosts,
                    error,
                    retry_in,
                }) => eprintln!(
                    "wharf daemon: route `{route}`: no certificate for {} yet: {error} (next attempt in {}s)",
                    hosts.join(", "),
                    retry_in.as_secs()
                ),
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
}

/// The event that brings the pools to an instance's current state.
fn instance_kind(instance: &InstanceState) -> EventKind {
    use wharf_supervisor::Status;
    match instance.status {
        Status::Running => EventKind::Running { pid: instance.pid },
        Status::Stopping => EventKind::Stopping,
        _ => EventKind::Removed,
    }
}

impl Drain for Routing {
    fn drain<'a>(
        &'a self,
        instance: &'a InstanceState,
        within: Duration,
    ) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
        Box::pin(async move {
            let Some(router) = self.router_of(&instance.project) else {
                return;
            };
            // At once, not when the Stopping event gets through: no new request may pick it.
            router.apply(&InstanceEvent::Draining {
                project: instance.project.clone(),
                service: instance.service.clone(),
                instance: instance.name.clone(),
            });
            let deadline = tokio::time::Instant::now() + within;
            loop {
                let busy = router
                    .pools()
                    .instances(&instance.project, &instance.service)
                    .iter()
                    .any(|u| u.instance == instance.name && u.outstanding() > 0);
                if !busy || tokio::time::Instant::now() >= deadline {
                    return;
                }
                tokio::time::sleep(DRAIN_POLL).await;
            }
        })
    }
}
