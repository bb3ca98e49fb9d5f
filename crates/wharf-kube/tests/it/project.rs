//! Loading projects for the tests: the conformance cases with their `cmdline` file, the examples,
//! and small projects written to a temporary directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wharf_kube::{Options, Translation, translate};
use wharf_model::{LoadOptions, Project};

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// A loaded project and the environment it was loaded with.
pub struct Loaded {
    pub project: Project,
    pub environment: BTreeMap<String, String>,
}

/// Loads `testdata/<case>` with exactly the variables and flags of its `cmdline` file.
pub fn case(case: &str) -> Loaded {
    let root = repo_root();
    let path = root.join("testdata").join(case).join("cmdline");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut words = text.split_whitespace();
    let mut options = LoadOptions {
        working_dir: root.clone(),
        ..LoadOptions::default()
    };
    for word in words.by_ref() {
        if word == "wharf" {
            break;
        }
        let (k, v) = word.split_once('=').expect("VAR=value before `wharf`");
        options.environment.insert(k.to_string(), v.to_string());
    }
    let rest: Vec<&str> = words.collect();
    let flags = rest.split_last().map(|(_, f)| f).unwrap_or_default();
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        let value = flags.next().expect("each flag has a value").to_string();
        match *flag {
            "-f" | "--file" => options.files.push(value.into()),
            "-p" | "--project-name" => options.project_name = Some(value),
            "--project-directory" => options.project_directory = Some(value.into()),
            "--profile" => options.profiles.push(value),
            "--env-file" => options.env_files.push(value.into()),
            other => panic!("unknown flag `{other}` in {}", path.display()),
        }
    }
    load(&options)
}

/// Loads a Compose file with an empty process environment.
pub fn file(path: &Path) -> Loaded {
    load(&LoadOptions {
        files: vec![path.to_path_buf()],
        working_dir: repo_root(),
        ..LoadOptions::default()
    })
}

/// Writes `compose` (and other files) to a temporary directory and loads it as project `t`.
pub fn inline(compose: &str, files: &[(&str, &str)]) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("compose.yaml"), compose).expect("write compose.yaml");
    for (name, text) in files {
        let p = dir.path().join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("create a directory");
        }
        std::fs::write(p, text).expect("write a file");
    }
    let loaded = load(&LoadOptions {
        project_name: Some("t".to_string()),
        project_directory: Some(dir.path().to_path_buf()),
        files: vec![dir.path().join("compose.yaml")],
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    });
    (dir, loaded)
}

fn load(options: &LoadOptions) -> Loaded {
    match wharf_model::load(options) {
        Ok(l) => Loaded {
            project: l.project,
            environment: l.environment,
        },
        Err(d) => panic!("the project does not load:\n{d}"),
    }
}

impl Loaded {
    pub fn options(&self) -> Options {
        Options {
            environment: self.environment.clone(),
            ..Options::default()
        }
    }

    pub fn translate(&self) -> Translation {
        self.translate_with(&self.options())
    }

    pub fn translate_with(&self, options: &Options) -> Translation {
        translate(&self.project, options).unwrap_or_else(|e| panic!("export failed: {e}"))
    }
}
