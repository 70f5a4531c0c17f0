//! The compiled form of one config generation: route table and pools. Immutable; a reload builds
//! a new one and swaps it in, and requests keep the generation they started with.

use std::sync::Arc;

use portcullis_config::Config;
use portcullis_upstream::{PoolSet, UpstreamError};

use crate::routing::RouteTable;

/// Why a validated config could not be turned into a runtime.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A pool could not be built.
    #[error(transparent)]
    Upstream(#[from] UpstreamError),
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
}

impl Runtime {
    /// Compiles `config`, reusing state (pools and their health) from `previous` where the
    /// definitions are unchanged.
    pub fn build(config: Config, previous: Option<&Runtime>) -> Result<Runtime, BuildError> {
        let pools = PoolSet::build(config.upstreams.values(), previous.map(|p| &p.pools))?;
        let routes = RouteTable::new(config.routes.clone());
        Ok(Runtime {
            generation: previous.map_or(1, |p| p.generation + 1),
            config: Arc::new(config),
            routes,
            pools,
        })
    }
}
