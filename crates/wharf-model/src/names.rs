//! The names wharf turns into things on the host: directories under the state directory
//! (`volumes/<name>`, `logs/<project>/`), bridges, engine objects. A name that is not a plain
//! word could walk out of its parent directory (`name: /some/dir`, `name: ../x`), so names are
//! checked where they enter (the loader, the API) with Docker's own rules, and every path built
//! from a name goes through [`child_path`].

use std::path::{Component, Path, PathBuf};

/// Docker's rule for volume, network and container names (moby `daemon/names/names.go`,
/// `RestrictedNamePattern`: `^[a-zA-Z0-9][a-zA-Z0-9_.-]+$`): a letter or digit, then at least
/// one letter, digit, `_`, `.` or `-`.
pub const OBJECT_NAME_RULE: &str = "`[a-zA-Z0-9][a-zA-Z0-9_.-]+` (Docker's rule for names)";

/// Docker Compose's rule for project names (compose-go `loader.go`, `NormalizeProjectName`:
/// `^[a-z0-9][a-z0-9_-]*$`).
pub const PROJECT_NAME_RULE: &str = "`[a-z0-9][a-z0-9_-]*` (Docker Compose's rule for project names: lowercase letters, digits, `_` and `-`, starting with a letter or digit)";

/// Whether `name` follows Docker's rule for volume, network and container names
/// ([`OBJECT_NAME_RULE`]).
pub fn is_valid_object_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    bytes.len() >= 2
        && bytes[0].is_ascii_alphanumeric()
        && bytes[1..]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

/// Whether `name` follows Docker Compose's rule for project names ([`PROJECT_NAME_RULE`]).
pub fn is_valid_project_name(name: &str) -> bool {
    crate::load::is_valid_project_name(name)
}

/// A name that cannot be one entry of a directory.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{name}` cannot name an entry of {}: a name must be one plain path component (no `/`, not `.` or `..`, not empty)",
    .parent.display()
)]
pub struct NotAChild {
    pub parent: PathBuf,
    pub name: String,
}

/// `parent/name`, when `name` is one plain path component, so that the path stays inside
/// `parent` whatever the name holds: every path wharf builds from a name under its state
/// directory is built here.
pub fn child_path(parent: &Path, name: &str) -> Result<PathBuf, NotAChild> {
    let refuse = || NotAChild {
        parent: parent.to_path_buf(),
        name: name.to_string(),
    };
    if name.is_empty() || name.contains(['/', '\0']) {
        return Err(refuse());
    }
    let mut components = Path::new(name).components();
    match (components.next(), components.next()) {
        (Some(Component::Normal(_)), None) => {}
        _ => return Err(refuse()),
    }
    let path = parent.join(name);
    // One normal component joined: its parent is `parent` itself.
    if path.parent() != Some(parent) {
        return Err(refuse());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_names_follow_docker() {
        for ok in ["db", "p_db-data", "a.b", "0x", "My.Vol_1"] {
            assert!(is_valid_object_name(ok), "{ok}");
        }
        for bad in [
            "",
            "a",
            "/some/dir",
            "../x",
            "..",
            ".x",
            "-x",
            "_x",
            "a/b",
            "a b",
            "é1",
            "a\0b",
        ] {
            assert!(!is_valid_object_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_child_path_stays_inside_its_parent() {
        let parent = Path::new("/var/lib/wharf/volumes");
        assert_eq!(
            child_path(parent, "p_db").unwrap(),
            Path::new("/var/lib/wharf/volumes/p_db")
        );
        assert_eq!(
            child_path(parent, "a..b").unwrap(),
            Path::new("/var/lib/wharf/volumes/a..b")
        );
        for bad in [
            "",
            ".",
            "..",
            "/some/dir",
            "../x",
            "a/../../b",
            "a/b",
            "x\0",
        ] {
            let e = child_path(parent, bad).unwrap_err();
            assert_eq!(e.name, bad);
            assert!(e.to_string().contains("/var/lib/wharf/volumes"), "{e}");
        }
    }
}
