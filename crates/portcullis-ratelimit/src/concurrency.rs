//! In-flight limits per route and per upstream pool, released by an RAII guard.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use portcullis_config::ConcurrencySpec;
use portcullis_core::Deny;

use crate::limiter::{retry_after_secs, Shared};

#[derive(Debug)]
struct Gate {
    max: u64,
    in_flight: Arc<AtomicU64>,
}

/// Max in-flight requests per route and per pool. The counters live in [`Shared`], so requests
/// in flight across a reload are still counted (and released) correctly.
#[derive(Debug)]
pub struct Concurrency {
    routes: HashMap<String, Gate>,
    upstreams: HashMap<String, Gate>,
    retry_after: String,
}

/// Holds a request's in-flight slots; dropping it releases them.
#[derive(Debug, Default)]
#[must_use = "the slot is released when the guard is dropped"]
pub struct InFlightGuard {
    held: Vec<Arc<AtomicU64>>,
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        for c in &self.held {
            c.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Concurrency {
    /// Builds the gates.
    #[must_use]
    pub fn from_spec(spec: &ConcurrencySpec, shared: &Arc<Shared>) -> Self {
        let gate = |kind: &str, name: &str, max: u32| {
            let counter = Arc::clone(
                shared
                    .gates
                    .lock()
                    .entry(format!("{kind}/{name}"))
                    .or_default(),
            );
            Gate {
                max: u64::from(max),
                in_flight: counter,
            }
        };
        Self {
            routes: spec
                .routes
                .iter()
                .map(|(n, m)| (n.clone(), gate("route", n, *m)))
                .collect(),
            upstreams: spec
                .upstreams
                .iter()
                .map(|(n, m)| (n.clone(), gate("upstream", n, *m)))
                .collect(),
            retry_after: retry_after_secs(spec.retry_after).max(1).to_string(),
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
            let prev = g.in_flight.fetch_add(1, Ordering::AcqRel);
            guard.held.push(Arc::clone(&g.in_flight));
            if prev >= g.max {
                // `guard` drops here and gives back every slot taken so far.
                return Err(
                    Deny::new(503, "overloaded", "the service is overloaded, retry later")
                        .with_header("Retry-After", self.retry_after.clone()),
                );
            }
        }
        Ok(guard)
    }

    /// Requests in flight on a route.
    #[must_use]
    pub fn in_flight(&self, route: &str) -> u64 {
        self.routes
            .get(route)
            .map_or(0, |g| g.in_flight.load(Ordering::Acquire))
    }
}
