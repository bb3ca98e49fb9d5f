//! The certificate choice during a handshake: by SNI over a map swapped atomically, so that a
//! certificate changes without a restart and without touching open connections (they keep the
//! certificate they were handed).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::acme::Challenges;

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// Certificates by host name: exact names, `*.example.org` wildcards (one label, as certificates
/// match), and a default for clients that send no name (or one no certificate covers).
#[derive(Clone, Default)]
pub struct CertMap {
    /// `example.org` or `*.example.org`.
    pub(crate) by_host: HashMap<String, Arc<CertifiedKey>>,
    pub(crate) default: Option<Arc<CertifiedKey>>,
}

impl CertMap {
    /// The certificate for an SNI name (any case).
    pub fn find(&self, name: &str) -> Option<&Arc<CertifiedKey>> {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(c) = self.by_host.get(&name) {
            return Some(c);
        }
        let (_, parent) = name.split_once('.')?;
        self.by_host.get(&format!("*.{parent}"))
    }
}

/// The [`ResolvesServerCert`] of wharf's TLS listener.
pub struct CertResolver {
    pub(crate) certs: ArcSwap<CertMap>,
    pub(crate) challenges: Arc<Challenges>,
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let map = self.certs.load();
        let mut hosts: Vec<&String> = map.by_host.keys().collect();
        hosts.sort();
        f.debug_struct("CertResolver")
            .field("hosts", &hosts)
            .field("default", &map.default.is_some())
            .finish()
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name().map(str::to_string);
        let acme = hello
            .alpn()
            .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN));
        if acme {
            // A validation from the ACME CA: only the challenge certificate will do (RFC 8737
            // section 3), never the route's own.
            return name.and_then(|n| self.challenges.tls_alpn_certificate(&n));
        }
        let map = self.certs.load();
        name.as_deref()
            .and_then(|n| map.find(n))
            .or(map.default.as_ref())
            .cloned()
    }
}
