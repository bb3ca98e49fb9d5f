//! Loading a project: the walk from `-f` files to a validated [`Project`].
//!
//! Per file: parse ([`crate::yaml`]), validate against the Compose schema ([`crate::schema`]),
//! interpolate ([`crate::interpolate`]), rewrite short syntaxes ([`crate::canonical`]), resolve
//! `extends` ([`crate::extends`]) and `include` ([`crate::include`]). Then the files are merged in
//! order ([`crate::merge`]), decoded into typed values ([`crate::decode`]) and cross-checked
//! ([`crate::validate`]). Errors are collected per step, so that one run reports every problem of a
//! step, and a later step does not run on a tree an earlier step found wrong.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Diagnostics, Severity, SourceMap};
use crate::node::{Node, Span, Value};
use crate::project::Project;

/// Default file names, in Docker Compose's order of preference.
pub const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];
pub const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// What the user asked for: the compose-like global flags and the process environment.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// `-f` files in order (`-` reads `stdin`); empty means discovery.
    pub files: Vec<PathBuf>,
    pub project_name: Option<String>,
    pub project_directory: Option<PathBuf>,
    pub profiles: Vec<String>,
    pub env_files: Vec<PathBuf>,
    /// The directory relative `-f`, `--env-file` and `--project-directory` paths start from.
    pub working_dir: PathBuf,
    /// The process environment.
    pub environment: BTreeMap<String, String>,
    /// The contents of standard input, for `-f -`.
    pub stdin: Option<String>,
}

/// A loaded project with the warnings found on the way.
#[derive(Clone, Debug)]
pub struct Loaded {
    pub project: Project,
    pub warnings: Diagnostics,
    /// The environment used for interpolation (process environment over the `.env` file).
    pub environment: BTreeMap<String, String>,
}

/// Loads and validates a project. On failure, every error found is returned together.
pub fn load(options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    let mut loader = Loader::new(options);
    let project = loader.run();
    let diagnostics = Diagnostics {
        items: std::mem::take(&mut loader.diagnostics),
        sources: std::mem::take(&mut loader.sources),
    };
    match project {
        Some(project) if diagnostics.errors().next().is_none() => Ok(Loaded {
            project,
            warnings: diagnostics,
            environment: loader.env,
        }),
        _ => {
            let mut d = diagnostics;
            if d.errors().next().is_none() {
                d.items
                    .push(Diagnostic::global("the project could not be loaded"));
            }
            Err(d)
        }
    }
}

/// The state of one load: sources read, diagnostics found, the interpolation environment, and
/// the files already processed for `extends`.
pub(crate) struct Loader<'a> {
    pub(crate) options: &'a LoadOptions,
    pub(crate) sources: SourceMap,
    pub(crate) diagnostics: Vec<Diagnostic>,
    pub(crate) env: BTreeMap<String, String>,
    pub(crate) home: Option<PathBuf>,
    /// Files loaded as the target of an `extends`, by absolute path.
    pub(crate) extends_files: HashMap<PathBuf, Option<Node>>,
    /// Files being loaded (a file reached again through `extends` or `include` is a cycle).
    pub(crate) file_stack: Vec<PathBuf>,
}

impl<'a> Loader<'a> {
    fn new(options: &'a LoadOptions) -> Self {
        Loader {
            options,
            sources: SourceMap::default(),
            diagnostics: Vec::new(),
            env: BTreeMap::new(),
            home: options.environment.get("HOME").map(PathBuf::from),
            extends_files: HashMap::new(),
            file_stack: Vec::new(),
        }
    }

    pub(crate) fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Error)
    }

    pub(crate) fn abs(&self, p: &Path) -> PathBuf {
        crate::canonical::clean(&self.options.working_dir.join(p))
    }

    /// A path as shown in messages: relative to the working directory when below it.
    pub(crate) fn display_path(&self, p: &Path) -> PathBuf {
        if p.as_os_str() == "-" {
            return PathBuf::from("<stdin>");
        }
        p.strip_prefix(&self.options.working_dir)
            .map(Path::to_path_buf)
            .unwrap_or_else(|_| p.to_path_buf())
    }

    fn run(&mut self) -> Option<Project> {
        let o = self.options;
        let start_dir = o
            .project_directory
            .as_deref()
            .map(|p| self.abs(p))
            .unwrap_or_else(|| o.working_dir.clone());

        // COMPOSE_FILE may come from the process environment or the start directory's .env.
        let early_env = self.early_env(&start_dir);
        let files = self.config_files(&start_dir, &early_env)?;
        let project_dir = match &o.project_directory {
            Some(p) => self.abs(p),
            None => files
                .iter()
                .find(|f| f.as_os_str() != "-")
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| o.working_dir.clone()),
        };
        self.env = self.project_env(&project_dir)?;

        let mut trees = Vec::new();
        for file in &files {
            if let Some(tree) = self.load_file(file, &project_dir) {
                trees.push((file.clone(), tree));
            }
        }
        if self.has_errors() {
            return None;
        }
        let mut merged: Option<Node> = None;
        for (_, tree) in trees {
            merged = Some(match merged {
                None => tree,
                Some(base) => match crate::merge::merge(base, tree, &mut Vec::new()) {
                    Ok(n) => n,
                    Err(d) => {
                        self.diagnostics.push(d);
                        return None;
                    }
                },
            });
        }
        let mut merged = merged.unwrap_or_else(|| Node::map(Default::default(), Span::synthetic()));
        crate::merge::strip_tags(&mut merged);

        let name = self.project_name(&merged, &project_dir)?;
        let project = crate::decode::decode(self, &merged, name, project_dir, files)?;
        crate::validate::validate(&project, &mut self.diagnostics);
        if self.has_errors() {
            return None;
        }
        Some(project)
    }

    fn early_env(&mut self, dir: &Path) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        if self.options.env_files.is_empty() {
            let path = dir.join(".env");
            if let Ok(text) = std::fs::read_to_string(&path) {
                let process = &self.options.environment;
                if let Ok(pairs) = crate::dotenv::parse_dotenv(&text, &|k| process.get(k).cloned())
                {
                    for (k, v) in pairs {
                        if let Some(v) = v {
                            env.insert(k, v);
                        }
                    }
                }
            }
        }
        for (k, v) in &self.options.environment {
            env.insert(k.clone(), v.clone());
        }
        env
    }

    /// `-f` files, else `COMPOSE_FILE`, else the default names in the start directory or the
    /// nearest parent that has one (with the matching override file).
    fn config_files(
        &mut self,
        start: &Path,
        env: &BTreeMap<String, String>,
    ) -> Option<Vec<PathBuf>> {
        let o = self.options;
        if !o.files.is_empty() {
            return Some(
                o.files
                    .iter()
                    .map(|f| {
                        if f.as_os_str() == "-" {
                            f.clone()
                        } else {
                            self.abs(f)
                        }
                    })
                    .collect(),
            );
        }
        if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
            let sep = env
                .get("COMPOSE_PATH_SEPARATOR")
                .cloned()
                .unwrap_or_else(|| ":".into());
            return Some(
                list.split(sep.as_str())
                    .filter(|s| !s.is_empty())
                    .map(|f| crate::canonical::clean(&start.join(f)))
                    .collect(),
            );
        }
        let mut dir = start.to_path_buf();
        loop {
            let found: Vec<PathBuf> = DEFAULT_FILES
                .iter()
                .map(|n| dir.join(n))
                .filter(|p| p.is_file())
                .collect();
            if let Some(first) = found.first() {
                if found.len() > 1 {
                    self.diagnostics.push(Diagnostic {
                        severity: Severity::Warning,
                        message: format!(
                            "found several Compose files ({}); using {}",
                            found
                                .iter()
                                .map(|p| self.display_path(p).display().to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                            self.display_path(first).display()
                        ),
                        span: None,
                        help: None,
                    });
                }
                let mut files = vec![first.clone()];
                if let Some(o) = OVERRIDE_FILES
                    .iter()
                    .map(|n| dir.join(n))
                    .find(|p| p.is_file())
                {
                    files.push(o);
                }
                return Some(files);
            }
            if !dir.pop() {
                self.diagnostics.push(
                    Diagnostic::global(format!(
                        "no Compose file found in {} or any parent directory",
                        start.display()
                    ))
                    .with_help(format!(
                        "create compose.yaml there, or name files with -f (looked for {})",
                        DEFAULT_FILES.join(", ")
                    )),
                );
                return None;
            }
        }
    }

    /// The interpolation environment: the `.env` file of the project directory (or the
    /// `--env-file` files, later ones winning), under the process environment.
    fn project_env(&mut self, project_dir: &Path) -> Option<BTreeMap<String, String>> {
        let o = self.options;
        let (paths, explicit): (Vec<PathBuf>, bool) = if o.env_files.is_empty() {
            (vec![project_dir.join(".env")], false)
        } else {
            (o.env_files.iter().map(|p| self.abs(p)).collect(), true)
        };
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        for path in paths {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.diagnostics.push(Diagnostic::global(format!(
                        "cannot read env file {}: {e}",
                        self.display_path(&path).display()
                    )));
                    return None;
                }
            };
            let file = self.sources.add(self.display_path(&path), text.clone());
            let process = &o.environment;
            let earlier = env.clone();
            let lookup = |k: &str| process.get(k).or_else(|| earlier.get(k)).cloned();
            match crate::dotenv::parse_dotenv(&text, &lookup) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        if let Some(v) = v.or_else(|| process.get(&k).cloned()) {
                            env.insert(k, v);
                        }
                    }
                }
                Err(e) => {
                    self.diagnostics.push(Diagnostic::error(
                        format!("invalid env file: {}", e.message),
                        Span::new(file, e.line, 1, 1),
                    ));
                    return None;
                }
            }
        }
        for (k, v) in &o.environment {
            env.insert(k.clone(), v.clone());
        }
        Some(env)
    }

    /// Reads one Compose file into a canonical tree with `extends` and `include` resolved.
    /// `base` is the directory its relative paths resolve against. `None` when it has errors
    /// (they are in `self.diagnostics`).
    pub(crate) fn load_file(&mut self, path: &Path, base: &Path) -> Option<Node> {
        let text = if path.as_os_str() == "-" {
            self.options.stdin.clone().unwrap_or_default()
        } else {
            match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) => {
                    self.diagnostics.push(
                        Diagnostic::global(format!(
                            "cannot read Compose file {}: {e}",
                            self.display_path(path).display()
                        ))
                        .with_help("check the path given with -f (relative paths start from the current directory)"),
                    );
                    return None;
                }
            }
        };
        let shown = self.display_path(path);
        // Parse first, then keep the text for messages: no copy of a large file.
        let file = self.sources.next_id();
        let parsed = crate::yaml::parse(&text, file);
        self.sources.add(shown, text);
        let docs = match parsed {
            Ok(d) => d,
            Err(d) => {
                self.diagnostics.push(d);
                return None;
            }
        };
        let before = self
            .diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        let mut tree: Option<Node> = None;
        for doc in docs {
            if !matches!(doc.value, Value::Map(_) | Value::Null) {
                self.diagnostics.push(
                    Diagnostic::error(
                        format!(
                            "a Compose file must be a mapping at the top level, found {}",
                            doc.kind()
                        ),
                        doc.span,
                    )
                    .with_help("start the file with keys such as `services:`"),
                );
                continue;
            }
            self.diagnostics.extend(crate::schema::validate(&doc));
            let doc = if doc.is_null() {
                Node::map(Default::default(), doc.span)
            } else {
                doc
            };
            tree = Some(match tree {
                None => doc,
                Some(t) => match crate::merge::merge(t, doc, &mut Vec::new()) {
                    Ok(n) => n,
                    Err(d) => {
                        self.diagnostics.push(d);
                        return None;
                    }
                },
            });
        }
        let mut tree =
            tree.unwrap_or_else(|| Node::map(Default::default(), Span::new(file, 1, 1, 1)));
        if self.errors_since(before) {
            return None;
        }
        self.interpolate(&mut tree);
        if self.errors_since(before) {
            return None;
        }
        let home = self.home.clone();
        crate::canonical::canonicalize(&mut tree, base, home.as_deref(), &mut self.diagnostics);
        if self.errors_since(before) {
            return None;
        }
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| base.to_path_buf());
        self.file_stack.push(path.to_path_buf());
        crate::extends::apply(self, &mut tree, path, &dir);
        crate::include::apply(self, &mut tree, &dir);
        self.file_stack.pop();
        if self.errors_since(before) {
            return None;
        }
        Some(tree)
    }

    fn errors_since(&self, before: usize) -> bool {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count()
            > before
    }

    /// Interpolates every string value (not keys) of a file's tree.
    fn interpolate(&mut self, node: &mut Node) {
        let env = &self.env;
        let mut errors = Vec::new();
        interpolate_node(node, &|k| env.get(k).cloned(), &mut errors);
        self.diagnostics.extend(errors);
    }

    fn project_name(&mut self, merged: &Node, project_dir: &Path) -> Option<String> {
        let from_top = merged
            .get("name")
            .and_then(|n| n.scalar_text().map(|s| (s, n.span)));
        let explicit = self
            .options
            .project_name
            .clone()
            .map(|n| (n, None, "-p"))
            .or_else(|| {
                self.env
                    .get("COMPOSE_PROJECT_NAME")
                    .filter(|s| !s.is_empty())
                    .map(|n| (n.clone(), None, "COMPOSE_PROJECT_NAME"))
            })
            .or_else(|| from_top.map(|(n, span)| (n, Some(span), "the top-level `name`")));
        if let Some((name, span, source)) = explicit {
            if is_valid_project_name(&name) {
                return Some(name);
            }
            let message = format!(
                "`{name}` (from {source}) is not a valid project name: it must contain only lowercase letters, digits, `_` and `-`, and start with a letter or digit"
            );
            let help = format!("use `{}`", normalize_project_name(&name));
            self.diagnostics.push(match span {
                Some(span) => Diagnostic::error(message, span).with_help(help),
                None => Diagnostic::global(message).with_help(help),
            });
            return None;
        }
        let base = project_dir
            .file_name()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = normalize_project_name(&base);
        if name.is_empty() {
            self.diagnostics.push(
                Diagnostic::global(format!(
                    "cannot derive a project name from the directory {}",
                    project_dir.display()
                ))
                .with_help("set a top-level `name:` or pass -p NAME"),
            );
            return None;
        }
        Some(name)
    }
}

/// Interpolates the string values of `node` in place, recording an error per failing value.
pub(crate) fn interpolate_node(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<Diagnostic>,
) {
    match &mut node.value {
        Value::Str(s) if s.contains('$') => match crate::interpolate::interpolate(s, lookup) {
            Ok(v) => *s = v,
            Err(e) => errors.push(Diagnostic::error(e.message.clone(), node.span).with_help(
                match e.kind {
                    crate::interpolate::InterpolationErrorKind::Required { variable } => {
                        format!("set {variable} in the environment or in the .env file")
                    }
                    crate::interpolate::InterpolationErrorKind::InvalidTemplate => {
                        "write a literal `$` as `$$`".to_string()
                    }
                },
            )),
        },
        Value::Seq(items) => {
            for item in items {
                interpolate_node(item, lookup, errors);
            }
        }
        Value::Map(m) => {
            for e in m.values_mut() {
                interpolate_node(&mut e.node, lookup, errors);
            }
        }
        _ => {}
    }
}

/// Docker Compose's rule for explicit names: `[a-z0-9][a-z0-9_-]*`.
pub fn is_valid_project_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Docker Compose's normalisation of a directory name into a project name: lowercase, only
/// `[a-z0-9_-]` kept, leading `_` and `-` removed.
pub fn normalize_project_name(name: &str) -> String {
    let lowered: String = name
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lowered.trim_start_matches(['_', '-']).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_names_follow_compose() {
        assert!(is_valid_project_name("edd"));
        assert!(is_valid_project_name("my-app_2"));
        assert!(!is_valid_project_name("My App"));
        assert!(!is_valid_project_name("_x"));
        assert_eq!(normalize_project_name("My App.v2"), "myappv2");
        assert_eq!(normalize_project_name("-_x"), "x");
    }
}
