//! Arbitrary text through `wharf_model::interpolate::interpolate` with a small fixed environment.
//! Any panic is a bug; so is a change to a string that has no `$`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use wharf_model::interpolate::interpolate;

fn lookup(name: &str) -> Option<String> {
    match name {
        "A" => Some("a".into()),
        "EMPTY" => Some(String::new()),
        "NESTED" => Some("${A}".into()),
        "DOLLAR" => Some("$".into()),
        "HOME" => Some("/home/fuzz".into()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let result = interpolate(text, &lookup);
    if !text.contains('$') {
        assert_eq!(result.as_deref(), Ok(text), "a string without `$` changed");
    }
});
