//! Flags and verbs, shaped like Docker Compose's so that users' habits carry over.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "wharf",
    version,
    about = "Run multi-service Compose stacks: natively, on Docker, behind a health-aware router"
)]
pub struct Cli {
    #[command(flatten)]
    pub project: ProjectFlags,
    #[command(subcommand)]
    pub command: Command,
}

/// The global flags that select and load a project, as in `docker compose`.
#[derive(Debug, Args)]
pub struct ProjectFlags {
    /// Compose file(s), merged in order; `-` reads standard input
    #[arg(short = 'f', long = "file", global = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Project name (default: COMPOSE_PROJECT_NAME, the top-level `name`, or the directory name)
    #[arg(short = 'p', long = "project-name", global = true, value_name = "NAME")]
    pub project_name: Option<String>,
    /// Directory that relative paths resolve against (default: the first file's directory)
    #[arg(long, global = true, value_name = "DIR")]
    pub project_directory: Option<PathBuf>,
    /// Enable services of this profile (repeatable; default: COMPOSE_PROFILES)
    #[arg(
        long = "profile",
        id = "profile",
        global = true,
        value_name = "PROFILE"
    )]
    pub profiles: Vec<String>,
    /// Environment file(s) for interpolation instead of the project directory's .env
    #[arg(long = "env-file", global = true, value_name = "FILE")]
    pub env_files: Vec<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate the project and print it in normalised form, like `docker compose config`
    Config(ConfigArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Output format
    #[arg(long, value_enum, default_value_t = OutputFormat::Yaml)]
    pub format: OutputFormat,
    /// Print the names of the enabled services, one per line
    #[arg(long)]
    pub services: bool,
    /// Print the names of the volumes, one per line
    #[arg(long)]
    pub volumes: bool,
    /// Print the names of the networks, one per line
    #[arg(long)]
    pub networks: bool,
    /// Print every profile that a service names, one per line
    #[arg(long = "profiles", id = "list_profiles")]
    pub profiles: bool,
    /// Only validate: print nothing, exit 0 when the project is valid
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}
