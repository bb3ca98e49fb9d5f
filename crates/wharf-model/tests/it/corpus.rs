//! The third-party corpus: every Compose file under `../shared/conformance/` (files from five
//! public repositories that nobody on the project wrote) either loads, or fails as Docker Compose v2
//! fails it. `tests/corpus-expected.tsv` is the one list of the files that are meant to fail (with
//! the text wharf's error must contain and the upstream test that asserts the failure) and of the
//! YAML files there that are not Compose files (Helm charts, Kubernetes manifests, tool configs).
//!
//! Each file is loaded on its own, as `wharf -f FILE config` would from the file's directory, with
//! an empty process environment. A panic is caught and reported with the file, and a file whose
//! load takes over 50 ms (best of 3 after a warm-up load, so that a busy machine does not fail it)
//! is a failure too. Without `../shared` the corpus is skipped with a message, unless
//! `WHARF_REQUIRE_CONFORMANCE=1` (set by `.ci/run`) makes that a failure.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use wharf_model::{LoadOptions, load};

use crate::case::repo_root;

const SLOW: Duration = Duration::from_millis(50);

/// What the expectation file says of one file.
#[derive(Debug)]
enum Expected {
    /// Not a Compose file (a Helm chart, a Kubernetes manifest, a Prometheus config).
    NotCompose,
    /// Docker Compose v2 refuses it; wharf's error must contain this text.
    Fails(String),
}

fn expectations() -> BTreeMap<String, (Expected, String)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus-expected.tsv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        let [file, outcome, text, reason] = fields[..] else {
            panic!(
                "{}:{}: want 4 tab-separated fields (file, outcome, error text, reason), found {}",
                path.display(),
                i + 1,
                fields.len()
            );
        };
        let expected = match outcome {
            "not-compose" => Expected::NotCompose,
            "fails" if !text.is_empty() => Expected::Fails(text.to_string()),
            other => panic!(
                "{}:{}: outcome `{other}` (with error text `{text}`): use `fails` with the text wharf's error must contain, or `not-compose`",
                path.display(),
                i + 1
            ),
        };
        assert!(
            !reason.trim().is_empty(),
            "{}:{}: every entry needs its reason (the upstream test)",
            path.display(),
            i + 1
        );
        let previous = out.insert(file.to_string(), (expected, reason.to_string()));
        assert!(
            previous.is_none(),
            "{}:{}: {file} is listed twice",
            path.display(),
            i + 1
        );
    }
    out
}

fn yaml_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            yaml_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(p);
        }
    }
}

fn options(file: &Path) -> LoadOptions {
    LoadOptions {
        files: vec![file.to_path_buf()],
        working_dir: file.parent().expect("a file has a directory").to_path_buf(),
        ..LoadOptions::default()
    }
}

/// `Ok(None)` when it loads, `Ok(Some(errors))` when it fails, `Err` when it panics.
fn try_load(file: &Path) -> Result<Option<String>, String> {
    let options = options(file);
    match catch_unwind(AssertUnwindSafe(|| load(&options))) {
        Ok(Ok(_)) => Ok(None),
        Ok(Err(d)) => Ok(Some(d.to_string())),
        Err(p) => Err(p
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()),
    }
}

#[test]
fn every_corpus_file_loads_or_fails_as_docker_compose_fails_it() {
    let corpus = repo_root().join("../shared/conformance");
    if !corpus.is_dir() {
        let required = std::env::var_os("WHARF_REQUIRE_CONFORMANCE").is_some_and(|v| v == "1");
        let message = format!("the third-party corpus {} is absent", corpus.display());
        assert!(
            !required,
            "{message}, and WHARF_REQUIRE_CONFORMANCE=1 requires it"
        );
        eprintln!("\n*** {message}: the corpus test is SKIPPED ***\n");
        return;
    }
    let expected = expectations();
    let mut files = Vec::new();
    yaml_files(&corpus, &mut files);

    let (mut loaded, mut expected_failures, mut not_compose) = (0, 0, 0);
    let mut slowest = (Duration::ZERO, String::new());
    let mut problems = Vec::new();
    let mut seen = Vec::new();
    for file in &files {
        let rel = file
            .strip_prefix(&corpus)
            .expect("below the corpus")
            .to_string_lossy()
            .into_owned();
        let entry = expected.get(&rel);
        if entry.is_some() {
            seen.push(rel.clone());
        }
        if let Some((Expected::NotCompose, _)) = entry {
            not_compose += 1;
            continue;
        }
        let outcome = match try_load(file) {
            Ok(o) => o,
            Err(panic) => {
                problems.push(format!("{rel}: PANIC: {panic}"));
                continue;
            }
        };
        match (outcome, entry) {
            (None, None) => loaded += 1,
            (Some(errors), Some((Expected::Fails(text), _))) if errors.contains(text.as_str()) => {
                expected_failures += 1
            }
            (Some(errors), Some((Expected::Fails(text), reason))) => problems.push(format!(
                "{rel}: fails, but not with `{text}` ({reason}):\n{errors}"
            )),
            (None, Some((Expected::Fails(text), reason))) => problems.push(format!(
                "{rel}: loads, but Docker Compose refuses it with `{text}` ({reason})"
            )),
            (Some(errors), None) => problems.push(format!("{rel}: fails:\n{errors}")),
            (_, Some((Expected::NotCompose, _))) => unreachable!("skipped above"),
        }
        // Warm (the load above), then the best of 3.
        let best = (0..3)
            .map(|_| {
                let options = options(file);
                let start = Instant::now();
                let _ = load(&options);
                start.elapsed()
            })
            .min()
            .unwrap_or_default();
        if best > slowest.0 {
            slowest = (best, rel.clone());
        }
        if best > SLOW {
            problems.push(format!(
                "{rel}: takes {} ms to load (best of 3), over {} ms",
                best.as_millis(),
                SLOW.as_millis()
            ));
        }
    }
    for rel in expected.keys() {
        if !seen.contains(rel) {
            problems.push(format!(
                "{rel} is listed in corpus-expected.tsv but is not in the corpus"
            ));
        }
    }
    let other = problems.len();
    eprintln!(
        "corpus: {} YAML files: {loaded} loaded, {expected_failures} expected failures, {not_compose} not Compose files, {other} other; slowest {} ({} us, best of 3)",
        files.len(),
        slowest.1,
        slowest.0.as_micros()
    );
    assert!(
        problems.is_empty(),
        "{other} corpus files differ from Docker Compose:\n\n{}",
        problems.join("\n\n")
    );
}
