//! The compiled form of one config generation: route table and pools. Immutable; a reload builds
//! a new one and swaps it in, and requests keep the generation they started with.

use std::sync::Arc;

use portcullis_auth::{AuthError, AuthShared, Authenticator};
use portcullis_config::Config;
use portcullis_ratelimit::{Abuse, Concurrency, IpLists, RateLimitError, RateLimiter};
use portcullis_upstream::{PoolSet, UpstreamError};

use crate::metrics::RouteMetricsCache;
use crate::routing::RouteTable;

/// Why a validated config could not be turned into a runtime.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A pool could not be built.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
    /// A route's authentication could not be built (key file unreadable, bad key, ...).
    #[error("route `{route}`: {source}")]
    Auth {
        /// The route.
        route: String,
        /// What failed.
        #[source]
        source: AuthError,
    },
    /// A route's WAF could not be built (a positive-model schema it cannot use, ...).
    #[error("route `{route}`: waf: {source}")]
    Waf {
        /// The route.
        route: String,
        /// What failed.
        #[source]
        source: portcullis_waf::WafError,
    },
    /// Rate limits, IP lists or bans could not be built (a list file unreadable, ...).
    #[error(transparent)]
    Protection(#[from] RateLimitError),
}

/// Process-wide filter state that outlives config generations (caches, connections, counters).
#[derive(Debug, Clone)]
pub struct FilterState {
    /// JWKS caches, token caches, API-key files, the HTTP client of the auth filter.
    pub auth: AuthShared,
    /// Rate-limit tables, the Redis connection, bans and in-flight counters.
    pub limits: Arc<portcullis_ratelimit::Shared>,
    /// Background work of the filters (Redis connections, ban sync) runs here, so building a
    /// runtime from a plain thread (start-up, the reload thread) can spawn it.
    pub background: Arc<tokio::runtime::Runtime>,
}

impl FilterState {
    /// Creates the process-wide filter state (no network I/O; Redis connects on first use).
    pub fn new() -> Result<FilterState, crate::state::StartError> {
        use crate::state::StartError;
        let clock = Arc::new(portcullis_core::SystemClock);
        let auth = AuthShared::new(clock.clone()).map_err(|e| StartError::Filter(e.to_string()))?;
        let background = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("filters-bg")
            .enable_all()
            .build()
            .map_err(|source| StartError::Io {
                what: "filter background runtime",
                source,
            })?;
        let limits = portcullis_ratelimit::Shared::new(
            portcullis_ratelimit::SharedOptions::default(),
            clock,
        );
        Ok(FilterState {
            auth,
            limits,
            background: Arc::new(background),
        })
    }
}

/// Compiles a validated config the way `run` would (key files read, lists loaded, filters built)
/// without binding anything: what `portcullis check` runs after validation.
pub fn verify(config: Config) -> Result<(), crate::state::StartError> {
    let state = FilterState::new()?;
    let runtime = Runtime::build(config, None, &state)?;
    drop(runtime);
    // The background runtime may not be dropped inside an async context; here it is not.
    drop(state);
    Ok(())
}

/// Process-wide protections of one generation: IP lists, behavioural bans, in-flight limits.
#[derive(Debug)]
pub struct Protection {
    /// Allow/deny lists by route and listener.
    pub lists: IpLists,
    /// Behavioural counters and bans.
    pub abuse: Option<Arc<Abuse>>,
    /// In-flight limits per route and pool.
    pub gates: Concurrency,
    /// Shares bans through Redis until the generation is dropped.
    ban_sync: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Protection {
    fn drop(&mut self) {
        if let Some(t) = self.ban_sync.take() {
            t.abort();
        }
    }
}

/// The compiled filters of one route, in the same order as [`RouteTable::routes`].
#[derive(Debug, Default)]
pub struct RouteFilters {
    /// Authentication and authorization (None: the route has no `auth`).
    pub auth: Option<Authenticator>,
    /// Rate limits and quotas (None: the route has no `rate_limit`).
    pub limiter: Option<RateLimiter>,
    /// The WAF (None: the route has no `waf`, or `mode: off`).
    pub waf: Option<portcullis_waf::Waf>,
}

/// One config generation, compiled.
#[derive(Debug)]
pub struct Runtime {
    /// Increases with every successful reload.
    pub generation: u64,
    /// The validated config.
    pub config: Arc<Config>,
    /// Routes in match order.
    pub routes: RouteTable,
    /// Upstream pools.
    pub pools: PoolSet,
    /// Per-route filters, indexed like the route table.
    pub filters: Vec<RouteFilters>,
    /// IP lists, bans and in-flight limits.
    pub protection: Protection,
    /// Per-route metric handles, resolved on first use.
    pub(crate) route_metrics: RouteMetricsCache,
}

impl Runtime {
    /// Compiles `config`, reusing state (pools and their health) from `previous` where the
    /// definitions are unchanged.
    pub fn build(
        config: Config,
        previous: Option<&Runtime>,
        state: &FilterState,
    ) -> Result<Runtime, BuildError> {
        let pools = PoolSet::build(config.upstreams.values(), previous.map(|p| &p.pools))?;
        let routes = RouteTable::new(config.routes.clone());
        let _in_background = state.background.enter();
        state.limits.set_redis(config.protection.redis.clone());
        let lists = IpLists::from_spec(&config.protection.ip_lists)?;
        let abuse = config
            .protection
            .abuse
            .as_ref()
            .map(|spec| Abuse::from_spec(spec, &state.limits).map(Arc::new))
            .transpose()?;
        let ban_sync = abuse.as_ref().and_then(Abuse::spawn_sync);
        let gates = Concurrency::from_spec(&config.protection.concurrency, &state.limits);
        let filters = routes
            .routes()
            .iter()
            .map(|r| {
                let auth = r
                    .auth
                    .as_ref()
                    .map(|spec| Authenticator::from_spec(spec, &state.auth))
                    .transpose()
                    .map_err(|source| BuildError::Auth {
                        route: r.name.clone(),
                        source,
                    })?;
                let limiter = r
                    .rate_limit
                    .as_ref()
                    .map(|spec| RateLimiter::from_spec(&r.name, spec, &state.limits))
                    .transpose()?;
                let waf = r
                    .waf
                    .as_ref()
                    .filter(|spec| spec.mode != portcullis_config::WafMode::Off)
                    .map(portcullis_waf::Waf::from_spec)
                    .transpose()
                    .map_err(|source| BuildError::Waf {
                        route: r.name.clone(),
                        source,
                    })?;
                Ok(RouteFilters { auth, limiter, waf })
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        Ok(Runtime {
            generation: previous.map_or(1, |p| p.generation + 1),
            route_metrics: RouteMetricsCache::new(routes.routes().len()),
            config: Arc::new(config),
            routes,
            pools,
            filters,
            protection: Protection {
                lists,
                abuse,
                gates,
                ban_sync,
            },
        })
    }
}
