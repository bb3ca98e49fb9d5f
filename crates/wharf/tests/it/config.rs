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

/// Runs `wharf ARGS` on `compose.yaml` (written with `text` in a temporary directory) and
/// returns the exit code, standard output and standard error.
fn run_on(text: &str, args: &[&str]) -> (i32, String, String) {
    let tmp = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(tmp.path().join("compose.yaml"), text).expect("compose.yaml written");
    let out = wharf(tmp.path())
        .args(["-p", "demo"])
        .args(args)
        .output()
        .expect("wharf runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).expect("UTF-8 output"),
        String::from_utf8(out.stderr).expect("UTF-8 errors"),
    )
}

const FILTERED: &str = "services:
  api:
    command: [serve]
    labels: {team: core}
  mailer:
    command: [mail]
    profiles: [jobs]
    labels: {team: core}
  stats:
    command: [stats]
    profiles: [jobs, metrics]
    labels: {team: data}
";

/// `--filter` selects among `--services`: `profile=` enables the profile and keeps its
/// services, `label=` keeps the services with that label; criteria combine.
#[test]
fn config_services_filter() {
    let services = |filters: &[&str]| {
        let mut args = vec!["config", "--services"];
        for f in filters {
            args.extend(["--filter", f]);
        }
        let (code, out, err) = run_on(FILTERED, &args);
        assert_eq!(code, 0, "{err}");
        out
    };
    assert_eq!(services(&[]), "api\n");
    assert_eq!(services(&["profile=jobs"]), "mailer\nstats\n");
    assert_eq!(services(&["label=team=core"]), "api\n");
    assert_eq!(services(&["label=team"]), "api\n");
    assert_eq!(services(&["profile=jobs", "label=team=core"]), "mailer\n");
    assert_eq!(services(&["profile=metrics", "profile=nothing"]), "stats\n");
    for (args, message) in [
        (
            &["config", "--services", "--filter", "profile=*"][..],
            "profiles must be selected explicitly",
        ),
        (
            &["config", "--filter", "profile=jobs"][..],
            "--filter requires --services",
        ),
        (
            &["config", "--services", "--filter", "state=running"][..],
            "unknown criteria \"state\"",
        ),
    ] {
        let (code, out, err) = run_on(FILTERED, args);
        assert_eq!((code, out.as_str()), (1, ""), "{args:?}: {err}");
        assert!(err.contains(message), "{args:?}: {err}");
    }
}

/// `--hash`: `SERVICE HASH` lines sorted by service, for `*` or a list, with wharf's hash (the
/// same for the same service); an unknown service is an error.
#[test]
fn config_hash_lists_services_sorted() {
    let (code, all, err) = run_on(FILTERED, &["--profile", "jobs", "config", "--hash", "*"]);
    assert_eq!(code, 0, "{err}");
    let names: Vec<&str> = all
        .lines()
        .map(|l| l.split(' ').next().unwrap_or(""))
        .collect();
    assert_eq!(names, ["api", "mailer", "stats"]);
    assert!(
        all.lines()
            .all(|l| l.split(' ').nth(1).is_some_and(|h| h.len() == 16)),
        "{all}"
    );
    let (_, some, _) = run_on(
        FILTERED,
        &["--profile", "jobs", "config", "--hash", "stats,api"],
    );
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(some, format!("{}\n{}\n", lines[0], lines[2]));
    let (code, out, err) = run_on(FILTERED, &["config", "--hash", "api,nope"]);
    assert_eq!((code, out.as_str()), (1, ""));
    assert!(err.contains("no such service: nope"), "{err}");
}

/// `--no-consistency` prints a project whose references do not resolve, which `config` refuses
/// otherwise.
#[test]
fn config_no_consistency_skips_the_reference_checks() {
    let text = "services:
  web:
    command: [serve]
    depends_on: [db]
    networks: [front]
    volumes: [data:/data]
    secrets: [token]
";
    let (code, _, err) = run_on(text, &["config"]);
    assert_eq!(code, 1);
    assert!(err.contains("undefined service `db`"), "{err}");
    let (code, out, err) = run_on(text, &["config", "--no-consistency"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("      db:\n        condition: service_started"),
        "{out}"
    );
    assert!(out.contains("    networks:\n      front: null"), "{out}");
}

/// `--no-interpolate` prints the model with its expressions and does not warn about unset
/// variables; `--variables` lists every variable, nested ones too, with what each form says.
#[test]
fn config_no_interpolate_and_variables() {
    let text = "services:
  web:
    command: [serve, \"${MODE:-dev}\"]
    environment:
      TOKEN: ${TOKEN:?set a token}
      URL: http://${HOST:-${FALLBACK:-localhost}}:$$PORT/$PATH_PART
      FLAG: ${FLAG:+on}
";
    let (code, out, err) = run_on(text, &["config", "--no-interpolate"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("not set"), "{err}");
    assert!(out.contains("TOKEN: ${TOKEN:?set a token}"), "{out}");
    assert!(out.contains("- ${MODE:-dev}"), "{out}");
    let (code, out, err) = run_on(text, &["config", "--variables"]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<String> = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    assert_eq!(
        lines,
        [
            "NAME REQUIRED DEFAULT VALUE ALTERNATE VALUE",
            "FALLBACK false localhost",
            "FLAG false on",
            "HOST false ${FALLBACK:-localhost}",
            "MODE false dev",
            "PATH_PART false",
            "TOKEN true",
        ]
    );
}

/// `config SERVICE...` prints the named services and what they depend on; a service its
/// profiles disable is enabled by naming it; an unknown one is an error.
#[test]
fn config_selects_the_named_services() {
    let text = "services:
  web:
    command: [serve]
    depends_on: [db]
  db:
    command: [db]
  other:
    command: [other]
  job:
    command: [job]
    profiles: [jobs]
";
    let (code, out, err) = run_on(text, &["config", "--format", "json", "web"]);
    assert_eq!(code, 0, "{err}");
    let json: serde_json::Value = serde_json::from_str(&out).expect("JSON output");
    let names: Vec<&String> = json["services"]
        .as_object()
        .expect("services")
        .keys()
        .collect();
    assert_eq!(names, ["db", "web"]);
    let (code, out, err) = run_on(text, &["config", "job"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("services:\n  job:\n"), "{out}");
    assert!(!out.contains("  web:"), "{out}");
    let (code, _, err) = run_on(text, &["config", "nope"]);
    assert_eq!(code, 1);
    assert!(err.contains("no such service: nope"), "{err}");
}
