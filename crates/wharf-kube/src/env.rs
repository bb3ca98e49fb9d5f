//! Which environment values go into a Secret, and escaping for Kubernetes' `$(VAR)` expansion.
//!
//! The rule (docs/kubernetes.md, "Environment"): a variable's value goes into the service's
//! Secret `<service>-env`, referenced with `valueFrom.secretKeyRef`, when
//! 1. it came from an env file whose path has `secret` in a file or directory name
//!    (`secrets/edd.env`, `app.secret.env`), or
//! 2. its name has a secret-sounding word (split on `_`, `-` and `.`): PASSWORD, PASSWD, PASS,
//!    SECRET, TOKEN, KEY, APIKEY, CREDENTIAL(S), PRIVATE — unless the name ends in `_FILE` (the
//!    `POSTGRES_PASSWORD_FILE` convention names a path, not a secret), or
//! 3. its value is a URL with a password in it (`postgres://user:pw@db/x`).
//!
//! Everything else stays a plain `value` in the Pod template. A value put in the Secret by
//! mistake costs nothing (the container sees the same variable); one left in the Pod template by
//! mistake is readable by anyone who can read Deployments, hence the generous rule.

use std::path::Path;

const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "SECRET",
    "SECRETS",
    "TOKEN",
    "KEY",
    "APIKEY",
    "CREDENTIAL",
    "CREDENTIALS",
    "PRIVATE",
];

/// Why a variable goes into the Secret, or `None` when it stays in the Pod template.
pub fn secret_reason(name: &str, value: &str, env_file: Option<&Path>) -> Option<&'static str> {
    if let Some(path) = env_file
        && path.components().any(|c| {
            c.as_os_str()
                .to_string_lossy()
                .to_ascii_lowercase()
                .contains("secret")
        })
    {
        return Some("from a secret env file");
    }
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    if words.last() != Some(&"FILE") && words.iter().any(|w| SECRET_WORDS.contains(w)) {
        return Some("secret-sounding name");
    }
    if url_has_password(value) {
        return Some("URL with a password");
    }
    None
}

fn url_has_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    match authority.rsplit_once('@') {
        Some((userinfo, _)) => userinfo
            .split_once(':')
            .is_some_and(|(_, pw)| !pw.is_empty()),
        None => false,
    }
}

/// A string as Kubernetes must see it in `command`, `args` and env values so that it reaches the
/// container unchanged: Kubernetes expands `$(VAR)` and turns `$$` into `$`, so a `$` followed by
/// `$` or `(` is doubled (a lone `$` elsewhere is kept as it is).
pub fn escape_dollars(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        out.push(c);
        if c == '$' && matches!(chars.peek(), Some('$') | Some('(')) {
            out.push('$');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_rule() {
        let secret_file = Path::new("/p/secrets/edd.env");
        let plain_file = Path::new("/p/config/backend.env");
        assert!(secret_reason("EDD_DEBUG", "false", Some(secret_file)).is_some());
        assert!(secret_reason("EDD_DEBUG", "false", Some(plain_file)).is_none());
        assert!(secret_reason("DB_PASS", "x", None).is_some());
        assert!(secret_reason("SECRET_KEY", "x", None).is_some());
        assert!(secret_reason("POSTGRES_PASSWORD_FILE", "/run/secrets/p", None).is_none());
        assert!(secret_reason("PASSENGER", "x", None).is_none());
        assert!(secret_reason("KEYBOARD", "x", None).is_none());
        assert!(secret_reason("DATABASE_URL", "postgres://u:pw@db:5432/x", None).is_some());
        assert!(secret_reason("DATABASE_URL", "postgres://u@db:5432/x", None).is_none());
        assert!(secret_reason("QUEUE_URL", "http://127.0.0.1:8701", None).is_none());
    }

    #[test]
    fn dollars_reach_the_container_unchanged() {
        assert_eq!(escape_dollars("$remote_addr"), "$remote_addr");
        assert_eq!(escape_dollars("$(date)"), "$$(date)");
        assert_eq!(escape_dollars("a$$b"), "a$$$b");
        assert_eq!(escape_dollars("cost: 5$"), "cost: 5$");
        // Kubernetes' expansion turns each `$$` into `$` and leaves other `$` alone.
        fn kube_expand(s: &str) -> String {
            let b: Vec<char> = s.chars().collect();
            let mut out = String::new();
            let mut i = 0;
            while i < b.len() {
                if b[i] == '$' && i + 1 < b.len() && b[i + 1] == '$' {
                    out.push('$');
                    i += 2;
                } else {
                    out.push(b[i]);
                    i += 1;
                }
            }
            out
        }
        for s in ["$remote_addr", "$(date)", "a$$b", "$$$(x)", "5$", "$"] {
            assert_eq!(kube_expand(&escape_dollars(s)), s);
        }
    }
}
