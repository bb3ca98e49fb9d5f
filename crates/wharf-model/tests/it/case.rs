//! A test case's command line: `testdata/<case>/cmdline` holds the command that loads the case by
//! hand, from the top of the repository, as `[VAR=value]... wharf [flags]... config`. The tests
//! load the case with exactly those variables as the process environment (never the real one).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wharf_model::LoadOptions;

/// The top of the repository: the working directory of every case's command line.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

pub fn testdata() -> PathBuf {
    repo_root().join("testdata")
}

/// A parsed `cmdline` file.
#[derive(Debug)]
pub struct CommandLine {
    pub environment: BTreeMap<String, String>,
    /// The global flags, between `wharf` and `config`.
    pub flags: Vec<String>,
}

impl CommandLine {
    pub fn read(case_dir: &Path) -> CommandLine {
        let path = case_dir.join("cmdline");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        CommandLine::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str) -> Result<CommandLine, String> {
        let mut words = text.split_whitespace();
        let mut environment = BTreeMap::new();
        loop {
            match words.next() {
                Some("wharf") => break,
                Some(word) => {
                    let (k, v) = word
                        .split_once('=')
                        .ok_or_else(|| format!("expected VAR=value or `wharf`, found `{word}`"))?;
                    environment.insert(k.to_string(), v.to_string());
                }
                None => return Err("no `wharf` in the command line".into()),
            }
        }
        let rest: Vec<String> = words.map(String::from).collect();
        match rest.split_last() {
            Some((last, flags)) if last == "config" => Ok(CommandLine {
                environment,
                flags: flags.to_vec(),
            }),
            _ => Err("the command line must end with `config`".into()),
        }
    }

    /// The options `wharf` builds from these flags, run from `working_dir`.
    pub fn load_options(&self, working_dir: &Path) -> LoadOptions {
        let mut options = LoadOptions {
            working_dir: working_dir.to_path_buf(),
            environment: self.environment.clone(),
            ..LoadOptions::default()
        };
        let mut flags = self.flags.iter();
        while let Some(flag) = flags.next() {
            let mut value = || {
                flags
                    .next()
                    .cloned()
                    .unwrap_or_else(|| panic!("{flag} needs a value"))
            };
            match flag.as_str() {
                "-f" | "--file" => options.files.push(value().into()),
                "-p" | "--project-name" => options.project_name = Some(value()),
                "--project-directory" => options.project_directory = Some(value().into()),
                "--profile" => options.profiles.push(value()),
                "--env-file" => options.env_files.push(value().into()),
                other => panic!("unknown flag `{other}` in a cmdline file"),
            }
        }
        options
    }
}

#[test]
fn parses_variables_flags_and_verb() {
    let c = CommandLine::parse("A=1 B=x=y wharf -p edd --profile dev config\n").unwrap();
    assert_eq!(c.environment.get("A").map(String::as_str), Some("1"));
    assert_eq!(c.environment.get("B").map(String::as_str), Some("x=y"));
    assert_eq!(c.flags, ["-p", "edd", "--profile", "dev"]);
    let o = c.load_options(Path::new("/r"));
    assert_eq!(o.project_name.as_deref(), Some("edd"));
    assert_eq!(o.profiles, ["dev"]);
    assert!(CommandLine::parse("wharf config --format json").is_err());
    assert!(CommandLine::parse("A config").is_err());
}
