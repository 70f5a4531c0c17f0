//! TLS termination on listeners: certificates chosen by SNI from a store that a reload swaps
//! without a restart, client certificate verification against a reloadable CA bundle, and the
//! verified client identity handed to authentication.
//!
//! The listener's rustls `ServerConfig` is built once at start (Pingora owns it); what changes
//! later lives behind `ArcSwap`s it consults on every handshake: [`SniResolver`] (certificates)
//! and [`ReloadableClientVerifier`] (client CA and mode). A reload stages the new state for every
//! listener first and swaps it in only when the whole config was accepted, so a broken
//! certificate leaves the old ones serving.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::listeners::tls::Acceptor;
use pingora::listeners::TlsAccept;
use pingora::protocols::tls::TlsRef;
use pingora::proxy::Session;
use portcullis_auth::ClientCertIdentity;
use portcullis_config::{
    ClientAuth, ClientAuthMode, Config, Listener, ListenerTls, TlsCertificate, TlsVersion,
};
use prometheus::{IntGaugeVec, Opts};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::conn::TlsTermination;
use crate::metrics::Metrics;

/// Why TLS state could not be built from a (validated) config.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key rustls refuses.
    #[error("listener `{listener}`: {file}: {message}")]
    Certificate {
        /// Listener name.
        listener: String,
        /// The certificate file.
        file: String,
        /// What rustls said.
        message: String,
    },
    /// A client CA bundle rustls refuses.
    #[error("listener `{listener}`: client_auth: {message}")]
    ClientAuth {
        /// Listener name.
        listener: String,
        /// What rustls said.
        message: String,
    },
    /// The rustls configuration could not be completed (ticket keys).
    #[error("listener `{listener}`: {message}")]
    Setup {
        /// Listener name.
        listener: String,
        /// What rustls said.
        message: String,
    },
    /// The expiry gauge could not be registered.
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// The certificates of one listener, by SNI name.
#[derive(Debug)]
struct CertSet {
    exact: HashMap<String, Arc<CertifiedKey>>,
    /// Keyed by the suffix after `*.` (`example.com` for `*.example.com`).
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Arc<CertifiedKey>,
    tls13_only: bool,
    /// (name label, not_after) for the expiry gauge.
    expiry: Vec<(String, i64)>,
}

impl CertSet {
    fn build(listener: &str, tls: &ListenerTls) -> Result<CertSet, TlsError> {
        let mut exact = HashMap::new();
        let mut wildcard = HashMap::new();
        let mut default = None;
        let mut expiry = Vec::new();
        for c in &tls.certificates {
            let key = certified_key(c).map_err(|message| TlsError::Certificate {
                listener: listener.to_owned(),
                file: c.cert_file.display().to_string(),
                message,
            })?;
            // The first certificate claiming a name wins, as the first is the default.
            for name in &c.names {
                match name.strip_prefix("*.") {
                    Some(suffix) => {
                        wildcard
                            .entry(suffix.to_owned())
                            .or_insert_with(|| Arc::clone(&key));
                    }
                    None => {
                        exact
                            .entry(name.clone())
                            .or_insert_with(|| Arc::clone(&key));
                    }
                }
            }
            let label = c.names.first().cloned().unwrap_or_else(|| {
                c.cert_file
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default()
            });
            expiry.push((label, c.not_after));
            default.get_or_insert(key);
        }
        let default = default.ok_or_else(|| TlsError::Certificate {
            listener: listener.to_owned(),
            file: String::new(),
            message: "no certificate".to_owned(),
        })?;
        Ok(CertSet {
            exact,
            wildcard,
            default,
            tls13_only: tls.min_version == TlsVersion::Tls13,
            expiry,
        })
    }

    fn pick(&self, name: Option<&str>) -> Arc<CertifiedKey> {
        let Some(name) = name.map(|n| n.trim_end_matches('.').to_ascii_lowercase()) else {
            return Arc::clone(&self.default);
        };
        if let Some(k) = self.exact.get(&name) {
            return Arc::clone(k);
        }
        // A wildcard covers exactly one label.
        if let Some((_, parent)) = name.split_once('.') {
            if let Some(k) = self.wildcard.get(parent) {
                return Arc::clone(k);
            }
        }
        Arc::clone(&self.default)
    }
}

fn certified_key(c: &TlsCertificate) -> Result<Arc<CertifiedKey>, String> {
    let key = PrivateKeyDer::try_from(c.key.0.clone()).map_err(|e| e.to_owned())?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| e.to_string())?;
    let chain = c
        .chain
        .iter()
        .map(|d| CertificateDer::from(d.clone()))
        .collect();
    Ok(Arc::new(CertifiedKey::new(chain, signer)))
}

/// Chooses the certificate of a handshake by SNI: exact name, then a wildcard one label up,
/// then the listener's first certificate.
#[derive(Debug)]
pub(crate) struct SniResolver {
    certs: ArcSwap<CertSet>,
}

impl ResolvesServerCert for SniResolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let set = self.certs.load();
        // The listener's rustls config offers 1.2 and 1.3 for its whole life (see
        // `termination`); a client offering no TLS 1.3 suite cannot negotiate 1.3, so
        // `min_version: "1.3"` refuses it here, where it reloads (rustls picks 1.3 whenever the
        // client supports it).
        if set.tls13_only
            && !hello
                .cipher_suites()
                .iter()
                .any(|s| (0x1301..=0x1305).contains(&u16::from(*s)))
        {
            return None;
        }
        Some(set.pick(hello.server_name()))
    }
}

/// A client certificate verifier whose CA bundle and mode a reload can replace.
pub(crate) struct ReloadableClientVerifier {
    inner: ArcSwap<Arc<dyn ClientCertVerifier>>,
}

impl fmt::Debug for ReloadableClientVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReloadableClientVerifier")
            .finish_non_exhaustive()
    }
}

impl ClientCertVerifier for ReloadableClientVerifier {
    fn offer_client_auth(&self) -> bool {
        self.inner.load().offer_client_auth()
    }

    fn client_auth_mandatory(&self) -> bool {
        self.inner.load().client_auth_mandatory()
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The hints cannot borrow from a swappable verifier; clients send their certificate
        // without them (an empty list means "any CA").
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.inner
            .load()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.load().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.load().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.load().supported_verify_schemes()
    }
}

fn client_verifier(
    listener: &str,
    auth: &ClientAuth,
) -> Result<Arc<dyn ClientCertVerifier>, TlsError> {
    let err = |message: String| TlsError::ClientAuth {
        listener: listener.to_owned(),
        message,
    };
    let mut roots = RootCertStore::empty();
    for der in &auth.roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| err(format!("{}: {e}", auth.ca_file.display())))?;
    }
    let builder = WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        Arc::new(rustls::crypto::ring::default_provider()),
    );
    let builder = match auth.mode {
        ClientAuthMode::Required => builder,
        ClientAuthMode::Optional => builder.allow_unauthenticated(),
    };
    builder.build().map_err(|e| err(e.to_string()))
}

/// The TLS state of one listener.
#[derive(Debug)]
struct ListenerState {
    resolver: Arc<SniResolver>,
    clients: Option<Arc<ReloadableClientVerifier>>,
}

/// TLS state of every TLS listener, kept across reloads (listeners are fixed at start).
#[derive(Debug)]
pub(crate) struct TlsListeners {
    listeners: HashMap<String, ListenerState>,
    expiry: IntGaugeVec,
}

/// New TLS state for every listener, built and checked, not yet in use.
pub(crate) struct Staged {
    certs: Vec<(String, Arc<CertSet>)>,
    clients: Vec<(String, Arc<dyn ClientCertVerifier>)>,
}

impl TlsListeners {
    /// Builds the state of the config's TLS listeners and registers the expiry gauge.
    pub(crate) fn new(config: &Config, metrics: &Metrics) -> Result<TlsListeners, TlsError> {
        let expiry = IntGaugeVec::new(
            Opts::new(
                "portcullis_tls_certificate_expiry_timestamp_seconds",
                "Unix time at which a listener's certificate expires, by listener and first DNS name.",
            ),
            &["listener", "name"],
        )?;
        metrics.register(Box::new(expiry.clone()))?;
        let mut listeners = HashMap::new();
        for l in &config.listeners {
            let Some(tls) = &l.tls else { continue };
            let certs = CertSet::build(&l.name, tls)?;
            let clients = match &tls.client_auth {
                Some(auth) => Some(Arc::new(ReloadableClientVerifier {
                    inner: ArcSwap::from_pointee(client_verifier(&l.name, auth)?),
                })),
                None => None,
            };
            listeners.insert(
                l.name.clone(),
                ListenerState {
                    resolver: Arc::new(SniResolver {
                        certs: ArcSwap::from_pointee(certs),
                    }),
                    clients,
                },
            );
        }
        let this = TlsListeners { listeners, expiry };
        this.export_expiry();
        Ok(this)
    }

    /// The TLS termination of a listener (None for a plain one): a rustls configuration built
    /// here rather than by Pingora's `TlsSettings`, which keeps rustls' defaults of 256 cached
    /// sessions and no tickets. Every TLS 1.3 connection stores two sessions, so past about
    /// 128 returning clients no resumption succeeds; with tickets a resumption needs no server
    /// state, and the cache serves TLS 1.2 clients that only know session ids.
    pub(crate) fn termination(
        &self,
        listener: &Listener,
    ) -> Result<Option<TlsTermination>, TlsError> {
        let (Some(tls), Some(state)) = (&listener.tls, self.listeners.get(&listener.name)) else {
            return Ok(None);
        };
        let setup = |message: String| TlsError::Setup {
            listener: listener.name.clone(),
            message,
        };
        // rustls needs a process-wide crypto provider; Pingora's client side uses the same.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // Both versions here: `min_version` is applied per handshake by the certificate
        // resolver, so it reloads.
        let builder = rustls::ServerConfig::builder_with_protocol_versions(&[
            &rustls::version::TLS12,
            &rustls::version::TLS13,
        ]);
        let builder = match &state.clients {
            Some(v) => {
                builder.with_client_cert_verifier(Arc::clone(v) as Arc<dyn ClientCertVerifier>)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config =
            builder.with_cert_resolver(Arc::clone(&state.resolver) as Arc<dyn ResolvesServerCert>);
        // h2 first, HTTP/1.1 otherwise (what Pingora's `enable_h2` sets).
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config.session_storage = if tls.session_cache > 0 {
            rustls::server::ServerSessionMemoryCache::new(tls.session_cache)
        } else {
            Arc::new(rustls::server::NoServerSessionStorage {})
        };
        if tls.session_tickets {
            config.ticketer =
                rustls::crypto::ring::Ticketer::new().map_err(|e| setup(e.to_string()))?;
        }
        Ok(Some(TlsTermination {
            acceptor: Acceptor::from_server_config(Arc::new(config)),
            callback: Box::new(IdentityCallback),
        }))
    }

    /// Builds the TLS state a new config asks for, without touching what serves now.
    pub(crate) fn stage(&self, config: &Config) -> Result<Staged, TlsError> {
        let mut staged = Staged {
            certs: Vec::new(),
            clients: Vec::new(),
        };
        for l in &config.listeners {
            let (Some(tls), Some(state)) = (&l.tls, self.listeners.get(&l.name)) else {
                continue;
            };
            staged
                .certs
                .push((l.name.clone(), Arc::new(CertSet::build(&l.name, tls)?)));
            if let (Some(auth), Some(_)) = (&tls.client_auth, &state.clients) {
                staged
                    .clients
                    .push((l.name.clone(), client_verifier(&l.name, auth)?));
            }
        }
        Ok(staged)
    }

    /// Puts staged state in use: new handshakes see it, established connections keep theirs.
    pub(crate) fn commit(&self, staged: Staged) {
        for (name, certs) in staged.certs {
            if let Some(state) = self.listeners.get(&name) {
                state.resolver.certs.store(certs);
            }
        }
        for (name, verifier) in staged.clients {
            if let Some(v) = self.listeners.get(&name).and_then(|s| s.clients.as_ref()) {
                v.inner.store(Arc::new(verifier));
            }
        }
        self.export_expiry();
    }

    fn export_expiry(&self) {
        self.expiry.reset();
        for (listener, state) in &self.listeners {
            for (name, not_after) in &state.resolver.certs.load().expiry {
                self.expiry
                    .with_label_values(&[listener.as_str(), name.as_str()])
                    .set(*not_after);
            }
        }
    }
}

/// Whether two listener lists differ in what only a restart applies (names, addresses, h2c,
/// TLS on or off, client auth on or off, session cache and tickets); certificates, CAs and
/// `min_version` reload.
pub(crate) fn listeners_need_restart(old: &[Listener], new: &[Listener]) -> bool {
    let shape = |l: &Listener| {
        (
            l.name.clone(),
            l.address,
            l.h2c,
            l.tls.is_some(),
            l.tls.as_ref().is_some_and(|t| t.client_auth.is_some()),
            l.tls.as_ref().map(|t| (t.session_cache, t.session_tickets)),
        )
    };
    old.len() != new.len() || old.iter().zip(new).any(|(a, b)| shape(a) != shape(b))
}

/// Parses the verified client certificate once per connection and attaches the identity to
/// the connection's TLS digest.
struct IdentityCallback;

#[async_trait]
impl TlsAccept for IdentityCallback {
    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        let der = ssl.peer_certificate_der()?;
        identity_from_der(der).map(|id| Arc::new(id) as Arc<dyn Any + Send + Sync>)
    }
}

/// The verified client certificate identity of the session's connection, if any.
pub(crate) fn client_identity(session: &Session) -> Option<ClientCertIdentity> {
    session
        .digest()?
        .ssl_digest
        .as_ref()?
        .extension
        .get::<ClientCertIdentity>()
        .cloned()
}

/// Subject (RFC 4514 style, `CN=svc,O=Example`, in certificate order), DNS and URI SANs and the
/// SHA-256 fingerprint of a DER certificate.
pub(crate) fn identity_from_der(der: &[u8]) -> Option<ClientCertIdentity> {
    use x509_parser::extensions::GeneralName;
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    let registry = x509_parser::objects::oid_registry();
    let mut parts = Vec::new();
    for rdn in cert.subject().iter_rdn() {
        for atv in rdn.iter() {
            let oid = atv.attr_type();
            let key = x509_parser::objects::oid2abbrev(oid, registry)
                .map_or_else(|_| oid.to_id_string(), str::to_owned);
            let value = atv.as_str().map_or_else(|_| "?".to_owned(), str::to_owned);
            parts.push(format!("{key}={value}"));
        }
    }
    let mut dns_sans = Vec::new();
    let mut uri_sans = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            match n {
                GeneralName::DNSName(s) => dns_sans.push((*s).to_owned()),
                GeneralName::URI(s) => uri_sans.push((*s).to_owned()),
                _ => {}
            }
        }
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let fingerprint_sha256 = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    Some(ClientCertIdentity {
        subject: parts.join(","),
        dns_sans,
        uri_sans,
        fingerprint_sha256,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_subject_sans_and_fingerprint() {
        let mut params = rcgen::CertificateParams::new(vec!["svc.test".to_owned()]).unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "svc");
        params.subject_alt_names.push(rcgen::SanType::URI(
            "spiffe://example/ns/a".try_into().unwrap(),
        ));
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let id = identity_from_der(cert.der()).unwrap();
        assert_eq!(id.subject, "O=Example,CN=svc");
        assert_eq!(id.dns_sans, ["svc.test"]);
        assert_eq!(id.uri_sans, ["spiffe://example/ns/a"]);
        assert_eq!(id.fingerprint_sha256.len(), 64);
    }
}
