//! wharf's shim as a program of its own: the daemon runs it when it is installed next to the
//! `wharf` binary (it starts in a third of the CPU time `wharf __shim` takes; see
//! `wharf_runtime::native::shim_next_to`), and this crate's tests run it. See
//! `wharf_runtime::shim`.

fn main() {
    std::process::exit(wharf_runtime::shim::main(
        std::env::args_os().skip(1).collect(),
    ));
}
