//! Portcullis configuration: YAML files -> raw serde types -> a validated, compiled [`Config`].
//!
//! Every problem is reported at once, each as `file:line:col: yaml.path: message`. This crate owns
//! the user-facing format and nothing else: it must not depend on Pingora or an async runtime, so
//! `portcullis check` can validate a config without binding anything.

mod auth;
mod duration;
mod error;
mod load;
mod model;
mod ratelimit;
mod raw;
mod schema;
mod tls;
mod tree;
mod validate;
mod waf;

pub use auth::{
    parse_key_hash, ApiKeyEntry, ApiKeySpec, AuthorizationSpec, ClientCertRule, HmacSpec,
    IdentityHeaderNames, IntrospectionSpec, IssuerSpec, JwksSettings, JwtSpec, PublicKeySpec,
    RouteAuth, SecretSource, TokenSource, JWT_ALGORITHMS,
};
pub use duration::parse_duration;
pub use error::{ConfigError, Diagnostic, Diagnostics, Origin};
pub use load::{config_files, load_path, parse_sources, parse_str};
pub use model::*;
pub use ratelimit::{
    parse_limit, parse_net, AbuseCounter, AbuseRule, AbuseSpec, ConcurrencySpec, IpListSpec,
    KeyPart, Limit, OnRedisError, Protection, RateLimitPolicy, RedisSpec, RouteRateLimit, Scope,
};
pub use schema::json_schema;
pub use tls::{
    ClientAuth, ClientAuthMode, ListenerTls, PrivateKey, TlsCertificate, TlsVersion, UpstreamTls,
};
pub use tree::{Seg, YamlPath};
pub use waf::{WafMode, WafSpec};

#[cfg(test)]
mod tests;
