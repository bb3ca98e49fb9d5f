//! `include`: other Compose files loaded as sub-projects and added to the including file.
//!
//! Each entry names one or more files (merged together), an optional project directory (default:
//! the directory of its first file) against which its relative paths resolve, and optional env
//! files (default: `.env` in that directory) whose values add to the including project's
//! environment for its interpolation (a variable set on both sides keeps the including project's
//! value, as in Docker Compose). Its services, networks, volumes, secrets and configs are
//! added to the including file; one defined on both sides is the included definition with the
//! including file's merged over it.

use std::path::{Path, PathBuf};

use crate::diag::Diagnostic;
use crate::load::Loader;
use crate::node::{Node, Span, Value};

const RESOURCES: [&str; 5] = ["services", "networks", "volumes", "secrets", "configs"];

pub(crate) fn apply(loader: &mut Loader<'_>, tree: &mut Node, dir: &Path) {
    let Some(top) = tree.as_map_mut() else {
        return;
    };
    let Some(include) = top.shift_remove("include") else {
        return;
    };
    let items: Vec<Node> = match include.node.value {
        Value::Seq(items) => items,
        _ => return,
    };
    for item in items {
        let Some(imported) = load_entry(loader, &item, dir) else {
            continue;
        };
        for kind in RESOURCES {
            let Some(theirs) = imported.get(kind).and_then(Node::as_map) else {
                continue;
            };
            let ours = top
                .entry(kind.to_string())
                .or_insert_with(|| crate::node::Entry {
                    key_span: item.span,
                    node: Node::map(Default::default(), item.span),
                });
            if ours.node.is_null() {
                ours.node = Node::map(Default::default(), item.span);
            }
            let Some(ours) = ours.node.as_map_mut() else {
                continue;
            };
            for (name, entry) in theirs {
                match ours.get_mut(name) {
                    // The including file's definition is merged over the included one, as
                    // compose-go's `importResource` does with `override.MergeYaml` (older
                    // versions refused it; `TestLoadWithMultipleIncludeConflict`).
                    Some(existing) if !same(&existing.node, &entry.node) => {
                        let mine = std::mem::replace(&mut existing.node, Node::null(item.span));
                        let mut path = vec![kind.to_string(), name.clone()];
                        match crate::merge::merge(entry.node.clone(), mine, &mut path) {
                            Ok(merged) => existing.node = merged,
                            Err(d) => loader.diagnostics.push(d),
                        }
                    }
                    Some(_) => {}
                    None => {
                        ours.insert(name.clone(), entry.clone());
                    }
                }
            }
        }
    }
}

/// Loads one `include` entry into one merged tree.
fn load_entry(loader: &mut Loader<'_>, item: &Node, dir: &Path) -> Option<Node> {
    let (paths, project_dir, env_files): (Vec<PathBuf>, Option<PathBuf>, Vec<PathBuf>) =
        match &item.value {
            Value::Str(p) => (
                vec![crate::canonical::clean(&dir.join(p))],
                None,
                Vec::new(),
            ),
            Value::Map(_) => {
                let list = |key: &str| -> Vec<PathBuf> {
                    match item.get(key).map(|n| &n.value) {
                        Some(Value::Str(s)) => vec![crate::canonical::clean(&dir.join(s))],
                        Some(Value::Seq(items)) => items
                            .iter()
                            .filter_map(Node::as_str)
                            .map(|s| crate::canonical::clean(&dir.join(s)))
                            .collect(),
                        _ => Vec::new(),
                    }
                };
                let project_dir = item
                    .get("project_directory")
                    .and_then(Node::as_str)
                    .map(|s| crate::canonical::clean(&dir.join(s)));
                (list("path"), project_dir, list("env_file"))
            }
            _ => return None,
        };
    let Some(first) = paths.first() else {
        loader.diagnostics.push(Diagnostic::error(
            "an `include` entry needs a `path`",
            item.span,
        ));
        return None;
    };
    for p in &paths {
        if let Some(i) = loader.file_stack.iter().position(|f| f == p) {
            let mut chain: Vec<String> = loader.file_stack[i..]
                .iter()
                .map(|f| loader.display_path(f).display().to_string())
                .collect();
            chain.push(loader.display_path(p).display().to_string());
            loader.diagnostics.push(
                Diagnostic::error(
                    format!("`include` cycle: {}", chain.join(" includes ")),
                    item.span,
                )
                .with_help("a file cannot include itself, directly or through others"),
            );
            return None;
        }
    }
    let project_dir = project_dir
        .or_else(|| first.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| dir.to_path_buf());

    // The included project's own env files apply over the including project's environment.
    let (env_files, explicit) = if env_files.is_empty() {
        (vec![project_dir.join(".env")], false)
    } else {
        (env_files, true)
    };
    let saved_env = loader.env.clone();
    // As compose-go's `GetEnvFromFile`: later files win, and a variable in a file is looked up in
    // the including project's environment, then in the files read before.
    let mut from_files: std::collections::BTreeMap<String, String> = Default::default();
    for env_file in env_files {
        let text = match std::fs::read_to_string(&env_file) {
            Ok(t) => t,
            Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                loader.diagnostics.push(Diagnostic::error(
                    format!(
                        "cannot read env file {} of this include: {e}",
                        env_file.display()
                    ),
                    item.span,
                ));
                return None;
            }
        };
        let (parent, earlier) = (&loader.env, &from_files);
        let parsed = crate::dotenv::parse_dotenv(&text, &|k| {
            parent.get(k).or_else(|| earlier.get(k)).cloned()
        });
        match parsed {
            Ok(pairs) => {
                for (k, v) in pairs {
                    if let Some(v) = v {
                        from_files.insert(k, v);
                    }
                }
            }
            Err(e) => {
                let id = loader
                    .sources
                    .add(loader.display_path(&env_file), text.clone());
                loader.diagnostics.push(Diagnostic::error(
                    format!("invalid env file: {}", e.message),
                    Span::new(id, e.line, 1, 1),
                ));
                return None;
            }
        }
    }
    // The including project's environment wins over the include's env files (compose-go merges
    // them with `Mapping.Merge`, which keeps the values already set).
    for (k, v) in from_files {
        loader.env.entry(k).or_insert(v);
    }
    let mut merged: Option<Node> = None;
    for p in &paths {
        let Some(tree) = loader.load_file(p, &project_dir) else {
            continue;
        };
        merged = Some(match merged {
            None => tree,
            Some(base) => match crate::merge::merge(base, tree, &mut Vec::new()) {
                Ok(n) => n,
                Err(d) => {
                    loader.diagnostics.push(d);
                    loader.env = saved_env;
                    return None;
                }
            },
        });
    }
    if let Some(tree) = merged.as_mut() {
        resolve_bare_environment(tree, &loader.env);
    }
    loader.env = saved_env;
    let mut merged = merged?;
    crate::merge::strip_tags(&mut merged);
    Some(merged)
}

/// Gives each `environment` entry declared without a value (`- VAR_NAME`) in the included
/// services the value of the include's environment, which is gone once the include is loaded:
/// compose-go loads an include as a project of its own and resolves its services' environment
/// there (`TestLoadWithIncludeEnv`). Entries the include's environment lacks stay without a value.
fn resolve_bare_environment(tree: &mut Node, env: &std::collections::BTreeMap<String, String>) {
    let Some(services) = tree
        .as_map_mut()
        .and_then(|top| top.get_mut("services"))
        .and_then(|e| e.node.as_map_mut())
    else {
        return;
    };
    for service in services.values_mut() {
        let Some(environment) = service
            .node
            .as_map_mut()
            .and_then(|m| m.get_mut("environment"))
            .and_then(|e| e.node.as_map_mut())
        else {
            continue;
        };
        for (name, entry) in environment.iter_mut() {
            if entry.node.is_null()
                && let Some(value) = env.get(name)
            {
                entry.node = Node::string(value.clone(), entry.node.span);
            }
        }
    }
}

/// Whether two definitions are the same, ignoring where they were written.
fn same(a: &Node, b: &Node) -> bool {
    match (&a.value, &b.value) {
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, e)| y.get(k).is_some_and(|f| same(&e.node, &f.node)))
        }
        (Value::Seq(x), Value::Seq(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (x, y) => x == y,
    }
}

#[cfg(test)]
mod tests {
    use crate::load::{LoadOptions, load};

    #[test]
    fn the_including_environment_wins_over_the_include_env_file() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("created");
            std::fs::write(path, text).expect("written");
        };
        write(
            "compose.yaml",
            "include:\n  - path: sub/compose.yaml\n    env_file: sub/sub.env\n",
        );
        write(
            "sub/compose.yaml",
            "services:\n  a:\n    image: a:${TAG}-${ONLY}-${LATER}\n",
        );
        write(
            "sub/sub.env",
            "TAG=from-include\nONLY=${TAG}\nLATER=first\n",
        );
        let options = LoadOptions {
            working_dir: dir.path().to_path_buf(),
            environment: [("TAG".to_string(), "from-shell".to_string())].into(),
            ..LoadOptions::default()
        };
        let p = load(&options).unwrap_or_else(|d| panic!("{d}")).project;
        assert_eq!(
            p.services["a"].image.as_deref(),
            Some("a:from-shell-from-shell-first")
        );
    }
}
