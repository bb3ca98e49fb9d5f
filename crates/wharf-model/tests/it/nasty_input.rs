//! Inputs that must not make the loader panic: each either loads or fails with diagnostics that
//! render, and a project that loads renders in both formats.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};

use wharf_model::config::{Format, render};
use wharf_model::{LoadOptions, load};

/// Loads `text` as `compose.yaml` of a fresh directory; returns the rendered errors, or `None`
/// when it loads. Panics (failing the test) when loading or rendering panics.
fn outcome(what: &str, bytes: &[u8]) -> Option<String> {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::write(dir.path().join("compose.yaml"), bytes).expect("written");
    let options = LoadOptions {
        working_dir: dir.path().to_path_buf(),
        environment: BTreeMap::from([("HOME".to_string(), "/home/wharf".to_string())]),
        ..LoadOptions::default()
    };
    let result = catch_unwind(AssertUnwindSafe(|| match load(&options) {
        Ok(loaded) => {
            render(&loaded.project, Format::Yaml);
            render(&loaded.project, Format::Json);
            None
        }
        Err(d) => Some(d.to_string()),
    }));
    result.unwrap_or_else(|_| panic!("loading {what} panicked"))
}

fn errors(what: &str, text: &str) -> String {
    outcome(what, text.as_bytes()).unwrap_or_else(|| panic!("{what} loaded, but it must fail"))
}

#[test]
fn empty_file_is_a_project_without_services() {
    assert_eq!(outcome("an empty file", b""), None);
    assert_eq!(outcome("only a comment", b"# nothing yet\n"), None);
}

#[test]
fn services_as_a_list() {
    let e = errors("services: []", "services: []\n");
    assert!(
        e.contains("`services` must be a mapping, found a sequence"),
        "{e}"
    );
    assert!(e.contains("compose.yaml:1:11"), "{e}");
}

#[test]
fn a_service_without_a_definition() {
    let e = errors("services: {web: null}", "services: {web: null}\n");
    assert!(e.contains("compose.yaml:1:"), "{e}");
}

#[test]
fn a_list_at_the_top_level() {
    let e = errors("a top-level list", "- services\n- web\n");
    assert!(
        e.contains("a Compose file must be a mapping at the top level, found a sequence"),
        "{e}"
    );
    assert!(e.contains("compose.yaml:1:1"), "{e}");
}

#[test]
fn binary_garbage() {
    // Not UTF-8: refused when reading.
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let bytes: Vec<u8> = (0..4096).map(|_| next() as u8).collect();
    let e = outcome("random bytes", &bytes).expect("random bytes must not load");
    assert!(e.contains("compose.yaml"), "{e}");
    assert!(outcome("NUL bytes", b"services:\0\0\0\n  web: {image: x}\n").is_some());
    // Valid UTF-8 made of YAML's and Compose's special characters, in many arrangements.
    let alphabet: Vec<char> = "ab:- \n\t{}[]\"'#&*!|>%@`$\\,?~0.\u{0}\u{7f}\u{feff}é"
        .chars()
        .collect();
    for round in 0..300 {
        let len = 1 + (next() % 200) as usize;
        let text: String = (0..len)
            .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
            .collect();
        outcome(&format!("garbage #{round}: {text:?}"), text.as_bytes());
        outcome(
            &format!("garbage service #{round}"),
            format!("services:\n  web:\n    image: {text}\n").as_bytes(),
        );
    }
}

#[test]
fn very_long_lines() {
    let long = "a".repeat(1_000_000);
    outcome(
        "a long image name",
        format!("services:\n  web:\n    image: {long}\n").as_bytes(),
    );
    outcome(
        "a long key",
        format!("services:\n  {long}:\n    image: x\n").as_bytes(),
    );
    outcome(
        "a long flow sequence",
        format!(
            "services:\n  web:\n    image: x\n    command: [{}]\n",
            "a,".repeat(200_000)
        )
        .as_bytes(),
    );
    outcome(
        "deep flow nesting on one line",
        format!("x-deep: {}{}\n", "[".repeat(100_000), "]".repeat(100_000)).as_bytes(),
    );
    outcome(
        "nested defaults",
        format!(
            "services:\n  web:\n    image: {}x{}\n",
            "${A:-".repeat(10_000),
            "}".repeat(10_000)
        )
        .as_bytes(),
    );
    outcome(
        "unclosed braces",
        format!("services:\n  web:\n    image: {}\n", "${".repeat(100_000)).as_bytes(),
    );
    outcome(
        "many dollars",
        format!(
            "services:\n  web:\n    image: x\n    command: {}\n",
            "$$".repeat(500_000)
        )
        .as_bytes(),
    );
    outcome(
        "a long port list",
        b"services:\n  web:\n    image: x\n    ports: [\"1-65535:1-65535\"]\n",
    );
    let e = errors(
        "a long line with an error",
        &format!("services:\n  web:\n    image: x\n    comand: {long}\n"),
    );
    assert!(e.contains("compose.yaml:4:5"), "{}", &e[..e.len().min(300)]);
}
