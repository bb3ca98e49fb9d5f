//! The route table: every route of a [`Project`], and the choice of the most specific one for a
//! request.
//!
//! Specificity, compared in this order: the host (an exact name over a wildcard, a longer
//! wildcard suffix over a shorter one, any wildcard over "any host"), then the path prefix (longer
//! wins). Two routes that no request can tell apart are refused when the table is built
//! ([`route::find_tie`]). A path prefix matches whole segments: `/api` matches `/api` and
//! `/api/x`, not `/apix`.

use std::fmt;
use std::sync::Arc;

use wharf_model::Project;

use crate::error::RouterError;
use crate::route::{self, Host, Route};

/// One route of the table, with what the router needs to know about its service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteEntry {
    /// `web` or `web.admin` (see [`Route::id`]).
    pub id: String,
    /// The project of the service: one router serves every project of a daemon.
    pub project: String,
    pub service: String,
    pub route: Route,
    /// Whether the service has a health check: without one, a running instance takes traffic.
    pub has_healthcheck: bool,
    /// The replicas the project asks for, for "0 of 3 instances healthy".
    pub replicas: u32,
}

/// How well a route's host matched: higher is more specific.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum HostMatch {
    Any,
    /// The length of the wildcard suffix that matched.
    Wildcard(usize),
    Exact,
}

impl RouteEntry {
    fn host_match(&self, host: &str) -> Option<HostMatch> {
        if self.route.hosts.is_empty() {
            return Some(HostMatch::Any);
        }
        self.route
            .hosts
            .iter()
            .filter_map(|h| match h {
                Host::Exact(name) => (name == host).then_some(HostMatch::Exact),
                Host::Wildcard(suffix) => (host.len() > suffix.len() && host.ends_with(suffix))
                    .then_some(HostMatch::Wildcard(suffix.len())),
            })
            .max()
    }

    fn path_matches(&self, path: &str) -> bool {
        let prefix = self.route.path.as_str();
        match path.strip_prefix(prefix) {
            None => false,
            Some(rest) => prefix.ends_with('/') || rest.is_empty() || rest.starts_with('/'),
        }
    }

    /// The path the upstream sees: with `strip_path`, the prefix removed (leaving at least `/`).
    pub fn upstream_path<'a>(&self, path: &'a str) -> std::borrow::Cow<'a, str> {
        if !self.route.strip_path || self.route.path == "/" {
            return path.into();
        }
        let rest = path
            .strip_prefix(self.route.path.trim_end_matches('/'))
            .unwrap_or(path);
        if rest.starts_with('/') {
            rest.into()
        } else {
            format!("/{rest}").into()
        }
    }
}

/// The routes of a project, most specific first. Cheap to share: the router holds it in an
/// `ArcSwap` and swaps in a new one when the project changes.
#[derive(Clone, Debug, Default)]
pub struct RouteTable {
    routes: Vec<Arc<RouteEntry>>,
}

impl RouteTable {
    /// Every route of every enabled service; a label mistake or a tie is an error naming it.
    pub fn from_project(project: &Project) -> Result<RouteTable, RouterError> {
        let mut entries = Vec::new();
        for (name, service) in &project.services {
            let routes = route::parse(&service.labels).map_err(|source| RouterError::Label {
                service: name.clone(),
                source,
            })?;
            let has_healthcheck = service.healthcheck.as_ref().is_some_and(|h| h.is_enabled());
            for route in routes {
                entries.push(RouteEntry {
                    id: route.id(name),
                    project: project.name.clone(),
                    service: name.clone(),
                    route,
                    has_healthcheck,
                    replicas: service.replicas,
                });
            }
        }
        RouteTable::new(entries)
    }

    /// A table of the given routes; two that tie are an error naming both.
    pub fn new(mut entries: Vec<RouteEntry>) -> Result<RouteTable, RouterError> {
        // By id, so that the order of the input does not change which tie is reported.
        entries.sort_by(|a, b| (&a.project, &a.id).cmp(&(&b.project, &b.id)));
        // Across projects, a tie names each route's project too.
        let several = entries.windows(2).any(|w| w[0].project != w[1].project);
        let names: Vec<String> = entries
            .iter()
            .map(|e| {
                if several {
                    format!("{}/{}", e.project, e.service)
                } else {
                    e.service.clone()
                }
            })
            .collect();
        let pairs: Vec<(&str, &Route)> = entries
            .iter()
            .zip(&names)
            .map(|(e, name)| (name.as_str(), &e.route))
            .collect();
        if let Some(tie) = route::find_tie(&pairs) {
            return Err(RouterError::Tie(tie));
        }
        let routes = entries.into_iter().map(Arc::new).collect();
        Ok(RouteTable { routes })
    }

    /// One table of the routes of several (projects') tables; a tie between them is an error.
    pub fn merge<'a>(
        tables: impl IntoIterator<Item = &'a RouteTable>,
    ) -> Result<RouteTable, RouterError> {
        let entries = tables
            .into_iter()
            .flat_map(|t| t.routes.iter().map(|e| RouteEntry::clone(e)))
            .collect();
        RouteTable::new(entries)
    }

    pub fn routes(&self) -> &[Arc<RouteEntry>] {
        &self.routes
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The most specific route for a host (without port, any case) and a path.
    pub fn lookup(&self, host: &str, path: &str) -> Option<&Arc<RouteEntry>> {
        let host = normalise_host(host);
        self.routes
            .iter()
            .filter(|e| e.path_matches(path))
            .filter_map(|e| e.host_match(&host).map(|m| ((m, e.route.path.len()), e)))
            .max_by_key(|(rank, _)| *rank)
            .map(|(_, e)| e)
    }

    /// Which route a URL (`http://host/path`, or `host/path`) matches and why, or why none does.
    pub fn explain(&self, url: &str) -> Explanation {
        let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let path = path.split(['?', '#']).next().unwrap_or("/");
        let host = normalise_host(authority);
        let mut candidates = Vec::new();
        for e in &self.routes {
            let verdict = match (e.host_match(&host), e.path_matches(path)) {
                (None, _) => Verdict::HostDiffers,
                (Some(_), false) => Verdict::PathDiffers,
                (Some(HostMatch::Exact), true) => Verdict::Matches("exact host"),
                (Some(HostMatch::Wildcard(_)), true) => Verdict::Matches("wildcard host"),
                (Some(HostMatch::Any), true) => Verdict::Matches("any host"),
            };
            candidates.push((e.clone(), verdict));
        }
        let chosen = self.lookup(&host, path).map(|e| e.id.clone());
        Explanation {
            host,
            path: path.to_string(),
            chosen,
            candidates,
        }
    }
}

/// `Example.org:8080` -> `example.org`; `[::1]:80` -> `[::1]`.
pub(crate) fn normalise_host(authority: &str) -> String {
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if authority.starts_with('[') {
        authority.find(']').map_or(authority, |i| &authority[..=i])
    } else {
        authority.split(':').next().unwrap_or(authority)
    };
    host.trim_end_matches('.').to_ascii_lowercase()
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Verdict {
    HostDiffers,
    PathDiffers,
    Matches(&'static str),
}

/// The answer of [`RouteTable::explain`]; its `Display` is what `wharf routes --explain` prints.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub host: String,
    pub path: String,
    /// The id of the route that wins, if any.
    pub chosen: Option<String>,
    candidates: Vec<(Arc<RouteEntry>, Verdict)>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.chosen {
            Some(id) => writeln!(f, "host {} path {}: route `{id}`", self.host, self.path)?,
            None => writeln!(f, "host {} path {}: no route matches", self.host, self.path)?,
        }
        for (e, verdict) in &self.candidates {
            let hosts = if e.route.hosts.is_empty() {
                "any host".to_string()
            } else {
                e.route
                    .hosts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let why = match verdict {
                Verdict::HostDiffers => format!("host {} is not {hosts}", self.host),
                Verdict::PathDiffers => format!("path is not under {}", e.route.path),
                Verdict::Matches(how) if self.chosen.as_deref() == Some(e.id.as_str()) => {
                    format!(
                        "matches ({how}, path prefix {}): the most specific",
                        e.route.path
                    )
                }
                Verdict::Matches(how) => format!(
                    "matches ({how}, path prefix {}) but a more specific route wins",
                    e.route.path
                ),
            };
            writeln!(f, "  {} ({hosts} {}): {why}", e.id, e.route.path)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
