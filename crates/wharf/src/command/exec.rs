//! `wharf exec SERVICE CMD...`: run a command as an instance runs: with its environment,
//! working directory and (when running as root) user. The daemon only says what that context
//! is; `wharf` then becomes the command (exec), so its standard streams, a terminal and the exit
//! status are the command's own.
//!
//! An isolated instance (as root) is entered through the shim, which joins its network namespace
//! and mounts its `/etc/hosts` and `/etc/resolv.conf`; its PID namespace is not joined (the
//! command sees the machine's processes).

use std::ffi::CString;
use std::io::IsTerminal;
use std::os::unix::process::CommandExt;
use std::process::ExitCode;

use anyhow::{Context, bail};
use nix::unistd::{Gid, Group, Uid, User};

use crate::cli::{ExecArgs, ProjectFlags};
use crate::connection::connect;

pub fn run(flags: &ProjectFlags, args: &ExecArgs) -> anyhow::Result<ExitCode> {
    let name = match super::project_name(flags)? {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    let context = super::block_on(async {
        let client = connect().await?;
        anyhow::Ok(client.exec_context(&name, &args.service, args.index).await)
    })??;
    let context = match context {
        Ok(c) => c,
        Err(e) => return Ok(super::failed(&e)),
    };
    let (program, rest) = args
        .command
        .split_first()
        .context("exec needs a command to run")?;
    // An isolated instance: the shim joins its network namespace, sees its /etc/hosts and
    // switches to its user and directory, then becomes the command.
    // A container: the engine's client, with the caller's environment and a terminal when
    // there is one.
    if let (true, Some(wrapper)) = (context.engine, context.wrapper.as_ref()) {
        let mut argv = wrapper.clone();
        if std::io::stdin().is_terminal() && argv.len() >= 2 {
            argv.insert(2, "-t".into());
        }
        let (client, client_args) = argv.split_first().context("an empty exec command")?;
        let error = std::process::Command::new(client)
            .args(client_args)
            .arg(program)
            .args(rest)
            .exec();
        bail!(
            "cannot run `{client}` to reach {}: {error} (is the Docker CLI installed?)",
            context.instance
        );
    }
    if let Some((shim, shim_args)) = context.wrapper.as_ref().and_then(|w| w.split_first()) {
        let error = std::process::Command::new(shim)
            .args(shim_args)
            .arg(program)
            .args(rest)
            .env_clear()
            .envs(&context.environment)
            .exec();
        bail!("cannot run `{program}` in {}: {error}", context.instance);
    }
    let mut command = std::process::Command::new(program);
    command
        .args(rest)
        .env_clear()
        .envs(&context.environment)
        .current_dir(&context.working_dir);
    if let Some(user) = context
        .user
        .as_deref()
        .filter(|_| Uid::effective().is_root())
    {
        let (uid, gid, groups) = resolve_user(user)?;
        command.uid(uid.as_raw()).gid(gid.as_raw());
        // SAFETY: setgroups(2) is async-signal-safe; `groups` is only read.
        unsafe {
            command.pre_exec(move || nix::unistd::setgroups(&groups).map_err(std::io::Error::from));
        }
    }
    let error = command.exec();
    bail!(
        "cannot run `{program}` in {} (working directory {}): {error}",
        context.instance,
        context.working_dir.display()
    )
}

/// `name`, `uid`, `name:group` or `uid:gid`, as Compose's `user:` is written.
fn resolve_user(user: &str) -> anyhow::Result<(Uid, Gid, Vec<Gid>)> {
    let (who, group) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let found = match who.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n))?,
        Err(_) => User::from_name(who)?,
    };
    let uid = match (&found, who.parse::<u32>()) {
        (Some(u), _) => u.uid,
        (None, Ok(n)) => Uid::from_raw(n),
        (None, Err(_)) => {
            bail!("user `{who}` (from `user: {user}`) does not exist on this machine")
        }
    };
    let gid = match group {
        Some(g) => match g.parse::<u32>() {
            Ok(n) => Gid::from_raw(n),
            Err(_) => {
                Group::from_name(g)?
                    .with_context(|| {
                        format!("group `{g}` (from `user: {user}`) does not exist on this machine")
                    })?
                    .gid
            }
        },
        None => found
            .as_ref()
            .map_or(Gid::from_raw(uid.as_raw()), |u| u.gid),
    };
    let groups = match &found {
        Some(u) if group.is_none() => {
            let name = CString::new(u.name.as_str())?;
            nix::unistd::getgrouplist(&name, gid)?
        }
        _ => vec![gid],
    };
    Ok((uid, gid, groups))
}
