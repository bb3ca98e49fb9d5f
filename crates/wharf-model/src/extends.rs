//! `extends`: a service built on another one, from the same file or another file.
//!
//! The extended service is resolved first (it may extend another in turn), then the extending
//! service is merged over it with the usual merge rules. A service from another file is read with
//! that file's directory as the base of its relative paths. A chain that comes back to a service
//! already on it is refused, naming every step.

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::load::Loader;
use crate::node::{Mapping, Node, Span, Value};

/// Resolves every `extends` of the services of `tree`, the tree of the file at `path`.
pub(crate) fn apply(loader: &mut Loader<'_>, tree: &mut Node, path: &Path, dir: &Path) {
    let uses_extends = tree
        .get("services")
        .and_then(Node::as_map)
        .is_some_and(|m| m.values().any(|e| e.node.get("extends").is_some()));
    if !uses_extends {
        return;
    }
    let Some(services) = tree.get("services").and_then(Node::as_map).cloned() else {
        return;
    };
    let mut resolved = Mapping::default();
    let mut cache = Vec::new();
    for (name, entry) in &services {
        let mut stack = Vec::new();
        match resolve(loader, &services, path, dir, name, &mut stack, &mut cache) {
            Ok(node) => {
                let mut e = entry.clone();
                e.node = node;
                resolved.insert(name.clone(), e);
            }
            Err(d) => loader.diagnostics.push(d),
        }
    }
    if let Some(e) = tree.as_map_mut().and_then(|m| m.get_mut("services")) {
        e.node.value = Value::Map(resolved);
    }
}

type Cache = Vec<((PathBuf, String), Node)>;

fn resolve(
    loader: &mut Loader<'_>,
    services: &Mapping,
    file: &Path,
    dir: &Path,
    name: &str,
    stack: &mut Vec<(PathBuf, String)>,
    cache: &mut Cache,
) -> Result<Node, Diagnostic> {
    let key = (file.to_path_buf(), name.to_string());
    if let Some((_, node)) = cache.iter().find(|(k, _)| *k == key) {
        return Ok(node.clone());
    }
    let Some(entry) = services.get(name) else {
        return Err(Diagnostic::global(format!(
            "service `{name}` is not defined in {}",
            loader.display_path(file).display()
        )));
    };
    let mut node = entry.node.clone();
    let Some(extends) = node.get("extends").cloned() else {
        cache.push((key, node.clone()));
        return Ok(node);
    };
    let Some(target) = extends
        .get("service")
        .and_then(Node::as_str)
        .map(str::to_string)
    else {
        return Err(Diagnostic::error(
            format!("`extends` of service `{name}` needs a `service`"),
            extends.span,
        ));
    };
    stack.push(key.clone());
    let other_file = extends
        .get("file")
        .and_then(Node::as_str)
        .map(|f| crate::canonical::clean(&dir.join(f)));
    let base = match other_file {
        Some(other) if other != file => {
            let other_dir = other.parent().map(Path::to_path_buf).unwrap_or_default();
            if let Some(i) = loader.file_stack.iter().position(|f| *f == other) {
                stack.pop();
                let mut chain: Vec<String> = loader.file_stack[i..]
                    .iter()
                    .map(|f| loader.display_path(f).display().to_string())
                    .collect();
                chain.push(loader.display_path(&other).display().to_string());
                return Err(Diagnostic::error(
                    format!(
                        "`extends` between files comes back to a file being read: {}",
                        chain.join(" -> ")
                    ),
                    extends.span,
                )
                .with_help(
                    "let services of one file extend services of the other, not both ways",
                ));
            }
            // One load per (file, service): the file is read for that service only. The key
            // joins the two with a NUL, which no real path contains.
            let cache_key = PathBuf::from(format!("{}\0{target}", other.display()));
            let tree = match loader.extends_files.get(&cache_key) {
                Some(t) => t.clone(),
                None => {
                    let t = loader.load_file_for_extends(&other, &other_dir, &target);
                    loader.extends_files.insert(cache_key, t.clone());
                    t
                }
            };
            let Some(tree) = tree else {
                stack.pop();
                return Err(Diagnostic::error(
                    format!(
                        "service `{name}` extends `{target}` from {}, which could not be loaded",
                        loader.display_path(&other).display()
                    ),
                    extends.span,
                ));
            };
            let other_services = tree
                .get("services")
                .and_then(Node::as_map)
                .cloned()
                .unwrap_or_default();
            if let Err(d) = check_target(
                loader,
                &other_services,
                &other,
                &target,
                name,
                &extends,
                stack,
            ) {
                return Err(forget_chain(d, stack, cache));
            }
            resolve(
                loader,
                &other_services,
                &other,
                &other_dir,
                &target,
                stack,
                cache,
            )
        }
        _ => {
            if let Err(d) = check_target(loader, services, file, &target, name, &extends, stack) {
                return Err(forget_chain(d, stack, cache));
            }
            resolve(loader, services, file, dir, &target, stack, cache)
        }
    };
    stack.pop();
    let mut base = base?;
    if let Some(m) = node.as_map_mut() {
        m.shift_remove("extends");
    }
    if let Some(m) = base.as_map_mut() {
        m.shift_remove("extends");
    }
    let mut path = vec!["services".to_string(), name.to_string()];
    let merged = crate::merge::merge(base, node, &mut path)?;
    cache.push((key, merged.clone()));
    Ok(merged)
}

/// After a broken `extends` (a cycle, a missing service), every service on the chain that led to
/// it resolves to nothing, so that the mistake is reported once and not again for each service
/// on the chain (or on the cycle).
fn forget_chain(d: Diagnostic, stack: &[(PathBuf, String)], cache: &mut Cache) -> Diagnostic {
    for key in stack {
        cache.push((key.clone(), Node::null(crate::node::Span::synthetic())));
    }
    d
}

fn check_target(
    loader: &Loader<'_>,
    services: &Mapping,
    file: &Path,
    target: &str,
    name: &str,
    extends: &Node,
    stack: &[(PathBuf, String)],
) -> Result<(), Diagnostic> {
    if !services.contains_key(target) {
        let mut d = Diagnostic::error(
            format!(
                "service `{name}` extends `{target}`, which is not defined in {}",
                loader.display_path(file).display()
            ),
            extends
                .get("service")
                .map(|n| n.span)
                .unwrap_or(extends.span),
        );
        if let Some(s) = crate::diag::suggest(target, services.keys().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        return Err(d);
    }
    let key = (file.to_path_buf(), target.to_string());
    if let Some(i) = stack.iter().position(|k| *k == key) {
        let mut chain: Vec<String> = stack[i..].iter().map(|(_, s)| format!("`{s}`")).collect();
        chain.push(format!("`{target}`"));
        return Err(Diagnostic::error(
            format!("`extends` cycle: {}", chain.join(" extends ")),
            extends
                .get("service")
                .map(|n| n.span)
                .unwrap_or(extends.span),
        )
        .with_help("a service cannot extend itself, directly or through others"));
    }
    Ok(())
}

impl Loader<'_> {
    /// A file reached through `extends`, read for the service `target`: only that service and the
    /// services of the same file it extends in turn are validated and kept, so that the other
    /// services of that file may be incomplete (compose-go loads just the extended service:
    /// `TestExtends`, `TestExtendsUlimits` and `TestExtendsRelativePath` extend from a file with a
    /// `nil:` service). Its paths are relative to its own directory.
    fn load_file_for_extends(&mut self, path: &Path, dir: &Path, target: &str) -> Option<Node> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) => {
                self.diagnostics.push(
                    Diagnostic::global(format!(
                        "cannot read {}, named by an `extends`: {e}",
                        self.display_path(path).display()
                    ))
                    .with_help(
                        "`extends.file` is relative to the directory of the file that names it",
                    ),
                );
                return None;
            }
        };
        let file = self.sources.next_id();
        let parsed = crate::yaml::parse(&text, file);
        self.sources.add(self.display_path(path), text);
        let docs = match parsed {
            Ok(d) => d,
            Err(d) => {
                self.diagnostics.push(d);
                return None;
            }
        };
        let errors_before = self.error_count();
        let mut tree = Node::map(Mapping::default(), Span::new(file, 1, 1, 1));
        for doc in docs {
            if !matches!(doc.value, Value::Map(_) | Value::Null) {
                self.diagnostics.push(Diagnostic::error(
                    format!(
                        "a Compose file must be a mapping at the top level, found {}",
                        doc.kind()
                    ),
                    doc.span,
                ));
                return None;
            }
            if doc.is_null() {
                continue;
            }
            match crate::merge::merge(tree, doc, &mut Vec::new()) {
                Ok(t) => tree = t,
                Err(d) => {
                    self.diagnostics.push(d);
                    return None;
                }
            }
        }
        keep_only_chain(&mut tree, target);
        crate::canonical::cast_booleans(&mut tree, &mut self.diagnostics, false);
        self.diagnostics.extend(crate::schema::validate(&tree));
        if self.error_count() > errors_before {
            return None;
        }
        self.interpolate(&mut tree);
        let home = self.home.clone();
        crate::canonical::canonicalize(
            &mut tree,
            dir,
            home.as_deref(),
            self.options.no_interpolate,
            &mut self.diagnostics,
        );
        if self.error_count() > errors_before {
            return None;
        }
        self.file_stack.push(path.to_path_buf());
        apply(self, &mut tree, path, dir);
        self.file_stack.pop();
        if self.error_count() > errors_before {
            return None;
        }
        Some(tree)
    }

    fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == crate::diag::Severity::Error)
            .count()
    }
}

/// Keeps of `tree` only its `services` mapping, and in it only `target` and the services of the
/// same file that `target` extends, directly or through others.
fn keep_only_chain(tree: &mut Node, target: &str) {
    let Some(top) = tree.as_map_mut() else {
        return;
    };
    top.retain(|k, _| k == "services");
    let Some(services) = top.get_mut("services").and_then(|e| e.node.as_map_mut()) else {
        return;
    };
    let mut chain: Vec<String> = Vec::new();
    let mut next = Some(target.to_string());
    while let Some(name) = next.take() {
        if chain.contains(&name) {
            break;
        }
        let Some(service) = services.get(&name) else {
            break;
        };
        next = match service.node.get("extends").map(|e| &e.value) {
            Some(Value::Str(s)) => Some(s.clone()),
            Some(Value::Map(m)) if !m.contains_key("file") => m
                .get("service")
                .and_then(|s| s.node.as_str())
                .map(String::from),
            _ => None,
        };
        chain.push(name);
    }
    services.retain(|k, _| chain.contains(k));
}

#[cfg(test)]
mod tests {
    use crate::load::{LoadOptions, load};

    fn errors(text: &str) -> Vec<String> {
        let options = LoadOptions {
            files: vec!["-".into()],
            stdin: Some(text.to_string()),
            working_dir: "/nonexistent-wharf-test".into(),
            ..LoadOptions::default()
        };
        match load(&options) {
            Ok(_) => panic!("loads"),
            Err(d) => d.errors().map(|e| e.message.clone()).collect(),
        }
    }

    #[test]
    fn a_cycle_is_reported_once_not_once_per_service_on_it() {
        let e = errors(
            "services:\n  a: {extends: b, image: x}\n  b: {extends: c}\n  c: {extends: a}\n",
        );
        assert_eq!(
            e,
            ["`extends` cycle: `a` extends `b` extends `c` extends `a`"]
        );
    }

    #[test]
    fn a_missing_base_is_reported_once_not_again_for_services_built_on_it() {
        let e = errors("services:\n  web: {extends: bse, image: x}\n  api: {extends: web}\n");
        assert_eq!(
            e,
            ["service `web` extends `bse`, which is not defined in <stdin>"],
        );
    }
}
