//! `wharf export kubernetes`: the project as Kubernetes manifests, with a report of what did not
//! translate exactly (the translation itself is `wharf-kube`).

use std::process::ExitCode;

use crate::cli::{KubernetesArgs, ProjectFlags};

pub fn run(flags: &ProjectFlags, args: &KubernetesArgs) -> anyhow::Result<ExitCode> {
    let loaded = match super::load_project(flags)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let export = wharf_kube::cli::ExportArgs {
        out: args.out.clone(),
        namespace: args.namespace.clone(),
        kube_version: args.kube_version.clone(),
        report: args.report.clone(),
        allow_host_paths: args.allow_host_paths,
        environment: loaded.environment.clone(),
    };
    Ok(wharf_kube::cli::run(&loaded.project, &export)?.into())
}
