//! The gateway: `impl ProxyHttp for Gateway` gluing the route table, the filters and the
//! upstream pools into Pingora's request hooks; the deny-to-response mapping; header hygiene;
//! access log; metrics; admin endpoints; hot reload of the compiled runtime.
//!
//! This is the only crate (with the binary) that sees a Pingora `Session`. Policy logic lives in
//! the filter and upstream crates; this crate glues and must stay thin.

mod access_log;
mod admin;
mod conn;
mod framing;
mod gateway;
mod headers;
mod metrics;
mod reload;
mod respond;
mod routing;
mod runtime;
mod server;
mod state;
mod tls;

pub use access_log::redact_query;
pub use gateway::{Gateway, ListenerInfo, RequestCtx};
pub use metrics::Metrics;
pub use respond::error_body;
pub use routing::{normalize_path, RouteQuery, RouteTable};
pub use runtime::{verify, BuildError, Runtime};
pub use server::run;
pub use state::{ReloadError, Shared, StartError};
pub use tls::TlsError;
