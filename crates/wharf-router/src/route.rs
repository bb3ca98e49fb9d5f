//! HTTP routes declared with `wharf.http.*` service labels (issue 5), parsed in one place so that
//! the Kubernetes export and the router read them the same way.
//!
//! ```text
//! wharf.http.port: "8000"              # the default route of the service (required for it)
//! wharf.http.host: "example.org, *.example.org"   # absent: any host
//! wharf.http.path: /app                # a path prefix, default /
//! wharf.http.strip_path: "true"
//! wharf.http.tls: acme                 # files | self-signed | acme
//! wharf.http.tls.cert: /etc/certs/site.pem   # with `files`
//! wharf.http.tls.key: /etc/certs/site.key
//! wharf.http.allow_from: "10.0.0.0/8, service:shell"
//! wharf.http.basic_auth: "admin:$$2y$$05$$..."  # htpasswd bcrypt entries, comma-separated
//! wharf.http.forward_auth: http://auth:9000/check
//! wharf.http.balance: round_robin      # least_outstanding (default) | round_robin
//! wharf.http.admin.port: "8001"        # a second route named `admin`: every key above, per route
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;

/// Every label of a route starts with this.
pub const PREFIX: &str = "wharf.http.";

/// The settings of a route; a label `wharf.http.<x>.<key>` whose `<x>` is one of these belongs
/// to the default route, any other `<x>` names a route.
pub const KEYS: &[&str] = &[
    "port",
    "host",
    "path",
    "strip_path",
    "tls",
    "allow_from",
    "basic_auth",
    "forward_auth",
    "balance",
];

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    /// `None` for the route of `wharf.http.port`, else the `<route>` of `wharf.http.<route>.port`.
    pub name: Option<String>,
    pub port: u16,
    /// Empty: any host.
    pub hosts: Vec<Host>,
    /// A path prefix starting with `/`.
    pub path: String,
    pub strip_path: bool,
    pub tls: Option<Tls>,
    pub allow_from: Vec<Source>,
    /// htpasswd entries (`user:$2y$...`).
    pub basic_auth: Vec<String>,
    pub forward_auth: Option<String>,
    pub balance: Balance,
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Host {
    Exact(String),
    /// `*.example.org`, kept as the suffix `.example.org`.
    Wildcard(String),
}

impl Host {
    /// Whether a certificate authority on the internet could issue for it (not `localhost`,
    /// `.local`, `.internal`, `.test`, an address, or a name without a dot).
    pub fn is_public(&self) -> bool {
        let name = match self {
            Host::Exact(h) => h.as_str(),
            Host::Wildcard(s) => s.trim_start_matches('.'),
        };
        const PRIVATE: &[&str] = &[
            "localhost",
            "local",
            "internal",
            "test",
            "invalid",
            "lan",
            "home.arpa",
        ];
        name.contains('.')
            && name.parse::<IpAddr>().is_err()
            && !PRIVATE
                .iter()
                .any(|p| name == *p || name.ends_with(&format!(".{p}")))
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Exact(h) => f.write_str(h),
            Host::Wildcard(s) => write!(f, "*{s}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tls {
    Files { cert: String, key: String },
    SelfSigned,
    Acme,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// An address block; a bare address is a /32 or /128.
    Cidr { addr: IpAddr, prefix: u8 },
    /// `service:<name>`: instances of that service of the same project.
    Service(String),
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Cidr { addr, prefix } => write!(f, "{addr}/{prefix}"),
            Source::Service(s) => write!(f, "service:{s}"),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Balance {
    #[default]
    LeastOutstanding,
    RoundRobin,
}

impl Route {
    /// `web` for the default route of service `web`, `web.admin` for its route `admin`.
    pub fn id(&self, service: &str) -> String {
        match &self.name {
            None => service.to_string(),
            Some(n) => format!("{service}.{n}"),
        }
    }

    /// The label that sets `key` on this route.
    pub fn label(&self, key: &str) -> String {
        match &self.name {
            None => format!("{PREFIX}{key}"),
            Some(n) => format!("{PREFIX}{n}.{key}"),
        }
    }
}

/// A label that does not make a valid route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteError {
    pub label: String,
    pub message: String,
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "label `{}`: {}", self.label, self.message)
    }
}

impl std::error::Error for RouteError {}

/// The routes a service's labels declare: the default route first, then named routes by name.
/// Every label under `wharf.http.` is checked; the first mistake is returned.
pub fn parse(labels: &BTreeMap<String, String>) -> Result<Vec<Route>, RouteError> {
    // route name (None = default) -> key (`tls.cert` kept whole) -> (label, value)
    let mut raw: BTreeMap<Option<String>, BTreeMap<String, (String, String)>> = BTreeMap::new();
    for (label, value) in labels {
        let Some(rest) = label.strip_prefix(PREFIX) else {
            continue;
        };
        let err = |message: String| RouteError {
            label: label.clone(),
            message,
        };
        let (route, key) = match rest.split_once('.') {
            Some((first, key)) if !KEYS.contains(&first) => (Some(first.to_string()), key),
            _ => (None, rest),
        };
        let base = key.split('.').next().unwrap_or(key);
        let known = KEYS.contains(&base) && (key == base || key == "tls.cert" || key == "tls.key");
        if !known {
            let hint = KEYS
                .iter()
                .min_by_key(|k| edit_distance(k, base))
                .map(|k| format!(" (did you mean `{k}`?)"))
                .unwrap_or_default();
            return Err(err(format!(
                "unknown route setting `{key}`{hint}; the settings are {}",
                KEYS.join(", ")
            )));
        }
        if let Some(r) = &route
            && !valid_route_name(r)
        {
            return Err(err(format!(
                "route name `{r}` must be lowercase letters, digits, `-` and `_`"
            )));
        }
        raw.entry(route)
            .or_default()
            .insert(key.to_string(), (label.clone(), value.clone()));
    }
    let mut routes = Vec::new();
    for (name, keys) in raw {
        routes.push(route(name, &keys)?);
    }
    Ok(routes)
}

fn route(
    name: Option<String>,
    keys: &BTreeMap<String, (String, String)>,
) -> Result<Route, RouteError> {
    let label_of = |key: &str| match &name {
        None => format!("{PREFIX}{key}"),
        Some(n) => format!("{PREFIX}{n}.{key}"),
    };
    let get = |key: &str| keys.get(key).map(|(_, v)| v.trim());
    let err = |key: &str, message: String| RouteError {
        label: keys
            .get(key)
            .map(|(l, _)| l.clone())
            .unwrap_or_else(|| label_of(key)),
        message,
    };
    let port = match get("port") {
        None => {
            return Err(err(
                "port",
                "a route needs the port its service listens on: add this label".to_string(),
            ));
        }
        Some(p) => match p.parse::<u16>() {
            Ok(p) if p > 0 => p,
            _ => return Err(err("port", format!("`{p}` is not a port (1-65535)"))),
        },
    };
    let mut hosts = Vec::new();
    if let Some(h) = get("host") {
        for part in h.split(',').map(str::trim) {
            hosts.push(host(part).map_err(|m| err("host", m))?);
        }
        if hosts.is_empty() {
            return Err(err(
                "host",
                "no host name: remove the label to match any host".to_string(),
            ));
        }
    }
    let path = get("path").unwrap_or("/").to_string();
    if !path.starts_with('/') || path.contains(char::is_whitespace) {
        return Err(err(
            "path",
            format!("`{path}` is not a path prefix: start it with `/`"),
        ));
    }
    let strip_path = match get("strip_path") {
        None => false,
        Some(v) => {
            boolean(v).ok_or_else(|| err("strip_path", format!("`{v}`: use true or false")))?
        }
    };
    let tls = match get("tls") {
        None => {
            if keys.contains_key("tls.cert") || keys.contains_key("tls.key") {
                return Err(err(
                    "tls",
                    "certificate files are given but `tls` is not `files`: set it".to_string(),
                ));
            }
            None
        }
        Some("acme") => Some(Tls::Acme),
        Some("self-signed") => Some(Tls::SelfSigned),
        Some("files") => {
            let cert = get("tls.cert").ok_or_else(|| {
                err(
                    "tls.cert",
                    "`tls: files` needs the certificate file: add this label".to_string(),
                )
            })?;
            let key = get("tls.key").ok_or_else(|| {
                err(
                    "tls.key",
                    "`tls: files` needs the key file: add this label".to_string(),
                )
            })?;
            Some(Tls::Files {
                cert: cert.to_string(),
                key: key.to_string(),
            })
        }
        Some(other) => {
            return Err(err(
                "tls",
                format!("`{other}`: use files, self-signed or acme"),
            ));
        }
    };
    let mut allow_from = Vec::new();
    if let Some(a) = get("allow_from") {
        for part in a.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            allow_from.push(source(part).map_err(|m| err("allow_from", m))?);
        }
    }
    let mut basic_auth = Vec::new();
    if let Some(b) = get("basic_auth") {
        for entry in b.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let ok = entry.split_once(':').is_some_and(|(user, hash)| {
                !user.is_empty() && ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
            });
            if !ok {
                return Err(err(
                    "basic_auth",
                    format!(
                        "`{entry}` is not an htpasswd bcrypt entry (`user:$2y$...`, made with `htpasswd -nB user`; write `$` as `$$` in Compose files)"
                    ),
                ));
            }
            basic_auth.push(entry.to_string());
        }
    }
    let forward_auth = match get("forward_auth") {
        None => None,
        Some(u) if u.starts_with("http://") || u.starts_with("https://") => Some(u.to_string()),
        Some(u) => {
            return Err(err(
                "forward_auth",
                format!("`{u}` is not an http:// or https:// URL"),
            ));
        }
    };
    let balance = match get("balance") {
        None | Some("least_outstanding") => Balance::LeastOutstanding,
        Some("round_robin") => Balance::RoundRobin,
        Some(other) => {
            return Err(err(
                "balance",
                format!("`{other}`: use least_outstanding or round_robin"),
            ));
        }
    };
    Ok(Route {
        name,
        port,
        hosts,
        path,
        strip_path,
        tls,
        allow_from,
        basic_auth,
        forward_auth,
        balance,
    })
}

fn host(s: &str) -> Result<Host, String> {
    let lower = s.to_ascii_lowercase();
    let (wild, name) = match lower.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, lower.as_str()),
    };
    let ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if !ok {
        return Err(format!(
            "`{s}` is not a host name (letters, digits, `-` and dots; `*.` only as the first label)"
        ));
    }
    Ok(if wild {
        Host::Wildcard(format!(".{name}"))
    } else {
        Host::Exact(name.to_string())
    })
}

fn source(s: &str) -> Result<Source, String> {
    if let Some(name) = s.strip_prefix("service:") {
        if name.is_empty() {
            return Err("`service:` needs a service name".to_string());
        }
        return Ok(Source::Service(name.to_string()));
    }
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| {
        format!("`{s}` is neither an address block (10.0.0.0/8) nor `service:<name>`")
    })?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(p) if p <= max => p,
            _ => return Err(format!("`{s}`: the prefix length must be 0-{max}")),
        },
    };
    Ok(Source::Cidr { addr, prefix })
}

fn boolean(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

fn valid_route_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

/// Two routes that no request can tell apart: same path and a host in common (or both any
/// host). The most specific route wins every other overlap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tie {
    /// `service` or `service.route`, for both routes.
    pub first: String,
    pub second: String,
    /// The host they share (`None`: any host) and the path.
    pub host: Option<Host>,
    pub path: String,
}

impl fmt::Display for Tie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = match &self.host {
            Some(h) => format!("host {h}"),
            None => "any host".to_string(),
        };
        write!(
            f,
            "routes `{}` and `{}` both match {host} and path {}: give one of them another host or path",
            self.first, self.second, self.path
        )
    }
}

/// The first tie among routes of several services, `(service, route)` pairs in any order.
pub fn find_tie(routes: &[(&str, &Route)]) -> Option<Tie> {
    for (i, (sa, a)) in routes.iter().enumerate() {
        for (sb, b) in &routes[i + 1..] {
            if a.path != b.path {
                continue;
            }
            let shared = if a.hosts.is_empty() && b.hosts.is_empty() {
                Some(None)
            } else {
                a.hosts
                    .iter()
                    .find(|h| b.hosts.contains(h))
                    .map(|h| Some(h.clone()))
            };
            if let Some(host) = shared {
                return Some(Tie {
                    first: a.id(sa),
                    second: b.id(sb),
                    host,
                    path: a.path.clone(),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_and_named_routes() {
        let r = parse(&labels(&[
            ("wharf.http.port", "8000"),
            ("wharf.http.host", "Example.org, *.example.org"),
            ("wharf.http.tls", "acme"),
            ("wharf.http.admin.port", "8001"),
            ("wharf.http.admin.path", "/admin"),
            (
                "wharf.http.admin.allow_from",
                "10.0.0.0/8, 192.168.1.1, service:shell",
            ),
            ("wharf.http.admin.tls", "files"),
            ("wharf.http.admin.tls.cert", "/c.pem"),
            ("wharf.http.admin.tls.key", "/k.pem"),
            ("org.example", "ignored"),
        ]))
        .expect("valid");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].name, None);
        assert_eq!(
            r[0].hosts,
            vec![
                Host::Exact("example.org".into()),
                Host::Wildcard(".example.org".into())
            ]
        );
        assert_eq!(r[0].path, "/");
        assert_eq!(r[0].tls, Some(Tls::Acme));
        assert_eq!(r[1].name.as_deref(), Some("admin"));
        assert_eq!(r[1].path, "/admin");
        assert_eq!(
            r[1].allow_from
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["10.0.0.0/8", "192.168.1.1/32", "service:shell"]
        );
        assert_eq!(
            r[1].tls,
            Some(Tls::Files {
                cert: "/c.pem".into(),
                key: "/k.pem".into()
            })
        );
    }

    #[test]
    fn mistakes_name_the_label_and_say_what_to_do() {
        let e = parse(&labels(&[("wharf.http.host", "example.org")])).unwrap_err();
        assert_eq!(e.label, "wharf.http.port");
        assert!(e.message.contains("add this label"), "{e}");
        let e = parse(&labels(&[
            ("wharf.http.port", "80"),
            ("wharf.http.hots", "x"),
        ]))
        .unwrap_err();
        // A typo of a setting of the default route.
        assert!(e.to_string().contains("unknown route setting"), "{e}");
        let e = parse(&labels(&[("wharf.http.api.prot", "80")])).unwrap_err();
        assert!(e.message.contains("did you mean `port`"), "{e}");
        let e = parse(&labels(&[("wharf.http.port", "http")])).unwrap_err();
        assert!(e.message.contains("not a port"), "{e}");
        let e = parse(&labels(&[
            ("wharf.http.port", "80"),
            ("wharf.http.basic_auth", "admin:secret"),
        ]))
        .unwrap_err();
        assert!(e.message.contains("htpasswd"), "{e}");
    }

    #[test]
    fn ties_are_found_and_named() {
        let a = parse(&labels(&[("wharf.http.port", "80")])).expect("valid");
        let b = parse(&labels(&[("wharf.http.port", "81")])).expect("valid");
        let tie = find_tie(&[("web", &a[0]), ("api", &b[0])]).expect("a tie");
        assert_eq!(
            tie.to_string(),
            "routes `web` and `api` both match any host and path /: give one of them another host or path"
        );
        let c = parse(&labels(&[
            ("wharf.http.port", "81"),
            ("wharf.http.path", "/api"),
        ]))
        .expect("valid");
        assert_eq!(find_tie(&[("web", &a[0]), ("api", &c[0])]), None);
    }

    #[test]
    fn public_hosts() {
        assert!(Host::Exact("example.org".into()).is_public());
        assert!(!Host::Exact("edd.lvh.localhost".into()).is_public());
        assert!(!Host::Exact("app.test".into()).is_public());
        assert!(!Host::Exact("10.0.0.1".into()).is_public());
        assert!(!Host::Exact("intranet".into()).is_public());
    }
}
