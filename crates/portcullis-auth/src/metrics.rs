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
}
