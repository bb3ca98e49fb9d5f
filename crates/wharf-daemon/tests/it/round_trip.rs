//! The store keeps a project as the YAML `wharf config` prints; loading that text again must give
//! the same project, for every conformance case of `testdata/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use wharf_daemon::store::{Store, load_normalised, normalise};
use wharf_model::{LoadOptions, Project};

const CASES: &[&str] = &["Director-4.0", "edd", "openvle", "openwisp"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// Loads a case as its `cmdline` (`[VAR=value]... wharf [flags]... config`) does.
fn load_case(case: &str) -> Project {
    let root = repo_root();
    let text = std::fs::read_to_string(root.join("testdata").join(case).join("cmdline"))
        .expect("a cmdline file");
    let mut words = text.split_whitespace();
    let mut options = LoadOptions {
        working_dir: root.clone(),
        ..LoadOptions::default()
    };
    let mut environment = BTreeMap::new();
    for word in words.by_ref() {
        if word == "wharf" {
            break;
        }
        let (k, v) = word.split_once('=').expect("VAR=value before `wharf`");
        environment.insert(k.to_string(), v.to_string());
    }
    options.environment = environment;
    let flags: Vec<&str> = words.take_while(|w| *w != "config").collect();
    let mut flags = flags.into_iter();
    while let Some(flag) = flags.next() {
        let value = flags.next().expect("a flag's value").to_string();
        match flag {
            "-f" | "--file" => options.files.push(value.into()),
            "-p" | "--project-name" => options.project_name = Some(value),
            "--project-directory" => options.project_directory = Some(value.into()),
            "--profile" => options.profiles.push(value),
            "--env-file" => options.env_files.push(value.into()),
            other => panic!("unknown flag `{other}` in {case}/cmdline"),
        }
    }
    wharf_model::load(&options)
        .unwrap_or_else(|d| panic!("{case} loads:\n{d}"))
        .project
}

/// What is not part of the project as it runs: where things were written, in which files (also
/// which env file a variable came from: the normalised text has the values only), the services
/// that profiles left out (the normalised text has only the enabled ones), and the `Dockerfile`
/// that rendering writes for a `build` without one (as `docker compose config` does).
fn as_run(mut p: Project) -> Project {
    p.files.clear();
    p.disabled_services.clear();
    p.all_profiles.clear();
    for s in p.services.values_mut() {
        if let Some(b) = &mut s.build {
            b.dockerfile.get_or_insert_with(|| "Dockerfile".into());
        }
        s.span = Default::default();
        s.key_spans.clear();
        s.env_file_sources.clear();
        for port in &mut s.ports {
            port.span = Default::default();
        }
        for v in &mut s.volumes {
            v.span = Default::default();
        }
        for d in s.depends_on.values_mut() {
            d.span = Default::default();
        }
        for f in s.secrets.iter_mut().chain(s.configs.iter_mut()) {
            f.span = Default::default();
        }
    }
    p
}

#[test]
fn the_normalised_yaml_loads_back_to_the_same_project() {
    for case in CASES {
        let original = load_case(case);
        let yaml = normalise(&original);
        let reloaded = load_normalised(&yaml, &original.working_dir)
            .unwrap_or_else(|e| panic!("{case}: the normalised YAML does not load:\n{e}\n{yaml}"));
        assert_eq!(
            normalise(&reloaded),
            yaml,
            "{case}: normalising is not a fixed point"
        );
        assert_same(case, as_run(reloaded), as_run(original));
    }
}

#[test]
fn a_stored_project_survives_reopening_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("state.redb");
    let original = load_case("openwisp");
    let yaml = normalise(&original);
    {
        let store = Store::open(&path).unwrap();
        store
            .record_up(
                &original.name,
                &yaml,
                &original.working_dir,
                None,
                Default::default(),
            )
            .unwrap();
    }
    let store = Store::open(&path).unwrap();
    let record = store
        .get(&original.name)
        .unwrap()
        .expect("the project is stored");
    assert_eq!(record.yaml, yaml);
    assert_same(
        "openwisp",
        as_run(record.project().unwrap()),
        as_run(original),
    );
}

/// Equal projects, or a panic naming the first part that differs (the whole Debug text of a
/// project is too long to read).
fn assert_same(case: &str, reloaded: Project, original: Project) {
    if reloaded == original {
        return;
    }
    for (name, a) in &reloaded.services {
        let b = original.services.get(name);
        assert_eq!(
            Some(a),
            b,
            "{case}: service `{name}` differs after the round trip"
        );
    }
    assert_eq!(
        reloaded.services.keys().collect::<Vec<_>>(),
        original.services.keys().collect::<Vec<_>>(),
        "{case}: the services differ"
    );
    assert_eq!(reloaded.networks, original.networks, "{case}: networks");
    assert_eq!(reloaded.volumes, original.volumes, "{case}: volumes");
    assert_eq!(reloaded.secrets, original.secrets, "{case}: secrets");
    assert_eq!(reloaded.configs, original.configs, "{case}: configs");
    assert_eq!(
        reloaded.extensions, original.extensions,
        "{case}: extensions"
    );
    assert_eq!(reloaded, original, "{case}");
}
