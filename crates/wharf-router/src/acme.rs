//! ACME (`wharf.http.tls: acme`): certificates from an ACME CA (Let's Encrypt, or Pebble in the
//! tests) with HTTP-01 or TLS-ALPN-01 validation answered by the router itself.
//!
//! - HTTP-01: the plain HTTP listener answers `/.well-known/acme-challenge/<token>` from
//!   [`Challenges`] before any route lookup (and never redirects it to HTTPS).
//! - TLS-ALPN-01: the TLS listener answers a handshake that offers only `acme-tls/1` with the
//!   challenge certificate of [`Challenges`] (see [`crate::tls::CertResolver`]).
//!
//! The account key and every certificate live under `<state>/acme/<directory id>/`, written
//! atomically, so a restart reuses them. Failures are retried with a backoff that follows the
//! CA's `Retry-After` and treats `rateLimited` answers as "wait long" (Let's Encrypt's limits are
//! per hour and per week; hammering them only extends the ban).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use hyper::StatusCode;
use hyper::header::RETRY_AFTER;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, ChallengeType, HttpClient,
    Identifier, Key, NewOrder, OrderStatus, RetryPolicy,
};
use rcgen::{CertificateParams, CustomExtension, DistinguishedName, KeyPair};
use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

use crate::settings::AcmeSettings;
use crate::tls::TlsError;
use crate::tls::disk::{self, Mode, Validity};

/// Debian's bundle of the system's trusted roots, trusted for the ACME CA besides the settings'
/// `ca_roots`.
pub const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";

/// How the CA checks that the router answers for a host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ChallengeKind {
    /// A request to port 80 (the router's plain HTTP listener).
    #[default]
    Http01,
    /// A TLS handshake on port 443 (the router's TLS listener) with ALPN `acme-tls/1`.
    TlsAlpn01,
}

impl ChallengeKind {
    /// `http-01` or `tls-alpn-01`, as the settings spell it.
    pub fn parse(s: &str) -> Option<ChallengeKind> {
        match s {
            "http-01" => Some(ChallengeKind::Http01),
            "tls-alpn-01" => Some(ChallengeKind::TlsAlpn01),
            _ => None,
        }
    }

    fn acme_type(self) -> ChallengeType {
        match self {
            ChallengeKind::Http01 => ChallengeType::Http01,
            ChallengeKind::TlsAlpn01 => ChallengeType::TlsAlpn01,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

/// The answers to challenges in progress, shared by the ACME client and the listeners.
#[derive(Default)]
pub struct Challenges {
    /// HTTP-01: token -> key authorization.
    http: Mutex<HashMap<String, String>>,
    /// TLS-ALPN-01: host -> challenge certificate.
    tls_alpn: Mutex<HashMap<String, Arc<CertifiedKey>>>,
}

/// The path prefix of HTTP-01 challenges.
pub const HTTP_CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

impl Challenges {
    /// The body for a request path `/.well-known/acme-challenge/<token>`, if that token is one
    /// of ours.
    pub fn http_response(&self, path: &str) -> Option<String> {
        let token = path.strip_prefix(HTTP_CHALLENGE_PREFIX)?;
        self.http.lock().ok()?.get(token).cloned()
    }

    /// The TLS-ALPN-01 certificate for a host being validated.
    pub fn tls_alpn_certificate(&self, host: &str) -> Option<Arc<CertifiedKey>> {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.tls_alpn.lock().ok()?.get(&host).cloned()
    }
}

/// Removes the challenge answers of one order when it is done, whatever its outcome.
struct Published<'a> {
    challenges: &'a Challenges,
    tokens: Vec<String>,
    hosts: Vec<String>,
}

impl Drop for Published<'_> {
    fn drop(&mut self) {
        if let Ok(mut http) = self.challenges.http.lock() {
            for t in &self.tokens {
                http.remove(t);
            }
        }
        if let Ok(mut alpn) = self.challenges.tls_alpn.lock() {
            for h in &self.hosts {
                alpn.remove(h);
            }
        }
    }
}

/// Why an issuance failed, and what the CA said about retrying.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeFailure {
    pub message: String,
    /// The CA answered `urn:ietf:params:acme:error:rateLimited`.
    pub rate_limited: bool,
    /// The CA's `Retry-After`, from now.
    pub retry_after: Option<Duration>,
}

/// The wait before attempt `attempt + 1` (0 = after the first failure): one minute doubling to
/// six hours; at least an hour after a `rateLimited` answer; the CA's `Retry-After` when it sent
/// one (it knows its limits better than any guess).
pub fn retry_delay(attempt: u32, failure: &AcmeFailure) -> Duration {
    const FIRST: Duration = Duration::from_secs(60);
    const CAP: Duration = Duration::from_secs(6 * 3600);
    const RATE_LIMITED: Duration = Duration::from_secs(3600);
    if let Some(after) = failure.retry_after {
        return after.clamp(Duration::from_secs(1), Duration::from_secs(7 * 86400));
    }
    let backoff = FIRST.saturating_mul(1 << attempt.min(16)).min(CAP);
    if failure.rate_limited {
        backoff.max(RATE_LIMITED)
    } else {
        backoff
    }
}

/// A certificate issued (or loaded from the state directory) for a set of hosts.
pub(crate) struct AcmeCertificate {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
    pub validity: Validity,
}

/// The ACME client of one directory.
pub(crate) struct Acme {
    settings: AcmeSettings,
    challenge: ChallengeKind,
    /// `<state>/acme/<directory id>`.
    dir: PathBuf,
    challenges: Arc<Challenges>,
    provider: Arc<CryptoProvider>,
    account: tokio::sync::Mutex<Option<Account>>,
    /// The last `Retry-After` the CA sent with a 429 or 503.
    retry_after: Arc<Mutex<Option<SystemTime>>>,
}

impl Acme {
    pub(crate) fn new(
        settings: AcmeSettings,
        challenge: ChallengeKind,
        state_dir: &Path,
        challenges: Arc<Challenges>,
        provider: Arc<CryptoProvider>,
    ) -> Acme {
        let dir = state_dir.join("acme").join(format!(
            "{:016x}",
            disk::fnv1a(settings.directory.as_bytes())
        ));
        Acme {
            settings,
            challenge,
            dir,
            challenges,
            provider,
            account: tokio::sync::Mutex::new(None),
            retry_after: Arc::new(Mutex::new(None)),
        }
    }

    /// The stored certificate for `hosts`, if there is one that parses.
    pub(crate) fn stored(&self, hosts: &[String]) -> Result<Option<AcmeCertificate>, TlsError> {
        let (cert_path, key_path) = disk::pair_paths(&self.dir, &disk::file_name(hosts));
        let (Some(cert), Some(key)) = (
            disk::read_optional(&cert_path)?,
            disk::read_optional(&key_path)?,
        ) else {
            return Ok(None);
        };
        // A damaged file is replaced by a new issuance rather than refused: the CA can always
        // give a new one.
        let Ok(chain) = disk::certificates(&cert) else {
            return Ok(None);
        };
        let Ok(key) = PrivateKeyDer::from_pem_slice(key.as_bytes()) else {
            return Ok(None);
        };
        let Some(validity) = Validity::of(&chain[0]) else {
            return Ok(None);
        };
        Ok(Some(AcmeCertificate {
            chain,
            key,
            validity,
        }))
    }

    /// Orders a certificate for `hosts` (of route `route`), answers its challenges, stores it.
    pub(crate) async fn issue(
        &self,
        route: &str,
        hosts: &[String],
    ) -> Result<AcmeCertificate, AcmeFailure> {
        if let Ok(mut r) = self.retry_after.lock() {
            *r = None;
        }
        let result = self.order(hosts).await;
        result.map_err(|(host, message, rate_limited)| {
            let retry_after = self
                .retry_after
                .lock()
                .ok()
                .and_then(|r| *r)
                .and_then(|t| t.duration_since(SystemTime::now()).ok());
            AcmeFailure {
                message: format!(
                    "route `{route}`, host {host}: {message} (ACME directory {})",
                    self.settings.directory
                ),
                rate_limited,
                retry_after,
            }
        })
    }

    /// The error side: (host, message, rate limited).
    async fn order(&self, hosts: &[String]) -> Result<AcmeCertificate, (String, String, bool)> {
        let all = hosts.join(", ");
        let account = self.account().await.map_err(|e| {
            (
                all.clone(),
                format!("the ACME account: {}", describe(&e)),
                limited(&e),
            )
        })?;
        let identifiers: Vec<Identifier> =
            hosts.iter().map(|h| Identifier::Dns(h.clone())).collect();
        let api = |host: &str, what: &str, e: instant_acme::Error| {
            (
                host.to_string(),
                format!("{what}: {}", describe(&e)),
                limited(&e),
            )
        };
        let mut order = account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(|e| api(&all, "new order", e))?;
        let kind = self.challenge;
        let mut published = Published {
            challenges: &self.challenges,
            tokens: Vec::new(),
            hosts: Vec::new(),
        };
        {
            let mut authorizations = order.authorizations();
            while let Some(authz) = authorizations.next().await {
                let mut authz = authz.map_err(|e| api(&all, "authorization", e))?;
                let host = authz.identifier().to_string();
                match authz.status {
                    AuthorizationStatus::Pending => {}
                    AuthorizationStatus::Valid => continue,
                    other => {
                        return Err((host, format!("the CA's authorization is {other:?}"), false));
                    }
                }
                let Some(mut challenge) = authz.challenge(kind.acme_type()) else {
                    return Err((
                        host,
                        format!(
                            "the CA offers no {} challenge: set `x-wharf.router.acme.challenge` to another",
                            kind.name()
                        ),
                        false,
                    ));
                };
                let key_authorization = challenge.key_authorization();
                match kind {
                    ChallengeKind::Http01 => {
                        let token = challenge.token.clone();
                        if let Ok(mut http) = self.challenges.http.lock() {
                            http.insert(token.clone(), key_authorization.as_str().to_string());
                        }
                        published.tokens.push(token);
                    }
                    ChallengeKind::TlsAlpn01 => {
                        let cert = alpn_certificate(
                            &host,
                            key_authorization.digest().as_ref(),
                            &self.provider,
                        )
                        .map_err(|m| (host.clone(), m, false))?;
                        if let Ok(mut alpn) = self.challenges.tls_alpn.lock() {
                            alpn.insert(host.clone(), cert);
                        }
                        published.hosts.push(host.clone());
                    }
                }
                challenge
                    .set_ready()
                    .await
                    .map_err(|e| api(&host, "challenge", e))?;
            }
        }
        let polling = RetryPolicy::new()
            .initial_delay(Duration::from_millis(250))
            .backoff(1.5)
            .timeout(Duration::from_secs(120));
        let status = order
            .poll_ready(&polling)
            .await
            .map_err(|e| api(&all, "validation", e))?;
        if status != OrderStatus::Ready {
            return Err(self.why_invalid(&mut order, &all).await);
        }
        drop(published);
        let key = KeyPair::generate().map_err(|e| (all.clone(), e.to_string(), false))?;
        let mut params = CertificateParams::new(hosts.to_vec())
            .map_err(|e| (all.clone(), e.to_string(), false))?;
        params.distinguished_name = DistinguishedName::new();
        let csr = params
            .serialize_request(&key)
            .map_err(|e| (all.clone(), e.to_string(), false))?;
        order
            .finalize_csr(csr.der())
            .await
            .map_err(|e| api(&all, "finalize", e))?;
        let chain_pem = order
            .poll_certificate(&polling)
            .await
            .map_err(|e| api(&all, "certificate", e))?;
        let chain = disk::certificates(&chain_pem)
            .map_err(|m| (all.clone(), format!("the CA's certificate: {m}"), false))?;
        let validity = Validity::of(&chain[0]).ok_or_else(|| {
            (
                all.clone(),
                "the CA's certificate cannot be parsed".to_string(),
                false,
            )
        })?;
        let key_pem = key.serialize_pem();
        let (cert_path, key_path) = disk::pair_paths(&self.dir, &disk::file_name(hosts));
        let stored = disk::write_atomic(&key_path, key_pem.as_bytes(), Mode::Secret)
            .and_then(|()| disk::write_atomic(&cert_path, chain_pem.as_bytes(), Mode::Public));
        if let Err(e) = stored {
            return Err((all, e.to_string(), false));
        }
        Ok(AcmeCertificate {
            chain,
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            validity,
        })
    }

    /// The CA's own words on why an order failed: the first challenge error of its
    /// authorizations.
    async fn why_invalid(
        &self,
        order: &mut instant_acme::Order,
        all: &str,
    ) -> (String, String, bool) {
        let mut authorizations = order.authorizations();
        while let Some(Ok(mut authz)) = authorizations.next().await {
            let host = authz.identifier().to_string();
            let Ok(state) = authz.refresh().await else {
                continue;
            };
            for c in &state.challenges {
                if let Some(problem) = &c.error {
                    return (host, format!("the CA answered: {problem}"), false);
                }
            }
        }
        (
            all.to_string(),
            "the CA marked the order invalid without saying why".to_string(),
            false,
        )
    }

    /// The account of our key (`account.key`, created on first use), registered with the CA
    /// (the CA finds it again if it knows it).
    async fn account(&self) -> Result<Account, instant_acme::Error> {
        let mut slot = self.account.lock().await;
        if let Some(a) = &*slot {
            return Ok(a.clone());
        }
        let key_path = self.dir.join("account.key");
        let der = match disk::read_optional(&key_path) {
            Ok(Some(pem)) => PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| {
                instant_acme::Error::Other(
                    format!(
                        "{}: {e}: remove it to create a new account",
                        key_path.display()
                    )
                    .into(),
                )
            })?,
            Ok(None) => {
                let (_, der) = Key::generate_pkcs8()?;
                let pem = pem_encode("PRIVATE KEY", der.secret_pkcs8_der());
                disk::write_atomic(&key_path, pem.as_bytes(), Mode::Secret)
                    .map_err(|e| instant_acme::Error::Other(e.to_string().into()))?;
                der
            }
            Err(e) => return Err(instant_acme::Error::Other(e.to_string().into())),
        };
        let key = Key::from_pkcs8_der(der.clone_key())?;
        let http = AcmeHttp::new(&self.settings, &self.provider, self.retry_after.clone())?;
        let (account, _) = Account::builder_with_http(Box::new(http))
            .create_from_key(
                (key, PrivateKeyDer::Pkcs8(der)),
                self.settings.directory.clone(),
            )
            .await?;
        if let Some(email) = &self.settings.email {
            let contact = format!("mailto:{email}");
            account.update_contacts(&[contact.as_str()]).await?;
        }
        *slot = Some(account.clone());
        Ok(account)
    }
}

fn limited(e: &instant_acme::Error) -> bool {
    matches!(e, instant_acme::Error::Api(p)
        if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:rateLimited"))
}

/// An error with its causes, for messages that must say what the CA (or the network) answered.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let next = s.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = s.source();
    }
    text
}

/// The self-signed certificate of RFC 8737: the host as its only name, and the key
/// authorization's digest in the critical `acmeIdentifier` extension.
fn alpn_certificate(
    host: &str,
    digest: &[u8],
    provider: &CryptoProvider,
) -> Result<Arc<CertifiedKey>, String> {
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params = CertificateParams::new(vec![host.to_string()]).map_err(|e| e.to_string())?;
    params.custom_extensions = vec![CustomExtension::new_acme_identifier(digest)];
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    // Not `CertifiedKey::from_der`: its key check parses the certificate with webpki, which
    // refuses the critical `acmeIdentifier` extension that this certificate exists to carry.
    let signing_key = provider
        .key_provider
        .load_private_key(der)
        .map_err(|e| e.to_string())?;
    Ok(Arc::new(CertifiedKey::new(
        vec![cert.der().clone()],
        signing_key,
    )))
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// instant-acme's HTTP client: hyper-rustls trusting the roots of the settings only, and a note
/// of every `Retry-After` the CA sends with a 429 or 503.
struct AcmeHttp {
    client: Client<HttpsConnector<HttpConnector>, BodyWrapper<Bytes>>,
    retry_after: Arc<Mutex<Option<SystemTime>>>,
}

impl AcmeHttp {
    fn new(
        settings: &AcmeSettings,
        provider: &Arc<CryptoProvider>,
        retry_after: Arc<Mutex<Option<SystemTime>>>,
    ) -> Result<AcmeHttp, instant_acme::Error> {
        let other = |m: String| instant_acme::Error::Other(m.into());
        let mut roots = RootCertStore::empty();
        // The system's roots when there are any (a public CA), and the settings' extra roots,
        // which must be readable when given (a private CA, Pebble in the tests).
        if let Ok(pem) = std::fs::read_to_string(SYSTEM_ROOTS)
            && let Ok(certs) = disk::certificates(&pem)
        {
            roots.add_parsable_certificates(certs);
        }
        if let Some(path) = &settings.ca_roots {
            let pem = std::fs::read_to_string(path).map_err(|e| {
                other(format!(
                    "CA roots {} (`x-wharf.router.acme.ca_roots`): {e}",
                    path.display()
                ))
            })?;
            let certs = disk::certificates(&pem)
                .map_err(|m| other(format!("CA roots {}: {m}", path.display())))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(other(format!(
                    "CA roots {}: no usable certificate",
                    path.display()
                )));
            }
        }
        if roots.is_empty() {
            return Err(other(format!(
                "no CA roots to trust the ACME directory: install ca-certificates ({SYSTEM_ROOTS}) or set `x-wharf.router.acme.ca_roots`"
            )));
        }
        let config = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| other(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_only()
            .enable_http1()
            .enable_http2()
            .build();
        Ok(AcmeHttp {
            client: Client::builder(TokioExecutor::new()).build(connector),
            retry_after,
        })
    }
}

impl HttpClient for AcmeHttp {
    fn request(
        &self,
        req: hyper::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let sent = self.client.request(req);
        let retry_after = self.retry_after.clone();
        Box::pin(async move {
            let response = sent
                .await
                .map_err(|e| instant_acme::Error::Other(describe(&e).into()))?;
            let status = response.status();
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
            {
                let at = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, SystemTime::now()));
                if let (Some(at), Ok(mut slot)) = (at, retry_after.lock()) {
                    *slot = Some(at);
                }
            }
            Ok(BytesResponse::from(response))
        })
    }
}

/// `Retry-After: 120` or `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`.
fn parse_retry_after(value: &str, now: SystemTime) -> Option<SystemTime> {
    let value = value.trim();
    match value.parse::<u64>() {
        Ok(secs) => now.checked_add(Duration::from_secs(secs)),
        Err(_) => httpdate::parse_http_date(value).ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(rate_limited: bool, retry_after: Option<Duration>) -> AcmeFailure {
        AcmeFailure {
            message: String::new(),
            rate_limited,
            retry_after,
        }
    }

    #[test]
    fn backoff_doubles_to_a_cap_and_respects_the_ca() {
        let f = failure(false, None);
        assert_eq!(retry_delay(0, &f), Duration::from_secs(60));
        assert_eq!(retry_delay(1, &f), Duration::from_secs(120));
        assert_eq!(retry_delay(30, &f), Duration::from_secs(6 * 3600));
        let limited = failure(true, None);
        assert_eq!(retry_delay(0, &limited), Duration::from_secs(3600));
        assert_eq!(retry_delay(9, &limited), Duration::from_secs(6 * 3600));
        let told = failure(true, Some(Duration::from_secs(7200)));
        assert_eq!(retry_delay(0, &told), Duration::from_secs(7200));
    }

    #[test]
    fn retry_after_in_both_forms() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        assert_eq!(
            parse_retry_after(" 120", now),
            Some(now + Duration::from_secs(120))
        );
        let date = parse_retry_after("Fri, 31 Dec 1999 23:59:59 GMT", now).expect("date");
        assert_eq!(
            date.duration_since(SystemTime::UNIX_EPOCH)
                .expect("after 1970")
                .as_secs(),
            946_684_799
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn http_challenges_answer_only_their_tokens() {
        let c = Challenges::default();
        c.http
            .lock()
            .expect("lock")
            .insert("tok".into(), "tok.thumb".into());
        assert_eq!(
            c.http_response("/.well-known/acme-challenge/tok")
                .as_deref(),
            Some("tok.thumb")
        );
        assert_eq!(c.http_response("/.well-known/acme-challenge/other"), None);
        assert_eq!(c.http_response("/tok"), None);
    }

    #[test]
    fn pem_round_trip() {
        let (_, der) = Key::generate_pkcs8().expect("key");
        let pem = pem_encode("PRIVATE KEY", der.secret_pkcs8_der());
        let back = PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes()).expect("parse");
        assert_eq!(back.secret_pkcs8_der(), der.secret_pkcs8_der());
    }
}
