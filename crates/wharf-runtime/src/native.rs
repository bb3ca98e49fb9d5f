//! The native runtime: each instance is a tree of processes on this machine, under wharf's shim
//! ([`crate::shim`]), and none of it may outlive the daemon, even when the daemon is SIGKILLed
//! (process-compose users report children surviving: F1bonacc1/process-compose#49, #354, #520).
//!
//! Starting an instance: the daemon forks and execs the shim (`shim` argv prefix, then the
//! shim's options, then `--` and the instance's argv) with exactly the instance's environment,
//! stdin on `/dev/null`, stdout and stderr on pipes read line by line (`native/output.rs`).
//! Between fork and exec (where a multi-threaded process may only make raw syscalls) the child
//! makes itself a session leader, sets its parent death signal, checks that the daemon did not
//! die meanwhile and, with `pid_namespace`, unshares a PID namespace for its children. The shim
//! resolves the user, forks the init and the program, and reports on a status pipe whether the
//! program's exec succeeded, so that a missing program, user or working directory is an error
//! of `start`.
//!
//! The parent death signal fires when the *thread* that forked the child exits, not the
//! process: the daemon therefore forks every shim from one thread that lives as long as the
//! process (`native/spawner.rs`), never from a tokio worker or blocking thread that may come and
//! go.
//!
//! ## With a PID namespace (`pid_namespace`, needs root)
//!
//! The program runs under an init that is PID 1 of a new PID namespace. Daemon dies -> its shims
//! get SIGKILL -> each init gets SIGKILL -> the kernel kills everything in the namespace,
//! grandchildren and double-forked daemons included. `kill()` SIGKILLs the init, so that the
//! namespace is empty before the shim exits. Nothing started inside the namespace can escape it.
//! (Not covered in either mode: processes that the instance asks *another* service to start,
//! e.g. through `systemd-run`, cron or a container engine; they are not its descendants.) There
//! is no mount namespace: the instance still sees the machine's `/proc`, so `ps` inside it shows
//! the machine's pids.
//!
//! ## Without (not root): the gap
//!
//! The shim is a child subreaper, the program leads its own session and process group, and the
//! program has a parent death signal (SIGKILL) on the shim. The shim's own parent death signal
//! is a catchable SIGTERM: when the daemon dies the shim SIGKILLs the program's process group,
//! then every process that is still its descendant (orphans are reparented to it as a subreaper),
//! until none is left. It does the same when the program exits, and `kill()` SIGKILLs the
//! program's group so that the shim sweeps the rest. So while the shim runs, nothing escapes,
//! and the daemon's death (even by SIGKILL) takes every instance down with it.
//!
//! What can still escape, because the kernel does not enforce it without a namespace:
//!
//! - if the **shim itself** is SIGKILLed (by the OOM killer, `kill -9 <shim>`) or crashes, the
//!   program dies (its parent death signal), but the program's children and everything below
//!   them do not: they are reparented to the nearest subreaper or to the system's init and keep
//!   running (PR_SET_PDEATHSIG reaches one generation only, and is cleared by `fork`). Measured
//!   with `sh -c 'sleep 1000 & sleep 1000 & wait'`: after `kill -9 <shim>`, `sh` is gone and both
//!   `sleep`s run on under PID 1. (With a plain SIGKILL death signal on the shim instead of the
//!   sweep, the daemon's SIGKILL leaves the same two `sleep`s: the `orphan` tests catch that.)
//! - a process that is SIGSTOPped when the sweep SIGKILLs it dies (SIGKILL also ends stopped
//!   processes), but a *shim* that is stopped when the daemon dies sweeps only once continued;
//! - the instance shares the PID space of the machine: it can see and signal other processes of
//!   the same user (not an escape, but no isolation either).
//!
//! Signals: `signal()` sends to the shim, which forwards every catchable signal (to the init,
//! which forwards to the program's process group); SIGKILL is `kill()`, SIGSTOP is refused (it
//! would stop the shim), and a SIGCHLD is taken as the shim's own.
//!
//! `exec` (every health probe) is forked by the daemon itself, without the shim: the child
//! enters the instance's network, files, directory and user with raw syscalls
//! (`native/enter.rs`) and execs the command, in its own session, killed as a process group at
//! its timeout and after it exits. It does not enter the instance's PID namespace. `wharf exec`
//! runs the shim in `exec` mode (no fork), which takes the same steps.
//!
//! ## Networks (`NativeConfig::network`, needs root)
//!
//! With isolation on, each instance whose spec has a [`crate::NetworkSpec`] gets the network a
//! container would have, made by `wharf-net` (see its crate docs): a network namespace with a
//! veth into a bridge per Compose network, its own `/etc/hosts` and `/etc/resolv.conf` naming
//! the instances of its networks, outbound NAT unless `internal`, and its `ports:` published
//! by a forwarder in this process. `start` attaches the instance before the shim runs; the shim
//! joins the namespace (`--setns`) and bind-mounts the two files in a private mount namespace
//! (`--bind`) in the program's process, after the fork of the init and before the user switch;
//! the instance's exit detaches it (its names and published ports go, its namespace and
//! addresses stay for its next start). `prepare` creates a project's bridges, `release` removes
//! everything of a project, `recover` whatever a crashed daemon left. Without root (or
//! without isolation configured), instances share the machine's network and `prepare` says
//! what that loses.

mod builtin;
mod enter;
mod exec;
mod handle;
mod network;
mod output;
mod pidfd;
mod spawner;
mod start;
mod vfork;

use std::ffi::OsString;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use wharf_model::Project;
pub use wharf_net::{self as net, NetConfig, Networking};

use crate::{ExecOutput, InstanceHandle, InstanceSpec, Runtime, RuntimeError, Started};

/// How the native runtime runs its shim and isolates instances.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeConfig {
    /// The argv prefix that runs the shim, e.g. `[current_exe, "__shim"]` (an absolute path: it
    /// is looked up with the instance's `PATH`). The shim's options follow it.
    pub shim: Vec<OsString>,
    /// Run each instance in its own PID namespace (needs root). Without it, see the gap in the
    /// module documentation.
    pub pid_namespace: bool,
    /// Isolate instances' networks (needs root); `None`: instances share the machine's network.
    pub network: Option<NetConfig>,
}

impl NativeConfig {
    /// `pid_namespace` when running as root; no network isolation (see [`NativeConfig::isolated`]).
    pub fn new(shim: Vec<OsString>) -> NativeConfig {
        NativeConfig {
            shim,
            pid_namespace: rustix::process::geteuid().is_root(),
            network: None,
        }
    }

    /// Network isolation when running as root, its links, rules and files named after
    /// `state_dir` (so that the next daemon of that directory finds a crashed one's leftovers).
    /// Without root this changes nothing, and `prepare` warns.
    pub fn isolated(mut self, state_dir: &Path) -> NativeConfig {
        if rustix::process::geteuid().is_root() {
            self.network = Some(NetConfig::for_state_dir(state_dir));
        }
        self
    }
}

/// The argv prefix that runs the shim for the wharf binary at `exe`: the `wharf-shim` program
/// next to it when there is one (this crate's `[[bin]]`, built from the same sources), else
/// `exe __shim`. The separate program matters for speed: every start execs the shim, and the
/// small program starts in about a third of the CPU time the whole wharf binary takes.
pub fn shim_next_to(exe: &Path) -> Vec<OsString> {
    use std::os::unix::fs::PermissionsExt;
    let small = exe.with_file_name("wharf-shim");
    let executable =
        std::fs::metadata(&small).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if executable {
        vec![small.into_os_string()]
    } else {
        vec![exe.as_os_str().to_os_string(), OsString::from("__shim")]
    }
}

/// Runs instances as processes on this machine. Users (`user:`) are switched only when the
/// daemon runs as root; otherwise instances run as the daemon's user.
#[derive(Debug)]
pub struct NativeRuntime {
    config: NativeConfig,
    net: Option<Arc<Networking>>,
    /// What `exec` needs to enter each running instance.
    contexts: Arc<exec::Contexts>,
}

impl NativeRuntime {
    pub fn new(config: NativeConfig) -> NativeRuntime {
        let net = config.network.clone().map(|c| Arc::new(Networking::new(c)));
        NativeRuntime {
            config,
            net,
            contexts: Arc::default(),
        }
    }

    pub fn config(&self) -> &NativeConfig {
        &self.config
    }

    /// The instances' networks, when isolated: addresses, published ports, leftovers.
    pub fn networking(&self) -> Option<&Arc<Networking>> {
        self.net.as_ref()
    }
}

#[async_trait]
impl Runtime for NativeRuntime {
    fn name(&self) -> &'static str {
        "native"
    }

    async fn start(&self, spec: &InstanceSpec) -> Result<Started, RuntimeError> {
        start::start(&self.config, self.net.as_ref(), &self.contexts, spec).await
    }

    async fn exec(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
        timeout: Duration,
    ) -> Result<ExecOutput, RuntimeError> {
        exec::exec(&self.contexts, self.net.as_deref(), instance, argv, timeout).await
    }

    async fn interactive_command(
        &self,
        instance: &dyn InstanceHandle,
        argv: &[String],
    ) -> Option<Vec<OsString>> {
        exec::interactive_command(&self.config, self.net.as_deref(), instance, argv).await
    }

    async fn addresses(&self, instance: &dyn InstanceHandle) -> Vec<std::net::IpAddr> {
        match &self.net {
            Some(net) => net
                .addresses(&instance.spec().name)
                .await
                .into_iter()
                .map(|(_, addr)| std::net::IpAddr::V4(addr))
                .collect(),
            None => Vec::new(),
        }
    }

    fn distinct_addresses(&self, _project: &str) -> bool {
        self.net.is_some()
    }

    async fn prepare(&self, project: &Project) -> Result<Vec<String>, RuntimeError> {
        let mut warnings = match &self.net {
            Some(net) => network::prepare(net, project).await?,
            None => network::host_network_warning(project).into_iter().collect(),
        };
        warnings.extend(unmounted_files(project));
        Ok(warnings)
    }

    async fn release(&self, project: &str) -> Result<(), RuntimeError> {
        match &self.net {
            Some(net) => net
                .release(project)
                .await
                .map_err(|e| RuntimeError::Other(format!("project {project}: {e}"))),
            None => Ok(()),
        }
    }

    async fn recover(&self) -> Result<Vec<String>, RuntimeError> {
        match &self.net {
            Some(net) => net
                .recover()
                .await
                .map_err(|e| RuntimeError::Other(e.to_string())),
            None => Ok(Vec::new()),
        }
    }
}

/// The exit code reported when a status cannot be read (someone else reaped the process).
const UNKNOWN_EXIT: i32 = 255;

/// A wait result as Docker reports it: the exit code, or 128+N for a process killed by signal N.
fn exit_code(status: io::Result<std::process::ExitStatus>) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Ok(s) => s
            .code()
            .or_else(|| s.signal().map(|n| 128 + n))
            .unwrap_or(UNKNOWN_EXIT),
        Err(_) => UNKNOWN_EXIT,
    }
}

/// Why the shim itself could not be started.
fn shim_failure(config: &NativeConfig, e: &io::Error, new_pid_namespace: bool) -> String {
    let shim = config
        .shim
        .first()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    match e.raw_os_error() {
        Some(nix::libc::EPERM) | Some(nix::libc::EINVAL) if new_pid_namespace => format!(
            "cannot create a PID namespace: {} (it needs root; run without pid_namespace)",
            describe(e)
        ),
        Some(nix::libc::ENOENT) => format!("wharf's shim `{shim}` does not exist"),
        _ => format!("cannot run wharf's shim `{shim}`: {}", describe(e)),
    }
}

/// An I/O error as a lowercase reason, without the "(os error N)" suffix.
fn describe(err: &io::Error) -> String {
    match err.raw_os_error() {
        Some(errno) => crate::shim::describe(nix::errno::Errno::from_raw(errno)),
        None => {
            let text = err.to_string();
            let mut chars = text.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => text,
            }
        }
    }
}

/// `secrets:` and `configs:` of services, which a native instance does not get mounted at
/// `/run/secrets/<name>` or `/<name>` as a container would: one warning per service, naming them
/// and where a `file:` one can be read instead.
fn unmounted_files(project: &Project) -> Vec<String> {
    let mut warnings = Vec::new();
    for (name, service) in &project.services {
        let mut found = Vec::new();
        for (kind, refs, defs) in [
            ("secret", &service.secrets, &project.secrets),
            ("config", &service.configs, &project.configs),
        ] {
            for r in refs {
                let place = defs
                    .get(&r.source)
                    .and_then(|d| d.file.as_ref())
                    .map(|f| format!(" (its file is {})", f.display()))
                    .unwrap_or_default();
                found.push(format!("{kind} `{}`{place}", r.source));
            }
        }
        if !found.is_empty() {
            warnings.push(format!(
                "service `{name}`: the native runtime does not mount {}: read the file from where it is, or run the project with --runtime docker",
                found.join(", ")
            ));
        }
    }
    warnings
}

#[cfg(test)]
mod unmounted_tests {
    use super::*;

    #[test]
    fn secrets_and_configs_are_named_in_a_warning() {
        let dir = std::env::temp_dir();
        let yaml = "services:\n  web:\n    command: [x]\n    secrets: [db]\n    configs: [app]\n  worker:\n    command: [x]\nsecrets:\n  db: {file: ./db.txt}\nconfigs:\n  app: {content: hello}\n";
        let project = wharf_model::load(&wharf_model::LoadOptions {
            files: vec!["-".into()],
            project_name: Some("p".into()),
            working_dir: dir.clone(),
            stdin: Some(yaml.into()),
            ..Default::default()
        })
        .expect("loads")
        .project;
        let warnings = unmounted_files(&project);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        let w = &warnings[0];
        assert!(
            w.starts_with(
                "service `web`: the native runtime does not mount secret `db` (its file is "
            ),
            "{w}"
        );
        assert!(w.contains("db.txt), config `app`: read the file from where it is, or run the project with --runtime docker"), "{w}");
    }
}
