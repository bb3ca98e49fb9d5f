//! The chunked-body tracker on arbitrary bytes, fed whole and in pieces (the first byte picks
//! the piece size).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    wharf_router::fuzzing::chunked(data);
});
