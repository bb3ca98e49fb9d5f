//! `wharf stop`: stop running services, dependents first. They stay known (`ps -a`) until
//! `down`, and are not brought back by a restarted daemon unless their policy is `always`.

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
        anyhow::Ok(client.stop(&name, super::services(&args.services)).await)
    })??;
    match result {
        Ok(_) => {
            eprintln!("{name}: stopped");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(super::failed(&e)),
    }
}
