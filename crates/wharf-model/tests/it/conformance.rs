//! The conformance suite: each case under `testdata/<case>/` is a project shaped like our users'
//! stacks, loaded with the command in its `cmdline` file, and printed as `docker compose config`
//! prints it. The output must equal `expected.yaml` and `expected.json` byte for byte, and the
//! warnings must equal `expected.warnings` (absent when there are none).
//!
//! Absolute paths in the output start with the case's directory, which depends on where the
//! repository is; it is written `${CASE_DIR}` in the expected files.
//!
//! `WHARF_BLESS=1 cargo test -p wharf-model` rewrites the expected files from the loader's output.
//! Read the difference before committing it: the expected files say what Docker Compose prints.

use std::path::Path;

use wharf_model::config::{Format, render};

use crate::case::{CommandLine, repo_root, testdata};

pub const CASE_DIR: &str = "${CASE_DIR}";

/// Every conformance case; `every_case_directory_is_listed` keeps this in step with `testdata/`.
const CASES: &[&str] = &["Director-4.0", "edd", "openvle", "openwisp"];

fn bless() -> bool {
    std::env::var_os("WHARF_BLESS").is_some_and(|v| v == "1")
}

/// Checks `actual` against the file at `path`, or writes it there when blessing. An empty `actual`
/// with `optional` means the file must not exist.
fn compare(path: &Path, actual: &str, optional: bool) {
    if bless() {
        if optional && actual.is_empty() {
            let _ = std::fs::remove_file(path);
        } else {
            std::fs::write(path, actual).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        }
        return;
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if optional && e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => panic!(
            "cannot read {}: {e} (WHARF_BLESS=1 writes it)",
            path.display()
        ),
    };
    if expected != actual {
        panic!(
            "{} differs from the output (WHARF_BLESS=1 rewrites it):\n{}",
            path.display(),
            first_difference(&expected, actual)
        );
    }
}

/// The first differing line of two texts, with a little context.
pub fn first_difference(expected: &str, actual: &str) -> String {
    let e: Vec<&str> = expected.lines().collect();
    let a: Vec<&str> = actual.lines().collect();
    let i = e.iter().zip(&a).take_while(|(x, y)| x == y).count();
    let from = i.saturating_sub(3);
    let mut out = String::new();
    for (n, line) in e.iter().enumerate().take(i).skip(from) {
        out.push_str(&format!("  {:>4} | {line}\n", n + 1));
    }
    out.push_str(&format!(
        "- {:>4} | {}\n",
        i + 1,
        e.get(i).copied().unwrap_or("<end>")
    ));
    out.push_str(&format!(
        "+ {:>4} | {}\n",
        i + 1,
        a.get(i).copied().unwrap_or("<end>")
    ));
    out
}

/// Loads a case and compares its output with its expected files.
fn check(case: &str) {
    let root = repo_root();
    let dir = testdata().join(case);
    let options = CommandLine::read(&dir).load_options(&root);
    let loaded =
        wharf_model::load(&options).unwrap_or_else(|d| panic!("{case} does not load:\n{d}"));
    let case_dir = dir.to_str().expect("a UTF-8 path");
    let yaml = render(&loaded.project, Format::Yaml).replace(case_dir, CASE_DIR);
    let json = render(&loaded.project, Format::Json).replace(case_dir, CASE_DIR);
    let warnings = if loaded.warnings.items.is_empty() {
        String::new()
    } else {
        format!("{}\n", loaded.warnings)
    };
    compare(&dir.join("expected.yaml"), &yaml, false);
    compare(&dir.join("expected.json"), &json, false);
    compare(&dir.join("expected.warnings"), &warnings, true);
}

#[test]
fn openwisp_anchors_interpolation_and_shared_network_stack() {
    check("openwisp");
}

#[test]
fn edd_base_and_override_files_with_secrets_and_env_files() {
    check("edd");
}

#[test]
fn openvle_profiles_env_file_flag_and_extends_from_another_file() {
    check("openvle");
}

#[test]
fn director_include_network_modes_and_directory_project_name() {
    check("Director-4.0");
}

#[test]
fn every_case_directory_is_listed() {
    let mut found: Vec<String> = std::fs::read_dir(testdata())
        .expect("testdata exists")
        .filter_map(Result::ok)
        .filter(|e| e.path().join("cmdline").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    found.sort();
    assert_eq!(
        found, CASES,
        "a case under testdata/ is missing from CASES, or the reverse"
    );
}

/// The JSON and the YAML say the same thing: parsed back, they are the same value.
#[test]
fn yaml_and_json_expectations_agree() {
    for case in CASES {
        let dir = testdata().join(case);
        let yaml = std::fs::read_to_string(dir.join("expected.yaml")).expect("expected.yaml");
        let json = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
        let from_yaml = wharf_model::yaml::parse(&yaml, wharf_model::node::FileId(0))
            .expect("expected.yaml parses")
            .remove(0);
        let mut from_yaml = node_json(&from_yaml);
        let from_json: serde_json::Value =
            serde_json::from_str(&json).expect("expected.json parses");
        // The JSON form always has `command`, `entrypoint` and networks' `ipam`; the YAML form
        // drops empty values, and `x-*` keys below the top level exist only in YAML.
        fill_json_only_keys(&mut from_yaml, &from_json);
        assert_eq!(sorted(&from_yaml), sorted(&from_json), "{case}");
    }
}

fn node_json(n: &wharf_model::node::Node) -> serde_json::Value {
    use serde_json::Value as J;
    use wharf_model::node::Value;
    match &n.value {
        Value::Null => J::Null,
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Float(f) => serde_json::Number::from_f64(*f)
            .map(J::Number)
            .unwrap_or(J::Null),
        Value::Str(s) => J::String(s.clone()),
        Value::Seq(items) => J::Array(items.iter().map(node_json).collect()),
        Value::Map(m) => J::Object(
            m.iter()
                .map(|(k, e)| (k.clone(), node_json(&e.node)))
                .collect(),
        ),
    }
}

fn fill_json_only_keys(yaml: &mut serde_json::Value, json: &serde_json::Value) {
    use serde_json::Value as J;
    let (Some(y), Some(j)) = (yaml.as_object_mut(), json.as_object()) else {
        return;
    };
    if let (Some(J::Object(ys)), Some(J::Object(js))) = (y.get_mut("services"), j.get("services")) {
        for (name, s) in ys.iter_mut() {
            let s = s.as_object_mut().expect("a service is a mapping");
            s.retain(|k, _| !k.starts_with("x-"));
            for key in ["command", "entrypoint"] {
                if !s.contains_key(key) && js[name].get(key) == Some(&J::Null) {
                    s.insert(key.into(), J::Null);
                }
            }
        }
    }
    for section in ["networks", "volumes", "secrets", "configs"] {
        if let Some(J::Object(items)) = y.get_mut(section) {
            for (name, item) in items.iter_mut() {
                let item = item.as_object_mut().expect("a mapping");
                item.retain(|k, _| !k.starts_with("x-"));
                if section == "networks"
                    && !item.contains_key("ipam")
                    && j[section][name].get("ipam").is_some()
                {
                    item.insert("ipam".into(), J::Object(Default::default()));
                }
            }
        }
    }
}

fn sorted(v: &serde_json::Value) -> String {
    // serde_json without `preserve_order` semantics: compare as canonical text with sorted keys.
    fn canon(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut entries: Vec<_> = m.iter().map(|(k, v)| (k.clone(), canon(v))).collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().collect())
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(canon).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string_pretty(&canon(v)).unwrap_or_default()
}
