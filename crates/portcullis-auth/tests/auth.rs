//! End-to-end behaviour of the auth crate against a loopback identity provider, with a manual
//! clock. No fixed ports, no sleeps as synchronisation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use portcullis_auth::{
    hash_api_key, AuthMetrics, AuthShared, Authenticator, ClientCertIdentity, ManualClock,
};
use serde_json::json;
use support::*;

const NOW: u64 = 1_800_000_000;

fn claims(extra: serde_json::Value) -> serde_json::Value {
    let mut c = json!({"iss": "https://id.test", "aud": "api", "sub": "user-1", "iat": NOW, "exp": NOW + 600, "scope": "orders:read profile"});
    if let (Some(c), Some(e)) = (c.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            c.insert(k.clone(), v.clone());
        }
    }
    c
}

fn jwks_auth(idp: &Idp, extra: &str) -> portcullis_config::RouteAuth {
    config(&format!(
        r#"{{ jwt: {{ issuers: [{{ issuer: "https://id.test", audiences: [api], jwks_url: "{}", jwks: {{ refresh_interval: 60s, min_refresh_interval: 10s, max_stale: 1h }} }}] }} {extra} }}"#,
        idp.url("/jwks")
    ))
}

fn setup(clock: &Arc<ManualClock>) -> AuthShared {
    AuthShared::new(clock.clone()).unwrap()
}

#[tokio::test]
async fn accepts_a_valid_rs256_token_from_a_jwks_url_and_propagates_identity() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    assert_eq!(idp.jwks_hits(), 1);

    let token = rsa.sign(&claims(json!({"client_id": "shop"})));
    let id = auth
        .check(&Req::bearer(&token).view(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id.method, "jwt");
    assert_eq!(id.subject.as_deref(), Some("user-1"));
    assert_eq!(id.consumer.as_deref(), Some("shop"));
    assert_eq!(id.scopes, vec!["orders:read", "profile"]);

    let headers = auth.upstream_headers(&id);
    assert!(headers
        .iter()
        .any(|(n, v)| n == "x-auth-subject" && v == "user-1"));
    assert!(headers
        .iter()
        .any(|(n, v)| n == "x-auth-scopes" && v == "orders:read profile"));
    // Spoofed inbound identity headers and the token itself are stripped before upstream.
    let strip = auth.strip_headers();
    for name in [
        "x-auth-subject",
        "x-auth-consumer",
        "x-auth-scopes",
        "x-auth-plan",
        "authorization",
    ] {
        assert!(strip.iter().any(|h| h == name), "{name} not stripped");
    }
    assert!(!auth.forward_credential());
}

#[tokio::test]
async fn es256_tokens_verify_and_psychic_signatures_do_not() {
    let ec = EcKey::generate("e1");
    let idp = Idp::start(json!({"keys": [ec.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    let token = ec.sign(&claims(json!({})));
    assert!(auth.check(&Req::bearer(&token).view(), None).await.is_ok());
    let (input, _) = token.rsplit_once('.').unwrap();
    let psychic = format!("{input}.{}", b64([0u8; 64]));
    let deny = auth
        .check(&Req::bearer(&psychic).view(), None)
        .await
        .unwrap_err();
    assert_eq!(deny.status, 401);
}

#[tokio::test]
async fn picks_up_key_rotation_without_restart_and_drops_removed_keys() {
    let old = RsaKey::generate("old");
    let new = RsaKey::generate("new");
    let idp = Idp::start(json!({"keys": [old.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    let old_token = old.sign(&claims(json!({})));
    assert!(auth
        .check(&Req::bearer(&old_token).view(), None)
        .await
        .is_ok());

    idp.set_jwks(json!({"keys": [new.jwk()]}));
    clock.advance(Duration::from_secs(61));
    shared.refresh_due().await;
    assert_eq!(idp.jwks_hits(), 2);

    let new_token = new.sign(&claims(json!({})));
    assert!(auth
        .check(&Req::bearer(&new_token).view(), None)
        .await
        .is_ok());
    // The old token was cached as verified; the key set changed, so it is checked again and fails.
    let deny = auth
        .check(&Req::bearer(&old_token).view(), None)
        .await
        .unwrap_err();
    assert_eq!(deny.status, 401);
}

#[tokio::test]
async fn keeps_serving_cached_keys_while_the_jwks_endpoint_is_down() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;

    idp.state.lock().jwks_status = 500;
    clock.advance(Duration::from_secs(61));
    shared.refresh_due().await;
    assert_eq!(AuthMetrics::get(&shared.metrics().jwks_fetch_failures), 1);
    let token = rsa.sign(&claims(json!({"jti": "fresh"})));
    assert!(auth.check(&Req::bearer(&token).view(), None).await.is_ok());

    // Stale-on-error is bounded: past refresh_interval + max_stale the keys are gone.
    clock.advance(Duration::from_secs(3600));
    let token = rsa.sign(&claims(json!({"jti": "later", "exp": NOW + 86_400})));
    assert_eq!(
        auth.check(&Req::bearer(&token).view(), None)
            .await
            .unwrap_err()
            .status,
        401
    );
}

#[tokio::test]
async fn an_unknown_kid_flood_triggers_at_most_one_fetch_per_min_interval() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Arc::new(Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap());
    shared.refresh_due().await;
    assert_eq!(idp.jwks_hits(), 1);
    clock.advance(Duration::from_secs(11));

    let mut tasks = Vec::new();
    for i in 0..50 {
        let token = rsa.sign_with_kid(Some(&format!("random-{i}")), &claims(json!({})));
        let auth = auth.clone();
        tasks.push(tokio::spawn(async move {
            auth.check(&Req::bearer(&token).view(), None)
                .await
                .map(|_| ())
                .map_err(|d| d.status)
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Err(401));
    }
    assert_eq!(idp.jwks_hits(), 2, "one fetch for the whole flood");
    assert_eq!(
        AuthMetrics::get(&shared.metrics().jwks_unknown_kid_fetches),
        1
    );

    // Within the minimum interval nothing more is fetched; after it, one more fetch.
    let token = rsa.sign_with_kid(Some("again"), &claims(json!({})));
    assert!(auth.check(&Req::bearer(&token).view(), None).await.is_err());
    assert_eq!(idp.jwks_hits(), 2);
    clock.advance(Duration::from_secs(11));
    assert!(auth.check(&Req::bearer(&token).view(), None).await.is_err());
    assert_eq!(idp.jwks_hits(), 3);
}

#[tokio::test]
async fn a_new_kid_is_fetched_on_demand_before_the_refresh_is_due() {
    let first = RsaKey::generate("a");
    let second = RsaKey::generate("b");
    let idp = Idp::start(json!({"keys": [first.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    idp.set_jwks(json!({"keys": [first.jwk(), second.jwk()]}));
    clock.advance(Duration::from_secs(11));
    let token = second.sign(&claims(json!({})));
    assert!(auth.check(&Req::bearer(&token).view(), None).await.is_ok());
    assert_eq!(idp.jwks_hits(), 2);
}

#[tokio::test]
async fn expired_token_gets_401_with_invalid_token_challenge_and_no_echo() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    let token = rsa.sign(&claims(json!({"exp": NOW - 120})));
    let deny = auth
        .check(&Req::bearer(&token).view(), None)
        .await
        .unwrap_err();
    assert_eq!((deny.status, deny.reason), (401, "auth_expired"));
    let (name, value) = &deny.headers[0];
    assert_eq!(*name, "WWW-Authenticate");
    assert!(
        value.starts_with("Bearer realm=\"portcullis\", error=\"invalid_token\""),
        "{value}"
    );
    let all = format!("{deny:?}");
    assert!(!all.contains(&token[..20]));
}

#[tokio::test]
async fn missing_credentials_get_a_challenge_without_error_code() {
    let idp = Idp::start(json!({"keys": []})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    let deny = auth.check(&Req::new().view(), None).await.unwrap_err();
    assert_eq!((deny.status, deny.reason), (401, "auth_missing"));
    assert_eq!(
        deny.headers,
        vec![("WWW-Authenticate", "Bearer realm=\"portcullis\"".to_owned())]
    );
    let deny = auth
        .check(
            &Req::new()
                .header("authorization", "Basic dXNlcjpwYXNz")
                .view(),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(deny.reason, "auth_missing");
}

#[tokio::test]
async fn missing_scope_gets_403_insufficient_scope() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(
        &jwks_auth(&idp, ", require_scopes: [orders:write]"),
        &shared,
    )
    .unwrap();
    shared.refresh_due().await;
    let token = rsa.sign(&claims(json!({})));
    let deny = auth
        .check(&Req::bearer(&token).view(), None)
        .await
        .unwrap_err();
    assert_eq!((deny.status, deny.reason), (403, "insufficient_scope"));
    assert!(
        deny.headers[0].1.contains("error=\"insufficient_scope\""),
        "{:?}",
        deny.headers
    );
    assert!(deny.headers[0].1.contains("scope=\"orders:write\""));
    let token = rsa.sign(&claims(json!({"scope": "orders:write"})));
    assert!(auth.check(&Req::bearer(&token).view(), None).await.is_ok());
}

#[tokio::test]
async fn verified_tokens_are_cached_until_exp_and_no_longer() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    let token = rsa.sign(&claims(json!({"exp": NOW + 100})));
    for _ in 0..3 {
        assert!(auth.check(&Req::bearer(&token).view(), None).await.is_ok());
    }
    let m = shared.metrics();
    assert_eq!(AuthMetrics::get(&m.token_cache_misses), 1);
    assert_eq!(AuthMetrics::get(&m.token_cache_hits), 2);
    // Past exp + leeway the cached entry is gone and verification says expired.
    clock.advance(Duration::from_secs(131));
    let deny = auth
        .check(&Req::bearer(&token).view(), None)
        .await
        .unwrap_err();
    assert_eq!(deny.reason, "auth_expired");
}

#[tokio::test]
async fn a_token_verified_for_one_audience_does_not_pass_a_route_expecting_another() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let api = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    let admin = Authenticator::from_spec(
        &config(&format!(
            r#"{{ jwt: {{ issuers: [{{ issuer: "https://id.test", audiences: [admin], jwks_url: "{}" }}] }} }}"#,
            idp.url("/jwks")
        )),
        &shared,
    )
    .unwrap();
    shared.refresh_due().await;
    assert_eq!(
        idp.jwks_hits(),
        1,
        "one JWKS cache per URL, shared by routes"
    );
    let token = rsa.sign(&claims(json!({})));
    assert!(api.check(&Req::bearer(&token).view(), None).await.is_ok());
    assert_eq!(
        admin
            .check(&Req::bearer(&token).view(), None)
            .await
            .unwrap_err()
            .status,
        401
    );
}

#[tokio::test]
async fn rejects_hmac_tokens_keyed_with_the_rsa_public_key() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    let forged = hs256(
        &rsa.public_n(),
        &json!({"alg": "HS256", "kid": "k1"}),
        &claims(json!({})),
    );
    assert_eq!(
        auth.check(&Req::bearer(&forged).view(), None)
            .await
            .unwrap_err()
            .status,
        401
    );
}

#[tokio::test]
async fn hmac_secret_from_env_verifies_and_wrong_secret_fails() {
    let secret = "an-hmac-secret-of-at-least-32-bytes!!";
    std::env::set_var("PORTCULLIS_TEST_HS_SECRET", secret);
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(
        &config(r#"{ jwt: { issuers: [{ issuer: "https://id.test", audiences: [api], hmac: { secret_env: PORTCULLIS_TEST_HS_SECRET } }] } }"#),
        &shared,
    )
    .unwrap();
    let good = hs256(
        secret.as_bytes(),
        &json!({"alg": "HS256"}),
        &claims(json!({})),
    );
    assert!(auth.check(&Req::bearer(&good).view(), None).await.is_ok());
    let bad = hs256(b"secret", &json!({"alg": "HS256"}), &claims(json!({})));
    assert!(auth.check(&Req::bearer(&bad).view(), None).await.is_err());
    assert!(
        !format!("{auth:?}").contains(secret),
        "secret in Debug output"
    );
}

#[tokio::test]
async fn api_keys_hit_and_miss_from_header_or_query() {
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let spec = config(&format!(
        r#"{{ api_keys: {{ query: api_key, keys: [{{ consumer: acme, plan: pro, scopes: [read], hash: "{}" }}] }}, require_scopes: [read] }}"#,
        hash_api_key("k-acme-123")
    ));
    let auth = Authenticator::from_spec(&spec, &shared).unwrap();
    let id = auth
        .check(&Req::new().header("x-api-key", "k-acme-123").view(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (id.method, id.consumer.as_deref(), id.plan.as_deref()),
        ("api_key", Some("acme"), Some("pro"))
    );
    let mut q = Req::new();
    q.query = Some("x=1&api_key=k-acme-123".into());
    assert!(auth.check(&q.view(), None).await.is_ok());
    let deny = auth
        .check(&Req::new().header("x-api-key", "k-wrong").view(), None)
        .await
        .unwrap_err();
    assert_eq!((deny.status, deny.reason), (401, "auth_invalid"));
    assert!(!format!("{deny:?}").contains("k-wrong"));
    let deny = auth.check(&Req::new().view(), None).await.unwrap_err();
    assert_eq!(deny.reason, "auth_missing");
    assert!(
        deny.headers[0].1.starts_with("ApiKey realm="),
        "{:?}",
        deny.headers
    );
    assert!(auth.strip_headers().iter().any(|h| h == "x-api-key"));
}

#[tokio::test]
async fn api_key_file_is_reloaded_when_it_changes() {
    let dir = std::env::temp_dir().join(format!("pc-auth-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys.json");
    std::fs::write(
        &file,
        format!(r#"[{{"consumer":"a","hash":"{}"}}]"#, hash_api_key("one")),
    )
    .unwrap();
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(
        &config(&format!(
            r#"{{ api_keys: {{ file: "{}" }} }}"#,
            file.display()
        )),
        &shared,
    )
    .unwrap();
    assert!(auth
        .check(&Req::new().header("x-api-key", "one").view(), None)
        .await
        .is_ok());
    assert!(auth
        .check(&Req::new().header("x-api-key", "two").view(), None)
        .await
        .is_err());
    // Make sure the modification time moves even on coarse file systems.
    let later = std::time::SystemTime::now() + Duration::from_secs(5);
    std::fs::write(
        &file,
        format!(
            r#"{{"keys":[{{"consumer":"b","hash":"{}"}}]}}"#,
            hash_api_key("two")
        ),
    )
    .unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(later)
        .unwrap();
    shared.refresh_due().await;
    assert!(auth
        .check(&Req::new().header("x-api-key", "two").view(), None)
        .await
        .is_ok());
    assert!(auth
        .check(&Req::new().header("x-api-key", "one").view(), None)
        .await
        .is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn introspection_accepts_active_tokens_caches_answers_and_fails_closed() {
    let idp = Idp::start(json!({"keys": []})).await;
    idp.state.lock().introspection.insert(
        "opaque-good".into(),
        json!({"active": true, "sub": "u9", "client_id": "mobile", "scope": "a b", "exp": NOW + 600}),
    );
    std::env::set_var("PORTCULLIS_TEST_INTROSPECT_SECRET", "s3cret");
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(
        &config(&format!(
            r#"{{ introspection: {{ endpoint: "{}", client_id: gw, client_secret_env: PORTCULLIS_TEST_INTROSPECT_SECRET, cache_ttl: 30s }}, require_any_scope: [b] }}"#,
            idp.url("/introspect")
        )),
        &shared,
    )
    .unwrap();
    let id = auth
        .check(&Req::bearer("opaque-good").view(), None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (id.method, id.subject.as_deref(), id.consumer.as_deref()),
        ("introspection", Some("u9"), Some("mobile"))
    );
    assert!(auth
        .check(&Req::bearer("opaque-good").view(), None)
        .await
        .is_ok());
    assert_eq!(
        idp.introspect_hits.load(Ordering::SeqCst),
        1,
        "second answer from the cache"
    );
    assert!(idp
        .state
        .lock()
        .last_authorization
        .as_deref()
        .unwrap()
        .starts_with("Basic "));

    let deny = auth
        .check(&Req::bearer("opaque-revoked").view(), None)
        .await
        .unwrap_err();
    assert_eq!((deny.status, deny.reason), (401, "auth_invalid"));

    idp.state.lock().introspection_status = 500;
    let deny = auth
        .check(&Req::bearer("opaque-other").view(), None)
        .await
        .unwrap_err();
    assert_eq!((deny.status, deny.reason), (503, "auth_unavailable"));
    // The cache entry expires after cache_ttl; then the endpoint is asked again.
    clock.advance(Duration::from_secs(31));
    assert_eq!(
        auth.check(&Req::bearer("opaque-good").view(), None)
            .await
            .unwrap_err()
            .status,
        503
    );
}

#[tokio::test]
async fn client_certificate_identity_and_requirements() {
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(
        &config(r#"{ client_cert: true, require_client_cert: { uri_sans: ["spiffe://corp/ns/a/sa/web"] } }"#),
        &shared,
    )
    .unwrap();
    let good = ClientCertIdentity {
        subject: "CN=web".into(),
        uri_sans: vec!["spiffe://corp/ns/a/sa/web".into()],
        ..ClientCertIdentity::default()
    };
    let other = ClientCertIdentity {
        subject: "CN=other".into(),
        ..ClientCertIdentity::default()
    };
    let id = auth
        .check(&Req::new().view(), Some(&good))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(id.consumer.as_deref(), Some("spiffe://corp/ns/a/sa/web"));
    assert_eq!(
        auth.check(&Req::new().view(), Some(&other))
            .await
            .unwrap_err()
            .status,
        403
    );
    assert_eq!(
        auth.check(&Req::new().view(), None)
            .await
            .unwrap_err()
            .status,
        401
    );
}

#[tokio::test]
async fn anonymous_routes_return_no_identity_but_still_strip_identity_headers() {
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&config("{ anonymous: true }"), &shared).unwrap();
    let req = Req::new().header("x-auth-subject", "admin");
    assert_eq!(auth.check(&req.view(), None).await.unwrap(), None);
    assert!(auth.strip_headers().iter().any(|h| h == "x-auth-subject"));
}

#[tokio::test]
async fn a_token_naming_an_unknown_kid_is_not_verified_by_a_key_without_one() {
    let secret = "another-hmac-secret-of-at-least-32-bytes";
    std::env::set_var("PORTCULLIS_TEST_HS_KID_SECRET", secret);
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let unpinned = Authenticator::from_spec(
        &config(r#"{ jwt: { issuers: [{ issuer: "https://id.test", audiences: [api], hmac: { secret_env: PORTCULLIS_TEST_HS_KID_SECRET } }] } }"#),
        &shared,
    )
    .unwrap();
    let no_kid = hs256(
        secret.as_bytes(),
        &json!({"alg": "HS256"}),
        &claims(json!({})),
    );
    let some_kid = hs256(
        secret.as_bytes(),
        &json!({"alg": "HS256", "kid": "whatever"}),
        &claims(json!({})),
    );
    assert!(unpinned
        .check(&Req::bearer(&no_kid).view(), None)
        .await
        .is_ok());
    let deny = unpinned
        .check(&Req::bearer(&some_kid).view(), None)
        .await
        .unwrap_err();
    assert_eq!(deny.status, 401);

    let pinned = Authenticator::from_spec(
        &config(r#"{ jwt: { issuers: [{ issuer: "https://id.test", audiences: [api], hmac: { secret_env: PORTCULLIS_TEST_HS_KID_SECRET, kid: hs-1 } }] } }"#),
        &shared,
    )
    .unwrap();
    let right_kid = hs256(
        secret.as_bytes(),
        &json!({"alg": "HS256", "kid": "hs-1"}),
        &claims(json!({})),
    );
    assert!(pinned
        .check(&Req::bearer(&right_kid).view(), None)
        .await
        .is_ok());
    assert!(pinned
        .check(&Req::bearer(&no_kid).view(), None)
        .await
        .is_ok());
    assert_eq!(
        pinned
            .check(&Req::bearer(&some_kid).view(), None)
            .await
            .unwrap_err()
            .status,
        401
    );
}

#[tokio::test]
async fn rejects_alg_none_and_an_rs256_signature_relabelled_hs256() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    let good = rsa.sign(&claims(json!({})));
    let (_, rest) = good.split_once('.').unwrap();
    for header in [
        json!({"alg": "none"}),
        json!({"alg": "HS256", "kid": "k1"}),
        json!({"alg": "HS256"}),
    ] {
        let forged = format!("{}.{rest}", b64(header.to_string()));
        let deny = auth
            .check(&Req::bearer(&forged).view(), None)
            .await
            .unwrap_err();
        assert_eq!(
            (deny.status, deny.reason),
            (401, "auth_invalid"),
            "{header}"
        );
    }
    let (signed, _) = good.rsplit_once('.').unwrap();
    let unsigned = format!(
        "{}.{}.",
        b64(json!({"alg": "none"}).to_string()),
        signed.split_once('.').unwrap().1
    );
    assert_eq!(
        auth.check(&Req::bearer(&unsigned).view(), None)
            .await
            .unwrap_err()
            .status,
        401
    );
}

#[tokio::test]
async fn renamed_identity_headers_still_strip_the_default_names() {
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(
        &config(&format!(
            r#"{{ api_keys: {{ keys: [{{ consumer: acme, hash: "{}" }}] }}, upstream_headers: {{ subject: X-User }} }}"#,
            hash_api_key("k")
        )),
        &shared,
    )
    .unwrap();
    let strip = auth.strip_headers();
    for name in [
        "x-user",
        "x-auth-subject",
        "x-auth-consumer",
        "x-auth-scopes",
        "x-auth-plan",
        "x-api-key",
    ] {
        assert!(
            strip.iter().any(|h| h == name),
            "{name} not stripped: {strip:?}"
        );
    }
    for h in portcullis_auth::default_identity_headers() {
        assert!(strip.contains(&h));
    }
    let id = auth
        .check(&Req::new().header("x-api-key", "k").view(), None)
        .await
        .unwrap()
        .unwrap();
    let up = auth.upstream_headers(&id);
    assert!(
        up.iter().any(|(n, v)| n == "x-user" && v == "acme"),
        "{up:?}"
    );
    assert!(!up.iter().any(|(n, _)| n == "x-auth-subject"));
}

#[test]
fn builds_without_a_runtime_and_the_check_future_is_send() {
    fn assert_send<T: Send>(_: &T) {}
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Authenticator>();
    assert_send_sync::<AuthShared>();
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let auth = Authenticator::from_spec(
        &config(r#"{ jwt: { issuers: [{ issuer: "https://id.test", audiences: [api], jwks_url: "http://127.0.0.1:9/jwks" }] } }"#),
        &shared,
    )
    .unwrap();
    let req = Req::bearer("a.b.c");
    let view = req.view();
    let fut = auth.check(&view, None);
    assert_send(&fut);
}

#[test]
fn metrics_snapshot_names_every_counter_once() {
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let snap = shared.metrics().snapshot();
    assert_eq!(snap.len(), 10);
    let mut names: Vec<_> = snap.iter().map(|(n, _, _)| *n).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 10);
    assert!(names
        .iter()
        .all(|n| n.starts_with("portcullis_auth_") && n.ends_with("_total")));
}

#[tokio::test]
async fn a_reloaded_route_keeps_the_jwks_cache_of_the_same_url() {
    let rsa = RsaKey::generate("k1");
    let idp = Idp::start(json!({"keys": [rsa.jwk()]})).await;
    let clock = Arc::new(ManualClock::at_unix(NOW));
    let shared = setup(&clock);
    let before = Authenticator::from_spec(&jwks_auth(&idp, ""), &shared).unwrap();
    shared.refresh_due().await;
    // A reload builds the new routes while the old ones still serve, then drops the old ones.
    let after =
        Authenticator::from_spec(&jwks_auth(&idp, ", require_scopes: [profile]"), &shared).unwrap();
    drop(before);
    shared.refresh_due().await;
    let token = rsa.sign(&claims(json!({})));
    assert!(after.check(&Req::bearer(&token).view(), None).await.is_ok());
    assert_eq!(
        idp.jwks_hits(),
        1,
        "the reloaded route reused the cached keys"
    );
}
