//! Certificates and keys on disk: atomic writes (write, fsync, rename, fsync the directory), keys
//! readable by their owner only, and the validity of a stored certificate.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

use super::TlsError;

/// Who may read a file written by [`write_atomic`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    /// 0644: certificates.
    Public,
    /// 0600: private keys.
    Secret,
}

/// Writes `contents` to `path` so that a reader (or a crash) sees the old file or the new one,
/// never a part: a temporary file beside it, fsync, rename over, fsync of the directory.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: Mode) -> Result<(), TlsError> {
    let err = |source: std::io::Error| TlsError::State {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(err)?;
    let bits = match mode {
        Mode::Public => 0o644,
        Mode::Secret => 0o600,
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(bits)
            .open(&tmp)?;
        // `mode` only applies to a new file; a leftover temporary file keeps its own.
        file.set_permissions(fs::Permissions::from_mode(bits))?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// The file's contents, or `None` when it does not exist.
pub(crate) fn read_optional(path: &Path) -> Result<Option<String>, TlsError> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(TlsError::State {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// When a certificate starts and stops being valid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// Of a DER certificate; `None` when it cannot be parsed.
    pub fn of(cert: &CertificateDer<'_>) -> Option<Validity> {
        let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
        let v = parsed.validity();
        Some(Validity {
            not_before: at(v.not_before.timestamp())?,
            not_after: at(v.not_after.timestamp())?,
        })
    }

    /// When a third of the lifetime remains: the time to renew.
    pub fn renew_at(&self) -> SystemTime {
        let lifetime = self
            .not_after
            .duration_since(self.not_before)
            .unwrap_or(Duration::ZERO);
        self.not_before + lifetime * 2 / 3
    }

    /// Whether the certificate should be replaced at `now`: renewal time reached, or not yet valid.
    pub fn due(&self, now: SystemTime) -> bool {
        now >= self.renew_at() || now < self.not_before
    }
}

fn at(unix: i64) -> Option<SystemTime> {
    if unix >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(unix.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(unix.unsigned_abs()))
    }
}

/// Every certificate of a PEM text, in order.
pub(crate) fn certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))?;
    if certs.is_empty() {
        return Err("no `BEGIN CERTIFICATE` block".to_string());
    }
    Ok(certs)
}

/// `<dir>/<name>.pem` and `<dir>/<name>.key`.
pub(crate) fn pair_paths(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    (
        dir.join(format!("{name}.pem")),
        dir.join(format!("{name}.key")),
    )
}

/// A file name for a set of host names: the first one, readable, and a hash of all of them.
pub(crate) fn file_name(hosts: &[String]) -> String {
    let first = hosts.first().map_or("default", String::as_str);
    let readable: String = first
        .chars()
        .map(|c| if c == '*' { '_' } else { c })
        .take(100)
        .collect();
    format!("{readable}-{:016x}", fnv1a(hosts.join(",").as_bytes()))
}

/// FNV-1a, 64 bits: stable across builds, unlike std's hasher (file names must survive upgrades).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_and_keeps_keys_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("sub/k.key");
        write_atomic(&path, b"one", Mode::Secret).expect("write");
        write_atomic(&path, b"two", Mode::Secret).expect("rewrite");
        assert_eq!(fs::read_to_string(&path).expect("read"), "two");
        let mode = fs::metadata(&path).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn renewal_is_due_when_a_third_of_the_lifetime_remains() {
        let start = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let v = Validity {
            not_before: start,
            not_after: start + Duration::from_secs(90 * 86400),
        };
        assert_eq!(v.renew_at(), start + Duration::from_secs(60 * 86400));
        assert!(!v.due(start + Duration::from_secs(59 * 86400)));
        assert!(v.due(start + Duration::from_secs(60 * 86400)));
        assert!(v.due(start - Duration::from_secs(1)));
    }

    #[test]
    fn bad_pem_is_an_error_not_a_panic() {
        assert!(certificates("").is_err());
        assert!(
            certificates("-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n").is_err()
        );
        assert_eq!(
            Validity::of(&CertificateDer::from(vec![0x30, 0x03, 1, 2])),
            None
        );
    }

    #[test]
    fn file_names_are_stable_and_distinct() {
        let a = file_name(&["*.example.org".into()]);
        assert!(a.starts_with("_.example.org-"), "{a}");
        assert_ne!(
            file_name(&["a.test".into(), "b.test".into()]),
            file_name(&["a.test".into(), "c.test".into()])
        );
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
    }
}
