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
    keep_daemon_memory_small();
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

/// mimalloc commits whole arenas up front on Linux (its `arena_eager_commit` default): 10 MB of
/// resident memory that the long-running daemon never uses. The option is read when the
/// allocator starts, before `main`, so `wharf daemon` sets it and replaces itself (same pid,
/// which systemd keeps tracking). Instances never see the variable: their environment is their
/// own.
fn keep_daemon_memory_small() {
    use std::os::unix::process::CommandExt;
    const OPTION: &str = "MIMALLOC_ARENA_EAGER_COMMIT";
    let daemon = std::env::args_os().nth(1).is_some_and(|a| a == "daemon");
    if !daemon || std::env::var_os(OPTION).is_some() {
        return;
    }
    if let Ok(exe) = std::env::current_exe() {
        let error = std::process::Command::new(exe)
            .args(std::env::args_os().skip(1))
            .env(OPTION, "0")
            .exec();
        // Not fatal: the daemon runs with more memory.
        eprintln!("wharf daemon: cannot restart with {OPTION}=0: {error}");
    }
}
