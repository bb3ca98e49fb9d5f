//! Kubernetes names made from Compose names.
//!
//! Compose allows `_`, `.` and capitals in service, volume and network names; most Kubernetes
//! objects want an RFC 1123 label and Services an RFC 1035 one (starting with a letter). [`label`]
//! makes both from any name, and [`join`] makes derived names (`<service>-ready`) that still fit
//! in 63 characters.

/// The longest name a label-named object (a Service, a Pod's volume, a container) may have.
pub const MAX: usize = 63;

/// `name` as an RFC 1035 label: lowercase letters, digits and `-`, starting with a letter, ending
/// with a letter or digit, at most 63 characters (a longer one keeps a hash of the whole name).
pub fn label(name: &str) -> String {
    finish(clean(name), name)
}

/// Parts joined with `-`, each cleaned first, shortened (with a hash) to fit 63 characters.
pub fn join(parts: &[&str]) -> String {
    let cleaned: Vec<String> = parts
        .iter()
        .map(|p| clean(p))
        .filter(|p| !p.is_empty())
        .collect();
    let whole = parts.join("-");
    finish(cleaned.join("-"), &whole)
}

/// Lowercase letters, digits and single `-`, none at the ends.
fn clean(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        let c = c.to_ascii_lowercase();
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

/// A cleaned name made to start with a letter and to fit.
fn finish(mut out: String, whole: &str) -> String {
    if out.is_empty() {
        out.push('x');
    } else if !out.starts_with(|c: char| c.is_ascii_lowercase()) {
        out.insert_str(0, "s-");
    }
    fit(&out, whole)
}

/// Whether `s` is already an RFC 1035 label (what `--namespace` must be).
pub fn is_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Whether `s` is an RFC 1123 label (what a Pod's hostname must be): like [`is_label`], but it
/// may start with a digit.
pub fn is_dns1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// A label value (at most 63 characters of `[A-Za-z0-9._-]`, alphanumeric at both ends).
pub fn label_value(s: &str) -> String {
    let cleaned: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let trimmed = cleaned.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    if trimmed.len() <= MAX {
        trimmed.to_string()
    } else {
        fit(trimmed, s)
    }
}

/// A key of a Secret's or ConfigMap's data (`[-._a-zA-Z0-9]+`).
pub fn data_key(s: &str) -> String {
    let k: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if k.is_empty() || k == "." || k == ".." {
        format!("_{k}")
    } else {
        k
    }
}

fn fit(s: &str, whole: &str) -> String {
    if s.len() <= MAX {
        return s.to_string();
    }
    let hash = format!("{:08x}", fnv1a(whole) as u32);
    let head = s[..MAX - hash.len() - 1].trim_end_matches('-');
    format!("{head}-{hash}")
}

/// FNV-1a: a stable hash (the standard library's may change between releases, and names must
/// not change between exports).
fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compose_names_become_labels() {
        assert_eq!(label("celery_monitoring"), "celery-monitoring");
        assert_eq!(label("Worker.VM"), "worker-vm");
        assert_eq!(label("1st"), "s-1st");
        assert_eq!(label("__"), "x");
        assert_eq!(label("edd_postgres_db_2024"), "edd-postgres-db-2024");
    }

    #[test]
    fn long_names_keep_a_stable_hash_and_fit() {
        let long = "a".repeat(100);
        let l = label(&long);
        assert_eq!(l.len(), MAX);
        assert_eq!(l, label(&long), "stable");
        assert_ne!(label(&"a".repeat(101)), l, "different names stay different");
        assert!(join(&[&long, "ready"]).len() <= MAX);
        assert_eq!(join(&["manager", "http", "8000"]), "manager-http-8000");
        assert_eq!(join(&["web", "tmpfs", "1"]), "web-tmpfs-1");
    }

    #[test]
    fn namespaces_are_checked_not_rewritten() {
        assert!(is_label("edd"));
        assert!(!is_label("Edd"));
        assert!(!is_label("edd-"));
        assert!(!is_label("1edd"));
    }

    #[test]
    fn label_values_and_data_keys() {
        assert_eq!(label_value("director-40"), "director-40");
        assert_eq!(label_value("_x_"), "x");
        assert_eq!(data_key("db password"), "db_password");
    }
}
