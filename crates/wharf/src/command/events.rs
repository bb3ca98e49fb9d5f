//! `wharf events`: every state change of the project's instances, as it happens.

use std::io::Write;
use std::process::ExitCode;

use tokio::signal::unix::{SignalKind, signal};
use wharf_api::message::{Event, EventKind};
use wharf_api::timestamp::rfc3339_millis;

use crate::cli::{EventsArgs, ProjectFlags};
use crate::connection::connect;

pub fn run(flags: &ProjectFlags, args: &EventsArgs) -> anyhow::Result<ExitCode> {
    let name = match super::project_name(flags)? {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    super::block_on(async {
        let client = connect().await?;
        let mut stream = match client.events(Some(&name)).await {
            Ok(s) => s,
            Err(e) => return Ok(super::failed(&e)),
        };
        let mut interrupt = signal(SignalKind::interrupt())?;
        loop {
            tokio::select! {
                event = stream.next() => match event? {
                    Some(e) => {
                        let line = if args.json { serde_json::to_string(&e)? } else { text(&e) };
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                            return Ok(ExitCode::SUCCESS);
                        }
                    }
                    None => return Ok(ExitCode::SUCCESS),
                },
                _ = interrupt.recv() => return Ok(ExitCode::SUCCESS),
            }
        }
    })?
}

/// `2026-11-03T10:04:05.123Z shop-web-1 running (pid 4242)`.
fn text(e: &Event) -> String {
    let what = match &e.kind {
        EventKind::Created => "created".to_string(),
        EventKind::Starting => "starting".into(),
        EventKind::Running { pid: Some(pid) } => format!("running (pid {pid})"),
        EventKind::Running { pid: None } => "running".into(),
        EventKind::Healthy => "healthy".into(),
        EventKind::Unhealthy { output } if output.trim().is_empty() => "unhealthy".into(),
        EventKind::Unhealthy { output } => format!("unhealthy: {}", output.trim()),
        EventKind::Exited { code } => format!("exited ({code})"),
        EventKind::Restarting { attempt, delay_ms } => {
            format!("restarting (attempt {attempt}, in {delay_ms} ms)")
        }
        EventKind::Stopping => "stopping".into(),
        EventKind::Removed => "removed".into(),
        EventKind::StartFailed { reason } => format!("failed to start: {reason}"),
        EventKind::DependencyFailed { message, required } => {
            let what = if *required { "not started" } else { "warning" };
            format!("{what}: {message}")
        }
        EventKind::Progress { message } => message.clone(),
    };
    format!("{} {} {what}", rfc3339_millis(e.at), e.instance)
}
