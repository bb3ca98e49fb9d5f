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
    /// Compose file(s), merged in order; `-` reads standard input. Before the verb, as in
    /// `docker compose` (`wharf logs -f` follows logs)
    #[arg(short = 'f', long = "file", value_name = "FILE")]
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
    /// Create and start the project's services, and show their output (Ctrl-C stops them)
    Up(UpArgs),
    /// List the project's instances
    Ps(PsArgs),
    /// Show the output of the project's instances
    Logs(LogsArgs),
    /// Start stopped services
    Start(ServicesArgs),
    /// Stop running services, dependents first
    Stop(ServicesArgs),
    /// Stop and start services
    Restart(ServicesArgs),
    /// Set the number of instances of services
    Scale(ScaleArgs),
    /// Show the project's events as they happen (state changes of its instances)
    Events(EventsArgs),
    /// Run a command as an instance of a service runs: its environment, directory and user
    Exec(ExecArgs),
    /// Stop the project's instances and forget the project
    Down(DownArgs),
    /// Show the router's routes: host, path, service, healthy instances, access rules
    Routes(RoutesArgs),
    /// Print the certificate of the local wharf CA that signs `wharf.http.tls: self-signed`
    /// routes (PEM), for curl --cacert or a browser to trust
    Ca,
    /// Run the daemon in the foreground (for systemd); other verbs start it when needed
    Daemon,
    /// Translate the project for another platform
    #[command(subcommand)]
    Export(ExportCommand),
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Kubernetes manifests, and a report of what did not translate exactly
    Kubernetes(KubernetesArgs),
}

#[derive(Debug, Args)]
pub struct KubernetesArgs {
    /// Directory for one file per kind (`-` or absent: one stream on standard output)
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Namespace of every object (default: the project's name, with a Namespace object)
    #[arg(long, value_name = "NS")]
    pub namespace: Option<String>,
    /// Kubernetes version to write for (1.33 to 1.37)
    #[arg(long, value_name = "1.xx")]
    pub kube_version: Option<String>,
    /// Also write the translation report to this file
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Turn bind mounts into hostPath volumes instead of leaving them out
    #[arg(long)]
    pub allow_host_paths: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Return once the services are started, without showing their output
    #[arg(short = 'd', long)]
    pub detach: bool,
    /// Return once every service is running and healthy (or, for a one-shot that others wait
    /// on, exited 0); implies --detach
    #[arg(long)]
    pub wait: bool,
    /// How long `up` may wait in all, in seconds: for dependencies' conditions, starts and, with
    /// --wait, readiness (without --wait too, as in Docker Compose)
    #[arg(long, value_name = "SECONDS")]
    pub wait_timeout: Option<u64>,
    /// Recreate instances even when their configuration did not change
    #[arg(long, conflicts_with = "no_recreate")]
    pub force_recreate: bool,
    /// Keep existing instances even when their configuration changed
    #[arg(long)]
    pub no_recreate: bool,
    /// Remove the instances of services that are no longer in the project
    #[arg(long)]
    pub remove_orphans: bool,
    /// Where instances run: `native` (processes, the default) or `docker` (containers on the
    /// Docker Engine); the project's `x-wharf: {runtime: ...}` says it too
    #[arg(long, value_name = "RUNTIME", value_parser = ["native", "docker"])]
    pub runtime: Option<String>,
    /// Only these services (and the services they depend on)
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct RoutesArgs {
    /// The routes of every project of the daemon, not only this one's
    #[arg(long)]
    pub all: bool,
    /// Say which route a URL (http://host/path) matches, and why, or why none does
    #[arg(long, value_name = "URL")]
    pub explain: Option<String>,
    /// Output format
    #[arg(long, value_enum, default_value_t = PsFormat::Table)]
    pub format: PsFormat,
}

#[derive(Debug, Args)]
pub struct PsArgs {
    /// Also instances that stopped or exited
    #[arg(short, long)]
    pub all: bool,
    /// Output format
    #[arg(long, value_enum, default_value_t = PsFormat::Table)]
    pub format: PsFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PsFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Keep showing new output (also after an instance restarts)
    #[arg(short, long)]
    pub follow: bool,
    /// How many lines to show from the end of each instance's output: a number, or `all`
    #[arg(short = 'n', long, default_value = "all", value_name = "N")]
    pub tail: String,
    /// Show when each line was written
    #[arg(short, long)]
    pub timestamps: bool,
    /// Only these services
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ServicesArgs {
    /// Only these services (default: all)
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ScaleArgs {
    /// SERVICE=N, one or more
    #[arg(required = true, value_name = "SERVICE=N", value_parser = parse_scale)]
    pub scale: Vec<(String, u32)>,
}

fn parse_scale(s: &str) -> Result<(String, u32), String> {
    let (service, n) = s
        .split_once('=')
        .ok_or_else(|| format!("expected SERVICE=N, found `{s}`"))?;
    let n = n
        .parse()
        .map_err(|_| format!("`{n}` is not a number of instances (in `{s}`)"))?;
    Ok((service.to_string(), n))
}

#[derive(Debug, Args)]
pub struct EventsArgs {
    /// One JSON object a line
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Which instance of the service, from 1
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub index: u32,
    pub service: String,
    /// The command and its arguments
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Also delete the data of the project's named volumes
    #[arg(short, long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// Output format (default: yaml; for --variables, a table)
    #[arg(long, value_enum)]
    pub format: Option<OutputFormat>,
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
    /// Print the models' `model` (what each pulls), one per line
    #[arg(long)]
    pub models: bool,
    /// Print `SERVICE HASH` for these services (comma-separated, `*` for all): wharf's
    /// configuration hash, the one its containers are labelled with (not Docker Compose's)
    #[arg(long, value_name = "SERVICES")]
    pub hash: Option<String>,
    /// Print the variables the files use, with their defaults and whether they are required
    #[arg(long)]
    pub variables: bool,
    /// Leave variables as written: print the model with its `${VAR}` expressions
    #[arg(long)]
    pub no_interpolate: bool,
    /// Skip the checks that what services refer to exists (services, networks, volumes,
    /// secrets, configs) and that container names are unique: the output may be invalid
    #[arg(long)]
    pub no_consistency: bool,
    /// With --services, only the services that match: `profile=P` (enables profile P and
    /// keeps its services) or `label=KEY[=VALUE]`; repeatable, every criterion must match
    #[arg(long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// Only validate: print nothing, exit 0 when the project is valid
    #[arg(short, long)]
    pub quiet: bool,
    /// Only these services and the services they depend on
    #[arg(value_name = "SERVICE")]
    pub service_names: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Yaml,
    Json,
}
