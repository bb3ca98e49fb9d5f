//! wharf-kube's integration tests: every seed-shaped project exported and validated against the
//! Kubernetes OpenAPI schemas, golden manifests for EDD, and one test per mapping.

mod cli;
mod export;
mod golden;
mod mapping;
mod project;
mod validate;
