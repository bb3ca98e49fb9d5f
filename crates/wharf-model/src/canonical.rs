//! One file's tree, after interpolation, rewritten into the long forms of every short syntax, with
//! relative paths made absolute.
//!
//! Docker Compose puts each file into this canonical shape before merging, so that a port written
//! `"8080:80"` in one file and in long form in an override are recognised as the same port, and a
//! `depends_on` list merges with a `depends_on` mapping. Spans of the original values are kept.

use std::path::{Component, Path, PathBuf};

use crate::diag::Diagnostic;
use crate::node::{Entry, Mapping, Node, Span, Tag, Value};
use crate::port_spec::parse_port;
use crate::volume_spec::{VolumeKind, parse_volume};

/// Rewrites the services of `root` in place. `base` is the directory relative paths resolve
/// against (the project directory for the files given with `-f`, the file's own directory for a
/// file reached through `extends` or `include`). `lenient` (a tree that was not interpolated)
/// keeps what does not parse as written instead of reporting it, as compose-go's
/// `ignoreParseError` does: a `${FLAG}` at a boolean key, a port or volume with a variable.
pub fn canonicalize(
    root: &mut Node,
    base: &Path,
    home: Option<&Path>,
    lenient: bool,
    errors: &mut Vec<Diagnostic>,
) {
    cast_booleans(root, errors, !lenient);
    let Some(top) = root.as_map_mut() else {
        return;
    };
    if let Some(services) = top.get_mut("services").and_then(|e| e.node.as_map_mut()) {
        for entry in services.values_mut() {
            if let Some(service) = entry.node.as_map_mut() {
                canonicalize_service(service, base, home, lenient, errors);
            }
        }
    }
    for kind in ["secrets", "configs"] {
        if let Some(objects) = top.get_mut(kind).and_then(|e| e.node.as_map_mut()) {
            for entry in objects.values_mut() {
                if let Some(file) = entry
                    .node
                    .as_map_mut()
                    .and_then(|m| m.get_mut("file"))
                    .map(|e| &mut e.node)
                {
                    absolutize_node(file, base, home);
                }
            }
        }
    }
    for kind in ["networks", "volumes"] {
        if let Some(objects) = top.get_mut(kind).and_then(|e| e.node.as_map_mut()) {
            for entry in objects.values_mut() {
                if let Some(m) = entry.node.as_map_mut() {
                    to_string_map(m, "labels");
                    to_string_map(m, "driver_opts");
                }
            }
        }
    }
}

/// The boolean keys of a service (and of a `pre_start` hook's container), as paths below it: `*`
/// is any key of a mapping, `[]` any item of a list.
const SERVICE_BOOLEANS: &[&[&str]] = &[
    &["attach"],
    &["build", "no_cache"],
    &["build", "privileged"],
    &["build", "pull"],
    &["depends_on", "*", "required"],
    &["depends_on", "*", "restart"],
    &["develop", "watch", "[]", "initial_sync"],
    &["env_file", "[]", "required"],
    &["healthcheck", "disable"],
    &["init"],
    &["oom_kill_disable"],
    &["post_start", "[]", "privileged"],
    &["pre_start", "[]", "init"],
    &["pre_start", "[]", "oom_kill_disable"],
    &["pre_start", "[]", "per_replica"],
    &["pre_start", "[]", "privileged"],
    &["pre_start", "[]", "read_only"],
    &["pre_start", "[]", "volumes", "[]", "read_only"],
    &["pre_start", "[]", "volumes", "[]", "volume", "nocopy"],
    &["pre_stop", "[]", "privileged"],
    &["privileged"],
    &["read_only"],
    &["stdin_open"],
    &["tty"],
    &["use_api_socket"],
    &["volumes", "[]", "bind", "create_host_path"],
    &["volumes", "[]", "read_only"],
    &["volumes", "[]", "volume", "nocopy"],
];

/// The boolean keys of the top-level resources, as paths from the top.
const RESOURCE_BOOLEANS: &[&[&str]] = &[
    &["configs", "*", "external"],
    &["networks", "*", "attachable"],
    &["networks", "*", "enable_ipv4"],
    &["networks", "*", "enable_ipv6"],
    &["networks", "*", "external"],
    &["networks", "*", "internal"],
    &["secrets", "*", "external"],
    &["volumes", "*", "external"],
];

/// Strings at boolean keys made booleans, as compose-go's `toBoolean` (loader/interpolate.go) does
/// for the values its interpolation casts: `true` and `false` in any case; `y`, `yes`, `on`, `n`,
/// `no`, `off` in any case with a warning (YAML 1.1 booleans, which YAML 1.2 reads as strings, so
/// that `privileged: yes` does not silently run unprivileged). compose-go casts only part of the
/// schema's boolean keys (not `create_host_path`, `env_file.required`, `build.*`, hooks, ...);
/// wharf casts every one of them alike (`depends_on.*.required: no` included).
///
/// Run twice per file: before the schema check with `strict` false (literal values only; anything
/// else is left for the schema and for the second run), and after interpolation with `strict` true,
/// when any other string is an error as in compose-go (`invalid boolean`).
///
/// The walk reads each service's keys once and looks further only below the keys that start a
/// pattern ([`service_patterns`]); it allocates nothing unless it reports something, the path of
/// a value being built for its message only (callgrind: a lookup per pattern per service, and
/// every path built on the way, cost 5% of the instructions of loading 1,000 services).
pub(crate) fn cast_booleans(root: &mut Node, diagnostics: &mut Vec<Diagnostic>, strict: bool) {
    let Some(top) = root.as_map_mut() else {
        return;
    };
    if let Some(services) = top.get_mut("services").and_then(|e| e.node.as_map_mut()) {
        let at_services = At::top("services");
        for (name, service) in services.iter_mut() {
            let Value::Map(keys) = &mut service.node.value else {
                continue;
            };
            let at_service = at_services.key(name);
            // The messages of one service in the order of `SERVICE_BOOLEANS`, as when each
            // pattern was walked in turn: the runs of messages of each key, by first pattern.
            let mut runs: Vec<(usize, usize)> = Vec::new();
            for (key, e) in keys.iter_mut() {
                let range = service_patterns(key);
                if range.is_empty() {
                    continue;
                }
                let before = diagnostics.len();
                let at_key = at_service.key(key);
                for pattern in &SERVICE_BOOLEANS[range.clone()] {
                    cast_at(&mut e.node, &pattern[1..], &at_key, diagnostics, strict);
                }
                if diagnostics.len() > before {
                    runs.push((range.start, before));
                }
            }
            if !runs.is_sorted_by_key(|r| r.0) {
                let mut chunks: Vec<(usize, Vec<Diagnostic>)> = runs
                    .iter()
                    .rev()
                    .map(|&(pattern, from)| (pattern, diagnostics.split_off(from)))
                    .collect();
                chunks.sort_by_key(|c| c.0);
                for (_, chunk) in chunks {
                    diagnostics.extend(chunk);
                }
            }
        }
    }
    for pattern in RESOURCE_BOOLEANS {
        cast_at(root, pattern, &At::Root, diagnostics, strict);
    }
}

/// The patterns of [`SERVICE_BOOLEANS`] that start with `key` (the table is sorted by first key;
/// a test checks this function against it).
fn service_patterns(key: &str) -> std::ops::Range<usize> {
    match key {
        "attach" => 0..1,
        "build" => 1..4,
        "depends_on" => 4..6,
        "develop" => 6..7,
        "env_file" => 7..8,
        "healthcheck" => 8..9,
        "init" => 9..10,
        "oom_kill_disable" => 10..11,
        "post_start" => 11..12,
        "pre_start" => 12..19,
        "pre_stop" => 19..20,
        "privileged" => 20..21,
        "read_only" => 21..22,
        "stdin_open" => 22..23,
        "tty" => 23..24,
        "use_api_socket" => 24..25,
        "volumes" => 25..28,
        _ => 0..0,
    }
}

/// The place of a value, for messages: a chain of steps up to the root, on the stack, so that
/// nothing is allocated unless a message is written.
enum At<'a> {
    Root,
    Key(&'a str, &'a At<'a>),
    Index(usize, &'a At<'a>),
}

impl<'a> At<'a> {
    fn top(key: &'static str) -> At<'static> {
        At::Key(key, &At::Root)
    }

    fn key(&'a self, key: &'a str) -> At<'a> {
        At::Key(key, self)
    }
}

fn dotted(at: &At<'_>) -> String {
    let mut steps = Vec::new();
    let mut here = at;
    loop {
        match here {
            At::Root => break,
            At::Key(_, up) | At::Index(_, up) => {
                steps.push(here);
                here = up;
            }
        }
    }
    let mut out = String::new();
    for step in steps.iter().rev() {
        match step {
            At::Key(k, _) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            At::Index(i, _) => out.push_str(&format!("[{i}]")),
            At::Root => {}
        }
    }
    out
}

fn cast_at(
    node: &mut Node,
    parts: &[&'static str],
    at: &At<'_>,
    diagnostics: &mut Vec<Diagnostic>,
    strict: bool,
) {
    let Some((first, rest)) = parts.split_first() else {
        cast_boolean(node, at, diagnostics, strict);
        return;
    };
    match (*first, &mut node.value) {
        ("*", Value::Map(m)) => {
            for (k, e) in m.iter_mut() {
                cast_at(&mut e.node, rest, &at.key(k), diagnostics, strict);
            }
        }
        ("[]", Value::Seq(items)) => {
            for (i, item) in items.iter_mut().enumerate() {
                cast_at(item, rest, &At::Index(i, at), diagnostics, strict);
            }
        }
        (key, Value::Map(m)) => {
            if let Some(e) = m.get_mut(key) {
                cast_at(&mut e.node, rest, &at.key(key), diagnostics, strict);
            }
        }
        _ => {}
    }
}

fn cast_boolean(node: &mut Node, at: &At<'_>, diagnostics: &mut Vec<Diagnostic>, strict: bool) {
    let Value::Str(text) = &node.value else {
        return;
    };
    let (value, legacy) = match text.to_ascii_lowercase().as_str() {
        "true" => (true, false),
        "false" => (false, false),
        "y" | "yes" | "on" => (true, true),
        "n" | "no" | "off" => (false, true),
        _ => {
            if strict {
                diagnostics.push(
                    Diagnostic::error(
                        format!("`{}` is `{text}`: invalid boolean", dotted(at)),
                        node.span,
                    )
                    .with_help("write true or false"),
                );
            }
            return;
        }
    };
    if legacy {
        diagnostics.push(Diagnostic::warning(
            format!(
                "`{}`: \"{text}\" for boolean is not supported by YAML 1.2, please use `{value}`",
                dotted(at)
            ),
            node.span,
        ));
    }
    node.value = Value::Bool(value);
}

fn canonicalize_service(
    service: &mut Mapping,
    base: &Path,
    home: Option<&Path>,
    lenient: bool,
    errors: &mut Vec<Diagnostic>,
) {
    for key in ["environment", "labels", "annotations", "sysctls"] {
        to_string_map(service, key);
    }
    for key in ["dns", "dns_search", "tmpfs", "env_file", "label_file"] {
        to_list(service, key);
    }
    if let Some(e) = service.get_mut("build") {
        if let Some(context) = e.node.as_str().map(str::to_string) {
            let span = e.node.span;
            let mut m = Mapping::default();
            m.insert("context".into(), entry(Node::string(context, span), span));
            e.node = Node {
                value: Value::Map(m),
                span,
                tag: e.node.tag,
            };
        }
        if let Some(build) = e.node.as_map_mut() {
            to_string_map(build, "args");
            to_string_map(build, "labels");
            if let Some(ctx) = build.get_mut("context") {
                if let Some(s) = ctx.node.as_str()
                    && !is_remote_context(s)
                {
                    absolutize_node(&mut ctx.node, base, home);
                }
            } else {
                let span = e.key_span;
                build.insert(
                    "context".into(),
                    entry(Node::string(path_string(base), span), span),
                );
            }
        }
    }
    if let Some(e) = service.get_mut("extends")
        && let Some(name) = e.node.as_str().map(str::to_string)
    {
        let span = e.node.span;
        let mut m = Mapping::default();
        m.insert("service".into(), entry(Node::string(name, span), span));
        e.node = Node::map(m, span);
    }
    if let Some(e) = service.get_mut("env_file")
        && let Value::Seq(items) = &mut e.node.value
    {
        for item in items.iter_mut() {
            if let Some(path) = item.as_str().map(str::to_string) {
                let span = item.span;
                let mut m = Mapping::default();
                m.insert("path".into(), entry(Node::string(path, span), span));
                m.insert(
                    "required".into(),
                    entry(Node::new(Value::Bool(true), span), span),
                );
                *item = Node::map(m, span);
            }
            let span = item.span;
            if let Some(m) = item.as_map_mut() {
                if let Some(p) = m.get_mut("path") {
                    absolutize_node(&mut p.node, base, home);
                }
                if !m.contains_key("required") {
                    m.insert(
                        "required".into(),
                        entry(Node::new(Value::Bool(true), span), span),
                    );
                }
            }
        }
    }
    if let Some(e) = service.get_mut("label_file")
        && let Value::Seq(items) = &mut e.node.value
    {
        for item in items.iter_mut() {
            absolutize_node(item, base, home);
        }
    }
    if let Some(e) = service.get_mut("depends_on") {
        canonical_depends_on(&mut e.node);
    }
    if let Some(e) = service.get_mut("networks") {
        if let Value::Seq(items) = &e.node.value {
            let mut m = Mapping::default();
            for item in items {
                if let Some(name) = item.scalar_text() {
                    m.insert(name, entry(Node::null(item.span), item.span));
                }
            }
            e.node.value = Value::Map(m);
        }
        if let Some(m) = e.node.as_map_mut() {
            for net in m.values_mut() {
                if let Some(n) = net.node.as_map_mut() {
                    to_list(n, "aliases");
                }
            }
        }
    }
    for key in ["secrets", "configs"] {
        if let Some(Value::Seq(items)) = service.get_mut(key).map(|e| &mut e.node.value) {
            for item in items.iter_mut() {
                if let Some(source) = item.as_str().map(str::to_string) {
                    let span = item.span;
                    let mut m = Mapping::default();
                    m.insert("source".into(), entry(Node::string(source, span), span));
                    *item = Node::map(m, span);
                }
            }
        }
    }
    if let Some(Value::Seq(items)) = service.get_mut("expose").map(|e| &mut e.node.value) {
        for item in items.iter_mut() {
            if let Some(text) = item.scalar_text() {
                item.value = Value::Str(text);
            }
        }
    }
    if let Some(e) = service.get_mut("ports")
        && let Value::Seq(items) = &mut e.node.value
    {
        let mut out = Vec::with_capacity(items.len());
        if lenient {
            // compose-go's `transformPorts` returns the whole list as written when one entry
            // does not parse.
            let before = errors.len();
            for item in items.iter().cloned() {
                canonical_port(item, &mut out, errors);
            }
            if errors.len() == before {
                *items = out;
            } else {
                errors.truncate(before);
            }
        } else {
            for item in items.drain(..) {
                canonical_port(item, &mut out, errors);
            }
            *items = out;
        }
    }
    if let Some(e) = service.get_mut("volumes")
        && let Value::Seq(items) = &mut e.node.value
    {
        for item in items.iter_mut() {
            let before = errors.len();
            canonical_volume(item, base, home, errors);
            if lenient {
                // An entry that does not parse stays as written.
                errors.truncate(before);
            }
        }
    }
    if let Some(e) = service.get_mut("healthcheck")
        && let Some(h) = e.node.as_map_mut()
        && let Some(test) = h.get_mut("test")
        && let Some(s) = test.node.as_str().map(str::to_string)
    {
        let span = test.node.span;
        test.node.value = Value::Seq(vec![Node::string("CMD-SHELL", span), Node::string(s, span)]);
    }
}

fn entry(node: Node, key_span: Span) -> Entry {
    Entry { key_span, node }
}

/// `KEY=VALUE` lists and mappings with scalar values, both to a mapping of strings (or null).
fn to_string_map(parent: &mut Mapping, key: &str) {
    let Some(e) = parent.get_mut(key) else {
        return;
    };
    match &mut e.node.value {
        Value::Seq(items) => {
            let mut m = Mapping::default();
            for item in items.iter() {
                let Some(text) = item.scalar_text() else {
                    continue;
                };
                let (k, v) = match text.split_once('=') {
                    Some((k, v)) => (k.to_string(), Node::string(v, item.span)),
                    None => (text.clone(), Node::null(item.span)),
                };
                // A key repeated later in the list wins, in the place of the first.
                m.insert(k, entry(v, item.span));
            }
            e.node.value = Value::Map(m);
        }
        Value::Map(m) => {
            for v in m.values_mut() {
                if let Some(text) = v.node.scalar_text()
                    && !matches!(v.node.value, Value::Str(_))
                {
                    v.node.value = Value::Str(text);
                }
            }
        }
        _ => {}
    }
}

fn to_list(parent: &mut Mapping, key: &str) {
    if let Some(e) = parent.get_mut(key)
        && matches!(e.node.value, Value::Str(_))
    {
        let item = Node {
            value: std::mem::replace(&mut e.node.value, Value::Null),
            span: e.node.span,
            tag: Tag::None,
        };
        e.node.value = Value::Seq(vec![item]);
    }
}

fn canonical_depends_on(node: &mut Node) {
    if let Value::Seq(items) = &node.value {
        let mut m = Mapping::default();
        for item in items {
            if let Some(name) = item.scalar_text() {
                m.insert(
                    name,
                    entry(
                        Node::new(Value::Map(Mapping::default()), item.span),
                        item.span,
                    ),
                );
            }
        }
        node.value = Value::Map(m);
    }
    if let Some(m) = node.as_map_mut() {
        for dep in m.values_mut() {
            if dep.node.is_null() {
                dep.node.value = Value::Map(Mapping::default());
            }
            let span = dep.node.span;
            if let Some(d) = dep.node.as_map_mut() {
                if !d.contains_key("condition") {
                    d.insert(
                        "condition".into(),
                        entry(Node::string("service_started", span), span),
                    );
                }
                if !d.contains_key("required") {
                    d.insert(
                        "required".into(),
                        entry(Node::new(Value::Bool(true), span), span),
                    );
                }
            }
        }
    }
}

/// Docker Compose expands `1-65535:1-65535` into 65,535 mappings; each costs wharf a few hundred
/// bytes of tree at every step, so a bound keeps a typo from taking gigabytes (found by fuzzing).
pub const MAX_PORTS_PER_SERVICE: usize = 10_000;

fn canonical_port(item: Node, out: &mut Vec<Node>, errors: &mut Vec<Diagnostic>) {
    let span = item.span;
    let text = match &item.value {
        Value::Str(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        Value::Map(_) => {
            let mut item = item;
            if let Some(m) = item.as_map_mut() {
                if !m.contains_key("mode") {
                    m.shift_insert(0, "mode".into(), entry(Node::string("ingress", span), span));
                }
                if !m.contains_key("protocol") {
                    m.insert("protocol".into(), entry(Node::string("tcp", span), span));
                }
                if let Some(p) = m.get_mut("published")
                    && let Some(t) = p.node.scalar_text()
                {
                    p.node.value = Value::Str(t);
                }
            }
            out.push(item);
            return;
        }
        _ => {
            out.push(item);
            return;
        }
    };
    match parse_port(&text) {
        Ok(specs) if out.len() + specs.len() > MAX_PORTS_PER_SERVICE => errors.push(
            Diagnostic::error(
                format!(
                    "`{text}` publishes {} ports; wharf accepts at most {MAX_PORTS_PER_SERVICE} ports per service",
                    specs.len()
                ),
                span,
            )
            .with_help("publish a smaller range, or split the service"),
        ),
        Ok(specs) => {
            for spec in specs {
                let mut m = Mapping::default();
                m.insert("mode".into(), entry(Node::string("ingress", span), span));
                if let Some(ip) = spec.host_ip {
                    m.insert("host_ip".into(), entry(Node::string(ip, span), span));
                }
                m.insert(
                    "target".into(),
                    entry(Node::new(Value::Int(i64::from(spec.target)), span), span),
                );
                if let Some(p) = spec.published {
                    m.insert("published".into(), entry(Node::string(p, span), span));
                }
                m.insert("protocol".into(), entry(Node::string(spec.protocol, span), span));
                out.push(Node::map(m, span));
            }
        }
        Err(message) => errors.push(
            Diagnostic::error(format!("invalid port `{text}`: {message}"), span)
                .with_help("write ports as \"[HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL]\", e.g. \"127.0.0.1:8080:80\""),
        ),
    }
}

fn canonical_volume(
    item: &mut Node,
    base: &Path,
    home: Option<&Path>,
    errors: &mut Vec<Diagnostic>,
) {
    let span = item.span;
    if let Some(text) = item.as_str().map(str::to_string) {
        match parse_volume(&text) {
            Ok(spec) => {
                let mut m = Mapping::default();
                let kind = match spec.kind {
                    VolumeKind::Bind => "bind",
                    VolumeKind::Volume => "volume",
                };
                m.insert("type".into(), entry(Node::string(kind, span), span));
                if let Some(source) = spec.source {
                    m.insert("source".into(), entry(Node::string(source, span), span));
                }
                m.insert(
                    "target".into(),
                    entry(Node::string(spec.target, span), span),
                );
                if spec.read_only {
                    m.insert(
                        "read_only".into(),
                        entry(Node::new(Value::Bool(true), span), span),
                    );
                }
                match spec.kind {
                    VolumeKind::Bind => {
                        // compose-go's `ServiceVolumeBind` field order.
                        let mut b = Mapping::default();
                        if let Some(z) = spec.selinux {
                            b.insert("selinux".into(), entry(Node::string(z, span), span));
                        }
                        if let Some(p) = spec.propagation {
                            b.insert("propagation".into(), entry(Node::string(p, span), span));
                        }
                        b.insert(
                            "create_host_path".into(),
                            entry(Node::new(Value::Bool(true), span), span),
                        );
                        m.insert("bind".into(), entry(Node::map(b, span), span));
                    }
                    VolumeKind::Volume => {
                        let mut v = Mapping::default();
                        if spec.nocopy {
                            v.insert(
                                "nocopy".into(),
                                entry(Node::new(Value::Bool(true), span), span),
                            );
                        }
                        m.insert("volume".into(), entry(Node::map(v, span), span));
                    }
                }
                item.value = Value::Map(m);
            }
            Err(message) => {
                errors.push(
                    Diagnostic::error(format!("invalid volume `{text}`: {message}"), span)
                        .with_help("write volumes as \"[SOURCE:]TARGET[:MODE]\", e.g. \"./data:/data:ro\" or \"dbdata:/var/lib/postgresql/data\""),
                );
                return;
            }
        }
    }
    if let Some(m) = item.as_map_mut() {
        let is_bind = m.get("type").and_then(|t| t.node.as_str()) == Some("bind");
        if !is_bind {
            return;
        }
        // A Windows path (`C:\data`, `\\server\share`) is kept as written: it is absolute on the
        // host it names (compose-go's `maybeUnixPath` in paths/unix.go checks `IsWindowsAbs` first).
        if let Some(source) = m.get_mut("source")
            && !source.node.as_str().is_some_and(is_windows_absolute)
        {
            absolutize_node(&mut source.node, base, home);
        }
        // A `bind:` block without `create_host_path` gets it, as compose-go's `defaultVolumeBind`
        // (transform/defaults.go) gives it. Without a `bind:` block none is added: compose-go's
        // `setDefaults` only visits keys that are written, so `docker compose config` prints none
        // (testdata/Director-4.0), and Docker Compose creates the host path for such a bind
        // (no `Bind` means the engine's legacy `Binds`, which create it).
        if let Some(b) = m.get_mut("bind").and_then(|e| e.node.as_map_mut())
            && !b.contains_key("create_host_path")
        {
            b.insert(
                "create_host_path".into(),
                entry(Node::new(Value::Bool(true), span), span),
            );
        }
    }
}

/// `C:\x`, `c:/x` or a UNC path `\\host\share`: absolute on Windows, relative-looking here.
fn is_windows_absolute(p: &str) -> bool {
    let b = p.as_bytes();
    (b.len() >= 3 && b[0].is_ascii_alphabetic() && b[1] == b':' && (b[2] == b'\\' || b[2] == b'/'))
        || p.starts_with("\\\\")
}

fn is_remote_context(s: &str) -> bool {
    s.contains("://") || s.starts_with("git@") || s.starts_with("github.com/")
}

fn absolutize_node(node: &mut Node, base: &Path, home: Option<&Path>) {
    if let Some(s) = node.as_str() {
        let abs = absolutize(s, base, home);
        node.value = Value::Str(abs);
    }
}

/// `p` as an absolute, lexically cleaned path: `~` is the home directory, relative paths are
/// joined to `base`.
pub fn absolutize(p: &str, base: &Path, home: Option<&Path>) -> String {
    let joined: PathBuf = if p == "~" || p.starts_with("~/") {
        match home {
            Some(h) => h.join(p.trim_start_matches('~').trim_start_matches('/')),
            None => PathBuf::from(p),
        }
    } else if Path::new(p).is_absolute() {
        PathBuf::from(p)
    } else {
        base.join(p)
    };
    path_string(&clean(&joined))
}

pub fn path_string(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Lexical cleaning like Go's `filepath.Clean`: no `.` components, `..` applied.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_patterns_follow_the_table() {
        let mut firsts: Vec<&str> = SERVICE_BOOLEANS.iter().map(|p| p[0]).collect();
        firsts.dedup();
        for first in &firsts {
            let expected: Vec<usize> = (0..SERVICE_BOOLEANS.len())
                .filter(|&i| SERVICE_BOOLEANS[i][0] == *first)
                .collect();
            assert_eq!(
                service_patterns(first).collect::<Vec<_>>(),
                expected,
                "{first}"
            );
        }
        assert_eq!(
            firsts.len(),
            SERVICE_BOOLEANS
                .iter()
                .map(|p| p[0])
                .collect::<std::collections::BTreeSet<_>>()
                .len()
        );
        for other in ["image", "ports", "environment", "*", "[]", ""] {
            assert!(service_patterns(other).is_empty(), "{other}");
        }
    }

    // Regression: `selinux` came after `create_host_path`; compose-go writes it first.
    #[test]
    fn short_bind_options_in_compose_go_order() {
        let mut node = Node::string(
            "./data:/data:ro,z,rslave",
            Span::new(crate::node::FileId(0), 1, 1, 1),
        );
        canonical_volume(&mut node, Path::new("/srv"), None, &mut Vec::new());
        let bind = node
            .get("bind")
            .and_then(Node::as_map)
            .expect("a bind block");
        let keys: Vec<&String> = bind.keys().collect();
        assert_eq!(keys, ["selinux", "propagation", "create_host_path"]);
    }

    #[test]
    fn absolutize_joins_and_cleans() {
        let base = Path::new("/srv/app");
        assert_eq!(absolutize("./data", base, None), "/srv/app/data");
        assert_eq!(absolutize("../x/./y", base, None), "/srv/x/y");
        assert_eq!(absolutize("/abs", base, None), "/abs");
        assert_eq!(
            absolutize("~/d", base, Some(Path::new("/home/u"))),
            "/home/u/d"
        );
    }
}
