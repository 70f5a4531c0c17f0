//! TLS settings of listeners and upstream pools: the raw keys, their validation and the model.
//!
//! Certificate and key files are read and checked when the config loads (so `portcullis check`
//! reports a missing, unreadable, non-PEM, mismatched or expired file against the YAML key that
//! names it), and the model carries the DER bytes: the proxy builds its TLS state from them, and a
//! reload that re-reads changed files yields a different model. Relative paths start at the
//! directory of the config file that names them.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::{Diagnostics, Origin};

/// `listeners[].tls` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawListenerTls {
    /// Certificates served by SNI (names from each certificate's DNS SANs); the first is the
    /// default for clients that send no or an unknown name.
    pub certificates: Vec<RawCertificate>,
    /// Client certificate authentication (mTLS).
    pub client_auth: Option<RawClientAuth>,
    /// Lowest TLS version accepted: "1.2" (default) or "1.3".
    pub min_version: Option<RawVersion>,
    /// Sessions kept in memory for resumption by clients without tickets (TLS 1.2 session ids,
    /// default 20480; 0 keeps none).
    pub session_cache: Option<i64>,
    /// Stateless session tickets (TLS 1.2 and 1.3), keys rotated every 6 hours (default true).
    pub session_tickets: Option<bool>,
}

/// One certificate and its key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCertificate {
    /// PEM certificate chain, leaf first.
    pub cert_file: String,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: String,
}

/// `listeners[].tls.client_auth` as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClientAuth {
    /// PEM bundle of the CAs that sign client certificates (required unless mode is `off`).
    pub ca_file: Option<String>,
    /// `required` (default), `optional` or `off`.
    pub mode: Option<String>,
}

/// A version written as `"1.3"` or `1.3`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub(crate) enum RawVersion {
    /// Quoted.
    Text(String),
    /// Unquoted (YAML reads it as a number).
    Number(f64),
}

/// `upstreams.X.tls` as written.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawUpstreamTls {
    /// Server name sent and verified (default: the backend's host as written).
    pub sni: Option<String>,
    /// PEM bundle of CAs trusted for the backends (default: the system roots).
    pub ca_file: Option<String>,
    /// Verify the backend's certificate and host name (default true; `false` is logged).
    pub verify: Option<bool>,
    /// PEM client certificate chain for mTLS to the backends.
    pub client_cert_file: Option<String>,
    /// PEM private key of `client_cert_file`.
    pub client_key_file: Option<String>,
}

/// A private key in DER. Its `Debug` never shows the bytes.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PrivateKey(pub Vec<u8>);

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PrivateKey([REDACTED])")
    }
}

/// A certificate chain and its key, checked to match and to be valid now.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TlsCertificate {
    /// Where the chain was read from.
    pub cert_file: PathBuf,
    /// Where the key was read from.
    pub key_file: PathBuf,
    /// DER certificates, leaf first.
    pub chain: Vec<Vec<u8>>,
    /// The key, DER (PKCS#8, PKCS#1 or SEC1 as in the file).
    pub key: PrivateKey,
    /// DNS names of the leaf (SANs, lowercased; `*.example.com` wildcards kept).
    pub names: Vec<String>,
    /// Unix time at which the leaf expires.
    pub not_after: i64,
}

/// Whether listeners ask for client certificates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ClientAuthMode {
    /// Handshakes without a valid client certificate fail.
    Required,
    /// A client certificate is asked for and verified when sent.
    Optional,
}

/// Client certificate verification of a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAuth {
    /// The CA bundle's file.
    pub ca_file: PathBuf,
    /// The CA certificates, DER.
    pub roots: Vec<Vec<u8>>,
    /// Required or optional.
    pub mode: ClientAuthMode,
}

/// Lowest accepted TLS version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 and 1.3.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// TLS termination on a listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// Certificates; the first is the default.
    pub certificates: Vec<TlsCertificate>,
    /// Client certificate verification (None: not asked for).
    pub client_auth: Option<ClientAuth>,
    /// Lowest accepted version.
    pub min_version: TlsVersion,
    /// Session cache entries (0: none).
    pub session_cache: usize,
    /// Stateless session tickets.
    pub session_tickets: bool,
}

/// Default [`ListenerTls::session_cache`]: enough for the returning clients of a busy node, a few
/// MiB at most (rustls keeps about 100-200 bytes per session).
pub(crate) const DEFAULT_SESSION_CACHE: usize = 20_480;
/// Largest accepted [`ListenerTls::session_cache`].
pub(crate) const MAX_SESSION_CACHE: i64 = 1_000_000;

/// TLS to the backends of a pool.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpstreamTls {
    /// Server name (None: the backend's host as written).
    pub sni: Option<String>,
    /// The CA bundle's file (None: system roots).
    pub ca_file: Option<PathBuf>,
    /// The CA certificates, DER (empty: system roots).
    pub ca: Vec<Vec<u8>>,
    /// Verify certificate and host name.
    pub verify: bool,
    /// Client certificate for mTLS.
    pub client_cert: Option<TlsCertificate>,
}

pub(crate) fn listener_tls(
    raw: &RawListenerTls,
    o: &Origin,
    d: &mut Diagnostics,
) -> Option<ListenerTls> {
    let base = o.file().parent().map(Path::to_path_buf).unwrap_or_default();
    let before = d.len();
    if raw.certificates.is_empty() {
        d.error_at(
            o,
            &["certificates"],
            "a TLS listener needs at least one certificate",
        );
    }
    let mut certificates = Vec::new();
    for (i, c) in raw.certificates.iter().enumerate() {
        let co = o.at(&["certificates", &i.to_string()]);
        if let Some(cert) = certificate(
            &c.cert_file,
            &c.key_file,
            &base,
            &co,
            ("cert_file", "key_file"),
            d,
        ) {
            certificates.push(cert);
        }
    }
    let client_auth = raw.client_auth.as_ref().and_then(|c| {
        let ao = o.at(&["client_auth"]);
        let mode = match c.mode.as_deref().unwrap_or("required") {
            "required" => Some(ClientAuthMode::Required),
            "optional" => Some(ClientAuthMode::Optional),
            "off" => None,
            other => {
                d.error_at(
                    &ao,
                    &["mode"],
                    format!("unknown mode {other:?}: expected required, optional or off"),
                );
                None
            }
        }?;
        let Some(ca) = &c.ca_file else {
            d.error_at(
                &ao,
                &["ca_file"],
                "client_auth needs `ca_file`: the CAs that sign client certificates",
            );
            return None;
        };
        let ca_file = resolve(ca, &base);
        let roots = ca_bundle(ca, &ca_file, &ao, "ca_file", d)?;
        Some(ClientAuth {
            ca_file,
            roots,
            mode,
        })
    });
    let min_version = match &raw.min_version {
        None => TlsVersion::Tls12,
        Some(v) => {
            let text = match v {
                RawVersion::Text(t) => t.clone(),
                RawVersion::Number(n) => n.to_string(),
            };
            match text.as_str() {
                "1.2" => TlsVersion::Tls12,
                "1.3" => TlsVersion::Tls13,
                other => {
                    d.error_at(
                        o,
                        &["min_version"],
                        format!("unsupported TLS version {other:?}: expected \"1.2\" or \"1.3\""),
                    );
                    TlsVersion::Tls12
                }
            }
        }
    };
    let session_cache = match raw.session_cache {
        None => DEFAULT_SESSION_CACHE,
        Some(n) if (0..=MAX_SESSION_CACHE).contains(&n) => usize::try_from(n).unwrap_or(0),
        Some(n) => {
            d.error_at(
                o,
                &["session_cache"],
                format!("{n} sessions: expected 0 to {MAX_SESSION_CACHE}"),
            );
            0
        }
    };
    if d.len() > before {
        return None;
    }
    Some(ListenerTls {
        certificates,
        client_auth,
        min_version,
        session_cache,
        session_tickets: raw.session_tickets.unwrap_or(true),
    })
}

pub(crate) fn upstream_tls(
    raw: &RawUpstreamTls,
    o: &Origin,
    d: &mut Diagnostics,
) -> Option<UpstreamTls> {
    let base = o.file().parent().map(Path::to_path_buf).unwrap_or_default();
    let before = d.len();
    if let Some(sni) = &raw.sni {
        if sni.is_empty() || sni.chars().any(|c| c.is_whitespace() || c.is_control()) {
            d.error_at(
                o,
                &["sni"],
                format!("invalid server name {sni:?}: expected a host name"),
            );
        }
    }
    let (ca_file, ca) = match &raw.ca_file {
        None => (None, Vec::new()),
        Some(text) => {
            let full = resolve(text, &base);
            let ca = ca_bundle(text, &full, o, "ca_file", d).unwrap_or_default();
            (Some(full), ca)
        }
    };
    let client_cert = match (&raw.client_cert_file, &raw.client_key_file) {
        (None, None) => None,
        (Some(c), Some(k)) => {
            certificate(c, k, &base, o, ("client_cert_file", "client_key_file"), d)
        }
        (Some(_), None) => {
            d.error_at(
                o,
                &["client_cert_file"],
                "`client_cert_file` needs `client_key_file`",
            );
            None
        }
        (None, Some(_)) => {
            d.error_at(
                o,
                &["client_key_file"],
                "`client_key_file` needs `client_cert_file`",
            );
            None
        }
    };
    if d.len() > before {
        return None;
    }
    Some(UpstreamTls {
        sni: raw.sni.clone(),
        ca_file,
        ca,
        verify: raw.verify.unwrap_or(true),
        client_cert,
    })
}

fn resolve(text: &str, base: &Path) -> PathBuf {
    let p = Path::new(text);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

/// Reads a file for a key, reporting a missing or unreadable one against that key.
fn read(text: &str, full: &Path, o: &Origin, key: &str, d: &mut Diagnostics) -> Option<Vec<u8>> {
    if text.is_empty() {
        d.error_at(o, &[key], "a file name is required");
        return None;
    }
    match std::fs::read(full) {
        Ok(b) => Some(b),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            d.error_at(
                o,
                &[key],
                format!(
                    "cannot find file {text:?} (looked at {}): relative paths start at the config file's directory",
                    full.display()
                ),
            );
            None
        }
        Err(e) => {
            d.error_at(o, &[key], format!("cannot read {}: {e}", full.display()));
            None
        }
    }
}

fn pem_certs(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    for item in rustls_pemfile::certs(&mut &bytes[..]) {
        out.push(item.map_err(|e| format!("invalid PEM: {e}"))?.to_vec());
    }
    if out.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".to_owned());
    }
    Ok(out)
}

fn ca_bundle(
    text: &str,
    full: &Path,
    o: &Origin,
    key: &str,
    d: &mut Diagnostics,
) -> Option<Vec<Vec<u8>>> {
    let bytes = read(text, full, o, key, d)?;
    let certs = pem_certs(&bytes)
        .map_err(|e| d.error_at(o, &[key], format!("{}: {e}", full.display())))
        .ok()?;
    for c in &certs {
        if let Err(e) = x509_parser::parse_x509_certificate(c) {
            d.error_at(
                o,
                &[key],
                format!("{}: a certificate does not parse: {e}", full.display()),
            );
            return None;
        }
    }
    Some(certs)
}

/// Reads, parses and checks a certificate chain and its key: the key must match the leaf and
/// the leaf must be valid now.
fn certificate(
    cert_text: &str,
    key_text: &str,
    base: &Path,
    o: &Origin,
    keys: (&str, &str),
    d: &mut Diagnostics,
) -> Option<TlsCertificate> {
    let (cert_key, key_key) = keys;
    let cert_file = resolve(cert_text, base);
    let key_file = resolve(key_text, base);
    let cert_bytes = read(cert_text, &cert_file, o, cert_key, d);
    let key_bytes = read(key_text, &key_file, o, key_key, d);
    let chain = cert_bytes.and_then(|b| {
        pem_certs(&b)
            .map_err(|e| d.error_at(o, &[cert_key], format!("{}: {e}", cert_file.display())))
            .ok()
    });
    let key = key_bytes.and_then(|b| match rustls_pemfile::private_key(&mut &b[..]) {
        Ok(Some(k)) => Some(k),
        Ok(None) => {
            d.error_at(
                o,
                &[key_key],
                format!(
                    "{}: no PEM private key (-----BEGIN PRIVATE KEY-----) found",
                    key_file.display()
                ),
            );
            None
        }
        Err(e) => {
            d.error_at(
                o,
                &[key_key],
                format!("{}: invalid PEM: {e}", key_file.display()),
            );
            None
        }
    });
    let (chain, key) = (chain?, key?);
    let leaf = chain.first()?;
    let facts = match leaf_facts(leaf) {
        Ok(f) => f,
        Err(e) => {
            d.error_at(o, &[cert_key], format!("{}: {e}", cert_file.display()));
            return None;
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |t| i64::try_from(t.as_secs()).unwrap_or(i64::MAX));
    if facts.not_after < now {
        d.error_at(
            o,
            &[cert_key],
            format!(
                "{}: the certificate expired at unix time {} ({})",
                cert_file.display(),
                facts.not_after,
                facts.not_after_text
            ),
        );
        return None;
    }
    if facts.not_before > now {
        d.error_at(
            o,
            &[cert_key],
            format!(
                "{}: the certificate is not valid before {}",
                cert_file.display(),
                facts.not_before_text
            ),
        );
        return None;
    }
    match rustls::crypto::ring::sign::any_supported_type(&key) {
        Ok(signer) => {
            let matches = signer
                .public_key()
                .is_some_and(|spki| spki.as_ref() == facts.spki.as_slice());
            if !matches {
                d.error_at(
                    o,
                    &[key_key],
                    format!(
                        "{}: the key does not match the certificate in {}",
                        key_file.display(),
                        cert_file.display()
                    ),
                );
                return None;
            }
        }
        Err(e) => {
            d.error_at(
                o,
                &[key_key],
                format!("{}: unsupported private key: {e}", key_file.display()),
            );
            return None;
        }
    }
    Some(TlsCertificate {
        cert_file,
        key_file,
        chain: chain.clone(),
        key: PrivateKey(key.secret_der().to_vec()),
        names: facts.names,
        not_after: facts.not_after,
    })
}

struct LeafFacts {
    names: Vec<String>,
    not_before: i64,
    not_after: i64,
    not_before_text: String,
    not_after_text: String,
    spki: Vec<u8>,
}

fn leaf_facts(der: &[u8]) -> Result<LeafFacts, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("the certificate does not parse: {e}"))?;
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(s) = n {
                names.push(s.to_ascii_lowercase());
            }
        }
    }
    let v = cert.validity();
    Ok(LeafFacts {
        names,
        not_before: v.not_before.timestamp(),
        not_after: v.not_after.timestamp(),
        not_before_text: v.not_before.to_string(),
        not_after_text: v.not_after.to_string(),
        spki: cert.public_key().raw.to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_keys_never_print() {
        let k = PrivateKey(vec![1, 2, 3]);
        assert_eq!(format!("{k:?}"), "PrivateKey([REDACTED])");
    }
}

#[cfg(test)]
mod file_tests {
    use std::path::Path;

    fn write_cert(dir: &Path, stem: &str, names: &[&str], expired: bool) {
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>(),
        )
        .unwrap();
        if expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        std::fs::write(dir.join(format!("{stem}.crt")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{stem}.key")), key.serialize_pem()).unwrap();
    }

    fn load(dir: &Path, tls: &str) -> Result<crate::Config, Vec<String>> {
        let text = format!(
            "listeners:\n  - name: web\n    address: \"127.0.0.1:8443\"\n    tls: {tls}\nupstreams:\n  app:\n    backends: [{{ address: \"127.0.0.1:9001\" }}]\nroutes: [{{ name: all, upstream: app }}]\n"
        );
        let file = dir.join("gw.yaml");
        std::fs::write(&file, text).unwrap();
        crate::load_path(&file).map_err(|e| e.diagnostics.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn reads_certificates_relative_to_the_config_file_with_their_names() {
        let dir = tempfile::tempdir().unwrap();
        write_cert(dir.path(), "a", &["a.test", "*.b.test"], false);
        let cfg = load(
            dir.path(),
            "{ certificates: [{ cert_file: a.crt, key_file: a.key }], min_version: 1.3 }",
        )
        .unwrap();
        let tls = cfg.listeners[0].tls.as_ref().unwrap();
        assert_eq!(tls.certificates[0].names, ["a.test", "*.b.test"]);
        assert_eq!(tls.min_version, crate::TlsVersion::Tls13);
        assert_eq!(cfg.tls_files().len(), 2);
        assert_eq!(tls.session_cache, super::DEFAULT_SESSION_CACHE);
        assert!(tls.session_tickets);
    }

    #[test]
    fn session_settings_are_read_and_bounded() {
        let dir = tempfile::tempdir().unwrap();
        write_cert(dir.path(), "a", &["a.test"], false);
        let pair = "certificates: [{ cert_file: a.crt, key_file: a.key }]";
        let cfg = load(
            dir.path(),
            &format!("{{ {pair}, session_cache: 0, session_tickets: false }}"),
        )
        .unwrap();
        let tls = cfg.listeners[0].tls.as_ref().unwrap();
        assert_eq!((tls.session_cache, tls.session_tickets), (0, false));
        for bad in ["-1", "1000001"] {
            let errs =
                load(dir.path(), &format!("{{ {pair}, session_cache: {bad} }}")).unwrap_err();
            assert!(
                errs.iter()
                    .any(|e| e.contains("listeners[0].tls.session_cache")
                        && e.contains("expected 0 to 1000000")),
                "{errs:#?}"
            );
        }
    }

    #[test]
    fn rejects_missing_non_pem_mismatched_and_expired_files_at_their_keys() {
        let dir = tempfile::tempdir().unwrap();
        write_cert(dir.path(), "a", &["a.test"], false);
        write_cert(dir.path(), "b", &["b.test"], false);
        write_cert(dir.path(), "old", &["old.test"], true);
        std::fs::write(dir.path().join("junk.crt"), "not a certificate").unwrap();
        let errs = load(
            dir.path(),
            "{ certificates: [{ cert_file: nope.crt, key_file: a.key }, { cert_file: junk.crt, key_file: a.key }, { cert_file: a.crt, key_file: b.key }, { cert_file: old.crt, key_file: old.key }], client_auth: { mode: required } }",
        )
        .unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:#?}");
        let has =
            |path: &str, text: &str| errs.iter().any(|e| e.contains(path) && e.contains(text));
        assert!(
            has(
                "listeners[0].tls.certificates[0].cert_file",
                "cannot find file"
            ),
            "{errs:#?}"
        );
        assert!(
            has(
                "listeners[0].tls.certificates[1].cert_file",
                "no PEM certificate"
            ),
            "{errs:#?}"
        );
        assert!(
            has(
                "listeners[0].tls.certificates[2].key_file",
                "does not match"
            ),
            "{errs:#?}"
        );
        assert!(
            has("listeners[0].tls.certificates[3].cert_file", "expired"),
            "{errs:#?}"
        );
        assert!(
            has("listeners[0].tls.client_auth.ca_file", "needs `ca_file`"),
            "{errs:#?}"
        );
        assert!(errs[0].contains("gw.yaml:4:"), "{errs:#?}");
    }

    #[test]
    fn upstream_tls_defaults_to_verification_and_pairs_cert_with_key() {
        let dir = tempfile::tempdir().unwrap();
        write_cert(dir.path(), "c", &["c.test"], false);
        let text = "listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams:\n  app:\n    backends: [{ address: \"127.0.0.1:9001\" }]\n    tls: { ca_file: c.crt, client_cert_file: c.crt, client_key_file: c.key }\n  half:\n    backends: [{ address: \"127.0.0.1:9002\" }]\n    tls: { client_cert_file: c.crt }\nroutes: [{ name: all, upstream: app }]\n";
        let file = dir.path().join("gw.yaml");
        std::fs::write(&file, text).unwrap();
        let errs = crate::load_path(&file).unwrap_err();
        assert_eq!(errs.diagnostics.len(), 1, "{errs}");
        assert!(
            errs.to_string()
                .contains("upstreams.half.tls.client_cert_file"),
            "{errs}"
        );
        std::fs::write(
            &file,
            text.replace("tls: { client_cert_file: c.crt }", "tls: { verify: false }"),
        )
        .unwrap();
        let cfg = crate::load_path(&file).unwrap();
        let tls = cfg.upstreams["app"].tls.as_ref().unwrap();
        assert!(tls.verify && tls.client_cert.is_some() && tls.ca.len() == 1);
        assert!(!cfg.upstreams["half"].tls.as_ref().unwrap().verify);
    }
}
