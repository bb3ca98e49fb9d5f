//! The router's settings of a project: the top-level extension
//!
//! ```yaml
//! x-wharf:
//!   router:
//!     http: "0.0.0.0:80"          # default 0.0.0.0:80 as root, 127.0.0.1:8080 otherwise
//!     https: "0.0.0.0:443"        # default 0.0.0.0:443 as root, 127.0.0.1:8443 otherwise
//!     trusted_proxies: "10.0.0.0/8"   # peers whose X-Forwarded-* headers are believed
//!     access_log: plain           # json | off; <state>/logs/router-access.log
//!     max_connections_per_client: 256   # open connections one client address may hold
//!     acme:
//!       email: ops@example.org
//!       directory: https://acme-v02.api.letsencrypt.org/directory
//!       ca_roots: /etc/ssl/pebble.pem   # extra roots to trust when talking to the ACME server
//!       challenge: http-01          # or tls-alpn-01
//! ```
//!
//! Other keys of `x-wharf` (`runtime`) belong to other parts of wharf; an unknown key of
//! `x-wharf.router` is an error naming it, like every unknown key of a Compose file.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde_json::Value;
use wharf_model::Project;

use crate::access_log::AccessLogFormat;
use crate::acme::ChallengeKind;
use crate::cidr::Cidr;

/// The keys `x-wharf` may hold (each read by the part of wharf it names).
pub const X_WHARF_KEYS: &[&str] = &["router", "runtime"];
const ROUTER_KEYS: &[&str] = &[
    "http",
    "https",
    "trusted_proxies",
    "access_log",
    "acme",
    "max_connections_per_client",
];
const ACME_KEYS: &[&str] = &["email", "directory", "ca_roots", "challenge"];

/// Let's Encrypt's production directory, the ACME default.
pub const LETS_ENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterSettings {
    pub http: SocketAddr,
    pub https: SocketAddr,
    /// Whether `https` was given (TLS routes need the HTTPS listener either way).
    pub https_set: bool,
    pub trusted_proxies: Vec<Cidr>,
    pub acme: AcmeSettings,
    /// How the ACME CA validates hosts (`acme.challenge`).
    pub challenge: ChallengeKind,
    /// The access log's format; `None`: no access log.
    pub access_log: Option<AccessLogFormat>,
    /// For `RouterConfig::max_connections_per_client`.
    pub max_connections_per_client: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeSettings {
    pub email: Option<String>,
    pub directory: String,
    /// PEM roots to trust for the ACME server's own certificate (a test CA such as Pebble's);
    /// relative paths are relative to the project directory.
    pub ca_roots: Option<PathBuf>,
}

/// A mistake in `x-wharf`, naming the key (empty: `x-wharf` itself).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.key.is_empty() {
            write!(f, "x-wharf: {}", self.message)
        } else {
            write!(f, "x-wharf.{}: {}", self.key, self.message)
        }
    }
}

impl std::error::Error for SettingsError {}

fn error(key: &str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        key: key.to_string(),
        message: message.into(),
    }
}

impl RouterSettings {
    /// The defaults: the privileged ports on every address as root, 8080 and 8443 on loopback
    /// otherwise.
    pub fn defaults(root: bool) -> RouterSettings {
        let (http, https) = if root {
            ("0.0.0.0:80", "0.0.0.0:443")
        } else {
            ("127.0.0.1:8080", "127.0.0.1:8443")
        };
        RouterSettings {
            http: http.parse().expect("a valid address"),
            https: https.parse().expect("a valid address"),
            https_set: false,
            trusted_proxies: Vec::new(),
            acme: AcmeSettings {
                email: None,
                directory: LETS_ENCRYPT.to_string(),
                ca_roots: None,
            },
            challenge: ChallengeKind::default(),
            access_log: Some(AccessLogFormat::Plain),
            max_connections_per_client: crate::RouterConfig::default().max_connections_per_client,
        }
    }

    /// The settings of `project` (the defaults for what it does not say).
    pub fn from_project(project: &Project, root: bool) -> Result<RouterSettings, SettingsError> {
        let mut settings = RouterSettings::defaults(root);
        let Some(x) = project.extensions.get("x-wharf") else {
            return Ok(settings);
        };
        let Value::Object(x) = x else {
            return Err(error("", format!("must be a mapping, not {}", kind(x))));
        };
        for key in x.keys() {
            if !X_WHARF_KEYS.contains(&key.as_str()) {
                return Err(error(key, unknown(X_WHARF_KEYS)));
            }
        }
        let Some(router) = x.get("router") else {
            return Ok(settings);
        };
        let Value::Object(router) = router else {
            return Err(error(
                "router",
                format!("must be a mapping, not {}", kind(router)),
            ));
        };
        for (key, value) in router {
            let name = format!("router.{key}");
            match key.as_str() {
                "http" => settings.http = address(&name, value)?,
                "https" => {
                    settings.https = address(&name, value)?;
                    settings.https_set = true;
                }
                "trusted_proxies" => {
                    let text = string(&name, value)?;
                    settings.trusted_proxies = text
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| {
                            s.parse::<Cidr>().map_err(|e| {
                                error(&name, format!("`{s}` is not an address block: {e}"))
                            })
                        })
                        .collect::<Result<_, _>>()?;
                }
                "access_log" => {
                    settings.access_log = match string(&name, value)?.as_str() {
                        "plain" => Some(AccessLogFormat::Plain),
                        "json" => Some(AccessLogFormat::Json),
                        "off" => None,
                        other => {
                            return Err(error(
                                &name,
                                format!(
                                    "`{other}` is not an access log format: use plain, json or off"
                                ),
                            ));
                        }
                    }
                }
                "max_connections_per_client" => {
                    let n = match value {
                        Value::Number(n) => n.as_u64(),
                        Value::String(s) => s.trim().parse().ok(),
                        _ => None,
                    };
                    settings.max_connections_per_client = n
                        .filter(|&n| n > 0)
                        .and_then(|n| usize::try_from(n).ok())
                        .ok_or_else(|| {
                            error(
                                &name,
                                format!("must be a number of connections above 0, not {value}"),
                            )
                        })?;
                }
                "acme" => {
                    let Value::Object(acme) = value else {
                        return Err(error(
                            &name,
                            format!("must be a mapping, not {}", kind(value)),
                        ));
                    };
                    for (key, value) in acme {
                        let name = format!("router.acme.{key}");
                        match key.as_str() {
                            "email" => settings.acme.email = Some(string(&name, value)?),
                            "directory" => {
                                let url = string(&name, value)?;
                                if !url.starts_with("https://") {
                                    return Err(error(
                                        &name,
                                        format!(
                                            "`{url}` is not an https:// URL of an ACME directory"
                                        ),
                                    ));
                                }
                                settings.acme.directory = url;
                            }
                            "ca_roots" => {
                                let path = PathBuf::from(string(&name, value)?);
                                settings.acme.ca_roots = Some(if path.is_absolute() {
                                    path
                                } else {
                                    project.working_dir.join(path)
                                });
                            }
                            "challenge" => {
                                let text = string(&name, value)?;
                                settings.challenge = ChallengeKind::parse(&text).ok_or_else(|| {
                                    error(
                                        &name,
                                        format!("`{text}` is not a challenge wharf answers: use http-01 or tls-alpn-01"),
                                    )
                                })?;
                            }
                            _ => return Err(error(&name, unknown(ACME_KEYS))),
                        }
                    }
                }
                _ => return Err(error(&name, unknown(ROUTER_KEYS))),
            }
        }
        Ok(settings)
    }
}

fn unknown(keys: &[&str]) -> String {
    format!(
        "is not a setting of wharf (known here: {})",
        keys.join(", ")
    )
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn string(key: &str, value: &Value) -> Result<String, SettingsError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(error(key, format!("must be a string, not {}", kind(other)))),
    }
}

fn address(key: &str, value: &Value) -> Result<SocketAddr, SettingsError> {
    let text = match value {
        Value::String(s) => s.clone(),
        // `http: 8080`: a port on every address.
        Value::Number(n) => format!("0.0.0.0:{n}"),
        other => {
            return Err(error(
                key,
                format!("must be ADDRESS:PORT, not {}", kind(other)),
            ));
        }
    };
    let text = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text
    };
    text.parse().map_err(|_| {
        error(
            key,
            format!("`{text}` is not ADDRESS:PORT (for example 127.0.0.1:8080 or 0.0.0.0:80)"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(yaml: &str) -> Project {
        wharf_model::load(&wharf_model::LoadOptions {
            files: vec!["-".into()],
            working_dir: std::env::temp_dir(),
            stdin: Some(yaml.into()),
            ..Default::default()
        })
        .expect("valid")
        .project
    }

    #[test]
    fn defaults_depend_on_root() {
        let p = project("name: p\nservices: {a: {command: [x]}}\n");
        let s = RouterSettings::from_project(&p, false).expect("valid");
        assert_eq!(s.http.to_string(), "127.0.0.1:8080");
        assert_eq!(s.https.to_string(), "127.0.0.1:8443");
        let s = RouterSettings::from_project(&p, true).expect("valid");
        assert_eq!(s.http.to_string(), "0.0.0.0:80");
        assert_eq!(s.acme.directory, LETS_ENCRYPT);
    }

    #[test]
    fn settings_are_read() {
        let p = project(
            "name: p\nservices: {a: {command: [x]}}\nx-wharf:\n  router:\n    http: 127.0.0.1:9080\n    https: ':9443'\n    trusted_proxies: 10.0.0.0/8, 192.168.0.1\n    max_connections_per_client: 32\n    acme: {email: a@b.org, directory: 'https://127.0.0.1:14000/dir', ca_roots: pebble.pem}\n",
        );
        let s = RouterSettings::from_project(&p, true).expect("valid");
        assert_eq!(s.max_connections_per_client, 32);
        assert_eq!(s.http.to_string(), "127.0.0.1:9080");
        assert_eq!(s.https.to_string(), "0.0.0.0:9443");
        assert!(s.https_set);
        assert_eq!(s.trusted_proxies.len(), 2);
        assert_eq!(s.acme.email.as_deref(), Some("a@b.org"));
        assert!(s.acme.ca_roots.expect("set").ends_with("pebble.pem"));
    }

    #[test]
    fn mistakes_name_the_key() {
        for (yaml, message) in [
            (
                "x-wharf: {routr: {}}",
                "x-wharf.routr: is not a setting of wharf (known here: router, runtime)",
            ),
            (
                "x-wharf: {router: {http: nowhere}}",
                "x-wharf.router.http: `nowhere` is not ADDRESS:PORT (for example 127.0.0.1:8080 or 0.0.0.0:80)",
            ),
            (
                "x-wharf: {router: {acme: {directory: 'http://x'}}}",
                "x-wharf.router.acme.directory: `http://x` is not an https:// URL of an ACME directory",
            ),
            (
                "x-wharf: {router: {acme: {challenge: dns-01}}}",
                "x-wharf.router.acme.challenge: `dns-01` is not a challenge wharf answers: use http-01 or tls-alpn-01",
            ),
            (
                "x-wharf: {router: {htps: x}}",
                "x-wharf.router.htps: is not a setting of wharf (known here: http, https, trusted_proxies, access_log, acme, max_connections_per_client)",
            ),
            (
                "x-wharf: {router: {max_connections_per_client: 0}}",
                "x-wharf.router.max_connections_per_client: must be a number of connections above 0, not 0",
            ),
        ] {
            let p = project(&format!(
                "name: p\nservices: {{a: {{command: [x]}}}}\n{yaml}\n"
            ));
            let e = RouterSettings::from_project(&p, false).expect_err(yaml);
            assert_eq!(e.to_string(), message);
        }
    }
}
