//! One module per verb; this one loads the project they share.

mod config;

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context;
use wharf_model::{LoadOptions, Loaded, load};

use crate::cli::{Cli, Command, ProjectFlags};

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Config(args) => config::run(&cli.project, &args),
    }
}

/// Loads the project the global flags name. Warnings go to standard error; on errors, every
/// diagnostic is printed and `Err(ExitCode)` carries the status to exit with.
pub fn load_project(flags: &ProjectFlags) -> anyhow::Result<Result<Loaded, ExitCode>> {
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
    let options = LoadOptions {
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
    };
    match load(&options) {
        Ok(loaded) => {
            if !loaded.warnings.items.is_empty() {
                eprint!("{}", loaded.warnings);
            }
            Ok(Ok(loaded))
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            Ok(Err(ExitCode::from(1)))
        }
    }
}
