//! Test helpers: keys generated at test time, hand-signed tokens, a loopback identity provider.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, RsaPublicKeyComponents, ECDSA_P256_SHA256_FIXED_SIGNING,
    RSA_PKCS1_SHA256,
};
use base64::Engine;
use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub fn b64(bytes: impl AsRef<[u8]>) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub struct RsaKey {
    pub kid: String,
    pair: RsaKeyPair,
}

impl RsaKey {
    pub fn generate(kid: &str) -> Self {
        let pair = RsaKeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        Self {
            kid: kid.to_owned(),
            pair,
        }
    }

    pub fn jwk(&self) -> serde_json::Value {
        let c = RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public_key());
        serde_json::json!({"kty": "RSA", "kid": self.kid, "alg": "RS256", "use": "sig", "n": b64(&c.n), "e": b64(&c.e)})
    }

    /// The public key's modulus bytes (for key-confusion attempts).
    pub fn public_n(&self) -> Vec<u8> {
        RsaPublicKeyComponents::<Vec<u8>>::from(self.pair.public_key()).n
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        self.sign_with_kid(Some(&self.kid), claims)
    }

    pub fn sign_with_kid(&self, kid: Option<&str>, claims: &serde_json::Value) -> String {
        let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
        if let Some(k) = kid {
            header["kid"] = k.into();
        }
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                input.as_bytes(),
                &mut sig,
            )
            .unwrap();
        format!("{input}.{}", b64(sig))
    }
}

pub struct EcKey {
    pub kid: String,
    pair: EcdsaKeyPair,
}

impl EcKey {
    pub fn generate(kid: &str) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        Self {
            kid: kid.to_owned(),
            pair,
        }
    }

    pub fn jwk(&self) -> serde_json::Value {
        let p = self.pair.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "x": b64(&p[1..33]), "y": b64(&p[33..65])})
    }

    pub fn sign(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"alg": "ES256", "kid": self.kid});
        let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
        let sig = self
            .pair
            .sign(&SystemRandom::new(), input.as_bytes())
            .unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }
}

pub fn hs256(secret: &[u8], header: &serde_json::Value, claims: &serde_json::Value) -> String {
    let input = format!("{}.{}", b64(header.to_string()), b64(claims.to_string()));
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
    let tag = aws_lc_rs::hmac::sign(&key, input.as_bytes());
    format!("{input}.{}", b64(tag.as_ref()))
}

/// What the fake identity provider answers.
#[derive(Default)]
pub struct IdpState {
    pub jwks: String,
    pub jwks_status: u16,
    /// token -> introspection answer.
    pub introspection: HashMap<String, serde_json::Value>,
    pub introspection_status: u16,
    pub last_authorization: Option<String>,
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 serving `/jwks` and `/introspect`, counting requests.
pub struct Idp {
    pub addr: SocketAddr,
    pub state: Arc<Mutex<IdpState>>,
    pub jwks_hits: Arc<AtomicU64>,
    pub introspect_hits: Arc<AtomicU64>,
}

impl Idp {
    pub async fn start(jwks: serde_json::Value) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(Mutex::new(IdpState {
            jwks: jwks.to_string(),
            jwks_status: 200,
            introspection_status: 200,
            ..IdpState::default()
        }));
        let jwks_hits = Arc::new(AtomicU64::new(0));
        let introspect_hits = Arc::new(AtomicU64::new(0));
        let (s, j, i) = (state.clone(), jwks_hits.clone(), introspect_hits.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let (s, j, i) = (s.clone(), j.clone(), i.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    let head_end = loop {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break p + 4;
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let n = sock.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            break;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                    let (status, payload) = if path.starts_with("/jwks") {
                        j.fetch_add(1, Ordering::SeqCst);
                        let st = s.lock();
                        (st.jwks_status, st.jwks.clone())
                    } else if path.starts_with("/introspect") {
                        i.fetch_add(1, Ordering::SeqCst);
                        let mut st = s.lock();
                        st.last_authorization = head.lines().find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("authorization")
                                .then(|| v.trim().to_owned())
                        });
                        let token = body
                            .split('&')
                            .find_map(|kv| kv.strip_prefix("token="))
                            .unwrap_or("")
                            .to_owned();
                        let answer = st
                            .introspection
                            .get(&token)
                            .cloned()
                            .unwrap_or(serde_json::json!({"active": false}));
                        (st.introspection_status, answer.to_string())
                    } else {
                        (404, String::new())
                    };
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                        payload.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Self {
            addr,
            state,
            jwks_hits,
            introspect_hits,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn set_jwks(&self, jwks: serde_json::Value) {
        self.state.lock().jwks = jwks.to_string();
    }

    pub fn jwks_hits(&self) -> u64 {
        self.jwks_hits.load(Ordering::SeqCst)
    }
}

pub fn config(auth_yaml: &str) -> portcullis_config::RouteAuth {
    let text = format!(
        "listeners: [{{ name: web, address: \"127.0.0.1:8080\" }}]\nupstreams: {{ app: {{ backends: [{{ address: \"127.0.0.1:9001\" }}] }} }}\nroutes:\n  - name: r\n    upstream: app\n    auth: {auth_yaml}\n"
    );
    let cfg = portcullis_config::parse_str("t.yaml", &text).unwrap_or_else(|e| panic!("{e}"));
    cfg.routes[0].auth.clone().unwrap()
}

pub struct Req {
    pub headers: http::HeaderMap,
    pub query: Option<String>,
}

impl Req {
    pub fn new() -> Self {
        Self {
            headers: http::HeaderMap::new(),
            query: None,
        }
    }

    pub fn bearer(token: &str) -> Self {
        let mut r = Self::new();
        r.headers.insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        r
    }

    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers
            .append(name, http::HeaderValue::from_str(value).unwrap());
        self
    }

    pub fn view(&self) -> portcullis_core::RequestView<'_> {
        portcullis_core::RequestView {
            method: "GET",
            path: "/",
            query: self.query.as_deref(),
            host: Some("api.test"),
            headers: &self.headers,
            client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            route: "r",
        }
    }
}

/// Polls `cond` every 10ms for at most `limit`.
pub async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}
