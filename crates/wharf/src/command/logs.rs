//! `wharf logs`: the kept output of the project's instances, and with `-f` what comes next
//! (across restarts, and of instances that start later).

use std::process::ExitCode;

use anyhow::bail;
use tokio::signal::unix::{SignalKind, signal};
use wharf_api::message::LogsQuery;

use crate::cli::{LogsArgs, ProjectFlags};
use crate::connection::connect;
use crate::log_view::LogPrinter;

pub fn run(flags: &ProjectFlags, args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let name = match super::project_name(flags)? {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    let tail = match args.tail.as_str() {
        "all" | "-1" => None,
        n => match n.parse::<usize>() {
            Ok(n) => Some(n),
            Err(_) => bail!("--tail takes a number of lines or `all`, not `{n}`"),
        },
    };
    let query = LogsQuery {
        services: super::services(&args.services).map(|s| s.join(",")),
        tail,
        follow: args.follow,
    };
    super::block_on(async {
        let client = connect().await?;
        let instances = match client.ps(&name, true).await {
            Ok(i) => i,
            Err(e) => return Ok(super::failed(&e)),
        };
        // Padded to the instances shown; coloured by every service, as in `up`.
        let shown = instances
            .iter()
            .filter(|i| args.services.is_empty() || args.services.contains(&i.service));
        let mut printer = LogPrinter::new(
            &name,
            instances.iter().map(|i| i.service.as_str()),
            shown.map(|i| i.name.as_str()),
            args.timestamps,
        );
        let mut stream = match client.logs(&name, &query).await {
            Ok(s) => s,
            Err(e) => return Ok(super::failed(&e)),
        };
        let mut interrupt = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                entry = stream.next() => match entry? {
                    Some(e) => printer.print(&e),
                    None => return Ok(ExitCode::SUCCESS),
                },
                _ = interrupt.recv() => return Ok(ExitCode::SUCCESS),
            }
        }
    })?
}
