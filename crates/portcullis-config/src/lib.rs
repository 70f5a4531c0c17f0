//! Portcullis configuration: YAML files -> raw serde types -> a validated, compiled [`Config`].
//!
//! Every problem is reported at once, each as `file:line:col: yaml.path: message`. This crate owns
//! the user-facing format and nothing else: it must not depend on Pingora or an async runtime, so
//! `portcullis check` can validate a config without binding anything.

mod duration;
mod error;
mod load;
mod model;
mod ratelimit;
mod raw;
mod schema;
mod tree;
mod validate;
mod waf;

pub use duration::parse_duration;
pub use error::{ConfigError, Diagnostic, Diagnostics, Origin};
pub use load::{config_files, load_path, parse_sources, parse_str};
pub use model::*;
pub use ratelimit::{RateLimitPolicy, RouteRateLimit};
pub use schema::json_schema;
pub use tree::{Seg, YamlPath};
pub use waf::{WafMode, WafSpec};

#[cfg(test)]
mod tests;
