//! The `wharf` binary: command-line parsing and wiring. `anyhow` lives only here.

/// See the workspace Cargo.toml for why.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod command;
mod connection;
mod log_view;
mod progress;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `wharf __shim ...`: the native runtime's shim, which must run before any thread starts,
    // so before anything else (clap included) happens.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "__shim") {
        let code = wharf_runtime::shim::main(args.collect());
        std::process::exit(code);
    }
    let cli = cli::Cli::parse();
    match command::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
