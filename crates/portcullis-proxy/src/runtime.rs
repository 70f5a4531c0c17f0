//! The compiled form of one config generation: route table and pools. Immutable; a reload builds
//! a new one and swaps it in, and requests keep the generation they started with.

use std::sync::Arc;

use portcullis_auth::{AuthError, AuthShared, Authenticator};
use portcullis_config::Config;
use portcullis_upstream::{PoolSet, UpstreamError};

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
}

/// Process-wide filter state that outlives config generations (caches, connections, counters).
#[derive(Debug, Clone)]
pub struct FilterState {
    /// JWKS caches, token caches, API-key files, the HTTP client of the auth filter.
    pub auth: AuthShared,
}

/// The compiled filters of one route, in the same order as [`RouteTable::routes`].
#[derive(Debug, Default)]
pub struct RouteFilters {
    /// Authentication and authorization (None: the route has no `auth`).
    pub auth: Option<Authenticator>,
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
                Ok(RouteFilters { auth })
            })
            .collect::<Result<Vec<_>, BuildError>>()?;
        Ok(Runtime {
            generation: previous.map_or(1, |p| p.generation + 1),
            config: Arc::new(config),
            routes,
            pools,
            filters,
        })
    }
}
