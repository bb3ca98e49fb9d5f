//! Merging canonical trees: several `-f` files in order, and a service over the one it `extends`.
//!
//! The rules are the Compose Specification's (merge.md) as Docker Compose applies them: mappings
//! merge key by key; scalars are replaced; `command`, `entrypoint` and `healthcheck.test` are
//! replaced whole; sequences are appended, and the ones whose items are identified by a key (ports,
//! volumes by target, secrets and configs by target, expose, dns, capabilities, profiles, aliases,
//! env files, devices, tmpfs) keep one item per key, the later one in the earlier one's place;
//! `x-*` keys are replaced whole; logging options merge only when both files use the same driver.
//! A value tagged `!reset` removes what it overrides, and `!override` replaces it whole.

use crate::diag::Diagnostic;
use crate::node::{Mapping, Node, Tag, Value};

/// Merges `over` into `base`; `path` is the dotted location of the two nodes (`services.web`).
pub fn merge(base: Node, over: Node, path: &mut Vec<String>) -> Result<Node, Diagnostic> {
    match over.tag {
        Tag::Override => return Ok(untag(over)),
        Tag::Reset => return Ok(over),
        Tag::None => {}
    }
    if replaced_whole(path) {
        return Ok(over);
    }
    let span = over.span;
    let (base_span, base_kind) = (base.span, base.kind());
    match (base.value, over.value) {
        (Value::Map(b), Value::Map(o)) => {
            if is_logging(path) {
                let driver = |m: &Mapping| {
                    m.get("driver")
                        .and_then(|e| e.node.as_str())
                        .map(str::to_string)
                };
                if let (Some(bd), Some(od)) = (driver(&b), driver(&o))
                    && bd != od
                {
                    return Ok(Node::map(o, span));
                }
            }
            let mut merged = b;
            for (key, entry) in o {
                if entry.node.tag == Tag::Reset {
                    merged.shift_remove(&key);
                    continue;
                }
                match merged.get_mut(&key) {
                    Some(existing) if !key.starts_with("x-") => {
                        let old = std::mem::replace(&mut existing.node, Node::null(span));
                        path.push(key);
                        let result = merge(old, entry.node, path);
                        path.pop();
                        existing.node = result?;
                    }
                    _ => {
                        merged.insert(key, entry);
                    }
                }
            }
            Ok(Node::map(merged, base_span))
        }
        // An empty value in a later file (`environment:` with nothing under it) changes nothing.
        (value, Value::Null) => Ok(Node {
            value,
            span: base_span,
            tag: Tag::None,
        }),
        (Value::Seq(mut b), Value::Seq(o)) => {
            b.extend(o.into_iter().filter(|n| n.tag != Tag::Reset));
            let items = match identity(path) {
                Some(key_of) => dedupe(b, key_of),
                None => b,
            };
            Ok(Node::seq(items, base_span))
        }
        (Value::Map(_) | Value::Seq(_), other) | (other, Value::Map(_) | Value::Seq(_))
            if !matches!(other, Value::Null) =>
        {
            let found = Node::new(other, span);
            Err(Diagnostic::error(
                format!(
                    "cannot merge `{}`: it is {} on line {} of the earlier file and {} here",
                    path.join("."),
                    base_kind,
                    base_span.line,
                    found.kind()
                ),
                span,
            )
            .with_help("write the value in the same form in both files"))
        }
        (_, value) => Ok(Node {
            value,
            span,
            tag: Tag::None,
        }),
    }
}

/// Removes what `!reset` marks and the `!override` tags once every file is merged (a `!reset`
/// in the first file has nothing to reset and simply disappears).
pub fn strip_tags(node: &mut Node) {
    node.tag = Tag::None;
    match &mut node.value {
        Value::Map(m) => {
            m.retain(|_, e| e.node.tag != Tag::Reset);
            for e in m.values_mut() {
                strip_tags(&mut e.node);
            }
        }
        Value::Seq(items) => {
            items.retain(|n| n.tag != Tag::Reset);
            for n in items {
                strip_tags(n);
            }
        }
        _ => {}
    }
}

fn untag(mut n: Node) -> Node {
    n.tag = Tag::None;
    n
}

fn matches(path: &[String], pattern: &[&str]) -> bool {
    path.len() == pattern.len() && path.iter().zip(pattern).all(|(p, q)| *q == "*" || p == q)
}

fn replaced_whole(path: &[String]) -> bool {
    matches(path, &["services", "*", "command"])
        || matches(path, &["services", "*", "entrypoint"])
        || matches(path, &["services", "*", "healthcheck", "test"])
        || path.last().is_some_and(|k| k.starts_with("x-"))
}

fn is_logging(path: &[String]) -> bool {
    matches(path, &["services", "*", "logging"])
}

type KeyOf = fn(&Node) -> String;

/// How items of a sequence are identified, for the sequences whose items are unique by a key.
fn identity(path: &[String]) -> Option<KeyOf> {
    if path.len() < 3 || path[0] != "services" {
        return None;
    }
    let rest: Vec<&str> = path[2..].iter().map(String::as_str).collect();
    match rest.as_slice() {
        ["ports"] => Some(port_key),
        ["volumes"] => Some(|n| field(n, "target")),
        ["secrets"] => Some(|n| mount_key(n, "/run/secrets/")),
        ["configs"] => Some(|n| mount_key(n, "/")),
        ["env_file"] => Some(|n| field(n, "path")),
        ["expose"]
        | ["dns"]
        | ["dns_search"]
        | ["dns_opt"]
        | ["cap_add"]
        | ["cap_drop"]
        | ["profiles"]
        | ["devices"]
        | ["tmpfs"]
        | ["links"]
        | ["extra_hosts"]
        | ["security_opt"]
        | ["networks", _, "aliases"]
        | ["networks", _, "link_local_ips"]
        | ["build", "tags"]
        | ["build", "platforms"] => Some(text),
        _ => None,
    }
}

fn text(n: &Node) -> String {
    n.scalar_text().unwrap_or_else(|| format!("{:?}", n.value))
}

fn field(n: &Node, key: &str) -> String {
    n.get(key).and_then(Node::scalar_text).unwrap_or_default()
}

fn mount_key(n: &Node, default_dir: &str) -> String {
    match n.get("target").and_then(Node::scalar_text) {
        Some(t) => t,
        None => format!("{default_dir}{}", field(n, "source")),
    }
}

fn port_key(n: &Node) -> String {
    if n.as_map().is_none() {
        return text(n);
    }
    let host = n
        .get("host_ip")
        .and_then(Node::scalar_text)
        .unwrap_or_else(|| "0.0.0.0".into());
    let protocol = n
        .get("protocol")
        .and_then(Node::scalar_text)
        .unwrap_or_else(|| "tcp".into());
    format!(
        "{host}:{}:{}/{protocol}",
        field(n, "published"),
        field(n, "target")
    )
}

fn dedupe(items: Vec<Node>, key_of: KeyOf) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::with_capacity(items.len());
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for item in items {
        let key = key_of(&item);
        match seen.get(&key) {
            Some(&i) => out[i] = item,
            None => {
                seen.insert(key, out.len());
                out.push(item);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::node::FileId;

    fn tree(text: &str) -> Node {
        crate::yaml::parse(text, FileId(0)).unwrap().remove(0)
    }

    fn merged(a: &str, b: &str) -> Node {
        let mut n = merge(tree(a), tree(b), &mut Vec::new()).unwrap();
        strip_tags(&mut n);
        n
    }

    fn svc<'a>(n: &'a Node, name: &str) -> &'a Node {
        n.get("services").unwrap().get(name).unwrap()
    }

    #[test]
    fn mappings_merge_and_scalars_replace() {
        let n = merged(
            "services:\n  web:\n    image: a\n    environment: {A: '1', B: '2'}\n",
            "services:\n  web:\n    image: b\n    environment: {B: '3', C: '4'}\n",
        );
        let web = svc(&n, "web");
        assert_eq!(web.get("image").unwrap().as_str(), Some("b"));
        let env = web.get("environment").unwrap().as_map().unwrap();
        let keys: Vec<_> = env.keys().cloned().collect();
        assert_eq!(keys, ["A", "B", "C"]);
        assert_eq!(env["B"].node.as_str(), Some("3"));
    }

    #[test]
    fn command_is_replaced_not_appended() {
        let n = merged(
            "services:\n  web:\n    command: [a, b]\n",
            "services:\n  web:\n    command: [c]\n",
        );
        assert_eq!(
            svc(&n, "web")
                .get("command")
                .unwrap()
                .as_seq()
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn volumes_are_unique_by_target() {
        let n = merged(
            "services:\n  web:\n    volumes: [{type: bind, source: /a, target: /x}, {type: bind, source: /b, target: /y}]\n",
            "services:\n  web:\n    volumes: [{type: bind, source: /c, target: /x}]\n",
        );
        let v = svc(&n, "web").get("volumes").unwrap().as_seq().unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].get("source").unwrap().as_str(), Some("/c"));
    }

    #[test]
    fn reset_removes_and_override_replaces() {
        let n = merged(
            "services:\n  web:\n    ports: [{target: 80, published: '8080'}]\n    environment: {A: '1', B: '2'}\n",
            "services:\n  web:\n    ports: !reset []\n    environment: !override {C: '3'}\n",
        );
        let web = svc(&n, "web");
        assert!(web.get("ports").is_none());
        let env = web.get("environment").unwrap().as_map().unwrap();
        assert_eq!(env.keys().cloned().collect::<Vec<_>>(), ["C"]);
    }

    #[test]
    fn other_lists_append() {
        let n = merged(
            "services:\n  web:\n    cap_add: [NET_ADMIN]\n    group_add: [a]\n",
            "services:\n  web:\n    cap_add: [NET_ADMIN, SYS_TIME]\n    group_add: [a]\n",
        );
        let web = svc(&n, "web");
        assert_eq!(web.get("cap_add").unwrap().as_seq().unwrap().len(), 2);
        assert_eq!(web.get("group_add").unwrap().as_seq().unwrap().len(), 2);
    }

    #[test]
    fn logging_with_other_driver_is_replaced() {
        let n = merged(
            "services:\n  web:\n    logging: {driver: json-file, options: {max-size: 1m}}\n",
            "services:\n  web:\n    logging: {driver: syslog, options: {tag: x}}\n",
        );
        let opts = svc(&n, "web")
            .get("logging")
            .unwrap()
            .get("options")
            .unwrap();
        assert!(opts.get("max-size").is_none());
    }

    #[test]
    fn shape_mismatch_is_an_error_with_both_places() {
        let e = merge(
            tree("services:\n  web:\n    build: {context: .}\n"),
            tree("services:\n  web:\n    build: 3\n"),
            &mut Vec::new(),
        )
        .unwrap_err();
        assert!(
            e.message.starts_with("cannot merge `services.web.build`"),
            "{}",
            e.message
        );
    }
}
