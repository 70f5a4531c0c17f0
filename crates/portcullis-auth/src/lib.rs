//! Authentication and authorization for Portcullis routes: JWT (jsonwebtoken 11 with aws-lc)
//! with a JWKS cache that refreshes off the request path, a verified-token cache, API keys stored
//! as SHA-256 hashes, OAuth 2.0 token introspection (RFC 7662) and TLS client-certificate
//! identity; then per-route authorization (scopes, roles, claim values, certificate identity) and
//! the identity headers sent upstream. It takes a borrowed [`portcullis_core::RequestView`] and
//! answers an [`portcullis_core::Identity`] or a [`portcullis_core::Deny`]; it must never depend
//! on Pingora, so every verdict is testable without a proxy. Process-wide state that must
//! survive config reloads (JWKS caches, token caches, the HTTP client, counters) lives in
//! [`AuthShared`], created once; an [`Authenticator`] is compiled per route on every load.

mod apikey;
mod authenticator;
mod authz;
mod cache;
mod clock;
mod deny;
mod error;
mod fetch;
mod introspect;
mod jwks;
mod jwt;
mod metrics;
mod secret;

pub use apikey::hash_api_key;
pub use authenticator::{
    default_identity_headers, AuthShared, Authenticator, DEFAULT_INTROSPECTION_CACHE,
    DEFAULT_TOKEN_CACHE,
};
pub use clock::ManualClock;
pub use error::AuthError;
pub use metrics::AuthMetrics;

/// What the TLS layer learned from a verified client certificate. Filled by the proxy's TLS
/// listener; `None` when the client sent no certificate or it did not verify.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientCertIdentity {
    /// Subject distinguished name, as formatted by the TLS layer (e.g. `CN=svc,O=Example`).
    pub subject: String,
    /// DNS subject alternative names.
    pub dns_sans: Vec<String>,
    /// URI subject alternative names (e.g. SPIFFE ids).
    pub uri_sans: Vec<String>,
    /// SHA-256 of the DER certificate, lowercase hex without separators.
    pub fingerprint_sha256: String,
}
