//! In-flight limits per route and per upstream pool, released by an RAII guard, with an optional
//! adaptive (AIMD) limit per pool fed by response latency and failures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use portcullis_config::ConcurrencySpec;
use portcullis_core::Deny;

use crate::limiter::{retry_after_secs, Shared};

/// Counters of one gate, kept in [`Shared`] across reloads.
#[derive(Debug, Default)]
pub(crate) struct GateState {
    in_flight: AtomicU64,
    /// The limit in force: the configured maximum, or less while adaptive mode has cut it.
    limit: AtomicU64,
}

#[derive(Debug)]
struct Gate {
    max: u64,
    state: Arc<GateState>,
}

/// Max in-flight requests per route and per pool. The counters live in [`Shared`], so requests
/// in flight across a reload are still counted (and released) correctly.
#[derive(Debug)]
pub struct Concurrency {
    routes: HashMap<String, Gate>,
    upstreams: HashMap<String, Gate>,
    retry_after: String,
    adaptive: Option<(Duration, u64)>,
}

/// Holds a request's in-flight slots; dropping it releases them.
#[derive(Debug, Default)]
#[must_use = "the slot is released when the guard is dropped"]
pub struct InFlightGuard {
    held: Vec<Arc<GateState>>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        for g in &self.held {
            g.in_flight.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Concurrency {
    /// Builds the gates. A pool whose maximum changed starts again from the new maximum.
    #[must_use]
    pub fn from_spec(spec: &ConcurrencySpec, shared: &Arc<Shared>) -> Self {
        let adaptive = spec
            .adaptive_latency_target
            .map(|t| (t, u64::from(spec.adaptive_min.max(1))));
        let gate = |kind: &str, name: &str, max: u32, adapts: bool| {
            let state = Arc::clone(
                shared
                    .gates
                    .lock()
                    .entry(format!("{kind}/{name}"))
                    .or_default(),
            );
            let max = u64::from(max);
            let cur = state.limit.load(Ordering::Acquire);
            if !adapts || cur == 0 || cur > max {
                state.limit.store(max, Ordering::Release);
            }
            Gate { max, state }
        };
        Self {
            routes: spec
                .routes
                .iter()
                .map(|(n, m)| (n.clone(), gate("route", n, *m, false)))
                .collect(),
            upstreams: spec
                .upstreams
                .iter()
                .map(|(n, m)| (n.clone(), gate("upstream", n, *m, adaptive.is_some())))
                .collect(),
            retry_after: retry_after_secs(spec.retry_after).max(1).to_string(),
            adaptive,
        }
    }

    /// Takes a slot on the route and, if given, the pool; 503 `overloaded` when either is full.
    pub fn enter(&self, route: &str, upstream: Option<&str>) -> Result<InFlightGuard, Deny> {
        let mut guard = InFlightGuard::default();
        let gates = [
            self.routes.get(route),
            upstream.and_then(|u| self.upstreams.get(u)),
        ];
        for g in gates.into_iter().flatten() {
            let prev = g.state.in_flight.fetch_add(1, Ordering::AcqRel);
            guard.held.push(Arc::clone(&g.state));
            if prev >= g.state.limit.load(Ordering::Acquire) {
                // `guard` drops here and gives back every slot taken so far.
                return Err(
                    Deny::new(503, "overloaded", "the service is overloaded, retry later")
                        .with_header("Retry-After", self.retry_after.clone())
                        .with_log_detail(format!("in-flight limit {}", g.max)),
                );
            }
        }
        Ok(guard)
    }

    /// Feeds adaptive mode from the logging hook, before the request's guard is dropped: a
    /// response from `upstream` slower than the target, or `failed` (5xx, connection error,
    /// timeout), cuts the pool's limit by 10% (at least one, never below the floor); a good one
    /// while at least half the limit is in use raises it by one, up to the configured maximum.
    /// Does nothing without adaptive mode or for a pool without a limit.
    pub fn record(&self, upstream: &str, latency: Duration, failed: bool) {
        let (Some((target, floor)), Some(g)) = (self.adaptive, self.upstreams.get(upstream)) else {
            return;
        };
        let overloaded = failed || latency > target;
        let in_use = g.state.in_flight.load(Ordering::Acquire);
        let _ = g
            .state
            .limit
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |l| {
                if overloaded {
                    let cut = (l.saturating_mul(9) / 10).max(floor.min(g.max));
                    (cut < l).then_some(cut)
                } else if in_use.saturating_mul(2) >= l && l < g.max {
                    Some(l + 1)
                } else {
                    None
                }
            });
    }

    /// Requests in flight on a route.
    #[must_use]
    pub fn in_flight(&self, route: &str) -> u64 {
        self.routes
            .get(route)
            .map_or(0, |g| g.state.in_flight.load(Ordering::Acquire))
    }

    /// A pool's requests in flight and its limit in force (lower than the configured maximum
    /// while adaptive mode has cut it), for metrics.
    #[must_use]
    pub fn pool(&self, upstream: &str) -> Option<(u64, u64)> {
        self.upstreams.get(upstream).map(|g| {
            (
                g.state.in_flight.load(Ordering::Acquire),
                g.state.limit.load(Ordering::Acquire),
            )
        })
    }
}
