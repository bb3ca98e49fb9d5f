//! The HTTP/1.1 fast path's request head parser (and the response head parser, and the path
//! normalisation of what it parsed) on arbitrary bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wharf_router::fuzzing::request_head(data);
});
