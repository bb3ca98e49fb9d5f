//! The local wharf CA (`wharf.http.tls: self-signed`): a CA key and certificate created once in
//! the state directory, and leaf certificates for routes' hosts issued by it. A user trusts the CA
//! once (`wharf ca` prints its certificate for curl's `--cacert` or a browser's trust store) and
//! every development host is trusted after that.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

use super::TlsError;
use super::disk::{self, Mode, Validity};

/// How long the CA is valid.
const CA_LIFETIME: Duration = Duration::from_secs(10 * 365 * 86400);
/// How long a leaf is valid: renewed after 60 days, like certificates from public ACME CAs.
const LEAF_LIFETIME: Duration = Duration::from_secs(90 * 86400);
/// Clocks of clients that are a little behind still accept a new certificate.
const BACKDATE: Duration = Duration::from_secs(3600);

/// The CA: its certificate and the key that signs leaves.
pub struct LocalCa {
    dir: PathBuf,
    cert_pem: String,
    cert_der: CertificateDer<'static>,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate chain and its key, as issued.
pub struct Issued {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub validity: Validity,
}

impl LocalCa {
    /// The CA of `state_dir` (`<state_dir>/ca/ca.pem` and `ca.key`), created on first use.
    pub fn open_or_create(state_dir: &Path) -> Result<LocalCa, TlsError> {
        let dir = state_dir.join("ca");
        let (cert_path, key_path) = disk::pair_paths(&dir, "ca");
        let cert = disk::read_optional(&cert_path)?;
        let key = disk::read_optional(&key_path)?;
        match (cert, key) {
            (Some(cert_pem), Some(key_pem)) => LocalCa::load(dir, cert_pem, &key_pem),
            // Nothing yet, or a creation that stopped half-way (the key is written first): start
            // over. A certificate without its key cannot sign anything.
            _ => LocalCa::create(dir),
        }
    }

    fn load(dir: PathBuf, cert_pem: String, key_pem: &str) -> Result<LocalCa, TlsError> {
        let (cert_path, key_path) = disk::pair_paths(&dir, "ca");
        let bad = |path: &Path, message: String| TlsError::Ca {
            path: path.to_path_buf(),
            message: format!(
                "{message}; remove both ca.pem and ca.key to create a new CA (and trust it again)"
            ),
        };
        let key = KeyPair::from_pem(key_pem).map_err(|e| bad(&key_path, e.to_string()))?;
        let cert_der = disk::certificates(&cert_pem)
            .map_err(|e| bad(&cert_path, e))?
            .remove(0);
        let issuer =
            Issuer::from_ca_cert_der(&cert_der, key).map_err(|e| bad(&cert_path, e.to_string()))?;
        Ok(LocalCa {
            dir,
            cert_pem,
            cert_der,
            issuer,
        })
    }

    fn create(dir: PathBuf) -> Result<LocalCa, TlsError> {
        let (cert_path, key_path) = disk::pair_paths(&dir, "ca");
        let failed = |message: String| TlsError::Ca {
            path: cert_path.clone(),
            message,
        };
        let key = KeyPair::generate().map_err(|e| failed(e.to_string()))?;
        let mut params = CertificateParams::default();
        let mut name = DistinguishedName::new();
        name.push(DnType::OrganizationName, "wharf");
        name.push(
            DnType::CommonName,
            format!(
                "wharf local CA {:08x}",
                disk::fnv1a(key.public_key_raw()) as u32
            ),
        );
        params.distinguished_name = name;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = SystemTime::now();
        params.not_before = offset(now - BACKDATE);
        params.not_after = offset(now + CA_LIFETIME);
        let cert = params
            .self_signed(&key)
            .map_err(|e| failed(e.to_string()))?;
        // The key first: a certificate is only ever on disk with its key beside it.
        disk::write_atomic(&key_path, key.serialize_pem().as_bytes(), Mode::Secret)?;
        disk::write_atomic(&cert_path, cert.pem().as_bytes(), Mode::Public)?;
        Ok(LocalCa {
            dir,
            cert_pem: cert.pem(),
            cert_der: cert.der().clone(),
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA certificate, PEM, for clients to trust.
    pub fn certificate_pem(&self) -> &str {
        &self.cert_pem
    }

    pub fn certificate_der(&self) -> &CertificateDer<'static> {
        &self.cert_der
    }

    /// Where the CA lives.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A leaf for `hosts` (names, `*.` wildcards or addresses); no host at all gives one for
    /// `localhost`, 127.0.0.1 and ::1. The chain is the leaf and the CA.
    pub fn issue(&self, hosts: &[String]) -> Result<Issued, TlsError> {
        let names: Vec<String> = if hosts.is_empty() {
            vec!["localhost".into(), "127.0.0.1".into(), "::1".into()]
        } else {
            hosts.to_vec()
        };
        let failed = |message: String| TlsError::Ca {
            path: self.dir.join("ca.pem"),
            message: format!("issuing a certificate for {}: {message}", names.join(", ")),
        };
        let mut params =
            CertificateParams::new(names.clone()).map_err(|e| failed(e.to_string()))?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, names[0].clone());
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let now = SystemTime::now();
        params.not_before = offset(now - BACKDATE);
        params.not_after = offset(now + LEAF_LIFETIME);
        let key = KeyPair::generate().map_err(|e| failed(e.to_string()))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| failed(e.to_string()))?;
        let leaf = cert.der().clone();
        let validity = Validity::of(&leaf).ok_or_else(|| failed("unreadable".to_string()))?;
        Ok(Issued {
            chain: vec![leaf, self.cert_der.clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            validity,
        })
    }
}

/// rcgen's dates; times before 1970 or past year 9999 do not occur here (now +- years).
fn offset(t: SystemTime) -> OffsetDateTime {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
    OffsetDateTime::from_unix_timestamp(secs).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_ca_is_created_once_and_reloaded() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = LocalCa::open_or_create(dir.path()).expect("create");
        let second = LocalCa::open_or_create(dir.path()).expect("reload");
        assert_eq!(first.certificate_pem(), second.certificate_pem());
        let key = dir.path().join("ca/ca.key");
        let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leaf = second.issue(&["app.test".into()]).expect("issue");
        assert_eq!(leaf.chain.len(), 2);
        let lifetime = leaf
            .validity
            .not_after
            .duration_since(leaf.validity.not_before)
            .expect("ordered");
        assert_eq!(lifetime, LEAF_LIFETIME + BACKDATE);
    }

    #[test]
    fn a_damaged_ca_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        LocalCa::open_or_create(dir.path()).expect("create");
        std::fs::write(dir.path().join("ca/ca.key"), "garbage").expect("damage");
        let Err(e) = LocalCa::open_or_create(dir.path()) else {
            panic!("a damaged key must be refused");
        };
        let text = e.to_string();
        assert!(
            text.contains("ca.key") && text.contains("remove both"),
            "{text}"
        );
    }
}
