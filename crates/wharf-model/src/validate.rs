//! Checks over the whole project once every reference is known: no dependency cycle (through
//! `depends_on` or `network_mode: service:x`), and no host port published twice.

use std::collections::BTreeMap;

use crate::diag::Diagnostic;
use crate::project::{NetworkMode, Project};

pub(crate) fn validate(p: &Project, errors: &mut Vec<Diagnostic>) {
    check_cycles(p, errors);
    check_published_ports(p, errors);
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
