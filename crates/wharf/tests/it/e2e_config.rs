//! The `config` steps of docker/compose's end-to-end tests (`pkg/e2e/*_test.go`), replayed
//! through the `wharf` binary on their fixtures in `../shared/conformance/docker_compose/pkg/e2e`
//! (the directory those tests run `docker compose` from). Each test names the Go test it replays
//! and asserts what that test asserts. Without `../shared` they are skipped with a message, unless
//! `WHARF_REQUIRE_CONFORMANCE=1` (set by `.ci/run`) makes that a failure.
//!
//! Not replayed:
//! - `TestConfigServicesFilter` (`--filter`) while its fixture, `fixtures/config-filter`, is not
//!   in the corpus: [`test_config_services_filter`] skips with a message until it is (wharf's own
//!   test of `--filter` is `config_services_filter` in `config.rs`).
//! - `TestConfigHashMatchesContainerLabel`, which runs `up` on the Docker Engine; and the values
//!   of `config --hash`: wharf prints its own hash of a service (the `config-hash` label of its
//!   containers), not Docker Compose's `ServiceHash`, so only the shape `<service> <hash>` is
//!   asserted ([`test_local_compose_config_no_consistency`]).

use std::path::{Path, PathBuf};

use crate::{repo_root, wharf};

/// docker/compose's `pkg/e2e` in the corpus, or `None` (after saying so) when `../shared` is
/// absent.
fn e2e_dir() -> Option<PathBuf> {
    let dir = repo_root().join("../shared/conformance/docker_compose/pkg/e2e");
    if let Ok(dir) = dir.canonicalize() {
        return Some(dir);
    }
    assert!(
        std::env::var("WHARF_REQUIRE_CONFORMANCE").as_deref() != Ok("1"),
        "{} is missing and WHARF_REQUIRE_CONFORMANCE=1: docker/compose's e2e config steps cannot be replayed",
        dir.display()
    );
    eprintln!(
        "SKIPPED: {} is absent, so docker/compose's e2e `config` steps are not replayed (set WHARF_REQUIRE_CONFORMANCE=1 to make this a failure)",
        dir.display()
    );
    None
}

/// Runs `wharf ARGS` in `dir` with `env` as the whole environment; it must succeed. Returns
/// standard output and standard error.
fn config(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (String, String) {
    let mut cmd = wharf(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.args(args).assert().success().get_output().clone();
    (
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        String::from_utf8(out.stderr).expect("UTF-8 errors"),
    )
}

/// Runs `wharf ARGS` in `dir` with an empty environment; it must fail with exit code 1. Returns
/// standard output and standard error.
fn config_fails(dir: &Path, args: &[&str]) -> (String, String) {
    let out = wharf(dir).args(args).assert().code(1).get_output().clone();
    (
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        String::from_utf8(out.stderr).expect("UTF-8 errors"),
    )
}

fn assert_contains(output: &str, expected: &str) {
    assert!(
        output.contains(expected),
        "expected {expected:?} in the output:\n{output}"
    );
}

/// `TestLocalComposeConfig` (pkg/e2e/config_test.go), its YAML and JSON steps: the port shorthand
/// `${PORT:-8080}:80` is expanded and interpolated.
#[test]
fn test_local_compose_config() {
    let Some(e2e) = e2e_dir() else { return };
    let dir = e2e.join("testdata/TestLocalComposeConfig");
    let (yaml, _) = config(&dir, &[], &["config"]);
    assert_contains(
        &yaml,
        "\n    ports:\n      - mode: ingress\n        target: 80\n        published: \"8080\"\n        protocol: tcp",
    );
    let (json, _) = config(&dir, &[], &["config", "--format", "json"]);
    assert_contains(&json, r#""published": "8080""#);
}

/// `TestLocalComposeConfig`, its `--no-interpolate` steps: the port keeps its variable expression,
/// and naming a service says on standard error that the whole model is rendered.
#[test]
fn test_local_compose_config_no_interpolate() {
    let Some(e2e) = e2e_dir() else { return };
    let dir = e2e.join("testdata/TestLocalComposeConfig");
    let (out, _) = config(&dir, &[], &["config", "--no-interpolate"]);
    assert_contains(&out, "- ${PORT:-8080}:80");
    let (out, err) = config(&dir, &[], &["config", "--no-interpolate", "test"]);
    assert_contains(
        &err,
        "service filtering is not applied when --no-interpolate is set",
    );
    assert_contains(&out, "- ${PORT:-8080}:80");
}

/// `TestLocalComposeConfig`, its `--variables` steps: the variables as JSON and as YAML, in
/// Compose's shapes, and the warning when a service is named.
#[test]
fn test_local_compose_config_variables() {
    let Some(e2e) = e2e_dir() else { return };
    let dir = e2e.join("testdata/TestLocalComposeConfig");
    let (out, _) = config(&dir, &[], &["config", "--variables", "--format", "json"]);
    assert_contains(
        &out,
        "{\n    \"PORT\": {\n        \"Name\": \"PORT\",\n        \"DefaultValue\": \"8080\",\n        \"PresenceValue\": \"\",\n        \"Required\": false\n    }\n}",
    );
    let (out, _) = config(&dir, &[], &["config", "--variables", "--format", "yaml"]);
    assert_contains(
        &out,
        "PORT:\n    name: PORT\n    defaultvalue: \"8080\"\n    presencevalue: \"\"\n    required: false",
    );
    let (out, err) = config(&dir, &[], &["config", "--variables", "test"]);
    assert_contains(
        &err,
        "service filtering is not applied when --variables is set",
    );
    assert_contains(&out, "PORT");
}

/// `TestConfigInterpolate` (pkg/e2e/compose_test.go): `--no-interpolate` keeps `${MYVAR}` while
/// still resolving the build context and naming the default network; the model's keys are
/// sorted, as Compose prints a Go map.
#[test]
fn test_config_interpolate() {
    let Some(e2e) = e2e_dir() else { return };
    let project = "e2e-config-interpolate";
    let (out, _) = config(
        &e2e,
        &[],
        &[
            "-f",
            "testdata/TestConfigInterpolate/compose.yaml",
            "--project-name",
            project,
            "config",
            "--no-interpolate",
        ],
    );
    let context = e2e.join("testdata/TestConfigInterpolate/nginx-build");
    assert_contains(
        &out,
        &format!(
            "name: {project}\nnetworks:\n  default:\n    name: {project}_default\nservices:\n  nginx:\n    build:\n      context: {}\n      dockerfile: ${{MYVAR}}\n    networks:\n      default: null\n",
            context.display()
        ),
    );
}

/// `TestLocalComposeConfigNoConsistency` (pkg/e2e/config_test.go): with `--no-consistency` the
/// service without an image or a build is listed, with its volume, network and model; `--hash`
/// hashes it; `--profile extra` enables the gated service.
#[test]
fn test_local_compose_config_no_consistency() {
    let Some(e2e) = e2e_dir() else { return };
    let dir = e2e.join("testdata/TestLocalComposeConfigNoConsistency");
    let p = ["--project-name", "e2e-local-compose-config-no-consistency"];
    let run = |args: &[&str]| config(&dir, &[], &[&p[..], args].concat()).0;
    assert_contains(
        &run(&["config", "--no-consistency", "--services"]),
        "incomplete",
    );
    assert_contains(&run(&["config", "--no-consistency", "--volumes"]), "data");
    assert_contains(
        &run(&["config", "--no-consistency", "--networks"]),
        "internal",
    );
    assert_contains(
        &run(&["config", "--no-consistency", "--models"]),
        "ai/example",
    );
    let hashes = run(&["config", "--no-consistency", "--hash", "*"]);
    assert_contains(&hashes, "incomplete ");
    // wharf's hash, not Compose's: one `<service> <hash>` line per enabled service.
    let fields: Vec<&str> = hashes.split_whitespace().collect();
    assert_eq!(fields.len(), 2, "{hashes}");
    assert_contains(
        &run(&[
            "--profile",
            "extra",
            "config",
            "--no-consistency",
            "--services",
        ]),
        "gated",
    );
}

/// `TestConfigServicesFilter` (pkg/e2e/config_test.go) on `fixtures/config-filter`, once the
/// corpus has that fixture; until then it says so and returns.
#[test]
fn test_config_services_filter() {
    let Some(e2e) = e2e_dir() else { return };
    let file = "./fixtures/config-filter/compose.yaml";
    if !e2e.join(file).is_file() {
        eprintln!(
            "SKIPPED: {file} is not in the corpus, so TestConfigServicesFilter is not replayed"
        );
        return;
    }
    let base = [
        "-f",
        file,
        "--project-name",
        "compose-e2e-config-filter",
        "config",
    ];
    let run = |args: &[&str]| config(&e2e, &[], &[&base[..], args].concat()).0;
    assert_eq!(
        run(&["--services", "--filter", "profile=workers"]),
        "monitor\nworker\n"
    );
    let (_, err) = config_fails(
        &e2e,
        &[&base[..], &["--services", "--filter", "profile=*"]].concat(),
    );
    assert_contains(&err, "profiles must be selected explicitly");
    assert_eq!(
        run(&["--services", "--filter", "label=tier=backend"]),
        "core\n"
    );
    assert_eq!(
        run(&[
            "--services",
            "--filter",
            "profile=workers",
            "--filter",
            "label=tier=backend"
        ]),
        "worker\n"
    );
    assert_eq!(run(&["--services", "--filter", "profile=unknown"]), "");
    let (_, err) = config_fails(
        &e2e,
        &[&base[..], &["--filter", "profile=workers"]].concat(),
    );
    assert_contains(&err, "--filter requires --services");
    let (_, err) = config_fails(
        &e2e,
        &[&base[..], &["--services", "--filter", "state=running"]].concat(),
    );
    assert_contains(&err, "unknown criteria \"state\"");
}

/// `TestConfig` (pkg/e2e/compose_test.go): the whole output for a service with only a build.
#[test]
fn test_config() {
    let Some(e2e) = e2e_dir() else { return };
    let (out, _) = config(
        &e2e,
        &[],
        &[
            "-f",
            "./fixtures/simple-build-test/compose.yaml",
            "-p",
            "compose-e2e-convert",
            "config",
        ],
    );
    let context = e2e.join("fixtures/simple-build-test/nginx-build");
    assert_eq!(
        out,
        format!(
            "name: compose-e2e-convert\nservices:\n  nginx:\n    build:\n      context: {}\n      dockerfile: Dockerfile\n    networks:\n      default: null\nnetworks:\n  default:\n    name: compose-e2e-convert_default\n",
            context.display()
        )
    );
}

/// `TestEnvInterpolation` (pkg/e2e/compose_environment_test.go), first step: the process
/// environment's WHEREAMI wins over the `.env` file's, also inside the `.env` file's own
/// `IMAGE=default_env:${WHEREAMI}`.
#[test]
fn test_env_interpolation() {
    let Some(e2e) = e2e_dir() else { return };
    let (out, _) = config(
        &e2e,
        &[("WHEREAMI", "shell")],
        &["-f", "testdata/TestEnvInterpolation/compose.yaml", "config"],
    );
    assert_contains(&out, "IMAGE: default_env:shell");
}

/// `TestEnvInterpolation`, second step ("using default value fallback"): `${WHEREAMI:-...}` in
/// the `.env` file takes its default.
#[test]
fn test_env_interpolation_default_value() {
    let Some(e2e) = e2e_dir() else { return };
    let (out, _) = config(
        &e2e,
        &[],
        &[
            "-f",
            "testdata/TestEnvInterpolationDefaultValue/compose.yaml",
            "config",
        ],
    );
    assert_contains(&out, "IMAGE: default_env:EnvFileDefaultValue");
}

/// `TestComposeFileSetByDotEnv` (pkg/e2e/compose_test.go): run in `fixtures/dotenv`, whose
/// `.env` sets COMPOSE_FILE, IMAGE_NAME and COMPOSE_PROFILES.
#[test]
fn test_compose_file_set_by_dot_env() {
    let Some(e2e) = e2e_dir() else { return };
    let (out, _) = config(&e2e.join("fixtures/dotenv"), &[], &["config"]);
    assert_contains(&out, "image: test:latest");
    assert_contains(&out, "image: enabled:profile");
}

/// `TestComposeFileSetByProjectDirectory`: `--project-directory fixtures/dotenv/development`.
#[test]
fn test_compose_file_set_by_project_directory() {
    let Some(e2e) = e2e_dir() else { return };
    let (out, _) = config(
        &e2e,
        &[],
        &[
            "--project-directory",
            "fixtures/dotenv/development",
            "config",
        ],
    );
    assert_contains(&out, "image: backend:latest");
}

/// `TestComposeFileSetByEnvFile`: an `--env-file` (in a temporary directory) sets COMPOSE_FILE
/// relative to the current directory, with the image variables and COMPOSE_PROFILES.
#[test]
fn test_compose_file_set_by_env_file() {
    let Some(e2e) = e2e_dir() else { return };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let env_file = tmp.path().join(".env");
    std::fs::write(
        &env_file,
        "\nCOMPOSE_FILE=fixtures/dotenv/development/compose.yaml\nIMAGE_NAME=test\nIMAGE_TAG=latest\nCOMPOSE_PROFILES=test\n",
    )
    .expect("env file written");
    let (out, _) = config(
        &e2e,
        &[],
        &["--env-file", env_file.to_str().expect("UTF-8"), "config"],
    );
    assert_contains(&out, "image: test:latest");
    assert_contains(&out, "image: enabled:profile");
}

/// `TestRawEnvFile` (pkg/e2e/env_file_test.go) runs the service and expects it to print
/// `'{"key": "value"}'`: with `format: raw` the quotes are part of the value. Replayed on the
/// environment `config` prints.
#[test]
fn test_raw_env_file() {
    let Some(e2e) = e2e_dir() else { return };
    let (out, _) = config(
        &e2e,
        &[],
        &[
            "-f",
            "testdata/TestRawEnvFile/compose.yaml",
            "config",
            "--format",
            "json",
        ],
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    assert_eq!(
        json["services"]["test"]["environment"]["TEST_VAR"],
        r#"'{"key": "value"}'"#
    );
}

/// An unset variable without a default is reported on standard error, once, in Docker Compose's
/// words (`${MYVAR}` in the fixture of `TestConfigInterpolate`, used twice here), and `config`
/// still succeeds with a blank value.
#[test]
fn unset_variable_warns_once_on_standard_error() {
    let Some(e2e) = e2e_dir() else { return };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let compose = tmp.path().join("compose.yaml");
    let fixture = std::fs::read_to_string(e2e.join("testdata/TestConfigInterpolate/compose.yaml"))
        .expect("the fixture");
    std::fs::write(
        &compose,
        format!("{fixture}    labels:\n      again: ${{MYVAR}}\n"),
    )
    .expect("compose file written");
    let (out, err) = config(tmp.path(), &[], &["config"]);
    assert_contains(&out, "dockerfile: \"\"");
    assert_eq!(
        err.matches("The \"MYVAR\" variable is not set. Defaulting to a blank string.")
            .count(),
        1,
        "{err}"
    );
}

/// Syntax of the schema Docker Compose v2 validates with today: `pre_start` hooks
/// (`testdata/TestPreStartHookSuccess`) and models (`testdata/TestComposeModel`) load, and
/// `config` prints them back.
#[test]
fn pre_start_hooks_and_models_are_printed_back() {
    let Some(e2e) = e2e_dir() else { return };
    let (out, _) = config(
        &e2e,
        &[],
        &[
            "-f",
            "testdata/TestPreStartHookSuccess/compose.yaml",
            "config",
        ],
    );
    assert_contains(
        &out,
        "    pre_start:\n      - image: alpine\n        command: sh -c 'echo \"initialized\" > /shared/init.txt'\n",
    );
    let (out, _) = config(
        &e2e,
        &[],
        &["-f", "testdata/TestComposeModel/compose.yaml", "config"],
    );
    assert_contains(&out, "    models:\n      - foo\n");
    assert_contains(&out, "models:\n  foo:\n    model: ai/smollm2\n");
}
