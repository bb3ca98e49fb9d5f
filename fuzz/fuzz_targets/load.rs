//! Arbitrary bytes as a Compose file (read as `-f -`) through the whole loader: parse, schema,
//! interpolation, canonicalisation, `extends`, merge, decode and validation; then the result is
//! rendered as `wharf config` would, or the diagnostics as the CLI prints them. Any panic is a bug.

#![no_main]

use std::collections::BTreeMap;
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use wharf_model::LoadOptions;
use wharf_model::config::{Format, render};

static ENVIRONMENT: LazyLock<BTreeMap<String, String>> = LazyLock::new(|| {
    [
        ("HOME", "/home/fuzz"),
        ("USER", "fuzz"),
        ("TAG", "1.2.3"),
        ("PORT", "8080"),
        ("EMPTY", ""),
        ("DOLLAR", "$HOME"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
});

fuzz_target!(|data: &[u8]| {
    // Compose files are read as UTF-8 text; other bytes never reach the parser.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let options = LoadOptions {
        files: vec!["-".into()],
        // Does not exist, so relative `extends.file`, `include` and `env_file` paths find nothing.
        working_dir: "/nonexistent-fuzz".into(),
        environment: ENVIRONMENT.clone(),
        stdin: Some(text.to_string()),
        ..Default::default()
    };
    match wharf_model::load(&options) {
        Ok(loaded) => {
            let _ = loaded.warnings.to_string();
            let _ = render(&loaded.project, Format::Yaml);
            let _ = render(&loaded.project, Format::Json);
        }
        Err(diagnostics) => {
            assert!(
                diagnostics.errors().next().is_some(),
                "a failed load reports no error"
            );
            let _ = diagnostics.to_string();
        }
    }
});
