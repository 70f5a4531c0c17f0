//! Rate limiting and abuse protection for Portcullis: local GCRA limiters with bounded memory,
//! Redis-shared limiters and plan quotas (one atomic Lua script on Redis's clock, with a timeout,
//! a circuit breaker and a per-policy fail-open or fail-closed choice), behavioural counters and
//! bans, IP allow/deny lists and in-flight limits. Every request-path check takes a borrowed
//! [`RequestView`](portcullis_core::RequestView) and answers `Result<_, Deny>`; the crate must
//! not depend on Pingora, so all of it is testable without a network (Redis tests start their
//! own `redis-server`). State that must outlive a config reload lives in [`Shared`].
//!
//! # Algorithm
//!
//! A limit `rate/period burst B` is GCRA with emission interval `T = period / rate` and
//! tolerance `(B - 1) · T`: a fresh key admits exactly `B` requests back to back, then one every
//! `T`; a refused request consumes nothing, and its `Retry-After` is the exact wait until the next
//! admission, rounded up to whole seconds. Several limits (and the plan's quotas) of one policy
//! are all-or-nothing. `scope: shared` runs the same arithmetic in one Lua script on Redis's
//! clock, so every gateway enforces one combined limit; when Redis fails or exceeds
//! `redis.timeout`, the policy falls back to its local limiter (`fail_open`, the default) or
//! answers 503 `ratelimit_unavailable` (`fail_closed`). After `failure_threshold` consecutive
//! failures a breaker skips Redis for `cooldown`, then one probe call decides whether it closes.
//!
//! # Use from the proxy
//!
//! Built once per process: [`Shared`] (local table, Redis connection, policy counters, bans,
//! in-flight counters). Built on every config load from `portcullis_config::Config`, cheaply
//! and without I/O except list files: [`RateLimiter`] per route, [`IpLists`], [`Abuse`],
//! [`Concurrency`]. An unchanged policy, abuse section or gate keeps its state across reloads.
//!
//! ```
//! # #![allow(clippy::unwrap_used)]
//! use std::sync::Arc;
//! use portcullis_core::{Identity, RequestView, SystemClock};
//! use portcullis_ratelimit::{
//!     Abuse, Admission, Concurrency, InFlightGuard, IpLists, Observation, RateLimiter, Shared,
//!     SharedOptions,
//! };
//! use portcullis_core::Deny;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let cfg = portcullis_config::parse_str("gw.yaml", r#"
//! listeners: [{ name: web, address: "127.0.0.1:8080" }]
//! upstreams: { app: { backends: [{ address: "127.0.0.1:9001" }] } }
//! routes:
//!   - name: api
//!     upstream: app
//!     rate_limit:
//!       - { key: client_ip, limits: ["10/s burst 5"] }
//!       - { key: consumer, quotas: { free: ["100000/d"], pro: ["10000000/d"] } }
//! abuse: { rules: [{ name: brute, counter: auth_failures, more_than: 20, within: 1m, ban_for: 10m }] }
//! concurrency: { routes: { api: 100 } }
//! "#)?;
//!
//! // Once per process (the `redis` section is applied again on every load).
//! let shared = Shared::new(SharedOptions::default(), Arc::new(SystemClock));
//!
//! // On every config load: Redis settings first, then the filters.
//! shared.set_redis(cfg.protection.redis.clone());
//! let lists = IpLists::from_spec(&cfg.protection.ip_lists)?;
//! let abuse = match &cfg.protection.abuse {
//!     Some(spec) => Some(Arc::new(Abuse::from_spec(spec, &shared)?)),
//!     None => None,
//! };
//! let _ban_sync = abuse.as_ref().and_then(Abuse::spawn_sync); // shared bans only
//! let gates = Concurrency::from_spec(&cfg.protection.concurrency, &shared);
//! let route = &cfg.routes[0];
//! let limiter = match &route.rate_limit {
//!     Some(spec) => Some(RateLimiter::from_spec(&route.name, spec, &shared)?),
//!     None => None,
//! };
//!
//! // Per request. The first `Deny` becomes the one JSON error response (status, reason,
//! // headers such as Retry-After, RateLimit and RateLimit-Policy); the guard is held until the
//! // logging hook; the admission's headers go on the upstream response.
//! async fn request_filter(
//!     lists: &IpLists,
//!     abuse: Option<&Abuse>,
//!     limiter: Option<&RateLimiter>,
//!     gates: &Concurrency,
//!     req: &RequestView<'_>,
//! ) -> Result<(Admission, InFlightGuard), Deny> {
//!     lists.check(req)?; // 403 ip_denied
//!     if let Some(a) = abuse {
//!         a.check(req)?; // 403 or 429 banned
//!     }
//!     let mut admission = Admission::default();
//!     if let Some(l) = limiter {
//!         admission = l.check(req).await?; // 429 rate_limited, 503 ratelimit_unavailable
//!     }
//!     // ... WAF, authentication: the identity carries consumer, plan, subject and claims ...
//!     let id = Identity { consumer: Some("acme".into()), plan: Some("free".into()), ..Identity::default() };
//!     if let Some(l) = limiter {
//!         // Consumer limits and quotas; also for anonymous requests (with `None`).
//!         admission = admission.merge(l.check_identity(req, Some(&id)).await?);
//!     }
//!     let slot = gates.enter(req.route, Some("app"))?; // 503 overloaded
//!     Ok((admission, slot))
//! }
//!
//! let headers = http::HeaderMap::new();
//! let req = RequestView {
//!     method: "POST", path: "/login", query: None, host: None, headers: &headers,
//!     client_ip: "192.0.2.1".parse()?, route: &route.name,
//! };
//! let verdict = request_filter(&lists, abuse.as_deref(), limiter.as_ref(), &gates, &req).await;
//! let (admission, slot) = verdict.map_err(|deny| deny.message)?;
//! assert_eq!(admission.remaining, Some(4)); // "10/s burst 5": 4 more right now
//! assert_eq!(admission.headers[1].1, "\"api/0/0\";r=4;t=1"); // RateLimit
//!
//! // In the logging hook: release the slot, feed the behavioural counters.
//! drop(slot);
//! if let Some(a) = &abuse {
//!     a.observe(&Observation {
//!         client_ip: req.client_ip, status: 401, path: req.path, auth_failed: true, waf_hit: false,
//!     });
//!     assert!(a.list_bans().is_empty()); // one failure is not a ban
//! }
//! # Ok(()) }
//! ```

mod abuse;
mod concurrency;
mod gcra;
mod iplist;
mod limiter;
mod store;

use std::path::PathBuf;

pub use abuse::{Abuse, BanInfo, Observation};
pub use concurrency::{Concurrency, InFlightGuard};
pub use iplist::{read_list_file, IpLists, IpSet};
pub use limiter::{
    retry_after_secs, Admission, PolicyMetrics, RateLimiter, Shared, SharedOptions,
    DEFAULT_MAX_KEYS,
};
pub use store::RedisState;

/// Failures building or running the rate-limit machinery (never a request verdict: those are
/// [`Deny`](portcullis_core::Deny)).
#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    /// A shared policy or shared bans without a `redis` section.
    #[error("{0}: `scope: shared` needs a top-level `redis` section")]
    NoRedis(String),
    /// The password environment variable is not set.
    #[error("environment variable {0} (redis.password_env) is not set")]
    MissingPassword(String),
    /// Redis refused, failed or timed out.
    #[error("redis: {0}")]
    Redis(String),
    /// An IP list or thresholds map file could not be read or has a bad line.
    #[error("{}:{line}: {message}", path.display())]
    ListFile {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when the file cannot be read).
        line: usize,
        /// What is wrong.
        message: String,
    },
}
