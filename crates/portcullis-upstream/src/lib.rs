//! Upstream pools: weighted selection among healthy backends, active health checks (HTTP or
//! TCP, with thresholds), passive ejection on connect failures, and construction of the
//! [`HttpPeer`] (timeouts) a request is sent to.
//!
//! A [`Pool`] is built from a validated [`portcullis_config::Upstream`]; [`PoolSet`] keeps pools
//! keyed by their definition so an unchanged pool keeps its health state across config reloads.
//! This crate knows nothing about routes or requests.

mod pool;

pub use pool::{BackendStatus, Pool, PoolSet, UpstreamError};
