//! The shim's command line, written by the daemon ([`ShimArgs::to_args`]) and read back by the
//! shim ([`ShimArgs::parse`]), in one place so that the two cannot drift apart.
//!
//! `[--name NAME] --mode init|reaper|exec [--status-fd FD] [--parent-pid PID] [--user USER]
//! [--workdir DIR] [--setns PATH]... [--bind TARGET=SOURCE]... -- PROGRAM [ARG]...`

use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;

/// What the shim does with the program.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The daemon put the shim's children in a new PID namespace: fork an init (PID 1 there),
    /// which forks the program.
    Init,
    /// No namespace: the shim is a child subreaper, forks the program and kills whatever the
    /// program left behind when it exits.
    Reaper,
    /// Become the command (no fork): `Runtime::exec`.
    Exec,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Mode::Init => "init",
            Mode::Reaper => "reaper",
            Mode::Exec => "exec",
        }
    }

    fn parse(s: &str) -> Option<Mode> {
        match s {
            "init" => Some(Mode::Init),
            "reaper" => Some(Mode::Reaper),
            "exec" => Some(Mode::Exec),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ShimArgs {
    /// The instance's name, for messages.
    pub(crate) name: String,
    pub(crate) mode: Mode,
    /// Write end of the status pipe (see [`super::report`]).
    pub(crate) status_fd: Option<RawFd>,
    /// The daemon's pid: the shim notices the daemon's death when its parent changes.
    pub(crate) parent: Option<i32>,
    /// `user:` as written; applied only when the shim runs as root.
    pub(crate) user: Option<String>,
    pub(crate) workdir: Option<PathBuf>,
    /// Namespaces (`/proc/<pid>/ns/<kind>` or bind mounts) to join before exec.
    pub(crate) namespaces: Vec<PathBuf>,
    /// Files to bind-mount, `(source, target)`, in a private mount namespace, after joining
    /// the namespaces (an instance's `/etc/hosts` and `/etc/resolv.conf`).
    pub(crate) binds: Vec<(PathBuf, PathBuf)>,
    pub(crate) argv: Vec<OsString>,
}

impl ShimArgs {
    pub(crate) fn new(name: &str, mode: Mode, argv: Vec<OsString>) -> ShimArgs {
        ShimArgs {
            name: name.to_string(),
            mode,
            status_fd: None,
            parent: None,
            user: None,
            workdir: None,
            namespaces: Vec::new(),
            binds: Vec::new(),
            argv,
        }
    }

    pub(crate) fn to_args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec![
            "--name".into(),
            self.name.clone().into(),
            "--mode".into(),
            self.mode.as_str().into(),
        ];
        if let Some(fd) = self.status_fd {
            out.extend(["--status-fd".into(), fd.to_string().into()]);
        }
        if let Some(pid) = self.parent {
            out.extend(["--parent-pid".into(), pid.to_string().into()]);
        }
        if let Some(user) = &self.user {
            out.extend(["--user".into(), user.clone().into()]);
        }
        if let Some(dir) = &self.workdir {
            out.extend(["--workdir".into(), dir.clone().into()]);
        }
        for ns in &self.namespaces {
            out.extend(["--setns".into(), ns.clone().into()]);
        }
        for (source, target) in &self.binds {
            let mut bind = target.clone().into_os_string();
            bind.push("=");
            bind.push(source);
            out.extend(["--bind".into(), bind]);
        }
        out.push("--".into());
        out.extend(self.argv.iter().cloned());
        out
    }

    pub(crate) fn parse(args: Vec<OsString>) -> Result<ShimArgs, String> {
        let mut parsed = ShimArgs::new("", Mode::Exec, Vec::new());
        let mut mode = None;
        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let flag = flag
                .into_string()
                .map_err(|f| format!("unexpected argument {f:?}"))?;
            if flag == "--" {
                parsed.argv = it.collect();
                break;
            }
            let value = it.next().ok_or_else(|| format!("`{flag}` needs a value"))?;
            let text = || {
                value
                    .to_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("`{flag}` needs a UTF-8 value"))
            };
            let number = |s: String| {
                s.parse::<i32>()
                    .map_err(|_| format!("`{flag}` needs a number, not `{s}`"))
            };
            match flag.as_str() {
                "--name" => parsed.name = text()?,
                "--mode" => {
                    let m = text()?;
                    mode = Some(Mode::parse(&m).ok_or_else(|| format!("unknown mode `{m}`"))?);
                }
                "--status-fd" => parsed.status_fd = Some(number(text()?)?),
                "--parent-pid" => parsed.parent = Some(number(text()?)?),
                "--user" => parsed.user = Some(text()?),
                "--workdir" => parsed.workdir = Some(PathBuf::from(value)),
                "--setns" => parsed.namespaces.push(PathBuf::from(value)),
                "--bind" => {
                    let v = text()?;
                    let (target, source) = v
                        .split_once('=')
                        .ok_or_else(|| format!("`--bind` needs TARGET=SOURCE, not `{v}`"))?;
                    parsed.binds.push((source.into(), target.into()));
                }
                _ => return Err(format!("unknown option `{flag}`")),
            }
        }
        parsed.mode = mode.ok_or("`--mode` is required")?;
        if parsed.argv.is_empty() {
            return Err("no program given after `--`".into());
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let mut args = ShimArgs::new(
            "p-web-1",
            Mode::Reaper,
            vec!["sh".into(), "-c".into(), "--".into()],
        );
        args.status_fd = Some(7);
        args.parent = Some(42);
        args.user = Some("nobody:nogroup".into());
        args.workdir = Some("/srv/app".into());
        args.namespaces = vec!["/proc/1/ns/net".into()];
        args.binds = vec![("/run/wharf/ab12/p-web-1/hosts".into(), "/etc/hosts".into())];
        assert_eq!(ShimArgs::parse(args.to_args()), Ok(args));
    }

    #[test]
    fn refuses_incomplete_command_lines() {
        let parse = |a: &[&str]| ShimArgs::parse(a.iter().map(OsString::from).collect());
        assert_eq!(
            parse(&["--mode", "init", "--"]),
            Err("no program given after `--`".into())
        );
        assert_eq!(parse(&["--", "true"]), Err("`--mode` is required".into()));
        assert_eq!(
            parse(&["--mode", "nope", "--", "true"]),
            Err("unknown mode `nope`".into())
        );
        assert_eq!(
            parse(&["--status-fd"]),
            Err("`--status-fd` needs a value".into())
        );
    }
}
