//! TLS: SNI certificates, certificate hot reload, client mTLS with the identity passed to
//! authorization, and TLS / mTLS to a backend. Every certificate is generated here.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{free_port, Backend, Gateway};

/// A test certificate authority.
struct Ca {
    pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// A certificate and its key, PEM, and the certificate's DER.
struct Leaf {
    cert: String,
    key: String,
    der: Vec<u8>,
}

impl Leaf {
    fn identity(&self) -> reqwest::Identity {
        reqwest::Identity::from_pem(format!("{}{}", self.cert, self.key).as_bytes()).unwrap()
    }

    fn write(&self, dir: &Path, stem: &str) {
        // Written aside and renamed, as kubelet and editors do, so no reader sees half a file.
        for (ext, text) in [("key", &self.key), ("crt", &self.cert)] {
            let tmp = dir.join(format!(".{stem}.{ext}.tmp"));
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, dir.join(format!("{stem}.{ext}"))).unwrap();
        }
    }
}

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        Ca {
            pem: cert.pem(),
            issuer: Issuer::new(params, key),
        }
    }

    fn leaf(&self, cn: &str, names: &[&str]) -> Leaf {
        let mut params =
            CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert: cert.pem(),
            key: key.serialize_pem(),
            der: cert.der().to_vec(),
        }
    }

    fn root(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap()
    }
}

fn addrs() -> (SocketAddr, SocketAddr) {
    let a = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let b = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    (a, b)
}

/// A full config with one TLS listener `secure` (`tls` is its flow mapping) and `rest`.
fn tls_config(addr: SocketAddr, admin: SocketAddr, server: &str, tls: &str, rest: &str) -> String {
    format!(
        "server:\n  threads: 2\n  grace_period: 0s\n  graceful_shutdown_timeout: 10s\n  {server}\nadmin:\n  address: \"{admin}\"\nlisteners:\n  - name: secure\n    address: \"{addr}\"\n    tls: {tls}\n{rest}"
    )
}

/// A client trusting `ca` that reaches every name in `names` at `addr`, reporting the server's
/// certificate.
fn client_for(ca: &Ca, addr: SocketAddr, names: &[&str]) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(10))
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca.root())
        .tls_info(true)
        .use_rustls_tls();
    for n in names {
        b = b.resolve(n, addr);
    }
    b
}

fn peer_cert(r: &reqwest::Response) -> Vec<u8> {
    r.extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|i| i.peer_certificate())
        .map(<[u8]>::to_vec)
        .expect("tls info")
}

async fn served_cert(ca: &Ca, addr: SocketAddr, name: &str) -> Result<Vec<u8>, String> {
    let c = client_for(ca, addr, &[name]).build().unwrap();
    let r = c
        .get(format!("https://{name}:{}/", addr.port()))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    let der = peer_cert(&r);
    assert_eq!(r.status(), 200);
    Ok(der)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_certificate_of_each_sni_name_and_the_first_for_unknown_names() {
    let backend = Backend::start("app").await;
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new("test ca");
    let a = ca.leaf("a", &["a.test"]);
    let b = ca.leaf("b", &["b.test", "*.w.test"]);
    a.write(certs.path(), "a");
    b.write(certs.path(), "b");
    let d = certs.path().display();
    let (addr, admin) = addrs();
    let cfg = tls_config(
        addr,
        admin,
        "watch_config: false",
        &format!("{{ certificates: [{{ cert_file: \"{d}/a.crt\", key_file: \"{d}/a.key\" }}, {{ cert_file: \"{d}/b.crt\", key_file: \"{d}/b.key\" }}] }}"),
        &format!("upstreams:\n  app:\n    backends: [{{ address: \"{}\" }}]\nroutes: [{{ name: all, upstream: app }}]\n", backend.addr),
    );
    let gw = Gateway::start_with(&cfg, addr, admin).await;

    assert_eq!(served_cert(&ca, addr, "a.test").await.unwrap(), a.der);
    assert_eq!(served_cert(&ca, addr, "b.test").await.unwrap(), b.der);
    assert_eq!(served_cert(&ca, addr, "x.w.test").await.unwrap(), b.der);
    assert_eq!(backend.last().header("x-forwarded-proto"), Some("https"));

    // An unknown name gets the first certificate (which then fails the client's name check).
    let lax = reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(true)
        .tls_info(true)
        .use_rustls_tls()
        .resolve("unknown.test", addr)
        .build()
        .unwrap();
    let r = lax
        .get(format!("https://unknown.test:{}/", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(peer_cert(&r), a.der);

    // HTTP/2 is offered through ALPN.
    let h2 = client_for(&ca, addr, &["a.test"]).build().unwrap();
    let r = h2
        .get(format!("https://a.test:{}/", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);

    let expiry = gw
        .metric(
            "portcullis_tls_certificate_expiry_timestamp_seconds",
            &["listener=\"secure\"", "name=\"b.test\""],
        )
        .await;
    assert!(expiry > 1.7e9, "expiry gauge: {expiry}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_is_served_without_restart_and_a_broken_one_keeps_the_old() {
    let backend = Backend::start("app").await;
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new("test ca");
    let v1 = ca.leaf("v1", &["a.test"]);
    v1.write(certs.path(), "a");
    let d = certs.path().display();
    let (addr, admin) = addrs();
    let cfg = tls_config(
        addr,
        admin,
        "watch_config: true\n  reload_debounce: 200ms",
        &format!("{{ certificates: [{{ cert_file: \"{d}/a.crt\", key_file: \"{d}/a.key\" }}] }}"),
        &format!("upstreams:\n  app:\n    backends: [{{ address: \"{}\" }}]\nroutes: [{{ name: all, upstream: app }}]\n", backend.addr),
    );
    let gw = Gateway::start_with(&cfg, addr, admin).await;
    assert_eq!(served_cert(&ca, addr, "a.test").await.unwrap(), v1.der);

    // A long request on a connection made with the old certificate.
    let slow_client = client_for(&ca, addr, &["a.test"]).build().unwrap();
    let slow_url = format!("https://a.test:{}/slow?ms=2000", addr.port());
    let slow = tokio::spawn(async move { slow_client.get(slow_url).send().await });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Load throughout the swap: kept-alive connections and a new handshake per request.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for fresh in [false, true, false, true] {
        let builder = client_for(&ca, addr, &["a.test"]);
        let client = if fresh {
            builder.pool_max_idle_per_host(0)
        } else {
            builder
        }
        .build()
        .unwrap();
        let url = format!("https://a.test:{}/load", addr.port());
        let stop = Arc::clone(&stop);
        load.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0u32, Vec::new());
            while !stop.load(Ordering::Relaxed) {
                match client.get(&url).send().await {
                    Ok(r) if r.status() == 200 => ok += 1,
                    Ok(r) => failed.push(r.status().to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (ok, failed)
        }));
    }

    // The certificate changes on disk: the watcher on its directory reloads it.
    let v2 = ca.leaf("v2", &["a.test"]);
    v2.write(certs.path(), "a");
    let start = Instant::now();
    loop {
        if served_cert(&ca, addr, "a.test").await.unwrap() == v2.der {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "new certificate not served: {}",
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = slow.await.unwrap().expect("in-flight request survives");
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut ok, mut failed) = (0, Vec::new());
    for task in load {
        let (o, f) = task.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    assert!(failed.is_empty(), "failed during the swap: {failed:?}");
    assert!(ok >= 20, "too little load to mean anything: {ok} requests");

    // A broken replacement is refused, counted, and the last good certificate keeps serving.
    let failed = "result=\"failed\"";
    let before = gw
        .metric("portcullis_config_reloads_total", &[failed])
        .await;
    std::fs::write(
        certs.path().join("a.crt"),
        "-----BEGIN CERTIFICATE-----\nbroken\n",
    )
    .unwrap();
    gw.signal(Signal::SIGHUP);
    let start = Instant::now();
    while gw
        .metric("portcullis_config_reloads_total", &[failed])
        .await
        <= before
    {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "no failed reload: {}",
            gw.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(served_cert(&ca, addr, "a.test").await.unwrap(), v2.der);
    assert!(gw.stderr().contains("a.crt"), "{}", gw.stderr());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates_are_verified_and_their_identity_reaches_the_backend() {
    let backend = Backend::start("app").await;
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new("server ca");
    let clients = Ca::new("clients ca");
    let stranger = Ca::new("other ca");
    ca.leaf("gw", &["gw.test"]).write(certs.path(), "gw");
    std::fs::write(certs.path().join("clients.pem"), &clients.pem).unwrap();
    let d = certs.path().display();
    let (addr, admin) = addrs();
    let cfg = tls_config(
        addr,
        admin,
        "watch_config: false",
        &format!("{{ certificates: [{{ cert_file: \"{d}/gw.crt\", key_file: \"{d}/gw.key\" }}], client_auth: {{ mode: required, ca_file: \"{d}/clients.pem\" }} }}"),
        &format!("upstreams:\n  app:\n    backends: [{{ address: \"{}\" }}]\nroutes:\n  - name: svc\n    upstream: app\n    auth: {{ client_cert: true, require_client_cert: {{ subjects: [\"CN=client-a\"] }} }}\n", backend.addr),
    );
    let gw = Gateway::start_with(&cfg, addr, admin).await;
    let url = format!("https://gw.test:{}/svc", addr.port());

    // No client certificate: the handshake is refused.
    let none = client_for(&ca, addr, &["gw.test"]).build().unwrap();
    assert!(none.get(&url).send().await.is_err());
    // A certificate from another CA: refused too.
    let foreign = client_for(&ca, addr, &["gw.test"])
        .identity(stranger.leaf("client-a", &["client-a.test"]).identity())
        .build()
        .unwrap();
    assert!(foreign.get(&url).send().await.is_err());
    assert_eq!(backend.hits(), 0);

    // The right certificate: 200, and the backend sees the verified subject, not the spoof.
    let good = client_for(&ca, addr, &["gw.test"])
        .identity(clients.leaf("client-a", &["client-a.test"]).identity())
        .build()
        .unwrap();
    let r = good
        .get(&url)
        .header("x-auth-subject", "CN=admin")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", gw.stderr());
    let seen = backend.last();
    assert_eq!(seen.header("x-auth-subject"), Some("CN=client-a"));
    assert_eq!(
        seen.headers
            .iter()
            .filter(|(n, _)| n == "x-auth-subject")
            .count(),
        1
    );

    // A valid certificate whose subject the route does not allow: 403.
    let other = client_for(&ca, addr, &["gw.test"])
        .identity(clients.leaf("client-b", &["client-b.test"]).identity())
        .build()
        .unwrap();
    assert_eq!(other.get(&url).send().await.unwrap().status(), 403);
}

/// A one-request-per-connection HTTPS backend that requires a client certificate from
/// `clients` and answers with the client's certificate count.
async fn tls_backend(server: &Leaf, clients: &Ca) -> SocketAddr {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_slice(clients.pem.as_bytes()).unwrap())
        .unwrap();
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(
            vec![CertificateDer::from(server.der.clone())],
            PrivateKeyDer::from_pem_slice(server.key.as_bytes()).unwrap(),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let certs = tls.get_ref().1.peer_certificates().map_or(0, <[_]>::len);
                let body = format!("tls backend, client certificates: {certs}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaches_a_tls_backend_over_mtls_and_answers_502_with_the_wrong_ca() {
    let certs = tempfile::tempdir().unwrap();
    let backend_ca = Ca::new("backend ca");
    let gw_clients = Ca::new("gateway clients ca");
    let wrong = Ca::new("wrong ca");
    let server = backend_ca.leaf("backend", &["backend.test"]);
    let backend = tls_backend(&server, &gw_clients).await;
    std::fs::write(certs.path().join("backend-ca.pem"), &backend_ca.pem).unwrap();
    std::fs::write(certs.path().join("wrong-ca.pem"), &wrong.pem).unwrap();
    gw_clients
        .leaf("gateway", &["gateway.test"])
        .write(certs.path(), "client");
    let d = certs.path().display();
    let (addr, admin) = addrs();
    let cfg = format!(
        "server:\n  threads: 2\n  grace_period: 0s\n  watch_config: false\nadmin:\n  address: \"{admin}\"\nlisteners:\n  - {{ name: public, address: \"{addr}\" }}\nupstreams:\n  secure:\n    backends: [{{ address: \"{backend}\" }}]\n    tls: {{ sni: backend.test, ca_file: \"{d}/backend-ca.pem\", client_cert_file: \"{d}/client.crt\", client_key_file: \"{d}/client.key\" }}\n  mistrusted:\n    backends: [{{ address: \"{backend}\" }}]\n    tls: {{ sni: backend.test, ca_file: \"{d}/wrong-ca.pem\", client_cert_file: \"{d}/client.crt\", client_key_file: \"{d}/client.key\" }}\nroutes:\n  - {{ name: good, match: {{ path_prefix: /good }}, upstream: secure }}\n  - {{ name: bad, match: {{ path_prefix: /bad }}, upstream: mistrusted }}\n"
    );
    let gw = Gateway::start_with(&cfg, addr, admin).await;
    let c = crate::support::client();

    let r = c.get(gw.url("/good")).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", gw.stderr());
    assert_eq!(
        r.text().await.unwrap(),
        "tls backend, client certificates: 1"
    );

    let r = c.get(gw.url("/bad")).send().await.unwrap();
    assert_eq!(r.status(), 502);
}

/// One TLS client with its own session store, as a distinct returning browser or device is.
fn resuming_client(ca: &Ca) -> Arc<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject as _;
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from_pem_slice(ca.pem.as_bytes()).unwrap())
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = rustls::client::Resumption::in_memory_sessions(4);
    Arc::new(config)
}

/// One request on a new connection; whether its handshake resumed a session.
async fn resumed(config: &Arc<rustls::ClientConfig>, addr: SocketAddr) -> bool {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("a.test").unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(Arc::clone(config))
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // Reading the whole answer also takes the session tickets sent after the handshake.
    let mut answer = Vec::new();
    let _ = tls.read_to_end(&mut answer).await;
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn returning_clients_resume_beyond_rustls_defaults_and_handshakes_are_bounded() {
    let backend = Backend::start("app").await;
    let certs = tempfile::tempdir().unwrap();
    let ca = Ca::new("test ca");
    ca.leaf("a", &["a.test"]).write(certs.path(), "a");
    let d = certs.path().display();
    let rest = format!(
        "upstreams:\n  app:\n    backends: [{{ address: \"{}\" }}]\nroutes: [{{ name: all, upstream: app }}]\n",
        backend.addr
    );
    let pair = format!("certificates: [{{ cert_file: \"{d}/a.crt\", key_file: \"{d}/a.key\" }}]");
    let (addr, admin) = addrs();
    let cfg = tls_config(
        addr,
        admin,
        "watch_config: false\n  request_header_timeout: 1s",
        &format!("{{ {pair} }}"),
        &rest,
    );
    let gw = Gateway::start_with(&cfg, addr, admin).await;

    // 300 distinct clients come back once each: rustls' defaults (256 sessions, two per TLS 1.3
    // connection, no tickets) resumed none of them at this count.
    let clients: Vec<_> = (0..300).map(|_| resuming_client(&ca)).collect();
    for c in &clients {
        assert!(!resumed(c, addr).await, "first visit cannot resume");
    }
    let mut back = 0;
    for c in &clients {
        back += usize::from(resumed(c, addr).await);
    }
    assert_eq!(back, clients.len(), "returning clients that resumed");

    // A client that never finishes its handshake is closed at the head deadline, and one that
    // speaks plain HTTP to the TLS port fails its handshake; both are counted.
    let started = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf))
        .await
        .expect("closed by the gateway")
        .unwrap_or(0);
    assert_eq!(n, 0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    let mut plain = tokio::net::TcpStream::connect(addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(10), plain.read(&mut buf)).await;
    let timeouts = gw
        .metric(
            "portcullis_tls_handshake_failures_total",
            &["reason=\"timeout\""],
        )
        .await;
    let errors = gw
        .metric(
            "portcullis_tls_handshake_failures_total",
            &["reason=\"error\""],
        )
        .await;
    assert!(
        timeouts >= 1.0 && errors >= 1.0,
        "timeouts {timeouts}, errors {errors}"
    );
    drop(gw);

    // Without a cache and tickets nothing resumes: the test above measures the settings.
    let (addr, admin) = addrs();
    let cfg = tls_config(
        addr,
        admin,
        "watch_config: false",
        &format!("{{ {pair}, session_cache: 0, session_tickets: false }}"),
        &rest,
    );
    let _gw = Gateway::start_with(&cfg, addr, admin).await;
    let c = resuming_client(&ca);
    assert!(!resumed(&c, addr).await);
    assert!(!resumed(&c, addr).await, "resumed without cache or tickets");
}
