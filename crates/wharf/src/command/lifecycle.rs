//! `wharf start`, `wharf stop` and `wharf restart`: the same request with a different verb.
//! Stop goes dependents first; start and restart bring what the services depend on.

use std::process::ExitCode;

use crate::cli::{ProjectFlags, ServicesArgs};
use crate::connection::connect;

#[derive(Clone, Copy)]
pub enum Lifecycle {
    Start,
    Stop,
    Restart,
}

pub fn run(flags: &ProjectFlags, args: &ServicesArgs, verb: Lifecycle) -> anyhow::Result<ExitCode> {
    let name = match super::project_name(flags)? {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    let services = super::services(&args.services);
    let result = super::block_on(async {
        let client = connect().await?;
        anyhow::Ok(match verb {
            Lifecycle::Start => client.start(&name, services).await,
            Lifecycle::Stop => client.stop(&name, services).await,
            Lifecycle::Restart => client.restart(&name, services).await,
        })
    })??;
    match result {
        Ok(r) => {
            for w in r.warnings {
                eprintln!("warning: {w}");
            }
            let done = match verb {
                Lifecycle::Start => "started",
                Lifecycle::Stop => "stopped",
                Lifecycle::Restart => "restarted",
            };
            eprintln!("{name}: {done}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(super::failed(&e)),
    }
}
