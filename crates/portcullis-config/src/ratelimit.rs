//! Rate-limit settings of a route (`routes[].rate_limit`). Owned by the rate-limit work
//! (portcullis-ratelimit compiles a [`RouteRateLimit`] into limiters).

use schemars::JsonSchema;
use serde::Deserialize;

use crate::error::{Diagnostics, Origin};

/// `routes[].rate_limit` as written.
pub(crate) type RawRouteRateLimit = Vec<RawRateLimitPolicy>;

/// One policy as written.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRateLimitPolicy {
    /// What to count by, e.g. `client_ip`.
    pub key: String,
    /// Limits such as `10/s burst 5`.
    pub limits: Vec<String>,
}

/// Validated rate-limit policies of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRateLimit {
    /// Policies, all of which must admit a request.
    pub policies: Vec<RateLimitPolicy>,
}

/// One validated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitPolicy {
    /// Key.
    pub key: String,
    /// Limits as written.
    pub limits: Vec<String>,
}

pub(crate) fn validate(raw: &RawRouteRateLimit, o: &Origin, d: &mut Diagnostics) -> RouteRateLimit {
    let mut policies = Vec::new();
    for (i, p) in raw.iter().enumerate() {
        if p.key != "client_ip" {
            d.error_at(
                o,
                &[&i.to_string(), "key"],
                format!("unknown key {:?}", p.key),
            );
        }
        policies.push(RateLimitPolicy {
            key: p.key.clone(),
            limits: p.limits.clone(),
        });
    }
    RouteRateLimit { policies }
}
