//! wharf-model: Compose files to a validated [`Project`].
//!
//! [`load`] walks the files the way Docker Compose does (see `docs/ARCHITECTURE.md`): parse, validate
//! against the Compose schema, interpolate, normalise short syntaxes, resolve `extends` and
//! `include`, merge, decode into typed values, and check every reference. [`config`] prints the
//! result in the shape of `docker compose config`.

pub mod byte_size;
mod canonical;
pub mod config;
mod decode;
pub mod diag;
pub mod dotenv;
pub mod duration;
mod extends;
mod include;
pub mod interpolate;
pub mod load;
mod merge;
pub mod names;
pub mod node;
pub mod port_spec;
pub mod project;
pub mod schema;
pub mod shell_words;
mod validate;
pub mod volume_spec;
pub mod yaml;

pub use diag::{Diagnostic, Diagnostics, Severity, SourceMap};
pub use load::{LoadOptions, Loaded, LoadedModel, load, load_model};
pub use project::Project;
