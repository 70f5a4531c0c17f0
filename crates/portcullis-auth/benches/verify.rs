//! Cost of one `Authenticator::check` with a bearer JWT, on a verified-token cache miss (full
//! parse + signature + claims) and on a hit, for RS256, ES256 and HS256.
//!
//! `CARGO_TARGET_DIR=/work/target-auth cargo bench -p portcullis-auth --bench verify`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use portcullis_auth::{AuthShared, Authenticator, ManualClock};
use serde_json::json;
use support::{config, hs256, EcKey, Req, RsaKey};

const NOW: u64 = 1_800_000_000;
const SECRET: &str = "bench-hmac-secret-0123456789abcdef!!";

fn bench(c: &mut Criterion) {
    let rsa = RsaKey::generate("r1");
    let ec = EcKey::generate("e1");
    let dir = std::env::temp_dir().join(format!("pc-auth-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("jwks.json"),
        json!({"keys": [rsa.jwk(), ec.jwk()]}).to_string(),
    )
    .unwrap();
    std::fs::write(dir.join("hs.secret"), SECRET).unwrap();
    let spec = config(&format!(
        r#"{{ jwt: {{ issuers: [{{ issuer: "https://id.test", audiences: [api], algorithms: [RS256, ES256, HS256], jwks_file: "{}", hmac: {{ secret_file: "{}" }} }}] }}, require_scopes: [read] }}"#,
        dir.join("jwks.json").display(),
        dir.join("hs.secret").display()
    ));
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let claims = json!({"iss": "https://id.test", "aud": "api", "sub": "u", "exp": NOW + 3600, "scope": "read write"});
    let tokens = [
        ("RS256", rsa.sign(&claims)),
        ("ES256", ec.sign(&claims)),
        (
            "HS256",
            hs256(SECRET.as_bytes(), &json!({"alg": "HS256"}), &claims),
        ),
    ];
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let no_cache = AuthShared::with_capacity(clock.clone(), 0, 0).unwrap();
    let miss = Authenticator::from_spec(&spec, &no_cache).unwrap();
    let cached = AuthShared::new(clock.clone()).unwrap();
    let hit = Authenticator::from_spec(&spec, &cached).unwrap();
    for (alg, token) in &tokens {
        let req = Req::bearer(token);
        assert!(rt.block_on(miss.check(&req.view(), None)).is_ok(), "{alg}");
        c.bench_function(&format!("verify_miss_{alg}"), |b| {
            b.iter(|| rt.block_on(miss.check(&req.view(), None)).is_ok())
        });
        c.bench_function(&format!("verify_hit_{alg}"), |b| {
            b.iter(|| rt.block_on(hit.check(&req.view(), None)).is_ok())
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
