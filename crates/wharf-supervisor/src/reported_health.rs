//! Health that the runtime reports itself ([`InstanceHandle::health`]: the Docker Engine runs
//! the health check), turned into the changes the instance task acts on, instead of probing.
//!
//! [`InstanceHandle::health`]: wharf_runtime::InstanceHandle::health

use tokio::sync::{mpsc, watch};
use wharf_runtime::ReportedHealth;

use crate::health::HealthChange;
use crate::{Health, LastCheck};

/// Sends each change of the reported health (the current one first) until either side closes;
/// what the runtime says of its last failed check goes to `last_check`.
pub(crate) async fn follow(
    mut reported: watch::Receiver<ReportedHealth>,
    tx: mpsc::Sender<HealthChange>,
    last_check: LastCheck,
) {
    loop {
        let change = match &*reported.borrow_and_update() {
            ReportedHealth::Starting { last_failure } => {
                if let Some(output) = last_failure {
                    *last_check.lock().unwrap_or_else(|p| p.into_inner()) = Some(output.clone());
                }
                HealthChange {
                    health: Health::Starting,
                    output: String::new(),
                }
            }
            ReportedHealth::Healthy => {
                *last_check.lock().unwrap_or_else(|p| p.into_inner()) = None;
                HealthChange {
                    health: Health::Healthy,
                    output: String::new(),
                }
            }
            ReportedHealth::Unhealthy(output) => {
                *last_check.lock().unwrap_or_else(|p| p.into_inner()) = Some(output.clone());
                HealthChange {
                    health: Health::Unhealthy,
                    output: output.clone(),
                }
            }
        };
        if tx.send(change).await.is_err() || reported.changed().await.is_err() {
            return;
        }
    }
}
