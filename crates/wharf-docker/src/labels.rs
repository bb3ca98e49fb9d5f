//! Docker Compose's bookkeeping: the labels and names it gives containers, networks and volumes,
//! so that `docker ps --filter label=com.docker.compose.project=X` finds what wharf created and
//! wharf adopts what is already running (docker/compose `pkg/api/labels.go`).

use std::collections::HashMap;

use wharf_model::Project;
use wharf_model::project::Service;

pub const PROJECT: &str = "com.docker.compose.project";
pub const SERVICE: &str = "com.docker.compose.service";
pub const CONTAINER_NUMBER: &str = "com.docker.compose.container-number";
pub const ONEOFF: &str = "com.docker.compose.oneoff";
pub const CONFIG_HASH: &str = "com.docker.compose.config-hash";
pub const WORKING_DIR: &str = "com.docker.compose.project.working_dir";
pub const CONFIG_FILES: &str = "com.docker.compose.project.config_files";
pub const NETWORK: &str = "com.docker.compose.network";
pub const VOLUME: &str = "com.docker.compose.volume";
pub const VERSION: &str = "com.docker.compose.version";

/// What `com.docker.compose.version` says: the wharf version that created the object.
pub fn version() -> String {
    format!("wharf-{}", env!("CARGO_PKG_VERSION"))
}

/// The image a service runs: its `image:`, else Compose's name for a built one,
/// `<project>-<service>` (docker/compose v2; v1 wrote `<project>_<service>`).
pub fn image_name(project: &Project, service: &Service) -> String {
    service
        .image
        .clone()
        .unwrap_or_else(|| format!("{}-{}", project.name, service.name))
}

/// The labels of a service's container: the service's own, then Compose's.
pub fn container_labels(
    project: &Project,
    service: &Service,
    number: u32,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> = service
        .labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let files: Vec<String> = project
        .files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    for (k, v) in [
        (PROJECT, project.name.clone()),
        (SERVICE, service.name.clone()),
        (CONTAINER_NUMBER, number.to_string()),
        (ONEOFF, "False".to_string()),
        (CONFIG_HASH, wharf_plan::config_hash(service)),
        (
            WORKING_DIR,
            project.working_dir.to_string_lossy().into_owned(),
        ),
        (CONFIG_FILES, files.join(",")),
        (VERSION, version()),
    ] {
        labels.insert(k.to_string(), v);
    }
    labels
}

/// The labels of a network or volume: the user's, then Compose's (`kind` is [`NETWORK`] or
/// [`VOLUME`], `key` the object's key in the project).
pub fn resource_labels(
    project: &str,
    kind: &str,
    key: &str,
    own: &std::collections::BTreeMap<String, String>,
) -> HashMap<String, String> {
    let mut labels: HashMap<String, String> =
        own.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    labels.insert(PROJECT.to_string(), project.to_string());
    labels.insert(kind.to_string(), key.to_string());
    labels.insert(VERSION.to_string(), version());
    labels
}

/// The `label` filter that selects a project's objects.
pub fn project_filter(project: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([("label".to_string(), vec![format!("{PROJECT}={project}")])])
}
