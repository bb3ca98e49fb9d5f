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
use crate::node::{Entry, Node, Span, Value};
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
    /// Leave `${VAR}` expressions as written (`config --no-interpolate`, `--variables`): no
    /// interpolation, and the short syntaxes that do not parse without it (a port
    /// `${PORT:-8080}:80`) kept as written, as compose-go's `SkipInterpolation` does. Meant for
    /// [`load_model`]: the typed [`load`] may refuse what only interpolation makes valid.
    pub no_interpolate: bool,
    /// Skip the checks that every reference resolves (compose-go's `checkConsistency`: services,
    /// networks, volumes, secrets, configs named by a service) and that container names are unique
    /// (`config --no-consistency`).
    pub no_consistency: bool,
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

/// The model of a project as `docker compose config --no-interpolate` prints it (compose-go's
/// `LoadModelWithContext`), with the warnings found on the way.
#[derive(Clone, Debug)]
pub struct LoadedModel {
    /// The merged tree: a mapping with `name`, `services`, ... in canonical form, normalised.
    pub model: Node,
    pub warnings: Diagnostics,
}

/// Loads the untyped model of a project: every step of [`load`] up to the merge (without
/// interpolation when `options.no_interpolate`), then compose-go's normalisation; no typed
/// decoding, so no reference is checked.
pub fn load_model(options: &LoadOptions) -> Result<LoadedModel, Diagnostics> {
    let mut loader = Loader::new(options);
    let model = loader.model();
    let diagnostics = Diagnostics {
        items: std::mem::take(&mut loader.diagnostics),
        sources: std::mem::take(&mut loader.sources),
    };
    match model {
        Some(model) if diagnostics.errors().next().is_none() => Ok(LoadedModel {
            model,
            warnings: diagnostics,
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

/// The variables the string values of a model use (compose-go's `template.ExtractVariables` over
/// the model: values only, not keys), by name.
pub fn model_variables(model: &Node) -> BTreeMap<String, crate::interpolate::Variable> {
    fn walk(n: &Node, out: &mut BTreeMap<String, crate::interpolate::Variable>) {
        match &n.value {
            Value::Str(s) if s.contains('$') => crate::interpolate::extract_variables(s, out),
            Value::Seq(items) => items.iter().for_each(|i| walk(i, out)),
            Value::Map(m) => m.values().for_each(|e| walk(&e.node, out)),
            _ => {}
        }
    }
    let mut out = BTreeMap::new();
    walk(model, &mut out);
    out
}

/// compose-go's normalisation of the model (`loader/normalize.go`, `Normalize`): the project's
/// `name`; every service without `networks` (or with none) and without `network_mode` or
/// `provider` on the `default` network, declared when used; `pull_policy: if_not_present` as
/// `missing`; a build's `dockerfile` defaulting to `Dockerfile`; `environment` and build `args`
/// without a value taken from the environment when it has them; networks, volumes, configs and
/// secrets without a `name` named `<project>_<key>` (the key itself when external).
fn normalize_model(root: &mut Node, name: &str, env: &BTreeMap<String, String>) {
    let span = Span::synthetic();
    let entry = |node: Node| Entry {
        key_span: span,
        node,
    };
    if !matches!(root.value, Value::Map(_)) {
        *root = Node::map(Default::default(), span);
    }
    let Some(top) = root.as_map_mut() else {
        return;
    };
    top.insert("name".into(), entry(Node::string(name, span)));
    let mut uses_default = false;
    if let Some(services) = top.get_mut("services").and_then(|e| e.node.as_map_mut()) {
        for service in services.values_mut() {
            let Some(s) = service.node.as_map_mut() else {
                continue;
            };
            if !s.contains_key("provider") && !s.contains_key("network_mode") {
                match s.get("networks").map(|e| &e.node.value) {
                    None | Some(Value::Null) => {
                        let mut m = crate::node::Mapping::default();
                        m.insert("default".into(), entry(Node::null(span)));
                        s.insert("networks".into(), entry(Node::map(m, span)));
                        uses_default = true;
                    }
                    Some(Value::Map(m)) if m.is_empty() => {
                        let mut m = crate::node::Mapping::default();
                        m.insert("default".into(), entry(Node::null(span)));
                        s.insert("networks".into(), entry(Node::map(m, span)));
                        uses_default = true;
                    }
                    Some(Value::Map(m)) if m.contains_key("default") => uses_default = true,
                    _ => {}
                }
            }
            if let Some(p) = s.get_mut("pull_policy")
                && p.node.as_str() == Some("if_not_present")
            {
                p.node.value = Value::Str("missing".into());
            }
            if let Some(build) = s.get_mut("build").and_then(|e| e.node.as_map_mut()) {
                if !build.contains_key("dockerfile") && !build.contains_key("dockerfile_inline") {
                    build.insert("dockerfile".into(), entry(Node::string("Dockerfile", span)));
                }
                resolve_from_env(build.get_mut("args"), env);
            }
            resolve_from_env(s.get_mut("environment"), env);
        }
    }
    if uses_default {
        let networks = top
            .entry("networks".into())
            .or_insert_with(|| entry(Node::map(Default::default(), span)));
        if networks.node.is_null() {
            networks.node = Node::map(Default::default(), span);
        }
        if let Some(m) = networks.node.as_map_mut()
            && !m.contains_key("default")
        {
            m.insert("default".into(), entry(Node::map(Default::default(), span)));
        }
    }
    for kind in ["networks", "volumes", "configs", "secrets"] {
        let Some(objects) = top.get_mut(kind).and_then(|e| e.node.as_map_mut()) else {
            continue;
        };
        for (key, object) in objects.iter_mut() {
            if object.node.is_null() {
                object.node = Node::map(Default::default(), span);
            }
            let Some(m) = object.node.as_map_mut() else {
                continue;
            };
            if m.get("name").is_none_or(|e| e.node.is_null()) {
                let external = m.get("external").map(|e| &e.node.value);
                let named = if matches!(external, Some(Value::Bool(true))) {
                    key.clone()
                } else {
                    format!("{name}_{key}")
                };
                m.insert("name".into(), entry(Node::string(named, span)));
            }
        }
    }
}

/// `KEY: null` entries of a mapping take the environment's value of KEY when it has one
/// (compose-go's `resolve` of `environment` and build `args`).
fn resolve_from_env(node: Option<&mut Entry>, env: &BTreeMap<String, String>) {
    let Some(m) = node.and_then(|e| e.node.as_map_mut()) else {
        return;
    };
    for (k, e) in m.iter_mut() {
        if e.node.is_null()
            && let Some(v) = env.get(k)
        {
            e.node.value = Value::Str(v.clone());
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
    /// Variables already warned about as unset (one warning per variable).
    unset_warned: std::collections::HashSet<String>,
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
            unset_warned: std::collections::HashSet::new(),
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
        let (merged, project_dir, files) = self.merged()?;
        let name = self.project_name(&merged, &project_dir)?;
        let project = crate::decode::decode(self, &merged, name, project_dir, files)?;
        crate::validate::validate(
            &project,
            !self.options.no_consistency,
            &mut self.diagnostics,
        );
        if self.has_errors() {
            return None;
        }
        Some(project)
    }

    /// The untyped model: the files merged, with the project's name and compose-go's
    /// normalisation ([`normalize_model`]), not decoded.
    fn model(&mut self) -> Option<Node> {
        let (mut merged, project_dir, _) = self.merged()?;
        let name = self.project_name(&merged, &project_dir)?;
        normalize_model(&mut merged, &name, &self.env);
        Some(merged)
    }

    /// The environment, the files, and their trees merged in order with the tags stripped;
    /// with the project directory and the files.
    fn merged(&mut self) -> Option<(Node, PathBuf, Vec<PathBuf>)> {
        let o = self.options;
        let project_directory = o.project_directory.as_deref().map(|p| self.abs(p));

        // The environment, as docker/compose's `ProjectOptions.toProjectOptions` builds it with
        // compose-go's `cli` options: the process environment, which always wins (`WithOsEnv`);
        // then the env files (`WithEnvFiles`, `WithDotEnv`): the `--env-file` files, else the
        // `.env` of compose-go's `GetWorkingDir` (the project directory, else the first `-f`
        // file's directory, else the current one), which may set COMPOSE_FILE; then the Compose
        // files (`WithConfigFileEnv`, `WithDefaultConfigPath`); then the same two options once
        // more, so that the `.env` of a project directory found only now (COMPOSE_FILE pointing
        // elsewhere) adds its variables without overriding any.
        let mut env = o.environment.clone();
        let first_dir = project_directory
            .clone()
            .or_else(|| {
                o.files
                    .iter()
                    .find(|f| f.as_os_str() != "-")
                    .and_then(|f| self.abs(f).parent().map(Path::to_path_buf))
            })
            .unwrap_or_else(|| o.working_dir.clone());
        self.add_env_files(&first_dir, &mut env)?;
        let start_dir = project_directory
            .clone()
            .unwrap_or_else(|| o.working_dir.clone());
        let files = self.config_files(&start_dir, &env)?;
        let project_dir = match project_directory {
            Some(p) => p,
            None => files
                .iter()
                .find(|f| f.as_os_str() != "-")
                .and_then(|f| f.parent().map(Path::to_path_buf))
                .unwrap_or_else(|| o.working_dir.clone()),
        };
        // With `--env-file`, the second pass reads the same files again: nothing to add.
        if self.explicit_env_files().is_empty() && project_dir != first_dir {
            self.add_env_files(&project_dir, &mut env)?;
        }
        self.env = env;

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
        Some((merged, project_dir, files))
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
        // compose-go's `WithConfigFileEnv`: relative paths start from the current directory
        // (`filepath.Abs`), whatever the project directory.
        if let Some(list) = env.get("COMPOSE_FILE").filter(|s| !s.is_empty()) {
            let sep = env
                .get("COMPOSE_PATH_SEPARATOR")
                .filter(|s| !s.is_empty())
                .cloned()
                .unwrap_or_else(|| ":".into());
            return Some(
                list.split(sep.as_str())
                    .filter(|s| !s.is_empty())
                    .map(|f| self.abs(Path::new(f)))
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

    /// Adds the variables of the env files to `env` without overriding any (compose-go's
    /// `WithDotEnv`, `Mapping.Merge`): the `--env-file` files (or COMPOSE_ENV_FILES), else `.env`
    /// in `dir` when there is
    /// one and COMPOSE_DISABLE_ENV_FILE is not true (`WithEnvFiles`). Within the files, later ones
    /// win, and a variable is looked up in `env` first, then in the files read before
    /// (`GetEnvFromFile`). `None` when a file is missing or invalid (the error is recorded).
    fn add_env_files(&mut self, dir: &Path, env: &mut BTreeMap<String, String>) -> Option<()> {
        let explicit_files = self.explicit_env_files();
        let (paths, explicit): (Vec<PathBuf>, bool) = if !explicit_files.is_empty() {
            (explicit_files, true)
        } else if self.default_env_file_disabled()? {
            return Some(());
        } else {
            let path = dir.join(".env");
            if !path.is_file() {
                return Some(());
            }
            (vec![path], false)
        };
        let mut from_files: BTreeMap<String, String> = BTreeMap::new();
        for path in paths {
            let text = match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if !explicit && e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    self.diagnostics.push(
                        Diagnostic::global(format!(
                            "cannot read env file {}: {e}",
                            self.display_path(&path).display()
                        ))
                        .with_help("check the path given with --env-file (relative paths start from the current directory)"),
                    );
                    return None;
                }
            };
            let file = self.sources.add(self.display_path(&path), text.clone());
            let (current, earlier) = (&*env, &from_files);
            let lookup = |k: &str| current.get(k).or_else(|| earlier.get(k)).cloned();
            match crate::dotenv::parse_dotenv(&text, &lookup) {
                Ok(pairs) => {
                    for (k, v) in pairs {
                        if let Some(v) = v {
                            from_files.insert(k, v);
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
        for (k, v) in from_files {
            env.entry(k).or_insert(v);
        }
        Some(())
    }

    /// The `--env-file` files, else those COMPOSE_ENV_FILES lists (comma-separated), as
    /// docker/compose's `ProjectOptions` takes them; relative paths start from the current
    /// directory.
    fn explicit_env_files(&self) -> Vec<PathBuf> {
        let o = self.options;
        if !o.env_files.is_empty() {
            return o.env_files.iter().map(|p| self.abs(p)).collect();
        }
        o.environment
            .get("COMPOSE_ENV_FILES")
            .map(|list| {
                list.split(',')
                    .filter(|p| !p.is_empty())
                    .map(|p| self.abs(Path::new(p)))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// COMPOSE_DISABLE_ENV_FILE from the process environment, read as Go's `strconv.ParseBool`
    /// reads it (compose-go's `WithEnvFiles`).
    fn default_env_file_disabled(&mut self) -> Option<bool> {
        let Some(value) = self.options.environment.get("COMPOSE_DISABLE_ENV_FILE") else {
            return Some(false);
        };
        match value.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
            other => {
                self.diagnostics.push(
                    Diagnostic::global(format!(
                        "COMPOSE_DISABLE_ENV_FILE is `{other}`, which is not a boolean"
                    ))
                    .with_help("set it to true or false, or unset it"),
                );
                None
            }
        }
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
        for mut doc in docs {
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
            // `privileged: yes` is a boolean with a warning, not a schema error (compose-go casts
            // before validating); values from variables are cast after interpolation.
            crate::canonical::cast_booleans(&mut doc, &mut self.diagnostics, false);
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
        crate::canonical::canonicalize(
            &mut tree,
            base,
            home.as_deref(),
            self.options.no_interpolate,
            &mut self.diagnostics,
        );
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

    /// Interpolates every string value (not keys) of a file's tree. A variable written without a
    /// default that is not set gives one warning per load, where it is first used, in Docker
    /// Compose's words (compose-go's `DefaultReplacementAppliedFunc`).
    pub(crate) fn interpolate(&mut self, node: &mut Node) {
        if self.options.no_interpolate {
            return;
        }
        let env = &self.env;
        let mut errors = Vec::new();
        let mut unset = Vec::new();
        interpolate_node(node, &|k| env.get(k).cloned(), &mut errors, &mut unset);
        self.diagnostics.extend(errors);
        for (name, span) in unset {
            if self.unset_warned.insert(name.clone()) {
                self.diagnostics.push(Diagnostic::warning(
                    format!("The {name:?} variable is not set. Defaulting to a blank string."),
                    span,
                ).with_help(format!(
                    "set {name} in the environment or in the .env file, give it a default with ${{{name}:-default}}, or write a literal `$` as `$$`"
                )));
            }
        }
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

/// Interpolates the string values of `node` in place, recording an error per failing value and
/// every variable without a default that is not set, with the place of the value it is used in.
fn interpolate_node(
    node: &mut Node,
    lookup: &dyn Fn(&str) -> Option<String>,
    errors: &mut Vec<Diagnostic>,
    unset: &mut Vec<(String, Span)>,
) {
    match &mut node.value {
        Value::Str(s) if s.contains('$') => {
            let found = std::cell::RefCell::new(Vec::new());
            let result = crate::interpolate::interpolate_reporting_unset(s, lookup, &|name| {
                found.borrow_mut().push(name.to_string())
            });
            unset.extend(found.into_inner().into_iter().map(|n| (n, node.span)));
            match result {
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
            }
        }
        Value::Seq(items) => {
            for item in items {
                interpolate_node(item, lookup, errors, unset);
            }
        }
        Value::Map(m) => {
            for e in m.values_mut() {
                interpolate_node(&mut e.node, lookup, errors, unset);
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

    /// The model of `text` as `config --no-interpolate` prints it, with the project directory
    /// written `DIR`.
    fn model(text: &str) -> String {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("compose.yaml"), text).expect("compose.yaml written");
        let options = LoadOptions {
            working_dir: dir.path().to_path_buf(),
            project_name: Some("p".into()),
            no_interpolate: true,
            ..LoadOptions::default()
        };
        let loaded = load_model(&options).unwrap_or_else(|d| panic!("{d}"));
        crate::config::render_model(&loaded.model, crate::config::Format::Yaml)
            .replace(dir.path().to_str().expect("a UTF-8 path"), "DIR")
    }

    /// A port list with a variable stays as written (compose-go's `ignoreParseError`), a volume
    /// that parses anyway is in long form, and the normalisation applies.
    #[test]
    fn the_model_keeps_expressions_and_is_normalised() {
        let text = "services:
  web:
    image: ${IMAGE:-nginx}
    privileged: ${PRIVILEGED}
    ports: [\"${PORT:-80}:80\", \"81:81\"]
    volumes: [\"${DATA}:/data\"]
    pull_policy: if_not_present
    build: {context: .}
  host:
    image: x
    network_mode: host
volumes:
  v: {}
  e: {external: true}
";
        assert_eq!(
            model(text),
            "name: p
networks:
  default:
    name: p_default
services:
  host:
    image: x
    network_mode: host
  web:
    build:
      context: DIR
      dockerfile: Dockerfile
    image: ${IMAGE:-nginx}
    networks:
      default: null
    ports:
      - ${PORT:-80}:80
      - 81:81
    privileged: ${PRIVILEGED}
    pull_policy: missing
    volumes:
      - source: ${DATA}
        target: /data
        type: volume
        volume: {}
volumes:
  e:
    external: true
    name: e
  v:
    name: p_v
"
        );
    }

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
