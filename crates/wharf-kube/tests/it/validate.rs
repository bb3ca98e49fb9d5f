//! Offline validation against the Kubernetes OpenAPI schemas with `kubernetes-validate` (PyPI),
//! strict: an unknown field fails too.
//!
//! CI sets `WHARF_REQUIRE_KUBE_VALIDATE=1` (and installs the tool with
//! `pip install kubernetes-validate`): there a missing tool fails the test. Elsewhere the test
//! says it skipped the validation and why.

use std::path::Path;
use std::process::Command;

pub const TOOL: &str = "kubernetes-validate";

fn required() -> bool {
    std::env::var_os("WHARF_REQUIRE_KUBE_VALIDATE").is_some_and(|v| v == "1")
}

/// Whether the tool can run; panics when it cannot but is required.
pub fn available() -> bool {
    match Command::new(TOOL).arg("--version").output() {
        Ok(out) if out.status.success() => true,
        result => {
            let why = match result {
                Ok(out) => format!(
                    "`{TOOL} --version` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                Err(e) => format!("`{TOOL}` cannot run: {e}"),
            };
            if required() {
                panic!(
                    "{why}; WHARF_REQUIRE_KUBE_VALIDATE=1 requires it: install it with `pip install kubernetes-validate`"
                );
            }
            eprintln!(
                "SKIPPED: schema validation of the manifests: {why}; install it with `pip install kubernetes-validate` (CI sets WHARF_REQUIRE_KUBE_VALIDATE=1 to make this a failure)"
            );
            false
        }
    }
}

/// Validates every YAML file in `dir` for Kubernetes `version` (`1.37`); the error lists every
/// object that failed, with the tool's reason.
pub fn validate_dir(dir: &Path, version: &str) -> Result<usize, String> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let out = Command::new(TOOL)
        .arg("--strict")
        .arg("-k")
        .arg(format!("{version}.0"))
        .args(&files)
        .output()
        .map_err(|e| format!("`{TOOL}` cannot run: {e}"))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let passed = text
        .lines()
        .filter(|l| l.contains(" passed for resource "))
        .count();
    let failures: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ERROR") || l.contains("did not validate"))
        .collect();
    if !out.status.success() || !failures.is_empty() {
        return Err(format!(
            "{TOOL} rejected manifests in {}:\n{}",
            dir.display(),
            if failures.is_empty() {
                text.as_str().to_string()
            } else {
                failures.join("\n")
            }
        ));
    }
    Ok(passed)
}
