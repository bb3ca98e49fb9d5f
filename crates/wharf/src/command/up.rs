//! `wharf up`: load the project here (so that errors point at the user's files), send it
//! normalised to the daemon, and show the progress. Attached (the default), then show the
//! instances' output until they have all ended; the first Ctrl-C stops the project gracefully
//! (stop, not down), a second one kills what is still stopping.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::task::JoinHandle;
use wharf_api::message::{ActionResponse, EventKind, LogEntry, LogsQuery, UpRequest};
use wharf_api::{ApiError, Client, JsonStream};
use wharf_model::Project;

use crate::cli::{ProjectFlags, UpArgs};
use crate::connection::connect;
use crate::log_view::LogPrinter;
use crate::progress::Progress;

/// The exit status after Ctrl-C, as a shell reports a process killed by SIGINT.
const INTERRUPTED: u8 = 130;

pub fn run(flags: &ProjectFlags, args: &UpArgs) -> anyhow::Result<ExitCode> {
    let loaded = match super::load_project(flags)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let project = loaded.project;
    for s in &args.services {
        if !project.services.contains_key(s) {
            let known: Vec<&str> = project.services.keys().map(String::as_str).collect();
            bail!(
                "project `{}` has no service `{s}`; its services are: {}",
                project.name,
                known.join(", ")
            );
        }
    }
    let request = UpRequest {
        yaml: wharf_daemon::store::normalise(&project),
        project_directory: project.working_dir.clone(),
        services: super::services(&args.services),
        force_recreate: args.force_recreate,
        no_recreate: args.no_recreate,
        wait: args.wait,
        wait_timeout_ms: args.wait_timeout.map(|s| s.saturating_mul(1000)),
        runtime: args.runtime.clone(),
        remove_orphans: args.remove_orphans,
    };
    let attached = !args.detach && !args.wait;
    super::block_on(up(project, request, attached))?
}

/// Ctrl-C handling shared by both phases of an attached `up`.
struct Interrupts {
    signal: Signal,
    count: u32,
    stopping: Option<JoinHandle<Result<ActionResponse, ApiError>>>,
}

impl Interrupts {
    async fn on_interrupt(&mut self, client: &Client, name: &str) {
        self.count += 1;
        if self.count == 1 {
            eprintln!("Gracefully stopping {name}... (press Ctrl-C again to force)");
            let (client, name) = (client.clone(), name.to_string());
            self.stopping = Some(tokio::spawn(async move { client.stop(&name, None).await }));
        } else {
            eprintln!("Killing {name}...");
            if let Err(e) = client.kill(name, None).await {
                eprintln!("error: {e}");
            }
        }
    }

    /// Waits for the stop asked by the first Ctrl-C (killing on a further one).
    async fn finish(&mut self, client: &Client, name: &str) -> ExitCode {
        if let Some(stopping) = self.stopping.take() {
            tokio::pin!(stopping);
            loop {
                tokio::select! {
                    r = &mut stopping => {
                        if let Ok(Err(e)) = r {
                            eprintln!("error: {e}");
                        }
                        break;
                    }
                    _ = self.signal.recv() => {
                        self.count += 1;
                        eprintln!("Killing {name}...");
                        let _ = client.kill(name, None).await;
                    }
                }
            }
        }
        // Instances that `up` started after the first stop.
        let _ = client.stop(name, None).await;
        eprintln!("{name}: stopped");
        ExitCode::from(INTERRUPTED)
    }
}

async fn next_line(logs: &mut Option<JsonStream<LogEntry>>) -> Result<Option<LogEntry>, ApiError> {
    match logs {
        Some(s) => s.next().await,
        None => std::future::pending().await,
    }
}

async fn up(project: Project, request: UpRequest, attached: bool) -> anyhow::Result<ExitCode> {
    let client = connect().await?;
    let name = project.name.clone();
    let mut interrupts = Interrupts {
        signal: signal(SignalKind::interrupt())?,
        count: 0,
        stopping: None,
    };
    let mut events = client.events(Some(&name)).await?;
    // Following from now on before anything starts, so that no line is missed.
    let mut logs = if attached {
        let query = LogsQuery {
            services: request.services.as_ref().map(|s| s.join(",")),
            tail: Some(0),
            follow: true,
        };
        Some(client.logs(&name, &query).await?)
    } else {
        None
    };
    let mut early: Vec<LogEntry> = Vec::new();
    let mut progress = Progress::new(Some(&project));
    let call = client.up(&name, &request);
    tokio::pin!(call);
    let result = loop {
        tokio::select! {
            r = &mut call => break r,
            Ok(Some(e)) = events.next() => progress.event(&e),
            Ok(Some(line)) = next_line(&mut logs) => early.push(line),
            _ = interrupts.signal.recv() => interrupts.on_interrupt(&client, &name).await,
        }
    };
    if interrupts.count == 0
        && let Ok(states) = client.ps(&name, true).await
    {
        progress.settle(&states);
    }
    progress.finish();
    if interrupts.count > 0 {
        return Ok(interrupts.finish(&client, &name).await);
    }
    let response = match result {
        Ok(r) => r,
        Err(e) => return Ok(super::failed(&e)),
    };
    for w in &response.warnings {
        eprintln!("warning: {w}");
    }
    let Some(mut logs) = logs else {
        eprintln!("{name}: {}", if request.wait { "ready" } else { "started" });
        return Ok(ExitCode::SUCCESS);
    };

    // Attached to the services asked for (all by default), as Compose is.
    let attached_to = |service: &str| {
        request
            .services
            .as_ref()
            .is_none_or(|list| list.iter().any(|s| s == service))
    };
    let instances: Vec<String> = project
        .services
        .values()
        .filter(|s| attached_to(&s.name))
        .flat_map(|s| (1..=s.replicas).map(|n| format!("{}-{}-{n}", project.name, s.name)))
        .collect();
    let mut printer = LogPrinter::new(
        &name,
        project.services.keys().map(String::as_str),
        instances.iter().map(String::as_str),
        false,
    );
    eprintln!("Attaching to {}", instances.join(", "));
    for line in &early {
        printer.print(line);
    }
    loop {
        tokio::select! {
            line = logs.next() => match line? {
                Some(l) => printer.print(&l),
                // The project was taken down.
                None => return Ok(ExitCode::SUCCESS),
            },
            Ok(Some(e)) = events.next() => {
                let ended = matches!(e.kind, EventKind::Exited { .. } | EventKind::Removed | EventKind::StartFailed { .. });
                let running = client.ps(&name, false).await.map(|l| l.iter().any(|i| attached_to(&i.service)));
                if ended && interrupts.count == 0 && running.is_ok_and(|r| !r) {
                    // Every instance has ended by itself: show what is left of their output.
                    while let Ok(Ok(Some(l))) = tokio::time::timeout(Duration::from_millis(200), logs.next()).await {
                        printer.print(&l);
                    }
                    eprintln!("{name}: every instance has exited");
                    return Ok(ExitCode::SUCCESS);
                }
            },
            _ = interrupts.signal.recv() => {
                interrupts.on_interrupt(&client, &name).await;
                if interrupts.count == 1 {
                    // Keep showing output while the project stops.
                    let mut stopping = interrupts.stopping.take();
                    loop {
                        tokio::select! {
                            line = logs.next() => match line? {
                                Some(l) => printer.print(&l),
                                None => break,
                            },
                            _ = async { if let Some(s) = stopping.as_mut() { let _ = s.await; } }, if stopping.is_some() => break,
                            _ = interrupts.signal.recv() => interrupts.on_interrupt(&client, &name).await,
                        }
                    }
                    interrupts.stopping = stopping.filter(|s| !s.is_finished());
                    return Ok(interrupts.finish(&client, &name).await);
                }
            },
        }
    }
}
