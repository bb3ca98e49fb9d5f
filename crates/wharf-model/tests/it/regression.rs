//! Regressions: each test names the difference from Docker Compose (or the bug) it pins, found
//! while building the conformance suite.

use std::collections::BTreeMap;

use wharf_model::config::{Format, render};
use wharf_model::{LoadOptions, Loaded, load};

/// Loads `compose.yaml` (and `files` beside it) from a fresh directory with project name `p`.
fn load_files(files: &[(&str, &str)], env: &[(&str, &str)]) -> (tempfile::TempDir, Loaded) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).expect("written");
    }
    let options = LoadOptions {
        working_dir: dir.path().to_path_buf(),
        project_name: Some("p".into()),
        environment: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<BTreeMap<_, _>>(),
        ..LoadOptions::default()
    };
    let loaded = load(&options).unwrap_or_else(|d| panic!("{d}"));
    (dir, loaded)
}

fn yaml(text: &str) -> String {
    let (_dir, loaded) = load_files(&[("compose.yaml", text)], &[]);
    render(&loaded.project, Format::Yaml)
}

fn json(text: &str) -> String {
    let (_dir, loaded) = load_files(&[("compose.yaml", text)], &[]);
    render(&loaded.project, Format::Json)
}

/// Bug: `network_mode: service:x` (also `links`, `volumes_from`, `ipc`/`pid: service:x`) did not
/// add the dependency Docker Compose adds, so `config` lacked it and the service could start first.
#[test]
fn network_mode_service_implies_a_dependency() {
    let out = yaml(
        "services:\n  vpn: {image: v}\n  celery:\n    image: c\n    network_mode: service:vpn\n",
    );
    assert!(
        out.contains("    depends_on:\n      vpn:\n        condition: service_started\n        restart: true\n        required: true\n"),
        "{out}"
    );
}

/// Bug: networks, volumes, secrets and configs used by no enabled service were printed; Docker
/// Compose leaves them out (unless `--all-resources`).
#[test]
fn resources_of_disabled_services_are_left_out() {
    let out = yaml(
        "services:\n  a: {image: a}\n  b: {image: b, profiles: [dev], networks: [tools], volumes: ['cache:/c']}\nnetworks: {tools: {}}\nvolumes: {cache: {}}\n",
    );
    assert!(!out.contains("tools") && !out.contains("cache"), "{out}");
}

/// Bug: a variable in an env file was looked up in the project environment only; Docker Compose
/// then looks in the service's `environment`.
#[test]
fn env_file_sees_the_service_environment() {
    let (_dir, loaded) = load_files(
        &[
            (
                "compose.yaml",
                "services:\n  a: {image: a, env_file: a.env, environment: {DB: pg}}\n",
            ),
            ("a.env", "URL=${DB}:5432\n"),
        ],
        &[],
    );
    assert_eq!(
        loaded.project.services["a"].environment["URL"].as_deref(),
        Some("pg:5432")
    );
}

/// Bug: a build argument without a value printed as `null`; Docker Compose takes it from the
/// environment or leaves it out.
#[test]
fn build_arg_without_value_is_left_out() {
    let out =
        yaml("services:\n  a:\n    build: {context: ., args: {PIP_INDEX_URL: null, V: '1'}}\n");
    assert!(!out.contains("PIP_INDEX_URL"), "{out}");
    assert!(out.contains("      args:\n        V: \"1\"\n"), "{out}");
}

/// Bug: service keys were in alphabetical order; Docker Compose writes compose-go's field order
/// (`profiles` first, `hostname` before `healthcheck`, `x-*` last).
#[test]
fn service_keys_in_compose_order() {
    let (_dir, loaded) = load_files(
        &[(
            "compose.yaml",
            "services:\n  a:\n    x-role: api\n    image: a\n    healthcheck: {test: [NONE]}\n    hostname: h\n    profiles: [p]\n",
        )],
        &[("COMPOSE_PROFILES", "p")],
    );
    let out = render(&loaded.project, Format::Yaml);
    let keys: Vec<&str> = out
        .lines()
        .take_while(|l| !l.starts_with("networks:"))
        .filter(|l| l.starts_with("    ") && !l.starts_with("     "))
        .map(|l| l.trim().split(':').next().unwrap_or(""))
        .collect();
    assert_eq!(
        keys,
        [
            "profiles",
            "hostname",
            "healthcheck",
            "image",
            "networks",
            "x-role"
        ],
        "{out}"
    );
}

/// Bug: strings that start with a YAML indicator were double-quoted; go-yaml single-quotes them.
#[test]
fn indicator_strings_are_single_quoted() {
    let out = yaml(
        "services:\n  a:\n    image: a\n    environment: {LISTEN: '[::]:80', HOSTS: '*.example.org'}\n",
    );
    assert!(
        out.contains("      HOSTS: '*.example.org'\n      LISTEN: '[::]:80'\n"),
        "{out}"
    );
}

/// Bug: the JSON form kept `name` first and nested `x-*` keys, and did not escape `&`, `<`, `>`;
/// Docker Compose's JSON is a Go map at the top (sorted keys) with Go's escaping.
#[test]
fn json_is_shaped_like_go_encoding() {
    let out = json(
        "x-top: 1\nservices:\n  a:\n    image: a\n    x-role: api\n    command: sh -c 'a && b'\n",
    );
    let keys: Vec<String> =
        serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(&out)
            .expect("JSON")
            .keys()
            .cloned()
            .collect();
    assert_eq!(keys, ["name", "networks", "services", "x-top"], "{out}");
    assert!(!out.contains("x-role"), "{out}");
    assert!(out.contains("\"a \\u0026\\u0026 b\""), "{out}");
}

/// Bug: `tmpfs.size`, `mem_limit` and the like printed as written; Docker Compose prints byte
/// sizes as a string of bytes.
#[test]
fn byte_sizes_print_as_strings_of_bytes() {
    let out = yaml(
        "services:\n  a:\n    image: a\n    mem_limit: 512m\n    volumes: [{type: tmpfs, target: /tmp/, tmpfs: {size: 64m}}]\n",
    );
    assert!(out.contains("    mem_limit: \"536870912\"\n"), "{out}");
    assert!(
        out.contains("        target: /tmp\n        tmpfs:\n          size: \"67108864\"\n"),
        "{out}"
    );
}

/// Bug: one `extends` cycle gave one error per service on it.
#[test]
fn extends_cycle_gives_one_error() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("compose.yaml"),
        "services:\n  a: {extends: b}\n  b: {extends: a}\n",
    )
    .expect("written");
    let options = LoadOptions {
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    let d = load(&options).expect_err("a cycle fails");
    assert_eq!(d.errors().count(), 1, "{d}");
}

/// Bug: an undefined network was reported at the service's `networks:` key instead of the name.
#[test]
fn undefined_network_points_at_its_name() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("compose.yaml"), "services:\n  a:\n    image: a\n    networks:\n      - front\n      - back\nnetworks: {front: {}}\n").expect("written");
    let options = LoadOptions {
        working_dir: dir.path().to_path_buf(),
        ..LoadOptions::default()
    };
    let d = load(&options).expect_err("fails");
    let e = d.errors().next().expect("an error");
    assert_eq!(e.span.map(|s| (s.line, s.col)), Some((6, 9)), "{d}");
}

/// Found by fuzzing (fuzz/regressions/load/): `1-65535:1-65535` expanded into 65,535 mappings
/// took seconds and hundreds of MB, ten of them gigabytes. The range is refused with a message.
#[test]
fn a_huge_port_range_is_refused_not_expanded() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fuzz/regressions/load/oom-port-ranges-10-services.yaml"
    ))
    .expect("the reproducer");
    let options = LoadOptions {
        files: vec!["-".into()],
        stdin: Some(text),
        working_dir: dir.path().to_path_buf(),
        project_name: Some("p".into()),
        ..LoadOptions::default()
    };
    let err = load(&options).expect_err("refused").to_string();
    assert!(
        err.contains("publishes 65535 ports; wharf accepts at most 10000 ports per service"),
        "{err}"
    );
}
