//! A `build:` context as the tar the Engine's build API takes, without what `.dockerignore`
//! excludes (the Docker CLI's rules: patterns relative to the context root, `*` and `?` within a
//! path element, `**` across elements, a pattern excludes what is under a matching directory,
//! `!` re-includes, the last matching pattern wins; the Dockerfile and `.dockerignore` are always
//! sent).

use std::path::{Path, PathBuf};

use crate::DockerError;

/// The patterns of a `.dockerignore`.
#[derive(Clone, Debug, Default)]
pub struct DockerIgnore {
    /// `(pattern elements, negated)`, in file order.
    patterns: Vec<(Vec<String>, bool)>,
}

impl DockerIgnore {
    pub fn parse(text: &str) -> DockerIgnore {
        let mut patterns = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (negated, pattern) = match line.strip_prefix('!') {
                Some(p) => (true, p.trim()),
                None => (false, line),
            };
            let elements: Vec<String> = pattern
                .split('/')
                .filter(|e| !e.is_empty() && *e != ".")
                .map(str::to_string)
                .collect();
            if !elements.is_empty() {
                patterns.push((elements, negated));
            }
        }
        DockerIgnore { patterns }
    }

    fn has_exceptions(&self) -> bool {
        self.patterns.iter().any(|(_, n)| *n)
    }

    /// Whether `path` (relative to the context, `/`-separated) is excluded.
    pub fn excludes(&self, path: &str) -> bool {
        let elements: Vec<&str> = path.split('/').filter(|e| !e.is_empty()).collect();
        let mut excluded = false;
        for (pattern, negated) in &self.patterns {
            // The path itself, or a directory it is under.
            let matched = (1..=elements.len()).any(|n| glob_elements(pattern, &elements[..n]));
            if matched {
                excluded = !negated;
            }
        }
        excluded
    }
}

/// Matches path elements against pattern elements; `**` matches any number of elements.
fn glob_elements(pattern: &[String], path: &[&str]) -> bool {
    match pattern.split_first() {
        None => path.is_empty(),
        Some((first, rest)) if first == "**" => {
            (0..=path.len()).any(|skip| glob_elements(rest, &path[skip..]))
        }
        Some((first, rest)) => match path.split_first() {
            Some((p, path_rest)) => glob_element(first, p) && glob_elements(rest, path_rest),
            None => false,
        },
    }
}

/// `*` and `?` within one path element; `\` escapes the next character.
fn glob_element(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('*', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('?', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some(('\\', rest)) if !rest.is_empty() => {
                n.first() == Some(&rest[0]) && go(&rest[1..], &n[1..])
            }
            Some((c, rest)) => n.first() == Some(c) && go(rest, &n[1..]),
        }
    }
    go(&p, &n)
}

/// The context directory as a tar, honouring its `.dockerignore`. `dockerfile` is the
/// Dockerfile's path relative to the context, always included.
pub fn context_tar(dir: &Path, dockerfile: &str) -> Result<Vec<u8>, DockerError> {
    let io = |path: &Path, e: std::io::Error| DockerError::Context {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
        Ok(text) => DockerIgnore::parse(&text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::default(),
        Err(e) => return Err(io(&dir.join(".dockerignore"), e)),
    };
    let always = [dockerfile.trim_start_matches("./"), ".dockerignore"];
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(relative) = stack.pop() {
        let full = dir.join(&relative);
        let mut entries: Vec<_> = std::fs::read_dir(&full)
            .map_err(|e| io(&full, e))?
            .collect::<Result<_, _>>()
            .map_err(|e| io(&full, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let rel = relative.join(entry.file_name());
            let rel_text = rel.to_string_lossy().replace('\\', "/");
            let file_type = entry.file_type().map_err(|e| io(&entry.path(), e))?;
            let excluded = ignore.excludes(&rel_text) && !always.contains(&rel_text.as_str());
            if file_type.is_dir() {
                if !excluded {
                    builder
                        .append_dir(&rel, entry.path())
                        .map_err(|e| io(&entry.path(), e))?;
                }
                // An excluded directory is still walked when an exception may re-include
                // something under it.
                if !excluded || ignore.has_exceptions() {
                    stack.push(rel);
                }
            } else if !excluded {
                builder
                    .append_path_with_name(entry.path(), &rel)
                    .map_err(|e| io(&entry.path(), e))?;
            }
        }
    }
    builder.into_inner().map_err(|e| io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dockerignore_follows_the_docker_cli_rules() {
        let ignore = DockerIgnore::parse(
            "# comment\n*.log\nsecret/\n**/node_modules\n/build\n!build/keep.txt\ntmp?\n",
        );
        assert!(ignore.excludes("a.log"));
        assert!(
            !ignore.excludes("dir/a.log"),
            "`*.log` is anchored at the root"
        );
        assert!(ignore.excludes("secret/key"), "under an excluded directory");
        assert!(ignore.excludes("x/y/node_modules/z.js"));
        assert!(ignore.excludes("build/out.o"));
        assert!(!ignore.excludes("build/keep.txt"), "re-included by `!`");
        assert!(ignore.excludes("tmp1"));
        assert!(!ignore.excludes("tmp12"));
        assert!(!ignore.excludes("src/main.rs"));
    }

    #[test]
    fn the_context_tar_leaves_out_what_is_ignored_and_keeps_the_dockerfile() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            dir.path().join(".dockerignore"),
            "Dockerfile\n*.secret\ncache\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("app.txt"), "app").unwrap();
        std::fs::write(dir.path().join("db.secret"), "pw").unwrap();
        std::fs::create_dir(dir.path().join("cache")).unwrap();
        std::fs::write(dir.path().join("cache/blob"), "x").unwrap();
        let tar = context_tar(dir.path(), "Dockerfile").unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, [".dockerignore", "Dockerfile", "app.txt"]);
    }
}
