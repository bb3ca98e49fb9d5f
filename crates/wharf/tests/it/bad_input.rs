//! Bad inputs through the binary: `wharf config` run in the case's directory exits with a failure
//! and names the place of each error as `compose.yaml:LINE:COL` on standard error.

use crate::{repo_root, wharf};

/// Runs `wharf config` in `testdata/bad/<case>`; it must fail with status 1, print nothing on
/// standard output, and return its standard error.
fn stderr_of(case: &str) -> String {
    let dir = repo_root().join("testdata/bad").join(case);
    let out = wharf(&dir)
        .arg("config")
        .assert()
        .failure()
        .code(1)
        .stdout("")
        .get_output()
        .clone();
    String::from_utf8(out.stderr).expect("UTF-8 standard error")
}

fn fails_at(case: &str, message: &str, places: &[&str]) {
    let stderr = stderr_of(case);
    assert!(stderr.contains(&format!("error: {message}\n")), "{stderr}");
    for place in places {
        assert!(
            stderr.contains(&format!("--> {place}\n")),
            "no `{place}` in:\n{stderr}"
        );
    }
}

#[test]
fn unknown_key() {
    fails_at(
        "unknown-key",
        "unknown key `comand` in service `web`",
        &["compose.yaml:4:5"],
    );
}

#[test]
fn required_variable() {
    fails_at(
        "required-variable",
        "required variable DB_PASS is missing a value: set DB_PASS in .env",
        &["compose.yaml:6:26"],
    );
}

#[test]
fn dependency_cycle() {
    fails_at(
        "dependency-cycle",
        "dependency cycle: `manager` -> `orchestrator` -> `router` -> `manager`",
        &["compose.yaml:4:18"],
    );
}

#[test]
fn invalid_yaml() {
    fails_at(
        "invalid-yaml",
        "invalid YAML: invalid indentation",
        &["compose.yaml:5:3"],
    );
}

#[test]
fn include_cycle() {
    fails_at(
        "include-cycle",
        "`include` cycle: compose.yaml includes router/compose.yaml includes compose.yaml",
        &["router/compose.yaml:2:5"],
    );
}

#[test]
fn several_errors_are_reported_together() {
    let stderr = stderr_of("several-errors");
    for place in [
        "compose.yaml:10:16",
        "compose.yaml:4:14",
        "compose.yaml:7:9",
        "compose.yaml:14:9",
    ] {
        assert!(
            stderr.contains(&format!("--> {place}\n")),
            "no `{place}` in:\n{stderr}"
        );
    }
    assert!(stderr.ends_with("\n4 errors\n"), "{stderr}");
}
