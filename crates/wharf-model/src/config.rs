//! The normalised project as `docker compose config` prints it.
//!
//! Same key names and shapes as Docker Compose v2 (compose-go v2 marshalled by go-yaml v3 and
//! `encoding/json`): objects in compose-go's struct field order, with `x-*` extensions last in YAML
//! and left out in JSON (except at the top level); Go maps (services, environment, labels, ...) in
//! sorted key order, which is go-yaml's natural order in YAML and byte order in JSON; environment
//! as a mapping with the env files merged in; ports, volumes, depends_on, secrets and configs in
//! long form; `healthcheck.test`, `command` and `entrypoint` as lists; durations as Go prints them
//! (`1m30s`). In JSON, `command` and `entrypoint` are always present (`null` when unset), networks
//! carry an empty `ipam`, the top-level keys are sorted and `<`, `>`, `&` are escaped, as Go's
//! `json.MarshalIndent` of a map does; the YAML form leaves empty values out and quotes strings as
//! go-yaml does.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde_json::{Map, Value as Json};

use crate::duration::format_duration;
use crate::project::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Yaml,
    Json,
}

/// compose-go's `ServiceConfig` fields, in declaration order (the order of both its YAML and its
/// JSON form).
const SERVICE_ORDER: &[&str] = &[
    "profiles",
    "annotations",
    "attach",
    "build",
    "develop",
    "blkio_config",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "cgroup",
    "cpu_count",
    "cpu_percent",
    "cpu_period",
    "cpu_quota",
    "cpu_rt_period",
    "cpu_rt_runtime",
    "cpus",
    "cpuset",
    "cpu_shares",
    "command",
    "configs",
    "container_name",
    "credential_spec",
    "depends_on",
    "deploy",
    "device_cgroup_rules",
    "devices",
    "dns",
    "dns_opt",
    "dns_search",
    "dockerfile",
    "domainname",
    "entrypoint",
    "provider",
    "environment",
    "env_file",
    "expose",
    "extends",
    "external_links",
    "extra_hosts",
    "group_add",
    "gpus",
    "hostname",
    "healthcheck",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "label_file",
    "links",
    "logging",
    "log_driver",
    "log_opt",
    "mem_limit",
    "mem_reservation",
    "memswap_limit",
    "mem_swappiness",
    "mac_address",
    "models",
    "net",
    "network_mode",
    "networks",
    "oom_kill_disable",
    "oom_score_adj",
    "pid",
    "pids_limit",
    "platform",
    "ports",
    "privileged",
    "pull_policy",
    "read_only",
    "restart",
    "runtime",
    "scale",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "storage_opt",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "use_api_socket",
    "user",
    "userns_mode",
    "uts",
    "volume_driver",
    "volumes",
    "volumes_from",
    "working_dir",
    "post_start",
    "pre_stop",
];
/// compose-go's `BuildConfig` fields.
const BUILD_ORDER: &[&str] = &[
    "context",
    "dockerfile",
    "dockerfile_inline",
    "entitlements",
    "args",
    "ssh",
    "labels",
    "cache_from",
    "cache_to",
    "no_cache",
    "additional_contexts",
    "network",
    "provenance",
    "sbom",
    "pull",
    "target",
    "shm_size",
    "extra_hosts",
    "isolation",
    "privileged",
    "secrets",
    "tags",
    "ulimits",
    "platforms",
];
/// compose-go's `ServiceNetworkConfig` fields.
const SERVICE_NETWORK_ORDER: &[&str] = &[
    "aliases",
    "driver_opts",
    "gw_priority",
    "interface_name",
    "ipv4_address",
    "ipv6_address",
    "link_local_ips",
    "mac_address",
    "priority",
];
/// compose-go's `NetworkConfig` fields.
const NETWORK_ORDER: &[&str] = &[
    "name",
    "driver",
    "driver_opts",
    "ipam",
    "external",
    "internal",
    "attachable",
    "labels",
    "enable_ipv4",
    "enable_ipv6",
];
/// compose-go's `VolumeConfig` fields.
const VOLUME_ORDER: &[&str] = &["name", "driver", "driver_opts", "external", "labels"];
/// compose-go's `FileObjectConfig` fields (secrets and configs).
const FILE_OBJECT_ORDER: &[&str] = &[
    "name",
    "file",
    "environment",
    "content",
    "external",
    "labels",
    "driver",
    "driver_opts",
    "template_driver",
];

/// The project as a JSON value in `docker compose config` shape.
pub fn to_value(p: &Project, format: Format) -> Json {
    let json = format == Format::Json;
    let mut top = Map::new();
    top.insert("name".into(), Json::String(p.name.clone()));
    let services = p
        .services
        .values()
        .map(|s| (s.name.clone(), service(s, format)));
    top.insert("services".into(), go_map(services, format));
    if !p.networks.is_empty() {
        let nets = p
            .networks
            .iter()
            .map(|(k, n)| (k.clone(), network(n, format)));
        top.insert("networks".into(), go_map(nets, format));
    }
    if !p.volumes.is_empty() {
        let vols = p
            .volumes
            .iter()
            .map(|(k, v)| (k.clone(), volume(v, format)));
        top.insert("volumes".into(), go_map(vols, format));
    }
    if !p.secrets.is_empty() {
        let s = p
            .secrets
            .iter()
            .map(|(k, v)| (k.clone(), file_object(v, format)));
        top.insert("secrets".into(), go_map(s, format));
    }
    if !p.configs.is_empty() {
        let c = p
            .configs
            .iter()
            .map(|(k, v)| (k.clone(), file_object(v, format)));
        top.insert("configs".into(), go_map(c, format));
    }
    // compose-go's `Project.Models` comes after `Configs`; models are untyped here.
    if !p.models.is_empty() {
        let m = p
            .models
            .iter()
            .map(|(k, v)| (k.clone(), go_value(v, format)));
        top.insert("models".into(), go_map(m, format));
    }
    // Extensions are untyped (Go maps all the way down).
    let extensions = p
        .extensions
        .iter()
        .map(|(k, v)| (k.clone(), go_value(v, format)));
    if json {
        // compose-go marshals the top level of its JSON form as a Go map: every key sorted.
        return go_map(top.into_iter().chain(extensions), format);
    }
    if let Json::Object(ext) = go_map(extensions, format) {
        top.extend(ext);
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
            go_json_escape(&s)
        }
        Format::Yaml => to_yaml(&value),
    }
}

/// The untyped model ([`crate::load_model`]) as `docker compose config --no-interpolate` prints
/// it (`formatModel`): a Go map all the way down, every mapping's keys sorted; YAML with a
/// two-space indent, or JSON indented by two spaces (`json.MarshalIndent`, which ends without a
/// line break).
pub fn render_model(model: &crate::node::Node, format: Format) -> String {
    let value = go_value(&node_value(model), format);
    match format {
        Format::Json => go_json_escape(&serde_json::to_string_pretty(&value).unwrap_or_default()),
        Format::Yaml => to_yaml(&value),
    }
}

fn node_value(n: &crate::node::Node) -> Json {
    use crate::node::Value;
    match &n.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => Json::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(node_value).collect()),
        Value::Map(m) => Json::Object(
            m.iter()
                .map(|(k, e)| (k.clone(), node_value(&e.node)))
                .collect(),
        ),
    }
}

/// How `config --variables` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VariablesFormat {
    /// docker/compose's `formatter.Print` table (its default): NAME, REQUIRED, DEFAULT VALUE,
    /// ALTERNATE VALUE, aligned as Go's `tabwriter` (minimum width 20, padding 3) aligns them.
    Table,
    /// The map of `template.Variable`s by name, indented by four spaces (`ToStandardJSON`).
    Json,
    /// The same map as go-yaml's `Marshal` writes it (four-space indent, lower-case field names).
    Yaml,
}

/// The variables of [`crate::load::model_variables`] as `docker compose config --variables`
/// prints them, sorted by name (Compose prints its table in Go's random map order).
pub fn render_variables(
    vars: &BTreeMap<String, crate::interpolate::Variable>,
    format: VariablesFormat,
) -> String {
    match format {
        VariablesFormat::Table => {
            let mut rows = vec![[
                "NAME".to_string(),
                "REQUIRED".to_string(),
                "DEFAULT VALUE".to_string(),
                "ALTERNATE VALUE".to_string(),
            ]];
            for v in vars.values() {
                rows.push([
                    v.name.clone(),
                    v.required.to_string(),
                    v.default_value.clone(),
                    v.presence_value.clone(),
                ]);
            }
            let mut widths = [0usize; 3];
            for row in &rows {
                for (w, cell) in widths.iter_mut().zip(row.iter()) {
                    *w = (*w).max(cell.chars().count() + 3).max(20);
                }
            }
            let mut out = String::new();
            for row in &rows {
                for (w, cell) in widths.iter().zip(row.iter()) {
                    out.push_str(cell);
                    out.push_str(&" ".repeat(w - cell.chars().count()));
                }
                out.push_str(&row[3]);
                out.push('\n');
            }
            out
        }
        VariablesFormat::Json => {
            let mut top = Map::new();
            for (k, v) in vars {
                let mut m = Map::new();
                m.insert("Name".into(), Json::String(v.name.clone()));
                m.insert("DefaultValue".into(), Json::String(v.default_value.clone()));
                m.insert(
                    "PresenceValue".into(),
                    Json::String(v.presence_value.clone()),
                );
                m.insert("Required".into(), Json::Bool(v.required));
                top.insert(k.clone(), Json::Object(m));
            }
            let mut buf = Vec::new();
            let formatter = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
            serde::Serialize::serialize(&Json::Object(top), &mut ser).unwrap_or_default();
            // docker/compose's `ToStandardJSON`: no HTML escaping.
            let mut s = String::from_utf8(buf).unwrap_or_default();
            s.push('\n');
            s
        }
        VariablesFormat::Yaml => {
            if vars.is_empty() {
                return "{}\n".into();
            }
            let mut names: Vec<&String> = vars.keys().collect();
            names.sort_by(|a, b| yaml_key_order(a, b));
            let mut out = String::new();
            for name in names {
                let v = &vars[name];
                out.push_str(&format!(
                    "{}:\n    name: {}\n    defaultvalue: {}\n    presencevalue: {}\n    required: {}\n",
                    yaml_string(name, None),
                    yaml_string(&v.name, Some(8)),
                    yaml_string(&v.default_value, Some(8)),
                    yaml_string(&v.presence_value, Some(8)),
                    v.required
                ));
            }
            out
        }
    }
}

/// Go's `encoding/json` escapes `<`, `>` and `&` (and U+2028, U+2029) in strings; in JSON text
/// these characters only occur inside strings, so replacing them anywhere is safe.
fn go_json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// A Go map as its encoder writes it: keys sorted, in go-yaml's natural order for YAML and in
/// byte order for JSON.
fn go_map(entries: impl IntoIterator<Item = (String, Json)>, format: Format) -> Json {
    let mut entries: Vec<(String, Json)> = entries.into_iter().collect();
    match format {
        Format::Yaml => entries.sort_by(|a, b| yaml_key_order(&a.0, &b.0)),
        Format::Json => entries.sort_by(|a, b| a.0.cmp(&b.0)),
    }
    Json::Object(entries.into_iter().collect())
}

/// An untyped value (extensions): every mapping in it is a Go map.
fn go_value(v: &Json, format: Format) -> Json {
    match v {
        Json::Object(m) => go_map(
            m.iter().map(|(k, v)| (k.clone(), go_value(v, format))),
            format,
        ),
        Json::Array(a) => Json::Array(a.iter().map(|v| go_value(v, format)).collect()),
        other => other.clone(),
    }
}

/// A Go struct as its encoder writes it: the fields in declaration order (`order`), then fields
/// we do not know the place of, then the inline `x-*` extensions, which go-yaml writes sorted
/// and `encoding/json` leaves out.
fn go_struct(mut fields: BTreeMap<String, Json>, order: &[&str], format: Format) -> Json {
    let mut out = Map::new();
    for key in order {
        if let Some(v) = fields.remove(*key) {
            out.insert((*key).to_string(), v);
        }
    }
    let (extensions, rest): (Vec<_>, Vec<_>) =
        fields.into_iter().partition(|(k, _)| k.starts_with("x-"));
    out.extend(rest);
    if format == Format::Yaml {
        let extensions = extensions
            .into_iter()
            .map(|(k, v)| (k, go_value(&v, format)));
        if let Json::Object(ext) = go_map(extensions, format) {
            out.extend(ext);
        }
    }
    Json::Object(out)
}

/// go-yaml v3's order of map keys (`keyList.Less` in `sorter.go`): letters compare as characters,
/// other characters sort before letters (after them when they follow a digit), and runs of digits
/// compare as numbers, so `a_b` < `aB` and `x9` < `x10`.
pub fn yaml_key_order(a: &str, b: &str) -> Ordering {
    if yaml_key_less(a, b) {
        Ordering::Less
    } else if yaml_key_less(b, a) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

fn yaml_key_less(a: &str, b: &str) -> bool {
    let ar: Vec<char> = a.chars().collect();
    let br: Vec<char> = b.chars().collect();
    let digit = |c: char| c.to_digit(10).map(i64::from);
    let mut digits = false;
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            digits = ar[i].is_ascii_digit();
            i += 1;
            continue;
        }
        let al = ar[i].is_alphabetic();
        let bl = br[i].is_alphabetic();
        if al && bl {
            return ar[i] < br[i];
        }
        if al || bl {
            return if digits { al } else { bl };
        }
        let (mut an, mut bn) = (0i64, 0i64);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while let Some(d) = ar
            .get(ai)
            .copied()
            .filter(char::is_ascii_digit)
            .and_then(digit)
        {
            an = an.wrapping_mul(10).wrapping_add(d);
            ai += 1;
        }
        let mut bi = i;
        while let Some(d) = br
            .get(bi)
            .copied()
            .filter(char::is_ascii_digit)
            .and_then(digit)
        {
            bn = bn.wrapping_mul(10).wrapping_add(d);
            bi += 1;
        }
        if an != bn {
            return an < bn;
        }
        if ai != bi {
            return ai < bi;
        }
        return ar[i] < br[i];
    }
    ar.len() < br.len()
}

fn strings(v: &[String]) -> Json {
    Json::Array(v.iter().cloned().map(Json::String).collect())
}

fn string_map(m: &BTreeMap<String, String>, format: Format) -> Json {
    go_map(
        m.iter().map(|(k, v)| (k.clone(), Json::String(v.clone()))),
        format,
    )
}

fn optional_string_map(m: &BTreeMap<String, Option<String>>, format: Format) -> Json {
    go_map(
        m.iter()
            .map(|(k, v)| (k.clone(), v.clone().map(Json::String).unwrap_or(Json::Null))),
        format,
    )
}

/// One service as `docker compose config --format json` prints it.
pub fn service_value(s: &Service) -> Json {
    service(s, Format::Json)
}

fn service(s: &Service, format: Format) -> Json {
    let json = format == Format::Json;
    let mut out: BTreeMap<String, Json> = s.extra.clone();
    if let Some(hosts) = out.get_mut("extra_hosts") {
        *hosts = extra_hosts(hosts);
    }
    if let Some(Json::Object(deploy)) = out.get_mut("deploy")
        && let Some(labels) = deploy.get_mut("labels")
    {
        *labels = label_map(labels);
    }
    if let Some(image) = &s.image {
        out.insert("image".into(), Json::String(image.clone()));
    }
    if let Some(b) = &s.build {
        let mut m = BTreeMap::new();
        m.insert("context".into(), Json::String(b.context.clone()));
        if b.dockerfile.is_some() || !b.extra.contains_key("dockerfile_inline") {
            let dockerfile = b.dockerfile.clone().unwrap_or_else(|| "Dockerfile".into());
            m.insert("dockerfile".into(), Json::String(dockerfile));
        }
        if !b.args.is_empty() {
            m.insert("args".into(), optional_string_map(&b.args, format));
        }
        if let Some(t) = &b.target {
            m.insert("target".into(), Json::String(t.clone()));
        }
        if !b.labels.is_empty() {
            m.insert("labels".into(), string_map(&b.labels, format));
        }
        for (k, v) in &b.extra {
            let v = match k.as_str() {
                "extra_hosts" => extra_hosts(v),
                "secrets" => octal_modes(v),
                _ => v.clone(),
            };
            m.insert(k.clone(), v);
        }
        out.insert("build".into(), go_struct(m, BUILD_ORDER, format));
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
        out.insert(
            "environment".into(),
            optional_string_map(&s.environment, format),
        );
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
        let deps = s.depends_on.iter().map(|(k, d)| {
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
        });
        out.insert("depends_on".into(), go_map(deps, format));
    }
    if let Some(h) = &s.healthcheck {
        out.insert("healthcheck".into(), healthcheck(h));
    }
    if !s.networks.is_empty() {
        let nets = s.networks.iter().map(|(k, n)| {
            let v = n
                .as_ref()
                .map(|n| service_network(n, format))
                .unwrap_or(Json::Null);
            (k.clone(), v)
        });
        out.insert("networks".into(), go_map(nets, format));
    }
    if let Some(mode) = &s.network_mode {
        out.insert("network_mode".into(), Json::String(mode.to_string()));
    }
    if let Some(d) = s.stop_grace_period {
        out.insert("stop_grace_period".into(), Json::String(format_duration(d)));
    }
    if !s.labels.is_empty() {
        out.insert("labels".into(), string_map(&s.labels, format));
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
    go_struct(out, SERVICE_ORDER, format)
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

fn service_network(n: &ServiceNetwork, format: Format) -> Json {
    let mut m: BTreeMap<String, Json> = n.extra.clone();
    if !n.aliases.is_empty() {
        m.insert("aliases".into(), strings(&n.aliases));
    }
    if let Some(a) = &n.ipv4_address {
        m.insert("ipv4_address".into(), Json::String(a.clone()));
    }
    if let Some(a) = &n.ipv6_address {
        m.insert("ipv6_address".into(), Json::String(a.clone()));
    }
    go_struct(m, SERVICE_NETWORK_ORDER, format)
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
        m.insert("mode".into(), Json::String(octal_mode(u64::from(mode))));
    }
    Json::Object(m)
}

/// A file mode as compose-go's `FileMode` marshals it, in YAML and JSON alike: `0` and the octal
/// digits, as a string (`0440`).
fn octal_mode(mode: u64) -> String {
    format!("0{mode:o}")
}

/// The `mode` of each entry of a list of file references (`build.secrets`) as [`octal_mode`].
fn octal_modes(list: &Json) -> Json {
    let mut list = list.clone();
    if let Json::Array(items) = &mut list {
        for item in items {
            if let Some(mode) = item.get_mut("mode")
                && let Some(n) = mode.as_u64()
            {
                *mode = Json::String(octal_mode(n));
            }
        }
    }
    list
}

/// `extra_hosts` as compose-go's `HostsList` marshals it: a sorted list of `host=ip`, whether it
/// was written as a list (`host:ip`, `host=ip`, several comma-separated addresses) or a mapping
/// (an address or a list of them per host), with brackets around IPv6 addresses removed.
fn extra_hosts(value: &Json) -> Json {
    let mut pairs: Vec<(String, String)> = Vec::new();
    match value {
        Json::Array(items) => {
            for item in items.iter().filter_map(Json::as_str) {
                // compose-go's `NewHostsList`: `=` first, then `:`.
                let Some((host, ips)) = item.split_once('=').or_else(|| item.split_once(':'))
                else {
                    continue;
                };
                pairs.extend(ips.split(',').map(|ip| (host.to_string(), ip.to_string())));
            }
        }
        Json::Object(map) => {
            for (host, ips) in map {
                match ips {
                    Json::Array(list) => {
                        pairs.extend(list.iter().map(|ip| (host.clone(), json_scalar_text(ip))))
                    }
                    ip => pairs.push((host.clone(), json_scalar_text(ip))),
                }
            }
        }
        other => return other.clone(),
    }
    let mut list: Vec<String> = pairs
        .into_iter()
        .map(|(host, ip)| {
            let ip = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .filter(|i| !i.is_empty())
                .unwrap_or(&ip);
            format!("{host}={ip}")
        })
        .collect();
    list.sort();
    Json::Array(list.into_iter().map(Json::String).collect())
}

/// A scalar as text (`null` as the empty string, as compose-go reads it in `extra_hosts`).
fn json_scalar_text(v: &Json) -> String {
    match v {
        Json::Null => String::new(),
        Json::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Labels written as a list (`key=value`, or `key` for an empty value) as the mapping compose-go's
/// `Labels` marshals.
fn label_map(value: &Json) -> Json {
    match value {
        Json::Array(items) => Json::Object(
            items
                .iter()
                .filter_map(Json::as_str)
                .map(|item| {
                    let (k, v) = item.split_once('=').unwrap_or((item, ""));
                    (k.to_string(), Json::String(v.to_string()))
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn network(n: &Network, format: Format) -> Json {
    let mut m: BTreeMap<String, Json> = n.extra.clone();
    m.insert("name".into(), Json::String(n.name.clone()));
    if let Some(d) = &n.driver {
        m.insert("driver".into(), Json::String(d.clone()));
    }
    if let Some(Json::Object(o)) = n.extra.get("driver_opts") {
        m.insert("driver_opts".into(), go_map(o.clone(), format));
    }
    if format == Format::Json && !m.contains_key("ipam") {
        // A struct, not a pointer, in compose-go: `encoding/json` writes it even when empty.
        m.insert("ipam".into(), Json::Object(Map::new()));
    }
    if n.external {
        m.insert("external".into(), Json::Bool(true));
    }
    if n.internal {
        m.insert("internal".into(), Json::Bool(true));
    }
    if !n.labels.is_empty() {
        m.insert("labels".into(), string_map(&n.labels, format));
    }
    go_struct(m, NETWORK_ORDER, format)
}

fn volume(v: &Volume, format: Format) -> Json {
    let mut m: BTreeMap<String, Json> = v.extra.clone();
    m.insert("name".into(), Json::String(v.name.clone()));
    if let Some(d) = &v.driver {
        m.insert("driver".into(), Json::String(d.clone()));
    }
    if let Some(Json::Object(o)) = v.extra.get("driver_opts") {
        m.insert("driver_opts".into(), go_map(o.clone(), format));
    }
    if v.external {
        m.insert("external".into(), Json::Bool(true));
    }
    if !v.labels.is_empty() {
        m.insert("labels".into(), string_map(&v.labels, format));
    }
    go_struct(m, VOLUME_ORDER, format)
}

fn file_object(o: &FileObject, format: Format) -> Json {
    let mut m: BTreeMap<String, Json> = o.extra.clone();
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
    if let Some(Json::Object(l)) = o.extra.get("labels") {
        m.insert("labels".into(), go_map(l.clone(), format));
    }
    go_struct(m, FILE_OBJECT_ORDER, format)
}

/// Block-style YAML for a JSON value, as go-yaml v3 writes it (two-space indent, sequences indented
/// under their key, strings quoted only when they must be).
pub fn to_yaml(v: &Json) -> String {
    let mut out = String::new();
    match v {
        Json::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Json::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn write_map(out: &mut String, m: &Map<String, Json>, indent: usize) {
    for (k, v) in m {
        out.push_str(&" ".repeat(indent));
        out.push_str(&yaml_string(k, None));
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
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

/// A scalar value; `indent` is where the lines of a literal block start.
fn scalar(v: &Json, indent: usize) -> String {
    match v {
        Json::Null => "null".into(),
        Json::Bool(b) => b.to_string(),
        Json::Number(n) => n.to_string(),
        Json::String(s) => yaml_string(s, Some(indent)),
        Json::Array(_) => "[]".into(),
        Json::Object(_) => "{}".into(),
    }
}

/// A string as go-yaml v3 writes it: double-quoted when the plain text would read back as another
/// type (`"8080"`, `"true"`, `"yes"`, `""`, `"12:30"`); a literal block (`|`) when it has line
/// breaks; plain when the YAML emitter allows it; single-quoted (`'[::]:80'`, `'a: b'`) when only
/// the indicators in it forbid plain; double-quoted when even that is not allowed (tabs, control
/// characters). `block_indent` is `None` for a mapping key (which is never a block).
fn yaml_string(s: &str, block_indent: Option<usize>) -> String {
    let resolves_to_string = matches!(crate::yaml::resolve_plain(s), crate::node::Value::Str(_))
        && !is_old_bool(s)
        && !BASE60_FLOAT.is_match(s);
    let a = analyze_scalar(s);
    if s.contains('\n') {
        return match block_indent {
            Some(indent) if a.block_allowed => literal_block(s, indent),
            _ => double_quoted(s),
        };
    }
    if !resolves_to_string {
        return double_quoted(s);
    }
    if a.plain_allowed {
        s.to_string()
    } else if a.single_quoted_allowed {
        format!("'{}'", s.replace('\'', "''"))
    } else {
        double_quoted(s)
    }
}

/// YAML 1.1 booleans that go-yaml v3 reads as strings but still quotes when writing.
fn is_old_bool(s: &str) -> bool {
    matches!(
        s,
        "y" | "Y"
            | "yes"
            | "Yes"
            | "YES"
            | "n"
            | "N"
            | "no"
            | "No"
            | "NO"
            | "on"
            | "On"
            | "ON"
            | "off"
            | "Off"
            | "OFF"
    )
}

/// YAML 1.1 sexagesimal numbers (`12:30`), which go-yaml v3 quotes when writing.
static BASE60_FLOAT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?$").expect("valid regex")
});

struct ScalarAnalysis {
    plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

/// libyaml's `yaml_emitter_analyze_scalar`, for the block context.
fn analyze_scalar(s: &str) -> ScalarAnalysis {
    if s.is_empty() {
        return ScalarAnalysis {
            plain_allowed: true,
            single_quoted_allowed: true,
            block_allowed: false,
        };
    }
    let is_break = |c: char| matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}');
    let is_blank = |c: char| c == ' ' || c == '\t';
    let printable = |c: char| {
        matches!(c, '\n' | '\u{20}'..='\u{7e}' | '\u{85}' | '\u{a0}'..='\u{d7ff}' | '\u{e000}'..='\u{fffd}' | '\u{10000}'..)
            && c != '\u{feff}'
    };
    let mut block_indicators = s.starts_with("---") || s.starts_with("...");
    let (mut line_breaks, mut special, mut tabs) = (false, false, false);
    let (mut leading_space, mut leading_break, mut trailing_space, mut trailing_break) =
        (false, false, false, false);
    let (mut break_space, mut space_break) = (false, false);
    let (mut previous_space, mut previous_break) = (false, false);
    let mut preceded_by_whitespace = true;
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let last = i + 1 == chars.len();
        let followed_by_whitespace = chars.get(i + 1).is_none_or(|&n| is_blank(n) || is_break(n));
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"'
                | '%' | '@' | '`' => {
                    block_indicators = true;
                }
                '?' | ':' | '-' if followed_by_whitespace => block_indicators = true,
                _ => {}
            }
        } else if (c == ':' && followed_by_whitespace) || (c == '#' && preceded_by_whitespace) {
            block_indicators = true;
        }
        if c == '\t' {
            tabs = true;
        } else if !printable(c) {
            special = true;
        }
        if c == ' ' {
            leading_space |= i == 0;
            trailing_space |= last;
            break_space |= previous_break;
            previous_space = true;
            previous_break = false;
        } else if is_break(c) {
            line_breaks = true;
            leading_break |= i == 0;
            trailing_break |= last;
            space_break |= previous_space;
            previous_space = false;
            previous_break = true;
        } else {
            previous_space = false;
            previous_break = false;
        }
        preceded_by_whitespace = is_blank(c) || is_break(c) || c == '\0';
    }
    let mut a = ScalarAnalysis {
        plain_allowed: true,
        single_quoted_allowed: true,
        block_allowed: true,
    };
    if leading_space || leading_break || trailing_space || trailing_break {
        a.plain_allowed = false;
    }
    if trailing_space {
        a.block_allowed = false;
    }
    if break_space {
        a.plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || tabs || special {
        a.plain_allowed = false;
        a.single_quoted_allowed = false;
    }
    if space_break || special {
        a.block_allowed = false;
    }
    if line_breaks || block_indicators {
        a.plain_allowed = false;
    }
    a
}

/// A literal block scalar with go-yaml's indentation and chomping indicators; its lines start at
/// column `indent`.
fn literal_block(s: &str, indent: usize) -> String {
    let mut out = String::from("|");
    if s.starts_with([' ', '\n']) {
        out.push('2');
    }
    let content = match s.strip_suffix('\n') {
        None => {
            out.push('-');
            s
        }
        Some(rest) => {
            if rest.is_empty() || rest.ends_with('\n') {
                out.push('+');
            }
            rest
        }
    };
    let pad = " ".repeat(indent);
    for line in content.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    out
}

/// A double-quoted scalar with go-yaml's escapes.
fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\0' => out.push_str("\\0"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{b}' => out.push_str("\\v"),
            '\u{c}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            '\u{1b}' => out.push_str("\\e"),
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{85}' => out.push_str("\\N"),
            '\u{a0}' => out.push_str("\\_"),
            '\u{2028}' => out.push_str("\\L"),
            '\u{2029}' => out.push_str("\\P"),
            c if (c as u32) < 0x20
                || c == '\u{7f}'
                || ('\u{80}'..'\u{a0}').contains(&c)
                || c == '\u{feff}' =>
            {
                let code = c as u32;
                if code <= 0xff {
                    out.push_str(&format!("\\x{code:02X}"));
                } else {
                    out.push_str(&format!("\\u{code:04X}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_quotes_what_would_change_type() {
        assert_eq!(yaml_string("8080", Some(0)), "\"8080\"");
        assert_eq!(yaml_string("true", Some(0)), "\"true\"");
        assert_eq!(yaml_string("no", Some(0)), "\"no\"");
        assert_eq!(yaml_string("", Some(0)), "\"\"");
        assert_eq!(yaml_string("12:30", Some(0)), "\"12:30\"");
        assert_eq!(yaml_string("nginx:1.25", Some(0)), "nginx:1.25");
        assert_eq!(yaml_string("--port", Some(0)), "--port");
        assert_eq!(yaml_string("a#b", Some(0)), "a#b");
    }

    // Regression: indicators were escaped with JSON double quotes; go-yaml single-quotes them.
    #[test]
    fn yaml_single_quotes_indicators_like_go_yaml() {
        assert_eq!(yaml_string("a: b", Some(0)), "'a: b'");
        assert_eq!(yaml_string("- x", Some(0)), "'- x'");
        assert_eq!(yaml_string("-", Some(0)), "'-'");
        assert_eq!(yaml_string("[::]:80", Some(0)), "'[::]:80'");
        assert_eq!(yaml_string("*.example.org", Some(0)), "'*.example.org'");
        assert_eq!(yaml_string("it's # not", Some(0)), "'it''s # not'");
        assert_eq!(yaml_string(" padded", Some(0)), "' padded'");
        assert_eq!(yaml_string("a\tb", Some(0)), "\"a\\tb\"");
    }

    #[test]
    fn yaml_writes_multiline_strings_as_literal_blocks() {
        assert_eq!(yaml_string("a\nb", Some(4)), "|-\n    a\n    b");
        assert_eq!(yaml_string("a\n\nb\n", Some(2)), "|\n  a\n\n  b");
        assert_eq!(yaml_string("a\n\n", Some(2)), "|+\n  a\n");
        assert_eq!(yaml_string(" a\nb", Some(2)), "|2-\n   a\n  b");
        assert_eq!(yaml_string("line\nbreak", None), "\"line\\nbreak\"");
        let v = serde_json::json!({"k": {"script": "set -e\necho hi\n"}});
        assert_eq!(to_yaml(&v), "k:\n  script: |\n    set -e\n    echo hi\n");
    }

    // Regression: map keys were in byte order; go-yaml sorts them in its natural order.
    #[test]
    fn yaml_map_keys_in_go_yaml_order() {
        let mut keys = vec!["DBA", "DB_HOST", "x10", "x9", "a", "B", "a1b", "a01"];
        keys.sort_by(|a, b| yaml_key_order(a, b));
        assert_eq!(
            keys,
            ["B", "DB_HOST", "DBA", "a", "a1b", "a01", "x9", "x10"]
        );
    }

    #[test]
    fn yaml_round_trips_through_our_parser() {
        let v: Json = serde_json::json!({
            "name": "p",
            "services": {"web": {"command": ["sh", "-c", "echo $$HOME: ok", "a\n b\n"], "ports": [{"mode": "ingress", "target": 80, "published": "8080"}], "environment": {"A": null, "B": "1", "C": "[::]:80", "D": "x: 'y'"}}},
            "empty": {}
        });
        let text = to_yaml(&v);
        let node = crate::yaml::parse(&text, crate::node::FileId(0))
            .unwrap()
            .remove(0);
        assert_eq!(crate::decode::to_json(&node), v, "{text}");
    }

    // Regression: JSON kept `<`, `>`, `&` as is; Go's encoder escapes them.
    #[test]
    fn json_escapes_like_go() {
        assert_eq!(
            go_json_escape("{\"c\": \"a && b > c\"}"),
            "{\"c\": \"a \\u0026\\u0026 b \\u003e c\"}"
        );
    }

    // Regression: service keys were sorted; compose-go writes its struct fields in order.
    #[test]
    fn objects_follow_compose_go_field_order() {
        let mut fields = BTreeMap::new();
        for k in ["x-b", "healthcheck", "hostname", "profiles", "x-a", "image"] {
            fields.insert(k.to_string(), Json::Null);
        }
        let yaml = go_struct(fields.clone(), SERVICE_ORDER, Format::Yaml);
        let keys: Vec<&String> = yaml.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["profiles", "hostname", "healthcheck", "image", "x-a", "x-b"]
        );
        let json = go_struct(fields, SERVICE_ORDER, Format::Json);
        let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["profiles", "hostname", "healthcheck", "image"]);
    }
}
