//! Counters as plain atomics, so the proxy exports them with whatever registry it uses.

use std::sync::atomic::{AtomicU64, Ordering};

/// Process-wide auth counters (monotonic).
#[derive(Debug, Default)]
pub struct AuthMetrics {
    /// JWKS HTTP fetches started.
    pub jwks_fetches: AtomicU64,
    /// JWKS fetches that failed (network, status, body, no usable key).
    pub jwks_fetch_failures: AtomicU64,
    /// Fetches started because a token named an unknown `kid`.
    pub jwks_unknown_kid_fetches: AtomicU64,
    /// Unknown-`kid` refreshes refused by the minimum interval.
    pub jwks_unknown_kid_throttled: AtomicU64,
    /// Verified-token cache hits.
    pub token_cache_hits: AtomicU64,
    /// Verified-token cache misses.
    pub token_cache_misses: AtomicU64,
    /// Introspection calls made.
    pub introspection_calls: AtomicU64,
    /// Introspection calls that failed (network, status, body).
    pub introspection_failures: AtomicU64,
    /// Introspection answers served from the cache.
    pub introspection_cache_hits: AtomicU64,
    /// API-key file reloads that failed (the previous keys stay).
    pub api_key_reload_failures: AtomicU64,
}

impl AuthMetrics {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads a counter.
    #[must_use]
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Every counter as `(name, help, value)`, names ready for Prometheus (`portcullis_auth_`
    /// prefix, `_total` suffix): the proxy turns them into counters of its registry on scrape.
    #[must_use]
    pub fn snapshot(&self) -> Vec<(&'static str, &'static str, u64)> {
        [
            (
                "portcullis_auth_jwks_fetches_total",
                "JWKS HTTP fetches started",
                &self.jwks_fetches,
            ),
            (
                "portcullis_auth_jwks_fetch_failures_total",
                "JWKS fetches that failed; the last good keys were kept",
                &self.jwks_fetch_failures,
            ),
            (
                "portcullis_auth_jwks_unknown_kid_fetches_total",
                "JWKS fetches started because a token named an unknown kid",
                &self.jwks_unknown_kid_fetches,
            ),
            (
                "portcullis_auth_jwks_unknown_kid_throttled_total",
                "unknown-kid refreshes refused by the minimum interval",
                &self.jwks_unknown_kid_throttled,
            ),
            (
                "portcullis_auth_token_cache_hits_total",
                "verified-token cache hits",
                &self.token_cache_hits,
            ),
            (
                "portcullis_auth_token_cache_misses_total",
                "verified-token cache misses (full verification)",
                &self.token_cache_misses,
            ),
            (
                "portcullis_auth_introspection_calls_total",
                "token introspection calls made",
                &self.introspection_calls,
            ),
            (
                "portcullis_auth_introspection_failures_total",
                "token introspection calls that failed",
                &self.introspection_failures,
            ),
            (
                "portcullis_auth_introspection_cache_hits_total",
                "introspection answers served from the cache",
                &self.introspection_cache_hits,
            ),
            (
                "portcullis_auth_api_key_reload_failures_total",
                "API-key file reloads that failed; the previous keys were kept",
                &self.api_key_reload_failures,
            ),
        ]
        .into_iter()
        .map(|(name, help, c)| (name, help, Self::get(c)))
        .collect()
    }
}
