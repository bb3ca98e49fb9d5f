//! One test per bad input under `testdata/bad/<case>/compose.yaml`: loading fails, and each error
//! says what is wrong (the exact message) and where (`file:line:col`, the place the user would
//! edit). The cases run by hand with `wharf config` from their directory.

use std::collections::BTreeMap;

use wharf_model::{Diagnostics, LoadOptions, load};

use crate::case::repo_root;

/// Loads `testdata/bad/<case>`, which must fail.
fn load_bad(case: &str) -> Diagnostics {
    let options = LoadOptions {
        project_directory: Some(format!("testdata/bad/{case}").into()),
        working_dir: repo_root(),
        environment: BTreeMap::from([("HOME".to_string(), "/home/wharf".to_string())]),
        ..LoadOptions::default()
    };
    match load(&options) {
        Ok(_) => panic!("testdata/bad/{case} loaded, but it must fail"),
        Err(d) => d,
    }
}

/// An expected error: its message, where it points (relative to the case's directory) and, when
/// given, its help.
struct Expected<'a> {
    message: &'a str,
    at: &'a str,
    help: Option<&'a str>,
}

fn error<'a>(message: &'a str, at: &'a str) -> Expected<'a> {
    Expected {
        message,
        at,
        help: None,
    }
}

impl<'a> Expected<'a> {
    fn help(self, help: &'a str) -> Self {
        Expected {
            help: Some(help),
            ..self
        }
    }
}

/// Loading the case gives exactly these errors, in this order.
fn assert_errors(case: &str, expected: &[Expected<'_>]) {
    let d = load_bad(case);
    let errors: Vec<_> = d.errors().collect();
    let found: Vec<(String, Option<String>)> = errors
        .iter()
        .map(|e| (e.message.clone(), e.span.and_then(|s| d.sources.locate(s))))
        .collect();
    let wanted: Vec<(String, Option<String>)> = expected
        .iter()
        .map(|e| {
            (
                e.message.to_string(),
                Some(format!("testdata/bad/{case}/{}", e.at)),
            )
        })
        .collect();
    assert_eq!(found, wanted, "errors of testdata/bad/{case}:\n{d}");
    for (e, x) in errors.iter().zip(expected) {
        if let Some(help) = x.help {
            assert_eq!(e.help.as_deref(), Some(help), "help of `{}`", e.message);
        }
    }
}

#[test]
fn unknown_key_suggests_the_key_meant() {
    assert_errors(
        "unknown-key",
        &[
            error("unknown key `comand` in service `web`", "compose.yaml:4:5")
                .help("did you mean `command`?"),
        ],
    );
}

#[test]
fn wrong_type() {
    assert_errors(
        "wrong-type",
        &[error(
            "`services.web.ports` must be a sequence, found a string",
            "compose.yaml:4:12",
        )],
    );
}

#[test]
fn depends_on_undefined_service() {
    assert_errors(
        "undefined-service",
        &[error(
            "service `api` depends on undefined service `postgres`",
            "compose.yaml:5:9",
        )
        .help("did you mean `postgress`?")],
    );
}

#[test]
fn undefined_network() {
    assert_errors(
        "undefined-network",
        &[error(
            "service `http` refers to undefined network `backend`",
            "compose.yaml:6:9",
        )
        .help("did you mean `backnet`?")],
    );
}

#[test]
fn undefined_volume() {
    assert_errors(
        "undefined-volume",
        &[error("service `postgres` mounts undefined volume `pgdata`", "compose.yaml:5:9").help(
            "declare it under the top-level `volumes:`, or write `./pgdata` for a directory of the project",
        )],
    );
}

#[test]
fn undefined_secret() {
    assert_errors(
        "undefined-secret",
        &[error(
            "service `shell` uses undefined secret `ssh_host_key`",
            "compose.yaml:5:9",
        )
        .help("did you mean `shell_host_key`?")],
    );
}

#[test]
fn dependency_cycle_names_every_service_on_it() {
    assert_errors(
        "dependency-cycle",
        &[error(
            "dependency cycle: `manager` -> `orchestrator` -> `router` -> `manager`",
            "compose.yaml:4:18",
        )],
    );
}

#[test]
fn network_mode_together_with_networks() {
    assert_errors(
        "network-mode-with-networks",
        &[error(
            "service `celery` sets both `network_mode` and `networks`",
            "compose.yaml:7:5",
        )],
    );
}

#[test]
fn network_mode_of_an_undefined_service() {
    assert_errors(
        "network-mode-undefined-service",
        &[error(
            "service `celery` uses `network_mode: service:openvpm`, but service `openvpm` is not defined",
            "compose.yaml:6:5",
        )
        .help("did you mean `service:openvpn`?")],
    );
}

#[test]
fn host_port_published_by_two_services() {
    assert_errors(
        "duplicate-host-port",
        &[error(
            "host port 0.0.0.0:443/tcp of service `nginx` is already published by service `frontend` on 127.0.0.1 (line 11)",
            "compose.yaml:6:9",
        )],
    );
}

#[test]
fn invalid_duration() {
    assert_errors(
        "invalid-duration",
        &[error(
            "invalid duration `30 seconds` for `healthcheck.interval` of service `openvpn`: unknown unit \" seconds\" in duration \"30 seconds\"",
            "compose.yaml:6:17",
        )
        .help("write durations like 30s, 1m30s, 500ms or 1h")],
    );
}

#[test]
fn required_variable_points_at_the_value() {
    assert_errors(
        "required-variable",
        &[error(
            "required variable DB_PASS is missing a value: set DB_PASS in .env",
            "compose.yaml:6:26",
        )
        .help("set DB_PASS in the environment or in the .env file")],
    );
}

#[test]
fn invalid_yaml() {
    assert_errors(
        "invalid-yaml",
        &[error(
            "invalid YAML: invalid indentation",
            "compose.yaml:5:3",
        )],
    );
}

#[test]
fn duplicate_yaml_key() {
    assert_errors(
        "duplicate-key",
        &[error(
            "duplicate key `image` (first defined on line 3)",
            "compose.yaml:6:5",
        )],
    );
}

#[test]
fn extends_cycle_is_reported_once() {
    assert_errors(
        "extends-cycle",
        &[error(
            "`extends` cycle: `http` extends `worker` extends `websocket` extends `http`",
            "compose.yaml:10:16",
        )],
    );
}

#[test]
fn include_cycle() {
    assert_errors(
        "include-cycle",
        &[error(
            "`include` cycle: testdata/bad/include-cycle/compose.yaml includes testdata/bad/include-cycle/router/compose.yaml includes testdata/bad/include-cycle/compose.yaml",
            "router/compose.yaml:2:5",
        )],
    );
}

#[test]
fn unknown_depends_on_condition() {
    assert_errors(
        "unknown-condition",
        &[error(
            "`services.backend.depends_on.mariadb.condition` must be one of \"service_started\", \"service_healthy\", \"service_completed_successfully\", found `service_healty`",
            "compose.yaml:6:20",
        )
        .help("did you mean `service_healthy`?")],
    );
}

#[test]
fn missing_required_env_file() {
    assert_errors(
        "missing-env-file",
        &[error(
            "env file testdata/bad/missing-env-file/secrets/edd.env of service `http`: not found",
            "compose.yaml:7:9",
        )],
    );
}

#[test]
fn several_errors_in_one_file_are_reported_together() {
    assert_errors(
        "several-errors",
        &[
            error(
                "invalid duration `3 s` for `healthcheck.timeout` of service `backend`: unknown unit \" s\" in duration \"3 s\"",
                "compose.yaml:10:16",
            ),
            error(
                "unknown restart policy `unless-stoped` for service `backend`",
                "compose.yaml:4:14",
            )
            .help("did you mean `unless-stopped`?"),
            error(
                "service `backend` depends on undefined service `mongo`",
                "compose.yaml:7:9",
            ),
            error(
                "service `mariadb` mounts undefined volume `mariadb-data`",
                "compose.yaml:14:9",
            )
            .help("did you mean `mariadb_data`?"),
        ],
    );
}

/// Every directory under `testdata/bad/` has a test above.
#[test]
fn every_bad_case_has_a_test() {
    let mut found: Vec<String> = std::fs::read_dir(repo_root().join("testdata/bad"))
        .expect("testdata/bad exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    let tested = [
        "dependency-cycle",
        "duplicate-host-port",
        "duplicate-key",
        "extends-cycle",
        "include-cycle",
        "invalid-duration",
        "invalid-yaml",
        "missing-env-file",
        "network-mode-undefined-service",
        "network-mode-with-networks",
        "required-variable",
        "several-errors",
        "undefined-network",
        "undefined-secret",
        "undefined-service",
        "undefined-volume",
        "unknown-condition",
        "unknown-key",
        "wrong-type",
    ];
    assert_eq!(found, tested);
}
