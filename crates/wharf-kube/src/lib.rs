//! wharf-kube: a Compose [`Project`] as Kubernetes manifests, for `wharf export kubernetes`.
//!
//! [`translate`] is pure: it builds typed objects (k8s-openapi, so that every shape is right by
//! construction) and a [`Report`] of every Compose key that did not translate exactly. The only
//! files it reads are the ones the manifests must carry (secret and config files, TLS files of
//! routes). [`Manifests`] prints them as YAML, one stream or one file per kind, and [`cli::run`] is
//! the verb's body. docs/kubernetes.md walks through the mapping with an example for each part.
//!
//! The pieces, each a `Translator` step in its own module:
//! - `workload`: each service (or each group of services sharing a network stack) -> a Pod
//!   template in a Deployment, StatefulSet or Job; containers, env, resources, volumes;
//! - `probe`: healthcheck -> startup, readiness and liveness probes;
//! - `wait`: depends_on -> init containers that wait for a Service's ready endpoints or a Job;
//! - `network`: Services, aliases, NetworkPolicies for Compose networks;
//! - `storage`: PersistentVolumeClaims, Secrets, ConfigMaps;
//! - `ingress`: `wharf.http.*` routes (`wharf_router::route`) -> Ingresses and their NetworkPolicies;
//! - `coverage`: every key present on a service checked against the keys the translation handles.

pub mod cli;
mod coverage;
mod env;
mod error;
mod ingress;
mod manifest;
pub mod name;
mod network;
mod probe;
pub mod report;
mod storage;
mod translate;
mod wait;
mod workload;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

pub use error::Error;
pub use manifest::{Manifests, Object};

/// The files `-o DIR` may write (one per kind, numbered in the order of application).
pub fn manifest_file_names() -> &'static [&'static str] {
    manifest::FILE_NAMES
}
pub use report::{Finding, Kind, Report, Section};
use wharf_model::Project;

/// The Kubernetes minor versions the manifests are written for (1.x). k8s-openapi is built for
/// the newest; every field wharf sets exists in all of them (restartable init containers, the
/// newest thing used, are GA since 1.33).
pub const SUPPORTED_MINORS: std::ops::RangeInclusive<u32> = 33..=37;

/// A Kubernetes version, `1.<minor>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KubeVersion {
    pub minor: u32,
}

impl KubeVersion {
    /// The default `--kube-version`: the newest that k8s-openapi's `v1_37` feature describes.
    pub const DEFAULT: KubeVersion = KubeVersion { minor: 37 };
}

impl Default for KubeVersion {
    fn default() -> Self {
        KubeVersion::DEFAULT
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "1.{}", self.minor)
    }
}

impl FromStr for KubeVersion {
    type Err = Error;

    /// `1.37`, `v1.37` or `1.37.2`; a minor outside [`SUPPORTED_MINORS`] is an error.
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || Error::KubeVersion {
            given: s.to_string(),
        };
        let t = s.trim().trim_start_matches('v');
        let mut parts = t.split('.');
        let (Some("1"), Some(minor)) = (parts.next(), parts.next()) else {
            return Err(bad());
        };
        if parts.next().is_some_and(|p| p.parse::<u32>().is_err()) || parts.next().is_some() {
            return Err(bad());
        }
        let minor: u32 = minor.parse().map_err(|_| bad())?;
        if !SUPPORTED_MINORS.contains(&minor) {
            return Err(bad());
        }
        Ok(KubeVersion { minor })
    }
}

/// What the user chose for the export.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The namespace of every object; `None`: the project's name, with a Namespace object.
    pub namespace: Option<String>,
    pub kube_version: KubeVersion,
    /// Mount bind mounts from the node (`hostPath`) instead of leaving them out.
    pub allow_host_paths: bool,
    /// The interpolation environment (`Loaded::environment`): the values of secrets and configs
    /// declared with `environment:`.
    pub environment: BTreeMap<String, String>,
}

/// The manifests and the report of one export.
#[derive(Clone, Debug)]
pub struct Translation {
    pub namespace: String,
    pub manifests: Manifests,
    pub report: Report,
}

/// Translates a project. Fails on what cannot be written at all (an unreadable secret file, two
/// objects that would get one name, a route label that is wrong); everything that can be written
/// approximately is, and is in the report.
pub fn translate(project: &Project, options: &Options) -> Result<Translation, Error> {
    translate::Translator::new(project, options)?.run()
}
