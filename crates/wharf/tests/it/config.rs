//! `wharf config` on each conformance case prints exactly its `expected.yaml` and, with
//! `--format json`, its `expected.json` (the files wharf-model's tests check and bless).

use crate::{repo_root, wharf};

const CASES: &[&str] = &["Director-4.0", "edd", "openvle", "openwisp"];

/// Runs the case's `cmdline` (`[VAR=value]... wharf [flags]... config`) with `extra` arguments
/// and returns standard output, with the case directory written `${CASE_DIR}`.
fn run(case: &str, extra: &[&str]) -> String {
    let root = repo_root();
    let case_dir = root.join("testdata").join(case);
    let cmdline = std::fs::read_to_string(case_dir.join("cmdline")).expect("a cmdline file");
    let mut words = cmdline.split_whitespace();
    let mut cmd = wharf(&root);
    for word in words.by_ref() {
        if word == "wharf" {
            break;
        }
        let (k, v) = word.split_once('=').expect("VAR=value before `wharf`");
        cmd.env(k, v);
    }
    cmd.args(words).args(extra);
    let out = cmd.assert().success().get_output().clone();
    String::from_utf8(out.stdout)
        .expect("UTF-8 output")
        .replace(case_dir.to_str().expect("a UTF-8 path"), "${CASE_DIR}")
}

#[test]
fn config_prints_the_expected_yaml_and_json() {
    for case in CASES {
        let dir = repo_root().join("testdata").join(case);
        let yaml = std::fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml");
        let json = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
        assert_eq!(run(case, &[]), yaml, "wharf config of {case}");
        assert_eq!(
            run(case, &["--format", "json"]),
            json,
            "wharf config --format json of {case}"
        );
    }
}

#[test]
fn config_lists_services_volumes_and_profiles() {
    assert_eq!(
        run("openvle", &["--services"]),
        "backend\nfrontend\nmariadb\nmigrate\nmongodb\nredis\nscheduler\nworker-integrations\nworker-mail\nworker-vm\n"
    );
    // The volume of the disabled `mailpit` is not part of the project.
    assert_eq!(
        run("openvle", &["--volumes"]),
        "mariadb_data\nmongodb_data\n"
    );
    assert_eq!(run("openvle", &["--profiles"]), "dev\nintegrations\n");
    assert_eq!(run("edd", &["--networks"]), "backnet\nproxynet\n");
    assert_eq!(run("openwisp", &["-q"]), "");
}

/// A reader that has gone (`wharf config | head -c 10`) ends the output quietly: no panic, and
/// the same exit status as a complete write.
#[test]
fn config_into_a_closed_pipe_exits_without_a_panic() {
    let root = repo_root();
    let (reader, writer) = std::io::pipe().expect("a pipe");
    drop(reader);
    let out = std::process::Command::new(assert_cmd::cargo::cargo_bin("wharf"))
        .env_clear()
        .current_dir(&root)
        .args(["--env-file", "testdata/openvle/env/production.env"])
        .args(["--project-directory", "testdata/openvle", "config"])
        .stdout(writer)
        .output()
        .expect("wharf runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
}
