//! Golden manifests and report for the EDD-shaped case (`testdata/edd`), written as
//! `wharf export kubernetes -o DIR --report FILE` writes them. After a deliberate change,
//! rewrite them with `WHARF_BLESS=1 cargo test -p wharf-kube --test it golden` and read the
//! difference before keeping it.

use std::collections::BTreeMap;
use std::path::Path;

use wharf_kube::cli::{ExitStatus, ExportArgs, run_with};

use crate::project::{self, repo_root};

fn bless() -> bool {
    std::env::var_os("WHARF_BLESS").is_some_and(|v| v == "1")
}

fn read_dir(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(e.path())
                .unwrap_or_else(|err| panic!("{}: {err}", e.path().display()));
            out.insert(name, text);
        }
    }
    out
}

#[test]
fn edd_manifests_and_report_match_the_golden_files() {
    let loaded = project::case("edd");
    let out = tempfile::tempdir().expect("a temporary directory");
    let report = out.path().join("report.txt");
    let args = ExportArgs {
        out: Some(out.path().to_path_buf()),
        report: Some(report),
        environment: loaded.environment.clone(),
        ..ExportArgs::default()
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let status = run_with(&loaded.project, &args, &mut stdout, &mut stderr).expect("exported");
    assert_eq!(status, ExitStatus::SUCCESS);
    assert!(
        stdout.is_empty(),
        "with -o DIR nothing goes to standard output"
    );
    let stderr = String::from_utf8(stderr).expect("UTF-8");
    let actual = read_dir(out.path());
    assert!(
        stderr.ends_with(&actual["report.txt"]),
        "the report goes to standard error too"
    );

    let golden = repo_root().join("crates/wharf-kube/tests/golden/edd");
    if bless() {
        let _ = std::fs::remove_dir_all(&golden);
        std::fs::create_dir_all(&golden).expect("create the golden directory");
        for (name, text) in &actual {
            std::fs::write(golden.join(name), text).expect("write a golden file");
        }
        return;
    }
    let expected = read_dir(&golden);
    assert!(
        !expected.is_empty(),
        "no golden files in {}: run `WHARF_BLESS=1 cargo test -p wharf-kube --test it golden`",
        golden.display()
    );
    let names = |m: &BTreeMap<String, String>| m.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&actual), names(&expected), "the files written");
    for (name, text) in &expected {
        if actual[name] != *text {
            let first = actual[name]
                .lines()
                .zip(text.lines())
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            panic!(
                "{name} differs from {} at line {}:\n  actual:   {}\n  expected: {}\n(WHARF_BLESS=1 rewrites the golden files)",
                golden.join(name).display(),
                first + 1,
                actual[name].lines().nth(first).unwrap_or("<end>"),
                text.lines().nth(first).unwrap_or("<end>")
            );
        }
    }
}
