//! `wharf down`: stop every instance, dependents first, and forget the project (with `-v`,
//! also the data of its named volumes).

use std::process::ExitCode;

use wharf_api::ErrorKind;

use crate::cli::{DownArgs, ProjectFlags};
use crate::connection::connect;
use crate::progress::Progress;

pub fn run(flags: &ProjectFlags, args: &DownArgs) -> anyhow::Result<ExitCode> {
    let name = match super::project_name(flags)? {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    super::block_on(async {
        let client = connect().await?;
        let mut events = client.events(Some(&name)).await?;
        let mut progress = Progress::new(None);
        let down = client.down(&name, args.volumes);
        tokio::pin!(down);
        let result = loop {
            tokio::select! {
                r = &mut down => break r,
                Ok(Some(e)) = events.next() => progress.event(&e),
            }
        };
        progress.finish();
        match result {
            Ok(r) => {
                for v in r.removed_volumes {
                    eprintln!("removed volume data {}", v.display());
                }
                for w in r.warnings {
                    eprintln!("warning: {w}");
                }
                eprintln!("{name}: down");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) if e.kind == ErrorKind::NotFound => {
                eprintln!("{name}: nothing to take down ({e})");
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => Ok(super::failed(&e)),
        }
    })?
}
