//! `wharf routes`: the router's table with the health of each route's instances, and
//! `--explain URL`: which route a URL matches and why.

use std::process::ExitCode;

use wharf_api::message::{RouteInfo, RoutesQuery};

use crate::cli::{ProjectFlags, PsFormat, RoutesArgs};
use crate::connection::connect;

pub fn run(flags: &ProjectFlags, args: &RoutesArgs) -> anyhow::Result<ExitCode> {
    // `--explain` alone is about the router, whatever the project.
    let project = if args.all || (args.explain.is_some() && flags.files.is_empty()) {
        None
    } else {
        match super::project_name(flags)? {
            Ok(n) => Some(n),
            Err(code) => return Ok(code),
        }
    };
    let query = RoutesQuery {
        project,
        explain: args.explain.clone(),
    };
    let answer = super::block_on(async {
        let client = connect().await?;
        anyhow::Ok(client.routes(&query).await)
    })??;
    let answer = match answer {
        Ok(a) => a,
        Err(e) => return Ok(super::failed(&e)),
    };
    if args.format == PsFormat::Json {
        super::print_out(format_args!("{}\n", serde_json::to_string(&answer)?));
        return Ok(ExitCode::SUCCESS);
    }
    if args.explain.is_some() {
        if answer.explanations.is_empty() {
            super::print_out("no router is running: no project has routes (labels wharf.http.*)\n");
        }
        for e in &answer.explanations {
            super::print_out(e);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if answer.routes.is_empty() {
        super::print_out(
            "no routes: give a service the label wharf.http.port (and wharf.http.host, wharf.http.path)\n",
        );
    } else {
        super::print_out(table(&answer.routes, query.project.is_none()));
    }
    Ok(ExitCode::SUCCESS)
}

/// `wharf ca`: the local CA's certificate (created on first use, as the daemon would).
pub fn ca() -> anyhow::Result<ExitCode> {
    let state = wharf_daemon::StateDir::from_env()?;
    let pem = wharf_router::Tls::ca_certificate_pem(&state.tls())?;
    super::print_out(pem);
    Ok(ExitCode::SUCCESS)
}

fn table(routes: &[RouteInfo], with_project: bool) -> String {
    let mut rows = vec![[
        "ROUTE".to_string(),
        "LISTEN".into(),
        "HOST".into(),
        "PATH".into(),
        "SERVICE".into(),
        "HEALTHY".into(),
        "TLS".into(),
        "ACCESS".into(),
    ]];
    for r in routes {
        let route = if with_project {
            format!("{}/{}", r.project, r.route)
        } else {
            r.route.clone()
        };
        let hosts = if r.hosts.is_empty() {
            "*".to_string()
        } else {
            r.hosts.join(",")
        };
        let path = if r.strip_path {
            format!("{} (stripped)", r.path)
        } else {
            r.path.clone()
        };
        let mut access = if r.access.is_empty() {
            "-".to_string()
        } else {
            r.access.join("; ")
        };
        if r.denied > 0 {
            access.push_str(&format!(" ({} denied)", r.denied));
        }
        rows.push([
            route,
            r.listen.clone(),
            hosts,
            path,
            format!("{}:{}", r.service, r.port),
            format!("{}/{}", r.healthy, r.instances),
            r.tls.clone().unwrap_or_else(|| "-".into()),
            access,
        ]);
    }
    super::columns(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_shows_hosts_health_and_access() {
        let route = |name: &str, hosts: &[&str], access: &[&str], denied| RouteInfo {
            project: "dir".into(),
            route: name.into(),
            listen: "127.0.0.1:8080".into(),
            hosts: hosts.iter().map(ToString::to_string).collect(),
            path: "/".into(),
            strip_path: false,
            service: "web".into(),
            port: 8000,
            healthy: 2,
            instances: 3,
            access: access.iter().map(ToString::to_string).collect(),
            tls: None,
            denied,
        };
        let rows = [
            route("web", &[], &[], 0),
            route(
                "web.admin",
                &["admin.example.org"],
                &["allow_from service:shell"],
                4,
            ),
        ];
        assert_eq!(
            table(&rows, false),
            "ROUTE       LISTEN           HOST                PATH   SERVICE    HEALTHY   TLS   ACCESS\n\
             web         127.0.0.1:8080   *                   /      web:8000   2/3       -     -\n\
             web.admin   127.0.0.1:8080   admin.example.org   /      web:8000   2/3       -     allow_from service:shell (4 denied)\n"
        );
    }
}
