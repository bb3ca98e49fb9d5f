//! `wharf config`: validate and print the normalised project.

use std::collections::BTreeSet;
use std::process::ExitCode;

use wharf_model::config::{Format, VariablesFormat, render, render_model, render_variables};
use wharf_model::load::model_variables;
use wharf_model::{LoadedModel, load_model};

use crate::cli::{ConfigArgs, OutputFormat, ProjectFlags};

pub fn run(flags: &ProjectFlags, args: &ConfigArgs) -> anyhow::Result<ExitCode> {
    let mut options = super::load_options(flags)?;
    options.no_consistency = args.no_consistency;
    let filter = match Filter::parse(args) {
        Ok(f) => f,
        Err(message) => {
            eprintln!("error: {message}");
            return Ok(ExitCode::from(1));
        }
    };
    options.profiles.extend(filter.profiles.iter().cloned());
    let format = match args.format {
        Some(OutputFormat::Json) => Format::Json,
        Some(OutputFormat::Yaml) | None => Format::Yaml,
    };
    let listing_other =
        args.volumes || args.networks || args.models || args.profiles || args.hash.is_some();
    // docker/compose's `runVariables` (after the listings, as there): the model without
    // interpolation, whatever the services.
    if args.variables && !args.services && !listing_other {
        ignored_selection(
            args,
            "--variables",
            "variables from the full model will be rendered",
        );
        options.no_interpolate = true;
        let Some(loaded) = model(&options) else {
            return Ok(ExitCode::from(1));
        };
        let vars_format = match args.format {
            None => VariablesFormat::Table,
            Some(OutputFormat::Json) => VariablesFormat::Json,
            Some(OutputFormat::Yaml) => VariablesFormat::Yaml,
        };
        if !args.quiet {
            super::print_out(render_variables(
                &model_variables(&loaded.model),
                vars_format,
            ));
        }
        return Ok(ExitCode::SUCCESS);
    }
    // `--no-interpolate` for the rendering and `--services` (`runConfigNoInterpolate`,
    // `runServices`): the model, not the typed project.
    if args.no_interpolate && !listing_other && args.filter.is_empty() {
        if !args.services {
            ignored_selection(args, "--no-interpolate", "the full model will be rendered");
        }
        options.no_interpolate = true;
        let Some(loaded) = model(&options) else {
            return Ok(ExitCode::from(1));
        };
        if args.quiet {
            return Ok(ExitCode::SUCCESS);
        }
        if args.services {
            let names = loaded
                .model
                .get("services")
                .and_then(|s| s.as_map())
                .map(|m| m.keys().cloned().collect::<Vec<_>>())
                .unwrap_or_default();
            super::print_out(lines(names.iter().map(String::as_str)));
        } else {
            super::print_out(render_model(&loaded.model, format));
        }
        return Ok(ExitCode::SUCCESS);
    }

    let mut loaded = match super::load_project_with(&options) {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let selecting = !args.service_names.is_empty() && !listing_other && !args.services;
    // A named service that its profiles disable is enabled, as Docker Compose enables a
    // targeted service: loaded again with one of its profiles (the selection below keeps only
    // the named services and their dependencies).
    let targeted_profiles: Vec<String> = args
        .service_names
        .iter()
        .filter_map(|n| loaded.project.disabled_services.get(n)?.first().cloned())
        .collect();
    if selecting && !targeted_profiles.is_empty() {
        options.profiles.extend(targeted_profiles);
        loaded = match super::load_project_with(&options) {
            Ok(l) => l,
            Err(code) => return Ok(code),
        };
    }
    if selecting && let Err(message) = select(&mut loaded.project, &args.service_names) {
        eprintln!("error: {message}");
        return Ok(ExitCode::from(1));
    }
    let p = &loaded.project;
    if args.quiet {
        return Ok(ExitCode::SUCCESS);
    }
    let text = if args.services {
        lines(
            p.services
                .values()
                .filter(|s| filter.matches(s))
                .map(|s| s.name.as_str()),
        )
    } else if args.volumes {
        lines(p.volumes.keys().map(String::as_str))
    } else if args.networks {
        lines(p.networks.keys().map(String::as_str))
    } else if args.models {
        // docker/compose's `runModels`: each model's `model`, when it has one.
        lines(
            p.models
                .values()
                .filter_map(|m| m.get("model").and_then(|v| v.as_str()))
                .filter(|m| !m.is_empty()),
        )
    } else if let Some(hash) = &args.hash {
        // docker/compose's `runHash`: `*` or a comma-separated list, sorted. The hash is
        // wharf's (`wharf_plan::config_hash`, the `com.docker.compose.config-hash` label of
        // wharf's containers), not Docker Compose's `ServiceHash`.
        let mut names: Vec<&str> = if hash == "*" {
            p.services.keys().map(String::as_str).collect()
        } else {
            hash.split(',').collect()
        };
        names.sort_unstable();
        let mut text = String::new();
        for name in names {
            let Some(service) = p.services.get(name) else {
                eprintln!("error: no such service: {name}");
                return Ok(ExitCode::from(1));
            };
            text.push_str(&format!("{name} {}\n", wharf_plan::config_hash(service)));
        }
        text
    } else if args.profiles {
        lines(p.all_profiles.iter().map(String::as_str))
    } else {
        render(p, format)
    };
    super::print_out(text);
    Ok(ExitCode::SUCCESS)
}

/// `--filter` criteria of `config --services` (docker/compose's `TestConfigServicesFilter`): every
/// criterion must match; among several `profile=` any of the profiles.
#[derive(Default)]
struct Filter {
    profiles: Vec<String>,
    labels: Vec<(String, Option<String>)>,
}

impl Filter {
    fn parse(args: &ConfigArgs) -> Result<Filter, String> {
        let mut f = Filter::default();
        if args.filter.is_empty() {
            return Ok(f);
        }
        if !args.services {
            return Err("--filter requires --services".into());
        }
        for item in &args.filter {
            let (key, value) = item.split_once('=').unwrap_or((item.as_str(), ""));
            match key {
                "profile" if value == "*" => {
                    return Err(format!(
                        "--filter {item}: profiles must be selected explicitly"
                    ));
                }
                "profile" if value.is_empty() => {
                    return Err(format!("--filter {item}: name a profile"));
                }
                "profile" => f.profiles.push(value.to_string()),
                "label" => f.labels.push(match value.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (value.to_string(), None),
                }),
                other => {
                    return Err(format!(
                        "unknown criteria {other:?} in --filter {item} (use profile=NAME or label=KEY[=VALUE])"
                    ));
                }
            }
        }
        Ok(f)
    }

    fn matches(&self, s: &wharf_model::project::Service) -> bool {
        (self.profiles.is_empty() || self.profiles.iter().any(|p| s.profiles.contains(p)))
            && self.labels.iter().all(|(k, v)| match v {
                Some(v) => s.labels.get(k) == Some(v),
                None => s.labels.contains_key(k),
            })
    }
}

/// docker/compose's warning when services are named to a mode that renders the whole model.
fn ignored_selection(args: &ConfigArgs, flag: &str, what: &str) {
    if !args.service_names.is_empty() {
        eprintln!("warning: service filtering is not applied when {flag} is set, {what}");
    }
}

/// Loads the untyped model, printing its warnings, or its errors (`None`).
fn model(options: &wharf_model::LoadOptions) -> Option<LoadedModel> {
    match load_model(options) {
        Ok(loaded) => {
            if !loaded.warnings.items.is_empty() {
                eprint!("{}", loaded.warnings);
            }
            Some(loaded)
        }
        Err(diagnostics) => {
            eprint!("{diagnostics}");
            None
        }
    }
}

/// Keeps the named services and those they depend on, as `docker compose config SERVICE...`
/// renders them.
fn select(p: &mut wharf_model::Project, names: &[String]) -> Result<(), String> {
    let mut keep = BTreeSet::new();
    let mut todo: Vec<String> = Vec::new();
    for name in names {
        if !p.services.contains_key(name) {
            return Err(format!("no such service: {name}"));
        }
        todo.push(name.clone());
    }
    while let Some(name) = todo.pop() {
        if !keep.insert(name.clone()) {
            continue;
        }
        if let Some(s) = p.services.get(&name) {
            todo.extend(
                s.depends_on
                    .keys()
                    .filter(|d| p.services.contains_key(*d))
                    .cloned(),
            );
        }
    }
    p.services.retain(|name, _| keep.contains(name));
    Ok(())
}

fn lines<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for l in items {
        text.push_str(l);
        text.push('\n');
    }
    text
}
