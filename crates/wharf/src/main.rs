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
/// resident memory that the long-running daemon never uses. It also keeps freed pages for 10 ms
/// before returning them (`purge_delay`): with a daemon that allocates in bursts (a stack coming
/// up) that kept about 1 MB more resident, for no measurable speed (`bench/up-chain.sh`: the
/// same median). The options are read when the allocator starts, before `main`, so
/// `wharf daemon` sets them and replaces itself (same pid, which systemd keeps tracking).
/// Instances never see the variables: their environment is their own.
fn keep_daemon_memory_small() {
    use std::os::unix::process::CommandExt;
    const OPTION: &str = "MIMALLOC_ARENA_EAGER_COMMIT";
    const PURGE: &str = "MIMALLOC_PURGE_DELAY";
    let daemon = std::env::args_os().nth(1).is_some_and(|a| a == "daemon");
    if !daemon || std::env::var_os(OPTION).is_some() {
        return;
    }
    if let Ok(exe) = std::env::current_exe() {
        let mut command = std::process::Command::new(exe);
        command.args(std::env::args_os().skip(1)).env(OPTION, "0");
        if std::env::var_os(PURGE).is_none() {
            command.env(PURGE, "0");
        }
        let error = command.exec();
        // Not fatal: the daemon runs with more memory.
        eprintln!("wharf daemon: cannot restart with {OPTION}=0: {error}");
    }
}
