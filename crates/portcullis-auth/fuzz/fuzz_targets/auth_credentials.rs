//! Credentials from hostile clients through the real authenticator, before and after the
//! signature: none may panic. Four routes share one issuer, trusted with an HS256 secret and
//! an ES256 key generated at start-up (never stored), and read the token from each place a
//! route can name (Authorization: Bearer, a header, a cookie, the query); the first also takes
//! API keys from `X-API-Key` and `?api_key=`. The first input byte picks the route and the mode:
//!
//! - raw: the rest is the Authorization value, the API key, the token header, the cookie and
//!   the query string at once (header parsing, JWS splitting, base64url, JOSE header, JSON);
//! - signed: the rest is a JOSE header and a claims set (split at the first 0xff byte), signed
//!   with a trusted key so the claims checks, identity extraction, authorization and identity
//!   headers see arbitrary claims. Flags may set `alg` to the key's and fill `iss`, `aud`,
//!   `exp`, `sub` so that more inputs get that far.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::Engine;
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis_auth::{hash_api_key, AuthShared, Authenticator, ManualClock};
use portcullis_core::RequestView;
use serde_json::{json, Map, Value};

const NOW: u64 = 1_800_000_000;
const ISSUER: &str = "https://issuer.fuzz";
const SECRET_ENV: &str = "PORTCULLIS_FUZZ_HS256_SECRET";
/// A test-only secret (the fuzzer must be able to sign); at least 32 bytes as HS256 requires.
const SECRET: &str = "portcullis-fuzz-only-hs256-secret-0123456789";
const API_KEY: &str = "fuzz-api-key-0001";

struct Harness {
    rt: tokio::runtime::Runtime,
    routes: Vec<Authenticator>,
    ec: EcdsaKeyPair,
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let ec = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let p = ec.public_key().as_ref();
        let jwk = json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1", "x": b64(&p[1..33]), "y": b64(&p[33..65])}]});
        let dir = std::env::temp_dir().join(format!("portcullis-auth-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jwks = dir.join("jwks.json");
        std::fs::write(&jwks, jwk.to_string()).unwrap();
        std::env::set_var(SECRET_ENV, SECRET);

        let issuer = format!(
            r#"{{ issuer: "{ISSUER}", audiences: [api, other], algorithms: [HS256, ES256], jwks_file: "{}", hmac: {{ secret_env: {SECRET_ENV} }}, roles_claim: realm_access.roles, plan_claim: plan, consumer_claim: client_id, required_claims: [exp, sub] }}"#,
            jwks.display()
        );
        let routes = [
            format!(
                r#"{{ jwt: {{ issuers: [{issuer}] }}, api_keys: {{ query: api_key, keys: [{{ consumer: shop, hash: "{}", plan: pro, scopes: [read] }}] }}, require_any_scope: [read, write] }}"#,
                hash_api_key(API_KEY)
            ),
            format!(r#"{{ jwt: {{ issuers: [{issuer}], token_cookie: session }}, require_any_role: [admin] }}"#),
            format!(r#"{{ jwt: {{ issuers: [{issuer}], token_header: x-token, max_token_bytes: 4096 }}, require_claims: {{ tenant: [a, b] }} }}"#),
            format!(r#"{{ jwt: {{ issuers: [{issuer}], token_query: access_token }}, require_scopes: [read] }}"#),
        ];
        let mut text = String::from("listeners: [{ name: web, address: \"127.0.0.1:8080\" }]\nupstreams: { app: { backends: [{ address: \"127.0.0.1:9001\" }] } }\nroutes:\n");
        for (i, auth) in routes.iter().enumerate() {
            text.push_str(&format!("  - {{ name: r{i}, upstream: app, auth: {auth} }}\n"));
        }
        let config = portcullis_config::parse_str(&dir.join("auth.yaml").to_string_lossy(), &text)
            .unwrap_or_else(|e| panic!("fuzz config: {e}"));
        // A small verified-token cache: hits, misses and evictions all happen.
        let shared = AuthShared::with_capacity(Arc::new(ManualClock::at_unix(NOW)), 64, 0).unwrap();
        let routes = config
            .routes
            .iter()
            .map(|r| Authenticator::from_spec(r.auth.as_ref().unwrap(), &shared).unwrap())
            .collect();
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        Harness { rt, routes, ec }
    })
}

/// Signs `header.payload` (both raw bytes) with the trusted key for `alg`.
fn sign(h: &Harness, es256: bool, header: &[u8], payload: &[u8]) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = if es256 {
        h.ec.sign(&SystemRandom::new(), input.as_bytes())
            .unwrap()
            .as_ref()
            .to_vec()
    } else {
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, SECRET.as_bytes());
        aws_lc_rs::hmac::sign(&key, input.as_bytes())
            .as_ref()
            .to_vec()
    };
    format!("{input}.{}", b64(&sig))
}

/// Rewrites a JSON object with `edit`; other bytes stay as they are.
fn edit_object(bytes: &[u8], edit: impl FnOnce(&mut Map<String, Value>)) -> Vec<u8> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(mut m)) => {
            edit(&mut m);
            Value::Object(m).to_string().into_bytes()
        }
        _ => bytes.to_vec(),
    }
}

fn run(h: &Harness, route: usize, headers: &HeaderMap, query: Option<&str>) {
    let auth = &h.routes[route];
    let req = RequestView {
        method: "GET",
        path: "/",
        query,
        host: Some("fuzz.test"),
        headers,
        client_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        route: "r",
    };
    if let Ok(Some(id)) = h.rt.block_on(auth.check(&req, None)) {
        let _ = auth.upstream_headers(&id);
    }
}

fuzz_target!(|data: &[u8]| {
    let h = harness();
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let route = usize::from(flags & 3) % h.routes.len();
    let mut headers = HeaderMap::new();
    if flags & 4 == 0 {
        // Raw: the same bytes in every place a credential is read from.
        let text = String::from_utf8_lossy(rest);
        let _ = hash_api_key(&text);
        if let Ok(v) = HeaderValue::from_bytes(rest) {
            headers.append(http::header::AUTHORIZATION, v.clone());
            if flags & 8 != 0 {
                headers.append("x-api-key", v.clone());
            }
            headers.append("x-token", v.clone());
            headers.append(http::header::COOKIE, v);
        }
        if let Ok(v) = HeaderValue::from_bytes(&[b"Bearer ", rest].concat()) {
            headers.append(http::header::AUTHORIZATION, v);
        }
        run(h, route, &headers, Some(&text));
        // One Authorization header only, so a bearer token gets past the duplicate check.
        headers.remove(http::header::AUTHORIZATION);
        if let Ok(v) = HeaderValue::from_bytes(&[b"Bearer ", rest].concat()) {
            headers.insert(http::header::AUTHORIZATION, v);
        }
        run(h, route, &headers, None);
        return;
    }
    // Signed: arbitrary header and claims under a trusted signature.
    let es256 = flags & 8 != 0;
    let (header, payload) = match rest.iter().position(|b| *b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&b"{}"[..], rest),
    };
    let header = if flags & 16 != 0 {
        edit_object(header, |m| {
            m.insert("alg".into(), if es256 { "ES256" } else { "HS256" }.into());
        })
    } else {
        header.to_vec()
    };
    let payload = if flags & 32 != 0 {
        edit_object(payload, |m| {
            m.entry("iss").or_insert(ISSUER.into());
            m.entry("aud").or_insert("api".into());
            m.entry("exp").or_insert((NOW + 600).into());
            m.entry("sub").or_insert("fuzz".into());
        })
    } else {
        payload.to_vec()
    };
    let token = sign(h, es256, &header, &payload);
    let Ok(bearer) = HeaderValue::from_str(&format!("Bearer {token}")) else {
        return;
    };
    let Ok(plain) = HeaderValue::from_str(&token) else {
        return;
    };
    headers.insert(http::header::AUTHORIZATION, bearer);
    headers.insert("x-token", plain.clone());
    let cookie = HeaderValue::from_str(&format!("session={token}")).unwrap_or(plain);
    headers.insert(http::header::COOKIE, cookie);
    let query = format!("access_token={token}");
    run(h, route, &headers, Some(&query));
});
