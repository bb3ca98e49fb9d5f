//! `wharf ps`: the project's instances, as a table or as JSON.

use std::process::ExitCode;
use std::time::SystemTime;

use wharf_api::message::{InstanceState, Status};

use crate::progress::status_text;

use crate::cli::{ProjectFlags, PsArgs, PsFormat};
use crate::connection::connect;

pub fn run(flags: &ProjectFlags, args: &PsArgs) -> anyhow::Result<ExitCode> {
    let name = match super::project_name(flags)? {
        Ok(n) => n,
        Err(code) => return Ok(code),
    };
    let instances = super::block_on(async {
        let client = connect().await?;
        anyhow::Ok(client.ps(&name, args.all).await)
    })??;
    let instances = match instances {
        Ok(i) => i,
        Err(e) => return Ok(super::failed(&e)),
    };
    match args.format {
        PsFormat::Json => {
            super::print_out(format_args!("{}\n", serde_json::to_string(&instances)?))
        }
        PsFormat::Table => super::print_out(table(&instances, SystemTime::now())),
    }
    Ok(ExitCode::SUCCESS)
}

/// `42s`, `5m 3s`, `3h 12m`, `2d 4h`.
pub fn duration_text(secs: u64) -> String {
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m {}s", secs / 60, secs % 60),
        3600..86_400 => format!("{}h {}m", secs / 3600, secs / 60 % 60),
        _ => format!("{}d {}h", secs / 86_400, secs / 3600 % 24),
    }
}

fn table(instances: &[InstanceState], now: SystemTime) -> String {
    let mut rows = vec![[
        "NAME".to_string(),
        "SERVICE".into(),
        "STATUS".into(),
        "PID".into(),
        "RESTARTS".into(),
        "UPTIME".into(),
    ]];
    for s in instances {
        let up = matches!(s.status, Status::Running | Status::Stopping);
        let uptime = match s.started_at {
            Some(t) if up => duration_text(now.duration_since(t).unwrap_or_default().as_secs()),
            _ => "-".into(),
        };
        rows.push([
            s.name.clone(),
            s.service.clone(),
            status_text(s),
            s.pid.map_or("-".into(), |p| p.to_string()),
            s.restarts.to_string(),
            uptime,
        ]);
    }
    super::columns(&rows)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use wharf_api::message::Health;

    use super::*;

    fn state(name: &str, status: Status, health: Option<Health>) -> InstanceState {
        InstanceState {
            project: "shop".into(),
            service: "web".into(),
            number: 1,
            name: name.into(),
            status,
            health,
            pid: matches!(status, Status::Running).then_some(4242),
            restarts: 2,
            started_at: Some(SystemTime::UNIX_EPOCH),
            ever_started: true,
            finished: false,
            error: None,
            config_hash: String::new(),
        }
    }

    #[test]
    fn the_table_shows_status_health_pid_restarts_and_uptime() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(3 * 3600 + 125);
        let rows = [
            state("shop-web-1", Status::Running, Some(Health::Healthy)),
            state("shop-web-2", Status::Exited { code: 1 }, None),
            state("shop-web-3", Status::Restarting { delay_ms: 200 }, None),
        ];
        assert_eq!(
            table(&rows, now),
            "NAME         SERVICE   STATUS              PID    RESTARTS   UPTIME\n\
             shop-web-1   web       running (healthy)   4242   2          3h 2m\n\
             shop-web-2   web       exited (1)          -      2          -\n\
             shop-web-3   web       restarting          -      2          -\n"
        );
    }

    #[test]
    fn durations_are_short() {
        assert_eq!(duration_text(0), "0s");
        assert_eq!(duration_text(59), "59s");
        assert_eq!(duration_text(61), "1m 1s");
        assert_eq!(duration_text(90_000), "1d 1h");
    }
}
