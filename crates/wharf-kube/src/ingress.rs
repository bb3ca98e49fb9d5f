//! `wharf.http.*` routes -> Ingresses (networking.k8s.io/v1), one per route, and a NetworkPolicy
//! per route that admits traffic to its port (from anyone, or from what `allow_from` lists).
//!
//! Portable forms only: host and path rules, TLS sections, and cert-manager's
//! `cert-manager.io/cluster-issuer` annotation for `acme`. What needs a controller's own
//! annotations (client address checks behind the controller, basic and forward auth, path
//! stripping) is in the report, with what to configure.

use std::collections::BTreeMap;
use std::path::Path;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, IPBlock, Ingress, IngressBackend, IngressRule,
    IngressServiceBackend, IngressSpec, IngressTLS, NetworkPolicy, NetworkPolicyIngressRule,
    NetworkPolicyPeer, NetworkPolicyPort, NetworkPolicySpec, ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value as Json;
use wharf_model::project::NetworkMode;

use crate::report::{Kind, Section};
use crate::translate::Translator;
use crate::{Error, name};
use wharf_router::route::{Balance, Route, RouteError, Source, Tls};

/// The cert-manager ClusterIssuer that `acme` routes ask for; docs/kubernetes.md shows one.
pub const ACME_ISSUER: &str = "letsencrypt";

impl Translator<'_> {
    /// The route's TLS: its own, or `acme` when the router listens for https (`x-wharf.router.
    /// https`) and every host of the route is public, as the router decides.
    fn tls_of(&self, r: &Route) -> Option<Tls> {
        if r.tls.is_some() {
            return r.tls.clone();
        }
        let https = self
            .p
            .extensions
            .get("x-wharf")
            .and_then(|x| x.get("router"))
            .and_then(|r| r.get("https"))
            .is_some();
        (https && !r.hosts.is_empty() && r.hosts.iter().all(|h| h.is_public())).then_some(Tls::Acme)
    }

    pub(crate) fn ingresses(&mut self) -> Result<(), Error> {
        for (service, routes) in self.routes.clone() {
            let kube = self.kube(&service);
            self.route_policies(&service, &routes)?;
            for r in &routes {
                let ingress_name = match &r.name {
                    None => kube.clone(),
                    Some(n) => name::join(&[&kube, n]),
                };
                let id = r.id(&service);
                let label_key = |k: &str| format!("labels.{}", r.label(k));
                let policy_name = name::join(&[&kube, "http", &r.port.to_string()]);
                let open_route = routes
                    .iter()
                    .find(|o| o.port == r.port && o.allow_from.is_empty())
                    .map(|o| o.id(&service));
                let cidrs: Vec<String> = r
                    .allow_from
                    .iter()
                    .filter(|s| matches!(s, Source::Cidr { .. }))
                    .map(ToString::to_string)
                    .collect();
                let callers: Vec<String> = r
                    .allow_from
                    .iter()
                    .filter(|s| matches!(s, Source::Service(_)))
                    .map(ToString::to_string)
                    .collect();
                let network = match &open_route {
                    Some(open) => format!(
                        "port {} also serves route {open}, open to all (NetworkPolicy `{policy_name}`), so this rule holds for no direct connection either",
                        r.port
                    ),
                    None => format!(
                        "NetworkPolicy `{policy_name}` admits only the sources of the routes on port {} — for every path, not only {} (NetworkPolicies see ports, not paths)",
                        r.port, r.path
                    ),
                };
                if !callers.is_empty() && cidrs.is_empty() {
                    self.note(
                        &service,
                        &label_key("allow_from"),
                        Kind::Approximate,
                        format!(
                            "route {id} is only for {}: it is left out of the Ingress, so no outside client reaches it; {network}",
                            callers.join(", ")
                        ),
                    );
                    continue;
                }
                if !cidrs.is_empty() {
                    let controller = if open_route.is_none() {
                        ": admit your controller there too"
                    } else {
                        ""
                    };
                    self.note(
                        &service,
                        &label_key("allow_from"),
                        Kind::NotTranslated,
                        format!(
                            "{} for route {id}: requests through the Ingress arrive from the controller's address, so the check needs your controller's own setting (there is no portable annotation); {network}{controller}",
                            cidrs.join(", ")
                        ),
                    );
                }
                if !r.basic_auth.is_empty() {
                    let secret = name::join(&[&ingress_name, "basic-auth"]);
                    let mut entries = r.basic_auth.join("\n");
                    entries.push('\n');
                    self.m.secrets.push(Secret {
                        metadata: self.meta(&secret, Some(&kube)),
                        type_: Some("Opaque".to_string()),
                        data: Some(BTreeMap::from([(
                            "auth".to_string(),
                            ByteString(entries.into_bytes()),
                        )])),
                        ..Secret::default()
                    });
                    self.note(
                        &service,
                        &label_key("basic_auth"),
                        Kind::NotTranslated,
                        format!("no portable Ingress annotation: the htpasswd entries are in Secret `{secret}` (key `auth`) for your controller's basic-auth setting"),
                    );
                }
                if let Some(url) = &r.forward_auth {
                    self.note(
                        &service,
                        &label_key("forward_auth"),
                        Kind::NotTranslated,
                        format!("no portable Ingress annotation: configure your controller's external authentication to ask {url}"),
                    );
                }
                if r.strip_path {
                    self.note(
                        &service,
                        &label_key("strip_path"),
                        Kind::NotTranslated,
                        format!("the Ingress passes paths unchanged: strip {} in the application or with your controller's rewrite setting", r.path),
                    );
                }
                if r.balance == Balance::RoundRobin {
                    self.note(
                        &service,
                        &label_key("balance"),
                        Kind::Approximate,
                        "the controller balances across the Service's endpoints by its own rule"
                            .to_string(),
                    );
                }

                let path = HTTPIngressPath {
                    path: Some(r.path.clone()),
                    path_type: "Prefix".to_string(),
                    backend: IngressBackend {
                        service: Some(IngressServiceBackend {
                            name: kube.clone(),
                            port: Some(ServiceBackendPort {
                                number: Some(i32::from(r.port)),
                                ..ServiceBackendPort::default()
                            }),
                        }),
                        ..IngressBackend::default()
                    },
                };
                let http = Some(HTTPIngressRuleValue { paths: vec![path] });
                let rules: Vec<IngressRule> = if r.hosts.is_empty() {
                    vec![IngressRule { host: None, http }]
                } else {
                    r.hosts
                        .iter()
                        .map(|h| IngressRule {
                            host: Some(h.to_string()),
                            http: http.clone(),
                        })
                        .collect()
                };
                let hosts: Vec<String> = r.hosts.iter().map(ToString::to_string).collect();
                let tls_secret = name::join(&[&ingress_name, "tls"]);
                let mut meta = self.meta(&ingress_name, Some(&kube));
                let mut tls = None;
                match self.tls_of(r) {
                    None => {}
                    Some(_) if hosts.is_empty() => self.note(
                        &service,
                        &label_key("tls"),
                        Kind::NotTranslated,
                        format!(
                            "route {id} has no host name, and a certificate needs one: add {}",
                            r.label("host")
                        ),
                    ),
                    Some(Tls::Acme) => {
                        meta.annotations = Some(BTreeMap::from([(
                            "cert-manager.io/cluster-issuer".to_string(),
                            ACME_ISSUER.to_string(),
                        )]));
                        tls = Some(vec![IngressTLS {
                            hosts: Some(hosts.clone()),
                            secret_name: Some(tls_secret.clone()),
                        }]);
                        let wildcard = if hosts.iter().any(|h| h.starts_with("*.")) {
                            "; wildcard hosts need a DNS-01 solver"
                        } else {
                            ""
                        };
                        self.note(
                            &service,
                            &label_key("tls"),
                            Kind::Note,
                            format!("acme -> cert-manager issues `{tls_secret}` through the ClusterIssuer `{ACME_ISSUER}`, which must exist (docs/kubernetes.md){wildcard}"),
                        );
                    }
                    Some(Tls::SelfSigned) => {
                        tls = Some(vec![IngressTLS {
                            hosts: Some(hosts.clone()),
                            secret_name: Some(tls_secret.clone()),
                        }]);
                        self.note(
                            &service,
                            &label_key("tls"),
                            Kind::NotTranslated,
                            format!("self-signed: create the TLS Secret `{tls_secret}` yourself (`kubectl create secret tls`) or with a cert-manager selfSigned or CA issuer"),
                        );
                    }
                    Some(Tls::Files { cert, key }) => {
                        let read = |p: &str, what: &str| {
                            let path = self.p.working_dir.join(Path::new(p));
                            std::fs::read(&path).map_err(|source| Error::Read {
                                what: format!("the TLS {what} of route {id}"),
                                path,
                                help: "fix the label (a relative path starts at the project directory)",
                                source,
                            })
                        };
                        let crt = read(cert.as_str(), "certificate")?;
                        let k = read(key.as_str(), "key")?;
                        self.m.secrets.push(Secret {
                            metadata: self.meta(&tls_secret, Some(&kube)),
                            type_: Some("kubernetes.io/tls".to_string()),
                            data: Some(BTreeMap::from([
                                ("tls.crt".to_string(), ByteString(crt)),
                                ("tls.key".to_string(), ByteString(k)),
                            ])),
                            ..Secret::default()
                        });
                        tls = Some(vec![IngressTLS {
                            hosts: Some(hosts.clone()),
                            secret_name: Some(tls_secret.clone()),
                        }]);
                        self.note(
                            &service,
                            &label_key("tls"),
                            Kind::Note,
                            format!("files -> Secret `{tls_secret}` holds the certificate and key as they were when exporting: renewals need a new export"),
                        );
                    }
                }
                self.m.ingresses.push(Ingress {
                    metadata: meta,
                    spec: Some(IngressSpec {
                        rules: Some(rules),
                        tls,
                        ..IngressSpec::default()
                    }),
                    ..Ingress::default()
                });
            }
        }
        self.router_findings();
        Ok(())
    }

    /// One NetworkPolicy per routed port of a service: open to all when a route on the port has
    /// no `allow_from`, else admitting the union of the routes' sources (address blocks, and the
    /// Pods of `service:` callers).
    fn route_policies(&mut self, service: &str, routes: &[Route]) -> Result<(), Error> {
        let kube = self.kube(service);
        let root = self.root_of[service].clone();
        let mut ports: BTreeMap<u16, Vec<&Route>> = BTreeMap::new();
        for r in routes {
            ports.entry(r.port).or_default().push(r);
        }
        for (port, on_port) in ports {
            let open = on_port.iter().any(|r| r.allow_from.is_empty());
            let mut peers: Vec<NetworkPolicyPeer> = Vec::new();
            for r in &on_port {
                for source in &r.allow_from {
                    let peer = match source {
                        Source::Cidr { .. } => NetworkPolicyPeer {
                            ip_block: Some(IPBlock {
                                cidr: source.to_string(),
                                except: None,
                            }),
                            ..NetworkPolicyPeer::default()
                        },
                        Source::Service(caller) => {
                            let bad = |message: String| Error::Route {
                                service: service.to_string(),
                                source: RouteError {
                                    label: r.label("allow_from"),
                                    message,
                                },
                            };
                            let Some(c) = self.p.services.get(caller) else {
                                return Err(bad(format!(
                                    "`service:{caller}` names a service the project does not have (or whose profile is not active): fix the name"
                                )));
                            };
                            if c.network_mode == Some(NetworkMode::Host) {
                                return Err(bad(format!(
                                    "`service:{caller}` uses the host's network, so its requests cannot be told from the host's: allow an address block instead"
                                )));
                            }
                            NetworkPolicyPeer {
                                pod_selector: Some(LabelSelector {
                                    match_labels: Some(self.selector(&self.root_of[caller])),
                                    ..LabelSelector::default()
                                }),
                                ..NetworkPolicyPeer::default()
                            }
                        }
                    };
                    if !peers.contains(&peer) {
                        peers.push(peer);
                    }
                }
            }
            let name = name::join(&[&kube, "http", &port.to_string()]);
            self.m.network_policies.push(NetworkPolicy {
                metadata: self.meta(&name, Some(&kube)),
                spec: Some(NetworkPolicySpec {
                    pod_selector: Some(LabelSelector {
                        match_labels: Some(self.selector(&root)),
                        ..LabelSelector::default()
                    }),
                    policy_types: Some(vec!["Ingress".to_string()]),
                    ingress: Some(vec![NetworkPolicyIngressRule {
                        from: (!open).then_some(peers),
                        ports: Some(vec![NetworkPolicyPort {
                            port: Some(IntOrString::Int(i32::from(port))),
                            protocol: Some("TCP".to_string()),
                            ..NetworkPolicyPort::default()
                        }]),
                    }]),
                    ..NetworkPolicySpec::default()
                }),
            });
        }
        Ok(())
    }

    fn router_findings(&mut self) {
        if let Some(router) = self
            .p
            .extensions
            .get("x-wharf")
            .and_then(|x| x.get("router"))
        {
            let email = router
                .get("acme")
                .and_then(|a| a.get("email"))
                .and_then(Json::as_str)
                .map(|e| format!(" (e-mail {e})"))
                .unwrap_or_default();
            self.report.add(
                Section::Project,
                "x-wharf.router",
                Kind::NotTranslated,
                format!("the router's listen addresses and ACME settings do not apply: the Ingress controller listens, and cert-manager's ClusterIssuer `{ACME_ISSUER}` needs the ACME account{email}"),
            );
        }
    }
}
