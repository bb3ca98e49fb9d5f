//! The normalised project as `docker compose config` prints it.
//!
//! Same key names and shapes as Docker Compose v2: mappings (services, environment, labels, ...)
//! in sorted key order, objects in Docker Compose's field order; environment as a mapping with the
//! env files merged in; ports, volumes, depends_on, secrets and configs in long form;
//! `healthcheck.test`, `command` and `entrypoint` as lists; durations as Go prints them (`1m30s`).
//! In JSON, `command` and `entrypoint` are always present (`null` when unset) and networks carry an
//! empty `ipam`, as Docker Compose's JSON does; the YAML form leaves empty values out.

use std::collections::BTreeMap;

use serde_json::{Map, Value as Json};

use crate::duration::format_duration;
use crate::project::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// The project as a JSON value in `docker compose config` shape.
pub fn to_value(p: &Project, format: Format) -> Json {
    let json = format == Format::Json;
    let mut top = Map::new();
    top.insert("name".into(), Json::String(p.name.clone()));
    let services: Map<String, Json> = p
        .services
        .values()
        .map(|s| (s.name.clone(), service(s, json)))
        .collect();
    top.insert("services".into(), Json::Object(services));
    if !p.networks.is_empty() {
        let nets = p
            .networks
            .iter()
            .map(|(k, n)| (k.clone(), network(n, json)))
            .collect();
        top.insert("networks".into(), Json::Object(nets));
    }
    if !p.volumes.is_empty() {
        let vols = p
            .volumes
            .iter()
            .map(|(k, v)| (k.clone(), volume(v)))
            .collect();
        top.insert("volumes".into(), Json::Object(vols));
    }
    if !p.secrets.is_empty() {
        let s = p
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), file_object(v)))
            .collect();
        top.insert("secrets".into(), Json::Object(s));
    }
    if !p.configs.is_empty() {
        let c = p
            .configs
            .iter()
            .map(|(k, v)| (k.clone(), file_object(v)))
            .collect();
        top.insert("configs".into(), Json::Object(c));
    }
    for (k, v) in &p.extensions {
        top.insert(k.clone(), v.clone());
    }
    Json::Object(top)
}

/// The project as text in the given format.
pub fn render(p: &Project, format: Format) -> String {
    let value = to_value(p, format);
    match format {
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&value).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Yaml => to_yaml(&value),
    }
}

fn strings(v: &[String]) -> Json {
    Json::Array(v.iter().cloned().map(Json::String).collect())
}

fn string_map(m: &BTreeMap<String, String>) -> Json {
    Json::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

fn optional_string_map(m: &BTreeMap<String, Option<String>>) -> Json {
    Json::Object(
        m.iter()
            .map(|(k, v)| (k.clone(), v.clone().map(Json::String).unwrap_or(Json::Null)))
            .collect(),
    )
}

fn service(s: &Service, json: bool) -> Json {
    let mut out: BTreeMap<String, Json> = s.extra.clone().into_iter().collect();
    if let Some(image) = &s.image {
        out.insert("image".into(), Json::String(image.clone()));
    }
    if let Some(b) = &s.build {
        let mut m = Map::new();
        m.insert("context".into(), Json::String(b.context.clone()));
        m.insert(
            "dockerfile".into(),
            Json::String(b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into())),
        );
        if !b.args.is_empty() {
            m.insert("args".into(), optional_string_map(&b.args));
        }
        if let Some(t) = &b.target {
            m.insert("target".into(), Json::String(t.clone()));
        }
        if !b.labels.is_empty() {
            m.insert("labels".into(), string_map(&b.labels));
        }
        for (k, v) in &b.extra {
            m.insert(k.clone(), v.clone());
        }
        out.insert("build".into(), Json::Object(m));
    }
    match &s.command {
        Some(c) => {
            out.insert("command".into(), strings(c));
        }
        None if json => {
            out.insert("command".into(), Json::Null);
        }
        None => {}
    }
    match &s.entrypoint {
        Some(c) => {
            out.insert("entrypoint".into(), strings(c));
        }
        None if json => {
            out.insert("entrypoint".into(), Json::Null);
        }
        None => {}
    }
    if !s.environment.is_empty() {
        out.insert("environment".into(), optional_string_map(&s.environment));
    }
    for (key, value) in [
        ("working_dir", &s.working_dir),
        ("user", &s.user),
        ("stop_signal", &s.stop_signal),
        ("hostname", &s.hostname),
        ("container_name", &s.container_name),
    ] {
        if let Some(v) = value {
            out.insert(key.into(), Json::String(v.clone()));
        }
    }
    if !s.ports.is_empty() {
        out.insert(
            "ports".into(),
            Json::Array(s.ports.iter().map(port).collect()),
        );
    }
    if !s.expose.is_empty() {
        out.insert("expose".into(), strings(&s.expose));
    }
    if !s.volumes.is_empty() {
        out.insert(
            "volumes".into(),
            Json::Array(s.volumes.iter().map(service_volume).collect()),
        );
    }
    if !s.depends_on.is_empty() {
        let deps = s
            .depends_on
            .iter()
            .map(|(k, d)| {
                let mut m = Map::new();
                m.insert(
                    "condition".into(),
                    Json::String(d.condition.as_str().into()),
                );
                if d.restart {
                    m.insert("restart".into(), Json::Bool(true));
                }
                m.insert("required".into(), Json::Bool(d.required));
                (k.clone(), Json::Object(m))
            })
            .collect();
        out.insert("depends_on".into(), Json::Object(deps));
    }
    if let Some(h) = &s.healthcheck {
        out.insert("healthcheck".into(), healthcheck(h));
    }
    if !s.networks.is_empty() {
        let nets = s
            .networks
            .iter()
            .map(|(k, n)| {
                (
                    k.clone(),
                    n.as_ref().map(service_network).unwrap_or(Json::Null),
                )
            })
            .collect();
        out.insert("networks".into(), Json::Object(nets));
    }
    if let Some(mode) = &s.network_mode {
        out.insert("network_mode".into(), Json::String(mode.to_string()));
    }
    if let Some(d) = s.stop_grace_period {
        out.insert("stop_grace_period".into(), Json::String(format_duration(d)));
    }
    if !s.labels.is_empty() {
        out.insert("labels".into(), string_map(&s.labels));
    }
    if !s.secrets.is_empty() {
        out.insert(
            "secrets".into(),
            Json::Array(s.secrets.iter().map(file_reference).collect()),
        );
    }
    if !s.configs.is_empty() {
        out.insert(
            "configs".into(),
            Json::Array(s.configs.iter().map(file_reference).collect()),
        );
    }
    if !s.profiles.is_empty() {
        out.insert("profiles".into(), strings(&s.profiles));
    }
    Json::Object(out.into_iter().collect())
}

fn port(p: &Port) -> Json {
    let mut m = Map::new();
    if let Some(n) = &p.name {
        m.insert("name".into(), Json::String(n.clone()));
    }
    m.insert("mode".into(), Json::String(p.mode.clone()));
    if let Some(ip) = &p.host_ip {
        m.insert("host_ip".into(), Json::String(ip.clone()));
    }
    m.insert("target".into(), Json::from(p.target));
    if let Some(published) = &p.published {
        m.insert("published".into(), Json::String(published.clone()));
    }
    m.insert("protocol".into(), Json::String(p.protocol.clone()));
    if let Some(a) = &p.app_protocol {
        m.insert("app_protocol".into(), Json::String(a.clone()));
    }
    Json::Object(m)
}

fn service_volume(v: &ServiceVolume) -> Json {
    let mut m = Map::new();
    m.insert("type".into(), Json::String(v.kind.as_str().into()));
    if let Some(s) = &v.source {
        m.insert("source".into(), Json::String(s.clone()));
    }
    m.insert("target".into(), Json::String(v.target.clone()));
    if v.read_only {
        m.insert("read_only".into(), Json::Bool(true));
    }
    // Docker Compose's field order for the option blocks.
    for key in ["consistency", "bind", "volume", "tmpfs", "image"] {
        if let Some(o) = v.options.get(key) {
            m.insert(key.into(), o.clone());
        }
    }
    for (k, o) in &v.options {
        if !m.contains_key(k) {
            m.insert(k.clone(), o.clone());
        }
    }
    Json::Object(m)
}

fn healthcheck(h: &Healthcheck) -> Json {
    let mut m = Map::new();
    if let Some(t) = &h.test {
        let list = match t {
            HealthTest::Cmd(args) => std::iter::once("CMD".to_string())
                .chain(args.iter().cloned())
                .collect(),
            HealthTest::Shell(cmd) => vec!["CMD-SHELL".to_string(), cmd.clone()],
            HealthTest::None => vec!["NONE".to_string()],
        };
        m.insert("test".into(), strings(&list));
    }
    if let Some(d) = h.timeout {
        m.insert("timeout".into(), Json::String(format_duration(d)));
    }
    if let Some(d) = h.interval {
        m.insert("interval".into(), Json::String(format_duration(d)));
    }
    if let Some(r) = h.retries {
        m.insert("retries".into(), Json::from(r));
    }
    if let Some(d) = h.start_period {
        m.insert("start_period".into(), Json::String(format_duration(d)));
    }
    if let Some(d) = h.start_interval {
        m.insert("start_interval".into(), Json::String(format_duration(d)));
    }
    if h.disable {
        m.insert("disable".into(), Json::Bool(true));
    }
    Json::Object(m)
}

fn service_network(n: &ServiceNetwork) -> Json {
    let mut m = Map::new();
    if !n.aliases.is_empty() {
        m.insert("aliases".into(), strings(&n.aliases));
    }
    if let Some(a) = &n.ipv4_address {
        m.insert("ipv4_address".into(), Json::String(a.clone()));
    }
    if let Some(a) = &n.ipv6_address {
        m.insert("ipv6_address".into(), Json::String(a.clone()));
    }
    for (k, v) in &n.extra {
        m.insert(k.clone(), v.clone());
    }
    Json::Object(m)
}

fn file_reference(r: &FileReference) -> Json {
    let mut m = Map::new();
    m.insert("source".into(), Json::String(r.source.clone()));
    if let Some(t) = &r.target {
        m.insert("target".into(), Json::String(t.clone()));
    }
    if let Some(u) = &r.uid {
        m.insert("uid".into(), Json::String(u.clone()));
    }
    if let Some(g) = &r.gid {
        m.insert("gid".into(), Json::String(g.clone()));
    }
    if let Some(mode) = r.mode {
        m.insert("mode".into(), Json::from(mode));
    }
    Json::Object(m)
}

fn network(n: &Network, json: bool) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), Json::String(n.name.clone()));
    if let Some(d) = &n.driver {
        m.insert("driver".into(), Json::String(d.clone()));
    }
    if let Some(o) = n.extra.get("driver_opts") {
        m.insert("driver_opts".into(), o.clone());
    }
    match n.extra.get("ipam") {
        Some(i) => {
            m.insert("ipam".into(), i.clone());
        }
        None if json => {
            m.insert("ipam".into(), Json::Object(Map::new()));
        }
        None => {}
    }
    if n.external {
        m.insert("external".into(), Json::Bool(true));
    }
    if n.internal {
        m.insert("internal".into(), Json::Bool(true));
    }
    for (k, v) in &n.extra {
        if !m.contains_key(k) {
            m.insert(k.clone(), v.clone());
        }
    }
    if !n.labels.is_empty() {
        m.insert("labels".into(), string_map(&n.labels));
    }
    Json::Object(m)
}

fn volume(v: &Volume) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), Json::String(v.name.clone()));
    if let Some(d) = &v.driver {
        m.insert("driver".into(), Json::String(d.clone()));
    }
    for (k, x) in &v.extra {
        m.insert(k.clone(), x.clone());
    }
    if v.external {
        m.insert("external".into(), Json::Bool(true));
    }
    if !v.labels.is_empty() {
        m.insert("labels".into(), string_map(&v.labels));
    }
    Json::Object(m)
}

fn file_object(o: &FileObject) -> Json {
    let mut m = Map::new();
    m.insert("name".into(), Json::String(o.name.clone()));
    if let Some(f) = &o.file {
        m.insert(
            "file".into(),
            Json::String(f.to_string_lossy().into_owned()),
        );
    }
    if let Some(e) = &o.environment {
        m.insert("environment".into(), Json::String(e.clone()));
    }
    if let Some(c) = &o.content {
        m.insert("content".into(), Json::String(c.clone()));
    }
    if o.external {
        m.insert("external".into(), Json::Bool(true));
    }
    for (k, v) in &o.extra {
        m.insert(k.clone(), v.clone());
    }
    Json::Object(m)
}

/// Block-style YAML for a JSON value, quoting every string that a YAML reader would otherwise
/// read as something else.
pub fn to_yaml(v: &Json) -> String {
    let mut out = String::new();
    match v {
        Json::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Json::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, m: &Map<String, Json>, indent: usize) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_string(k));
        out.push(':');
        write_value(out, v, indent, false);
    }
}

fn write_seq(out: &mut String, a: &[Json], indent: usize) {
    for v in a {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        write_value(out, v, indent, true);
    }
}

fn write_value(out: &mut String, v: &Json, indent: usize, in_seq: bool) {
    match v {
        Json::Object(m) if !m.is_empty() => {
            if in_seq {
                // First key on the dash's line, the rest aligned under it.
                let mut inner = String::new();
                write_map(&mut inner, m, indent + 2);
                out.push(' ');
                out.push_str(inner.trim_start());
            } else {
                out.push('\n');
                write_map(out, m, indent + 2);
            }
        }
        Json::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, indent + 2);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn scalar(v: &Json) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => yaml_string(s),
        Json::Array(_) => "[]".into(),
        Json::Object(_) => "{}".into(),
    }
}

/// A string as a YAML scalar: plain when that reads back as the same string, double-quoted
/// otherwise.
fn yaml_string(s: &str) -> String {
    let plain_ok = !s.is_empty()
        && matches!(crate::yaml::resolve_plain(s), crate::node::Value::Str(_))
        && !matches!(
            s,
            "yes" | "no" | "on" | "off" | "y" | "n" | "Yes" | "No" | "On" | "Off" | "YES" | "NO"
        )
        && !s.starts_with(|c: char| c.is_whitespace() || ",[]{}#&*!|>'\"%@`".contains(c))
        && !(s.starts_with(['-', '?', ':']) && (s.len() == 1 || s[1..].starts_with(' ')))
        && !s.ends_with(|c: char| c.is_whitespace() || c == ':')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(|c| c.is_control());
    if plain_ok {
        return s.to_string();
    }
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_quotes_what_would_change_type() {
        assert_eq!(yaml_string("8080"), "\"8080\"");
        assert_eq!(yaml_string("true"), "\"true\"");
        assert_eq!(yaml_string("no"), "\"no\"");
        assert_eq!(yaml_string(""), "\"\"");
        assert_eq!(yaml_string("nginx:1.25"), "nginx:1.25");
        assert_eq!(yaml_string("a: b"), "\"a: b\"");
        assert_eq!(yaml_string("- x"), "\"- x\"");
        assert_eq!(yaml_string("-"), "\"-\"");
        assert_eq!(yaml_string("--port"), "--port");
        assert_eq!(yaml_string("line\nbreak"), "\"line\\nbreak\"");
    }

    #[test]
    fn yaml_round_trips_through_our_parser() {
        let v: Json = serde_json::json!({
            "name": "p",
            "services": {"web": {"command": ["sh", "-c", "echo $$HOME: ok"], "ports": [{"mode": "ingress", "target": 80, "published": "8080"}], "environment": {"A": null, "B": "1"}}},
            "empty": {}
        });
        let text = to_yaml(&v);
        let node = crate::yaml::parse(&text, crate::node::FileId(0))
            .unwrap()
            .remove(0);
        assert_eq!(crate::decode::to_json(&node), v, "{text}");
    }
}
