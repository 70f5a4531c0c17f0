//! OAuth 2.0 token introspection (RFC 7662) for opaque tokens. The gateway authenticates to the
//! endpoint with HTTP Basic client credentials (secret from a file or the environment). Answers,
//! active or not, are cached by a hash of the token for a bounded time, never past `exp`.

use std::sync::Arc;
use std::time::Duration;

use portcullis_config::IntrospectionSpec;
use portcullis_core::Identity;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::cache::token_key;
use crate::error::AuthError;
use crate::jwt::flatten_claims;
use crate::metrics::AuthMetrics;
use crate::secret::Secret;

/// Inactive answers are remembered at most this long (a revoked token comes back quickly if
/// the provider re-activates it; a flood of junk tokens still hits the provider at most once
/// per token per interval).
const MAX_NEGATIVE_TTL: u64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum IntrospectFailure {
    Inactive,
    Expired,
    Audience,
    Unavailable,
}

/// A route's introspection settings, compiled.
#[derive(Debug)]
pub(crate) struct Introspector {
    endpoint: String,
    client_id: String,
    secret: Secret,
    cache_ttl: u64,
    timeout: Duration,
    audiences: Vec<String>,
    issuer: Option<String>,
    consumer_claim: String,
    namespace: [u8; 32],
}

impl Introspector {
    pub(crate) fn load(spec: &IntrospectionSpec) -> Result<Self, AuthError> {
        let secret = Secret::load(&spec.client_secret)?;
        let mut h = Sha256::new();
        h.update(b"introspection\0");
        h.update(format!("{spec:?}").as_bytes());
        Ok(Self {
            endpoint: spec.endpoint.clone(),
            client_id: spec.client_id.clone(),
            secret,
            cache_ttl: spec.cache_ttl.as_secs(),
            timeout: spec.timeout,
            audiences: spec.audiences.clone(),
            issuer: spec.issuer.clone(),
            consumer_claim: spec.consumer_claim.clone(),
            namespace: h.finalize().into(),
        })
    }

    pub(crate) async fn check(
        &self,
        token: &str,
        client: &reqwest::Client,
        cache: &crate::cache::TtlCache<Option<Arc<Identity>>>,
        now: u64,
        metrics: &AuthMetrics,
    ) -> Result<Identity, IntrospectFailure> {
        let key = token_key(&self.namespace, token);
        if let Some(hit) = cache.get(&key, now) {
            AuthMetrics::inc(&metrics.introspection_cache_hits);
            return hit
                .map(|id| (*id).clone())
                .ok_or(IntrospectFailure::Inactive);
        }
        AuthMetrics::inc(&metrics.introspection_calls);
        let answer = match self.call(token, client).await {
            Ok(a) => a,
            Err(e) => {
                AuthMetrics::inc(&metrics.introspection_failures);
                tracing::warn!(endpoint = %self.endpoint, error = %e, "token introspection failed");
                return Err(IntrospectFailure::Unavailable);
            }
        };
        match self.judge(&answer, now) {
            Ok((identity, exp)) => {
                let until = exp.map_or(now + self.cache_ttl, |e| e.min(now + self.cache_ttl));
                cache.insert(key, Some(Arc::new(identity.clone())), until, now);
                Ok(identity)
            }
            Err(f) => {
                let ttl = self.cache_ttl.min(MAX_NEGATIVE_TTL);
                cache.insert(key, None, now + ttl, now);
                Err(f)
            }
        }
    }

    async fn call(
        &self,
        token: &str,
        client: &reqwest::Client,
    ) -> Result<Map<String, Value>, String> {
        let secret = self
            .secret
            .expose_str()
            .ok_or("the client secret is not UTF-8")?;
        let fut = async {
            let resp = client
                .post(&self.endpoint)
                .basic_auth(&self.client_id, Some(secret))
                .header("accept", "application/json")
                .form(&[("token", token), ("token_type_hint", "access_token")])
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let bytes = crate::fetch::body(resp).await?;
            serde_json::from_slice::<Map<String, Value>>(&bytes)
                .map_err(|_| "the answer is not a JSON object".to_owned())
        };
        tokio::time::timeout(self.timeout, fut)
            .await
            .unwrap_or_else(|_| Err("timed out".to_owned()))
    }

    fn judge(
        &self,
        a: &Map<String, Value>,
        now: u64,
    ) -> Result<(Identity, Option<u64>), IntrospectFailure> {
        if a.get("active") != Some(&Value::Bool(true)) {
            return Err(IntrospectFailure::Inactive);
        }
        let exp = a.get("exp").and_then(Value::as_u64);
        if exp.is_some_and(|e| e <= now) {
            return Err(IntrospectFailure::Expired);
        }
        if let Some(iss) = &self.issuer {
            if a.get("iss").and_then(Value::as_str) != Some(iss) {
                return Err(IntrospectFailure::Audience);
            }
        }
        if !self.audiences.is_empty() {
            let ok = match a.get("aud") {
                Some(Value::String(s)) => self.audiences.contains(s),
                Some(Value::Array(l)) => l.iter().any(|x| {
                    x.as_str()
                        .is_some_and(|x| self.audiences.iter().any(|y| y == x))
                }),
                _ => false,
            };
            if !ok {
                return Err(IntrospectFailure::Audience);
            }
        }
        let string = |n: &str| a.get(n).and_then(Value::as_str).map(str::to_owned);
        let scopes = string("scope")
            .map(|s| s.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Ok((
            Identity {
                method: "introspection",
                subject: string("sub").or_else(|| string("username")),
                consumer: string(&self.consumer_claim),
                plan: None,
                scopes,
                roles: Vec::new(),
                claims: flatten_claims(a),
            },
            exp,
        ))
    }
}
