//! `wharf config`: validate and print the normalised project.

use std::process::ExitCode;

use wharf_model::config::{Format, render};

use crate::cli::{ConfigArgs, OutputFormat, ProjectFlags};

pub fn run(flags: &ProjectFlags, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let loaded = match super::load_project(flags)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let p = &loaded.project;
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let lines: Option<Vec<&str>> = if args.services {
        Some(p.services.keys().map(String::as_str).collect())
    } else if args.volumes {
        Some(p.volumes.keys().map(String::as_str).collect())
    } else if args.networks {
        Some(p.networks.keys().map(String::as_str).collect())
    } else if args.profiles {
        Some(p.all_profiles.iter().map(String::as_str).collect())
    } else {
        None
    };
    match lines {
        Some(lines) => {
            let mut text = String::new();
            for l in lines {
                text.push_str(l);
                text.push('\n');
            }
            super::print_out(text);
        }
        None => {
            let format = match args.format {
                OutputFormat::Yaml => Format::Yaml,
                OutputFormat::Json => Format::Json,
            };
            super::print_out(render(p, format));
        }
    }
    Ok(ExitCode::SUCCESS)
}
