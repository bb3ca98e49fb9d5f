//! `wharf scale SERVICE=N ...`: start or remove instances.

use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::cli::{ProjectFlags, ScaleArgs};
use crate::connection::connect;

pub fn run(flags: &ProjectFlags, args: &ScaleArgs) -> anyhow::Result<ExitCode> {
    let name = match super::project_name(flags)? {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    let scale: BTreeMap<String, u32> = args.scale.iter().cloned().collect();
    let result = super::block_on(async {
        let client = connect().await?;
        anyhow::Ok(client.scale(&name, scale.clone()).await)
    })??;
    match result {
        Ok(r) => {
            for w in r.warnings {
                eprintln!("warning: {w}");
            }
            for (service, n) in &scale {
                eprintln!("{name}: {service} scaled to {n}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Ok(super::failed(&e)),
    }
}
