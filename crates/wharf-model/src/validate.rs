//! Checks over the whole project once every reference is known: no dependency cycle (through
//! `depends_on` or `network_mode: service:x`), no host port published twice, no container name
//! used twice; and, on the merged tree, the combinations Docker Compose refuses although each
//! value is valid alone.

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::node::{Node, Value};
use crate::project::{NetworkMode, Project};

/// `consistency` false (`config --no-consistency`) leaves out the container names' unicity, as
/// `docker compose config` leaves out `CheckContainerNameUnicity`.
pub(crate) fn validate(p: &Project, consistency: bool, errors: &mut Vec<Diagnostic>) {
    check_cycles(p, errors);
    check_published_ports(p, errors);
    if consistency {
        check_container_names(p, errors);
    }
}

/// Two services may not share a `container_name`: compose-go's `CheckContainerNameUnicity`
/// ("services.b: container name \"x\" is already in use by service a").
fn check_container_names(p: &Project, errors: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
    for s in p.services.values() {
        // An empty name (`${UNSET}`) is no name, as in compose-go.
        let Some(name) = s.container_name.as_deref().filter(|n| !n.is_empty()) else {
            continue;
        };
        match seen.get(name) {
            Some(first) => errors.push(
                Diagnostic::error(
                    format!(
                        "services.{}: container name \"{name}\" is already in use by service {first}",
                        s.name
                    ),
                    s.key_spans.get("container_name").copied().unwrap_or(s.span),
                )
                .with_help("give each service its own container_name, or remove it from one"),
            ),
            None => {
                seen.insert(name, &s.name);
            }
        }
    }
}

/// The merged canonical tree's combinations that Docker Compose refuses.
pub(crate) fn validate_tree(root: &Node, errors: &mut Vec<Diagnostic>) {
    for kind in ["volumes", "networks", "secrets", "configs"] {
        let Some(objects) = root.get(kind).and_then(Node::as_map) else {
            continue;
        };
        for (name, e) in objects {
            check_external(kind, name, &e.node, errors);
        }
    }
    let Some(services) = root.get("services").and_then(Node::as_map) else {
        return;
    };
    for (name, e) in services {
        check_environment_names(name, &e.node, errors);
        check_mounts(name, &e.node, errors);
    }
}

/// An external volume is not created, so it takes no `driver`, `driver_opts`, `labels` or other
/// setting (compose-go `TestInvalidExternalAndDriverCombination` and the two after it: "volumes.x:
/// conflicting parameters \"external\" and \"driver\" specified"; a network with `driver`
/// alike); its name is `name`, and the deprecated `external.name` may not say it a second time
/// (`TestLoadVolumeInvalidExternalNameAndNameCombination`: "volumes.x: name and external.name
/// conflict; only use name"), and gives a warning alone (`TestLoadVolumesWarnOnDeprecatedExternalName`).
fn check_external(kind: &str, name: &str, n: &Node, errors: &mut Vec<Diagnostic>) {
    let Some(external) = n.get("external") else {
        return;
    };
    let is_external = match &external.value {
        Value::Bool(b) => *b,
        Value::Map(_) => true,
        _ => false,
    };
    if !is_external {
        return;
    }
    // compose-go's `checkExternal` (validation/external.go) refuses every key of an external
    // volume but `name`, `external` and `x-*`; of a network, `driver` (issue 13 found Docker
    // Compose refusing it).
    let conflicts = |key: &str| match kind {
        "volumes" => !matches!(key, "name" | "external") && !key.starts_with("x-"),
        "networks" => key == "driver",
        _ => false,
    };
    if let Some(m) = n.as_map() {
        for (key, e) in m {
            if conflicts(key) {
                errors.push(
                    Diagnostic::error(
                        format!(
                            "{kind}.{name}: conflicting parameters \"external\" and \"{key}\" specified"
                        ),
                        e.key_span,
                    )
                    .with_help(format!(
                        "an external {} already exists and is not created by wharf; remove `{key}`, or `external`",
                        kind.trim_end_matches('s')
                    )),
                );
            }
        }
    }
    if let Some(legacy) = external.get("name") {
        if n.get("name").is_some() {
            errors.push(
                Diagnostic::error(
                    format!("{kind}.{name}: name and external.name conflict; only use name"),
                    legacy.span,
                )
                .with_help("write `external: true` and keep `name:`"),
            );
        } else {
            errors.push(Diagnostic::warning(
                format!(
                    "{kind}.{name}: external.name is deprecated. Please set name and external: true"
                ),
                legacy.span,
            ));
        }
    }
}

/// `- DEBUG = true` in an `environment` list names the variable `DEBUG ` (with the space) and
/// gives it ` true`; compose-go refuses it (`TestEnvironmentWhitespace`: "environment variable
/// DEBUG  is declared with a trailing space").
fn check_environment_names(service: &str, n: &Node, errors: &mut Vec<Diagnostic>) {
    let Some(env) = n.get("environment").and_then(Node::as_map) else {
        return;
    };
    for (key, e) in env {
        if key.ends_with(char::is_whitespace) || key.starts_with(char::is_whitespace) {
            let trimmed = key.trim();
            let value = e.node.scalar_text().unwrap_or_default();
            errors.push(
                Diagnostic::error(
                    format!(
                        "'services[{service}].environment': environment variable {key} is declared with a {} space",
                        if key.ends_with(char::is_whitespace) { "trailing" } else { "leading" }
                    ),
                    e.key_span,
                )
                .with_help(format!(
                    "write `{trimmed}={}` with no space around `=`: in a list, the text before `=` is the name as written",
                    value.trim()
                )),
            );
        }
    }
}

/// A bind mount names what it binds (compose-go `TestLoadBindMountSourceMustNotBeEmpty`), and one target
/// takes one mount: a `tmpfs:` entry and a volume on the same path are refused by Docker Compose
/// (the engine's "Duplicate mount point", docker/compose#12772).
fn check_mounts(service: &str, n: &Node, errors: &mut Vec<Diagnostic>) {
    let volumes = n.get("volumes").and_then(Node::as_seq).unwrap_or(&[]);
    for v in volumes {
        // A source with no text (missing, empty, null, a list or mapping) is no source.
        let no_source = || match v.get("source").map(|s| &s.value) {
            None | Some(Value::Null | Value::Seq(_) | Value::Map(_)) => true,
            Some(Value::Str(s)) => s.is_empty(),
            Some(Value::Bool(_) | Value::Int(_) | Value::Float(_)) => false,
        };
        if v.get("type").and_then(Node::as_str) == Some("bind") && no_source() {
            let target = v
                .get("target")
                .and_then(Node::scalar_text)
                .unwrap_or_default();
            errors.push(
                Diagnostic::error(
                    format!(
                        "invalid mount config for type \"bind\": field Source must not be empty (the bind mount on `{target}` of service `{service}`)"
                    ),
                    v.span,
                )
                .with_help("name the host path to mount, e.g. `source: ./data`"),
            );
        }
    }
    let Some(tmpfs) = n.get("tmpfs").and_then(Node::as_seq) else {
        return;
    };
    for t in tmpfs {
        let Some(text) = t.scalar_text() else {
            continue;
        };
        let path = clean_target(text.split(':').next().unwrap_or(&text));
        if let Some(v) = volumes.iter().find(|v| {
            v.get("target")
                .and_then(Node::scalar_text)
                .is_some_and(|target| clean_target(&target) == path)
        }) {
            errors.push(
                Diagnostic::error(
                    format!(
                        "`{path}` of service `{service}` is both a tmpfs and a volume target (line {}): Docker refuses a duplicate mount point",
                        v.span.line
                    ),
                    t.span,
                )
                .with_help("keep one of the two mounts on that path"),
            );
        }
    }
}

fn clean_target(p: &str) -> String {
    crate::canonical::path_string(&crate::canonical::clean(std::path::Path::new(p)))
}

/// What a service waits for: its dependencies and the service whose network it joins.
fn edges(p: &Project, name: &str) -> Vec<String> {
    let Some(s) = p.services.get(name) else {
        return Vec::new();
    };
    let mut out: Vec<String> = s
        .depends_on
        .keys()
        .filter(|d| p.services.contains_key(*d))
        .cloned()
        .collect();
    if let Some(NetworkMode::Service(x)) = &s.network_mode
        && p.services.contains_key(x)
        && !out.contains(x)
    {
        out.push(x.clone());
    }
    out
}

/// Depth-first search with colours, iterative so a 1,000-deep chain cannot exhaust the stack.
/// Each cycle is reported once, naming every service on it in order.
fn check_cycles(p: &Project, errors: &mut Vec<Diagnostic>) {
    #[derive(Clone, Copy, PartialEq)]
    enum Colour {
        White,
        Grey,
        Black,
    }
    let mut colour: BTreeMap<&str, Colour> = p
        .services
        .keys()
        .map(|k| (k.as_str(), Colour::White))
        .collect();
    for start in p.services.keys() {
        if colour[start.as_str()] != Colour::White {
            continue;
        }
        // Stack of (service, its edges, next edge index).
        let mut stack: Vec<(String, Vec<String>, usize)> =
            vec![(start.clone(), edges(p, start), 0)];
        colour.insert(start.as_str(), Colour::Grey);
        while let Some((node, next_edges, i)) = stack.last_mut() {
            if *i >= next_edges.len() {
                let done = node.clone();
                stack.pop();
                if let Some(k) = p.services.get_key_value(&done).map(|(k, _)| k.as_str()) {
                    colour.insert(k, Colour::Black);
                }
                continue;
            }
            let next = next_edges[*i].clone();
            *i += 1;
            let Some(key) = p.services.get_key_value(&next).map(|(k, _)| k.as_str()) else {
                continue;
            };
            match colour[key] {
                Colour::White => {
                    colour.insert(key, Colour::Grey);
                    let e = edges(p, key);
                    stack.push((next, e, 0));
                }
                Colour::Grey => {
                    let from = stack.iter().position(|(n, _, _)| *n == next).unwrap_or(0);
                    let mut cycle: Vec<&str> =
                        stack[from..].iter().map(|(n, _, _)| n.as_str()).collect();
                    cycle.push(key);
                    let first = &p.services[cycle[0]];
                    let second = cycle.get(1).copied().unwrap_or(cycle[0]);
                    let span = first
                        .depends_on
                        .get(second)
                        .map(|d| d.span)
                        .or_else(|| first.key_spans.get("network_mode").copied())
                        .unwrap_or(first.span);
                    errors.push(
                        Diagnostic::error(
                            format!(
                                "dependency cycle: {}",
                                cycle.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(" -> ")
                            ),
                            span,
                        )
                        .with_help("services start after what they depend on, so a cycle can never start; remove one of these dependencies"),
                    );
                }
                Colour::Black => {}
            }
        }
    }
}

fn check_published_ports(p: &Project, errors: &mut Vec<Diagnostic>) {
    // (protocol, port) -> who publishes it: (host ip, service, span)
    type Publisher = (String, String, crate::node::Span);
    let mut seen: BTreeMap<(String, u16), Vec<Publisher>> = BTreeMap::new();
    for s in p.services.values() {
        for port in &s.ports {
            let ip = port.host_ip.clone().unwrap_or_else(|| "0.0.0.0".into());
            for host_port in port.published_ports() {
                let key = (port.protocol.clone(), host_port);
                let entries = seen.entry(key).or_default();
                let clash = entries.iter().find(|(other_ip, _, _)| {
                    *other_ip == ip
                        || other_ip == "0.0.0.0"
                        || ip == "0.0.0.0"
                        || other_ip == "::"
                        || ip == "::"
                });
                if let Some((other_ip, other, other_span)) = clash {
                    let place = if other_span.is_synthetic() {
                        String::new()
                    } else {
                        format!(" (line {})", other_span.line)
                    };
                    errors.push(
                        Diagnostic::error(
                            format!(
                                "host port {ip}:{host_port}/{} of service `{}` is already published by service `{other}` on {other_ip}{place}",
                                port.protocol, s.name
                            ),
                            port.span,
                        )
                        .with_help("publish a different host port, or bind each to a different host IP"),
                    );
                    continue;
                }
                entries.push((ip.clone(), s.name.clone(), port.span));
            }
        }
    }
}
