//! Authentication through the real gateway: a JWKS endpoint served over real HTTP, keys generated
//! at test time, tokens signed here.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::Engine as _;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::support::{client, pool, Backend, Gateway};

fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

struct EcKey {
    kid: String,
    pair: EcdsaKeyPair,
}

impl EcKey {
    fn generate(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        EcKey {
            kid: kid.to_owned(),
            pair,
        }
    }

    fn jwk(&self) -> serde_json::Value {
        let p = self.pair.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "kid": self.kid, "x": b64(&p[1..33]), "y": b64(&p[33..65])})
    }

    fn sign_as(&self, kid: &str, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    fn sign(&self, claims: &serde_json::Value) -> String {
        self.sign_as(&self.kid, claims)
    }
}

fn hs256(secret: &[u8], claims: &serde_json::Value) -> String {
    let header = serde_json::json!({"alg": "HS256", "typ": "JWT"});
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    format!(
        "{input}.{}",
        b64(aws_lc_rs::hmac::sign(&key, input.as_bytes()).as_ref())
    )
}

fn claims(sub: &str, scope: &str, exp_in: i64) -> serde_json::Value {
    let exp = i64::try_from(now()).unwrap() + exp_in;
    serde_json::json!({"iss": "https://id.test", "aud": "api", "sub": sub, "scope": scope, "exp": exp, "iat": now()})
}

/// A JWKS endpoint: serves whatever document it holds, counts fetches, can go down.
struct Jwks {
    addr: std::net::SocketAddr,
    doc: Arc<Mutex<String>>,
    fetches: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Jwks {
    async fn start(keys: &[&EcKey]) -> Jwks {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let doc = Arc::new(Mutex::new(String::new()));
        let fetches = Arc::new(AtomicU64::new(0));
        let (d, f) = (Arc::clone(&doc), Arc::clone(&fetches));
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (d, f) = (Arc::clone(&d), Arc::clone(&f));
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    f.fetch_add(1, Ordering::SeqCst);
                    let body = d.lock().clone();
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(body.as_bytes()).await;
                });
            }
        });
        let j = Jwks {
            addr,
            doc,
            fetches,
            task,
        };
        j.serve(keys);
        j
    }

    fn serve(&self, keys: &[&EcKey]) {
        let keys: Vec<_> = keys.iter().map(|k| k.jwk()).collect();
        *self.doc.lock() = serde_json::json!({ "keys": keys }).to_string();
    }

    fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::SeqCst)
    }

    fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Jwks {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn get(gw: &Gateway, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = client().get(gw.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwks_rotation_outage_and_unknown_kid_flood() {
    let app = Backend::start("app").await;
    let k1 = EcKey::generate("k1");
    let k2 = EcKey::generate("k2");
    let jwks = Jwks::start(&[&k1]).await;
    let cfg = format!(
        "{}routes:\n  - name: orders\n    upstream: pool\n    auth:\n      jwt:\n        issuers:\n          - issuer: https://id.test\n            audiences: [api]\n            algorithms: [ES256]\n            jwks_url: \"http://{}/jwks\"\n            jwks: {{ refresh_interval: 1h, min_refresh_interval: 2s }}\n",
        pool(&[(&app, 1)], ""),
        jwks.addr
    );
    let gw = Gateway::start(&cfg).await;

    let r = get(
        &gw,
        "/orders",
        Some(&k1.sign(&claims("alice", "orders:read", 300))),
    )
    .await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    assert_eq!(app.last().header("x-auth-subject"), Some("alice"));
    assert_eq!(
        app.last().header("authorization"),
        None,
        "the token is not forwarded by default"
    );

    // Rotation: k2 appears, k1 is removed. No restart.
    jwks.serve(&[&k2]);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let r = get(
        &gw,
        "/orders",
        Some(&k2.sign(&claims("bob", "orders:read", 300))),
    )
    .await;
    assert_eq!(r.status(), 200, "a new kid is fetched on demand");
    assert_eq!(app.last().header("x-auth-subject"), Some("bob"));
    let r = get(
        &gw,
        "/orders",
        Some(&k1.sign(&claims("carol", "orders:read", 300))),
    )
    .await;
    assert_eq!(r.status(), 401, "the removed key no longer verifies");

    // A flood of unknown kids: at most one fetch per minimum interval.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let before = jwks.fetches();
    for i in 0..40 {
        let t = k2.sign_as(
            &format!("random-{i}"),
            &claims("mallory", "orders:read", 300),
        );
        assert_eq!(get(&gw, "/orders", Some(&t)).await.status(), 401);
    }
    let during = jwks.fetches() - before;
    assert!(
        during <= 1,
        "{during} fetches for 40 unknown kids inside one minimum interval"
    );

    // The identity provider goes down: cached keys keep working.
    jwks.stop();
    let fetched = jwks.fetches();
    let r = get(
        &gw,
        "/orders",
        Some(&k2.sign(&claims("dave", "orders:read", 300))),
    )
    .await;
    assert_eq!(
        r.status(),
        200,
        "cached keys verify while the JWKS endpoint is down"
    );
    assert_eq!(jwks.fetches(), fetched);
    let metrics = gw.metrics().await;
    assert!(
        metrics.contains("portcullis_auth_"),
        "auth counters exported"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expiry_scopes_api_keys_and_spoofed_identity_headers() {
    let app = Backend::start("app").await;
    let dir = tempfile::tempdir().unwrap();
    let secret = b"an-hs256-test-secret-of-32-bytes!!";
    std::fs::write(dir.path().join("hs.secret"), secret).unwrap();
    let key = "pk_live_4f9a8b7c6d5e4f3a2b1c";
    let hash = portcullis_auth::hash_api_key(key);
    let cfg = format!(
        "{}routes:
  - name: write
    match: {{ path_prefix: /orders, methods: [POST] }}
    upstream: pool
    auth:
      jwt:
        issuers:
          - issuer: https://id.test
            audiences: [api]
            algorithms: [HS256]
            hmac: {{ secret_file: \"{}\", algorithm: HS256 }}
      require_scopes: [orders:write]
  - name: read
    match: {{ path_prefix: /orders }}
    upstream: pool
    auth:
      jwt:
        issuers:
          - issuer: https://id.test
            audiences: [api]
            algorithms: [HS256]
            hmac: {{ secret_file: \"{}\", algorithm: HS256 }}
  - name: partner
    match: {{ path_prefix: /partner }}
    upstream: pool
    auth:
      api_keys:
        keys:
          - {{ consumer: acme, hash: \"{hash}\", plan: pro }}
  - name: public
    upstream: pool
",
        pool(&[(&app, 1)], ""),
        dir.path().join("hs.secret").display(),
        dir.path().join("hs.secret").display(),
    );
    let gw = Gateway::start(&cfg).await;
    let c = client();

    // Missing credential: 401 with a bare challenge.
    let r = c.get(gw.url("/orders/1")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"]["status"], 401);

    // Expired: 401 invalid_token.
    let expired = hs256(secret, &claims("erin", "orders:read", -3600));
    let r = c
        .get(gw.url("/orders/1"))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");

    // Valid token, read scope only: GET passes, POST is 403 insufficient_scope.
    let reader = hs256(secret, &claims("frank", "orders:read", 300));
    let r = c
        .get(gw.url("/orders/1"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c
        .post(gw.url("/orders"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let challenge = r
        .headers()
        .get("www-authenticate")
        .unwrap()
        .to_str()
        .unwrap();
    assert!(challenge.contains("insufficient_scope"), "{challenge}");
    let writer = hs256(secret, &claims("gina", "orders:read orders:write", 300));
    let r = c
        .post(gw.url("/orders"))
        .bearer_auth(&writer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A forged signature.
    let forged = hs256(
        b"not-the-secret-not-the-secret-xx",
        &claims("root", "orders:write", 300),
    );
    let r = c
        .post(gw.url("/orders"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // API keys: hit and miss.
    let r = c
        .get(gw.url("/partner/x"))
        .header("X-API-Key", key)
        .header("X-Auth-Consumer", "evil")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = app.last();
    assert_eq!(seen.header("x-auth-consumer"), Some("acme"));
    assert_eq!(seen.header("x-auth-plan"), Some("pro"));
    assert_eq!(
        seen.header("x-api-key"),
        None,
        "the key is not forwarded by default"
    );
    let r = c
        .get(gw.url("/partner/x"))
        .header("X-API-Key", "pk_live_wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // Spoofed identity headers never reach the backend, on authenticated or anonymous routes.
    let r = c
        .get(gw.url("/orders/2"))
        .bearer_auth(&reader)
        .header("X-Auth-Subject", "admin")
        .header("X-Auth-Scopes", "everything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.last().header("x-auth-subject"), Some("frank"));
    assert_ne!(app.last().header("x-auth-scopes"), Some("everything"));
    let r = c
        .get(gw.url("/public"))
        .header("X-Auth-Subject", "admin")
        .header("X-Auth-Plan", "pro")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.last().header("x-auth-subject"), None);
    assert_eq!(app.last().header("x-auth-plan"), None);

    // Denies are counted and the token never reaches a log.
    assert!(
        gw.metric(
            "portcullis_denied_total",
            &["reason=\"insufficient_scope\""]
        )
        .await
            >= 1.0
    );
    let logs = format!("{}{}", gw.stdout(), gw.stderr());
    assert!(
        !logs.contains(&reader) && !logs.contains(key),
        "a credential reached a log"
    );
}
