//! Services (every Compose service gets one, headless without ports; aliases get their own) and
//! NetworkPolicies (Compose networks, `internal: true`, `network_mode: none`, published ports).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Service as KubeService, ServicePort, ServiceSpec};
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule, NetworkPolicyPeer,
    NetworkPolicyPort, NetworkPolicySpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use wharf_model::project::NetworkMode;

use crate::name;
use crate::report::{Kind, Section};
use crate::translate::{LABEL_PART_OF, Translator};

/// A port a service listens on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PortSpec {
    pub port: u16,
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    pub app_protocol: Option<String>,
}

impl Translator<'_> {
    /// The ports of a service: `ports` targets, `expose`, and route ports, without repeats.
    pub fn ports(&self, service: &str) -> Vec<PortSpec> {
        let s = self.service(service);
        let mut out: Vec<PortSpec> = Vec::new();
        let mut add = |port: u16, protocol: &str, app_protocol: Option<String>| {
            let protocol = protocol.to_ascii_uppercase();
            if !out.iter().any(|p| p.port == port && p.protocol == protocol) {
                out.push(PortSpec {
                    port,
                    protocol,
                    app_protocol,
                });
            }
        };
        for p in &s.ports {
            add(p.target, &p.protocol, p.app_protocol.clone());
        }
        for e in &s.expose {
            let (range, proto) = e.split_once('/').unwrap_or((e.as_str(), "tcp"));
            let (a, b) = range.split_once('-').unwrap_or((range, range));
            if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
                for port in a..=b.max(a) {
                    add(port, proto, None);
                }
            }
        }
        for r in self.routes.get(service).into_iter().flatten() {
            add(r.port, "tcp", None);
        }
        out
    }

    /// The headless Service an init container resolves to wait for a service's readiness.
    pub fn readiness_service(&self, service: &str) -> String {
        if self.ports(service).is_empty() {
            self.kube(service)
        } else {
            name::join(&[&self.kube(service), "ready"])
        }
    }

    fn service_spec(&self, service: &str, headless: bool) -> ServiceSpec {
        let root = &self.root_of[service];
        let ports: Vec<ServicePort> = if headless {
            Vec::new()
        } else {
            self.ports(service)
                .into_iter()
                .map(|p| ServicePort {
                    name: Some(format!("{}-{}", p.protocol.to_ascii_lowercase(), p.port)),
                    port: i32::from(p.port),
                    target_port: Some(IntOrString::Int(i32::from(p.port))),
                    protocol: Some(p.protocol),
                    app_protocol: p.app_protocol,
                    ..ServicePort::default()
                })
                .collect()
        };
        ServiceSpec {
            cluster_ip: ports.is_empty().then(|| "None".to_string()),
            ports: (!ports.is_empty()).then_some(ports),
            selector: Some(self.selector(root)),
            ..ServiceSpec::default()
        }
    }

    pub(crate) fn services(&mut self) {
        let mut taken: BTreeMap<String, String> = self
            .names
            .iter()
            .map(|(compose, kube)| (kube.clone(), format!("service `{compose}`")))
            .collect();
        for name in self.p.services.keys() {
            let kube = self.kube(name);
            let s = self.service(name);
            self.m.services.push(KubeService {
                metadata: self.meta(&kube, Some(&kube)),
                spec: Some(self.service_spec(name, false)),
                ..KubeService::default()
            });
            let published: Vec<String> = s
                .ports
                .iter()
                .filter(|p| p.published.is_some())
                .map(|p| {
                    let ip = p
                        .host_ip
                        .as_deref()
                        .map(|ip| format!("{ip}:"))
                        .unwrap_or_default();
                    format!(
                        "{ip}{}->{}/{}",
                        p.published.as_deref().unwrap_or_default(),
                        p.target,
                        p.protocol
                    )
                })
                .collect();
            if !published.is_empty() {
                self.note(
                    name,
                    "ports",
                    Kind::Approximate,
                    format!(
                        "published {}: no node port is opened; reach it through Service `{kube}`, a wharf.http route (Ingress), `kubectl port-forward`, or make the Service a LoadBalancer; NetworkPolicy `{}` admits anyone to these ports",
                        published.join(", "),
                        name::join(&[&self.kube(&self.root_of[name]), "published"])
                    ),
                );
            }
            if self.wait_targets.contains(name) && !self.ports(name).is_empty() {
                let ready = self.readiness_service(name);
                taken.insert(ready.clone(), format!("the readiness Service of `{name}`"));
                self.m.services.push(KubeService {
                    metadata: self.meta(&ready, Some(&kube)),
                    spec: Some(self.service_spec(name, true)),
                    ..KubeService::default()
                });
            }
            for (net, attachment) in &s.networks {
                let Some(a) = attachment else { continue };
                for alias in &a.aliases {
                    let key = format!("networks.{net}.aliases");
                    let alias_name = name::label(alias);
                    if alias_name == kube {
                        continue;
                    }
                    if let Some(owner) = taken.get(&alias_name) {
                        if *owner != format!("an alias of `{name}`") {
                            self.note(
                                name,
                                &key,
                                Kind::NotTranslated,
                                format!("`{alias}`: the name of {owner} already, and Services are namespace-wide"),
                            );
                        }
                        continue;
                    }
                    taken.insert(alias_name.clone(), format!("an alias of `{name}`"));
                    self.m.services.push(KubeService {
                        metadata: self.meta(&alias_name, Some(&kube)),
                        spec: Some(self.service_spec(name, false)),
                        ..KubeService::default()
                    });
                    self.note(
                        name,
                        &key,
                        Kind::Approximate,
                        format!("`{alias}` -> Service `{alias_name}`, resolvable from every Pod of the namespace, not only on network {net}"),
                    );
                }
                for (k, v) in [
                    ("ipv4_address", &a.ipv4_address),
                    ("ipv6_address", &a.ipv6_address),
                ] {
                    if let Some(addr) = v {
                        self.note(
                            name,
                            &format!("networks.{net}.{k}"),
                            Kind::NotTranslated,
                            format!("{addr}: Pods get their addresses from the cluster; reach it by its Service name `{kube}`"),
                        );
                    }
                }
                for k in a.extra.keys() {
                    self.note(
                        name,
                        &format!("networks.{net}.{k}"),
                        Kind::NotTranslated,
                        "no Kubernetes counterpart".to_string(),
                    );
                }
            }
        }
    }

    fn policy(
        &self,
        name: &str,
        selector: BTreeMap<String, String>,
        spec: NetworkPolicySpec,
    ) -> NetworkPolicy {
        NetworkPolicy {
            metadata: self.meta(name, None),
            spec: Some(NetworkPolicySpec {
                pod_selector: Some(LabelSelector {
                    match_labels: Some(selector),
                    ..LabelSelector::default()
                }),
                ..spec
            }),
        }
    }

    pub(crate) fn network_policies(&mut self) {
        let part_of = (LABEL_PART_OF.to_string(), name::label_value(&self.p.name));
        let mut on_network: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for root in self.groups.keys() {
            for net in self.pod_networks(root) {
                on_network.entry(net).or_default().push(root.clone());
            }
        }
        for (net, roots) in &on_network {
            let sel = BTreeMap::from([
                part_of.clone(),
                (Self::network_label(net), "true".to_string()),
            ]);
            let policy = self.policy(
                &name::join(&["network", net]),
                sel.clone(),
                NetworkPolicySpec {
                    policy_types: Some(vec!["Ingress".to_string()]),
                    ingress: Some(vec![NetworkPolicyIngressRule {
                        from: Some(vec![NetworkPolicyPeer {
                            pod_selector: Some(LabelSelector {
                                match_labels: Some(sel),
                                ..LabelSelector::default()
                            }),
                            ..NetworkPolicyPeer::default()
                        }]),
                        ports: None,
                    }]),
                    ..NetworkPolicySpec::default()
                },
            );
            self.m.network_policies.push(policy);
            let section = Section::Network(net.clone());
            let Some(top) = self.p.networks.get(net) else {
                continue;
            };
            let members: Vec<String> = roots.iter().map(|r| self.kube(r)).collect();
            if top.external {
                self.report.add(
                    section.clone(),
                    "external",
                    Kind::Approximate,
                    format!("containers outside the project cannot join it: only the project's Pods on it ({}) may connect to each other", members.join(", ")),
                );
            }
            if top.internal {
                self.report.add(
                    section.clone(),
                    "internal",
                    Kind::Note,
                    "Pods whose networks are all internal may connect only to Pods of the namespace, and to DNS (NetworkPolicy internal-egress)".to_string(),
                );
            }
            if let Some(d) = &top.driver
                && d != "bridge"
            {
                self.report.add(
                    section.clone(),
                    "driver",
                    Kind::NotTranslated,
                    format!("`{d}`: Pods use the cluster's network"),
                );
            }
            if !top.subnets.is_empty() {
                self.report.add(
                    section.clone(),
                    "ipam",
                    Kind::NotTranslated,
                    format!(
                        "subnet {}: Pods get their addresses from the cluster",
                        top.subnets.join(", ")
                    ),
                );
            }
            for k in top.extra.keys() {
                if k.starts_with("x-") || (k == "ipam" && !top.subnets.is_empty()) {
                    continue;
                }
                self.report.add(
                    section.clone(),
                    k,
                    Kind::NotTranslated,
                    "no NetworkPolicy counterpart".to_string(),
                );
            }
        }

        if self.groups.keys().any(|r| self.internal_only(r)) {
            let sel = BTreeMap::from([
                part_of.clone(),
                ("wharf.io/egress".to_string(), "namespace".to_string()),
            ]);
            let dns_port = |protocol: &str| NetworkPolicyPort {
                port: Some(IntOrString::Int(53)),
                protocol: Some(protocol.to_string()),
                ..NetworkPolicyPort::default()
            };
            let policy = self.policy(
                "internal-egress",
                sel,
                NetworkPolicySpec {
                    policy_types: Some(vec!["Egress".to_string()]),
                    egress: Some(vec![
                        NetworkPolicyEgressRule {
                            to: Some(vec![NetworkPolicyPeer {
                                pod_selector: Some(LabelSelector::default()),
                                ..NetworkPolicyPeer::default()
                            }]),
                            ports: None,
                        },
                        NetworkPolicyEgressRule {
                            to: Some(vec![NetworkPolicyPeer {
                                namespace_selector: Some(LabelSelector::default()),
                                ..NetworkPolicyPeer::default()
                            }]),
                            ports: Some(vec![dns_port("UDP"), dns_port("TCP")]),
                        },
                    ]),
                    ..NetworkPolicySpec::default()
                },
            );
            self.m.network_policies.push(policy);
        }

        for root in self.groups.keys().cloned().collect::<Vec<_>>() {
            let kube = self.kube(&root);
            let s = self.service(&root);
            if s.network_mode == Some(NetworkMode::None) {
                let policy = self.policy(
                    &name::join(&[&kube, "isolated"]),
                    self.selector(&root),
                    NetworkPolicySpec {
                        policy_types: Some(vec!["Ingress".to_string(), "Egress".to_string()]),
                        ..NetworkPolicySpec::default()
                    },
                );
                self.m.network_policies.push(policy);
            }
            if s.network_mode == Some(NetworkMode::Host) {
                continue;
            }
            let mut published: BTreeSet<(u16, String)> = BTreeSet::new();
            for m in &self.groups[&root] {
                for p in &self.service(m).ports {
                    if p.published.is_some() {
                        published.insert((p.target, p.protocol.to_ascii_uppercase()));
                    }
                }
            }
            if !published.is_empty() {
                let ports = published
                    .into_iter()
                    .map(|(port, protocol)| NetworkPolicyPort {
                        port: Some(IntOrString::Int(i32::from(port))),
                        protocol: Some(protocol),
                        ..NetworkPolicyPort::default()
                    })
                    .collect();
                let policy = self.policy(
                    &name::join(&[&kube, "published"]),
                    self.selector(&root),
                    NetworkPolicySpec {
                        policy_types: Some(vec!["Ingress".to_string()]),
                        ingress: Some(vec![NetworkPolicyIngressRule {
                            from: None,
                            ports: Some(ports),
                        }]),
                        ..NetworkPolicySpec::default()
                    },
                );
                self.m.network_policies.push(policy);
            }
        }
    }
}
