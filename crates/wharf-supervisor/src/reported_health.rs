//! Health that the runtime reports itself ([`InstanceHandle::health`]: the Docker Engine runs
//! the health check), turned into the changes the instance task acts on, instead of probing.
//!
//! [`InstanceHandle::health`]: wharf_runtime::InstanceHandle::health

use tokio::sync::{mpsc, watch};
use wharf_runtime::ReportedHealth;

use crate::Health;
use crate::health::HealthChange;

/// Sends each change of the reported health (the current one first) until either side closes.
pub(crate) async fn follow(
    mut reported: watch::Receiver<ReportedHealth>,
    tx: mpsc::Sender<HealthChange>,
) {
    loop {
        let change = match &*reported.borrow_and_update() {
            ReportedHealth::Starting => HealthChange {
                health: Health::Starting,
                output: String::new(),
            },
            ReportedHealth::Healthy => HealthChange {
                health: Health::Healthy,
                output: String::new(),
            },
            ReportedHealth::Unhealthy(output) => HealthChange {
                health: Health::Unhealthy,
                output: output.clone(),
            },
        };
        if tx.send(change).await.is_err() || reported.changed().await.is_err() {
            return;
        }
    }
}
