//! TLS for the router (issue 5): certificates from files, from the local wharf CA
//! (`self-signed`) or from an ACME CA (`acme`), chosen by SNI during the handshake, and an HTTPS
//! listener that serves the same [`Router::handle`] as the plain one (h2 and HTTP/1.1 by ALPN).
//!
//! [`Tls`] owns the certificates. [`Tls::apply`] takes a route table: files are read at once
//! (errors name the route and the file), each `self-signed` or `acme` host set gets a task that
//! installs its certificate, renews it when a third of its lifetime remains and retries failures
//! with backoff. Every change swaps the SNI map ([`CertResolver`]) in one store: new handshakes
//! see it, open connections keep the certificate they were given.
//!
//! On the plain listener, once [`Router::enable_https`] was called, the router answers ACME
//! HTTP-01 challenges before any route lookup and redirects (308) requests for routes that have
//! TLS to `https://`.

mod ca;
pub(crate) mod disk;
mod resolver;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use arc_swap::{ArcSwap, ArcSwapOption};
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use rustls::sign::CertifiedKey;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::acme::{Acme, ChallengeKind, Challenges, HTTP_CHALLENGE_PREFIX, retry_delay};
use crate::proxy::Router;
use crate::route::Tls as TlsLabel;
use crate::settings::{AcmeSettings, LETS_ENCRYPT};
use crate::table::{RouteTable, normalise_host};

pub use ca::{Issued, LocalCa};
pub use disk::Validity;
pub use resolver::{ACME_TLS_ALPN, CertMap, CertResolver};

/// What [`Tls::new`] needs from the daemon.
#[derive(Clone, Debug)]
pub struct TlsSettings {
    /// The daemon's state directory for TLS: `ca/` (the local CA) and `acme/` live here.
    pub state_dir: PathBuf,
    /// `x-wharf.router.acme` ([`crate::RouterSettings::acme`]).
    pub acme: AcmeSettings,
    /// How the ACME CA validates hosts (`x-wharf.router.acme.challenge`: `http-01`, the
    /// default, or `tls-alpn-01`).
    pub acme_challenge: ChallengeKind,
    /// Routes without a `wharf.http.tls` label whose hosts are all public names get `acme`
    /// (issue 5: the default when https is configured). Off: they have no TLS.
    pub acme_for_public_hosts: bool,
}

impl TlsSettings {
    pub fn new(state_dir: impl Into<PathBuf>) -> TlsSettings {
        TlsSettings {
            state_dir: state_dir.into(),
            acme: AcmeSettings {
                email: None,
                directory: LETS_ENCRYPT.to_string(),
                ca_roots: None,
            },
            acme_challenge: ChallengeKind::default(),
            acme_for_public_hosts: false,
        }
    }
}

/// A certificate that cannot be served, or state that cannot be kept.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("route `{route}`: {what} file {}: {message}", path.display())]
    File {
        route: String,
        /// `certificate` or `key`.
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("TLS state {}: {source}: check that the daemon's state directory is writable", path.display())]
    State {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("local wharf CA {}: {message}", path.display())]
    Ca { path: PathBuf, message: String },
    #[error(
        "routes `{first}` and `{second}` both serve {host} over TLS with different certificates (`wharf.http.tls`): give them the same setting"
    )]
    Conflict {
        host: String,
        first: String,
        second: String,
    },
    #[error("route `{route}`: {message}")]
    Route { route: String, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Something that happened to a certificate, for the daemon's log and for tests to wait on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TlsEvent {
    /// A certificate is being served for these hosts.
    Installed {
        route: String,
        hosts: Vec<String>,
        /// `files`, `self-signed` or `acme`.
        source: &'static str,
        not_after: SystemTime,
    },
    /// Issuing failed; another attempt follows after `retry_in`.
    Failed {
        route: String,
        hosts: Vec<String>,
        error: String,
        retry_in: Duration,
    },
}

/// The router's certificates. Clones share everything; the renewal tasks stop when the last
/// clone is dropped.
#[derive(Clone)]
pub struct Tls {
    inner: Arc<Inner>,
}

struct Inner {
    settings: TlsSettings,
    provider: Arc<CryptoProvider>,
    resolver: Arc<CertResolver>,
    server_config: Arc<ServerConfig>,
    challenges: Arc<Challenges>,
    /// Ids of the routes served with TLS, read by the plain listener for redirects.
    tls_routes: Arc<ArcSwap<HashSet<String>>>,
    ca: Mutex<Option<Arc<LocalCa>>>,
    acme: Arc<Acme>,
    registry: Mutex<Registry>,
    events: broadcast::Sender<TlsEvent>,
}

/// A certificate kept by a task: the local CA's or an ACME CA's, for a set of hosts.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Managed {
    acme: bool,
    /// Host keys (`example.org`, `*.example.org`); empty: the default certificate.
    hosts: Vec<String>,
}

#[derive(Default)]
struct Registry {
    /// Host key (`""` for the default certificate) -> what is served for it.
    installed: HashMap<String, Arc<CertifiedKey>>,
    /// Host keys some route of the current table wants.
    wanted: HashSet<String>,
    tasks: HashMap<Managed, JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Ok(reg) = self.registry.lock() {
            for task in reg.tasks.values() {
                task.abort();
            }
        }
    }
}

/// Where a route's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Source {
    Files { cert: PathBuf, key: PathBuf },
    SelfSigned,
    Acme,
}

struct Want {
    route: String,
    hosts: Vec<String>,
    source: Source,
}

impl Tls {
    /// The certificate store and the TLS configuration of the HTTPS listener. Nothing is read or
    /// created on disk until [`Tls::apply`] needs it.
    pub fn new(settings: TlsSettings) -> Result<Tls, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let challenges = Arc::new(Challenges::default());
        let resolver = Arc::new(CertResolver {
            certs: ArcSwap::from_pointee(CertMap::default()),
            challenges: challenges.clone(),
        });
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // Server preference: h2 first. `acme-tls/1` is only ever chosen by a client that offers
        // nothing else (an ACME CA validating TLS-ALPN-01).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
        let acme = Arc::new(Acme::new(
            settings.acme.clone(),
            settings.acme_challenge,
            &settings.state_dir,
            challenges.clone(),
            provider.clone(),
        ));
        let (events, _) = broadcast::channel(64);
        Ok(Tls {
            inner: Arc::new(Inner {
                settings,
                provider,
                resolver,
                server_config: Arc::new(config),
                challenges,
                tls_routes: Arc::new(ArcSwap::from_pointee(HashSet::new())),
                ca: Mutex::new(None),
                acme,
                registry: Mutex::new(Registry::default()),
                events,
            }),
        })
    }

    /// The acceptor of the HTTPS listener (used by [`Router::serve_tls`]).
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.inner.server_config.clone())
    }

    /// The server configuration, for a listener of the daemon's own.
    pub fn server_config(&self) -> Arc<ServerConfig> {
        self.inner.server_config.clone()
    }

    /// The answers to ACME challenges in progress.
    pub fn challenges(&self) -> Arc<Challenges> {
        self.inner.challenges.clone()
    }

    /// Certificate events: installed, failed (with the retry delay).
    pub fn events(&self) -> broadcast::Receiver<TlsEvent> {
        self.inner.events.subscribe()
    }

    /// What a handshake for `host` would be given now (`None`: no SNI).
    pub fn certificate_for(&self, host: Option<&str>) -> Option<Arc<CertifiedKey>> {
        let map = self.inner.resolver.certs.load();
        host.and_then(|h| map.find(h))
            .or(map.default.as_ref())
            .cloned()
    }

    /// The local CA's certificate (PEM) of `state_dir`, created if there is none yet: what
    /// `wharf ca` prints for clients to trust.
    pub fn ca_certificate_pem(state_dir: &Path) -> Result<String, TlsError> {
        Ok(LocalCa::open_or_create(state_dir)?
            .certificate_pem()
            .to_string())
    }

    /// Serves the certificates that `table`'s routes ask for, from now on. Must be called inside
    /// a Tokio runtime (it starts the renewal tasks). On an error nothing changes.
    pub fn apply(&self, table: &RouteTable) -> Result<(), TlsError> {
        let inner = &self.inner;
        let wants = self.wants(table)?;
        let mut files = Vec::new();
        for w in &wants {
            if let Source::Files { cert, key } = &w.source {
                files.push((w, load_files(&w.route, cert, key, &inner.provider)?));
            }
        }
        if wants.iter().any(|w| w.source == Source::SelfSigned) {
            self.ca()?;
        }
        let mut reg = inner
            .registry
            .lock()
            .map_err(|_| TlsError::Config("certificate registry poisoned".into()))?;
        reg.wanted = wants.iter().flat_map(|w| host_keys(&w.hosts)).collect();
        for (w, key) in files {
            for h in host_keys(&w.hosts) {
                reg.installed.insert(h, key.clone());
            }
            let _ = inner.events.send(TlsEvent::Installed {
                route: w.route.clone(),
                hosts: w.hosts.clone(),
                source: "files",
                not_after: key
                    .end_entity_cert()
                    .ok()
                    .and_then(Validity::of)
                    .map_or(SystemTime::UNIX_EPOCH, |v| v.not_after),
            });
        }
        let mut managed: BTreeMap<Vec<String>, (Managed, String)> = BTreeMap::new();
        for w in &wants {
            let acme = match w.source {
                Source::Files { .. } => continue,
                Source::SelfSigned => false,
                Source::Acme => true,
            };
            let m = Managed {
                acme,
                hosts: w.hosts.clone(),
            };
            let mut k = w.hosts.clone();
            k.push(acme.to_string());
            managed.entry(k).or_insert((m, w.route.clone()));
        }
        let keep: HashSet<&Managed> = managed.values().map(|(m, _)| m).collect();
        reg.tasks.retain(|m, task| {
            let stays = keep.contains(m);
            if !stays {
                task.abort();
            }
            stays
        });
        for (m, route) in managed.values() {
            if !reg.tasks.contains_key(m) {
                let weak = Arc::downgrade(&self.inner);
                let task = tokio::spawn(keep_certificate(weak, m.clone(), route.clone()));
                reg.tasks.insert(m.clone(), task);
            }
        }
        let wanted = reg.wanted.clone();
        reg.installed.retain(|h, _| wanted.contains(h));
        publish(inner, &reg);
        inner.tls_routes.store(Arc::new(
            wants
                .iter()
                .map(|w| w.route.clone())
                .collect::<HashSet<_>>(),
        ));
        Ok(())
    }

    /// The routes of `table` that have TLS, where their certificates come from; conflicts and
    /// impossible requests are errors naming the routes.
    fn wants(&self, table: &RouteTable) -> Result<Vec<Want>, TlsError> {
        let mut wants = Vec::new();
        let mut owner: HashMap<String, (String, Source)> = HashMap::new();
        for entry in table.routes() {
            let route = &entry.route;
            let hosts: Vec<String> = route.hosts.iter().map(ToString::to_string).collect();
            let source = match &route.tls {
                Some(TlsLabel::Files { cert, key }) => Source::Files {
                    cert: absolute(&entry.id, "certificate", cert)?,
                    key: absolute(&entry.id, "key", key)?,
                },
                Some(TlsLabel::SelfSigned) => Source::SelfSigned,
                Some(TlsLabel::Acme) => Source::Acme,
                None if self.inner.settings.acme_for_public_hosts
                    && !route.hosts.is_empty()
                    && route
                        .hosts
                        .iter()
                        .all(|h| h.is_public() && matches!(h, crate::route::Host::Exact(_))) =>
                {
                    Source::Acme
                }
                None => continue,
            };
            if source == Source::Acme {
                if hosts.is_empty() {
                    return Err(TlsError::Route {
                        route: entry.id.clone(),
                        message: format!(
                            "`tls: acme` needs host names for the certificate: set `{}`",
                            route.label("host")
                        ),
                    });
                }
                if let Some(w) = hosts.iter().find(|h| h.starts_with("*.")) {
                    return Err(TlsError::Route {
                        route: entry.id.clone(),
                        message: format!(
                            "host {w}: a wildcard certificate needs ACME DNS-01 validation, which wharf does not do; use `tls: files` with a certificate you obtain yourself"
                        ),
                    });
                }
            }
            for key in host_keys(&hosts) {
                match owner.get(&key) {
                    Some((first, s)) if *s != source => {
                        return Err(TlsError::Conflict {
                            host: if key.is_empty() {
                                "any host".to_string()
                            } else {
                                key
                            },
                            first: first.clone(),
                            second: entry.id.clone(),
                        });
                    }
                    Some(_) => {}
                    None => {
                        owner.insert(key, (entry.id.clone(), source.clone()));
                    }
                }
            }
            wants.push(Want {
                route: entry.id.clone(),
                hosts,
                source,
            });
        }
        Ok(wants)
    }

    /// The local CA, opened (or created) once.
    fn ca(&self) -> Result<Arc<LocalCa>, TlsError> {
        let mut slot = self
            .inner
            .ca
            .lock()
            .map_err(|_| TlsError::Config("CA slot poisoned".into()))?;
        if let Some(ca) = &*slot {
            return Ok(ca.clone());
        }
        let ca = Arc::new(LocalCa::open_or_create(&self.inner.settings.state_dir)?);
        *slot = Some(ca.clone());
        Ok(ca)
    }
}

/// `example.org` stays, `*.example.org` stays; no host is the default certificate, `""`.
fn host_keys(hosts: &[String]) -> Vec<String> {
    if hosts.is_empty() {
        vec![String::new()]
    } else {
        hosts.to_vec()
    }
}

fn absolute(route: &str, what: &'static str, path: &str) -> Result<PathBuf, TlsError> {
    let p = PathBuf::from(path);
    if p.is_absolute() {
        Ok(p)
    } else {
        Err(TlsError::File {
            route: route.to_string(),
            what,
            path: p,
            message: "the path must be absolute here (relative paths are resolved against the project directory before the router sees them)".to_string(),
        })
    }
}

/// A chain and its key from PEM files; the key must belong to the first certificate.
fn load_files(
    route: &str,
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, TlsError> {
    let file_err = |what: &'static str, path: &Path, message: String| TlsError::File {
        route: route.to_string(),
        what,
        path: path.to_path_buf(),
        message,
    };
    let cert_pem =
        std::fs::read_to_string(cert).map_err(|e| file_err("certificate", cert, format!("{e}")))?;
    let chain = disk::certificates(&cert_pem).map_err(|m| file_err("certificate", cert, m))?;
    let key_pem = std::fs::read(key).map_err(|e| file_err("key", key, format!("{e}")))?;
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
        file_err(
            "key",
            key,
            format!("no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}"),
        )
    })?;
    CertifiedKey::from_der(chain, key_der, provider)
        .map(Arc::new)
        .map_err(|e| {
            file_err(
                "key",
                key,
                format!(
                    "does not match the certificate in {} ({e}): give the key the certificate was made for",
                    cert.display()
                ),
            )
        })
}

/// Stores the current snapshot of `installed` into the resolver.
fn publish(inner: &Inner, reg: &Registry) {
    let mut map = CertMap::default();
    for (host, key) in &reg.installed {
        if host.is_empty() {
            map.default = Some(key.clone());
        } else {
            map.by_host.insert(host.clone(), key.clone());
        }
    }
    inner.resolver.certs.store(Arc::new(map));
}

/// The longest single sleep of a renewal task: the wall clock is checked again after it (a
/// suspended machine, a clock that was set).
const RECHECK: Duration = Duration::from_secs(12 * 3600);

/// Keeps one certificate: load or issue, install, sleep until renewal, repeat; failures retried
/// with backoff. Ends when the `Tls` is dropped (or the task is aborted by `apply`).
async fn keep_certificate(weak: Weak<Inner>, m: Managed, route: String) {
    let mut attempt: u32 = 0;
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let obtained = if m.acme {
            obtain_acme(&inner, &m, &route).await
        } else {
            obtain_self_signed(&inner, &m)
        };
        let wait = match obtained {
            Ok((key, validity)) => {
                attempt = 0;
                install(&inner, &m, &route, key, validity);
                validity
                    .renew_at()
                    .duration_since(SystemTime::now())
                    .unwrap_or(Duration::ZERO)
            }
            Err(failure) => {
                let delay = retry_delay(attempt, &failure);
                attempt = attempt.saturating_add(1);
                let _ = inner.events.send(TlsEvent::Failed {
                    route: route.clone(),
                    hosts: m.hosts.clone(),
                    error: failure.message,
                    retry_in: delay,
                });
                delay
            }
        };
        drop(inner);
        // Renewal is near or a retry is due: sleep at most RECHECK at a time.
        let mut remaining = wait;
        while !remaining.is_zero() {
            let step = remaining.min(RECHECK);
            tokio::time::sleep(step).await;
            remaining -= step;
        }
    }
}

fn install(inner: &Inner, m: &Managed, route: &str, key: Arc<CertifiedKey>, validity: Validity) {
    if let Ok(mut reg) = inner.registry.lock() {
        for h in host_keys(&m.hosts) {
            if reg.wanted.contains(&h) {
                reg.installed.insert(h, key.clone());
            }
        }
        publish(inner, &reg);
    }
    let _ = inner.events.send(TlsEvent::Installed {
        route: route.to_string(),
        hosts: m.hosts.clone(),
        source: if m.acme { "acme" } else { "self-signed" },
        not_after: validity.not_after,
    });
}

fn obtain_self_signed(
    inner: &Inner,
    m: &Managed,
) -> Result<(Arc<CertifiedKey>, Validity), crate::acme::AcmeFailure> {
    let fail = |message: String| crate::acme::AcmeFailure {
        message,
        rate_limited: false,
        retry_after: None,
    };
    let ca = {
        let slot = inner
            .ca
            .lock()
            .map_err(|_| fail("CA slot poisoned".into()))?;
        slot.clone()
    };
    let ca = match ca {
        Some(ca) => ca,
        None => Arc::new(
            LocalCa::open_or_create(&inner.settings.state_dir).map_err(|e| fail(e.to_string()))?,
        ),
    };
    let issued = ca.issue(&m.hosts).map_err(|e| fail(e.to_string()))?;
    let key = CertifiedKey::from_der(issued.chain, issued.key, &inner.provider)
        .map_err(|e| fail(e.to_string()))?;
    Ok((Arc::new(key), issued.validity))
}

async fn obtain_acme(
    inner: &Inner,
    m: &Managed,
    route: &str,
) -> Result<(Arc<CertifiedKey>, Validity), crate::acme::AcmeFailure> {
    let fail = |message: String| crate::acme::AcmeFailure {
        message: format!("route `{route}`: {message}"),
        rate_limited: false,
        retry_after: None,
    };
    let stored = inner
        .acme
        .stored(&m.hosts)
        .map_err(|e| fail(e.to_string()))?;
    let cert = match stored {
        Some(c) if !c.validity.due(SystemTime::now()) => c,
        _ => inner.acme.issue(route, &m.hosts).await?,
    };
    let key = CertifiedKey::from_der(cert.chain, cert.key, &inner.provider)
        .map_err(|e| fail(format!("the certificate and key do not go together: {e}")))?;
    Ok((Arc::new(key), cert.validity))
}

/// Marks a request that came over TLS, for the forwarding headers and redirects.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ViaTls;

/// `https` for a request that came over TLS, else `http`.
pub(crate) fn scheme<B>(req: &Request<B>) -> &'static str {
    if req.extensions().get::<ViaTls>().is_some() {
        "https"
    } else {
        "http"
    }
}

/// What the plain listener does for HTTPS: ACME HTTP-01 answers and redirects. Off until
/// [`Router::enable_https`].
#[derive(Default)]
pub(crate) struct HttpsState {
    on: ArcSwapOption<HttpsOn>,
}

struct HttpsOn {
    /// The port in redirects (omitted when 443).
    port: u16,
    challenges: Arc<Challenges>,
    tls_routes: Arc<ArcSwap<HashSet<String>>>,
}

/// A response the router makes itself for HTTPS duties; [`LocalAnswer::respond`] builds it with
/// the proxy's own body type.
pub(crate) struct LocalAnswer {
    status: StatusCode,
    body: String,
    content_type: &'static str,
    location: Option<HeaderValue>,
}

impl LocalAnswer {
    pub(crate) fn respond<B>(
        self,
        text: impl FnOnce(StatusCode, String) -> Response<B>,
    ) -> Response<B> {
        let mut r = text(self.status, self.body);
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        if let Some(l) = self.location {
            r.headers_mut().insert(header::LOCATION, l);
        }
        r
    }
}

impl HttpsState {
    /// Whether a plain request for `path` may be an ACME HTTP-01 challenge (answered by
    /// [`HttpsState::challenge`]).
    pub(crate) fn answers_path(&self, path: &str) -> bool {
        path.starts_with(HTTP_CHALLENGE_PREFIX) && self.on.load().is_some()
    }

    /// Whether plain requests for the route are redirected to HTTPS (by
    /// [`HttpsState::redirect`]).
    pub(crate) fn redirects(&self, route_id: &str) -> bool {
        self.on
            .load()
            .as_ref()
            .is_some_and(|on| on.tls_routes.load().contains(route_id))
    }

    /// The answer to an ACME HTTP-01 challenge request, before any route is looked up.
    pub(crate) fn challenge<B>(&self, req: &Request<B>) -> Option<LocalAnswer> {
        let path = req.uri().path();
        if !path.starts_with(HTTP_CHALLENGE_PREFIX) {
            return None;
        }
        let on = self.on.load();
        let body = on.as_ref()?.challenges.http_response(path)?;
        Some(LocalAnswer {
            status: StatusCode::OK,
            body,
            content_type: "application/octet-stream",
            location: None,
        })
    }

    /// A 308 to `https://` for a plain request to a route that has TLS (`authority` as the
    /// client sent it, port and all).
    pub(crate) fn redirect<B>(
        &self,
        req: &Request<B>,
        route_id: &str,
        authority: &str,
    ) -> Option<LocalAnswer> {
        if req.extensions().get::<ViaTls>().is_some() {
            return None;
        }
        let on = self.on.load();
        let on = on.as_ref()?;
        if !on.tls_routes.load().contains(route_id) {
            return None;
        }
        let port = if on.port == 443 {
            String::new()
        } else {
            format!(":{}", on.port)
        };
        let host = normalise_host(authority);
        let path = req.uri().path_and_query().map_or("/", |p| p.as_str());
        let location = format!("https://{host}{port}{path}");
        Some(LocalAnswer {
            status: StatusCode::PERMANENT_REDIRECT,
            body: format!("{route_id}: this route is served over HTTPS: {location}\n"),
            content_type: "text/plain; charset=utf-8",
            location: Some(HeaderValue::from_str(&location).ok()?),
        })
    }
}

impl Router {
    /// Turns on the plain listener's HTTPS duties: ACME HTTP-01 answers from `tls`, and 308
    /// redirects to `https://<host>:<https_port>` for the routes `tls` serves (the port is left
    /// out when it is 443).
    pub fn enable_https(&self, tls: &Tls, https_port: u16) {
        self.https_state().on.store(Some(Arc::new(HttpsOn {
            port: https_port,
            challenges: tls.inner.challenges.clone(),
            tls_routes: tls.inner.tls_routes.clone(),
        })));
    }

    /// Accepts TLS connections on `listener` until `shutdown` completes, serving the same
    /// routes as [`Router::serve`] (h2 or HTTP/1.1 by ALPN); connections already open keep
    /// being served. A handshake for TLS-ALPN-01 validation is closed once done.
    pub async fn serve_tls(
        &self,
        listener: TcpListener,
        tls: &Tls,
        shutdown: impl Future<Output = ()>,
    ) {
        let acceptor = tls.acceptor();
        crate::proxy::accept_until(listener, shutdown, |stream, peer| {
            let acceptor = acceptor.clone();
            let router = self.clone();
            async move {
                let Some(_admitted) = router.admit(peer) else {
                    return;
                };
                // A client that opens connections and never finishes a handshake is a slowloris
                // too.
                let timeout = router.config().tls_handshake_timeout;
                let Ok(Ok(mut stream)) =
                    tokio::time::timeout(timeout, acceptor.accept(stream)).await
                else {
                    return;
                };
                if stream.get_ref().1.alpn_protocol() == Some(ACME_TLS_ALPN) {
                    let _ = stream.shutdown().await;
                    return;
                }
                router.serve_stream(stream, peer, true).await;
            }
        })
        .await;
    }
}
