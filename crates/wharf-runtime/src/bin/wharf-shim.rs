//! wharf's shim as a program of its own, for this crate's tests (the `wharf` binary runs the same
//! code as `wharf __shim`). See `wharf_runtime::shim`.

fn main() {
    std::process::exit(wharf_runtime::shim::main(
        std::env::args_os().skip(1).collect(),
    ));
}
