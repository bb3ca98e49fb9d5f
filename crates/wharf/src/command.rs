//! One module per verb; this one loads the project they share and finds its name.

mod config;
mod daemon;
mod down;
mod events;
mod exec;
mod export;
mod lifecycle;
mod logs;
mod ps;
mod routes;
mod scale;
mod up;

use std::future::Future;
use std::io::Read;
use std::process::ExitCode;

use anyhow::{Context, bail};
use wharf_model::{LoadOptions, Loaded, load};

use crate::cli::{Cli, Command, ProjectFlags};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let flags = &cli.project;
    match &cli.command {
        Command::Config(args) => config::run(flags, args),
        Command::Up(args) => up::run(flags, args),
        Command::Ps(args) => ps::run(flags, args),
        Command::Logs(args) => logs::run(flags, args),
        Command::Start(args) => lifecycle::run(flags, args, lifecycle::Lifecycle::Start),
        Command::Stop(args) => lifecycle::run(flags, args, lifecycle::Lifecycle::Stop),
        Command::Restart(args) => lifecycle::run(flags, args, lifecycle::Lifecycle::Restart),
        Command::Scale(args) => scale::run(flags, args),
        Command::Events(args) => events::run(flags, args),
        Command::Exec(args) => exec::run(flags, args),
        Command::Down(args) => down::run(flags, args),
        Command::Routes(args) => routes::run(flags, args),
        Command::Ca => routes::ca(),
        Command::Daemon => daemon::run(),
        Command::Export(crate::cli::ExportCommand::Kubernetes(args)) => export::run(flags, args),
    }
}

/// Runs the async part of a verb that talks to the daemon.
/// Writes `text` to standard output. A closed pipe (`wharf ps --format json | head -c 10`) ends
/// the output quietly, as it ends `logs` and `events`: `print!` would panic on it.
fn print_out(text: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = write!(out, "{text}").and_then(|()| out.flush());
}

fn block_on<F: Future>(future: F) -> anyhow::Result<F::Output> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    Ok(runtime.block_on(future))
}

/// Loads the project the global flags name. Warnings go to standard error; on errors, every
/// diagnostic is printed and `Err(ExitCode)` carries the status to exit with.
pub fn load_project(flags: &ProjectFlags) -> anyhow::Result<Result<Loaded, ExitCode>> {
    Ok(load_project_with(&load_options(flags)?))
}

/// What the global flags and the process ask to load.
pub fn load_options(flags: &ProjectFlags) -> anyhow::Result<LoadOptions> {
    let working_dir = std::env::current_dir().context("cannot read the current directory")?;
    let stdin = if flags.files.iter().any(|f| f.as_os_str() == "-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the Compose file from standard input")?;
        Some(s)
    } else {
        None
    };
    Ok(LoadOptions {
        files: flags.files.clone(),
        project_name: flags.project_name.clone(),
        project_directory: flags.project_directory.clone(),
        profiles: flags.profiles.clone(),
        env_files: flags.env_files.clone(),
        working_dir,
        environment: std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
            .collect(),
        stdin,
        ..LoadOptions::default()
    })
}

/// Loads the project, printing its warnings, or its errors and the exit code to return.
pub fn load_project_with(options: &LoadOptions) -> Result<Loaded, ExitCode> {
    match load(options) {
        Ok(loaded) => {
            if !loaded.warnings.items.is_empty() {
                eprint!("{}", loaded.warnings);
            }
            Ok(loaded)
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            Err(ExitCode::from(1))
        }
    }
}

/// The project a verb other than `up` acts on: `-p` (or COMPOSE_PROJECT_NAME) alone is enough;
/// otherwise the project is loaded as `config` loads it, for its name.
pub fn project_name(flags: &ProjectFlags) -> anyhow::Result<Result<String, ExitCode>> {
    let named = flags.project_name.clone().or_else(|| {
        std::env::var("COMPOSE_PROJECT_NAME")
            .ok()
            .filter(|n| !n.is_empty() && flags.files.is_empty())
    });
    if let Some(name) = named {
        if !wharf_model::load::is_valid_project_name(&name) {
            bail!(
                "`{name}` is not a valid project name: use lowercase letters, digits, dashes and underscores, starting with a letter or digit"
            );
        }
        return Ok(Ok(name));
    }
    Ok(load_project(flags)?.map(|l| l.project.name))
}

/// The services of a verb's arguments: `None` for all.
fn services(list: &[String]) -> Option<Vec<String>> {
    (!list.is_empty()).then(|| list.to_vec())
}

/// Prints an error from the daemon the way every verb does, and returns the failure status.
fn failed(error: &wharf_api::ApiError) -> ExitCode {
    eprintln!("error: {error}");
    ExitCode::FAILURE
}

/// Rows as left-aligned columns three spaces apart, one line each.
fn columns<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("   ").trim_end());
        out.push('\n');
    }
    out
}
