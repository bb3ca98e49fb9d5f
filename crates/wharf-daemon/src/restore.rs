//! What a starting daemon brings back: the services of each stored project whose restart
//! policy says so. Their instances died with the previous daemon (the no-orphan guarantee).

use std::collections::BTreeSet;

use wharf_model::Project;
use wharf_model::project::RestartPolicy;

/// The services to start again, as Docker does when its daemon restarts:
///
/// - `always`: yes, even when the user had stopped it;
/// - `unless-stopped`: unless the user had stopped it;
/// - `on-failure`: unless the user had stopped it, since dying with the daemon is a failure;
/// - `no`: never.
pub fn services_to_restore(project: &Project, stopped: &BTreeSet<String>) -> Vec<String> {
    project
        .services
        .values()
        .filter(|s| match s.restart {
            RestartPolicy::No => false,
            RestartPolicy::Always => true,
            RestartPolicy::UnlessStopped | RestartPolicy::OnFailure { .. } => {
                !stopped.contains(&s.name)
            }
        })
        .map(|s| s.name.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::load_normalised;

    #[test]
    fn restart_policies_decide_what_comes_back() {
        let yaml = "name: p\nservices:\n  a: {command: [sh], restart: always}\n  u: {command: [sh], restart: unless-stopped}\n  f: {command: [sh], restart: on-failure}\n  n: {command: [sh], restart: \"no\"}\n  d: {command: [sh]}\n";
        let p = load_normalised(yaml, Path::new("/")).unwrap();
        assert_eq!(services_to_restore(&p, &BTreeSet::new()), ["a", "f", "u"]);
        let stopped = BTreeSet::from(["a".to_string(), "u".to_string(), "f".to_string()]);
        assert_eq!(services_to_restore(&p, &stopped), ["a"]);
    }
}
