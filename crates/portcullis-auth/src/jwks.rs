//! JWK parsing and the JWKS cache. A [`JwksSource`] per URL is shared by every route and kept
//! across reloads. Keys are fetched off the request path (the refresh loop), re-fetched when a
//! token names an unknown `kid` (single flight, at most one fetch per minimum interval whatever
//! the number of unknown kids), and the last good keys are kept when the endpoint fails, up to
//! `max_stale`.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use jsonwebtoken::{Algorithm, DecodingKey};
use parking_lot::Mutex;
use portcullis_config::JwksSettings;
use portcullis_core::Clock;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::metrics::AuthMetrics;

/// One verification key and the algorithms it may verify (one family only: an RSA key never
/// verifies an HMAC token, which is what key-confusion attacks rely on).
#[derive(Debug)]
pub(crate) struct VerifyKey {
    pub(crate) kid: Option<String>,
    pub(crate) algs: Vec<Algorithm>,
    pub(crate) key: DecodingKey,
    pub(crate) fingerprint: [u8; 32],
}

const RSA_ALGS: &[Algorithm] = &[
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

/// Smallest RSA modulus accepted, in bytes (2048 bits).
const MIN_RSA_MODULUS: usize = 256;

fn b64url(s: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .map_err(|_| "a key member is not base64url".to_owned())
}

fn str_member<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// Parses one JWK. `Ok(None)`: a key we deliberately skip (encryption keys, unknown types,
/// symmetric keys from the network).
pub(crate) fn parse_jwk(v: &Value, allow_symmetric: bool) -> Result<Option<VerifyKey>, String> {
    if str_member(v, "use").is_some_and(|u| u != "sig") {
        return Ok(None);
    }
    let declared = match v.get("alg") {
        None | Some(Value::Null) => None,
        Some(Value::String(a)) => match Algorithm::from_str(a) {
            Ok(alg) => Some(alg),
            Err(_) => return Ok(None),
        },
        Some(_) => return Err("`alg` is not a string".to_owned()),
    };
    let kid = str_member(v, "kid").map(str::to_owned);
    let fingerprint: [u8; 32] = Sha256::digest(serde_json::to_vec(v).unwrap_or_default()).into();
    let (algs, key) = match str_member(v, "kty") {
        Some("RSA") => {
            let n = b64url(str_member(v, "n").ok_or("RSA key without n")?)?;
            let e = b64url(str_member(v, "e").ok_or("RSA key without e")?)?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < MIN_RSA_MODULUS {
                return Err(format!(
                    "RSA key of {} bits: at least 2048 are required",
                    significant * 8
                ));
            }
            let algs = match declared {
                Some(a) if RSA_ALGS.contains(&a) => vec![a],
                Some(_) => return Err("RSA key with a non-RSA `alg`".to_owned()),
                None => RSA_ALGS.to_vec(),
            };
            (algs, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        Some("EC") => {
            let alg = match str_member(v, "crv") {
                Some("P-256") => Algorithm::ES256,
                Some("P-384") => Algorithm::ES384,
                _ => return Ok(None),
            };
            if declared.is_some_and(|d| d != alg) {
                return Err("EC key whose `alg` does not match its curve".to_owned());
            }
            let x = str_member(v, "x").ok_or("EC key without x")?;
            let y = str_member(v, "y").ok_or("EC key without y")?;
            let key = DecodingKey::from_ec_components(x, y).map_err(|e| e.to_string())?;
            (vec![alg], key)
        }
        Some("OKP") => {
            if str_member(v, "crv") != Some("Ed25519") {
                return Ok(None);
            }
            if declared.is_some_and(|d| d != Algorithm::EdDSA) {
                return Err("Ed25519 key with a non-EdDSA `alg`".to_owned());
            }
            let x = str_member(v, "x").ok_or("OKP key without x")?;
            let key = DecodingKey::from_ed_components(x).map_err(|e| e.to_string())?;
            (vec![Algorithm::EdDSA], key)
        }
        Some("oct") if allow_symmetric => {
            let k = b64url(str_member(v, "k").ok_or("oct key without k")?)?;
            let alg = match declared {
                Some(a @ (Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512)) => a,
                None => Algorithm::HS256,
                Some(_) => return Err("oct key with a non-HMAC `alg`".to_owned()),
            };
            (vec![alg], DecodingKey::from_secret(&k))
        }
        _ => return Ok(None),
    };
    Ok(Some(VerifyKey {
        kid,
        algs,
        key,
        fingerprint,
    }))
}

/// Parses a JWKS (`{"keys": [...]}`) or a single JWK. Keys that fail to parse are skipped; an
/// answer with no usable key at all is an error (so a broken endpoint never erases good keys).
pub(crate) fn parse_jwks(
    bytes: &[u8],
    allow_symmetric: bool,
) -> Result<Vec<Arc<VerifyKey>>, String> {
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let items: Vec<&Value> = match doc.get("keys") {
        Some(Value::Array(keys)) => keys.iter().collect(),
        Some(_) => return Err("`keys` is not an array".to_owned()),
        None if doc.get("kty").is_some() => vec![&doc],
        None => return Err("neither a JWKS nor a JWK".to_owned()),
    };
    let mut out = Vec::new();
    let mut last_err = None;
    for item in items {
        match parse_jwk(item, allow_symmetric) {
            Ok(Some(k)) => out.push(Arc::new(k)),
            Ok(None) => {}
            Err(e) => last_err = Some(e),
        }
    }
    if out.is_empty() {
        return Err(last_err.unwrap_or_else(|| "no usable signing key".to_owned()));
    }
    Ok(out)
}

#[derive(Debug, Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_success: Option<Instant>,
    next_due: Option<Instant>,
}

/// The cached keys of one JWKS URL.
#[derive(Debug)]
pub(crate) struct JwksSource {
    url: String,
    settings: Mutex<JwksSettings>,
    keys: ArcSwap<Vec<Arc<VerifyKey>>>,
    /// Bumped whenever the key set changes; cached tokens verified under an older generation
    /// are verified again (a removed key stops working at once).
    generation: AtomicU64,
    state: Mutex<FetchState>,
    in_flight: AtomicBool,
    attempts: tokio::sync::watch::Sender<u64>,
}

impl JwksSource {
    pub(crate) fn new(url: String, settings: JwksSettings) -> Self {
        Self {
            url,
            settings: Mutex::new(settings),
            keys: ArcSwap::from_pointee(Vec::new()),
            generation: AtomicU64::new(0),
            state: Mutex::new(FetchState::default()),
            in_flight: AtomicBool::new(false),
            attempts: tokio::sync::watch::channel(0).0,
        }
    }

    pub(crate) fn update_settings(&self, settings: JwksSettings) {
        *self.settings.lock() = settings;
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The keys, or none once they are staler than `refresh_interval + max_stale`.
    pub(crate) fn keys(&self, now: Instant) -> Arc<Vec<Arc<VerifyKey>>> {
        let s = *self.settings.lock();
        let fresh = self.state.lock().last_success.is_some_and(|t| {
            now.saturating_duration_since(t) <= s.refresh_interval.saturating_add(s.max_stale)
        });
        if fresh {
            self.keys.load_full()
        } else {
            Arc::new(Vec::new())
        }
    }

    /// Whether the refresh loop should fetch now.
    fn due(&self, now: Instant) -> bool {
        let st = self.state.lock();
        match st.next_due {
            None => true,
            Some(t) => now >= t,
        }
    }

    /// Claims the right to fetch. `throttle`: refuse within the minimum interval of the last
    /// attempt (unknown-kid path). Returns false when someone else fetches or it is too soon.
    fn begin(&self, now: Instant, throttle: bool) -> bool {
        let min = self.settings.lock().min_refresh_interval;
        let mut st = self.state.lock();
        if throttle
            && st
                .last_attempt
                .is_some_and(|t| now.saturating_duration_since(t) < min)
        {
            return false;
        }
        if self.in_flight.swap(true, Ordering::AcqRel) {
            return false;
        }
        st.last_attempt = Some(now);
        true
    }

    async fn fetch(&self, client: &reqwest::Client, clock: &dyn Clock, metrics: &AuthMetrics) {
        let s = *self.settings.lock();
        AuthMetrics::inc(&metrics.jwks_fetches);
        let result = tokio::time::timeout(s.timeout, async {
            let resp = client
                .get(&self.url)
                .header("accept", "application/json")
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let bytes = crate::fetch::body(resp).await?;
            parse_jwks(&bytes, false)
        })
        .await
        .unwrap_or_else(|_| Err("timed out".to_owned()));
        let now = clock.now();
        {
            let mut st = self.state.lock();
            match result {
                Ok(keys) => {
                    let old = self.keys.load();
                    let changed = old.len() != keys.len()
                        || old
                            .iter()
                            .zip(keys.iter())
                            .any(|(a, b)| a.fingerprint != b.fingerprint);
                    if changed {
                        self.keys.store(Arc::new(keys));
                        self.generation.fetch_add(1, Ordering::AcqRel);
                    }
                    st.last_success = Some(now);
                    st.next_due = Some(now + s.refresh_interval);
                }
                Err(e) => {
                    AuthMetrics::inc(&metrics.jwks_fetch_failures);
                    tracing::warn!(url = %self.url, error = %e, "JWKS fetch failed; keeping the last good keys");
                    st.next_due = Some(now + s.min_refresh_interval.min(s.refresh_interval));
                }
            }
        }
        self.in_flight.store(false, Ordering::Release);
        self.attempts.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Fetches now if the schedule says so (refresh loop).
    pub(crate) async fn refresh_if_due(
        &self,
        client: &reqwest::Client,
        clock: &dyn Clock,
        metrics: &AuthMetrics,
    ) {
        let now = clock.now();
        if self.due(now) && self.begin(now, false) {
            self.fetch(client, clock, metrics).await;
        }
    }

    /// A token named a kid we do not have: start (or join) one fetch unless the minimum
    /// interval forbids it, and wait for it at most `wait`. Returns whether a fetch completed.
    pub(crate) async fn refresh_for_unknown_kid(
        self: &Arc<Self>,
        client: &reqwest::Client,
        clock: &Arc<dyn Clock>,
        metrics: &Arc<AuthMetrics>,
        wait: Duration,
    ) -> bool {
        let mut rx = self.attempts.subscribe();
        rx.borrow_and_update();
        let now = clock.now();
        let joined = if self.in_flight.load(Ordering::Acquire) {
            true
        } else if self.begin(now, true) {
            AuthMetrics::inc(&metrics.jwks_unknown_kid_fetches);
            let (me, client, clock, metrics) = (
                Arc::clone(self),
                client.clone(),
                Arc::clone(clock),
                Arc::clone(metrics),
            );
            // Spawned so that a request giving up on waiting never cancels the fetch.
            tokio::spawn(async move { me.fetch(&client, clock.as_ref(), &metrics).await });
            true
        } else {
            AuthMetrics::inc(&metrics.jwks_unknown_kid_throttled);
            false
        };
        joined && matches!(tokio::time::timeout(wait, rx.changed()).await, Ok(Ok(())))
    }

    /// Whether a fetch ever succeeded.
    #[allow(dead_code)]
    pub(crate) fn has_succeeded(&self) -> bool {
        self.state.lock().last_success.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn skips_encryption_and_unknown_keys_but_needs_one_usable() {
        let doc = br#"{"keys":[{"kty":"RSA","use":"enc","n":"AQAB","e":"AQAB"},{"kty":"XYZ"}]}"#;
        assert!(parse_jwks(doc, false).is_err());
    }

    #[test]
    fn symmetric_keys_from_the_network_are_ignored() {
        let doc = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI"}]}"#;
        assert!(parse_jwks(doc, false).is_err());
        assert_eq!(parse_jwks(doc, true).map(|k| k.len()).ok(), Some(1));
    }

    #[test]
    fn rejects_short_rsa_moduli() {
        let doc = br#"{"kty":"RSA","n":"AQABAQAB","e":"AQAB"}"#;
        let err = parse_jwks(doc, false).unwrap_err();
        assert!(err.contains("2048"), "{err}");
    }

    #[test]
    fn ec_key_alg_follows_its_curve() {
        let doc = br#"{"kty":"EC","crv":"P-256","alg":"ES384","x":"04N0xi21hshyvBp7I167sbE_bXqyqkAPfefdklMO7wY","y":"UI8exy-C06a7DUnjIdENkxeFtHM4-l_41LqEw9nVgmw"}"#;
        assert!(parse_jwks(doc, false).is_err());
    }
}
