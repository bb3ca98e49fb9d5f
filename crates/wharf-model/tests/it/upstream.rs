//! Behaviours replayed from Docker Compose's and compose-go's own tests: each test names the
//! upstream test (or fixture) it follows. Fixtures from `../shared/conformance/` (the third-party
//! corpus) are read in place; without `../shared` those tests are skipped with a message, unless
//! `WHARF_REQUIRE_CONFORMANCE=1` makes that a failure. Cases that compose-go writes inline in its
//! Go test are written to a temporary directory here the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wharf_model::diag::Severity;
use wharf_model::{LoadOptions, Loaded, load};

use crate::case::repo_root;

/// docker/compose's e2e directory in the corpus (`pkg/e2e`), the working directory its tests run
/// `docker compose` from; `None` (after saying so) when `../shared` is absent.
fn e2e_dir() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/conformance/docker_compose/pkg/e2e");
    if let Ok(dir) = dir.canonicalize() {
        return Some(dir);
    }
    assert!(
        std::env::var("WHARF_REQUIRE_CONFORMANCE").as_deref() != Ok("1"),
        "{} is missing and WHARF_REQUIRE_CONFORMANCE=1: the replayed upstream tests cannot run",
        dir.display()
    );
    eprintln!(
        "SKIPPED: {} is absent, so the tests replayed from docker/compose's e2e fixtures do not run (set WHARF_REQUIRE_CONFORMANCE=1 to make this a failure)",
        dir.display()
    );
    None
}

fn options(working_dir: &Path) -> LoadOptions {
    LoadOptions {
        working_dir: working_dir.to_path_buf(),
        ..LoadOptions::default()
    }
}

fn loaded(options: &LoadOptions) -> Loaded {
    load(options).unwrap_or_else(|d| panic!("the project should load:\n{d}"))
}

fn image(l: &Loaded, service: &str) -> Option<String> {
    l.project.services.get(service)?.image.clone()
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("directory created");
    std::fs::write(&path, text).expect("file written");
    path
}

/// docker/compose `TestComposeFileSetByEnvFile` (pkg/e2e/compose_test.go): an `--env-file` that
/// sets COMPOSE_FILE chooses the Compose file (relative to the current directory), and its other
/// variables and COMPOSE_PROFILES apply, instead of wharf walking up to a parent's compose file.
#[test]
fn compose_file_set_by_env_file() {
    let Some(e2e) = e2e_dir() else { return };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let env_file = write(
        tmp.path(),
        ".env",
        "\nCOMPOSE_FILE=fixtures/dotenv/development/compose.yaml\nIMAGE_NAME=test\nIMAGE_TAG=latest\nCOMPOSE_PROFILES=test\n",
    );
    let l = loaded(&LoadOptions {
        env_files: vec![env_file],
        ..options(&e2e)
    });
    assert_eq!(
        l.project.files,
        [e2e.join("fixtures/dotenv/development/compose.yaml")]
    );
    assert_eq!(image(&l, "backend").as_deref(), Some("test:latest"));
    assert_eq!(image(&l, "test").as_deref(), Some("enabled:profile"));
}

/// docker/compose `TestComposeFileSetByDotEnv`: the working directory's `.env` sets COMPOSE_FILE
/// to a file in another directory; its variables and COMPOSE_PROFILES still apply, and the
/// project directory's `.env` (`IMAGE_NAME="${IMAGE_NAME:-backend}"`) adds IMAGE_TAG without
/// overriding IMAGE_NAME.
#[test]
fn compose_file_set_by_dot_env() {
    let Some(e2e) = e2e_dir() else { return };
    let l = loaded(&options(&e2e.join("fixtures/dotenv")));
    assert_eq!(
        l.project.working_dir,
        e2e.join("fixtures/dotenv/development")
    );
    assert_eq!(image(&l, "backend").as_deref(), Some("test:latest"));
    assert_eq!(image(&l, "test").as_deref(), Some("enabled:profile"));
    assert_eq!(
        l.environment.get("COMPOSE_PROFILES").map(String::as_str),
        Some("test")
    );
}

/// docker/compose `TestComposeFileSetByProjectDirectory`: with `--project-directory`, only that
/// directory's `.env` is read (the `test` profile stays off).
#[test]
fn compose_file_set_by_project_directory() {
    let Some(e2e) = e2e_dir() else { return };
    let l = loaded(&LoadOptions {
        project_directory: Some("fixtures/dotenv/development".into()),
        ..options(&e2e)
    });
    assert_eq!(image(&l, "backend").as_deref(), Some("backend:latest"));
    assert!(l.project.disabled_services.contains_key("test"));
}

/// compose-go `WithDotEnv` merges without overriding: the process environment wins over both
/// `.env` files, and the working directory's `.env` wins over the project directory's.
#[test]
fn dot_env_files_never_override_what_is_set() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    write(
        tmp.path(),
        ".env",
        "COMPOSE_FILE=app/compose.yaml\nA=from-cwd\n",
    );
    write(
        tmp.path(),
        "app/.env",
        "A=from-project\nB=from-project\nC=project\n",
    );
    write(
        tmp.path(),
        "app/compose.yaml",
        "services:\n  s:\n    image: ${A}-${B}-${C}\n",
    );
    let l = loaded(&LoadOptions {
        environment: BTreeMap::from([("C".to_string(), "shell".to_string())]),
        ..options(tmp.path())
    });
    assert_eq!(
        image(&l, "s").as_deref(),
        Some("from-cwd-from-project-shell")
    );
}

/// docker/compose `TestEnvPriority`, step "shell priority from COMPOSE_ENV_FILES variable":
/// COMPOSE_ENV_FILES names the env files when there is no `--env-file`, instead of the default
/// `.env` (whose `WHEREAMI=Env File` the other steps see).
#[test]
fn compose_env_files_replaces_the_default_dot_env() {
    let Some(e2e) = e2e_dir() else { return };
    let with = |environment: &[(&str, &str)]| {
        loaded(&LoadOptions {
            files: vec!["testdata/TestEnvPriority/compose.yaml".into()],
            environment: environment
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..options(&e2e)
        })
        .environment
        .get("WHEREAMI")
        .cloned()
    };
    assert_eq!(with(&[]).as_deref(), Some("Env File"));
    assert_eq!(
        with(&[(
            "COMPOSE_ENV_FILES",
            "testdata/TestEnvPriority/.env.override.with.default"
        )])
        .as_deref(),
        Some("EnvFileDefaultValue")
    );
}

/// COMPOSE_DISABLE_ENV_FILE (compose-go `WithEnvFiles`) turns the default `.env` off.
#[test]
fn compose_disable_env_file_skips_the_default_dot_env() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    write(tmp.path(), ".env", "TAG=from-dot-env\n");
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  s:\n    image: a:${TAG:-none}\n",
    );
    let l = loaded(&LoadOptions {
        environment: BTreeMap::from([("COMPOSE_DISABLE_ENV_FILE".to_string(), "true".to_string())]),
        ..options(tmp.path())
    });
    assert_eq!(image(&l, "s").as_deref(), Some("a:none"));
}

/// docker/compose `TestRawEnvFile` (fixture `testdata/TestRawEnvFile`): `format: raw` keeps the
/// value exactly as written, quotes included (the Go test expects `'{"key": "value"}'`).
#[test]
fn raw_env_file_keeps_values_as_written() {
    let Some(e2e) = e2e_dir() else { return };
    let l = loaded(&LoadOptions {
        files: vec!["testdata/TestRawEnvFile/compose.yaml".into()],
        ..options(&e2e)
    });
    assert_eq!(
        l.project.services["test"].environment.get("TEST_VAR"),
        Some(&Some(r#"'{"key": "value"}'"#.to_string()))
    );
}

/// docker/compose's `rawEnv` (docker/cli `kvfile`): no `$` expansion, no escapes, trailing blanks
/// kept, a bare key taken from the environment; an unknown `format` is refused, as compose-go's
/// `ParseWithFormat` refuses it.
#[test]
fn raw_env_file_expands_nothing_and_unknown_formats_are_refused() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    write(
        tmp.path(),
        "raw.env",
        "# comment\n  A=$HOME \"x\" \\n \nB\nC=x\nD=${UNSET:-d}\n",
    );
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  s:\n    image: a\n    environment: {C: from-environment}\n    env_file:\n      - path: raw.env\n        format: raw\n",
    );
    let l = loaded(&LoadOptions {
        environment: BTreeMap::from([("B".to_string(), "shell".to_string())]),
        ..options(tmp.path())
    });
    let env = &l.project.services["s"].environment;
    assert_eq!(env["A"].as_deref(), Some("$HOME \"x\" \\n "));
    assert_eq!(env["B"].as_deref(), Some("shell"));
    assert_eq!(env["C"].as_deref(), Some("from-environment"));
    assert_eq!(env["D"].as_deref(), Some("${UNSET:-d}"));

    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  s:\n    image: a\n    env_file:\n      - path: raw.env\n        format: toml\n",
    );
    let d = load(&options(tmp.path())).expect_err("an unknown format is an error");
    assert!(
        d.to_string()
            .contains("env file raw.env of service `s`: unsupported format `toml`"),
        "{d}"
    );
}

/// compose-go `TestLoadWithIncludeEnv` (loader/include_test.go): a variable declared without a
/// value in an included file takes its value from the include's `env_file`, and that value stays
/// inside the include.
#[test]
fn bare_variable_in_an_included_file_takes_the_include_env_file() {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    write(
        tmp.path(),
        "compose.yml",
        "\ninclude:\n  - path:\n    - ./module/compose.yml\n    env_file:\n      - ./custom.env\nservices:\n  a:\n    image: alpine\n    environment:\n      - VAR_NAME",
    );
    write(tmp.path(), "custom.env", "VAR_NAME=value");
    write(
        tmp.path(),
        "module/compose.yml",
        "\nservices:\n  b:\n    image: alpine\n    environment:\n      - VAR_NAME\n  c:\n    image: alpine\n    environment:\n      - VAR_NAME",
    );
    let l = loaded(&LoadOptions {
        files: vec!["compose.yml".into()],
        ..options(tmp.path())
    });
    let services = &l.project.services;
    assert_eq!(services["a"].environment.get("VAR_NAME"), Some(&None));
    assert_eq!(
        services["b"].environment["VAR_NAME"].as_deref(),
        Some("value")
    );
    assert_eq!(
        services["c"].environment["VAR_NAME"].as_deref(),
        Some("value")
    );
}

/// An unset variable without a default warns once per variable, in Docker Compose's words
/// (compose-go `DefaultReplacementAppliedFunc`), at its first use; docker/compose's
/// `testdata/TestConfigInterpolate` fixture uses `${MYVAR}` unset. Variables with a default or
/// that are set do not warn.
#[test]
fn an_unset_variable_warns_once() {
    let Some(e2e) = e2e_dir() else { return };
    let l = loaded(&LoadOptions {
        files: vec!["testdata/TestConfigInterpolate/compose.yaml".into()],
        ..options(&e2e)
    });
    let warnings: Vec<&str> = l
        .warnings
        .items
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| d.message.as_str())
        .collect();
    assert_eq!(
        warnings,
        ["The \"MYVAR\" variable is not set. Defaulting to a blank string."]
    );

    let tmp = tempfile::tempdir().expect("a temporary directory");
    write(
        tmp.path(),
        "compose.yaml",
        "services:\n  db:\n    image: postgres\n    command: postgres -D $WHARF_VOLUME_PGDATA -c ${WHARF_VOLUME_PGDATA}/x ${SET} ${DEFAULTED:-d} $${ESCAPED}\n    environment:\n      OTHER: $OTHER\n",
    );
    let l = loaded(&LoadOptions {
        environment: BTreeMap::from([("SET".to_string(), "1".to_string())]),
        ..options(tmp.path())
    });
    let warnings: Vec<(String, u32)> = l
        .warnings
        .items
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| (d.message.clone(), d.span.map_or(0, |s| s.line)))
        .collect();
    assert_eq!(
        warnings,
        [
            (
                "The \"WHARF_VOLUME_PGDATA\" variable is not set. Defaulting to a blank string."
                    .to_string(),
                4
            ),
            (
                "The \"OTHER\" variable is not set. Defaulting to a blank string.".to_string(),
                6
            ),
        ]
    );
}

/// The schema Docker Compose v2 validates with today (compose-go's, at e70e961): `pre_start`
/// hooks (docker/compose `testdata/TestPreStartHookSuccess`) and models (`TestComposeModel`,
/// and a service's null `models:` entry in `TestLocalComposeConfigNoConsistency`) load and are
/// kept for `wharf config`.
#[test]
fn newer_syntax_of_compose_go_schema_loads() {
    let Some(e2e) = e2e_dir() else { return };
    let load_fixture = |case: &str| {
        loaded(&LoadOptions {
            files: vec![format!("testdata/{case}/compose.yaml").into()],
            ..options(&e2e)
        })
    };
    let l = load_fixture("TestPreStartHookSuccess");
    let hooks = &l.project.services["sample"].extra["pre_start"];
    assert_eq!(hooks[0]["image"], "alpine");

    let l = load_fixture("TestComposeModel");
    assert_eq!(l.project.models["foo"]["model"], "ai/smollm2");

    let l = load_fixture("TestLocalComposeConfigNoConsistency");
    assert_eq!(
        l.project.services["incomplete"].extra["models"]["llm"],
        serde_json::Value::Null
    );
}

/// `wharf config` prints these as `docker compose config` does: `extra_hosts` as compose-go's
/// `HostsList` marshals it (a sorted list of `host=ip`), `deploy.labels` as a map (`Labels`), a
/// file `mode` as compose-go's `FileMode` (an octal string, in YAML and JSON alike), `x-*` keys of
/// top-level resources kept, and top-level `models` printed back.
#[test]
fn config_output_shapes_follow_compose_go() {
    use wharf_model::config::{Format, render};

    let tmp = tempfile::tempdir().expect("a temporary directory");
    write(tmp.path(), "s.txt", "secret");
    write(
        tmp.path(),
        "compose.yaml",
        r#"services:
  web:
    image: nginx
    extra_hosts:
      - "somehost:162.242.195.82"
      - "otherhost=50.31.209.229,50.31.209.230"
      - "myhostv6=[::1]"
    deploy:
      labels: ["com.example.a=1", "com.example.b"]
    secrets:
      - source: s
        mode: 0440
    volumes: [data:/data]
    models: [llm]
  api:
    image: api
    extra_hosts:
      db: 10.0.0.2
secrets:
  s:
    file: ./s.txt
    x-sec: 1
volumes:
  data:
    x-vol: {a: 1}
models:
  llm:
    model: ai/smollm2
"#,
    );
    let l = loaded(&options(tmp.path()));
    let yaml = render(&l.project, Format::Yaml);
    for fragment in [
        "    extra_hosts:\n      - myhostv6=::1\n      - otherhost=50.31.209.229\n      - otherhost=50.31.209.230\n      - somehost=162.242.195.82\n",
        "    extra_hosts:\n      - db=10.0.0.2\n",
        "    deploy:\n      labels:\n        com.example.a: \"1\"\n        com.example.b: \"\"\n",
        "      - source: s\n        mode: \"0440\"\n",
        "    x-sec: 1\n",
        "    x-vol:\n      a: 1\n",
        "models:\n  llm:\n    model: ai/smollm2\n",
    ] {
        assert!(yaml.contains(fragment), "{fragment:?} not in:\n{yaml}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&render(&l.project, Format::Json)).expect("valid JSON");
    assert_eq!(json["services"]["web"]["secrets"][0]["mode"], "0440");
    assert_eq!(json["services"]["api"]["extra_hosts"][0], "db=10.0.0.2");
    assert_eq!(json["models"]["llm"]["model"], "ai/smollm2");
}
