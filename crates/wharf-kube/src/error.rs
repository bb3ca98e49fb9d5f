use std::path::PathBuf;

use wharf_router::route::{RouteError, Tie};

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "unsupported Kubernetes version `{given}`: wharf writes manifests for 1.33 to 1.37; pass --kube-version 1.37 (the default) or another in that range"
    )]
    KubeVersion { given: String },

    #[error(
        "namespace `{0}` is not a valid Kubernetes name: use at most 63 lowercase letters, digits and `-`, starting with a letter"
    )]
    Namespace(String),

    #[error("service `{service}`: {source}")]
    Route {
        service: String,
        #[source]
        source: RouteError,
    },

    #[error("{0}")]
    RouteTie(Tie),

    #[error(
        "services `{first}` and `{second}` would both be named `{name}` in Kubernetes: rename one of them in the Compose file"
    )]
    NameClash {
        name: String,
        first: String,
        second: String,
    },

    #[error(
        "two {kind}s would be named `{name}`: rename the Compose service, alias, volume, secret or config behind one of them"
    )]
    DuplicateObject { kind: &'static str, name: String },

    #[error("cannot read {what} {}: {source}; {help}", path.display())]
    Read {
        what: String,
        path: PathBuf,
        help: &'static str,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "{what} takes its value from the variable `{variable}`, which is not set: set it when exporting, or mark it `external: true` and create it in the cluster"
    )]
    MissingVariable { what: String, variable: String },

    #[error("cannot write {}: {source}; check that it is writable", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
