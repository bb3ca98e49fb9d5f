//! Compose fidelity on files nobody here wrote: each test follows an upstream test of compose-go
//! (the loader Docker Compose v2 runs) or of docker/compose, named in its comment, on the shape of
//! file that test uses. Refusals are checked for their meaning and for the line they point at.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use wharf_model::{Diagnostics, LoadOptions, Loaded, Severity, load};

/// Loads `compose.yaml` and the `files` beside it from a fresh directory, with `env` as the
/// process environment and project name `p`.
fn load_dir(
    files: &[(&str, &str)],
    env: &[(&str, &str)],
) -> (tempfile::TempDir, Result<Loaded, Diagnostics>) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    for (name, text) in files {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("created");
        std::fs::write(path, text).expect("written");
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
    let result = load(&options);
    (dir, result)
}

fn loads(text: &str, env: &[(&str, &str)]) -> Loaded {
    let (_dir, result) = load_dir(&[("compose.yaml", text)], env);
    result.unwrap_or_else(|d| panic!("{d}"))
}

/// The errors of a file Docker Compose refuses, as (line, message).
fn refused(text: &str) -> Vec<(u32, String)> {
    let (_dir, result) = load_dir(&[("compose.yaml", text)], &[]);
    match result {
        Ok(_) => panic!("loaded, but Docker Compose refuses it:\n{text}"),
        Err(d) => d
            .errors()
            .map(|e| (e.span.map_or(0, |s| s.line), e.message.clone()))
            .collect(),
    }
}

fn warnings(loaded: &Loaded) -> Vec<(u32, String)> {
    loaded
        .warnings
        .items
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .map(|d| (d.span.map_or(0, |s| s.line), d.message.clone()))
        .collect()
}

// compose-go `TestLoadLegacyBoolean` (`init: yes`), and its `toBoolean` (loader/interpolate.go)
// for every boolean key: YAML 1.1 words, in any case, literal or from a variable, are booleans
// with a warning; `privileged: yes` must not run unprivileged.
#[test]
fn yaml_1_1_booleans_are_booleans_with_a_warning() {
    let loaded = loads(
        "services:
  test:
    image: a
    init: yes
    privileged: Yes
    read_only: ${RO}
    tty: y
    stdin_open: OFF
    volumes:
      - {type: volume, source: data, target: /data, read_only: on, volume: {nocopy: yes}}
    depends_on:
      db: {condition: service_started, required: no}
  db: {image: db}
volumes:
  data: {external: yes}
",
        &[("RO", "on")],
    );
    let test = &loaded.project.services["test"];
    for key in ["init", "privileged", "read_only", "tty"] {
        assert_eq!(test.extra[key], Json::Bool(true), "{key}");
    }
    assert_eq!(test.extra["stdin_open"], Json::Bool(false));
    assert!(test.volumes[0].read_only);
    assert_eq!(
        test.volumes[0].options["volume"]["nocopy"],
        Json::Bool(true)
    );
    assert!(!test.depends_on["db"].required, "`required: no` is false");
    assert!(loaded.project.volumes["data"].external);
    let w = warnings(&loaded);
    assert!(
        w.contains(&(
            4,
            "`services.test.init`: \"yes\" for boolean is not supported by YAML 1.2, please use `true`"
                .to_string()
        )),
        "{w:?}"
    );
    assert!(
        w.contains(&(
            12,
            "`services.test.depends_on.db.required`: \"no\" for boolean is not supported by YAML 1.2, please use `false`"
                .to_string()
        )),
        "{w:?}"
    );
    assert!(
        w.iter()
            .any(|(line, m)| *line == 6 && m.contains("read_only`: \"on\"")),
        "a value from a variable warns at the line that uses it: {w:?}"
    );
    assert_eq!(
        w.iter().filter(|(_, m)| m.contains("YAML 1.2")).count(),
        9,
        "{w:?}"
    );
}

// compose-go `toBoolean`: `true`/`false` in any case are booleans without a warning, and any
// other text at a boolean key is refused ("invalid boolean"), at its line.
#[test]
fn a_boolean_key_refuses_other_words() {
    let loaded = loads("services:\n  a: {image: a, tty: TRUE, init: False}\n", &[]);
    assert_eq!(loaded.project.services["a"].extra["tty"], Json::Bool(true));
    assert!(
        warnings(&loaded)
            .iter()
            .all(|(_, m)| !m.contains("YAML 1.2"))
    );
    let e = refused("services:\n  a:\n    image: a\n    privileged: maybe\n");
    assert_eq!(
        e,
        [(
            4,
            "`services.a.privileged` is `maybe`: invalid boolean".to_string()
        )]
    );
}

// compose-go `Project.CheckContainerNameUnicity`: "services.b: container name \"x\" is already in
// use by service a"; an empty name (docker/compose e2e TestUpContainerNameConflict without
// FIXED_NAME) is no name.
#[test]
fn two_services_may_not_share_a_container_name() {
    let e = refused(
        "services:\n  a:\n    image: a\n    container_name: web\n  b:\n    image: b\n    container_name: web\n",
    );
    assert_eq!(
        e,
        [(
            7,
            "services.b: container name \"web\" is already in use by service a".to_string()
        )]
    );
    loads(
        "services:\n  a: {image: a, container_name: '${UNSET}'}\n  b: {image: b, container_name: '${UNSET}'}\n",
        &[],
    );
}

// compose-go `TestLoadBindMountSourceMustNotBeEmpty`.
#[test]
fn a_bind_mount_needs_a_source() {
    let e = refused(
        "services:\n  a:\n    image: a\n    volumes:\n      - type: bind\n        target: /app\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, 5);
    assert!(
        e[0].1
            .starts_with("invalid mount config for type \"bind\": field Source must not be empty"),
        "{e:?}"
    );
}

// compose-go `TestInvalidExternalAndDriverCombination` (and `...DirverOpts...`,
// `...Labels...` for volumes); a network alike.
#[test]
fn an_external_volume_or_network_takes_no_driver() {
    let e = refused(
        "services:\n  a: {image: a, volumes: ['data:/v'], networks: [front]}\nvolumes:\n  data:\n    external: true\n    driver: foobar\nnetworks:\n  front:\n    external: true\n    driver: overlay\n",
    );
    assert_eq!(
        e,
        [
            (
                6,
                "volumes.data: conflicting parameters \"external\" and \"driver\" specified"
                    .to_string()
            ),
            (
                10,
                "networks.front: conflicting parameters \"external\" and \"driver\" specified"
                    .to_string()
            ),
        ]
    );
    let e = refused(
        "services:\n  a: {image: a, volumes: ['data:/v']}\nvolumes:\n  data:\n    external: true\n    labels: [beep=boop]\n",
    );
    assert_eq!(
        e,
        [(
            6,
            "volumes.data: conflicting parameters \"external\" and \"labels\" specified"
                .to_string()
        )]
    );
}

// compose-go `TestLoadVolumeInvalidExternalNameAndNameCombination` (and the network and secret
// ones); `TestLoadVolumesWarnOnDeprecatedExternalName` for `external.name` alone.
#[test]
fn name_and_external_name_conflict() {
    let e = refused(
        "services:\n  a: {image: a, volumes: ['data:/v']}\nvolumes:\n  data:\n    name: user_specified_name\n    external:\n      name: external_name\n",
    );
    assert_eq!(
        e,
        [(
            7,
            "volumes.data: name and external.name conflict; only use name".to_string()
        )]
    );
    let loaded = loads(
        "services:\n  a: {image: a, volumes: ['data:/v']}\nvolumes:\n  data:\n    external:\n      name: oops\n",
        &[],
    );
    assert_eq!(loaded.project.volumes["data"].name, "oops");
    assert!(
        warnings(&loaded).contains(&(
            6,
            "volumes.data: external.name is deprecated. Please set name and external: true"
                .to_string()
        )),
        "{:?}",
        warnings(&loaded)
    );
}

// docker/compose#12772: a `tmpfs:` entry and a volume on one target are refused by Docker Compose
// (the engine's "Duplicate mount point").
#[test]
fn a_tmpfs_and_a_volume_may_not_share_a_target() {
    let e = refused(
        "services:\n  db:\n    image: m\n    volumes:\n      - data:/var/lib/mysql/\n    tmpfs:\n      - /var/lib/mysql\nvolumes:\n  data: {}\n",
    );
    assert_eq!(e.len(), 1, "{e:?}");
    assert_eq!(e[0].0, 7);
    assert!(
        e[0].1
            .starts_with("`/var/lib/mysql` of service `db` is both a tmpfs and a volume target"),
        "{e:?}"
    );
}

// compose-go `TestEnvironmentWhitespace`: `- DEBUG = true` is refused, not a variable `DEBUG `.
#[test]
fn spaces_around_the_equals_sign_of_an_environment_item_are_refused() {
    let e = refused("services:\n  test:\n    image: a\n    environment:\n      - DEBUG = true\n");
    assert_eq!(
        e,
        [(
            5,
            "'services[test].environment': environment variable DEBUG  is declared with a trailing space"
                .to_string()
        )]
    );
}

// compose-go `TestNonStringKeys`: a key YAML reads as a number is refused, naming where it is.
#[test]
fn non_string_keys_are_refused() {
    let e = refused("services:\n  foo:\n    image: busybox\n  123:\n    image: busybox\n");
    assert_eq!(e, [(4, "non-string key in services: 123".to_string())]);
    let e = refused("services:\n  dict-env:\n    image: busybox\n    environment:\n      1: FOO\n");
    assert_eq!(
        e,
        [(
            5,
            "non-string key in services.dict-env.environment: 1".to_string()
        )]
    );
    let e = refused("123:\n  foo:\n    image: busybox\n");
    assert_eq!(e, [(1, "non-string key at top level: 123".to_string())]);
    // Quoted, it is a name.
    loads("services:\n  '123':\n    image: busybox\n", &[]);
}

/// compose-go's loader/testdata/extends/base.yaml, with its intentionally empty `nil:` service.
const EXTENDS_BASE: &str = "services:
  base:
    image: base

  another:
    extends: base

  with-port:
    ports:
      - 8000:8000

  withUlimits:
    image: test
    ulimits:
      nproc: 65535
      nofile:
        soft: 20000
        hard: 40000

  with-build:
    extends:
      file: sibling.yaml
      service: test

  nil: #left intentionally empty
";

// compose-go `TestExtendsUlimits`, `TestExtendsPort`, `TestExtendsRelativePath` and `TestExtends`:
// only the extended service of base.yaml (and what it extends in turn) must be valid.
#[test]
fn extends_reads_only_the_extended_service_of_the_other_file() {
    let files = [
        ("extends/base.yaml", EXTENDS_BASE),
        (
            "extends/sibling.yaml",
            "services:\n  test:\n    build: ./dir\n",
        ),
        (
            "compose.yaml",
            "services:
  test:
    extends: {file: extends/base.yaml, service: withUlimits}
  port:
    image: test
    extends: {file: extends/base.yaml, service: with-port}
  build:
    extends: {file: extends/base.yaml, service: with-build}
  another:
    extends: {file: extends/base.yaml, service: another}
",
        ),
    ];
    let (dir, result) = load_dir(&files, &[]);
    let p = result.unwrap_or_else(|d| panic!("{d}")).project;
    assert_eq!(
        p.services["test"].extra["ulimits"]["nproc"],
        Json::from(65535)
    );
    assert_eq!(p.services["port"].ports[0].target, 8000);
    let context = &p.services["build"].build.as_ref().expect("a build").context;
    assert_eq!(
        std::path::Path::new(context),
        dir.path().join("extends/dir"),
        "relative to the file that names it"
    );
    assert_eq!(p.services["another"].image.as_deref(), Some("base"));

    // The extended service itself must still be valid.
    let (_dir, result) = load_dir(
        &[
            (
                "base.yaml",
                "services:\n  bad:\n    image: a\n    wrongField: 1\n  nil:\n",
            ),
            (
                "compose.yaml",
                "services:\n  a:\n    extends: {file: base.yaml, service: bad}\n",
            ),
        ],
        &[],
    );
    let e = result
        .expect_err("an invalid extended service is refused")
        .to_string();
    assert!(e.contains("wrongField"), "{e}");
    assert!(!e.contains("services.nil"), "{e}");
}

// compose-go `TestLoadWithMultipleIncludeConflict`: a service defined in an included file and
// again in the including file is the included one with the including file's merged over it
// (`!override` replaces the included `environment`).
#[test]
fn a_service_defined_again_over_an_include_is_merged_over_it() {
    let (_dir, result) = load_dir(
        &[
            (
                "compose-include.yaml",
                "services:\n  bar:\n    image: bar\n    environment:\n      - FOO=BAR\n    labels: [from=include]\n",
            ),
            (
                "compose.yaml",
                "include:\n  - path: ./compose-include.yaml\nservices:\n  bar:\n    image: busybox\n    environment: !override\n      - ZOT=QIX\n",
            ),
        ],
        &[],
    );
    let p = result.unwrap_or_else(|d| panic!("{d}")).project;
    let bar = &p.services["bar"];
    assert_eq!(bar.image.as_deref(), Some("busybox"));
    assert_eq!(
        bar.environment,
        BTreeMap::from([("ZOT".to_string(), Some("QIX".to_string()))])
    );
    assert_eq!(
        bar.labels.get("from").map(String::as_str),
        Some("include"),
        "what the including file does not set is kept"
    );
}

// compose-go `defaultVolumeBind` (transform/defaults.go) gives a written `bind:` block
// `create_host_path: true`; `TestLoadBindMountWithSource`: without one, none is added;
// `TestLoadBindMountSourceIsWindowsAbsolute`: a Windows path is kept as written.
#[test]
fn bind_defaults_and_windows_sources_as_compose_go() {
    let loaded = loads(
        "services:
  a:
    image: a
    volumes:
      - {type: bind, source: ./x, target: /x, bind: {propagation: rslave}}
      - {type: bind, source: ., target: /app}
      - {type: bind, source: 'Z:\\some-dir', target: 'C:\\data'}
      - {type: bind, source: 'z:\\', target: /z}
",
        &[],
    );
    let v = &loaded.project.services["a"].volumes;
    assert_eq!(v[0].options["bind"]["create_host_path"], Json::Bool(true));
    assert_eq!(v[0].options["bind"]["propagation"], Json::from("rslave"));
    assert!(!v[1].options.contains_key("bind"), "{:?}", v[1].options);
    assert_eq!(v[2].source.as_deref(), Some("Z:\\some-dir"));
    assert_eq!(v[3].source.as_deref(), Some("z:\\"));
}
