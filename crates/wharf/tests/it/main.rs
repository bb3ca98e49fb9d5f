//! Integration tests of the `wharf` binary, run as a user runs it: the conformance cases of
//! `testdata/` through `wharf config`, bad inputs reported on standard error with their place,
//! and stacks of real processes run by the daemon through the verbs.

mod bad_input;
mod config;
mod docker;
mod e2e_config;
mod hardening;
mod routing;
mod scale;
mod stack;
mod verbs;
mod wait;

use std::path::{Path, PathBuf};

/// The top of the repository, where the cases' command lines run.
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the repository root exists")
}

/// `wharf` with an empty environment: tests never depend on the real one.
fn wharf(dir: &Path) -> assert_cmd::Command {
    let mut cmd = assert_cmd::Command::cargo_bin("wharf").expect("the wharf binary is built");
    cmd.env_clear().current_dir(dir);
    cmd
}
