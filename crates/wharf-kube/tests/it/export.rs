//! Every conformance case and example, exported and validated against the Kubernetes schemas.

use std::path::Path;

use wharf_kube::KubeVersion;

use crate::project::{self, Loaded, repo_root};
use crate::validate;

fn export_and_validate(what: &str, loaded: &Loaded) {
    let t = loaded.translate();
    assert!(
        !t.manifests.deployments.is_empty() || !t.manifests.stateful_sets.is_empty(),
        "{what}: no workload"
    );
    let report = t.report.to_string();
    println!("{what}:\n{report}");
    if !validate::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    t.manifests
        .write_dir(dir.path(), "test")
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let passed = validate::validate_dir(dir.path(), &KubeVersion::DEFAULT.to_string())
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert_eq!(
        passed,
        t.manifests.objects().len(),
        "{what}: every object was validated"
    );
}

#[test]
fn edd_exports_valid_manifests() {
    export_and_validate("testdata/edd", &project::case("edd"));
}

#[test]
fn openwisp_exports_valid_manifests() {
    export_and_validate("testdata/openwisp", &project::case("openwisp"));
}

#[test]
fn openvle_exports_valid_manifests() {
    export_and_validate("testdata/openvle", &project::case("openvle"));
}

#[test]
fn director_exports_valid_manifests() {
    export_and_validate("testdata/Director-4.0", &project::case("Director-4.0"));
}

#[test]
fn examples_export_valid_manifests() {
    let root = repo_root();
    let mut found = 0;
    for dir in [
        root.join("examples"),
        root.join("crates/wharf-kube/tests/fixtures"),
    ] {
        let mut entries: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.join("compose.yaml").is_file())
            .collect();
        entries.sort();
        for p in entries {
            let what = p.strip_prefix(&root).unwrap_or(&p).display().to_string();
            export_and_validate(&what, &project::file(&p.join("compose.yaml")));
            found += 1;
        }
    }
    assert!(found >= 2, "the examples and fixtures are found");
}

#[test]
fn also_valid_for_the_oldest_supported_version() {
    if !validate::available() {
        return;
    }
    let loaded = project::file(Path::new(
        &repo_root().join("crates/wharf-kube/tests/fixtures/everything/compose.yaml"),
    ));
    let t = loaded.translate();
    let dir = tempfile::tempdir().expect("a temporary directory");
    t.manifests.write_dir(dir.path(), "test").expect("written");
    validate::validate_dir(dir.path(), "1.33").unwrap_or_else(|e| panic!("1.33: {e}"));
}

/// The validation is not a formality: a wrong field fails it.
#[test]
fn the_validation_rejects_a_wrong_manifest() {
    if !validate::available() {
        return;
    }
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(
        dir.path().join("41-deployment.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      containers:\n        - {name: a, image: a, startupProbe: {periodSeconds: \"5\"}}\n",
    )
    .expect("write");
    let e = validate::validate_dir(dir.path(), "1.37").unwrap_err();
    assert!(e.contains("deployment/a"), "{e}");
}
