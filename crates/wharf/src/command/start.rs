//! `wharf start`: start stopped services (and what they depend on).

use std::process::ExitCode;

use crate::cli::{ProjectFlags, ServicesArgs};
use crate::connection::connect;

pub fn run(flags: &ProjectFlags, args: &ServicesArgs) -> anyhow::Result<ExitCode> {
    let name = match super::project_name(flags)? {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    let result = super::block_on(async {
        let client = connect().await?;
        anyhow::Ok(client.start(&name, super::services(&args.services)).await)
    })??;
    match result {
        Ok(r) => {
            for w in r.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("{name}: started");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(super::failed(&e)),
    }
}
